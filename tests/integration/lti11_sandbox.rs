//! LTI 1.1 Basic Outcomes against the sandbox LMS over real loopback HTTP, in
//! each dialect: replace, read back, delete, and every failure class.

use std::time::{Duration, Instant};

use passback::http::ClientOptions;
use passback::intake::Intake;
use passback::lti11::client::{Lti11Credentials, OutcomeClient, OutcomeOp, check_target, sign};
use passback::lti11::oauth::SignatureMethod;
use passback::lti11::pox::{ReplaceResult, ResultData};
use passback::model::{AttemptOutcome, ErrorClass};
use passback::store::Store;
use passback::sync::lti11::OutcomeTransport;
use passback::sync::{self, JournalLink, RetryPolicy, SendReport};
use passback_sandbox::faults::{Fault, FaultConfig};
use passback_sandbox::{Dialect, Sandbox, SandboxConfig, SourcedidState};
use serde_json::Value;

const DIALECTS: [Dialect; 3] = [Dialect::Canvas, Dialect::Moodle, Dialect::Sakai];

struct Rig {
    sb: Sandbox,
    intake: Intake,
    creds: Lti11Credentials,
    http: OutcomeClient,
    url: url::Url,
}

async fn rig(dialect: Dialect, tweak: impl FnOnce(&mut SandboxConfig)) -> Rig {
    let mut cfg = SandboxConfig::new(dialect, 7);
    cfg.sourcedids = vec!["sid-ok".into(), "sid-2".into()];
    tweak(&mut cfg);
    let sb = Sandbox::start(cfg).await.unwrap();
    sb.register(&[
        ("sid-dropped".into(), SourcedidState::UserNotInCourse),
        ("sid-concluded".into(), SourcedidState::CourseConcluded),
        ("sid-nopoints".into(), SourcedidState::NoPointsPossible),
    ])
    .await;
    let creds = Lti11Credentials {
        consumer_key: sb.info.consumer_key.clone(),
        consumer_secret: sb.info.consumer_secret.clone(),
        method: SignatureMethod::HmacSha1,
        allowed_hosts: vec!["127.0.0.1".into()],
        allow_http: false,
    };
    // A query string on the outcome URL must be signed too.
    let url = check_target(
        &format!("{}?tool=7&note=a%20b", sb.info.lti11_outcome_url),
        &creds,
    )
    .unwrap();
    Rig {
        intake: Intake::new(Store::open_in_memory().await.unwrap()),
        http: OutcomeClient::new(ClientOptions {
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(2),
        })
        .unwrap(),
        creds,
        url,
        sb,
    }
}

fn replace(score: f64) -> OutcomeOp {
    OutcomeOp::Replace(Box::new(ReplaceResult {
        message_identifier: String::new(),
        sourcedid: String::new(),
        score: Some(score),
        result_data: None,
        result_total_score: None,
        submitted_at: None,
        prioritize_non_tool_grade: false,
        needs_additional_review: false,
    }))
}

fn once() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    }
}

impl Rig {
    async fn send(&self, sourcedid: &str, op: &OutcomeOp, policy: RetryPolicy) -> SendReport {
        let transport = OutcomeTransport {
            client: &self.http,
            creds: &self.creds,
            url: &self.url,
            sourcedid,
            op,
        };
        sync::send(&self.intake, &transport, policy, JournalLink::default())
            .await
            .unwrap()
    }

