//! The sandbox over real HTTP on loopback: counters, score storage per dialect, the
//! throttling and notice faults, the request budget and latency under concurrency.
//! Requests are written as raw HTTP/1.1 so every header and body byte is visible.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use super::faults::{
    FORBIDDEN_RATE_LIMIT_BODY, FaultConfig, PHP_NOTICE_HTML, PHP_NOTICE_TEXT, RATE_LIMIT_JSON_BODY,
};
use super::{Dialect, Sandbox, SandboxConfig, SourcedidState};
use passback::lti11::oauth::{OAuthSigner, SignatureMethod};
use passback::lti11::pox::{
    CodeMajor, ReadScore, ReplaceResult, delete_result, new_message_identifier, parse_response, read_result,
    replace_result,
};
use passback::ltiaas::client::encode_component;

/// One HTTP answer, read whole.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
}

/// Send one request on a fresh connection (`Connection: close`) and read the answer.
async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_vec() };
    Answer {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

async fn start(dialect: Dialect) -> Sandbox {
    let mut cfg = SandboxConfig::new(dialect, 7);
    cfg.sourcedids = vec!["s1".into(), "s2".into()];
    Sandbox::start(cfg).await.unwrap()
}

/// A signed outcome request.
async fn pox(sb: &Sandbox, xml: &str) -> Answer {
    let url = Url::parse(&sb.info.lti11_outcome_url).unwrap();
    let signed = OAuthSigner::new(
        &sb.info.consumer_key,
        &sb.info.consumer_secret,
        SignatureMethod::HmacSha1,
    )
    .sign_now("POST", &url, xml.as_bytes())
    .unwrap();
    http(
        sb.addr,
        "POST",
        sb.info.dialect.outcome_path(),
        &[
            ("Content-Type", "application/xml"),
            ("Authorization", &signed.authorization),
        ],
        xml.as_bytes(),
    )
    .await
}

fn replace(sourcedid: &str, score: f64) -> String {
    replace_result(&ReplaceResult {
        message_identifier: new_message_identifier(),
        sourcedid: sourcedid.into(),
        score: Some(score),
        ..ReplaceResult::default()
    })
    .unwrap()
}

fn read(sourcedid: &str) -> String {
    read_result(&new_message_identifier(), sourcedid).unwrap()
}

fn delete(sourcedid: &str) -> String {
    delete_result(&new_message_identifier(), sourcedid).unwrap()
}

async fn results(sb: &Sandbox) -> Value {
    http(sb.addr, "GET", "/_sandbox/results", &[], b"").await.json()
}

async fn admin_post(sb: &Sandbox, path: &str, body: Value) -> Answer {
    let body = body.to_string();
    http(
        sb.addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await
}

async fn faults(sb: &Sandbox, cfg: Value) {
    let a = admin_post(sb, "/_sandbox/faults", cfg).await;
    assert_eq!(a.status, 204, "{}", a.body);
}

fn success(a: &Answer) -> bool {
    a.status == 200 && parse_response(a.body.as_bytes()).is_ok_and(|r| r.code_major == CodeMajor::Success)
}

fn read_score(a: &Answer) -> ReadScore {
    parse_response(a.body.as_bytes()).unwrap().read_score
}

// ---- Counters ----------------------------------------------------------------------

#[tokio::test]
async fn results_count_writes_and_reads_per_sourcedid() {
    let sb = start(Dialect::Canvas).await;
    sb.register(&[("gone".into(), SourcedidState::UserNotInCourse)])
        .await;
    assert!(success(&pox(&sb, &replace("s1", 0.5)).await));
    assert!(success(&pox(&sb, &replace("s1", 0.6)).await));
    assert!(success(&pox(&sb, &read("s1")).await));
    assert!(success(&pox(&sb, &delete("s1")).await));
    assert!(success(&pox(&sb, &read("s2")).await));
    // Refused by the LMS, but they reached the sourcedid check: counted.
    assert_eq!(pox(&sb, &replace("gone", 0.5)).await.status, 422);
    assert_eq!(pox(&sb, &read("unknown")).await.status, 422);
    // Refused before the sourcedid check (bad signature): not counted per sourcedid.
    let bad = http(
        sb.addr,
        "POST",
        sb.info.dialect.outcome_path(),
        &[
            ("Content-Type", "application/xml"),
            ("Authorization", "OAuth oauth_consumer_key=\"x\""),
        ],
        replace("s1", 0.1).as_bytes(),
    )
    .await;
    assert_eq!(bad.status, 401);

    let r = results(&sb).await;
    assert_eq!(r["requests"], json!({"s1": 4, "s2": 1, "gone": 1, "unknown": 1}));
    assert_eq!(r["writes"], json!({"s1": 3, "gone": 1}));
    assert_eq!(r["reads"], json!({"s1": 1, "s2": 1, "unknown": 1}));
    assert_eq!(r["total_requests"], 8);
    assert_eq!(r["total_writes"], 4);
    assert_eq!(r["total_reads"], 3);
    assert_eq!(r["throttled"], 0);
    assert_eq!(r["budget_remaining"], Value::Null);

    assert_eq!(admin_post(&sb, "/_sandbox/reset", json!({})).await.status, 204);
    let r = results(&sb).await;
    for k in ["requests", "writes", "reads", "results"] {
        assert_eq!(r[k], json!({}), "{k}");
    }
    for k in ["total_requests", "total_writes", "total_reads", "throttled"] {
        assert_eq!(r[k], 0, "{k}");
    }
    sb.stop().await;
}

// ---- What is stored ----------------------------------------------------------------

#[tokio::test]
async fn canvas_reads_back_hundredths_of_a_point_moodle_and_sakai_what_was_sent() {
    let third = 1.0 / 3.0;
    for (dialect, expect, eighth) in [
        (Dialect::Canvas, 233.0 / 700.0, 88.0 / 700.0),
        (Dialect::Moodle, third, 0.125),
        (Dialect::Sakai, third, 0.125),
    ] {
        let mut cfg = SandboxConfig::new(dialect, 7);
        cfg.sourcedids = vec!["s1".into(), "s2".into()];
        cfg.points_possible = 7.0;
        let sb = Sandbox::start(cfg).await.unwrap();
        assert!(success(&pox(&sb, &replace("s1", third)).await), "{dialect:?}");
        assert!(success(&pox(&sb, &replace("s2", 0.125)).await), "{dialect:?}");
        assert_eq!(read_score(&pox(&sb, &read("s1")).await), ReadScore::Score(expect));
        assert_eq!(read_score(&pox(&sb, &read("s2")).await), ReadScore::Score(eighth));
        assert_eq!(results(&sb).await["results"]["s1"]["score"], json!(expect));
        sb.stop().await;
    }
    // The default 100 points: a percentage with two decimals.
    let sb = start(Dialect::Canvas).await;
    assert!(success(&pox(&sb, &replace("s1", 2.0 / 3.0)).await));
    let a = pox(&sb, &read("s1")).await;
    assert!(a.body.contains("<textString>0.6667</textString>"), "{}", a.body);
    sb.stop().await;
}

// ---- The old Canvas 403 ------------------------------------------------------------

fn assert_plain_403(a: &Answer, remaining: &str, cost: &str) {
    assert_eq!(a.status, 403);
    assert_eq!(a.header("content-type"), Some("text/plain"));
    assert_eq!(a.body, FORBIDDEN_RATE_LIMIT_BODY);
    assert_eq!(a.body, "403 Forbidden (Rate Limit Exceeded)");
    assert_eq!(a.header("x-rate-limit-remaining"), Some(remaining));
    assert_eq!(a.header("x-request-cost"), Some(cost));
    assert_eq!(a.header("retry-after"), None);
}

#[tokio::test]
async fn the_forbidden_rate_limit_fault_is_old_canvas_throttling() {
    let sb = start(Dialect::Canvas).await;
    faults(&sb, json!({"script": ["403"]})).await;
    let a = pox(&sb, &replace("s1", 0.5)).await;
    assert_plain_403(&a, "0.0", "1.0");
    assert!(a.header("date").is_some());
    let r = results(&sb).await;
    assert_eq!(r["results"], json!({}), "nothing stored");
    assert_eq!(r["writes"], json!({}), "not processed");
    assert_eq!(r["total_requests"], 1);
    assert_eq!(r["throttled"], 0, "a fault, not the budget");
    // Random 403s too.
    faults(&sb, json!({"rates": [{"fault": "403", "rate": 1.0}]})).await;
    assert_plain_403(&pox(&sb, &read("s1")).await, "0.0", "1.0");
    sb.stop().await;
}

// ---- PHP notices (Moodle in debug mode) --------------------------------------------

#[tokio::test]
async fn php_notices_prefix_a_normally_processed_answer() {
    for (flag, notice) in [("notice_html", PHP_NOTICE_HTML), ("notice_text", PHP_NOTICE_TEXT)] {
        let sb = start(Dialect::Moodle).await;
        faults(&sb, json!({"script": [flag, flag, flag]})).await;
        let a = pox(&sb, &replace("s1", 0.75)).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), Some("application/xml; charset=utf-8"));
        let rest = a
            .body
            .strip_prefix(notice)
            .unwrap_or_else(|| panic!("{flag}: {}", a.body));
        assert!(rest.starts_with("<?xml"), "{rest}");
        assert_eq!(
            parse_response(rest.as_bytes()).unwrap().code_major,
            CodeMajor::Success
        );
        // The read is answered normally too, behind the notice.
        let a = pox(&sb, &read("s1")).await;
        let rest = a.body.strip_prefix(notice).unwrap();
        assert_eq!(
            parse_response(rest.as_bytes()).unwrap().read_score,
            ReadScore::Score(0.75)
        );
        // A refusal keeps its (Moodle: 200) status and gets the notice as well.
        let a = pox(&sb, &replace("nobody", 0.5)).await;
        assert_eq!(a.status, 200);
        let rest = a.body.strip_prefix(notice).unwrap();
        assert_eq!(
            parse_response(rest.as_bytes()).unwrap().code_major,
            CodeMajor::Failure
        );
        let r = results(&sb).await;
        assert_eq!(r["results"]["s1"]["score"], 0.75, "stored");
        assert_eq!(r["writes"], json!({"s1": 1, "nobody": 1}));
        assert_eq!(r["reads"], json!({"s1": 1}));
        // Script used up: plain answers again.
        assert!(pox(&sb, &read("s1")).await.body.starts_with("<?xml"));
        sb.stop().await;
    }
    // In the Canvas dialect the status stays what it would be (422 for an unknown sourcedid).
    let sb = start(Dialect::Canvas).await;
    faults(&sb, json!({"script": ["notice_text"]})).await;
    let a = pox(&sb, &read("nobody")).await;
    assert_eq!(a.status, 422);
    assert!(a.body.starts_with(PHP_NOTICE_TEXT));
    sb.stop().await;
}

