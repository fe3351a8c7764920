//! The demo workspace: seeded ledger + in-process sandbox LMS, statuses of every kind,
//! and idempotent re-opening.

use passback::model::GradeStatus;
use passback::secrets::Secrets;

fn count(rows: &[passback::model::GradeRow], s: GradeStatus) -> usize {
    rows.iter().filter(|r| r.status == s).count()
}

#[tokio::test]
async fn demo_workspace_shows_every_status_and_reopens_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.sqlite");
    let secrets = Secrets::in_memory();
    let demo = passback_sandbox::demo::open(&path, secrets.clone())
        .await
        .unwrap();
    let rows = demo.passback.list_grades().await.unwrap();
    assert_eq!(rows.len(), 12, "2 activities x 6 learners");
    assert_eq!(count(&rows, GradeStatus::InSync), 3);
    assert_eq!(count(&rows, GradeStatus::Failed), 1);
    assert_eq!(count(&rows, GradeStatus::CannotSend), 2);
    assert_eq!(count(&rows, GradeStatus::Pending), 6);
    let failed = rows.iter().find(|r| r.status == GradeStatus::Failed).unwrap();
    assert_eq!(failed.learner_name.as_deref(), Some("Edsger Dijkstra"));
    let ov = demo.passback.overview().await.unwrap();
    assert_eq!(ov.workspace, "demo");
    assert_eq!(
        ov.sandbox_url.as_deref(),
        Some(demo.sandbox.info.base_url.as_str())
    );
    let attempts = demo.passback.store().recent_attempts(100).await.unwrap().len();
    demo.passback.store().close().await;
    demo.sandbox.stop().await;

    // Re-open: same ledger, a new sandbox on a new port; nothing is duplicated and the
    // sandbox again holds what the ledger says was sent.
    let again = passback_sandbox::demo::open(&path, secrets).await.unwrap();
    let rows2 = again.passback.list_grades().await.unwrap();
    assert_eq!(rows2.len(), 12);
    assert!(rows2.iter().all(|r| r.version == 1), "no new grade versions");
    assert_eq!(
        again.passback.store().recent_attempts(100).await.unwrap().len(),
        attempts
    );
    let held: serde_json::Value = reqwest::get(format!("{}/_sandbox/results", again.sandbox.info.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(held["results"].as_object().unwrap().len(), 3);
    again.sandbox.stop().await;
}
