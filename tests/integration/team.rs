//! A team ledger on PostgreSQL, through the CLI: moving a personal ledger in,
//! who may change platforms, the password from the keyring, and who did what.
//! These run in the test command's PostgreSQL step (`PASSBACK_TEST_POSTGRES`,
//! a throw-away server), where the rest of the integration suite runs again on
//! team ledgers (`PASSBACK_TEST_LEDGER=postgres`); the SQLite step skips them by
//! name (`team_pg`).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::{TeamDb, TempLedger, block_on, require_secret_service};

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn passback(db: &str, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Out {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("passback"));
    c.arg("--db").arg(db).args(args).env_remove("PASSBACK_DB");
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn team() -> TeamDb {
    TeamDb::new().expect(
        "team_pg tests need the test command's PostgreSQL server (PASSBACK_TEST_POSTGRES): run them through \
         `./dev test`",
    )
}

/// Run SQL as the server's administrator (the test cluster's superuser).
fn admin_sql(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    block_on(async move {
        use sqlx::{Connection, Executor};
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&url).await.unwrap();
        c.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    });
}

fn grades_csv(dir: &std::path::Path, name: &str, users: std::ops::Range<usize>, score: f64) -> String {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "context_id,resource_link_id,user_id,score_given,score_maximum,lis_result_sourcedid,lis_outcome_service_url").unwrap();
    for i in users {
        writeln!(
            f,
            "c1,rl-1,u-{i},{score},10,sid-{i},https://lms.example.edu/outcomes"
        )
        .unwrap();
    }
    path.display().to_string()
}

#[test]
fn team_pg_a_personal_ledger_moves_in_and_only_administrators_change_platforms() {
    require_secret_service();
    let team = team();
    let personal = TempLedger::new();
    let file = personal.path().display().to_string();
    let dir = personal.dir.path();

    // A personal ledger with a platform, grades and an import batch.
    let out = passback(
        &file,
        &[
            "platform",
            "add-lti11",
            "--name",
            "canvas",
            "--consumer-key",
            "ck",
            "--allow-host",
            "lms.example.edu",
        ],
        Some("canvas-secret"),
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let csv = grades_csv(dir, "g1.csv", 0..20, 7.0);
    let out = passback(&file, &["import", &csv], None, &[("PASSBACK_ACTOR", "ana")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // Moved into the team ledger, twice: the second copy writes nothing.
    let copy = |args: &[&str]| passback(&file, args, None, &[]);
    let out = copy(&["ledger", "copy", "--from", &file, "--to", &team.url]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("is kept"), "{}", out.stdout);
    assert!(
        out.stdout.contains("platform secret set canvas"),
        "{}",
        out.stdout
    );
    let out = copy(&["ledger", "copy", "--from", &file, "--to", &team.url, "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["again"], true);
    let written: u64 = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[2].as_u64().unwrap())
        .sum();
    assert_eq!(written, 0, "{report}");

    // The team ledger holds the same grades, import history and ledger id.
    let list = |db: &str| {
        let out = passback(db, &["grades", "--json"], None, &[]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let mut v: Vec<(String, f64)> = serde_json::from_str::<Vec<Value>>(&out.stdout)
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["lti_user_id"].as_str().unwrap().to_string(),
                    g["score_given"].as_f64().unwrap(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(list(&file), list(&team.url));
    let doctor = |db: &str| passback(db, &["doctor", "--json"], None, &[]).stdout;
    let id = |d: String| serde_json::from_str::<Value>(&d).unwrap()["ledger_id"].clone();
    assert_eq!(id(doctor(&file)), id(doctor(&team.url)));
    let out = passback(&team.url, &["import", "list", "--json"], None, &[]);
    assert!(out.stdout.contains("g1.csv"), "{}", out.stdout);

    // New rows are numbered after the copied ones.
    let out = passback(
        &team.url,
        &[
            "platform",
            "add-lti11",
            "--name",
            "moodle",
            "--consumer-key",
            "mk",
            "--allow-host",
            "moodle.example.edu",
        ],
        Some("moodle-secret"),
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // TLS is asked of the server as the address says (this test server has none).
    let out = passback(&format!("{}?sslmode=require", team.url), &["doctor"], None, &[]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.to_lowercase().contains("tls") || out.stderr.contains("SSL"),
        "{}",
        out.stderr
    );

    // A support person's role: may work the grades, not the platforms.
    let staff = format!("staff_{}", std::process::id());
    let password = "staff-pw-7f3a";
    admin_sql(
        &team.url,
        &format!(
            "CREATE ROLE {staff} LOGIN PASSWORD '{password}';
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {staff};
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {staff};"
        ),
    );
    let (base, db) = team.url.rsplit_once('/').unwrap();
    let host = base.rsplit_once('@').unwrap().1;
    let staff_url = format!("postgres://{staff}@{host}/{db}");
    // Without a password anywhere, the server refuses; the keyring's is used.
    let out = passback(&staff_url, &["grades"], None, &[("PGPASSFILE", "/nonexistent")]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("password"), "{}", out.stderr);
    let out = passback(
        &file,
        &["ledger", "password", "set", &staff_url],
        Some(password),
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let as_staff = |args: &[&str], stdin: Option<&str>| {
        passback(
            &staff_url,
            args,
            stdin,
            &[("PGPASSFILE", "/nonexistent"), ("PASSBACK_ACTOR", "ben@support")],
        )
    };
    let out = as_staff(&["grades", "--json"], None);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for args in [
        vec![
            "platform",
            "add-lti11",
            "--name",
            "evil",
            "--consumer-key",
            "k",
            "--allow-host",
            "evil.example.net",
        ],
        vec!["platform", "remove", "canvas", "--yes"],
    ] {
        let out = as_staff(&args, Some("x"));
        assert_ne!(out.code, Some(0), "{args:?}: {}", out.stdout);
        assert!(out.stderr.contains("administrators"), "{args:?}: {}", out.stderr);
    }
    let out = passback(&team.url, &["platform", "list", "--json"], None, &[]);
    let names: Vec<String> = serde_json::from_str::<Vec<Value>>(&out.stdout)
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["canvas", "moodle"], "nothing changed");
    // Staff import a newer export: the batch and the new grade versions say who.
    let csv = grades_csv(dir, "g2.csv", 0..5, 9.0);
    let out = as_staff(&["import", &csv, "--platform", "canvas"], None);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = passback(&team.url, &["import", "list", "--json"], None, &[]);
    let batches: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    let by = |name: &str| {
        batches
            .iter()
            .find(|b| b["file_name"].as_str().unwrap().ends_with(name))
            .map(|b| b["actor"].clone())
    };
    assert_eq!(by("g1.csv"), Some(Value::from("ana")));
    assert_eq!(by("g2.csv"), Some(Value::from("ben@support")));
    admin_sql(
        &team.url,
        &format!("REASSIGN OWNED BY {staff} TO CURRENT_USER; DROP OWNED BY {staff}; DROP ROLE {staff};"),
    );
}
