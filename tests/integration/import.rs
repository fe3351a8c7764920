//! `passback import` end to end: every fixture under `tests/fixtures/import`
//! through the spawned CLI, a temporary ledger and the real OS keyring, with
//! the exact counts and `file:line` reasons of each report.

use std::path::PathBuf;

use serde_json::Value;

use crate::common::{TempLedger, contains, ledger_bytes, require_secret_service};

const CANVAS_SECRET: &str = "canvas-secret";
const LAUNCH_URL: &str = "https://tool.example.org/lti/launch";

fn fixture(name: &str) -> String {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/import"
    ))
    .join(name);
    assert!(
        p.exists(),
        "fixture {name}: run tests/fixtures/import/make_fixtures.py"
    );
    p.to_string_lossy().into_owned()
}

/// Add the Canvas the fixtures come from, with `secret` in the keyring.
fn add_canvas(l: &TempLedger, secret: &str) {
    l.cmd()
        .args([
            "platform",
            "add-lti11",
            "--name",
            "canvas",
            "--consumer-key",
            "canvas-key",
        ])
        .args(["--allow-host", "canvas.example.edu"])
        .write_stdin(secret)
        .assert()
        .success();
}

/// A ledger with the Canvas the fixtures come from (and, with `ltiaas`, an LTIAAS account).
fn workspace(ltiaas: bool) -> TempLedger {
    require_secret_service();
    let l = TempLedger::new();
    add_canvas(&l, CANVAS_SECRET);
    if ltiaas {
        l.cmd()
            .args([
                "platform",
                "add-ltiaas",
                "--name",
                "ltiaas",
                "--base-url",
                "https://example.ltiaas.com",
            ])
            .write_stdin("ltiaas-api-key")
            .assert()
            .success();
    }
    l
}

/// What one `passback import --json` run printed.
struct Run {
    code: i32,
    reports: Vec<Value>,
    events: Vec<Value>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn report(&self) -> &Value {
        assert_eq!(
            self.reports.len(),
            1,
            "one report in {}\n{}",
            self.stdout,
            self.stderr
        );
        &self.reports[0]
    }

    /// read, imported, unchanged, quarantined, skipped.
    fn counts(&self) -> [u64; 5] {
        counts(self.report())
    }

    fn issues(&self) -> Vec<String> {
        issues(self.report())
    }

    fn notes(&self) -> Vec<String> {
        self.report()["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }
}

fn counts(r: &Value) -> [u64; 5] {
    let c = &r["counts"];
    ["read", "imported", "unchanged", "quarantined", "skipped"].map(|k| c[k].as_u64().unwrap())
}

/// `line [skipped] column: reason` for each listed issue.
fn issues(r: &Value) -> Vec<String> {
    r["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let skipped = if i["kind"] == "skipped" { " skipped" } else { "" };
            let col = i["column"].as_str().map(|c| format!(" {c}")).unwrap_or_default();
            format!("{}{skipped}{col}: {}", i["line"], i["reason"].as_str().unwrap())
        })
        .collect()
}

fn import(l: &TempLedger, args: &[&str]) -> Run {
    import_env(l, args, &[])
}

fn import_env(l: &TempLedger, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = l.cmd();
    c.arg("import").arg("--json").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let mut reports = Vec::new();
    let mut events = Vec::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("NDJSON line {line:?}: {e}"));
        if v["event"] == "report" {
            reports.push(v);
        } else {
            events.push(v);
        }
    }
    Run {
        code: out.status.code().unwrap_or(-1),
        reports,
        events,
        stdout,
        stderr,
    }
}

fn grades(l: &TempLedger, args: &[&str]) -> Vec<Value> {
    let out = l.cmd().arg("grades").arg("--json").args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// `learner activity score/max status` of each listed grade, in listing order.
fn summary(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|g| {
            format!(
                "{} {} {}/{} {}",
                g["lti_user_id"].as_str().unwrap(),
                g["resource_link_id"].as_str().unwrap(),
                g["score_given"],
                g["score_maximum"],
                g["status"].as_str().unwrap()
            )
        })
        .collect()
}