// ---- The request budget ------------------------------------------------------------

#[tokio::test]
async fn the_budget_charges_every_answer_and_throttles_with_a_json_429() {
    let sb = start(Dialect::Canvas).await;
    faults(&sb, json!({"budget": "100:0:40"})).await;
    let a = pox(&sb, &replace("s1", 0.5)).await;
    assert!(success(&a));
    assert_eq!(a.header("x-request-cost"), Some("40.0"));
    assert_eq!(a.header("x-rate-limit-remaining"), Some("60.0"));
    let a = pox(&sb, &read("s1")).await;
    assert!(success(&a));
    assert_eq!(a.header("x-rate-limit-remaining"), Some("20.0"));
    // Too little left: throttled, not processed.
    let a = pox(&sb, &replace("s1", 0.9)).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.body, RATE_LIMIT_JSON_BODY);
    assert_eq!(a.header("retry-after"), None);
    assert_eq!(a.header("x-request-cost"), Some("40.0"));
    assert_eq!(a.header("x-rate-limit-remaining"), Some("20.0"));
    let r = results(&sb).await;
    assert_eq!(
        r["results"]["s1"]["score"], 0.5,
        "the throttled write was not stored"
    );
    assert_eq!(r["throttled"], 1);
    assert_eq!(r["total_requests"], 3);
    assert_eq!(r["writes"], json!({"s1": 1}));
    assert_eq!(r["reads"], json!({"s1": 1}));
    assert_eq!(r["budget_remaining"], 20.0);
    // A reset fills the bucket again.
    admin_post(&sb, "/_sandbox/reset", json!({})).await;
    let r = results(&sb).await;
    assert_eq!(
        (r["budget_remaining"].clone(), r["throttled"].clone()),
        (json!(100.0), json!(0))
    );
    sb.stop().await;
}

