//! The LTIAAS service API against the sandbox over real loopback HTTP: capture
//! an ID token, look up line items (paging), send scores and read them back,
//! and every failure class: a stale service key, LMS refusals, 429 with
//! Retry-After, server faults. Secrets are grepped for in the ledger file.

use std::time::{Duration, Instant};

use passback::Passback;
use passback::app::ltiaas::{KeyChange, LineItemChoice, LineItemSource, LtiaasTarget};
use passback::http::ClientOptions;
use passback::ltiaas::ScoreToSend;
use passback::ltiaas::client::{LineItemFilter, LtiaasAuth, LtiaasClient};
use passback::model::{AttemptOutcome, ErrorClass, NewLtiaasPlatform, Role};
use passback::secrets::Secrets;
use passback::sync::RetryPolicy;
use passback_sandbox::faults::{Fault, FaultConfig};
use passback_sandbox::{Dialect, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";

struct Rig {
    sb: Sandbox,
    pb: Passback,
    /// A ledger file, or a team ledger in the test command's PostgreSQL step.
    ledger: crate::common::TempLedger,
    http: reqwest::Client,
}

async fn rig() -> Rig {
    rig_with(|_| {}).await
}

async fn rig_with(tweak: impl FnOnce(&mut SandboxConfig)) -> Rig {
    let mut cfg = SandboxConfig::new(Dialect::Canvas, 11);
    tweak(&mut cfg);
    let sb = Sandbox::start(cfg).await.unwrap();
    let ledger = crate::common::TempLedger::new();
    let pb = ledger.open_passback(Secrets::in_memory()).await;
    pb.add_ltiaas_platform(
        NewLtiaasPlatform {
            name: "lti".into(),
            base_url: sb.info.ltiaas_base_url.clone(),
        },
        &sb.info.ltiaas_api_key,
    )
    .await
    .unwrap();
    Rig {
        sb,
        pb,
        ledger,
        http: reqwest::Client::new(),
    }
}

fn opts() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(2),
    }
}

fn once() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    }
}

fn quick(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(20),
        max_wait: Duration::from_secs(5),
    }
}

fn target(ctx: &str, rl: &str, user: &str) -> LtiaasTarget {
    LtiaasTarget {
        platform: "lti".into(),
        context_id: ctx.into(),
        resource_link_id: rl.into(),
        user_id: user.into(),
    }
}

impl Rig {
    async fn admin(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/_sandbox/ltiaas/{path}", self.sb.info.base_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    async fn launch(&self, body: Value) -> Value {
        self.admin("launches", body).await
    }

