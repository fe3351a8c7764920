//! Facts through intake on a real SQLite ledger: versioning, targets, attempts,
//! service keys, roles, and the property that the stored status always equals
//! the status rules applied to the facts.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::model::{
    AttemptFact, AttemptOperation, AttemptOutcome, ErrorClass, GradeFacts, GradeStatus, NewGrade,
    PlatformKind,
};
use crate::store::{GradeFilter, PlatformInsert, now_rfc3339};

async fn platform(s: &Store, name: &str, kind: PlatformKind) -> i64 {
    let mut tx = s.begin().await.unwrap();
    let id = Store::insert_platform(
        &mut tx,
        &PlatformInsert {
            name,
            kind,
            consumer_key: (kind == PlatformKind::Lti11).then_some("key"),
            base_url: (kind == PlatformKind::Ltiaas).then_some("https://x.ltiaas.com"),
            allowed_hosts: &["lms.example.edu".to_string()],
            allow_http: false,
            secret_ref: &format!("passback/ledger-x/platform/{name}"),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn intake_with(kind: PlatformKind) -> (Intake, i64) {
    let s = Store::open_in_memory().await.unwrap();
    let pid = platform(&s, "p", kind).await;
    (Intake::new(s), pid)
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

fn place<'a>(pid: i64, rl: &'a str, user: &'a str, role: Option<Role>) -> Place<'a> {
    Place {
        platform_id: pid,
        context: ContextSeen {
            context_id: "ctx-1",
            title: Some("Biology 101"),
            label: None,
        },
        activity: ActivitySeen {
            resource_link_id: rl,
            title: Some("Quiz 1"),
            points_possible: Some(10.0),
            line_item_id: None,
        },
        person: Some(PersonSeen {
            lti_user_id: user,
            name: Some("Ada"),
            role,
            ..PersonSeen::default()
        }),
    }
}

fn lti11_target(sourcedid: &str) -> OutcomeTarget {
    OutcomeTarget {
        lis_result_sourcedid: Some(sourcedid.into()),
        lis_outcome_service_url: Some("https://lms.example.edu/outcomes".into()),
        ext_outcome_data_values_accepted: Some("url,text".into()),
        learned_at: now_rfc3339(),
        learned_from: "launch:a.txt:1".into(),
        ..Default::default()
    }
}

async fn status_of(i: &Intake) -> (GradeStatus, Option<String>) {
    let rows = i.store().list_grade_rows().await.unwrap();
    (rows[0].status, rows[0].status_detail.clone())
}

#[tokio::test]
async fn grades_are_versioned_and_identical_values_do_not_double_count() {
    let (i, pid) = intake_with(PlatformKind::Lti11).await;
    let p = place(pid, "rl-1", "user-1", Some(Role::Learner));
    let (placed, g1, new1) = i.grade_observed(&p, &grade(7.0, 10.0)).await.unwrap();
    assert!(new1);
    assert_eq!(g1.version, 1);
    let (_, again, new_again) = i.grade_observed(&p, &grade(7.0, 10.0)).await.unwrap();
    assert!(!new_again);
    assert_eq!(again.id, g1.id);
    let (_, g2, new2) = i.grade_observed(&p, &grade(8.5, 10.0)).await.unwrap();
    assert!(new2);
    assert_eq!(g2.version, 2);
    let k = placed.key().unwrap();
    let s = i.store();
    let hist = s.grade_history(k).await.unwrap();
    assert_eq!(hist.iter().map(|g| g.version).collect::<Vec<_>>(), vec![2, 1]);
    assert_eq!(hist[1].score_given, 7.0, "the old value is kept");
    let rows = s.list_grade_rows().await.unwrap();
    assert_eq!(rows.len(), 1, "only the current version is listed");
    assert_eq!(rows[0].score_given, 8.5);
    assert_eq!(rows[0].grade_id, g2.id);
    assert_eq!(rows[0].status, GradeStatus::CannotSend);
    assert_eq!(s.grade_count().await.unwrap(), 1);
    let acts = s.list_activity_rows().await.unwrap();
    assert_eq!(acts[0].grades, 1);
    assert_eq!(acts[0].title.as_deref(), Some("Quiz 1"));
}

#[tokio::test]
async fn invalid_grades_are_refused_and_leave_nothing_behind() {
    let (i, pid) = intake_with(PlatformKind::Lti11).await;
    let p = place(pid, "rl-1", "user-1", None);
    for g in [grade(-1.0, 10.0), grade(1.0, 0.0), grade(f64::NAN, 1.0)] {
        assert_eq!(
            i.grade_observed(&p, &g).await.unwrap_err().kind,
            crate::error::ErrorKind::Invalid
        );
    }
    let mut both = grade(1.0, 1.0);
    both.result_text = Some("t".into());
    both.result_url = Some("https://x".into());
    assert!(i.grade_observed(&p, &both).await.is_err());
    assert!(i.store().list_grade_rows().await.unwrap().is_empty());
    assert!(
        i.store().list_activity_rows().await.unwrap().is_empty(),
        "a refused grade creates no activity either"
    );
}

#[tokio::test]
async fn outcome_target_upsert_newest_wins_and_status_follows_attempts() {
    let (i, pid) = intake_with(PlatformKind::Lti11).await;
    let p = place(pid, "rl-1", "user-1", Some(Role::Learner));
    let (placed, g, _) = i.grade_observed(&p, &grade(9.0, 10.0)).await.unwrap();
    let k = placed.key().unwrap();
    let mut t = lti11_target("old");
    i.target_learned(k, &t).await.unwrap();
    t.lis_result_sourcedid = Some("new".into());
    t.ext_result_total_score_accepted = true;
    i.launch_seen(&p, Some(&t)).await.unwrap();
    let s = i.store();
    assert_eq!(s.outcome_target(k).await.unwrap().unwrap(), t);
    assert_eq!(status_of(&i).await.0, GradeStatus::Pending);

    let id = i
        .attempt_started(&NewAttempt {
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
    assert_eq!(
        status_of(&i).await.0,
        GradeStatus::Unknown,
        "while the request is out, nobody knows what the LMS holds"
    );
    let failed = AttemptResult {
        outcome: AttemptOutcome::Failure,
        http_status: Some(422),
        code_major: Some("failure".into()),
        description: Some("User is no longer in course".into()),
        error_class: Some(ErrorClass::Permanent),
        fix_hint: Some("re-enrol".into()),
        read_score: None,
        response_excerpt: Some("<imsx_POXEnvelopeResponse/>".into()),
        cause: Some(crate::model::Cause::NotAStudent),
    };
    i.attempt_finished(id, &failed).await.unwrap();
    assert_eq!(
        status_of(&i).await,
        (GradeStatus::Failed, Some("User is no longer in course".into()))
    );
    let done = s.attempt(id).await.unwrap();
    assert_eq!(done.http_status, Some(422));
    assert_eq!(done.error_class, Some(ErrorClass::Permanent));
    assert!(done.finished_at.is_some());
    // The journal is append-only: an attempt cannot be finished twice.
    assert_eq!(
        i.attempt_finished(id, &failed).await.unwrap_err().kind,
        crate::error::ErrorKind::Conflict
    );
    assert_eq!(s.attempts_for_grade(g.id).await.unwrap().len(), 1);
    assert_eq!(s.recent_attempts(10).await.unwrap()[0].id, id);
    // A new version has not been sent, whatever happened to the old one.
    i.grade_observed(&p, &grade(10.0, 10.0)).await.unwrap();
    assert_eq!(status_of(&i).await.0, GradeStatus::Pending);
}

#[tokio::test]
async fn an_ltiaas_grade_is_sendable_once_its_activity_has_a_service_key() {
    let (i, pid) = intake_with(PlatformKind::Ltiaas).await;
    i.grade_observed(&place(pid, "rl-1", "user-1", None), &grade(3.0, 10.0))
        .await
        .unwrap();
    i.grade_observed(&place(pid, "rl-2", "user-1", None), &grade(3.0, 10.0))
        .await
        .unwrap();
    let statuses = |i: &Intake| {
        let s = i.store().clone();
        async move {
            s.list_grade_rows()
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.resource_link_id, r.status))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        statuses(&i).await,
        vec![
            ("rl-1".to_string(), GradeStatus::CannotSend),
            ("rl-2".to_string(), GradeStatus::CannotSend)
        ]
    );
    // A key captured from another learner's launch of the same activity serves everyone.
    let written = i
        .service_key_learned(&ServiceKeyInsert {
            platform_id: pid,
            context_id: "ctx-1",
            resource_link_id: "rl-1",
            ltiaas_platform_id: None,
            secret_ref: "passback/ledger-x/service-key/p/ctx-1/rl-1",
            captured_at: &now_rfc3339(),
            source: "ltiaas-idtoken",
        })
        .await
        .unwrap();
    assert!(written.written);
    assert_eq!(
        statuses(&i).await,
        vec![
            ("rl-1".to_string(), GradeStatus::Pending),
            ("rl-2".to_string(), GradeStatus::CannotSend)
        ],
        "only that activity's grades became sendable"
    );
    assert_eq!(
        i.store().service_key_refs(pid).await.unwrap(),
        vec!["passback/ledger-x/service-key/p/ctx-1/rl-1".to_string()],
        "platform removal finds the key through service_keys too"
    );
}

#[tokio::test]
async fn a_role_change_re_decides_the_persons_grades() {
    let (i, pid) = intake_with(PlatformKind::Lti11).await;
    let learner = place(pid, "rl-1", "user-1", Some(Role::Learner));
    i.launch_seen(&learner, None).await.unwrap();
    let (placed, _, _) = i.grade_observed(&learner, &grade(5.0, 10.0)).await.unwrap();
    i.target_learned(placed.key().unwrap(), &lti11_target("s1"))
        .await
        .unwrap();
    assert_eq!(status_of(&i).await.0, GradeStatus::Pending);
    // The same person launches another activity as an instructor (a TA who was a student).
    i.launch_seen(&place(pid, "rl-9", "user-1", Some(Role::Instructor)), None)
        .await
        .unwrap();
    let (status, detail) = status_of(&i).await;
    assert_eq!(status, GradeStatus::CannotSend);
    assert!(detail.unwrap().contains("instructor"));
    i.launch_seen(&learner, None).await.unwrap();
    assert_eq!(status_of(&i).await.0, GradeStatus::Pending);
}

#[tokio::test]
async fn observations_are_read_from_the_ledger_and_statuses_re_decided_for_new_rules() {
    let (i, pid) = intake_with(PlatformKind::Lti11).await;
    let p = place(pid, "rl-1", "user-1", Some(Role::Learner));
    let (placed, _, _) = i.grade_observed(&p, &grade(5.0, 10.0)).await.unwrap();
    let k = placed.key().unwrap();
    i.target_learned(k, &lti11_target("s1")).await.unwrap();
    i.refresh_statuses_if_rules_changed().await.unwrap();
    assert_eq!(
        i.refresh_statuses_if_rules_changed().await.unwrap(),
        0,
        "nothing to do once decided under the current rules"
    );
    // What the LMS held, as a gradebook export would record it; and a ledger last
    // decided by other rules.
    observe(&i, k, None, "2026-11-20T10:00:00.000Z", "export:gradebook.csv").await;
    i.store().set_meta("status_rules", "0").await.unwrap();
    assert_eq!(i.refresh_statuses_if_rules_changed().await.unwrap(), 1);
    let (status, detail) = status_of(&i).await;
    assert_eq!(status, GradeStatus::LmsMissing);
    assert!(detail.unwrap().contains("export:gradebook.csv"));
    observe(&i, k, Some(0.9), "2026-11-21T10:00:00.000Z", "read").await;
    i.store().set_meta("status_rules", "0").await.unwrap();
    i.refresh_statuses_if_rules_changed().await.unwrap();
    let (status, detail) = status_of(&i).await;
    assert_eq!(status, GradeStatus::Differs, "the newest observation decides");
    assert!(detail.unwrap().contains("LMS higher"));
}

// ---- The stored status always equals the rules applied to the facts -------------

/// One thing that can happen to the ledger.
#[derive(Debug, Clone)]
enum Op {
    Grade {
        lti: bool,
        act: u8,
        user: u8,
        score: u8,
    },
    Target {
        act: u8,
        user: u8,
        sourcedid: bool,
        url: bool,
    },
    ServiceKey {
        act: u8,
    },
    Role {
        lti: bool,
        user: u8,
        role: u8,
    },
    Start {
        lti: bool,
        act: u8,
        user: u8,
        read: bool,
    },
    Finish {
        nth: usize,
        outcome: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let lti = any::<bool>();
    prop_oneof![
        3 => (lti, 0..2u8, 0..2u8, 0..=10u8)
            .prop_map(|(lti, act, user, score)| Op::Grade { lti, act, user, score }),
        2 => (0..2u8, 0..2u8, any::<bool>(), any::<bool>())
            .prop_map(|(act, user, sourcedid, url)| Op::Target { act, user, sourcedid, url }),
        1 => (0..2u8).prop_map(|act| Op::ServiceKey { act }),
        1 => (lti, 0..2u8, 0..4u8).prop_map(|(lti, user, role)| Op::Role { lti, user, role }),
        3 => (lti, 0..2u8, 0..2u8, any::<bool>())
            .prop_map(|(lti, act, user, read)| Op::Start { lti, act, user, read }),
        3 => (any::<usize>(), 0..4u8).prop_map(|(nth, outcome)| Op::Finish { nth, outcome }),
    ]
}

const ROLES: [Role; 4] = [Role::Learner, Role::Instructor, Role::Unknown, Role::Mentor];
const OUTCOMES: [AttemptOutcome; 4] = [
    AttemptOutcome::Success,
    AttemptOutcome::Failure,
    AttemptOutcome::Error,
    AttemptOutcome::Processing,
];

/// The model: what the test itself knows happened, independent of the SQL.
#[derive(Default)]
struct Model {
    /// (lti, act, user) → (grade id, score 0–1).
    grades: HashMap<(bool, u8, u8), (i64, f64)>,
    /// LTI 1.1 (act, user) → a sourcedid and a URL are both known.
    targets: HashMap<(u8, u8), bool>,
    /// LTIAAS activities with a service key.
    keys: Vec<u8>,
    roles: HashMap<(bool, u8), Role>,
    /// Every attempt: (id, grade id, operation, outcome, description).
    attempts: Vec<(i64, i64, AttemptOperation, AttemptOutcome, Option<String>)>,
}

impl Model {
    fn facts(&self, (lti, act, user): (bool, u8, u8)) -> Option<GradeFacts> {
        let (grade_id, score) = *self.grades.get(&(lti, act, user))?;
        let last_attempt = self
            .attempts
            .iter()
            .filter(|a| a.1 == grade_id)
            .filter(|a| {
                !(a.3 == AttemptOutcome::Pending
                    && matches!(a.2, AttemptOperation::Read | AttemptOperation::ScoreRead))
            })
            .max_by_key(|a| a.0)
            .map(|a| AttemptFact {
                operation: a.2,
                outcome: a.3,
                error_class: None,
                cause: None,
                description: a.4.clone(),
                at: String::new(),
            });
        Some(GradeFacts {
            transport: if lti {
                PlatformKind::Lti11
            } else {
                PlatformKind::Ltiaas
            },
            has_target: if lti {
                self.targets.get(&(act, user)).copied().unwrap_or(false)
            } else {
                self.keys.contains(&act)
            },
            role: self.roles.get(&(lti, user)).copied().unwrap_or(Role::Unknown),
            score,
            // Every activity in these tests is worth 10 points (`place`).
            points: 10.0,
            last_attempt,
            last_observation: None,
            target_unavailable: None,
        })
    }
}

async fn run_ops(ops: Vec<Op>) -> std::result::Result<(), TestCaseError> {
    let s = Store::open_in_memory().await.unwrap();
    let lti_pid = platform(&s, "lti", PlatformKind::Lti11).await;
    let aas_pid = platform(&s, "aas", PlatformKind::Ltiaas).await;
    let intake = Intake::new(s);
    let pid = |lti: bool| if lti { lti_pid } else { aas_pid };
    let rl = |act: u8| format!("rl-{act}");
    let uid = |user: u8| format!("u-{user}");
    let mut m = Model::default();
    let mut clock = 0;
    for (n, op) in ops.into_iter().enumerate() {
        match op {
            Op::Grade {
                lti,
                act,
                user,
                score,
            } => {
                let (r, u) = (rl(act), uid(user));
                let (_, g, _) = intake
                    .grade_observed(&place(pid(lti), &r, &u, None), &grade(score as f64, 10.0))
                    .await
                    .unwrap();
                m.grades.insert((lti, act, user), (g.id, score as f64 / 10.0));
            }
            Op::Target {
                act,
                user,
                sourcedid,
                url,
            } => {
                let (r, u) = (rl(act), uid(user));
                let t = OutcomeTarget {
                    lis_result_sourcedid: sourcedid.then(|| format!("sid-{act}-{user}")),
                    lis_outcome_service_url: url.then(|| "https://lms.example.edu/o".to_string()),
                    learned_at: now_rfc3339(),
                    learned_from: "test".into(),
                    ..OutcomeTarget::default()
                };
                intake
                    .launch_seen(&place(lti_pid, &r, &u, None), Some(&t))
                    .await
                    .unwrap();
                m.targets.insert((act, user), sourcedid && url);
            }
            Op::ServiceKey { act } => {
                clock += 1;
                let r = rl(act);
                let secret_ref = format!("passback/ledger-x/service-key/aas/ctx-1/{r}");
                let captured_at = format!("2026-01-01T00:00:{clock:02}.000Z");
                intake
                    .service_key_learned(&ServiceKeyInsert {
                        platform_id: aas_pid,
                        context_id: "ctx-1",
                        resource_link_id: &r,
                        ltiaas_platform_id: None,
                        secret_ref: &secret_ref,
                        captured_at: &captured_at,
                        source: "test",
                    })
                    .await
                    .unwrap();
                if !m.keys.contains(&act) {
                    m.keys.push(act);
                }
            }
            Op::Role { lti, user, role } => {
                let u = uid(user);
                let role = ROLES[role as usize];
                intake
                    .place(&place(pid(lti), "rl-0", &u, Some(role)))
                    .await
                    .unwrap();
                m.roles.insert((lti, user), role);
            }
            Op::Start { lti, act, user, read } => {
                let Some(&(grade_id, _)) = m.grades.get(&(lti, act, user)) else {
                    continue;
                };
                let operation = match (lti, read) {
                    (true, false) => AttemptOperation::Replace,
                    (true, true) => AttemptOperation::Read,
                    (false, false) => AttemptOperation::Score,
                    (false, true) => AttemptOperation::ScoreRead,
                };
                let id = intake
                    .attempt_started(&NewAttempt {
                        grade_ref: Some(grade_id),
                        activity_ref: None,
                        learner_ref: None,
                        operation,
                        transport: if lti {
                            PlatformKind::Lti11
                        } else {
                            PlatformKind::Ltiaas
                        },
                        target: "t".into(),
                        message_identifier: None,
                        request_excerpt: None,
                    })
                    .await
                    .unwrap();
                m.attempts
                    .push((id, grade_id, operation, AttemptOutcome::Pending, None));
            }
            Op::Finish { nth, outcome } => {
                let open: Vec<usize> = (0..m.attempts.len())
                    .filter(|&i| m.attempts[i].3 == AttemptOutcome::Pending)
                    .collect();
                if open.is_empty() {
                    continue;
                }
                let at = open[nth % open.len()];
                let outcome = OUTCOMES[outcome as usize];
                let description = format!("answer {n}");
                intake
                    .attempt_finished(
                        m.attempts[at].0,
                        &AttemptResult {
                            outcome,
                            http_status: Some(200),
                            code_major: None,
                            description: Some(description.clone()),
                            error_class: None,
                            fix_hint: None,
                            read_score: None,
                            response_excerpt: None,
                            cause: None,
                        },
                    )
                    .await
                    .unwrap();
                m.attempts[at].3 = outcome;
                m.attempts[at].4 = Some(description);
            }
        }
    }
    // Every stored status equals the rules applied to the model's facts.
    let rows = intake.store().list_grade_rows().await.unwrap();
    prop_assert_eq!(rows.len(), m.grades.len());
    for row in rows {
        let lti = row.platform == "lti";
        let act: u8 = row.resource_link_id[3..].parse().unwrap();
        let user: u8 = row.lti_user_id[2..].parse().unwrap();
        let want = status::decide(&m.facts((lti, act, user)).unwrap());
        prop_assert_eq!(
            (row.status, row.status_detail.clone()),
            (want.status, want.detail),
            "{} {} {}",
            row.platform,
            row.resource_link_id,
            row.lti_user_id
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_stored_status_always_equals_the_rules(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run_ops(ops))?;
    }
}

/// Record what the LMS held, as a gradebook export or a read would, without
/// deciding any status.
async fn observe(i: &Intake, key: GradeKey, score: Option<f64>, at: &str, source: &str) {
    let mut tx = i.store().begin().await.unwrap();
    Store::insert_observations(
        &mut tx,
        &[crate::store::ObservationInsert {
            key,
            score,
            observed_at: at,
            source,
            batch_ref: None,
        }],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

fn owned_place(pid: i64, rl: &str, user: &str) -> PlaceOwned {
    PlaceOwned {
        platform_id: pid,
        context: Some(ContextOwned {
            context_id: "ctx-1".into(),
            ..ContextOwned::default()
        }),
        activity: Some(ActivityOwned {
            resource_link_id: rl.into(),
            ..ActivityOwned::default()
        }),
        person: Some(PersonOwned {
            lti_user_id: user.into(),
            role: Some(Role::Learner),
            ..PersonOwned::default()
        }),
    }
}

/// Import one row of facts as its own committed batch; returns the batch id.
async fn import_row(i: &Intake, facts: Vec<Fact>) -> i64 {
    let record = crate::store::NewBatch {
        file_name: "t.csv",
        file_hash: "sha256:0",
        file_bytes: 1,
        format: "tool-csv",
        platform_ref: None,
    };
    let mut b = i.begin_batch(Some(&record)).await.unwrap();
    let id = b.batch_id().unwrap();
    b.push(RowFacts { line: 2, facts }).await.unwrap();
    let results = b.flush().await.unwrap();
    assert!(
        results.iter().all(|r| r.outcome == RowOutcome::Imported),
        "{results:?}"
    );
    b.finish_record("imported", &crate::store::BatchCounts::default(), &[])
        .await
        .unwrap();
    b.commit().await.unwrap();
    id
}

#[tokio::test]
async fn undoing_a_batch_restores_the_target_it_replaced_and_is_refused_once_passback_sent_from_it() {
    let (i, pid) = intake_with(PlatformKind::Lti11).await;
    let p = owned_place(pid, "rl-1", "user-1");
    let first = import_row(
        &i,
        vec![
            Fact::Grade {
                place: p.clone(),
                grade: grade(5.0, 10.0),
                observed_at: Some("2026-11-20T10:00:00.000Z".into()),
            },
            Fact::Target {
                place: p.clone(),
                target: lti11_target("sid-old"),
            },
        ],
    )
    .await;
    let mut newer = lti11_target("sid-new");
    newer.learned_at = "2999-01-01T00:00:00.000Z".into();
    let second = import_row(
        &i,
        vec![Fact::Target {
            place: p.clone(),
            target: newer.clone(),
        }],
    )
    .await;
    let key = i.store().list_grade_rows().await.unwrap()[0].clone();
    let k = {
        let mut tx = i.store().begin().await.unwrap();
        Store::grade_key_of(&mut tx, key.grade_id)
            .await
            .unwrap()
            .expect("the imported grade")
    };
    assert_eq!(i.store().outcome_target(k).await.unwrap().unwrap(), newer);

    // The first batch cannot go while the second built on the same grade.
    let err = i.undo_batch(first).await.unwrap_err();
    assert_eq!(err.kind, crate::error::ErrorKind::Conflict);
    assert!(
        err.message.contains(&format!("batch {second}")),
        "{}",
        err.message
    );

    let undone = i.undo_batch(second).await.unwrap();
    assert_eq!(undone.targets_restored, 1);
    assert_eq!(
        i.store()
            .outcome_target(k)
            .await
            .unwrap()
            .unwrap()
            .lis_result_sourcedid
            .as_deref(),
        Some("sid-old"),
        "the target it replaced is back"
    );

    // Passback sends the imported grade: the batch is history now.
    i.attempt_started(&NewAttempt {
        grade_ref: Some(key.grade_id),
        activity_ref: Some(k.activity_ref),
        learner_ref: Some(k.learner_ref),
        operation: AttemptOperation::Replace,
        transport: PlatformKind::Lti11,
        target: "https://lms.example.edu/outcomes".into(),
        message_identifier: Some("m1".into()),
        request_excerpt: None,
    })
    .await
    .unwrap();
    let err = i.undo_batch(first).await.unwrap_err();
    assert_eq!(err.kind, crate::error::ErrorKind::Conflict);
    assert!(
        err.message.contains("already sent or read 1 grade"),
        "{}",
        err.message
    );
    assert_eq!(
        i.store().list_grade_rows().await.unwrap().len(),
        1,
        "nothing was taken back"
    );
}

/// Import rows of facts as one committed batch; returns each row's outcome.
async fn import_rows(i: &Intake, rows: Vec<Vec<Fact>>) -> Vec<RowResult> {
    let mut b = i.begin_batch(None).await.unwrap();
    let mut out = Vec::new();
    for (n, facts) in rows.into_iter().enumerate() {
        out.extend(
            b.push(RowFacts {
                line: n as u64 + 2,
                facts,
            })
            .await
            .unwrap(),
        );
    }
    out.extend(b.commit().await.unwrap());
    out
}

fn failure_row(p: &PlaceOwned, score: f64, at: &str) -> Vec<Fact> {
    vec![
        Fact::Grade {
            place: p.clone(),
            grade: grade(score, 4.0),
            observed_at: Some(at.into()),
        },
        Fact::ExternalAttempt {
            place: p.clone(),
            attempt: ExternalAttempt {
                origin: "open-edx".into(),
                operation: AttemptOperation::Replace,
                transport: PlatformKind::Lti11,
                target: "Open edX".into(),
                at: at.into(),
                result: AttemptResult {
                    outcome: AttemptOutcome::Failure,
                    http_status: None,
                    code_major: None,
                    description: Some("Open edX could not send it".into()),
                    error_class: Some(ErrorClass::Transient),
                    fix_hint: None,
                    read_score: None,
                    response_excerpt: None,
                    cause: Some(crate::model::Cause::ServerError),
                },
            },
        },
    ]
}

#[tokio::test]
async fn a_log_imported_twice_records_each_attempt_once_with_its_own_version() {
    let (i, pid) = intake_with(PlatformKind::Lti11).await;
    let p = owned_place(pid, "usage-1", "user-1");
    let rows = || {
        vec![
            failure_row(&p, 1.0, "2026-11-20T10:00:00.000Z"),
            failure_row(&p, 2.0, "2026-11-20T11:00:00.000Z"),
            failure_row(&p, 3.0, "2026-11-20T12:00:00.000Z"),
        ]
    };
    let first = import_rows(&i, rows()).await;
    assert!(
        first.iter().all(|r| r.outcome == RowOutcome::Imported),
        "{first:?}"
    );
    let again = import_rows(&i, rows()).await;
    assert!(
        again.iter().all(|r| r.outcome == RowOutcome::Unchanged),
        "{again:?}"
    );
    assert_eq!(
        again.iter().filter(|r| r.older).count(),
        2,
        "the first two are older than the ledger's"
    );
    let row = &i.store().list_grade_rows().await.unwrap()[0];
    assert_eq!(row.version, 3);
    // One attempt per version, each on its own version.
    for g in 1..=3i64 {
        let attempts = i.store().attempts_for_grade(g).await.unwrap();
        assert_eq!(attempts.len(), 1, "grade version {g}: {attempts:?}");
    }
    assert_eq!(
        row.status,
        GradeStatus::CannotSend,
        "failed, and no target to send it again"
    );
}

#[tokio::test]
async fn a_batch_that_outgrows_its_memory_settles_early_with_the_same_result() {
    // The same rows through a batch that keeps everything in memory and through
    // one that must clear its caches and settle statuses every few rows.
    let rows = |pid: i64| -> Vec<Vec<Fact>> {
        (0..60)
            .map(|n| {
                let p = owned_place(pid, &format!("rl-{}", n % 4), &format!("user-{}", n % 9));
                let mut facts = failure_row(&p, (n % 5) as f64, &format!("2026-11-20T10:{:02}:00.000Z", n));
                if n % 3 == 0 {
                    facts.push(Fact::Target {
                        place: p.clone(),
                        target: lti11_target(&format!("sid-{n}")),
                    });
                }
                facts
            })
            .collect()
    };
    let mut seen = Vec::new();
    for limits in [
        batch::Limits::default(),
        batch::Limits {
            current: 3,
            settle_at: 5,
            places: 4,
        },
    ] {
        let (i, pid) = intake_with(PlatformKind::Lti11).await;
        let mut b = i.begin_batch_with(None, limits).await.unwrap();
        for (n, facts) in rows(pid).into_iter().enumerate() {
            b.push(RowFacts {
                line: n as u64 + 2,
                facts,
            })
            .await
            .unwrap();
        }
        b.commit().await.unwrap();
        let listed: Vec<_> = i
            .store()
            .list_grade_rows()
            .await
            .unwrap()
            .into_iter()
            .map(|g| {
                (
                    g.resource_link_id,
                    g.lti_user_id,
                    g.version,
                    g.score_given,
                    g.status,
                    g.status_detail,
                )
            })
            .collect();
        assert_eq!(listed.len(), 36, "4 activities x 9 learners");
        seen.push(listed);
    }
    assert_eq!(seen[0], seen[1]);
}

#[tokio::test]
async fn a_text_search_finds_the_same_grades_by_id_lookup_or_by_matching_every_row() {
    let (i, pid) = intake_with(PlatformKind::Lti11).await;
    // More learners than are looked up by id (500): "learner" matches them all and
    // is matched row by row; "learner-42" matches 11 and is looked up by id.
    for n in 0..501 {
        let u = format!("learner-{n}");
        let p = place(pid, "rl-a", &u, Some(Role::Learner));
        i.grade_observed(&p, &grade(1.0, 4.0)).await.unwrap();
    }
    let s = i.store();
    for (text, want) in [
        ("learner", 501),
        ("learner-42", 11),
        ("LEARNER-5", 12),
        ("nobody", 0),
        ("rl-a", 501),
    ] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = s
                .grade_rows_page(&GradeFilter::default(), Some(text), after, 200)
                .await
                .unwrap();
            if after.is_none() {
                assert_eq!(page.total, Some(want), "{text}");
            }
            seen.extend(page.rows);
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen.len() as u64, want, "{text}");
        let t = text.to_lowercase();
        assert!(
            seen.iter()
                .all(|r| r.lti_user_id.contains(&t) || r.resource_link_id.contains(&t)),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_sorted_listing_pages_by_value_then_id_in_either_direction() {
    use crate::store::{GradeSort, SortKey};
    let (i, pid) = intake_with(PlatformKind::Lti11).await;
    // Scores with ties (n % 4), over two activities; learner names in mixed case.
    for rl in ["rl-a", "rl-b"] {
        for n in 0..9 {
            let u = format!("user-{n}");
            let mut p = place(pid, rl, &u, Some(Role::Learner));
            let name = if n % 2 == 0 {
                format!("alice {n}")
            } else {
                format!("Bob {n}")
            };
            if let Some(person) = p.person.as_mut() {
                person.name = Some(Box::leak(name.into_boxed_str()));
            }
            i.grade_observed(&p, &grade((n % 4) as f64, 4.0)).await.unwrap();
        }
    }
    let s = i.store();
    for by in [
        SortKey::Score,
        SortKey::Learner,
        SortKey::Status,
        SortKey::Activity,
    ] {
        for descending in [false, true] {
            let sort = GradeSort { by, descending };
            let mut paged = Vec::new();
            let mut after = None;
            loop {
                let page = s
                    .sorted_grade_rows_page(&GradeFilter::default(), None, sort, after.as_ref(), 5, true)
                    .await
                    .unwrap();
                if after.is_none() {
                    assert_eq!(page.total, Some(18));
                }
                paged.extend(page.rows);
                match page.next_sorted {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            // Every grade once, in order of the value, ties by grade id.
            let mut ids: Vec<_> = paged.iter().map(|r| r.grade_id).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), 18, "{sort:?}");
            let key = |r: &crate::model::GradeRow| -> (String, i64) {
                let v = match by {
                    SortKey::Score => format!("{:020.6}", r.score_given / r.score_maximum),
                    SortKey::Learner => r.learner_name.clone().unwrap().to_lowercase(),
                    SortKey::Activity => r.resource_link_id.clone(),
                    SortKey::Status => r.status.as_str().to_string(),
                };
                (v, r.grade_id)
            };
            let mut want = paged.clone();
            want.sort_by_key(key);
            if descending {
                want.reverse();
            }
            assert_eq!(paged, want, "{sort:?}");
        }
    }
    // Filters and text narrow a sorted listing as they do the default one.
    let page = s
        .sorted_grade_rows_page(
            &GradeFilter::default(),
            Some("bob"),
            GradeSort {
                by: SortKey::Score,
                descending: true,
            },
            None,
            50,
            true,
        )
        .await
        .unwrap();
    assert_eq!(page.total, Some(8));
    assert!(
        page.rows
            .iter()
            .all(|r| r.learner_name.as_deref().unwrap().starts_with("Bob"))
    );
    assert!(page.rows.windows(2).all(|w| w[0].score_given >= w[1].score_given));
}

#[tokio::test]
async fn the_window_pages_the_listing_by_keyset_and_filters_by_text() {
    let (i, pid) = intake_with(PlatformKind::Lti11).await;
    // Three activities, seven learners each (one activity named "Essay").
    let users: Vec<String> = (0..7).map(|u| format!("user-{u}")).collect();
    for rl in ["rl-a", "rl-b", "rl-c"] {
        for (n, u) in users.iter().enumerate() {
            let mut p = place(pid, rl, u, Some(Role::Learner));
            if rl == "rl-b" {
                p.activity.title = Some("Essay");
            }
            i.grade_observed(&p, &grade(n as f64, 10.0)).await.unwrap();
        }
    }
    let s = i.store();
    let all = s.list_grade_rows().await.unwrap();
    assert_eq!(all.len(), 21);
    // Pages of 4 walk the same rows in the same order, crossing activities.
    let mut paged = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = s
            .grade_rows_page(&GradeFilter::default(), None, after, 4)
            .await
            .unwrap();
        assert_eq!(
            page.total.is_some(),
            after.is_none(),
            "the total comes with the first page"
        );
        if after.is_none() {
            assert_eq!(page.total, Some(21));
        }
        pages += 1;
        paged.extend(page.rows);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(paged, all);
    assert_eq!(pages, 6);
    // Text: a learner id anywhere, or every grade of an activity whose title matches.
    let page = s
        .grade_rows_page(&GradeFilter::default(), Some("user-3"), None, 50)
        .await
        .unwrap();
    assert_eq!(page.total, Some(3));
    assert!(page.rows.iter().all(|r| r.lti_user_id == "user-3"));
    let page = s
        .grade_rows_page(&GradeFilter::default(), Some("essay"), None, 50)
        .await
        .unwrap();
    assert_eq!(page.total, Some(7));
    assert_eq!(page.rows.len(), 7);
    assert!(page.rows.iter().all(|r| r.resource_link_id == "rl-b"));
    // The grade ids of a selection narrow the page and its total.
    let one = GradeFilter {
        grades: vec![all[5].grade_id],
        ..GradeFilter::default()
    };
    let page = s.grade_rows_page(&one, None, None, 50).await.unwrap();
    assert_eq!((page.total, page.rows), (Some(1), vec![all[5].clone()]));
    // A window may ask for the rows first and the count beside them.
    let rows_only = s.grade_rows_page_with(&one, None, None, 50, false).await.unwrap();
    assert_eq!((rows_only.total, rows_only.rows.len()), (None, 1));
    assert_eq!(s.count_grade_rows(&one, None).await.unwrap(), 1);
    assert_eq!(
        s.count_grade_rows(&GradeFilter::default(), Some(" essay "))
            .await
            .unwrap(),
        {
            s.grade_rows_page(&GradeFilter::default(), Some("essay"), None, 50)
                .await
                .unwrap()
                .total
                .unwrap()
        }
    );
    // LIKE wildcards in the text are literal.
    let page = s
        .grade_rows_page(&GradeFilter::default(), Some("user_%"), None, 50)
        .await
        .unwrap();
    assert_eq!((page.total, page.rows.len()), (Some(0), 0));
}

#[tokio::test]
async fn a_run_that_stopped_before_its_fold_is_folded_by_recovery_once() {
    let (i, pid) = intake_with(PlatformKind::Lti11).await;
    let p = place(pid, "rl-1", "user-1", Some(Role::Learner));
    let (placed, g, _) = i.grade_observed(&p, &grade(7.0, 10.0)).await.unwrap();
    let k = placed.key().unwrap();
    i.target_learned(k, &lti11_target("sid-1")).await.unwrap();
    let since = now_rfc3339();
    let mut conn = i.store().pool().acquire().await.unwrap();
    let start = NewAttempt {
        grade_ref: Some(g.id),
        activity_ref: Some(k.activity_ref),
        learner_ref: Some(k.learner_ref),
        operation: AttemptOperation::Replace,
        transport: PlatformKind::Lti11,
        target: "https://lms.example.edu/outcomes".into(),
        message_identifier: Some("m1".into()),
        request_excerpt: None,
    };
    let (_, ids, _) = journal::record_unfolded(&mut conn, &[], &[start], &[])
        .await
        .unwrap();
    let done = journal::Finished {
        id: ids[0],
        key: Some(k),
        result: AttemptResult {
            outcome: AttemptOutcome::Success,
            http_status: Some(200),
            code_major: Some("success".into()),
            description: Some("ok".into()),
            error_class: None,
            fix_hint: None,
            read_score: None,
            response_excerpt: None,
            cause: Some(crate::model::Cause::Ok),
        },
        at: None,
    };
    journal::record_unfolded(&mut conn, &[], &[], &[done])
        .await
        .unwrap();
    drop(conn);
    // The process "stopped" here: the attempt is committed, its fold is not.
    assert_eq!(i.store().observations_of(&[k]).await.unwrap().len(), 0);
    assert_eq!(status_of(&i).await.0, GradeStatus::Pending);
    let run = crate::store::run_id();
    i.fold_stopped_run(run, &since).await.unwrap();
    assert_eq!(status_of(&i).await.0, GradeStatus::InSync);
    let seen = i.store().observations_of(&[k]).await.unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].1, Some(0.7));
    // Folding again (a second recovery) adds nothing.
    let count = || async { i.store().observation_count().await.unwrap() };
    assert_eq!(count().await, 1);
    i.fold_stopped_run(run, &since).await.unwrap();
    assert_eq!(count().await, 1);
}

#[tokio::test]
async fn the_overview_counts_by_course_and_groups_failures_by_cause() {
    let (i, pid) = intake_with(PlatformKind::Lti11).await;
    let causes = [
        Some(crate::model::Cause::NotAStudent),
        Some(crate::model::Cause::NotAStudent),
        Some(crate::model::Cause::ServerError),
        None,
    ];
    for (n, cause) in causes.iter().enumerate() {
        let user = format!("user-{n}");
        let p = place(pid, "rl-1", &user, Some(Role::Learner));
        let (placed, g, _) = i.grade_observed(&p, &grade(n as f64, 10.0)).await.unwrap();
        let k = placed.key().unwrap();
        i.target_learned(k, &lti11_target(&format!("sid-{n}")))
            .await
            .unwrap();
        let Some(cause) = cause else { continue };
        let id = i
            .attempt_started(&NewAttempt {
                grade_ref: Some(g.id),
                activity_ref: Some(k.activity_ref),
                learner_ref: Some(k.learner_ref),
                operation: AttemptOperation::Replace,
                transport: PlatformKind::Lti11,
                target: "https://lms.example.edu/outcomes".into(),
                message_identifier: None,
                request_excerpt: None,
            })
            .await
            .unwrap();
        let result = AttemptResult {
            outcome: AttemptOutcome::Failure,
            http_status: Some(200),
            code_major: Some("failure".into()),
            description: Some(format!("{} refused", cause.as_str())),
            error_class: Some(ErrorClass::Permanent),
            fix_hint: Some("ask the instructor".into()),
            read_score: None,
            response_excerpt: None,
            cause: Some(*cause),
        };
        i.attempt_finished(id, &result).await.unwrap();
    }
    let s = i.store();
    let places = s.counts_by_place().await.unwrap();
    assert_eq!(places.len(), 1);
    assert_eq!(places[0].context_id, "ctx-1");
    assert_eq!(
        places[0].counts,
        vec![(GradeStatus::Failed, 3), (GradeStatus::Pending, 1)]
    );
    assert!(places[0].oldest_unsent.is_some());
    let groups = s.failure_groups().await.unwrap();
    let got: Vec<_> = groups.iter().map(|g| (g.cause, g.grades)).collect();
    assert_eq!(
        got,
        vec![
            (Some(crate::model::Cause::NotAStudent), 2),
            (Some(crate::model::Cause::ServerError), 1)
        ]
    );
    assert_eq!(groups[0].fix_hint.as_deref(), Some("ask the instructor"));
    // "Retry this group" selects exactly the group's grades.
    let f = GradeFilter {
        cause: vec![crate::model::Cause::NotAStudent],
        ..GradeFilter::default()
    };
    let page = s.grade_rows_page(&f, None, None, 50).await.unwrap();
    assert_eq!(page.total, Some(2));
    assert!(page.rows.iter().all(|r| r.status == GradeStatus::Failed));
}
