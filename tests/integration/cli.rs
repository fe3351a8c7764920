//! The `passback` CLI end to end: spawned binary, temporary ledger, real OS keyring.

use crate::common::{TempLedger, contains, require_secret_service};
use predicates::prelude::*;
use serde_json::Value;

fn add_demo(l: &TempLedger, secret: &str) {
    l.cmd()
        .args([
            "platform",
            "add-lti11",
            "--name",
            "demo",
            "--consumer-key",
            "k1",
            "--allow-host",
            "127.0.0.1",
            "--allow-http",
        ])
        .write_stdin(secret)
        .assert()
        .success()
        .stdout(predicate::str::contains("Added platform demo"));
}

#[test]
fn add_lti11_then_list_json_shows_the_platform_and_never_the_secret() {
    require_secret_service();
    let l = TempLedger::new();
    let secret = format!("shh-secret-{}", uuid_like());
    add_demo(&l, &secret);

    let out = l
        .cmd()
        .args(["platform", "list", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains(&secret), "the secret must never be printed");
    let v: Value = serde_json::from_str(&text).unwrap();
    let p = &v.as_array().unwrap()[0];
    assert_eq!(p["name"], "demo");
    assert_eq!(p["kind"], "lti11");
    assert_eq!(p["consumer_key"], "k1");
    assert_eq!(p["allowed_hosts"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(p["allow_http"], true);

    // The secret is in the OS keyring, readable by the core through its reference...
    l.cmd()
        .args(["doctor"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Keyring:  ok"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pb = l.open_passback(passback::secrets::Secrets::os().await).await;
        let platform = pb.platform("demo").await.unwrap();
        assert_eq!(pb.platform_secret(&platform).await.unwrap().1.secret, secret);
        pb.store().checkpoint().await.unwrap();
        pb.store().close().await;
    });
    // ...and never in the SQLite file (or its WAL).
    let bytes = l.contents();
    assert!(l.is_team() || bytes.len() > 4096, "the ledger file exists");
    assert!(contains(&bytes, b"k1"), "sanity: the consumer key is stored");
    assert!(
        !contains(&bytes, secret.as_bytes()),
        "the secret bytes must not be in the ledger"
    );
}

#[test]
fn secret_from_env_and_duplicate_names_and_removal() {
    require_secret_service();
    let l = TempLedger::new();
    l.cmd()
        .args([
            "platform",
            "add-ltiaas",
            "--name",
            "lti-aas",
            "--base-url",
            "https://tool.ltiaas.example",
        ])
        .args(["--secret-env", "PB_TEST_KEY"])
        .env("PB_TEST_KEY", "api-key-123")
        .assert()
        .success();
    l.cmd()
        .args([
            "platform",
            "add-ltiaas",
            "--name",
            "lti-aas",
            "--base-url",
            "https://tool.ltiaas.example",
        ])
        .args(["--secret-env", "PB_TEST_KEY"])
        .env("PB_TEST_KEY", "api-key-123")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already exists"));
    l.cmd()
        .args([
            "platform",
            "add-ltiaas",
            "--name",
            "x",
            "--base-url",
            "https://a.example",
        ])
        .args(["--secret-env", "PB_UNSET_VAR_XYZ"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("PB_UNSET_VAR_XYZ is not set"));
    l.cmd().args(["platform", "list"]).assert().success().stdout(
        predicate::str::contains("lti-aas").and(predicate::str::contains("https://tool.ltiaas.example")),
    );
    l.cmd()
        .args(["platform", "remove", "lti-aas"])
        .assert()
        .success()
        .stdout(predicate::str::contains("1 keyring entry"));
    l.cmd()
        .args(["platform", "remove", "lti-aas"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no platform named"));
    l.cmd()
        .args(["platform", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("No platforms yet"));
}

#[test]
fn grades_listing_with_json_and_confirmation_on_remove() {
    require_secret_service();
    let l = TempLedger::new();
    add_demo(&l, "s");
    l.cmd()
        .args(["grades"])
        .assert()
        .success()
        .stdout(predicate::str::contains("No grades"));
    for score in ["7", "7", "8.5"] {
        l.cmd()
            .args([
                "grade",
                "set",
                "--platform",
                "demo",
                "--context",
                "c1",
                "--resource-link",
                "r1",
            ])
            .args([
                "--user", "u1", "--score", score, "--max", "10", "--title", "Quiz 1",
            ])
            .assert()
            .success();
    }
    let out = l
        .cmd()
        .args(["grades", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["version"], 2, "the repeated 7 did not make a version");
    assert_eq!(rows[0]["score_given"], 8.5);
    assert_eq!(rows[0]["status"], "cannot_send");
    let acts: Value = serde_json::from_slice(
        &l.cmd()
            .args(["activities", "--json"])
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    assert_eq!(acts[0]["title"], "Quiz 1");
    assert_eq!(acts[0]["grades"], 1);
    l.cmd()
        .args(["platform", "remove", "demo"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--yes"));
    l.cmd()
        .args(["platform", "remove", "demo", "--yes"])
        .assert()
        .success();
}

#[test]
fn usage_errors_exit_2_and_failures_exit_1() {
    let l = TempLedger::new();
    l.cmd()
        .args(["platform", "add-lti11", "--name", "x"])
        .assert()
        .code(2);
    l.cmd().args(["no-such-command"]).assert().code(2);
    l.cmd()
        .args([
            "grade",
            "set",
            "--platform",
            "nope",
            "--context",
            "c",
            "--resource-link",
            "r",
        ])
        .args(["--user", "u", "--score", "1", "--max", "1"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("no platform named \"nope\"")
                .and(predicate::str::contains("platform list")),
        );
    l.cmd().arg("--help").assert().code(0);
}

#[test]
fn empty_secret_on_stdin_is_refused_without_touching_the_ledger() {
    let l = TempLedger::new();
    l.cmd()
        .args([
            "platform",
            "add-lti11",
            "--name",
            "x",
            "--consumer-key",
            "k",
            "--allow-host",
            "h.example",
        ])
        .write_stdin("\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no consumer secret given"));
    assert!(!l.path().exists(), "no ledger is created for a refused command");
}

#[test]
fn doctor_reports_the_ledger_and_schema() {
    require_secret_service();
    let l = TempLedger::new();
    let out = l
        .cmd()
        .args(["doctor", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let d: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(d["schema_version"], d["schema_latest"]);
    assert_eq!(d["keyring_ok"], true);
    assert_eq!(d["db_path"], l.db());
}

#[test]
fn passback_db_env_is_used_when_no_flag_is_given() {
    let l = TempLedger::new();
    let mut c = assert_cmd::Command::cargo_bin("passback").unwrap();
    c.env("PASSBACK_DB", l.path())
        .args(["platform", "list", "--json"])
        .assert()
        .success()
        .stdout("[]\n");
    assert!(l.path().exists());
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[test]
fn a_secret_stored_before_host_binding_is_used_nowhere_until_it_is_stored_again() {
    require_secret_service();
    let l = TempLedger::new();
    let secret = format!("old-style-{}", uuid_like());
    add_demo(&l, &secret);
    // What an older Passback left in the keyring: the bare secret, no hosts.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let secret_ref = rt.block_on(async {
        let pb = l.open_passback(passback::secrets::Secrets::os().await).await;
        let p = pb.platform("demo").await.unwrap();
        let r = passback::secrets::SecretRef::parse(&p.secret_ref).unwrap();
        pb.secrets().set_raw(&r, &secret).await.unwrap();
        pb.store().close().await;
        r
    });
    let dry = |l: &TempLedger| {
        let mut c = l.cmd();
        c.args([
            "send-one",
            "--platform",
            "demo",
            "--sourcedid",
            "sid-1",
            "--outcome-url",
            "http://127.0.0.1:9/outcomes",
            "--score",
            "0.5",
            "--dry-run",
        ]);
        c
    };
    dry(&l)
        .assert()
        .failure()
        .stderr(predicate::str::contains("without the hosts it may be sent to"))
        .stderr(predicate::str::contains("passback platform secret set"));
    // Stored again for the platform's hosts, it signs for them.
    l.cmd()
        .args(["platform", "secret", "set", "demo"])
        .write_stdin(secret.clone())
        .assert()
        .success()
        .stdout(predicate::str::contains("for 127.0.0.1 only"));
    dry(&l).assert().success();
    rt.block_on(async {
        let bound = passback::secrets::Secrets::os()
            .await
            .get_bound(&secret_ref)
            .await
            .unwrap();
        assert_eq!(
            (bound.secret.as_str(), bound.hosts.clone()),
            (secret.as_str(), vec!["127.0.0.1".to_string()])
        );
        passback::secrets::Secrets::os()
            .await
            .delete(&secret_ref)
            .await
            .unwrap();
    });
}
