//! The malformed-input corpus (`tests/malformed/`: its README lists every file and
//! what is wrong with it; `manifest.tsv` is what this test reads) through the spawned
//! `passback import --json`, once as is and once with `--strict`, into a ledger that
//! already holds the fixtures of `tests/fixtures/import`. Every file must be refused
//! with the line, column and reason its manifest line names, and leave every table
//! as it was apart from the import batch's own record of what it refused (its
//! `import_batches` row and its `import_issues`), compared through a logical dump of
//! the whole ledger.

use std::collections::BTreeSet;
use std::path::PathBuf;

use passback::import::ImportOptions;
use passback::model::{NewLti11Platform, NewLtiaasPlatform};
use passback::secrets::Secrets;
use passback::store::dump::TableDump;
use serde_json::Value;

use crate::common::TempLedger;

/// The proxy tool's shared secret the fixtures were signed with (given to the CLI
/// as `--proxy-secret-env PROXY_SECRET`).
const PROXY_SECRET: &str = "proxy-shared-secret";

fn corpus() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/malformed"))
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/import"
    ))
    .join(name)
}

/// One line of `manifest.tsv`.
#[derive(Debug)]
struct Case {
    file: String,
    format: String,
    args: Vec<String>,
    line: u64,
    column: Option<String>,
    reason: String,
}

fn manifest() -> Vec<Case> {
    let text = std::fs::read_to_string(corpus().join("manifest.tsv"))
        .expect("tests/malformed/manifest.tsv: run tests/malformed/make_malformed.py");
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    assert_eq!(
        lines.next(),
        Some("file\tformat\targs\tline\tcolumn\treason\twhat")
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 7, "manifest line {l:?}");
            let dash = |s: &str| (s != "-").then(|| s.to_string());
            Case {
                file: f[0].into(),
                format: f[1].into(),
                args: dash(f[2])
                    .map(|a| a.split(' ').map(str::to_string).collect())
                    .unwrap_or_default(),
                line: f[3].parse().unwrap_or_else(|_| panic!("line of {l:?}")),
                column: dash(f[4]),
                reason: f[5].into(),
            }
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A ledger with real data of every kind the formats touch: two platforms, tool
/// grades, launches (Caliper, captured, proxy-tool), Open edX failures and records,
/// LTIAAS ID tokens, and LMS observations from both gradebooks. Written through the
/// library with an in-memory keyring: the malformed files need no secret but the
/// proxy tool's, which the CLI reads from `PROXY_SECRET`.
fn workspace(rt: &tokio::runtime::Runtime) -> TempLedger {
    let l = TempLedger::new();
    rt.block_on(async {
        let pb = l.open_passback(Secrets::in_memory()).await;
        pb.add_lti11_platform(
            NewLti11Platform {
                name: "canvas".into(),
                consumer_key: "canvas-key".into(),
                allowed_hosts: vec!["canvas.example.edu".into()],
                allow_http: false,
            },
            "canvas-secret",
        )
        .await
        .unwrap();
        pb.add_ltiaas_platform(
            NewLtiaasPlatform {
                name: "ltiaas".into(),
                base_url: "https://example.ltiaas.com".into(),
            },
            "ltiaas-api-key",
        )
        .await
        .unwrap();
        let on_canvas = || ImportOptions {
            platform: Some("canvas".into()),
            ..ImportOptions::default()
        };
        let gradebook = |exported_at: &str| ImportOptions {
            context: Some("bio-101".into()),
            exported_at: Some(exported_at.into()),
            ..on_canvas()
        };
        for (name, opts) in [
            ("tool-grades.csv", on_canvas()),
            ("caliper-events.json", ImportOptions::default()),
            (
                "launches.txt",
                ImportOptions {
                    launch_url: Some("https://tool.example.org/lti/launch".into()),
                    ..ImportOptions::default()
                },
            ),
            ("launches.json", ImportOptions::default()),
            ("edx-tracking.log", ImportOptions::default()),
            ("edx-lti-provider.json", ImportOptions::default()),
            ("ltiaas-idtokens.json", ImportOptions::default()),
            (
                "2026-11-20T1010_Grades-BIO_101.csv",
                gradebook("2026-11-20T10:10:00Z"),
            ),
            ("moodle-grades.csv", gradebook("2026-11-21T09:00:00Z")),
            (
                "proxy-requests.txt",
                ImportOptions {
                    proxy_secret: Some(PROXY_SECRET.into()),
                    ..on_canvas()
                },
            ),
        ] {
            let r = pb
                .import_file(&fixture(name), &opts, &mut passback::progress::Silent)
                .await
                .unwrap_or_else(|e| panic!("{name}: {}", e.message));
            assert!(r.counts.imported > 0, "{name} brought data: {r:?}");
        }
        pb.store().close().await;
    });
    l
}

/// Each table's rows as lines, leaving out the rows of import batch `batch` (its
/// `import_batches` row and its `import_issues`), which are returned apart.
fn split_batch(dump: &[TableDump], batch: Option<i64>) -> (BTreeSet<String>, Vec<String>) {
    let mut rest = BTreeSet::new();
    let mut own = Vec::new();
    let batch = batch.map(|b| b.to_string());
    for t in dump {
        let key = match t.name.as_str() {
            "import_batches" => t.column("id"),
            "import_issues" => t.column("batch_ref"),
            _ => None,
        };
        for (row, line) in t.rows.iter().zip(t.lines()) {
            if key.is_some_and(|k| Some(&row[k]) == batch.as_ref()) {
                own.push(line);
            } else {
                rest.insert(line);
            }
        }
    }
    (rest, own)
}

/// The batch an import's report names, if it printed one.
fn batch_of(stdout: &str) -> Option<i64> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "report")
        .and_then(|r| r["batch_id"].as_i64())
}