#[tokio::test]
async fn the_budget_can_throttle_like_old_canvas_and_faults_still_cost() {
    let sb = start(Dialect::Sakai).await;
    faults(
        &sb,
        json!({
            "budget": {"capacity": 100, "leak_per_sec": 0, "cost": 30},
            "budget_exhausted": "403",
            "script": ["500", "403"],
        }),
    )
    .await;
    // An admitted request that meets a fault still costs, and says so.
    let a = pox(&sb, &replace("s1", 0.5)).await;
    assert_eq!(a.status, 500);
    assert_eq!(a.header("x-request-cost"), Some("30.0"));
    assert_eq!(a.header("x-rate-limit-remaining"), Some("70.0"));
    // A scripted 403 costs the budget's cost and claims an empty bucket.
    assert_plain_403(&pox(&sb, &replace("s1", 0.5)).await, "0.0", "30.0");
    let a = pox(&sb, &replace("s1", 0.5)).await;
    assert!(success(&a));
    assert_eq!(a.header("x-rate-limit-remaining"), Some("10.0"));
    // The budget's own 403 says what is left.
    assert_plain_403(&pox(&sb, &read("s1")).await, "10.0", "30.0");
    let r = results(&sb).await;
    assert_eq!(r["throttled"], 1);
    assert_eq!(r["reads"], json!({}));
    // Changing only the script keeps the level; dropping the budget drops the headers.
    faults(
        &sb,
        json!({"budget": "100:0:30", "budget_exhausted": "403", "script": []}),
    )
    .await;
    assert_eq!(pox(&sb, &read("s1")).await.status, 403);
    faults(&sb, json!({})).await;
    let a = pox(&sb, &read("s1")).await;
    assert!(success(&a));
    assert_eq!(a.header("x-request-cost"), None);
    assert_eq!(a.header("x-rate-limit-remaining"), None);
    sb.stop().await;
}

