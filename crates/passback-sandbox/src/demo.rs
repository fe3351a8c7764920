//! The demo workspace: a separate ledger wired to an in-process sandbox LMS,
//! seeded with a course, activities, learners and grades in every status, so
//! anyone can practise without touching a real LMS.
//!
//! The desktop app opens it when asked (`PASSBACK_DEMO=1`, set by `./dev app`)
//! and the real ledger is empty; `passback demo` runs it from the command line.

use std::path::{Path, PathBuf};

use passback::Result;
use passback::app::{Passback, default_db_path};
use passback::http::ClientOptions;
use passback::intake::{ActivitySeen, ContextSeen, PersonSeen, Place};
use passback::lti11::client::{Lti11Credentials, OutcomeClient, OutcomeOp, check_target};
use passback::lti11::oauth::SignatureMethod;
use passback::lti11::pox::ReplaceResult;
use passback::model::{NewGrade, NewLti11Platform, OutcomeTarget, Role};
use passback::secrets::{SecretRef, Secrets};
use passback::store::now_rfc3339;
use passback::sync::lti11::OutcomeTransport;
use passback::sync::{self, JournalLink, RetryPolicy};

use crate::{Dialect, Sandbox, SandboxConfig, SourcedidState};

/// The demo platform's name in the ledger.
pub const DEMO_PLATFORM: &str = "demo-canvas";
/// Fixed seed: the same demo every time.
pub const DEMO_SEED: u64 = 2026;

/// A running demo: its ledger and its sandbox LMS.
pub struct DemoWorkspace {
    pub passback: Passback,
    pub sandbox: Sandbox,
    pub db_path: PathBuf,
}

/// `<OS data dir>/passback/demo.sqlite`.
pub fn default_demo_path() -> Result<PathBuf> {
    Ok(default_db_path()?.with_file_name("demo.sqlite"))
}

struct Person {
    user_id: &'static str,
    name: &'static str,
    sourcedid: Option<&'static str>,
    state: SourcedidState,
}

const PEOPLE: &[Person] = &[
    Person {
        user_id: "u-ada",
        name: "Ada Lovelace",
        sourcedid: Some("demo-ada"),
        state: SourcedidState::Valid,
    },
    Person {
        user_id: "u-grace",
        name: "Grace Hopper",
        sourcedid: Some("demo-grace"),
        state: SourcedidState::Valid,
    },
    Person {
        user_id: "u-alan",
        name: "Alan Turing",
        sourcedid: Some("demo-alan"),
        state: SourcedidState::Valid,
    },
    Person {
        user_id: "u-katherine",
        name: "Katherine Johnson",
        sourcedid: Some("demo-katherine"),
        state: SourcedidState::Valid,
    },
    Person {
        user_id: "u-edsger",
        name: "Edsger Dijkstra",
        sourcedid: Some("demo-edsger"),
        state: SourcedidState::UserNotInCourse,
    },
    Person {
        user_id: "u-barbara",
        name: "Barbara Liskov",
        sourcedid: None,
        state: SourcedidState::Valid,
    },
];

/// (resource link, title, points possible, scores per person in PEOPLE order)
const ACTIVITIES: &[(&str, &str, f64, [f64; 6])] = &[
    (
        "rl-quiz-1",
        "Quiz 1: Cells",
        10.0,
        [9.0, 7.5, 10.0, 6.0, 8.0, 9.5],
    ),
    (
        "rl-lab-1",
        "Lab report: Osmosis",
        20.0,
        [18.0, 0.0, 15.5, 19.0, 12.0, 17.0],
    ),
];

/// Whether learner `pi`'s grade for activity `ai` was sent before the learner's grade
/// slot existed in the LMS (Ada's and Alan's lab reports): a failure the demo's
/// "Retry this group" fixes against the sandbox.
fn relaunched(ai: usize, pi: usize) -> bool {
    ai == 1 && (pi == 0 || pi == 2)
}