fn detail_of(rows: &[Value], user: &str, activity: &str) -> String {
    rows.iter()
        .find(|g| g["lti_user_id"] == user && g["resource_link_id"] == activity)
        .unwrap_or_else(|| panic!("{user} {activity} in {rows:?}"))["status_detail"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// A tool grade CSV written for one test: its path.
fn csv_file(dir: &tempfile::TempDir, name: &str, header: &str, rows: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, format!("{header}\n{rows}")).unwrap();
    p.to_string_lossy().into_owned()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Every row of every table the ledger's facts live in, as text, sorted: what a
/// user could see change. The batch records themselves are left out (a rejected
/// file's batch record says why nothing was kept).
fn logical_dump(l: &TempLedger) -> Vec<String> {
    runtime().block_on(async {
        let store = l.open_store().await;
        let tables = store.logical_dump().await.unwrap();
        store.close().await;
        tables
            .iter()
            .filter(|t| !["import_batches", "import_issues"].contains(&t.name.as_str()))
            .flat_map(|t| t.lines())
            .collect()
    })
}

fn query_strings(l: &TempLedger, sql: &'static str) -> Vec<String> {
    runtime().block_on(async {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let url = if l.is_team() {
            l.db().to_string()
        } else {
            format!("sqlite://{}", l.path().display())
        };
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap();
        rows.into_iter().map(|(s,)| s).collect()
    })
}

#[test]
fn tool_grade_csvs_import_once_with_bom_semicolons_decimal_commas_quoted_newlines_and_utf16() {
    let l = workspace(true);
    let csv = fixture("tool-grades.csv");
    let r = import(&l, &[&csv, "--platform", "canvas"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.counts(), [6, 6, 0, 0, 0]);
    assert_eq!(
        r.report()["counts"]["not_learners"],
        1,
        "the instructor's test attempt"
    );
    assert_eq!(r.report()["format"], "tool-csv", "detected from the header");
    assert_eq!(r.report()["status"], "imported");
    let before = logical_dump(&l);

    // The same file again: nothing new, no new version.
    let again = import(&l, &[&csv, "--platform", "canvas"]);
    assert_eq!(again.code, 0);
    assert_eq!(again.counts(), [6, 0, 6, 0, 0]);
    let after: Vec<String> = logical_dump(&l)
        .into_iter()
        .filter(|r| !r.starts_with("batch_changes"))
        .collect();
    let before: Vec<String> = before
        .into_iter()
        .filter(|r| !r.starts_with("batch_changes"))
        .collect();
    assert_eq!(before, after, "re-importing changed nothing");

    let r = import(
        &l,
        &[&fixture("tool-grades-semicolon.csv"), "--platform", "canvas"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.counts(), [3, 3, 0, 0, 0]);
    let r = import(&l, &[&fixture("tool-grades-utf16.csv"), "--platform", "canvas"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.counts(), [2, 2, 0, 0, 0]);

    let all = grades(&l, &[]);
    assert_eq!(
        summary(&all),
        [
            // Activities by name; learners in the order the files first named them.
            "u-grace lab-1 18.5/20.0 pending",
            "u-alan lab-1 15.5/20.0 pending",
            "u-barbara lab-1 17.0/20.0 cannot_send",
            "u-edsger lab-1 12.0/20.0 pending",
            "u-zoe lab-1 0.65/1.0 cannot_send",
            "u-ada quiz-1 9.0/10.0 pending",
            "u-grace quiz-1 7.5/10.0 pending",
            "u-katherine quiz-1 6.0/10.0 pending",
            "u-teacher quiz-1 10.0/10.0 cannot_send",
            "u-edsger quiz-1 8.25/10.0 cannot_send",
            "u-zoe quiz-1 0.8/1.0 cannot_send",
        ]
    );
    let zoe = all.iter().find(|g| g["lti_user_id"] == "u-zoe").unwrap();
    assert_eq!(zoe["learner_name"], "Zoë Ångström", "UTF-16 decoded");
    assert!(
        detail_of(&all, "u-barbara", "lab-1").contains("no lis_result_sourcedid"),
        "a row with no way to reach the LMS says why"
    );
    let comments = query_strings(
        &l,
        "SELECT comment FROM grades WHERE comment IS NOT NULL ORDER BY id",
    );
    assert_eq!(
        comments,
        [
            "Good work",
            "test attempt",
            "Two lines:\nwell argued",
            "Note; with a semicolon"
        ]
    );
}

#[test]
fn bad_rows_are_quarantined_with_line_column_and_reason_and_strict_rejects_the_file() {
    let l = workspace(false);
    let bad = fixture("tool-grades-bad.csv");
    let expected = [
        "3 score_given: score_given is not a number",
        "4 user_id: user_id is empty",
        "5 score_given: score_given must be 0 or more",
        "6 score_maximum: score_maximum must be above 0",
        "7 result_url: a grade carries result_text or result_url, not both",
    ];

    // Dry run: the same report, nothing written.
    let empty = logical_dump(&l);
    let dry = import(&l, &[&bad, "--dry-run"]);
    assert_eq!(dry.code, 1, "quarantined rows make the exit code 1");
    assert_eq!(dry.counts(), [7, 2, 0, 5, 0]);
    assert_eq!(dry.issues(), expected);
    assert_eq!(dry.report()["status"], "dry_run");
    let streamed: Vec<u64> = dry
        .events
        .iter()
        .filter(|e| e["event"] == "issue")
        .map(|e| e["issue"]["line"].as_u64().unwrap())
        .collect();
    assert_eq!(streamed, [3, 4, 5, 6, 7], "each issue is streamed as it is found");
    assert_eq!(dry.report()["batch_id"], Value::Null);
    assert_eq!(logical_dump(&l), empty, "a dry run writes nothing");
    let list = l.cmd().args(["import", "list", "--json"]).output().unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&list.stdout).unwrap(),
        serde_json::json!([])
    );

    // --strict: the first bad row rejects the whole file; the ledger is unchanged.
    let strict = import(&l, &[&bad, "--strict"]);
    assert_eq!(strict.code, 1);
    assert_eq!(strict.report()["status"], "rejected");
    assert_eq!(strict.counts(), [2, 0, 0, 1, 0]);
    assert_eq!(strict.issues(), expected[..1]);
    assert_eq!(
        logical_dump(&l),
        empty,
        "a rejected file leaves the ledger unchanged"
    );
    let shown = l
        .cmd()
        .args([
            "import",
            "show",
            &strict.report()["batch_id"].to_string(),
            "--json",
        ])
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(
        shown["batch"]["status"], "rejected",
        "the batch records why nothing was kept"
    );
    assert_eq!(shown["issues"][0]["line"], 3);

    // Default: the bad rows quarantined, the rest imported; the human report
    // names file, line, column and reason, never the row.
    let out = l.cmd().args(["import", &bad]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let text = format!("{stdout}{stderr}");
    for (line, want) in [
        (3, "score_given is not a number"),
        (4, "user_id is empty"),
        (5, "score_given must be 0 or more"),
        (6, "score_maximum must be above 0"),
        (
            7,
            "result_url: a grade carries result_text or result_url, not both",
        ),
    ] {
        let expect = format!("{bad}:{line}: {want}");
        assert!(text.contains(&expect), "{expect:?} in\n{text}");
    }
    assert!(
        !text.contains("seven"),
        "the rejected value is never quoted:\n{text}"
    );
    assert!(
        !text.contains("essay"),
        "the rejected value is never quoted:\n{text}"
    );
    assert!(
        text.contains("7 read, 2 imported, 0 unchanged, 5 quarantined"),
        "{text}"
    );
    assert_eq!(
        summary(&grades(&l, &[])),
        [
            "u-ada lab-1 12.5/20.0 cannot_send",
            "u-ada quiz-1 9.0/10.0 cannot_send"
        ]
    );
}

#[test]
fn an_older_observation_never_becomes_the_current_version() {
    let l = workspace(false);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, rows: &str| {
        csv_file(
            &dir,
            name,
            "context_id,resource_link_id,user_id,score_given,score_maximum,graded_at",
            rows,
        )
    };
    let first = write(
        "first.csv",
        "c1,a1,u1,7,10,2026-11-20T10:00:00Z\nc1,a1,u2,5,10,2026-11-20T10:00:00Z\n",
    );
    assert_eq!(import(&l, &[&first]).counts(), [2, 2, 0, 0, 0]);
    let older = write("older.csv", "c1,a1,u1,3,10,2026-11-19T10:00:00Z\n");
    let r = import(&l, &[&older]);
    assert_eq!(r.counts(), [1, 0, 1, 0, 0], "kept out, counted as unchanged");
    assert_eq!(r.report()["counts"]["older"], 1);
    let newer = write(
        "newer.csv",
        "c1,a1,u1,8,10,2026-11-21T10:00:00Z\nc1,a1,u2,5,10,2026-11-21T10:00:00Z\n",
    );
    let r = import(&l, &[&newer]);
    assert_eq!(
        r.counts(),
        [2, 1, 1, 0, 0],
        "an unchanged score is not a new version"
    );
    let rows = grades(&l, &[]);
    assert_eq!(
        summary(&rows),
        ["u1 a1 8.0/10.0 cannot_send", "u2 a1 5.0/10.0 cannot_send"]
    );
    assert_eq!(rows[0]["version"], 2);
    assert_eq!(rows[1]["version"], 1);
}

#[test]
fn caliper_events_record_launches_and_targets_and_never_trust_a_tampered_one() {
    let l = workspace(false);
    assert_eq!(
        import(&l, &[&fixture("tool-grades.csv"), "--platform", "canvas"]).counts(),
        [6, 6, 0, 0, 0]
    );
    let r = import(&l, &[&fixture("caliper-events.json")]);
    assert_eq!(r.code, 1, "one event was quarantined");
    assert_eq!(r.report()["format"], "caliper");
    assert_eq!(r.counts(), [8, 5, 0, 1, 2]);
    assert_eq!(
        r.issues(),
        [
            "241 skipped action: a return from an LTI link, not a launch",
            "301 skipped type: not an LTIEvent",
            "393 oauth_consumer_key: unknown consumer key \"unknown-key\": add its platform with `passback platform \
             add-lti11 --name NAME --consumer-key unknown-key --allow-host HOST` (reading the secret from stdin), \
             then import again",
        ]
    );
    assert!(
        r.notes().contains(
            &"launches left unverified: signature mismatch (the outcome targets they carried were not used)"
                .to_string()
        ),
        "{:?}",
        r.notes()
    );
    // Three verified launches of learners brought targets; the tampered one did not.
    let rows = grades(&l, &["--activity", "quiz-1"]);
    assert_eq!(
        summary(&rows),
        [
            "u-ada quiz-1 9.0/10.0 pending",
            "u-grace quiz-1 7.5/10.0 pending",
            "u-katherine quiz-1 6.0/10.0 pending",
            "u-teacher quiz-1 10.0/10.0 cannot_send",
        ]
    );
    let sourcedids = query_strings(&l, "SELECT lis_result_sourcedid FROM outcome_targets ORDER BY 1");
    assert!(
        !sourcedids.contains(&"sid-someone-else".to_string()),
        "{sourcedids:?}"
    );
    let launches = query_strings(
        &l,
        "SELECT lr.lti_user_id || ' ' || la.role || ' ' || la.verification FROM launches la
         JOIN learners lr ON lr.id = la.learner_ref ORDER BY la.id",
    );
    assert_eq!(
        launches,
        [
            "u-ada learner verified",
            "u-grace learner verified",
            "u-alan learner verified",
            "u-teacher instructor verified",
            "u-katherine learner unverified",
        ]
    );

    // NDJSON: the same launches again are unchanged.
    let r = import(&l, &[&fixture("caliper-events.ndjson")]);
    assert_eq!(r.code, 0);
    assert_eq!(r.counts(), [3, 0, 3, 0, 0]);

    // A truncated upload: the complete events stay, the cut one is quarantined.
    let r = import(&l, &[&fixture("caliper-truncated.json")]);
    assert_eq!(r.counts(), [3, 0, 2, 1, 0]);
    assert_eq!(
        r.issues(),
        ["126: the JSON ends in the middle of a record (is the file truncated?)"]
    );
}

#[test]
fn captured_launches_are_verified_against_the_capture_time_and_url() {
    let l = workspace(false);
    let txt = fixture("launches.txt");
    let expected_issues = [
        "5 oauth_consumer_key: unknown consumer key \"moodle-key\": add its platform with `passback platform \
         add-lti11 --name NAME --consumer-key moodle-key --allow-host HOST` (reading the secret from stdin), then \
         import again",
        "6: not a form-encoded request (expected name=value&…)",
        "7 skipped: the same signed launch as line 2 (same nonce and timestamp), captured again",
    ];
    // Without the URL the signatures covered, the launches are kept unverified.
    let r = import(&l, &[&txt, "--dry-run"]);
    assert_eq!(r.report()["format"], "launches", "detected past the comment line");
    assert_eq!(r.counts(), [6, 3, 0, 2, 1]);
    assert_eq!(r.issues(), expected_issues);
    assert!(
        r.notes()
            .contains(&"launches left unverified: URL unknown (3 rows)".to_string())
    );

    // With it, all three verify (their timestamps are weeks before this test
    // runs: the window is the capture time's).
    let r = import(&l, &[&txt, "--launch-url", LAUNCH_URL]);
    assert_eq!(r.counts(), [6, 3, 0, 2, 1]);
    assert_eq!(r.issues(), expected_issues);
    assert!(
        r.notes().iter().all(|n| !n.contains("unverified")),
        "{:?}",
        r.notes()
    );
    let r = import(&l, &[&fixture("launches.json")]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.counts(), [2, 2, 0, 0, 0]);
    let verified = query_strings(&l, "SELECT verification FROM launches ORDER BY id");
    assert_eq!(verified, ["verified"; 5]);
    let targets = query_strings(&l, "SELECT lis_result_sourcedid FROM outcome_targets ORDER BY 1");
    assert_eq!(
        targets,
        [
            "sid-u-ada-quiz-1",
            "sid-u-edsger-lab-1",
            "sid-u-grace-quiz-1",
            "sid-u-katherine-lab-1",
            "sid-u-katherine-quiz-1"
        ]
    );

    // A secret that does not match: unverified, and the targets are not trusted.
    let other = TempLedger::new();
    add_canvas(&other, "not-the-secret");
    let r = import(&other, &[&fixture("launches.json")]);
    assert_eq!(r.counts(), [2, 2, 0, 0, 0]);
    assert_eq!(
        r.notes(),
        [
            "launches left unverified: signature mismatch (the outcome targets they carried were not used) (2 rows)"
        ]
    );
    assert!(query_strings(&other, "SELECT lis_result_sourcedid FROM outcome_targets").is_empty());
}

#[test]
fn proxy_tool_requests_are_mac_verified_and_record_role_locale_and_direction() {
    let l = workspace(false);
    let env = [("PROXY_SECRET", "proxy-shared-secret")];
    let txt = fixture("proxy-requests.txt");
    let r = import_env(&l, &[&txt, "--proxy-secret-env", "PROXY_SECRET"], &env);
    assert_eq!(r.report()["format"], "proxy");
    assert_eq!(r.counts(), [6, 3, 0, 3, 0]);
    assert_eq!(
        r.issues(),
        [
            "5 mac: forged or altered: the MAC does not match (check the shared secret and --mac md5|sha1)",
            "6 timestamp: stale: the request's timestamp is 120 minutes from its capture time (more than 5)",
            "7 mac: replayed: the same request appears earlier in the file",
        ]
    );
    // The wrong digest is named.
    let json = fixture("proxy-requests-sha1.json");
    let r = import_env(&l, &[&json, "--proxy-secret-env", "PROXY_SECRET"], &env);
    assert_eq!(
        r.issues(),
        ["2 mac: the MAC is sha1, not md5: import again with --mac sha1"]
    );
    let r = import_env(
        &l,
        &[&json, "--proxy-secret-env", "PROXY_SECRET", "--mac", "sha1"],
        &env,
    );
    assert_eq!(r.counts(), [1, 1, 0, 0, 0]);
    let launches = query_strings(
        &l,
        "SELECT lr.lti_user_id || ' ' || c.context_id || ' ' || la.role || ' ' || la.locale || ' ' || la.direction
         || ' ' || la.verification FROM launches la JOIN learners lr ON lr.id = la.learner_ref
         JOIN contexts c ON c.id = la.context_ref ORDER BY la.id",
    );
    assert_eq!(
        launches,
        [
            "_12_1 _41_1 learner ar_SA rtl verified",
            "_13_1 _41_1 instructor en_US ltr verified",
            "_14_1 _41_1 teaching_assistant en_GB ltr verified",
            "_16_1 _41_1 learner fr_FR ltr verified",
        ]
    );
    assert!(query_strings(&l, "SELECT lis_result_sourcedid FROM outcome_targets").is_empty());

    // Without the shared secret: the platform's keyring entry, which is another secret.
    let r = import(&l, &[&txt]);
    assert_eq!(r.counts()[3], 6, "every MAC fails with the wrong secret");
}

#[test]
fn an_edx_log_before_its_dump_is_kept_and_becomes_sendable_when_the_dump_arrives() {
    let l = workspace(false);
    let log = fixture("edx-tracking.log");
    let r = import(&l, &[&log]);
    assert_eq!(r.report()["format"], "edx-log");
    assert_eq!(r.counts(), [7, 4, 0, 2, 1]);
    assert_eq!(
        r.issues(),
        [
            "30 possible: points possible is 0: the score cannot be put on the 0–1 scale",
            "31 skipped: Open edX had no points_possible for this score change, so it never sent it: no grade to import",
            "32 User: not an Open edX user id (a number)",
        ]
    );
    let rows = grades(&l, &[]);
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|g| g["status"] == "cannot_send"), "{rows:?}");
    assert!(
        detail_of(
            &rows,
            "edx-user:17",
            "block-v1:ExampleU+BIO101+2026+type@problem+block@quiz1"
        )
        .contains("lti_provider records (dumpdata) for this learner and activity have not been imported"),
        "{rows:?}"
    );

    // The batch names the platform its rows were about, and the file's hash.
    let list = l.cmd().args(["import", "list", "--json"]).output().unwrap();
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list[0]["platform"], "canvas", "{list}");
    let hash = list[0]["file_hash"].as_str().unwrap();
    assert!(hash.starts_with("sha256:") && hash.len() == 7 + 64, "{hash}");

    let r = import(&l, &[&fixture("edx-lti-provider.json")]);
    assert_eq!(r.code, 0);
    assert_eq!(r.report()["format"], "edx-dump");
    assert_eq!(r.counts(), [9, 8, 0, 0, 1]);
    assert!(
        r.notes().contains(
            &"the consumer secret of \"canvas-key\" in the dump was dropped; --store-secrets stores it in the keyring \
              of its platform"
                .to_string()
        ),
        "{:?}",
        r.notes()
    );
    let quiz = "block-v1:ExampleU+BIO101+2026+type@problem+block@quiz1";
    let lab = "block-v1:ExampleU+BIO101+2026+type@problem+block@lab1";
    let rows = grades(&l, &[]);
    assert_eq!(
        summary(&rows),
        [
            format!("u-alan {lab} 14.0/20.0 failed"),
            format!("edx-user:20 {lab} 11.0/20.0 cannot_send"),
            format!("u-ada {quiz} 3.0/4.0 failed"),
            format!("u-grace {quiz} 2.5/4.0 failed"),
        ]
    );
    assert!(detail_of(&rows, "u-ada", quiz).contains("User is no longer in course"));
    assert!(detail_of(&rows, "u-grace", quiz).contains("HTTP 500"));
    let targets = query_strings(
        &l,
        "SELECT lis_result_sourcedid FROM outcome_targets WHERE lis_result_sourcedid IS NOT NULL ORDER BY 1",
    );
    assert_eq!(
        targets,
        ["edx-sid-17-quiz1", "edx-sid-18-quiz1", "edx-sid-19-lab1"]
    );

    // The log again, now resolved: nothing new (same grades, same attempts).
    let r = import(&l, &[&log]);
    assert_eq!(r.counts(), [7, 0, 4, 2, 1]);
    assert_eq!(grades(&l, &[]).len(), 4);

    // CSV exports of the records; a user without lti_user_id is quarantined.
    let r = import(
        &l,
        &[&fixture("edx-ltiuser.csv"), &fixture("edx-gradedassignment.csv")],
    );
    assert_eq!(r.reports.len(), 2);
    assert_eq!(counts(&r.reports[0]), [2, 1, 0, 1, 0]);
    assert_eq!(issues(&r.reports[0]), ["3: the record has no lti_user_id"]);
    assert_eq!(counts(&r.reports[1]), [1, 1, 0, 0, 0]);
}

#[test]
fn ltiaas_id_tokens_store_service_keys_in_the_keyring_and_tool_csvs_match_them() {
    let l = workspace(true);
    let r = import(&l, &[&fixture("ltiaas-idtokens.json")]);
    assert_eq!(r.report()["format"], "ltiaas-idtoken");
    assert_eq!(r.report()["platform"], "ltiaas");
    assert_eq!(r.counts(), [3, 2, 0, 1, 0]);
    assert_eq!(
        r.issues(),
        ["106 launch: the ID token has no launch.context.id or launch.resourceLink.id"]
    );
    let keys = l.cmd().args(["ltiaas", "keys", "--json"]).output().unwrap();
    let keys: Value = serde_json::from_slice(&keys.stdout).unwrap();
    assert_eq!(
        keys.as_array().unwrap().len(),
        1,
        "one service key per context and resource link: {keys}"
    );
    assert_eq!(keys[0]["context_id"], "chem-1");

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("chem.csv");
    std::fs::write(
        &csv,
        "context_id,resource_link_id,user_id,score_given,score_maximum,roles\n\
         chem-1,titration-lab,lt-user-1,42,50,Learner\n\
         chem-1,titration-lab,lt-user-9,40,50,Learner\n\
         chem-1,other-lab,lt-user-1,40,50,Learner\n",
    )
    .unwrap();
    let r = import(&l, &[&csv.to_string_lossy(), "--platform", "ltiaas"]);
    assert_eq!(r.counts(), [3, 3, 0, 0, 0]);
    let rows = grades(&l, &["--platform", "ltiaas"]);
    assert_eq!(
        summary(&rows),
        [
            "lt-user-1 other-lab 40.0/50.0 cannot_send",
            "lt-user-1 titration-lab 42.0/50.0 pending",
            "lt-user-9 titration-lab 40.0/50.0 pending",
        ]
    );
}

#[test]
fn gradebook_exports_become_lms_observations_not_local_grades() {
    let l = workspace(false);
    import(&l, &[&fixture("tool-grades.csv"), "--platform", "canvas"]);
    import(&l, &[&fixture("caliper-events.json")]);
    let canvas = fixture("2026-11-20T1010_Grades-BIO_101.csv");
    let refused = import(&l, &[&canvas]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stdout.contains("give --context CONTEXT_ID"),
        "{}",
        refused.stdout
    );
    assert!(refused.reports.is_empty(), "a refused file has no report");

    let r = import(&l, &[&canvas, "--context", "bio-101"]);
    assert_eq!(r.report()["format"], "canvas-gradebook");
    assert_eq!(r.counts(), [4, 3, 0, 0, 1]);
    assert_eq!(
        r.issues(),
        [
            "3 skipped Lab report: Osmosis (502): EX (excused): not compared",
            "5 skipped Quiz 1: Cells (501): blank: not compared",
            "7 skipped ID: no learner in the ledger with this ID, SIS User ID or SIS Login ID (no launch of theirs \
             was imported): not compared",
        ]
    );
    assert!(r.notes().contains(
        &"export time 2026-11-20T10:10:00.000Z (from the file name; Canvas names exports by their UTC time)"
            .to_string()
    ));
    let rows = grades(&l, &["--activity", "quiz-1"]);
    assert_eq!(
        summary(&rows),
        [
            "u-ada quiz-1 9.0/10.0 in_sync",
            "u-grace quiz-1 7.5/10.0 differs",
            "u-katherine quiz-1 6.0/10.0 pending",
            "u-teacher quiz-1 10.0/10.0 cannot_send",
        ]
    );
    assert!(detail_of(&rows, "u-grace", "quiz-1").contains("the LMS holds 60% (local 75%)"));
    assert_eq!(grades(&l, &[]).len(), 6, "no local grade came from the export");

    let moodle = fixture("moodle-grades.csv");
    let r = import(
        &l,
        &[
            &moodle,
            "--context",
            "bio-101",
            "--exported-at",
            "2026-11-21T09:00:00Z",
        ],
    );
    assert_eq!(r.report()["format"], "moodle-gradebook");
    assert_eq!(r.counts(), [3, 2, 0, 0, 1]);
    assert_eq!(
        r.issues(),
        [
            "2 skipped Assignment: Lab report: Osmosis (Real): blank: not compared",
            "4 skipped Email address: no learner in the ledger with this e-mail address or ID number: not compared",
        ]
    );
    let rows = grades(&l, &["--activity", "quiz-1", "--status", "differs"]);
    assert_eq!(summary(&rows), ["u-grace quiz-1 7.5/10.0 differs"]);
    assert!(detail_of(&rows, "u-grace", "quiz-1").contains("the LMS holds 70% (local 75%)"));
}

#[test]
fn undo_takes_a_batch_back_unless_a_later_batch_built_on_it() {
    let l = workspace(false);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, rows: &str| {
        csv_file(
            &dir,
            name,
            "context_id,resource_link_id,user_id,score_given,score_maximum",
            rows,
        )
    };
    let empty = logical_dump(&l)
        .into_iter()
        .filter(|r| !r.starts_with("meta"))
        .collect::<Vec<_>>();
    let a = write("a.csv", "c1,a1,u1,7,10\nc1,a1,u2,5,10\n");
    let b = write("b.csv", "c1,a1,u1,8,10\n");
    let c = write("c.csv", "c1,a2,u3,1,2\n");
    let ba = import(&l, &[&a]).report()["batch_id"].as_i64().unwrap();
    let bb = import(&l, &[&b]).report()["batch_id"].as_i64().unwrap();
    let bc = import(&l, &[&c]).report()["batch_id"].as_i64().unwrap();

    // Without --yes: says what it would take back, takes nothing.
    let out = l
        .cmd()
        .args(["import", "undo", &ba.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(grades(&l, &[]).len(), 3);

    let out = l
        .cmd()
        .args(["import", "undo", &ba.to_string(), "--yes"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("batch {bb}")),
        "names the later batch: {err}"
    );

    l.cmd()
        .args(["import", "undo", &bc.to_string(), "--yes"])
        .assert()
        .success();
    assert_eq!(grades(&l, &[]).len(), 2);
    l.cmd()
        .args(["import", "undo", &bb.to_string(), "--yes"])
        .assert()
        .success();
    assert_eq!(
        summary(&grades(&l, &[])),
        ["u1 a1 7.0/10.0 cannot_send", "u2 a1 5.0/10.0 cannot_send"]
    );
    l.cmd()
        .args(["import", "undo", &ba.to_string(), "--yes"])
        .assert()
        .success();
    assert!(grades(&l, &[]).is_empty());
    let out = l
        .cmd()
        .args(["import", "undo", &ba.to_string(), "--yes"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an undone batch cannot be undone twice");
    let statuses = query_strings(&l, "SELECT status FROM import_batches ORDER BY id");
    assert_eq!(statuses, ["undone"; 3]);
    // What is left is what the batches learned about people and places, not grades.
    let left: Vec<String> = logical_dump(&l)
        .into_iter()
        .filter(|r| !r.starts_with("meta"))
        .filter(|r| {
            !["activities:", "contexts:", "learners:", "batch_changes:"]
                .iter()
                .any(|t| r.starts_with(t))
        })
        .collect();
    assert_eq!(left, empty);
}

#[test]
fn no_signature_nonce_consumer_secret_or_service_key_reaches_the_ledger_or_the_output() {
    let l = workspace(true);
    let mut printed = String::new();
    let env = [("PROXY_SECRET", "proxy-shared-secret")];
    for args in [
        vec![fixture("caliper-events.json")],
        vec![
            fixture("launches.txt"),
            "--launch-url".into(),
            LAUNCH_URL.into(),
            "--platform".into(),
            "canvas".into(),
        ],
        vec![fixture("launches.json")],
        vec![
            fixture("proxy-requests.txt"),
            "--proxy-secret-env".into(),
            "PROXY_SECRET".into(),
            "--platform".into(),
            "canvas".into(),
        ],
        vec![fixture("edx-lti-provider.json")],
        vec![fixture("edx-lti-provider.json"), "--store-secrets".into()],
        vec![fixture("ltiaas-idtokens.json")],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = import_env(&l, &args, &env);
        printed.push_str(&r.stdout);
        printed.push_str(&r.stderr);
        // The human form too.
        let out = l
            .cmd()
            .arg("import")
            .arg("--dry-run")
            .args(&args)
            .env("PROXY_SECRET", "proxy-shared-secret")
            .output()
            .unwrap();
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    for args in [
        vec!["grades", "--json"],
        vec!["import", "list", "--json"],
        vec!["ltiaas", "keys", "--json"],
    ] {
        let out = l.cmd().args(&args).output().unwrap();
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    for id in 1..=7 {
        let out = l
            .cmd()
            .args(["import", "show", &id.to_string(), "--json"])
            .output()
            .unwrap();
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
    }

    // Every signature, nonce and MAC in the fixtures, and every secret.
    let mut needles: Vec<String> = vec![
        "edx-stored-consumer-secret-7f3a".into(),
        "SK-FIXTURE-svc-key-0001".into(),
        "SK-FIXTURE-svc-key-0002".into(),
        "SK-FIXTURE-svc-key-0003".into(),
        CANVAS_SECRET.into(),
        "proxy-shared-secret".into(),
        "ltiaas-api-key".into(),
    ];
    let launches: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("launches.json")).unwrap()).unwrap();
    for p in launches.as_array().unwrap() {
        needles.push(p["oauth_signature"].as_str().unwrap().into());
        needles.push(p["oauth_nonce"].as_str().unwrap().into());
    }
    let caliper: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("caliper-events.json")).unwrap()).unwrap();
    for e in caliper["data"].as_array().unwrap() {
        let p = &e["object"]["launchParameters"];
        if let Some(sig) = p["oauth_signature"].as_str() {
            needles.push(sig.into());
            needles.push(p["oauth_nonce"].as_str().unwrap().into());
        }
    }
    for line in std::fs::read_to_string(fixture("launches.txt"))
        .unwrap()
        .lines()
        .chain(
            std::fs::read_to_string(fixture("proxy-requests.txt"))
                .unwrap()
                .lines(),
        )
    {
        let Some((_, body)) = line.split_once(' ') else {
            continue;
        };
        for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
            if k == "oauth_signature" || k == "oauth_nonce" || k == "mac" {
                needles.push(v.into_owned());
            }
        }
    }
    assert!(needles.len() > 20, "the fixtures carry signatures: {needles:?}");
    // The file's bytes (pages, WAL), or on a team ledger every value of every table.
    let bytes = if l.is_team() {
        runtime()
            .block_on(async { l.open_store().await.logical_dump().await.unwrap() })
            .iter()
            .flat_map(|t| t.lines())
            .collect::<Vec<String>>()
            .join("\n")
            .into_bytes()
    } else {
        ledger_bytes(l.path())
    };
    assert!(bytes.len() > 10_000, "the ledger was written");
    for n in &needles {
        assert!(!contains(&bytes, n.as_bytes()), "{n:?} reached the ledger");
        assert!(!printed.contains(n.as_str()), "{n:?} was printed");
        // Signatures and MACs are also stored percent-encoded by some captures.
        let encoded: String = url::form_urlencoded::byte_serialize(n.as_bytes()).collect();
        assert!(
            !contains(&bytes, encoded.as_bytes()),
            "{encoded:?} reached the ledger"
        );
    }
    assert!(
        printed.contains("canvas-key"),
        "the reports were captured: {printed}"
    );
    // --store-secrets put the dump's consumer secret in the platform's keyring
    // entry: launches signed with the old secret no longer verify.
    let r = import(&l, &[&fixture("launches.json"), "--dry-run"]);
    assert!(
        r.notes().iter().any(|n| n.contains("signature mismatch")),
        "{:?}",
        r.notes()
    );
}

#[test]
fn grades_filters_in_sql_and_lists_the_documented_json_fields() {
    let l = workspace(true);
    import(&l, &[&fixture("tool-grades.csv"), "--platform", "canvas"]);
    import(&l, &[&fixture("ltiaas-idtokens.json")]);
    let all = grades(&l, &[]);
    assert_eq!(all.len(), 6);
    for g in &all {
        for field in [
            "grade_id",
            "platform",
            "context_id",
            "resource_link_id",
            "lti_user_id",
            "learner_name",
            "score_given",
            "score_maximum",
            "status",
            "status_detail",
        ] {
            assert!(g.get(field).is_some(), "{field} in {g}");
        }
    }
    assert_eq!(summary(&grades(&l, &["--status", "cannot_send"])).len(), 2);
    assert_eq!(
        summary(&grades(&l, &["--status", "pending", "--activity", "lab-1"])),
        ["u-alan lab-1 15.5/20.0 pending"]
    );
    assert_eq!(
        summary(&grades(
            &l,
            &["--activity", "Lab report: Osmosis", "--status", "cannot_send"]
        )),
        ["u-barbara lab-1 17.0/20.0 cannot_send"],
        "an activity by its title"
    );
    assert!(grades(&l, &["--platform", "ltiaas"]).is_empty());
    assert_eq!(
        grades(&l, &["--platform", "canvas", "--learner", "u-ada"]).len(),
        1
    );
    assert_eq!(
        grades(
            &l,
            &[
                "--context",
                "bio-101",
                "--status",
                "pending",
                "--status",
                "cannot_send"
            ]
        )
        .len(),
        6
    );
}