/// What one import printed, checked against its manifest line. `Err` says what is wrong.
fn check_output(
    case: &Case,
    path: &str,
    strict: bool,
    code: Option<i32>,
    stdout: &str,
) -> Result<(), String> {
    if code != Some(1) {
        return Err(format!("exit code {code:?}, not 1"));
    }
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("NDJSON line {l:?}: {e}")))
        .collect::<Result<_, _>>()?;
    let Some(last) = events
        .iter()
        .find(|e| e["event"] == "report" || e["event"] == "error")
    else {
        return Err("neither a report nor an error".into());
    };
    if last["file"] != path {
        return Err(format!("names the file {}", last["file"]));
    }
    if last["event"] == "error" {
        // Refused before reading a record: no batch, so nothing may change at all.
        let message = last["error"]["message"].as_str().unwrap_or_default();
        let at = format!("{path}:{}: ", case.line);
        if !message.contains(&at) || !message.contains(&case.reason) {
            return Err(format!(
                "the error {message:?} does not say {at:?} and {:?}",
                case.reason
            ));
        }
        return Ok(());
    }
    let want_status = if strict { "rejected" } else { "partial" };
    if last["format"] != case.format.as_str() || last["status"] != want_status {
        return Err(format!(
            "format {} status {}, not {} {want_status}",
            last["format"], last["status"], case.format
        ));
    }
    // (Records the ledger holds already may count as imported: Open edX records
    // always do. What changed is the dump's to say.)
    let counts = &last["counts"];
    if counts["quarantined"].as_u64().unwrap_or(0) == 0 || strict && counts["imported"] != 0 {
        return Err(format!("counts {counts}"));
    }
    let first = last["issues"]
        .as_array()
        .and_then(|i| i.iter().find(|i| i["kind"] == "rejected"))
        .ok_or("no rejected row listed")?;
    let reason = first["reason"].as_str().unwrap_or_default();
    if first["line"] != case.line
        || first["column"].as_str() != case.column.as_deref()
        || !reason.contains(&case.reason)
    {
        return Err(format!(
            "the first rejected row is {first}, not line {} column {:?} with {:?}",
            case.line, case.column, case.reason
        ));
    }
    let rejected = last["issues"]
        .as_array()
        .map_or(0, |i| i.iter().filter(|i| i["kind"] == "rejected").count());
    if strict && rejected != 1 {
        return Err(format!(
            "--strict listed {rejected} rejected rows: {}",
            last["issues"]
        ));
    }
    match last["batch_id"].as_i64() {
        Some(_) => Ok(()),
        None => Err("no batch recorded".into()),
    }
}