#[tokio::test]
async fn the_budget_refills_on_the_real_clock() {
    let sb = start(Dialect::Canvas).await;
    // 1 unit per ms: a request costing 50 is throttled at once, let through 80 ms later.
    faults(&sb, json!({"budget": "50:1000:50"})).await;
    assert!(success(&pox(&sb, &read("s1")).await));
    tokio::time::sleep(Duration::from_millis(80)).await;
    let a = pox(&sb, &read("s1")).await;
    assert!(success(&a), "{a:?}");
    let remaining: f64 = a.header("x-rate-limit-remaining").unwrap().parse().unwrap();
    assert!((0.0..50.0).contains(&remaining), "{remaining}");
    sb.stop().await;
}

// ---- LTIAAS ------------------------------------------------------------------------

struct LtiaasLaunch {
    auth: String,
    line_item: String,
}

async fn ltiaas_launch(sb: &Sandbox) -> LtiaasLaunch {
    let a = admin_post(
        sb,
        "/_sandbox/ltiaas/launches",
        json!({
            "context_id": "c1", "resource_link_id": "rl1", "user_id": "u1",
            "line_item": {"label": "Quiz", "score_maximum": 10},
            "members": [{"user_id": "u2"}],
        }),
    )
    .await;
    let j = a.json();
    LtiaasLaunch {
        auth: format!(
            "SERVICE-AUTH-V1 {}:{}",
            sb.info.ltiaas_api_key,
            j["service_key"].as_str().unwrap()
        ),
        line_item: j["line_item_id"].as_str().unwrap().to_string(),
    }
}

