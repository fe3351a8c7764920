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
    assert_eq!(count(&rows, GradeStatus::Failed), 3);
    assert_eq!(count(&rows, GradeStatus::CannotSend), 2);
    assert_eq!(count(&rows, GradeStatus::Pending), 4);
    let mut failed: Vec<_> = rows
        .iter()
        .filter(|r| r.status == GradeStatus::Failed)
        .map(|r| r.learner_name.clone().unwrap())
        .collect();
    failed.sort();
    assert_eq!(failed, ["Ada Lovelace", "Alan Turing", "Edsger Dijkstra"]);
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

#[tokio::test]
async fn the_demo_fixes_failed_grades_live_when_they_are_sent_again() {
    use passback::app::sync::SyncRequest;
    use passback::store::GradeFilter;
    use passback::sync::plan::Only;

    let dir = tempfile::tempdir().unwrap();
    let demo = passback_sandbox::demo::open(&dir.path().join("demo.sqlite"), Secrets::in_memory())
        .await
        .unwrap();
    let health = demo.passback.health().await.unwrap();
    let causes: Vec<_> = health
        .failures
        .iter()
        .map(|f| (f.cause.map(|c| c.as_str().to_string()), f.grades))
        .collect();
    assert!(
        causes.contains(&(Some("unknown_sourcedid".into()), 2)),
        "two lab reports failed on unknown grade slots: {causes:?}"
    );
    // "Send all failed": the relaunched learners' grades go through; the learner who
    // left the course stays failed (permanent, and the LMS still says so).
    let report = demo
        .passback
        .sync(
            &SyncRequest {
                filter: GradeFilter::default(),
                only: vec![Only::Failed],
                ..SyncRequest::default()
            },
            &mut passback::progress::Silent,
        )
        .await
        .unwrap();
    assert_eq!(report.run.ended.get("sent").copied(), Some(2), "{:?}", report.run);
    let rows = demo.passback.list_grades().await.unwrap();
    assert_eq!(count(&rows, GradeStatus::InSync), 5);
    assert_eq!(count(&rows, GradeStatus::Failed), 1);
    demo.sandbox.stop().await;
}
