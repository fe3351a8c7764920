//! `passback ltiaas …` end to end: a spawned `passback sandbox`, a temporary
//! ledger, the real OS keyring and loopback HTTP. Every output, the ledger
//! file and the journal are grepped for the API key, service keys and ltiks.

use crate::common::{SandboxProc, TempLedger, require_secret_service};
use predicates::prelude::*;
use serde_json::{Value, json};

/// Collects everything the CLI printed, to grep for secrets at the end.
#[derive(Default)]
struct Outputs(Vec<u8>);

impl Outputs {
    fn keep(&mut self, a: &assert_cmd::assert::Assert) -> String {
        let o = a.get_output();
        self.0.extend_from_slice(&o.stdout);
        self.0.extend_from_slice(&o.stderr);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

fn target(user: &str) -> [&str; 9] {
    [
        "--platform",
        "lt",
        "--context",
        "c1",
        "--resource-link",
        "rl1",
        "--user",
        user,
        "--json",
    ]
}

#[test]
fn the_sandbox_start_line_names_the_ltiaas_api_and_its_key() {
    let a = SandboxProc::start(&["--seed", "4"]);
    assert_eq!(a.s("ltiaas_base_url"), a.s("base_url"));
    assert!(!a.s("ltiaas_api_key").is_empty());
    let b = SandboxProc::start(&["--seed", "4"]);
    assert_eq!(
        a.s("ltiaas_api_key"),
        b.s("ltiaas_api_key"),
        "the seed decides the key"
    );
    let c = SandboxProc::start(&["--seed", "5"]);
    assert_ne!(a.s("ltiaas_api_key"), c.s("ltiaas_api_key"));
}

#[test]
fn capture_send_read_and_list_keys_through_the_cli() {
    require_secret_service();
    let sb = SandboxProc::start(&["--seed", "9"]);
    let l = TempLedger::new();
    let mut out = Outputs::default();
    let api_key = sb.s("ltiaas_api_key");
    l.cmd()
        .args([
            "platform",
            "add-ltiaas",
            "--name",
            "lt",
            "--base-url",
            &sb.s("ltiaas_base_url"),
        ])
        .write_stdin(api_key.as_str())
        .assert()
        .success();

    let first = sb.admin(
        "ltiaas/launches",
        json!({
            "context_id": "c1", "context_title": "Chemistry", "resource_link_id": "rl1",
            "resource_link_title": "Lab 1", "user_id": "u1", "user_name": "Grace Hopper",
            "line_item": {"label": "Lab 1", "score_maximum": 10},
            "members": [{"user_id": "teacher", "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]}],
        }),
    );
    let ltik1 = first["ltik"].as_str().unwrap().to_string();
    let a = l
        .cmd()
        .env("PASSBACK_LOG", "debug")
        .args(["ltiaas", "idtoken", "--platform", "lt", "--ltik", &ltik1])
        .assert()
        .success()
        // Still accepted, but the user is told where it shows and what to do instead.
        .stderr(predicate::str::contains(
            "warning: --ltik puts the ltik where other users",
        ))
        .stderr(predicate::str::contains("Pipe it on stdin"));
    let text = out.keep(&a);
    assert!(
        text.contains("Grace Hopper (learner) in Chemistry / Lab 1"),
        "{text}"
    );
    assert!(text.contains("captured a new service key"), "{text}");

    // A newer launch's ltik, given on stdin: the newer key replaces the older.
    let second = sb.admin(
        "ltiaas/launches",
        json!({"context_id": "c1", "resource_link_id": "rl1", "user_id": "u1"}),
    );
    let ltik2 = second["ltik"].as_str().unwrap().to_string();
    let a = l
        .cmd()
        .args(["ltiaas", "idtoken", "--platform", "lt", "--json"])
        .write_stdin(ltik2.as_str())
        .assert()
        .success();
    let cap: Value = serde_json::from_str(&out.keep(&a)).unwrap();
    assert_eq!(cap["ok"], true);
    assert_eq!(cap["launch"]["service_key"], "replaced");
    assert_eq!(cap["launch"]["role"], "learner");

    // The key's age is listed; the key itself never is.
    let a = l.cmd().args(["ltiaas", "keys"]).assert().success();
    let text = out.keep(&a);
    assert!(
        text.starts_with("PLATFORM  CONTEXT  RESOURCE LINK  CAPTURED"),
        "{text}"
    );
    assert!(text.contains("lt        c1       rl1"), "{text}");
    let a = l.cmd().args(["ltiaas", "keys", "--json"]).assert().success();
    let keys: Value = serde_json::from_str(&out.keep(&a)).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["captured_at"], cap["launch"]["captured_at"]);
    assert!(keys[0]["age_secs"].as_i64().unwrap() < 120);

    // Dry run: placeholders, nothing sent.
    let a = l
        .cmd()
        .args(["ltiaas", "send-one"])
        .args(&target("u1")[..8])
        .args(["--score", "7", "--max", "10", "--dry-run"])
        .assert()
        .success();
    let text = out.keep(&a);
    assert!(
        text.contains("Authorization: SERVICE-AUTH-V1 <API_KEY>:<SERVICE_KEY>"),
        "{text}"
    );
    assert!(text.contains("\"scoreGiven\":7.0"), "{text}");
    assert!(text.contains("POST /api/lineitems/"), "{text}");
    let a = l
        .cmd()
        .args(["ltiaas", "send-one"])
        .args(target("u1"))
        .args(["--score", "7", "--max", "10", "--dry-run"])
        .assert()
        .success();
    let dry: Value = serde_json::from_str(&out.keep(&a)).unwrap();
    assert_eq!(
        dry["requests"][0]["authorization"],
        "SERVICE-AUTH-V1 <API_KEY>:<SERVICE_KEY>"
    );
    assert_eq!(
        sb.state()["requests"]["scores_post"],
        Value::Null,
        "a dry run sends nothing"
    );

    // Send and read back, in text and JSON.
    let a = l
        .cmd()
        .env("PASSBACK_LOG", "debug")
        .args(["ltiaas", "send-one"])
        .args(&target("u1")[..8])
        .args(["--score", "7", "--max", "10", "--comment", "Well done"])
        .assert()
        .success();
    let text = out.keep(&a);
    assert!(text.contains("The LMS confirmed the score for u1"), "{text}");
    let a = l
        .cmd()
        .args(["ltiaas", "read-one"])
        .args(&target("u1")[..8])
        .assert()
        .success();
    assert!(out.keep(&a).contains("The LMS holds 7/10"));
    // A score of 0, read back as 0.
    let a = l
        .cmd()
        .args(["ltiaas", "send-one"])
        .args(target("u1"))
        .args(["--score", "0", "--max", "10"])
        .assert()
        .success();
    let sent: Value = serde_json::from_str(&out.keep(&a)).unwrap();
    assert_eq!(sent["confirmed"], true);
    let a = l
        .cmd()
        .args(["ltiaas", "read-one"])
        .args(target("u1"))
        .assert()
        .success();
    let read: Value = serde_json::from_str(&out.keep(&a)).unwrap();
    assert_eq!(read["read_score"], 0.0);
    assert_eq!(read["result"]["resultMaximum"], 10.0);

    // An LMS refusal: exit 1, class and hint on stderr, one attempt.
    let a = l
        .cmd()
        .args(["ltiaas", "send-one"])
        .args(&target("teacher")[..8])
        .args(["--score", "5", "--max", "10"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("error [permanent]")
                .and(predicate::str::contains("is not a student"))
                .and(predicate::str::contains("hint:")),
        );
    out.keep(&a);

    // 429 with Retry-After: waited and retried.
    sb.admin("faults", json!({"script": ["rate_limit"], "retry_after_secs": 1}));
    let a = l
        .cmd()
        .args(["ltiaas", "send-one"])
        .args(target("u1"))
        .args(["--score", "8", "--max", "10", "--attempts", "2"])
        .assert()
        .success();
    let rep: Value = serde_json::from_str(&out.keep(&a)).unwrap();
    assert_eq!(rep["attempts"][0]["http_status"], 429);
    assert!(rep["attempts"][1]["waited_before_ms"].as_u64().unwrap() >= 1000);

    // A stale key: exit 1, auth, "needs a fresh launch".
    sb.admin(
        "ltiaas/revoke",
        json!({"context_id": "c1", "resource_link_id": "rl1"}),
    );
    let a = l
        .cmd()
        .env("PASSBACK_LOG", "debug")
        .args(["ltiaas", "send-one"])
        .args(&target("u1")[..8])
        .args(["--score", "9", "--max", "10"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("error [auth]").and(predicate::str::contains("needs a fresh launch")),
        );
    out.keep(&a);

    // Support listing of line items.
    let third = sb.admin(
        "ltiaas/launches",
        json!({"context_id": "c1", "resource_link_id": "rl1", "user_id": "u1"}),
    );
    let a = l
        .cmd()
        .args([
            "ltiaas",
            "idtoken",
            "--platform",
            "lt",
            "--ltik",
            third["ltik"].as_str().unwrap(),
        ])
        .assert()
        .success();
    out.keep(&a);
    let a = l
        .cmd()
        .args([
            "ltiaas",
            "line-items",
            "--platform",
            "lt",
            "--context",
            "c1",
            "--resource-link",
            "rl1",
        ])
        .assert()
        .success();
    assert!(out.keep(&a).contains("Lab 1"));

    // No key, the ledger, the journal or any output holds a secret.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let journal = rt.block_on(async {
        let store = l.open_store_rw().await;
        let attempts = store.recent_attempts(100).await.unwrap();
        store.checkpoint().await.unwrap();
        store.close().await;
        serde_json::to_string(&attempts).unwrap()
    });
    assert!(journal.contains("SERVICE-AUTH-V1 [redacted]"));
    let bytes = l.contents();
    assert!(
        crate::common::contains(&bytes, b"ltiaas-idtoken"),
        "the ledger file was read"
    );
    let secrets = [
        api_key.clone(),
        ltik1,
        ltik2,
        third["ltik"].as_str().unwrap().to_string(),
        first["service_key"].as_str().unwrap().to_string(),
        second["service_key"].as_str().unwrap().to_string(),
        third["service_key"].as_str().unwrap().to_string(),
    ];
    for s in &secrets {
        assert!(
            !crate::common::contains(&bytes, s.as_bytes()),
            "{s} is in the ledger file"
        );
        assert!(!journal.contains(s.as_str()), "{s} is in the journal");
        assert!(
            !crate::common::contains(&out.0, s.as_bytes()),
            "{s} is in the CLI output"
        );
    }

    // Removing the platform clears its keyring entries: the API key and the service key.
    l.cmd()
        .args(["platform", "remove", "lt", "--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("2 keyring entries"));
    l.cmd()
        .args(["ltiaas", "keys"])
        .assert()
        .success()
        .stdout(predicate::str::contains("No LTIAAS service keys yet"));
}

#[test]
fn ltiaas_commands_need_an_ltiaas_platform_and_a_stored_key() {
    require_secret_service();
    let sb = SandboxProc::start(&[]);
    let l = TempLedger::new();
    l.cmd()
        .args([
            "platform",
            "add-lti11",
            "--name",
            "old",
            "--consumer-key",
            "k",
            "--allow-host",
            "127.0.0.1",
        ])
        .write_stdin("s")
        .assert()
        .success();
    l.cmd()
        .args(["ltiaas", "idtoken", "--platform", "old", "--ltik", "x"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("add-ltiaas"));
    l.cmd()
        .args([
            "platform",
            "add-ltiaas",
            "--name",
            "lt",
            "--base-url",
            &sb.s("ltiaas_base_url"),
        ])
        .write_stdin(sb.s("ltiaas_api_key").as_str())
        .assert()
        .success();
    l.cmd()
        .args([
            "ltiaas",
            "send-one",
            "--platform",
            "lt",
            "--context",
            "c",
            "--resource-link",
            "r",
        ])
        .args(["--user", "u", "--score", "1", "--max", "2"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("passback ltiaas idtoken --platform lt"));
    // An expired ltik: auth, with the ltik hint; the ltik is not echoed.
    let launch = sb.admin(
        "ltiaas/launches",
        json!({"context_id": "c", "resource_link_id": "r", "user_id": "u"}),
    );
    let ltik = launch["ltik"].as_str().unwrap();
    sb.admin("ltiaas/revoke", json!({"ltik": ltik}));
    l.cmd()
        .args(["ltiaas", "idtoken", "--platform", "lt", "--ltik", ltik])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("error [auth]")
                .and(predicate::str::contains("ltik is invalid or expired"))
                .and(predicate::str::contains(ltik).not()),
        );
}

#[test]
fn usage_errors_exit_2() {
    let l = TempLedger::new();
    let base = [
        "ltiaas",
        "send-one",
        "--platform",
        "p",
        "--context",
        "c",
        "--resource-link",
        "r",
        "--user",
        "u",
    ];
    l.cmd().args(base).args(["--score", "1"]).assert().code(2);
    l.cmd()
        .args(base)
        .args([
            "--score",
            "1",
            "--max",
            "2",
            "--line-item",
            "x",
            "--refresh-line-item",
        ])
        .assert()
        .code(2);
    l.cmd()
        .args(base)
        .args(["--score", "1", "--max", "2", "--grading-progress", "Done"])
        .assert()
        .code(2);
    l.cmd()
        .args([
            "ltiaas",
            "idtoken",
            "--platform",
            "p",
            "--ltik",
            "a",
            "--ltik-env",
            "X",
        ])
        .assert()
        .code(2);
}