async fn post_score(sb: &Sandbox, l: &LtiaasLaunch, user: &str, given: f64, ts: &str) -> Answer {
    let body = json!({
        "userId": user, "scoreGiven": given, "scoreMaximum": 3.0,
        "activityProgress": "Completed", "gradingProgress": "FullyGraded", "timestamp": ts,
    })
    .to_string();
    http(
        sb.addr,
        "POST",
        &format!("/api/lineitems/{}/scores", encode_component(&l.line_item)),
        &[("Authorization", &l.auth), ("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await
}

async fn get_scores(sb: &Sandbox, l: &LtiaasLaunch) -> Answer {
    http(
        sb.addr,
        "GET",
        &format!("/api/lineitems/{}/scores", encode_component(&l.line_item)),
        &[("Authorization", &l.auth)],
        b"",
    )
    .await
}

async fn ltiaas_state(sb: &Sandbox) -> Value {
    http(sb.addr, "GET", "/_sandbox/ltiaas/state", &[], b"")
        .await
        .json()
}

#[tokio::test]
async fn ltiaas_state_counts_score_posts_per_user_and_reads_per_line_item() {
    let sb = start(Dialect::Canvas).await;
    let l = ltiaas_launch(&sb).await;
    assert_eq!(
        post_score(&sb, &l, "u1", 1.0, "2024-01-01T00:00:00.000Z")
            .await
            .status,
        204
    );
    assert_eq!(
        post_score(&sb, &l, "u1", 2.0, "2024-01-01T00:00:01.000Z")
            .await
            .status,
        204
    );
    // Refused (same timestamp), still counted.
    assert_eq!(
        post_score(&sb, &l, "u1", 2.0, "2024-01-01T00:00:01.000Z")
            .await
            .status,
        400
    );
    assert_eq!(
        post_score(&sb, &l, "u2", 1.0, "2024-01-01T00:00:00.000Z")
            .await
            .status,
        204
    );
    let a = get_scores(&sb, &l).await;
    assert_eq!(a.status, 200);
    // Scores are kept as received (no Canvas rounding through LTIAAS).
    let scores = a.json()["scores"].clone();
    assert!(
        scores
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["resultScore"] == 2.0 && s["resultMaximum"] == 3.0)
    );
    get_scores(&sb, &l).await;
    let s = ltiaas_state(&sb).await;
    assert_eq!(
        s["score_writes"],
        json!({ l.line_item.clone(): {"u1": 3, "u2": 1} })
    );
    assert_eq!(s["score_reads"], json!({ l.line_item.clone(): 2 }));
    assert_eq!(s["total_score_writes"], 4);
    assert_eq!(s["total_score_reads"], 2);
    assert_eq!(s["throttled"], 0);
    assert_eq!(s["requests"]["total"], 6);
    assert_eq!(
        admin_post(&sb, "/_sandbox/ltiaas/reset", json!({})).await.status,
        204
    );
    let s = ltiaas_state(&sb).await;
    assert_eq!(
        (s["score_writes"].clone(), s["score_reads"].clone()),
        (json!({}), json!({}))
    );
    assert_eq!(
        (s["total_score_writes"].clone(), s["total_score_reads"].clone()),
        (json!(0), json!(0))
    );
    sb.stop().await;
}

#[tokio::test]
async fn ltiaas_under_a_budget_and_the_new_faults() {
    let sb = start(Dialect::Canvas).await;
    let l = ltiaas_launch(&sb).await;
    faults(
        &sb,
        json!({"budget": "10:0:4", "script": ["notice_html", "notice_text"]}),
    )
    .await;
    // PHP notices: a normal JSON answer, costed.
    let a = post_score(&sb, &l, "u1", 1.5, "2024-01-01T00:00:00.000Z").await;
    assert_eq!(a.status, 204);
    assert_eq!(a.header("x-request-cost"), Some("4.0"));
    assert_eq!(a.header("x-rate-limit-remaining"), Some("6.0"));
    let a = get_scores(&sb, &l).await;
    assert_eq!(a.status, 200);
    assert!(a.body.starts_with('{'), "{}", a.body);
    assert_eq!(a.json()["scores"][0]["resultScore"], 1.5);
    assert_eq!(a.header("x-rate-limit-remaining"), Some("2.0"));
    // Throttled: the JSON 429, nothing stored.
    let a = post_score(&sb, &l, "u1", 3.0, "2024-01-01T00:00:01.000Z").await;
    assert_eq!(a.status, 429);
    assert_eq!(a.body, RATE_LIMIT_JSON_BODY);
    assert_eq!(a.header("retry-after"), None);
    assert_eq!(a.header("x-rate-limit-remaining"), Some("2.0"));
    let s = ltiaas_state(&sb).await;
    assert_eq!(s["throttled"], 1);
    assert_eq!(s["scores"][0]["result_score"], 1.5);
    assert_eq!(s["score_writes"], json!({ l.line_item.clone(): {"u1": 1} }));
    assert_eq!(s["requests"]["scores_post"], 2, "every request is counted");
    assert_eq!(s["budget_remaining"], 2.0);
    // The old Canvas 403 on the LTIAAS API too.
    faults(&sb, json!({"script": ["403"]})).await;
    assert_plain_403(&get_scores(&sb, &l).await, "0.0", "1.0");
    assert_eq!(get_scores(&sb, &l).await.status, 200);
    sb.stop().await;
}

// ---- Latency under concurrency -----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn latency_is_slept_outside_the_state_lock() {
    let sb = start(Dialect::Canvas).await;
    assert!(success(&pox(&sb, &replace("s1", 0.5)).await));
    let cfg = FaultConfig {
        latency_ms: Some((50, 50)),
        ..FaultConfig::default()
    };
    faults(&sb, serde_json::to_value(&cfg).unwrap()).await;
    let began = Instant::now();
    let sb_ref = &sb;
    let answers = futures_util::future::join_all((0..32).map(|_| async move {
        let t = Instant::now();
        let a = pox(sb_ref, &read("s1")).await;
        (a, t.elapsed())
    }))
    .await;
    let total = began.elapsed();
    for (a, took) in &answers {
        assert_eq!(read_score(a), ReadScore::Score(0.5));
        assert!(*took >= Duration::from_millis(50), "{took:?}");
    }
    // One after the other would take 32 × 50 ms = 1.6 s.
    assert!(
        total < Duration::from_secs(1),
        "32 concurrent reads took {total:?}"
    );
    assert_eq!(results(&sb).await["reads"]["s1"], 32);
    // The LTIAAS API sleeps outside the lock too.
    let l = ltiaas_launch(&sb).await;
    let began = Instant::now();
    let l_ref = &l;
    let answers =
        futures_util::future::join_all((0..32).map(|_| async move { get_scores(sb_ref, l_ref).await })).await;
    assert!(answers.iter().all(|a| a.status == 200));
    let total = began.elapsed();
    assert!(
        total < Duration::from_secs(1),
        "32 concurrent LTIAAS reads took {total:?}"
    );
    sb.stop().await;
}
