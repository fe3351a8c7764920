//! `passback sandbox`, `send-one`, `read-one` and `delete-one` end to end:
//! spawned binaries, a temporary ledger, the real OS keyring, loopback HTTP.

use crate::common::{SandboxProc, TempLedger, require_secret_service};
use predicates::prelude::*;
use serde_json::Value;

fn sandbox(args: &[&str]) -> SandboxProc {
    SandboxProc::start(args)
}

fn add_platform(l: &TempLedger, sb: &SandboxProc) {
    l.cmd()
        .args([
            "platform",
            "add-lti11",
            "--name",
            "sandbox",
            "--allow-host",
            "127.0.0.1",
        ])
        .args(["--consumer-key", sb.info["consumer_key"].as_str().unwrap()])
        .write_stdin(sb.info["consumer_secret"].as_str().unwrap())
        .assert()
        .success();
}

#[test]
fn the_sandbox_prints_one_json_line_with_what_a_client_needs() {
    let sb = sandbox(&["--dialect", "moodle", "--seed", "3"]);
    for key in ["base_url", "lti11_outcome_url", "consumer_key", "consumer_secret"] {
        assert!(
            sb.info[key].as_str().is_some_and(|s| !s.is_empty()),
            "{key} in {}",
            sb.info
        );
    }
    assert!(
        sb.info["base_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert_eq!(sb.info["dialect"], "moodle");
    let again = sandbox(&["--dialect", "moodle", "--seed", "3"]);
    assert_eq!(
        sb.info["consumer_secret"], again.info["consumer_secret"],
        "the seed decides the secret"
    );
}

#[test]
fn send_read_and_delete_one_against_the_sandbox() {
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("sourcedids.txt");
    std::fs::write(&ids, "# registry\nsid-1\nsid-gone user_not_in_course\n").unwrap();
    let sb = sandbox(&["--dialect", "canvas", "--sourcedids", ids.to_str().unwrap()]);
    let l = TempLedger::new();
    add_platform(&l, &sb);
    let url = sb.info["lti11_outcome_url"].as_str().unwrap().to_string();
    let secret = sb.info["consumer_secret"].as_str().unwrap().to_string();

    // Dry run: the exact request with its signature, never the secret; nothing sent.
    let out = l
        .cmd()
        .args([
            "send-one",
            "--platform",
            "sandbox",
            "--sourcedid",
            "sid-1",
            "--outcome-url",
            &url,
        ])
        .args(["--score", "0.85", "--dry-run"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("POST /api/lti/v1/tools/1/grade_passback HTTP/1.1"),
        "{text}"
    );
    assert!(
        text.contains("oauth_signature=\"[redacted]\"") && text.contains("oauth_body_hash=\""),
        "the signature is redacted: {text}"
    );
    assert!(text.contains("<textString>0.85</textString>"));
    assert!(!text.contains(&secret), "dry run must not show the secret");

    let results: Value = reqwest::blocking::get(format!(
        "{}/_sandbox/results",
        sb.info["base_url"].as_str().unwrap()
    ))
    .unwrap()
    .json()
    .unwrap();
    assert_eq!(results["total_requests"], 0, "a dry run sends nothing");

    // The JSON dry run: replaying what it shows gets nothing past the LMS, and the real
    // signature (the one the base string and the secret give) is nowhere in it.
    let out = l
        .cmd()
        .args([
            "delete-one",
            "--platform",
            "sandbox",
            "--sourcedid",
            "sid-1",
            "--outcome-url",
            &url,
            "--dry-run",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let shown: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(shown["signature_redacted"], true);
    let base = shown["base_string"].as_str().unwrap();
    let real = passback::lti11::oauth::sign(
        passback::lti11::oauth::SignatureMethod::HmacSha1,
        &secret,
        "",
        base,
    );
    let printed = String::from_utf8_lossy(&out);
    assert!(!printed.contains(&real), "the live signature leaked: {printed}");
    assert!(!printed.contains(&passback::lti11::oauth::percent_encode(&real)));
    let replay = reqwest::blocking::Client::new()
        .post(shown["url"].as_str().unwrap())
        .header("Content-Type", "application/xml")
        .header("Authorization", shown["authorization"].as_str().unwrap())
        .body(shown["body"].as_str().unwrap().to_string())
        .send()
        .unwrap();
    let answer = replay.text().unwrap();
    assert!(
        !answer.contains("<imsx_codeMajor>success</imsx_codeMajor>"),
        "a replayed dry run was accepted: {answer}"
    );

    l.cmd()
        .args([
            "send-one",
            "--platform",
            "sandbox",
            "--sourcedid",
            "sid-1",
            "--outcome-url",
            &url,
        ])
        .args(["--score", "0.85", "--text", "Essay received"])
        .assert()
        .success()
        .stdout(predicate::str::contains("The LMS confirmed the replaceResult"));
    l.cmd()
        .args([
            "read-one",
            "--platform",
            "sandbox",
            "--sourcedid",
            "sid-1",
            "--outcome-url",
            &url,
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("The LMS holds score 0.85"));
    let json = l
        .cmd()
        .args([
            "read-one",
            "--platform",
            "sandbox",
            "--sourcedid",
            "sid-1",
            "--outcome-url",
            &url,
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let rep: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(rep["confirmed"], true);
    assert_eq!(rep["read_score"], 0.85);

    // A permanent refusal: exit 1, class and hint on stderr, no retries.
    l.cmd()
        .args([
            "send-one",
            "--platform",
            "sandbox",
            "--sourcedid",
            "sid-gone",
            "--outcome-url",
            &url,
        ])
        .args(["--score", "0.5"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("error [permanent]")
                .and(predicate::str::contains("User is no longer in course"))
                .and(predicate::str::contains("hint:")),
        );

    l.cmd()
        .args([
            "delete-one",
            "--platform",
            "sandbox",
            "--sourcedid",
            "sid-1",
            "--outcome-url",
            &url,
        ])
        .assert()
        .success();
    l.cmd()
        .args([
            "read-one",
            "--platform",
            "sandbox",
            "--sourcedid",
            "sid-1",
            "--outcome-url",
            &url,
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("holds no grade"));

    // A foreign host is refused before anything is signed or sent.
    l.cmd()
        .args(["send-one", "--platform", "sandbox", "--sourcedid", "sid-1"])
        .args([
            "--outcome-url",
            "https://canvas.evil.example/api/lti/v1/tools/1/grade_passback",
            "--score",
            "1",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("allowed hosts"));

    // Every real attempt is in the journal, completed; the secret is not.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = l.open_store_rw().await;
        let attempts = store.recent_attempts(100).await.unwrap();
        assert_eq!(attempts.len(), 6);
        assert!(attempts.iter().all(|a| a.finished_at.is_some()));
        let dump = serde_json::to_string(&attempts).unwrap();
        assert!(!dump.contains(&secret));
        assert!(!dump.contains("oauth_signature=\"") || dump.contains("[redacted]"));
    });
}

#[test]
fn auth_failures_exit_1_with_the_class_and_a_hint() {
    require_secret_service();
    let sb = sandbox(&["--dialect", "sakai", "--sourcedid", "sid-1"]);
    let l = TempLedger::new();
    l.cmd()
        .args([
            "platform",
            "add-lti11",
            "--name",
            "sandbox",
            "--allow-host",
            "127.0.0.1",
        ])
        .args(["--consumer-key", sb.info["consumer_key"].as_str().unwrap()])
        .write_stdin("the-wrong-secret")
        .assert()
        .success();
    l.cmd()
        .args(["send-one", "--platform", "sandbox", "--sourcedid", "sid-1"])
        .args([
            "--outcome-url",
            sb.info["lti11_outcome_url"].as_str().unwrap(),
            "--score",
            "0.5",
        ])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("error [auth]").and(predicate::str::contains("consumer key and secret")),
        );
}

#[test]
fn usage_errors_for_send_one() {
    let l = TempLedger::new();
    l.cmd()
        .args([
            "send-one",
            "--platform",
            "p",
            "--sourcedid",
            "s",
            "--outcome-url",
            "https://x.example/o",
        ])
        .args(["--score", "0.5", "--text", "a", "--url", "https://b"])
        .assert()
        .code(2);
    l.cmd()
        .args([
            "send-one",
            "--platform",
            "p",
            "--sourcedid",
            "s",
            "--outcome-url",
            "https://x.example/o",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nothing to send"));
}

#[test]
fn a_request_to_this_computer_never_goes_through_the_environments_proxy() {
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("ids.txt");
    std::fs::write(&ids, "sid-1\n").unwrap();
    let sb = sandbox(&["--dialect", "moodle", "--sourcedids", ids.to_str().unwrap()]);
    let l = TempLedger::new();
    add_platform(&l, &sb);
    let url = sb.info["lti11_outcome_url"].as_str().unwrap().to_string();
    // A proxy that does not exist: a request routed through it would fail to connect.
    l.cmd()
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("http_proxy", "http://127.0.0.1:9")
        .env("ALL_PROXY", "http://127.0.0.1:9")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .args([
            "send-one",
            "--platform",
            "sandbox",
            "--sourcedid",
            "sid-1",
            "--outcome-url",
            &url,
        ])
        .args(["--score", "0.5", "--attempts", "1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("The LMS confirmed the replaceResult"));
}