    async fn results(&self) -> Value {
        reqwest::get(format!("{}/_sandbox/results", self.sb.info.base_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn faults(&self, cfg: FaultConfig) {
        let r = reqwest::Client::new()
            .post(format!("{}/_sandbox/faults", self.sb.info.base_url))
            .json(&cfg)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
}

fn script(faults: &[Fault], retry_after: u64) -> FaultConfig {
    FaultConfig {
        script: faults.to_vec(),
        retry_after_secs: Some(retry_after),
        ..FaultConfig::default()
    }
}

#[tokio::test]
async fn replace_read_back_and_delete_in_every_dialect() {
    for d in DIALECTS {
        let r = rig(d, |_| {}).await;
        let sent = r.send("sid-ok", &replace(0.85), once()).await;
        assert!(sent.confirmed, "{d:?}: {sent:?}");
        let read = r.send("sid-ok", &OutcomeOp::Read, once()).await;
        assert!(read.confirmed, "{d:?}");
        assert_eq!(read.read_score, Some(0.85), "{d:?}");
        let res = r.results().await;
        assert_eq!(res["results"]["sid-ok"]["score"], 0.85);
        assert_eq!(res["requests"]["sid-ok"], 2);

        // A score of 0 is a real grade, not "no grade".
        assert!(r.send("sid-2", &replace(0.0), once()).await.confirmed);
        assert_eq!(
            r.send("sid-2", &OutcomeOp::Read, once()).await.read_score,
            Some(0.0)
        );

        let del = r.send("sid-ok", &OutcomeOp::Delete, once()).await;
        assert!(del.confirmed, "{d:?}");
        let read = r.send("sid-ok", &OutcomeOp::Read, once()).await;
        assert!(read.confirmed);
        assert_eq!(read.read_score, None, "{d:?}: deleted means no grade");
        assert!(r.results().await["results"].get("sid-ok").is_none());

        // Every attempt was journaled and completed.
        let journal = r.intake.store().recent_attempts(100).await.unwrap();
        assert_eq!(journal.len(), 6);
        assert!(
            journal
                .iter()
                .all(|a| a.finished_at.is_some() && a.outcome == AttemptOutcome::Success)
        );
        r.sb.stop().await;
    }
}

#[tokio::test]
async fn canvas_result_data_extensions_are_stored() {
    let r = rig(Dialect::Canvas, |_| {}).await;
    let op = OutcomeOp::Replace(Box::new(ReplaceResult {
        message_identifier: String::new(),
        sourcedid: String::new(),
        score: Some(0.5),
        result_data: Some(ResultData::Url("https://tool.example/sub/1".into())),
        result_total_score: Some(5.0),
        submitted_at: Some("2026-11-20T10:00:00Z".into()),
        prioritize_non_tool_grade: true,
        needs_additional_review: false,
    }));
    assert!(r.send("sid-ok", &op, once()).await.confirmed);
    let res = r.results().await;
    let stored = &res["results"]["sid-ok"];
    assert_eq!(stored["result_url"], "https://tool.example/sub/1");
    assert_eq!(stored["result_total_score"], 5.0);
    assert_eq!(stored["submitted_at"], "2026-11-20T10:00:00Z");
}

#[tokio::test]
async fn lms_refusals_are_permanent_in_every_dialect() {
    for d in DIALECTS {
        let r = rig(d, |_| {}).await;
        for sid in ["sid-unknown", "sid-dropped", "sid-nopoints", "sid-concluded"] {
            let rep = r.send(sid, &replace(0.5), RetryPolicy::default()).await;
            assert!(!rep.confirmed, "{d:?} {sid}");
            assert_eq!(
                rep.error_class,
                Some(ErrorClass::Permanent),
                "{d:?} {sid}: {rep:?}"
            );
            assert_eq!(
                rep.attempts.len(),
                1,
                "{d:?} {sid}: permanent failures are never retried"
            );
            assert!(rep.fix_hint.is_some());
            let status = rep.attempts[0].http_status.unwrap();
            match d {
                Dialect::Canvas => assert_eq!(status, 422, "{sid}"),
                _ => assert_eq!(status, 200, "{d:?} {sid}: Moodle and Sakai fail with HTTP 200"),
            }
        }
        // A concluded course still answers reads.
        assert!(
            r.send("sid-concluded", &OutcomeOp::Read, once()).await.confirmed,
            "{d:?}"
        );
        assert!(
            r.results().await["results"].as_object().unwrap().is_empty(),
            "nothing stored"
        );
    }
}

#[tokio::test]
async fn canvas_hints_follow_its_error_codes() {
    let r = rig(Dialect::Canvas, |_| {}).await;
    let rep = r.send("sid-dropped", &replace(0.5), once()).await;
    assert!(
        rep.description.contains("User is no longer in course"),
        "{}",
        rep.description
    );
    assert!(rep.fix_hint.unwrap().contains("enrol"));
    let rep = r.send("sid-nopoints", &replace(0.5), once()).await;
    assert!(rep.fix_hint.unwrap().contains("points possible"));
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_failure_in_every_dialect() {
    for d in DIALECTS {
        let mut r = rig(d, |_| {}).await;
        r.creds.consumer_secret = "not-the-secret".into();
        let rep = r.send("sid-ok", &replace(0.5), RetryPolicy::default()).await;
        assert!(!rep.confirmed);
        assert_eq!(rep.error_class, Some(ErrorClass::Auth), "{d:?}: {rep:?}");
        assert_eq!(rep.attempts.len(), 1, "auth failures are not retried");
        assert!(rep.fix_hint.unwrap().contains("secret"), "{d:?}");
        if d == Dialect::Canvas {
            assert_eq!(rep.attempts[0].http_status, Some(401));
        }
        assert!(r.results().await["results"].as_object().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_replayed_nonce_is_refused() {
    let r = rig(Dialect::Canvas, |_| {}).await;
    let signed = sign(&r.creds, &r.url, &replace(0.4), "sid-ok").unwrap();
    let first = r.http.execute(&signed, false).await;
    assert!(first.verdict.is_success());
    let again = r.http.execute(&signed, false).await;
    assert_eq!(again.http_status, Some(401));
    assert_eq!(again.verdict.error_class, Some(ErrorClass::Auth));
    assert!(
        again.verdict.description.contains("Duplicate nonce"),
        "{}",
        again.verdict.description
    );
}

#[tokio::test]
async fn a_wrong_content_type_gets_415_from_canvas() {
    let r = rig(Dialect::Canvas, |_| {}).await;
    let mut signed = sign(&r.creds, &r.url, &replace(0.4), "sid-ok").unwrap();
    signed.content_type = "text/plain";
    let x = r.http.execute(&signed, false).await;
    assert_eq!(x.http_status, Some(415));
    assert_eq!(x.verdict.error_class, Some(ErrorClass::Permanent));
}

#[tokio::test]
async fn clock_skew_is_detected_and_reported() {
    let r = rig(Dialect::Canvas, |c| c.clock_offset_secs = 2 * 3600 + 60).await;
    let rep = r.send("sid-ok", &replace(0.5), RetryPolicy::default()).await;
    assert_eq!(rep.error_class, Some(ErrorClass::Auth));
    let hint = rep.fix_hint.unwrap();
    assert!(hint.contains("Clock skew"), "{hint}");
    assert!(hint.contains("2 hours behind"), "{hint}");
    // Within the 90-minute window the same skew direction is accepted.
    let ok = rig(Dialect::Moodle, |c| c.clock_offset_secs = 80 * 60).await;
    assert!(ok.send("sid-ok", &replace(0.5), once()).await.confirmed);
}

#[tokio::test]
async fn server_errors_timeouts_and_resets_are_transient_and_retried() {
    for fault in [
        Fault::Status500,
        Fault::Status503,
        Fault::Hang,
        Fault::Reset,
        Fault::MalformedXml,
    ] {
        let r = rig(Dialect::Sakai, |_| {}).await;
        r.faults(script(&[fault], 0)).await;
        let policy = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(50),
            max_wait: Duration::from_secs(5),
        };
        let rep = r.send("sid-ok", &replace(0.7), policy).await;
        assert_eq!(rep.attempts.len(), 2, "{fault:?}: {rep:?}");
        assert_eq!(
            rep.attempts[0].error_class,
            Some(ErrorClass::Transient),
            "{fault:?}"
        );
        assert_ne!(rep.attempts[0].outcome, AttemptOutcome::Success);
        assert!(rep.confirmed, "{fault:?}: the retry goes through");
        assert_eq!(r.results().await["results"]["sid-ok"]["score"], 0.7);
        let journal = r.intake.store().recent_attempts(10).await.unwrap();
        assert_eq!(journal.len(), 2);
        assert_ne!(
            journal[0].message_identifier, journal[1].message_identifier,
            "each retry is signed afresh"
        );
    }
}

#[tokio::test]
async fn rate_limits_are_honoured() {
    let r = rig(Dialect::Canvas, |_| {}).await;
    r.faults(script(&[Fault::RateLimit], 1)).await;
    let t0 = Instant::now();
    let rep = r
        .send(
            "sid-ok",
            &replace(0.9),
            RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(10),
                max_wait: Duration::from_secs(5),
            },
        )
        .await;
    assert!(rep.confirmed, "{rep:?}");
    assert_eq!(rep.attempts[0].http_status, Some(429));
    assert_eq!(rep.attempts[0].error_class, Some(ErrorClass::Transient));
    assert!(
        rep.attempts[1].waited_before_ms >= 1000,
        "waited as Retry-After said"
    );
    assert!(t0.elapsed() >= Duration::from_secs(1));
    // A Retry-After longer than we are willing to wait stops the run with a hint.
    r.faults(script(&[Fault::RateLimit], 120)).await;
    let rep = r.send("sid-ok", &replace(0.9), RetryPolicy::default()).await;
    assert!(!rep.confirmed);
    assert_eq!(rep.attempts.len(), 1);
    assert!(rep.fix_hint.unwrap().contains("120 s"));
}

#[tokio::test]
async fn html_pages_are_errors_that_quote_the_page() {
    let r = rig(Dialect::Moodle, |_| {}).await;
    r.faults(script(&[Fault::HtmlPage], 0)).await;
    let rep = r.send("sid-ok", &replace(0.5), RetryPolicy::default()).await;
    assert!(!rep.confirmed);
    assert_eq!(rep.error_class, Some(ErrorClass::Permanent));
    assert!(rep.description.contains("<html>"), "{}", rep.description);
}

#[tokio::test]
async fn a_foreign_host_is_refused_before_anything_is_sent() {
    let r = rig(Dialect::Canvas, |_| {}).await;
    let mut creds = r.creds.clone();
    creds.allowed_hosts = vec!["canvas.example.edu".into()];
    let err = check_target(&r.sb.info.lti11_outcome_url, &creds).unwrap_err();
    assert!(err.message.contains("allowed hosts"), "{}", err.message);
    assert_eq!(r.results().await["total_requests"], 0);
}
