//! Round-trip tests of the ledger on a real SQLite database.

use super::*;
use crate::model::*;

async fn platform(s: &Store, name: &str) -> i64 {
    let mut tx = s.begin().await.unwrap();
    let id = Store::insert_platform(
        &mut tx,
        &PlatformInsert {
            name,
            kind: PlatformKind::Lti11,
            consumer_key: Some("key"),
            base_url: None,
            allowed_hosts: &["lms.example.edu".to_string(), "127.0.0.1:8080".to_string()],
            allow_http: false,
            secret_ref: &format!("passback/ledger-x/platform/{name}"),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

fn grade(score: f64, max: f64) -> NewGrade {
    NewGrade {
        score_given: score,
        score_maximum: max,
        comment: None,
        result_text: None,
        result_url: None,
        submitted_at: None,
        source: "test".into(),
    }
}

async fn key(s: &Store, pid: i64) -> GradeKey {
    let c = s
        .upsert_context(pid, "ctx-1", Some("Biology 101"), None)
        .await
        .unwrap();
    let a = s
        .upsert_activity(c.id, "rl-1", Some("Quiz 1"), Some(10.0), None)
        .await
        .unwrap();
    let l = s
        .upsert_learner(pid, "user-1", Some("Ada"), None, None, Some(Role::Learner))
        .await
        .unwrap();
    GradeKey {
        activity_ref: a.id,
        learner_ref: l.id,
    }
}

#[tokio::test]
async fn migrations_apply_on_a_file_and_reopen_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/ledger.sqlite");
    let s = Store::open(&path).await.unwrap();
    assert_eq!(s.schema_version().await.unwrap(), Store::schema_latest());
    let id = s.ledger_id().await.unwrap();
    platform(&s, "p1").await;
    s.close().await;
    let s2 = Store::open(&path).await.unwrap();
    assert_eq!(
        s2.ledger_id().await.unwrap(),
        id,
        "ledger id is stable across opens"
    );
    assert_eq!(s2.list_platforms().await.unwrap().len(), 1);
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(s2.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let (fk,): (i64,) = sqlx::query_as("PRAGMA foreign_keys")
        .fetch_one(s2.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
}

#[tokio::test]
async fn platform_round_trip_and_duplicate_name() {
    let s = Store::open_in_memory().await.unwrap();
    platform(&s, "canvas").await;
    let p = s.platform_by_name("canvas").await.unwrap();
    assert_eq!(p.kind, PlatformKind::Lti11);
    assert_eq!(p.consumer_key.as_deref(), Some("key"));
    assert_eq!(p.allowed_hosts, vec!["127.0.0.1:8080", "lms.example.edu"]);
    assert!(!p.allow_http);
    let mut tx = s.begin().await.unwrap();
    let err = Store::insert_platform(
        &mut tx,
        &PlatformInsert {
            name: "canvas",
            kind: PlatformKind::Lti11,
            consumer_key: Some("k"),
            base_url: None,
            allowed_hosts: &[],
            allow_http: false,
            secret_ref: "passback/other",
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, crate::ErrorKind::Conflict);
    drop(tx);
    assert_eq!(
        s.platform_by_name("nope").await.unwrap_err().kind,
        crate::ErrorKind::NotFound
    );
}

#[tokio::test]
async fn schema_rejects_an_lti11_platform_without_consumer_key() {
    let s = Store::open_in_memory().await.unwrap();
    let r = sqlx::query(
        "INSERT INTO platforms (name, kind, secret_ref, created_at) VALUES ('x', 'lti11', 'r', 'now')",
    )
    .execute(s.pool())
    .await;
    assert!(r.is_err());
}

#[tokio::test]
async fn grades_are_versioned_and_identical_values_do_not_double_count() {
    let s = Store::open_in_memory().await.unwrap();
    let pid = platform(&s, "p").await;
    let k = key(&s, pid).await;
    let (g1, new1) = s.record_grade(k, &grade(7.0, 10.0)).await.unwrap();
    assert!(new1);
    assert_eq!(g1.version, 1);
    let (again, new_again) = s.record_grade(k, &grade(7.0, 10.0)).await.unwrap();
    assert!(!new_again);
    assert_eq!(again.id, g1.id);
    let (g2, new2) = s.record_grade(k, &grade(8.5, 10.0)).await.unwrap();
    assert!(new2);
    assert_eq!(g2.version, 2);
    let hist = s.grade_history(k).await.unwrap();
    assert_eq!(hist.iter().map(|g| g.version).collect::<Vec<_>>(), vec![2, 1]);
    assert_eq!(hist[1].score_given, 7.0, "the old value is kept");
    let rows = s.list_grade_rows().await.unwrap();
    assert_eq!(rows.len(), 1, "only the current version is listed");
    assert_eq!(rows[0].score_given, 8.5);
    assert_eq!(rows[0].status, GradeStatus::CannotSend);
    assert_eq!(s.grade_count().await.unwrap(), 1);
    let acts = s.list_activity_rows().await.unwrap();
    assert_eq!(acts[0].grades, 1);
    assert_eq!(acts[0].title.as_deref(), Some("Quiz 1"));
}

#[tokio::test]
async fn invalid_grades_are_refused() {
    let s = Store::open_in_memory().await.unwrap();
    let pid = platform(&s, "p").await;
    let k = key(&s, pid).await;
    for g in [grade(-1.0, 10.0), grade(1.0, 0.0), grade(f64::NAN, 1.0)] {
        assert_eq!(
            s.record_grade(k, &g).await.unwrap_err().kind,
            crate::ErrorKind::Invalid
        );
    }
    let mut both = grade(1.0, 1.0);
    both.result_text = Some("t".into());
    both.result_url = Some("https://x".into());
    assert!(s.record_grade(k, &both).await.is_err());
    assert!(s.grade_history(k).await.unwrap().is_empty());
}

#[tokio::test]
async fn outcome_target_upsert_newest_wins_and_status_follows_attempts() {
    let s = Store::open_in_memory().await.unwrap();
    let pid = platform(&s, "p").await;
    let k = key(&s, pid).await;
    let (g, _) = s.record_grade(k, &grade(9.0, 10.0)).await.unwrap();
    let mut t = OutcomeTarget {
        lis_result_sourcedid: Some("old".into()),
        lis_outcome_service_url: Some("https://lms.example.edu/outcomes".into()),
        ext_outcome_data_values_accepted: Some("url,text".into()),
        learned_at: now_rfc3339(),
        learned_from: "launch:a.txt:1".into(),
        ..Default::default()
    };
    s.set_outcome_target(k, &t).await.unwrap();
    t.lis_result_sourcedid = Some("new".into());
    t.ext_result_total_score_accepted = true;
    s.set_outcome_target(k, &t).await.unwrap();
    let back = s.outcome_target(k).await.unwrap().unwrap();
    assert_eq!(back, t);
    assert_eq!(s.list_grade_rows().await.unwrap()[0].status, GradeStatus::Pending);

    let id = s
        .start_attempt(&NewAttempt {
            grade_ref: Some(g.id),
            activity_ref: Some(k.activity_ref),
            learner_ref: Some(k.learner_ref),
            operation: AttemptOperation::Replace,
            transport: PlatformKind::Lti11,
            target: "https://lms.example.edu/outcomes".into(),
            message_identifier: Some("m1".into()),
            request_excerpt: Some("<replaceResultRequest>…".into()),
        })
        .await
        .unwrap();
    let pending = s.attempt(id).await.unwrap();
    assert_eq!(pending.outcome, AttemptOutcome::Pending);
    assert!(pending.finished_at.is_none());
    let failed = AttemptResult {
        outcome: AttemptOutcome::Failure,
        http_status: Some(422),
        code_major: Some("failure".into()),
        description: Some("User is no longer in course".into()),
        error_class: Some(ErrorClass::Permanent),
        fix_hint: Some("re-enrol".into()),
        read_score: None,
        response_excerpt: Some("<imsx_POXEnvelopeResponse/>".into()),
    };
    s.finish_attempt(id, &failed).await.unwrap();
    let rows = s.list_grade_rows().await.unwrap();
    assert_eq!(rows[0].status, GradeStatus::Failed);
    assert_eq!(
        rows[0].status_detail.as_deref(),
        Some("User is no longer in course")
    );
    let done = s.attempt(id).await.unwrap();
    assert_eq!(done.http_status, Some(422));
    assert_eq!(done.error_class, Some(ErrorClass::Permanent));
    assert!(done.finished_at.is_some());
    // The journal is append-only: an attempt cannot be finished twice.
    assert_eq!(
        s.finish_attempt(id, &failed).await.unwrap_err().kind,
        crate::ErrorKind::Conflict
    );
    assert_eq!(s.attempts_for_grade(g.id).await.unwrap().len(), 1);
    assert_eq!(s.recent_attempts(10).await.unwrap()[0].id, id);
}

#[tokio::test]
async fn import_batches_round_trip() {
    let s = Store::open_in_memory().await.unwrap();
    let id = s
        .start_import(&NewImportBatch {
            file_name: "grades.csv",
            file_hash: "sha256:abc",
            format: "tool-csv",
        })
        .await
        .unwrap();
    let errors = serde_json::json!([{"line": 3, "reason": "score is not a number"}]);
    s.finish_import(id, "partial", 10, 9, &errors).await.unwrap();
    let b = &s.list_imports().await.unwrap()[0];
    assert_eq!((b.rows_total, b.rows_imported, b.rows_quarantined), (10, 9, 1));
    assert_eq!(b.status, "partial");
    assert_eq!(b.errors, errors);
}

#[tokio::test]
async fn deleting_a_platform_cascades_to_everything_under_it() {
    let s = Store::open_in_memory().await.unwrap();
    let pid = platform(&s, "p").await;
    let keep = platform(&s, "q").await;
    let k = key(&s, pid).await;
    let k2 = key(&s, keep).await;
    s.record_grade(k, &grade(1.0, 2.0)).await.unwrap();
    s.record_grade(k2, &grade(1.0, 2.0)).await.unwrap();
    assert_eq!(s.platform_usage(pid).await.unwrap(), (1, 1));
    let mut tx = s.begin().await.unwrap();
    Store::delete_platform(&mut tx, pid).await.unwrap();
    tx.commit().await.unwrap();
    let (grades,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM grades")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(grades, 1, "only the other platform's grade remains");
    let (learners,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM learners")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(learners, 1);
}

#[tokio::test]
async fn an_ltiaas_grade_is_sendable_once_its_activity_has_a_service_key() {
    let s = Store::open_in_memory().await.unwrap();
    let mut tx = s.begin().await.unwrap();
    let pid = Store::insert_platform(
        &mut tx,
        &PlatformInsert {
            name: "aas",
            kind: PlatformKind::Ltiaas,
            consumer_key: None,
            base_url: Some("https://x.ltiaas.com"),
            allowed_hosts: &["x.ltiaas.com".to_string()],
            allow_http: false,
            secret_ref: "passback/ledger-x/platform/aas",
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let k = key(&s, pid).await;
    s.record_grade(k, &grade(3.0, 10.0)).await.unwrap();
    assert_eq!(
        s.list_grade_rows().await.unwrap()[0].status,
        GradeStatus::CannotSend
    );
    // A key captured from another learner's launch of the same activity serves everyone.
    s.upsert_service_key(&ServiceKeyInsert {
        platform_id: pid,
        context_id: "ctx-1",
        resource_link_id: "rl-1",
        ltiaas_platform_id: None,
        secret_ref: "passback/ledger-x/service-key/aas/ctx-1/rl-1",
        captured_at: &now_rfc3339(),
        source: "ltiaas-idtoken",
    })
    .await
    .unwrap();
    assert_eq!(s.list_grade_rows().await.unwrap()[0].status, GradeStatus::Pending);
    assert_eq!(
        s.service_key_refs(pid).await.unwrap(),
        vec!["passback/ledger-x/service-key/aas/ctx-1/rl-1".to_string()],
        "platform removal finds the key through service_keys too"
    );
}