    async fn state(&self) -> Value {
        self.http
            .get(format!("{}/_sandbox/ltiaas/state", self.sb.info.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn faults(&self, cfg: FaultConfig) {
        let r = self
            .http
            .post(format!("{}/_sandbox/faults", self.sb.info.base_url))
            .json(&cfg)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    async fn capture(&self, ltik: &str) -> passback::app::ltiaas::CaptureReport {
        self.pb.ltiaas_capture_idtoken("lti", ltik, opts()).await.unwrap()
    }

    async fn send(
        &self,
        t: &LtiaasTarget,
        score: f64,
        choice: &LineItemChoice,
        policy: RetryPolicy,
    ) -> passback::app::ltiaas::LtiaasReport {
        let s = ScoreToSend::final_score(&t.user_id, score, 10.0);
        self.pb
            .ltiaas_send_one(t, &s, choice, policy, opts())
            .await
            .unwrap()
    }

    async fn read(&self, t: &LtiaasTarget, choice: &LineItemChoice) -> passback::app::ltiaas::LtiaasReport {
        self.pb.ltiaas_read_one(t, choice, once(), opts()).await.unwrap()
    }

    /// A launch of learner `user` on (c1, rl1) with a line item, captured.
    async fn captured_learner(&self, user: &str) -> Value {
        let l = self
            .launch(json!({
                "context_id": "c1", "context_title": "Biology 101", "resource_link_id": "rl1",
                "resource_link_title": "Quiz 1", "user_id": user, "user_name": "Ada Lovelace",
                "line_item": {"label": "Quiz 1", "score_maximum": 10, "id": "https://lms.example/li/quiz-1"},
            }))
            .await;
        let rep = self.capture(l["ltik"].as_str().unwrap()).await;
        assert!(rep.ok, "{rep:?}");
        l
    }

    fn accepted_posts(state: &Value) -> usize {
        state["score_posts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["accepted"] == true)
            .count()
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
async fn capture_look_up_send_and_read_back() {
    let r = rig().await;
    let l = r.captured_learner("u1").await;
    let t = target("c1", "rl1", "u1");

    // The capture recorded the launch in the ledger and the key with its age.
    let rep = r.capture(l["ltik"].as_str().unwrap()).await;
    let launch = rep.launch.unwrap();
    assert_eq!(
        launch.service_key,
        KeyChange::Replaced,
        "capturing again replaces"
    );
    assert_eq!(launch.role, Role::Learner);
    assert_eq!(launch.ltiaas_platform_id.as_deref(), l["platform_id"].as_str());
    assert_eq!(
        launch.line_item_id.as_deref(),
        Some("https://lms.example/li/quiz-1")
    );
    let keys = r.pb.ltiaas_service_keys(None).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].context_id.as_str(), keys[0].resource_link_id.as_str()),
        ("c1", "rl1")
    );
    assert!(keys[0].age_secs < 60, "{:?}", keys[0]);
    assert!(keys[0].age.ends_with(" s"), "{}", keys[0].age);
    let acts = r.pb.list_activities().await.unwrap();
    assert_eq!(acts.len(), 1);
    assert_eq!(acts[0].title.as_deref(), Some("Quiz 1"));
    assert_eq!(acts[0].context_title.as_deref(), Some("Biology 101"));

    // The ID token named the one line item; the activity remembers it.
    let sent = r.send(&t, 7.0, &LineItemChoice::default(), once()).await;
    assert!(sent.confirmed, "{sent:?}");
    assert_eq!(sent.line_item_source, Some(LineItemSource::Ledger));
    assert_eq!(sent.attempts[0].http_status, Some(204));
    // Looked up again by resource link.
    let refresh = LineItemChoice {
        refresh: true,
        ..LineItemChoice::default()
    };
    let sent = r.send(&t, 8.0, &refresh, once()).await;
    assert!(sent.confirmed, "{sent:?}");
    assert_eq!(sent.line_item_source, Some(LineItemSource::Lookup));
    assert_eq!(
        sent.line_item_id.as_deref(),
        Some("https://lms.example/li/quiz-1")
    );

    let read = r.read(&t, &LineItemChoice::default()).await;
    assert!(read.confirmed, "{read:?}");
    assert_eq!(
        read.read_score,
        Some(0.8),
        "on the 0–1 scale, as the journal keeps reads"
    );
    let result = read.result.unwrap();
    assert_eq!(result.result_maximum, Some(10.0));
    assert_eq!(result.timestamp, sent.timestamp);

    let st = r.state().await;
    assert_eq!(Rig::accepted_posts(&st), 2);
    assert_eq!(st["scores"][0]["result_score"], 8.0);

    // Every request about the grade was journaled and completed.
    let journal = r.pb.store().recent_attempts(10).await.unwrap();
    assert_eq!(journal.len(), 3);
    assert!(
        journal
            .iter()
            .all(|a| a.finished_at.is_some() && a.outcome == AttemptOutcome::Success)
    );
    assert_eq!(journal[0].operation, "score_read");
    // Reads are journaled on the 0–1 scale the statuses compare on (8 of 10).
    assert_eq!(journal[0].read_score, Some(0.8));
    assert_eq!(journal[1].operation, "score");
    assert_eq!(journal[1].transport, "ltiaas");
    assert_eq!(journal[1].target, "https://lms.example/li/quiz-1");
    let ex = journal[1].request_excerpt.as_deref().unwrap();
    assert!(ex.contains("Authorization: SERVICE-AUTH-V1 [redacted]"), "{ex}");
    assert!(ex.contains("\"scoreGiven\":8.0"), "{ex}");
    assert!(
        journal[1].message_identifier > journal[2].message_identifier,
        "fresh timestamps"
    );
}

#[tokio::test]
async fn line_items_page_through_next_links() {
    let r = rig().await;
    let l = r.captured_learner("u1").await;
    // 7 more line items on another link in the same context, plus noise.
    r.admin(
        "lineitems",
        json!({"context_id": "c1", "resource_link_id": "rl-many", "label": "Part", "count": 7}),
    )
    .await;
    r.admin(
        "lineitems",
        json!({"context_id": "c1", "resource_link_id": "rl-other", "count": 2}),
    )
    .await;
    let t = target("c1", "rl1", "u1");
    let mut listing =
        r.pb.ltiaas_line_items(
            &t,
            LineItemFilter {
                resource_link_id: Some("rl-many".into()),
                limit: Some(3),
                ..LineItemFilter::default()
            },
            true,
            opts(),
        )
        .await
        .unwrap();
    assert!(listing.confirmed, "{listing:?}");
    assert_eq!(listing.pages, 3);
    assert_eq!(listing.line_items.len(), 7);
    assert!(
        listing
            .line_items
            .iter()
            .all(|li| li.resource_link_id.as_deref() == Some("rl-many"))
    );
    let labels: Vec<_> = listing
        .line_items
        .iter()
        .map(|li| li.label.clone().unwrap())
        .collect();
    assert_eq!(labels.first().map(String::as_str), Some("Part 1"));
    assert_eq!(labels.last().map(String::as_str), Some("Part 7"));
    assert_eq!(
        r.state().await["requests"]["lineitems"],
        3,
        "one request per page"
    );

    // Without a filter, the context's 10 line items come on the default 10-item page.
    listing =
        r.pb.ltiaas_line_items(&t, LineItemFilter::default(), true, opts())
            .await
            .unwrap();
    assert_eq!((listing.pages, listing.line_items.len()), (1, 10));

    // Results page too: 5 learners, 2 per page, through the client.
    let members: Vec<Value> = (2..=5).map(|i| json!({"user_id": format!("u{i}")})).collect();
    r.launch(json!({"context_id": "c1", "resource_link_id": "rl1", "user_id": "u1", "members": members}))
        .await;
    for i in 1..=5 {
        let t = target("c1", "rl1", &format!("u{i}"));
        assert!(
            r.send(&t, i as f64, &LineItemChoice::default(), once())
                .await
                .confirmed
        );
    }
    let client = LtiaasClient::new(&r.sb.info.ltiaas_base_url, opts()).unwrap();
    let auth =
        LtiaasAuth::service_key(&r.sb.info.ltiaas_api_key, l["service_key"].as_str().unwrap()).unwrap();
    let x = client
        .read_scores(&auth, "https://lms.example/li/quiz-1", None, Some(2))
        .await;
    assert!(x.verdict.is_success(), "{:?}", x.verdict);
    assert_eq!(x.pages, 3);
    let mut scores: Vec<f64> = x.value.unwrap().iter().filter_map(|s| s.result_score).collect();
    scores.sort_by(f64::total_cmp);
    assert_eq!(scores, vec![1.0, 2.0, 3.0, 4.0, 5.0]);

    // Several line items on one link: nothing is guessed.
    r.launch(json!({"context_id": "c1", "resource_link_id": "rl-many", "user_id": "u1"}))
        .await;
    let ltik = r
        .launch(json!({"context_id": "c1", "resource_link_id": "rl-many", "user_id": "u1"}))
        .await["ltik"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(r.capture(&ltik).await.ok);
    let rep = r
        .send(
            &target("c1", "rl-many", "u1"),
            1.0,
            &LineItemChoice::default(),
            once(),
        )
        .await;
    assert!(!rep.confirmed);
    assert_eq!(rep.error_class, Some(ErrorClass::Permanent));
    assert!(rep.description.contains("7 line items"), "{}", rep.description);
    assert!(rep.fix_hint.unwrap().contains("--line-item"));
    assert!(rep.attempts.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_stale_service_key_needs_a_fresh_launch() {
    let r = rig().await;
    let first = r.captured_learner("u1").await;
    let t = target("c1", "rl1", "u1");
    assert!(
        r.send(&t, 5.0, &LineItemChoice::default(), once())
            .await
            .confirmed
    );
    let before = r.pb.ltiaas_service_keys(Some("lti")).await.unwrap()[0]
        .captured_at
        .clone();

    r.admin("revoke", json!({"context_id": "c1", "resource_link_id": "rl1"}))
        .await;
    let rep = r
        .send(&t, 6.0, &LineItemChoice::default(), RetryPolicy::default())
        .await;
    assert!(!rep.confirmed);
    assert_eq!(rep.error_class, Some(ErrorClass::Auth), "{rep:?}");
    assert_eq!(rep.attempts.len(), 1, "auth failures are not retried");
    assert_eq!(rep.attempts[0].http_status, Some(401));
    assert!(
        rep.description.contains("Invalid or expired service key"),
        "{}",
        rep.description
    );
    let hint = rep.fix_hint.unwrap();
    assert!(hint.contains("needs a fresh launch"), "{hint}");
    assert!(hint.contains("captured") && hint.contains(&before), "{hint}");
    // A lookup with the stale key fails the same way, before anything is journaled.
    let refresh = LineItemChoice {
        refresh: true,
        ..LineItemChoice::default()
    };
    let rep = r.send(&t, 6.0, &refresh, once()).await;
    assert_eq!(rep.error_class, Some(ErrorClass::Auth));
    assert!(
        rep.description.starts_with("looking up the line item"),
        "{}",
        rep.description
    );

    // The old ltik is expired too: capturing with it says so.
    r.admin("revoke", json!({"ltik": first["ltik"]})).await;
    let rep = r.capture(first["ltik"].as_str().unwrap()).await;
    assert!(!rep.ok);
    assert_eq!(rep.error_class, Some(ErrorClass::Auth));
    assert!(rep.fix_hint.unwrap().contains("ltik"));

    // A fresh launch brings a new key; the newest capture wins and sending works again.
    let fresh = r.captured_learner("u1").await;
    assert_ne!(fresh["service_key"], first["service_key"]);
    let keys = r.pb.ltiaas_service_keys(Some("lti")).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].captured_at > before);
    let rep = r.send(&t, 6.0, &LineItemChoice::default(), once()).await;
    assert!(rep.confirmed, "{rep:?}");
    assert_eq!(
        rep.service_key_captured_at.as_deref(),
        Some(keys[0].captured_at.as_str())
    );
}

#[tokio::test]
async fn lms_refusals_are_permanent_and_never_retried() {
    let r = rig().await;
    r.captured_learner("u1").await;
    r.launch(json!({
        "context_id": "c1", "resource_link_id": "rl1", "user_id": "teacher", "roles": [INSTRUCTOR],
        "members": [{"user_id": "u2"}, {"user_id": "u3"}],
    }))
    .await;
    r.admin(
        "refusals",
        json!({"context_id": "c1", "user_id": "u2", "refusal": "max_attempts"}),
    )
    .await;
    let cases = [
        (
            "teacher",
            "User not found in course or is not a student",
            "not a gradable student",
        ),
        (
            "stranger",
            "User not found in course or is not a student",
            "not a gradable student",
        ),
        ("u2", "maximum number of allowed attempts", "no more attempts"),
    ];
    for (user, words, hint) in cases {
        let rep = r
            .send(
                &target("c1", "rl1", user),
                5.0,
                &LineItemChoice::default(),
                RetryPolicy::default(),
            )
            .await;
        assert!(!rep.confirmed, "{user}");
        assert_eq!(rep.error_class, Some(ErrorClass::Permanent), "{user}: {rep:?}");
        assert_eq!(
            rep.attempts.len(),
            1,
            "{user}: permanent failures are never retried"
        );
        assert_eq!(rep.attempts[0].http_status, Some(422));
        assert!(rep.description.contains(words), "{user}: {}", rep.description);
        assert!(rep.description.contains("(from the LMS)"), "{}", rep.description);
        assert!(rep.fix_hint.unwrap().contains(hint), "{user}");
    }
    r.admin(
        "refusals",
        json!({"context_id": "c1", "refusal": "course_concluded"}),
    )
    .await;
    let rep = r
        .send(
            &target("c1", "rl1", "u3"),
            5.0,
            &LineItemChoice::default(),
            RetryPolicy::default(),
        )
        .await;
    assert_eq!(rep.error_class, Some(ErrorClass::Permanent));
    assert!(
        rep.description.contains("This course has concluded"),
        "{}",
        rep.description
    );
    assert!(rep.fix_hint.unwrap().contains("reopen"));
    // Reads still work in a concluded course.
    assert!(
        r.read(&target("c1", "rl1", "u3"), &LineItemChoice::default())
            .await
            .confirmed
    );
    let st = r.state().await;
    assert_eq!(st["score_posts"].as_array().unwrap().len(), 4);
    assert_eq!(Rig::accepted_posts(&st), 0);
    let journal = r.pb.store().recent_attempts(10).await.unwrap();
    assert!(
        journal.iter().filter(|a| a.operation == "score").all(|a| {
            a.outcome == AttemptOutcome::Failure && a.error_class == Some(ErrorClass::Permanent)
        })
    );
}

#[tokio::test]
async fn rate_limits_wait_as_told_and_never_duplicate_a_score() {
    let r = rig().await;
    r.captured_learner("u1").await;
    let t = target("c1", "rl1", "u1");
    r.faults(script(&[Fault::RateLimit], 1)).await;
    let t0 = Instant::now();
    let rep = r.send(&t, 9.0, &LineItemChoice::default(), quick(3)).await;
    assert!(rep.confirmed, "{rep:?}");
    assert_eq!(rep.attempts.len(), 2);
    assert_eq!(rep.attempts[0].http_status, Some(429));
    assert_eq!(rep.attempts[0].error_class, Some(ErrorClass::Transient));
    assert!(
        rep.attempts[1].waited_before_ms >= 1000,
        "waited as Retry-After said"
    );
    assert!(t0.elapsed() >= Duration::from_secs(1));
    let journal = r.pb.store().recent_attempts(10).await.unwrap();
    assert_eq!(journal.len(), 2);
    assert!(
        journal[0].message_identifier > journal[1].message_identifier,
        "each attempt carries a fresh, later timestamp"
    );
    assert_eq!(Rig::accepted_posts(&r.state().await), 1, "no duplicate score");

    // A Retry-After longer than Passback waits stops the run with a hint.
    r.faults(script(&[Fault::RateLimit], 120)).await;
    let rep = r
        .send(&t, 9.0, &LineItemChoice::default(), RetryPolicy::default())
        .await;
    assert!(!rep.confirmed);
    assert_eq!(rep.attempts.len(), 1);
    assert_eq!(rep.error_class, Some(ErrorClass::Transient));
    assert!(rep.fix_hint.unwrap().contains("120 s"));
}

#[tokio::test]
async fn server_faults_are_transient_and_retried() {
    for fault in [
        Fault::Status500,
        Fault::Status503,
        Fault::Reset,
        Fault::MalformedXml,
        Fault::Hang,
    ] {
        let r = rig().await;
        r.captured_learner("u1").await;
        r.faults(script(&[fault], 0)).await;
        let rep = r
            .send(
                &target("c1", "rl1", "u1"),
                4.0,
                &LineItemChoice::default(),
                quick(2),
            )
            .await;
        assert_eq!(rep.attempts.len(), 2, "{fault:?}: {rep:?}");
        assert_eq!(
            rep.attempts[0].error_class,
            Some(ErrorClass::Transient),
            "{fault:?}"
        );
        assert!(rep.confirmed, "{fault:?}: the retry goes through");
        assert_eq!(Rig::accepted_posts(&r.state().await), 1);
    }
    // An HTML login page is not LTIAAS: permanent, with the page quoted.
    let r = rig().await;
    r.captured_learner("u1").await;
    r.faults(script(&[Fault::HtmlPage], 0)).await;
    let rep = r
        .send(
            &target("c1", "rl1", "u1"),
            4.0,
            &LineItemChoice::default(),
            quick(3),
        )
        .await;
    assert!(!rep.confirmed);
    assert_eq!(rep.error_class, Some(ErrorClass::Permanent));
    assert!(rep.description.contains("<html>"), "{}", rep.description);
}

#[tokio::test]
async fn a_score_of_zero_is_a_real_score() {
    let r = rig().await;
    r.captured_learner("u1").await;
    let t = target("c1", "rl1", "u1");
    let rep = r.send(&t, 0.0, &LineItemChoice::default(), once()).await;
    assert!(rep.confirmed, "{rep:?}");
    let st = r.state().await;
    assert_eq!(st["score_posts"][0]["score_given"], 0.0);
    assert_eq!(st["scores"][0]["result_score"], 0.0);
    let read = r.read(&t, &LineItemChoice::default()).await;
    assert!(read.confirmed);
    assert_eq!(read.read_score, Some(0.0), "0 is a grade, not 'no grade'");
    // A learner with nothing stored reads as no grade.
    r.launch(json!({"context_id": "c1", "resource_link_id": "rl1", "user_id": "u9"}))
        .await;
    let none = r
        .read(&target("c1", "rl1", "u9"), &LineItemChoice::default())
        .await;
    assert!(none.confirmed);
    assert_eq!(none.read_score, None);
    assert!(none.result.is_none());
}

#[tokio::test]
async fn line_item_ids_with_slash_question_mark_and_percent_are_encoded_once() {
    let r = rig().await;
    r.captured_learner("u1").await;
    let odd = "https://lms.example/api/lti/courses/7/line_items/12?type_id=3&note=100%25/done";
    r.admin(
        "lineitems",
        json!({"context_id": "c1", "resource_link_id": "rl-odd", "id": odd, "label": "Odd"}),
    )
    .await;
    let t = target("c1", "rl1", "u1");
    let given = LineItemChoice {
        line_item_id: Some(odd.into()),
        ..LineItemChoice::default()
    };
    let rep = r.send(&t, 6.5, &given, once()).await;
    assert!(rep.confirmed, "{rep:?}");
    assert_eq!(rep.line_item_source, Some(LineItemSource::Given));
    let read = r.read(&t, &given).await;
    assert_eq!(read.read_score, Some(0.65), "{read:?}");
    let st = r.state().await;
    assert_eq!(
        st["score_posts"][0]["line_item_id"], odd,
        "the sandbox decoded exactly the id"
    );

    // Found by lookup too (through another link's key).
    let ltik = r
        .launch(json!({"context_id": "c1", "resource_link_id": "rl-odd", "user_id": "u1"}))
        .await["ltik"]
        .as_str()
        .unwrap()
        .to_string();
    let cap = r.capture(&ltik).await;
    assert_eq!(cap.launch.unwrap().line_item_id.as_deref(), Some(odd));
    let rep = r
        .send(
            &target("c1", "rl-odd", "u1"),
            7.5,
            &LineItemChoice {
                refresh: true,
                ..LineItemChoice::default()
            },
            once(),
        )
        .await;
    assert!(rep.confirmed, "{rep:?}");
    assert_eq!(rep.line_item_id.as_deref(), Some(odd));

    // Double encoding or no encoding misses the line item (the sandbox is strict).
    let auth_header = format!(
        "SERVICE-AUTH-V1 {}:{}",
        r.sb.info.ltiaas_api_key,
        r.launch(json!({"context_id": "c1", "resource_link_id": "rl1", "user_id": "u1"}))
            .await["service_key"]
            .as_str()
            .unwrap()
    );
    let once_enc = passback::ltiaas::client::encode_component(odd);
    for path in [
        format!(
            "/api/lineitems/{}/scores",
            passback::ltiaas::client::encode_component(&once_enc)
        ),
        format!("/api/lineitems/{odd}/scores"),
    ] {
        let resp = r
            .http
            .get(format!("{}{path}", r.sb.info.base_url))
            .header("Authorization", &auth_header)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path}");
    }
}

#[tokio::test]
async fn timestamps_strictly_increase_and_the_lms_would_refuse_a_replay() {
    let r = rig().await;
    r.captured_learner("u1").await;
    let t = target("c1", "rl1", "u1");
    let mut stamps = Vec::new();
    for i in 0..5 {
        let rep = r.send(&t, i as f64, &LineItemChoice::default(), once()).await;
        assert!(rep.confirmed, "{rep:?}");
        stamps.push(rep.timestamp.unwrap());
    }
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
    assert!(
        stamps
            .iter()
            .all(|s| s.len() == "2026-01-01T00:00:00.000Z".len() && s.ends_with('Z'))
    );
    assert_eq!(Rig::accepted_posts(&r.state().await), 5);

    // Replaying an old timestamp is what the LMS refuses: a permanent failure with a clock hint.
    let client = LtiaasClient::new(&r.sb.info.ltiaas_base_url, opts()).unwrap();
    let sk = r.pb.ltiaas_service_keys(None).await.unwrap()[0]
        .secret_ref
        .clone();
    let key =
        r.pb.secrets()
            .get_bound(&passback::secrets::SecretRef::parse(&sk).unwrap())
            .await
            .unwrap()
            .secret;
    let auth = LtiaasAuth::service_key(&r.sb.info.ltiaas_api_key, &key).unwrap();
    let body = ScoreToSend::final_score("u1", 1.0, 10.0).body(stamps[0].clone());
    let req = client
        .score_request("https://lms.example/li/quiz-1", &body)
        .unwrap();
    let x = client.post_score(&auth, &req).await;
    assert_eq!(x.http_status, Some(400));
    assert_eq!(x.verdict.error_class, Some(ErrorClass::Permanent));
    assert!(x.verdict.fix_hint.unwrap().contains("clock"));
}

#[tokio::test]
async fn a_line_item_is_created_only_when_asked() {
    let r = rig().await;
    let l = r
        .launch(json!({"context_id": "c2", "resource_link_id": "rl-new", "user_id": "u1"}))
        .await;
    assert!(r.capture(l["ltik"].as_str().unwrap()).await.ok);
    let t = target("c2", "rl-new", "u1");
    let rep = r.send(&t, 3.0, &LineItemChoice::default(), once()).await;
    assert!(!rep.confirmed);
    assert_eq!(rep.error_class, Some(ErrorClass::Permanent));
    assert!(rep.fix_hint.unwrap().contains("--create-line-item"));
    let create = LineItemChoice {
        create_label: Some("Essay".into()),
        ..LineItemChoice::default()
    };
    let rep = r.send(&t, 3.0, &create, once()).await;
    assert!(rep.confirmed, "{rep:?}");
    assert_eq!(rep.line_item_source, Some(LineItemSource::Created));
    let st = r.state().await;
    let items = st["line_items"]["c2"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["label"], "Essay");
    assert_eq!(items[0]["resourceLinkId"], "rl-new");
    assert_eq!(items[0]["scoreMaximum"], 10.0);
    // Next time the activity remembers it; nothing new is created.
    let rep = r.send(&t, 4.0, &create, once()).await;
    assert_eq!(rep.line_item_source, Some(LineItemSource::Ledger));
    assert_eq!(r.state().await["line_items"]["c2"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn capture_records_roles_and_says_when_there_is_no_service_key() {
    let r = rig().await;
    let l = r
        .launch(
            json!({"context_id": "c3", "resource_link_id": "rl3", "user_id": "t1", "roles": [
                "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant", INSTRUCTOR,
            ]}),
        )
        .await;
    let rep = r.capture(l["ltik"].as_str().unwrap()).await;
    assert!(rep.ok);
    assert_eq!(rep.launch.unwrap().role, Role::TeachingAssistant);

    let l = r
        .launch(json!({"context_id": "c4", "resource_link_id": "rl4", "user_id": "u4", "ags": false}))
        .await;
    assert!(l["service_key"].is_null());
    let rep = r.capture(l["ltik"].as_str().unwrap()).await;
    assert!(!rep.ok);
    assert_eq!(rep.error_class, Some(ErrorClass::Permanent));
    assert_eq!(rep.launch.as_ref().unwrap().service_key, KeyChange::Missing);
    assert!(rep.fix_hint.unwrap().contains("Assignment and Grades"));
    // The ledger knows the launch, but no key: sending says to capture one.
    let e =
        r.pb.ltiaas_send_one(
            &target("c4", "rl4", "u4"),
            &ScoreToSend::final_score("u4", 1.0, 2.0),
            &LineItemChoice::default(),
            once(),
            opts(),
        )
        .await
        .unwrap_err();
    assert!(e.message.contains("passback ltiaas idtoken"), "{}", e.message);
    let (learners,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM learners")
        .fetch_one(r.pb.store().pool())
        .await
        .unwrap();
    assert_eq!(learners, 2);
}

#[tokio::test]
async fn header_formats_and_keys_are_checked_with_ltiaas_401s() {
    let r = rig().await;
    let l = r.captured_learner("u1").await;
    let key = l["service_key"].as_str().unwrap();
    let ltik = l["ltik"].as_str().unwrap();
    let api = &r.sb.info.ltiaas_api_key;
    let cases = [
        (
            "/api/lineitems",
            None,
            "MISSING_OR_MALFORMED_AUTHORIZATION_HEADER",
        ),
        (
            "/api/lineitems",
            Some(format!("Bearer {api}")),
            "MISSING_OR_MALFORMED_AUTHORIZATION_HEADER",
        ),
        (
            "/api/lineitems",
            Some(format!("SERVICE-AUTH-V1 {api}")),
            "MISSING_OR_MALFORMED_AUTHORIZATION_HEADER",
        ),
        (
            "/api/lineitems",
            Some(format!("SERVICE-AUTH-V1 wrong:{key}")),
            "INVALID_API_KEY",
        ),
        (
            "/api/lineitems",
            Some(format!("SERVICE-AUTH-V1 {api}:nope")),
            "INVALID_SERVICE_KEY_AUTH_AUTHORIZATION_HEADER",
        ),
        (
            "/api/idtoken",
            Some(format!("SERVICE-AUTH-V1 {api}:{key}")),
            "INVALID_LTIK_AUTH_AUTHORIZATION_HEADER",
        ),
        (
            "/api/idtoken",
            Some(format!("LTIK-AUTH-V2 {api}:nope")),
            "INVALID_LTIK_AUTH_AUTHORIZATION_HEADER",
        ),
    ];
    for (path, auth, code) in cases {
        let mut req = r.http.get(format!("{}{path}", r.sb.info.base_url));
        if let Some(a) = &auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{auth:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"], 401);
        assert_eq!(body["error"], "Unauthorized");
        assert_eq!(body["details"]["message"], code, "{auth:?}");
        let text = body.to_string();
        assert!(!text.contains(key) && !text.contains(api), "no key echoed");
    }
    let ok = r
        .http
        .get(format!("{}/api/idtoken", r.sb.info.base_url))
        .header("Authorization", format!("LTIK-AUTH-V2 {api}:{ltik}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
}

#[tokio::test]
async fn keys_never_reach_the_ledger_the_journal_or_a_dry_run() {
    let r = rig_with(|c| c.ltiaas_page_size = 2).await;
    let first = r.captured_learner("u1").await;
    let t = target("c1", "rl1", "u1");
    assert!(
        r.send(&t, 7.0, &LineItemChoice::default(), once())
            .await
            .confirmed
    );
    r.admin("revoke", json!({"service_key": first["service_key"]}))
        .await;
    let failed = r.send(&t, 7.5, &LineItemChoice::default(), once()).await;
    assert_eq!(failed.error_class, Some(ErrorClass::Auth));
    let second = r.captured_learner("u1").await;
    assert!(r.read(&t, &LineItemChoice::default()).await.confirmed);
    let dry =
        r.pb.ltiaas_dry_run(
            &t,
            &ScoreToSend::final_score("u1", 7.0, 10.0),
            &LineItemChoice {
                refresh: true,
                create_label: Some("Quiz".into()),
                ..LineItemChoice::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(dry.requests.len(), 3, "lookup, create, score");
    assert!(
        dry.requests[2]
            .url
            .contains("/api/lineitems/{LINE_ITEM_ID}/scores"),
        "{:?}",
        dry.requests[2]
    );
    assert_eq!(
        dry.requests[2].authorization,
        "SERVICE-AUTH-V1 <API_KEY>:<SERVICE_KEY>"
    );
    let dry_json = serde_json::to_string(&dry).unwrap();

    r.pb.store().checkpoint().await.unwrap();
    let attempts = serde_json::to_string(&r.pb.store().recent_attempts(100).await.unwrap()).unwrap();
    let bytes = r.ledger.contents_async().await;
    assert!(
        crate::common::contains(&bytes, b"service-key/lti/c1/rl1"),
        "the ledger file holds the reference"
    );
    let secrets = [
        r.sb.info.ltiaas_api_key.clone(),
        first["service_key"].as_str().unwrap().to_string(),
        second["service_key"].as_str().unwrap().to_string(),
        first["ltik"].as_str().unwrap().to_string(),
        second["ltik"].as_str().unwrap().to_string(),
    ];
    for s in &secrets {
        assert!(
            !crate::common::contains(&bytes, s.as_bytes()),
            "{s} is in the ledger file"
        );
        assert!(!attempts.contains(s.as_str()), "{s} is in the journal");
        assert!(!dry_json.contains(s.as_str()), "{s} is in the dry run");
    }
    assert!(attempts.contains("SERVICE-AUTH-V1 [redacted]"));
    // The keyring holds the newest key under the reference the ledger names.
    let k = &r.pb.ltiaas_service_keys(None).await.unwrap()[0];
    let stored =
        r.pb.secrets()
            .get_bound(&passback::secrets::SecretRef::parse(&k.secret_ref).unwrap())
            .await
            .unwrap()
            .secret;
    assert_eq!(stored, secrets[2]);
}
