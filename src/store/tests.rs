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
    let mut conn = s.pool().acquire().await.unwrap();
    let c = Store::upsert_context(&mut conn, pid, "ctx-1", Some("Biology 101"), None)
        .await
        .unwrap();
    let a = Store::upsert_activity(&mut conn, c.id, "rl-1", Some("Quiz 1"), Some(10.0), None)
        .await
        .unwrap();
    let (l, _) = Store::upsert_learner(
        &mut conn,
        pid,
        "user-1",
        Some("Ada"),
        None,
        None,
        Some(Role::Learner),
    )
    .await
    .unwrap();
    GradeKey {
        activity_ref: a.id,
        learner_ref: l.id,
    }
}

async fn record(s: &Store, k: GradeKey, g: &NewGrade) -> crate::error::Result<(Grade, bool)> {
    let mut conn = s.pool().acquire().await.unwrap();
    Store::record_grade(&mut conn, k, g).await
}

#[tokio::test]
async fn migrations_apply_on_a_file_and_reopen_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/ledger.sqlite");
    let s = Store::open(&path).await.unwrap();
    assert_eq!(s.schema_version().await.unwrap(), s.schema_latest());
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
    assert_eq!(err.kind, crate::error::ErrorKind::Conflict);
    drop(tx);
    assert_eq!(
        s.platform_by_name("nope").await.unwrap_err().kind,
        crate::error::ErrorKind::NotFound
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
async fn import_batches_round_trip() {
    let s = Store::open_in_memory().await.unwrap();
    let mut tx = s.begin().await.unwrap();
    let id = Store::insert_batch(
        &mut tx,
        &NewBatch {
            file_name: "grades.csv",
            file_hash: "sha256:abc",
            file_bytes: 120,
            format: "tool-csv",
            platform_ref: None,
        },
    )
    .await
    .unwrap();
    let issues = vec![RowIssue {
        line: 3,
        column: Some("score".into()),
        kind: RowIssueKind::Rejected,
        reason: "score is not a number".into(),
    }];
    Store::insert_issues(&mut tx, id, &issues).await.unwrap();
    let counts = BatchCounts {
        read: 10,
        imported: 8,
        unchanged: 1,
        quarantined: 1,
        skipped: 0,
    };
    Store::finish_batch(&mut tx, id, "partial", &counts, &["a note".to_string()])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let b = &s.list_batches().await.unwrap()[0];
    assert_eq!(
        (b.rows_read, b.rows_imported, b.rows_unchanged, b.rows_quarantined),
        (10, 8, 1, 1)
    );
    assert_eq!(b.status, "partial");
    assert_eq!(b.notes, vec!["a note".to_string()]);
    assert!(b.finished_at.is_some());
    assert_eq!(s.batch_issues(id).await.unwrap(), issues);
}

#[tokio::test]
async fn deleting_a_platform_cascades_to_everything_under_it() {
    let s = Store::open_in_memory().await.unwrap();
    let pid = platform(&s, "p").await;
    let keep = platform(&s, "q").await;
    let k = key(&s, pid).await;
    let k2 = key(&s, keep).await;
    record(&s, k, &grade(1.0, 2.0)).await.unwrap();
    record(&s, k2, &grade(1.0, 2.0)).await.unwrap();
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
async fn upgrading_a_ledger_keeps_its_attempts_their_observations_and_the_foreign_keys() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.sqlite");
    // A ledger as schema version 3 left it, with an attempt an observation points at.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .foreign_keys(true),
        )
        .await
        .unwrap();
    super::engine::SQLITE_MIGRATOR.run_to(3, &pool).await.unwrap();
    for sql in [
        "INSERT INTO platforms (id, name, kind, consumer_key, secret_ref, created_at)
         VALUES (1, 'p', 'lti11', 'k', 'ref', 'now')",
        "INSERT INTO contexts (id, platform_id, context_id) VALUES (1, 1, 'c')",
        "INSERT INTO activities (id, context_ref, resource_link_id) VALUES (1, 1, 'a')",
        "INSERT INTO learners (id, platform_id, lti_user_id, role) VALUES (1, 1, 'u', 'learner')",
        "INSERT INTO grades (id, activity_ref, learner_ref, version, score_given, score_maximum, recorded_at, source)
         VALUES (1, 1, 1, 1, 5, 10, 'now', 'test')",
        "INSERT INTO current_grades (activity_ref, learner_ref, grade_ref, status) VALUES (1, 1, 1, 'failed')",
        "INSERT INTO attempts (id, grade_ref, activity_ref, learner_ref, operation, transport, target, started_at,
                               outcome, description)
         VALUES (7, 1, 1, 1, 'read', 'lti11', 'https://lms.example.edu/o', 'now', 'success', 'read back')",
        "INSERT INTO lms_observations (activity_ref, learner_ref, score, observed_at, source, attempt_ref)
         VALUES (1, 1, 0.5, 'now', 'read', 7)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let s = Store::open(&path).await.unwrap();
    assert_eq!(s.schema_version().await.unwrap(), s.schema_latest());
    let (origin, description): (String, String) =
        sqlx::query_as("SELECT origin, description FROM attempts WHERE id = 7")
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert_eq!((origin.as_str(), description.as_str()), ("passback", "read back"));
    let (status,): (String,) = sqlx::query_as("SELECT status FROM current_grades")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(status, "failed");
    let broken: Vec<(String, i64, String, i64)> = sqlx::query_as("PRAGMA foreign_key_check")
        .fetch_all(s.pool())
        .await
        .unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    let (fk,): (i64,) = sqlx::query_as("PRAGMA foreign_keys")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1, "foreign keys are back on after the rebuild");
    // The observation still points at the (rebuilt) attempts table.
    sqlx::query("DELETE FROM attempts WHERE id = 7")
        .execute(s.pool())
        .await
        .unwrap();
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM lms_observations")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "deleting the attempt cascades to its observation");
    // The rebuilt constraints still hold.
    let bad = sqlx::query(
        "INSERT INTO attempts (grade_ref, operation, transport, target, started_at) VALUES (1, 'x', 'lti11', 't', 'now')",
    )
    .execute(s.pool())
    .await;
    assert!(bad.is_err(), "an unknown operation is refused");
}