/// Start the sandbox and open (creating or refreshing) the demo ledger at `db_path`.
/// Safe to run again: seeding is idempotent and outcome URLs follow the sandbox's port.
pub async fn open(db_path: &Path, secrets: Secrets) -> Result<DemoWorkspace> {
    let mut cfg = SandboxConfig::new(Dialect::Canvas, DEMO_SEED);
    cfg.consumer_key = "demo-key".into();
    let sandbox = Sandbox::start(cfg).await?;
    // The grade slots of learners who relaunch after the demo's first send are unknown
    // to the LMS at that send and known from then on (see `relaunched`).
    let (later, registry): (Vec<_>, Vec<_>) = PEOPLE
        .iter()
        .enumerate()
        .flat_map(|(pi, p)| {
            ACTIVITIES.iter().enumerate().filter_map(move |(ai, (rl, ..))| {
                p.sourcedid
                    .map(|s| (relaunched(ai, pi), (format!("{s}-{rl}"), p.state)))
            })
        })
        .partition(|(later, _)| *later);
    let later: Vec<_> = later.into_iter().map(|(_, r)| r).collect();
    let registry: Vec<_> = registry.into_iter().map(|(_, r)| r).collect();
    sandbox.register(&registry).await;

    let pb = Passback::open(db_path, secrets).await?;
    pb.store().set_meta("workspace", "demo").await?;
    pb.store().set_meta("sandbox_url", &sandbox.info.base_url).await?;
    if let Ok(existing) = pb.store().platform_by_name(DEMO_PLATFORM).await {
        // The keyring may be a different one than last time (a throw-away session
        // keyring): put the sandbox's secret back where the ledger's reference points.
        let secret_ref = SecretRef::parse_owned(&existing.secret_ref, &pb.store().ledger_id().await?)?;
        pb.secrets()
            .set_bound(
                &secret_ref,
                &sandbox.info.consumer_secret,
                &existing.allowed_hosts,
            )
            .await?;
    } else {
        pb.add_lti11_platform(
            NewLti11Platform {
                name: DEMO_PLATFORM.into(),
                consumer_key: sandbox.info.consumer_key.clone(),
                allowed_hosts: vec!["127.0.0.1".into()],
                allow_http: false,
            },
            &sandbox.info.consumer_secret,
        )
        .await?;
    }
    let platform = pb.store().platform_by_name(DEMO_PLATFORM).await?;
    let creds = Lti11Credentials {
        consumer_key: sandbox.info.consumer_key.clone(),
        consumer_secret: sandbox.info.consumer_secret.clone(),
        method: SignatureMethod::HmacSha1,
        allowed_hosts: platform.allowed_hosts.clone(),
        allow_http: false,
    };
    let url = check_target(&sandbox.info.lti11_outcome_url, &creds)?;
    let client = OutcomeClient::new(ClientOptions::default())?;
    let once = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let intake = pb.intake();
    let fresh = pb.store().recent_attempts(1).await?.is_empty();
    for (ai, (rl, title, points, scores)) in ACTIVITIES.iter().enumerate() {
        for (pi, p) in PEOPLE.iter().enumerate() {
            let place = Place {
                platform_id: platform.id,
                context: ContextSeen {
                    context_id: "bio-101",
                    title: Some("BIO 101: Cell Biology"),
                    label: Some("BIO-101"),
                },
                activity: ActivitySeen {
                    resource_link_id: rl,
                    title: Some(title),
                    points_possible: Some(*points),
                    line_item_id: None,
                },
                person: Some(PersonSeen {
                    lti_user_id: p.user_id,
                    name: Some(p.name),
                    role: Some(Role::Learner),
                    ..PersonSeen::default()
                }),
            };
            let sourcedid = p.sourcedid.map(|s| format!("{s}-{rl}"));
            // A learner who launched left an outcome target; one who never did has none.
            let target = sourcedid.as_ref().map(|sid| OutcomeTarget {
                lis_result_sourcedid: Some(sid.clone()),
                lis_outcome_service_url: Some(sandbox.info.lti11_outcome_url.clone()),
                ext_outcome_data_values_accepted: Some("url,text".into()),
                ext_result_total_score_accepted: true,
                ext_submitted_at_accepted: true,
                ext_prioritize_non_tool_grade_accepted: true,
                ext_needs_additional_review_accepted: true,
                service_key_ref: None,
                learned_at: now_rfc3339(),
                learned_from: "demo workspace".into(),
                unavailable_reason: None,
            });
            intake.launch_seen(&place, target.as_ref()).await?;
            let (placed, grade, _) = intake
                .grade_observed(
                    &place,
                    &NewGrade {
                        score_given: scores[pi],
                        score_maximum: *points,
                        comment: None,
                        result_text: None,
                        result_url: None,
                        submitted_at: None,
                        source: "demo workspace".into(),
                    },
                )
                .await?;
            // The quiz grades of most learners were "sent" when the demo was made, so
            // the demo shows grades in sync, failed (a dropped learner), pending and
            // cannot-send (a learner who never launched). Two lab reports were sent
            // before their learners' grade slots existed in the LMS: they failed, and
            // the learners have launched since, so "Retry this group" fixes them live.
            let sent_in_demo = (ai == 0 && pi != 3) || relaunched(ai, pi);
            let Some(sid) = &sourcedid else { continue };
            if sent_in_demo && fresh {
                let op = OutcomeOp::Replace(Box::new(ReplaceResult {
                    score: Some(grade.score_given / grade.score_maximum),
                    ..ReplaceResult::default()
                }));
                let transport = OutcomeTransport {
                    client: &client,
                    creds: &creds,
                    url: &url,
                    sourcedid: sid,
                    op: &op,
                };
                let link = JournalLink {
                    grade_ref: Some(grade.id),
                    activity_ref: Some(placed.activity.id),
                    learner_ref: placed.learner.as_ref().map(|l| l.id),
                };
                sync::send(intake, &transport, once, link).await?;
            } else if sent_in_demo && p.state == SourcedidState::Valid && !relaunched(ai, pi) {
                // A restarted sandbox forgot what it held: put the sent grades back.
                sandbox
                    .put_result(sid, grade.score_given / grade.score_maximum)
                    .await;
            }
        }
    }
    // The relaunched learners' grade slots exist now.
    sandbox.register(&later).await;
    Ok(DemoWorkspace {
        passback: pb,
        sandbox,
        db_path: db_path.to_path_buf(),
    })
}

/// Open the desktop app's workspace: the real ledger, or the demo workspace when
/// `PASSBACK_DEMO=1`, no `PASSBACK_DB` is set and the real ledger has no platforms.
pub async fn open_desktop_workspace(secrets: Secrets) -> Result<(Passback, Option<DemoWorkspace>)> {
    let explicit = std::env::var_os(passback::app::DB_ENV)
        .filter(|v| !v.is_empty())
        .is_some();
    let want_demo = std::env::var("PASSBACK_DEMO").is_ok_and(|v| v == "1");
    let real = Passback::open_ledger(&passback::app::resolve_ledger(None)?, secrets.clone()).await?;
    if explicit || !want_demo || !real.list_platforms().await?.is_empty() {
        return Ok((real, None));
    }
    real.store().close().await;
    let demo = open(&default_demo_path()?, secrets).await?;
    Ok((demo.passback.clone(), Some(demo)))
}