#[test]
fn every_malformed_file_is_refused_by_line_and_reason_and_leaves_the_ledger_as_it_was() {
    let cases = manifest();
    assert!(cases.len() >= 60, "{} files in the corpus", cases.len());
    let formats: BTreeSet<&str> = cases.iter().map(|c| c.format.as_str()).collect();
    for f in passback::import::Format::ALL {
        assert!(formats.contains(f.as_str()), "no malformed {} file", f.as_str());
    }
    let listed: BTreeSet<&str> = cases.iter().map(|c| c.file.as_str()).collect();
    assert_eq!(listed.len(), cases.len(), "a file is listed twice");
    let on_disk: BTreeSet<String> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !["README.md", "manifest.tsv", "make_malformed.py", ".gitattributes"].contains(&n.as_str())
        })
        .collect();
    assert_eq!(
        on_disk.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        listed,
        "the manifest lists every file of tests/malformed and no other"
    );

    let rt = runtime();
    let l = workspace(&rt);
    let store = rt.block_on(l.open_store_rw());
    let dump = || rt.block_on(store.logical_dump()).unwrap();
    let mut before = dump();
    assert!(
        before.iter().map(|t| t.rows.len()).sum::<usize>() > 100,
        "the ledger holds data"
    );
    let mut failures = Vec::new();
    for case in &cases {
        let path = corpus().join(&case.file);
        let shown = path.display().to_string();
        for strict in [false, true] {
            let mode = if strict { "--strict" } else { "default" };
            let out = l
                .cmd()
                .args(["import", "--json"])
                .arg(&path)
                .args(&case.args)
                .args(strict.then_some("--strict"))
                .env("PROXY_SECRET", PROXY_SECRET)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let after = dump();
            if let Err(why) = check_output(case, &shown, strict, out.status.code(), &stdout) {
                failures.push(format!(
                    "{} ({mode}): {why}\n    stdout: {}\n    stderr: {}",
                    case.file,
                    stdout.trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            let batch = batch_of(&stdout);
            let (was, earlier) = split_batch(&before, batch);
            let (is, own) = split_batch(&after, batch);
            if !earlier.is_empty() {
                failures.push(format!(
                    "{} ({mode}): batch {batch:?} existed before: {earlier:#?}",
                    case.file
                ));
            }
            if was != is {
                let added: Vec<&String> = is.difference(&was).take(5).collect();
                let removed: Vec<&String> = was.difference(&is).take(5).collect();
                failures.push(format!(
                    "{} ({mode}) changed the ledger:\n    added {added:#?}\n    removed {removed:#?}",
                    case.file
                ));
            }
            if let Some(b) = batch {
                // The batch's own record: its row, and the rejected row's issue.
                let status = format!("status=\"{}\"", if strict { "rejected" } else { "partial" });
                let row = own
                    .iter()
                    .filter(|r| r.starts_with("import_batches:") && r.contains(&status))
                    .count();
                let issue = format!("line={}, ", case.line);
                let issues = own
                    .iter()
                    .filter(|r| {
                        r.starts_with("import_issues:")
                            && r.contains(&issue)
                            && r.contains("kind=\"rejected\"")
                    })
                    .count();
                if row != 1 || issues == 0 {
                    failures.push(format!("{} ({mode}): batch {b} recorded {own:#?}", case.file));
                }
            }
            before = after;
        }
    }
    rt.block_on(store.close());
    assert!(
        failures.is_empty(),
        "{} of {} imports of malformed files went wrong:\n{}",
        failures.len(),
        2 * cases.len(),
        failures.join("\n")
    );
}