#[tokio::test]
async fn the_listing_pages_through_indexes_without_temporary_b_trees() {
    // SQLite's planner (PostgreSQL plans by its statistics).
    let s = Store::open_sqlite_in_memory().await.unwrap();
    // The window's default order, with the filters and the text search it offers.
    let filters = [
        GradeFilter::default(),
        GradeFilter {
            status: vec![crate::model::GradeStatus::Failed],
            ..GradeFilter::default()
        },
        GradeFilter {
            cause: vec![crate::model::Cause::NotAStudent],
            platform: Some("canvas".into()),
            ..GradeFilter::default()
        },
    ];
    for f in &filters {
        for text in [None, Some("u-004")] {
            let plans = super::listing::listing_plans(&s, f, text).await.unwrap();
            assert!(plans.iter().any(|p| p.contains("INDEX")), "{f:?}: {plans:?}");
            assert!(
                !plans.iter().any(|p| p.contains("TEMP B-TREE")),
                "{f:?} {text:?} sorts in a temporary B-tree: {plans:#?}"
            );
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_ledger_is_private_to_its_user_folder_file_wal_and_shm() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    // A folder Passback creates, two levels deep, under the test's umask (usually 022).
    let path = dir.path().join("data/passback/ledger.sqlite");
    let s = Store::open(&path).await.unwrap();
    s.set_meta("probe", "written").await.unwrap();
    assert_eq!(mode(&dir.path().join("data/passback")), 0o700);
    assert_eq!(mode(&dir.path().join("data")), 0o700);
    for f in ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"] {
        assert_eq!(mode(&dir.path().join("data/passback").join(f)), 0o600, "{f}");
    }
    s.close().await;
    // A ledger another build left readable by others is made private when opened.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let s = Store::open(&path).await.unwrap();
    assert_eq!(mode(&path), 0o600);
    s.close().await;
    // A folder the user chose is left as it is.
    let chosen = dir.path().join("shared");
    std::fs::create_dir(&chosen).unwrap();
    std::fs::set_permissions(&chosen, std::fs::Permissions::from_mode(0o755)).unwrap();
    Store::open(&chosen.join("l.sqlite")).await.unwrap().close().await;
    assert_eq!(mode(&chosen), 0o755);
    assert_eq!(mode(&chosen.join("l.sqlite")), 0o600);
}

/// The PostgreSQL migrations build the schema the SQLite ones do: the same tables,
/// columns (storage class, NOT NULL, primary key), indexes and foreign keys, at the
/// same version. Runs where the test environment names a server (the test
/// command's PostgreSQL step); on SQLite alone there is nothing to compare with.
#[tokio::test]
async fn both_engines_have_the_same_schema() {
    if std::env::var("PASSBACK_TEST_POSTGRES").is_ok_and(|u| !u.is_empty()) {
        let sqlite = Store::open_sqlite_in_memory().await.unwrap();
        let pg = Store::open_in_memory().await.unwrap();
        assert_eq!(pg.engine(), super::Engine::Postgres);
        assert_eq!(
            sqlite.schema_latest(),
            pg.schema_latest(),
            "the same latest version"
        );
        assert_eq!(
            sqlite.schema_version().await.unwrap(),
            pg.schema_version().await.unwrap()
        );
        let mut a = sqlite.pool().acquire().await.unwrap();
        let mut b = pg.pool().acquire().await.unwrap();
        let left = super::engine::describe(&mut a).await.unwrap();
        let right = super::engine::describe(&mut b).await.unwrap();
        let only_sqlite: Vec<&String> = left.iter().filter(|l| !right.contains(l)).collect();
        let only_pg: Vec<&String> = right.iter().filter(|r| !left.contains(r)).collect();
        assert!(
            only_sqlite.is_empty() && only_pg.is_empty(),
            "SQLite only: {only_sqlite:#?}\nPostgreSQL only: {only_pg:#?}"
        );
        assert!(left.len() > 150, "the description covers the schema: {left:#?}");
    } else {
        // Still check that SQLite's description is what the comparison relies on.
        let sqlite = Store::open_sqlite_in_memory().await.unwrap();
        let mut a = sqlite.pool().acquire().await.unwrap();
        let left = super::engine::describe(&mut a).await.unwrap();
        for line in [
            "grades.id integer not null pk1",
            "grades.score_given real not null",
            "grades.activity_ref -> activities.id on delete CASCADE",
            "launches index launches_once unique=1 partial=0 (learner_ref,<expr>,<expr>,launched_at)",
            "current_grades.activity_ref integer not null pk1",
        ] {
            assert!(left.iter().any(|l| l == line), "{line} in {left:#?}");
        }
    }
}

/// A statement run first with a NULL real and then with a value (the journal
/// finishing a write, then a read) reuses its prepared statement on both engines.
#[tokio::test]
async fn a_real_bound_null_then_a_value_reuses_its_statement() {
    use super::sql::Real;
    let s = Store::open_in_memory().await.unwrap();
    let mut conn = s.pool().acquire().await.unwrap();
    for v in [None, Some(0.25), None, Some(1.0)] {
        let got: Option<f64> = sqlx::query_scalar("SELECT CAST($1 AS DOUBLE PRECISION)")
            .bind(Real(v))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(got, v);
    }
    // The same through a multi-row statement, NULL in the first row.
    for rows in [[None, Some(0.5)], [Some(0.75), None]] {
        let mut q = super::Sql::new("SELECT column1 FROM (");
        q.push_values(rows, |mut b, v| {
            b.push_bind(Real(v));
        });
        q.push(") AS v");
        let got: Vec<Option<f64>> = q.build_query_scalar().fetch_all(&mut *conn).await.unwrap();
        assert_eq!(got, rows.to_vec());
    }
}
