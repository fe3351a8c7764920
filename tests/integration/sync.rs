//! `passback reconcile` and `passback sync` end to end, for both transports: a
//! spawned sandbox LMS, a temporary ledger, the real keyring and loopback HTTP.
//!
//! * Crash trials: the CLI is killed (`kill -9`, and failpoints right after the
//!   journal commit and right after the LMS's answer) in the middle of a sync; a
//!   second sync must leave every LMS result equal to the local grade, and the
//!   sandbox's write counts must show no resend beyond the writes the journal
//!   held as in flight when the process died.
//! * A fault soak, overwrite protection, Canvas rounding, dry runs, the support
//!   commands and the run lock.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{SandboxProc, TeamDb, TempLedger, ledger_rows, require_secret_service};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Transport {
    Lti11,
    Ltiaas,
}

/// A sandbox, a ledger with one platform pointing at it, and `n` learners.
struct Rig {
    sb: SandboxProc,
    ledger: TempLedger,
    /// What `--db` names: the file in `ledger`, or a team ledger's address.
    db: String,
    /// The team ledger's database, dropped with the rig.
    _team: Option<TeamDb>,
    transport: Transport,
    n: usize,
    /// Grade scale (score_maximum) of the imported grades.
    max: f64,
}

fn sid(i: usize) -> String {
    format!("sid-{i}")
}

fn user(i: usize) -> String {
    format!("u-{i}")
}

/// The local score of learner `i` in grade version `v`: 0–10 in version 1,
/// rising by 20 points a version (so no new version is lower than what the LMS
/// holds, which overwrite protection would keep).
fn score(i: usize, v: u32) -> f64 {
    ((i * 7) % 11) as f64 + 20.0 * f64::from(v - 1)
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Rig {
    /// Learners `u-{i}` for `i >= n - unknown` have sourcedids the LMS never issued.
    fn lti11(n: usize, unknown: usize, sandbox_args: &[&str]) -> Self {
        Self::lti11_on(None, n, unknown, sandbox_args)
    }

    /// [`Rig::lti11`] on a team ledger (`Some`) or a ledger file (`None`).
    fn lti11_on(team: Option<TeamDb>, n: usize, unknown: usize, sandbox_args: &[&str]) -> Self {
        require_secret_service();
        let ledger = TempLedger::new();
        let db = team
            .as_ref()
            .map_or_else(|| ledger.db().to_string(), |t| t.url.clone());
        let sids = ledger.dir.path().join("sourcedids.txt");
        let mut f = std::fs::File::create(&sids).unwrap();
        for i in 0..n - unknown {
            writeln!(f, "{}", sid(i)).unwrap();
        }
        drop(f);
        let mut args = vec!["--sourcedids", sids.to_str().unwrap()];
        args.extend_from_slice(sandbox_args);
        if !sandbox_args.contains(&"--dialect") {
            args.extend_from_slice(&["--dialect", "moodle"]);
        }
        let sb = SandboxProc::start(&args);
        let rig = Self {
            sb,
            ledger,
            db,
            _team: team,
            transport: Transport::Lti11,
            n,
            max: 10.0,
        };
        let out = rig.run_stdin(
            &[
                "platform",
                "add-lti11",
                "--name",
                "sb",
                "--consumer-key",
                &rig.sb.s("consumer_key"),
                "--allow-host",
                "127.0.0.1",
            ],
            &rig.sb.s("consumer_secret"),
        );
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        rig
    }

    fn ltiaas(n: usize, sandbox_args: &[&str]) -> Self {
        require_secret_service();
        let ledger = TempLedger::new();
        let sb = SandboxProc::start(sandbox_args);
        let db = ledger.db().to_string();
        let rig = Self {
            sb,
            ledger,
            db,
            _team: None,
            transport: Transport::Ltiaas,
            n,
            max: 10.0,
        };
        let out = rig.run_stdin(
            &[
                "platform",
                "add-ltiaas",
                "--name",
                "sb",
                "--base-url",
                &rig.sb.s("ltiaas_base_url"),
            ],
            &rig.sb.s("ltiaas_api_key"),
        );
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let members: Vec<Value> = (0..n).map(|i| json!({"user_id": user(i)})).collect();
        let launch = rig.sb.admin(
            "ltiaas/launches",
            json!({
                "context_id": "c1", "resource_link_id": "rl-1", "user_id": "teacher",
                "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
                "line_item": {"label": "Lab 1", "score_maximum": 10},
                "members": members,
            }),
        );
        let out = rig.run_stdin(
            &["ltiaas", "idtoken", "--platform", "sb"],
            launch["ltik"].as_str().unwrap(),
        );
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        rig
    }

    fn command(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("passback"));
        c.arg("--db").arg(&self.db).env_remove("PASSBACK_DB");
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        self.command().args(args).output().unwrap().into()
    }

    fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap().into()
    }

    /// Import grade version `v` of every learner (a tool grade CSV).
    fn import(&self, v: u32) {
        self.import_rows(|i| score(i, v), v);
    }

    fn import_rows(&self, score_of: impl Fn(usize) -> f64, tag: u32) {
        let path = self.ledger.dir.path().join(format!("grades-{tag}.csv"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        match self.transport {
            Transport::Lti11 => {
                let url = self.sb.s("lti11_outcome_url");
                writeln!(
                    f,
                    "context_id,resource_link_id,user_id,score_given,score_maximum,lis_result_sourcedid,lis_outcome_service_url"
                )
                .unwrap();
                for i in 0..self.n {
                    writeln!(
                        f,
                        "c1,rl-1,{},{},{},{},{url}",
                        user(i),
                        score_of(i),
                        self.max,
                        sid(i)
                    )
                    .unwrap();
                }
            }
            Transport::Ltiaas => {
                writeln!(f, "context_id,resource_link_id,user_id,score_given,score_maximum").unwrap();
                for i in 0..self.n {
                    writeln!(f, "c1,rl-1,{},{},{}", user(i), score_of(i), self.max).unwrap();
                }
            }
        }
        drop(f);
        let out = self.run(&["import", path.to_str().unwrap(), "--platform", "sb"]);
        assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    }

    /// What the LMS holds, per learner, on the 0–1 scale.
    fn lms(&self) -> BTreeMap<String, Option<f64>> {
        match self.transport {
            Transport::Lti11 => {
                let r = results(&self.sb);
                (0..self.n)
                    .filter_map(|i| {
                        let v = r["results"].get(sid(i))?;
                        Some((user(i), v["score"].as_f64()))
                    })
                    .collect()
            }
            Transport::Ltiaas => self.sb.state()["scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let given = s["result_score"].as_f64();
                    let max = s["result_maximum"].as_f64().unwrap_or(1.0);
                    (s["user_id"].as_str().unwrap().to_string(), given.map(|g| g / max))
                })
                .collect(),
        }
    }

    /// Writes the LMS accepted or refused, per learner (reads not counted).
    fn writes(&self) -> BTreeMap<String, u64> {
        match self.transport {
            Transport::Lti11 => {
                let r = results(&self.sb);
                (0..self.n)
                    .filter_map(|i| Some((user(i), r["writes"].get(sid(i))?.as_u64()?)))
                    .collect()
            }
            Transport::Ltiaas => {
                // Every score POST, accepted or not.
                let mut by: BTreeMap<String, u64> = BTreeMap::new();
                for p in self.sb.state()["score_posts"].as_array().unwrap() {
                    *by.entry(p["user_id"].as_str().unwrap().to_string()).or_default() += 1;
                }
                by
            }
        }
    }

    /// Write attempts the journal holds as in flight (never completed), per learner.
    fn in_flight_writes(&self) -> BTreeMap<String, u64> {
        ledger_rows(
            &self.db,
            "SELECT l.lti_user_id, COUNT(*) FROM attempts x
               JOIN grades g ON g.id = x.grade_ref JOIN learners l ON l.id = g.learner_ref
              WHERE x.finished_at IS NULL AND x.operation IN ('replace', 'score')
              GROUP BY l.lti_user_id",
        )
        .into_iter()
        .map(|(u, n)| (u, n as u64))
        .collect()
    }

    fn sync_json(&self, args: &[&str]) -> (Run, Value) {
        let mut all = vec!["sync", "--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        let summary = out
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["event"] == "summary")
            .unwrap_or_else(|| panic!("no summary in {}\n{}", out.stdout, out.stderr));
        (out, summary)
    }

    fn statuses(&self) -> BTreeMap<String, String> {
        let out = self.run(&["grades", "--json"]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        serde_json::from_str::<Vec<Value>>(&out.stdout)
            .unwrap()
            .into_iter()
            .map(|g| {
                (
                    g["lti_user_id"].as_str().unwrap().to_string(),
                    g["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

fn results(sb: &SandboxProc) -> Value {
    reqwest::blocking::get(format!("{}/_sandbox/results", sb.s("base_url")))
        .unwrap()
        .json()
        .unwrap()
}

/// A small deterministic generator for trial timings.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

#[derive(Clone, Copy, Debug)]
enum Crash {
    Kill,
    Failpoint(&'static str),
}

/// Crash a sync of every grade's new version, sync again, and check the LMS and
/// the sandbox's write counts.
fn crash_trials(rig: &Rig, plan: &[(Crash, usize)], seed: u64) {
    let mut rng = Lcg(seed);
    let mut v = 1;
    rig.import(v);
    // A first, whole sync: it times one run for the kill trials.
    let t = Instant::now();
    let (out, summary) = rig.sync_json(&["--concurrency", "16"]);
    assert_eq!(out.code, Some(0), "{summary}\n{}", out.stderr);
    let whole = t.elapsed();
    let mut interrupted_somewhere = 0;
    for &(crash, trials) in plan {
        for trial in 0..trials {
            v += 1;
            rig.import(v);
            let before = rig.writes();
            let mut cmd = rig.command();
            cmd.args(["sync", "--concurrency", "16"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let status = match crash {
                Crash::Kill => {
                    let mut child = cmd.spawn().unwrap();
                    let at = whole.mul_f64(0.1 + rng.below(800) as f64 / 1000.0);
                    std::thread::sleep(at);
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap()
                }
                Crash::Failpoint(name) => {
                    // Hits: one per journal commit that starts attempts (a few dozen per
                    // run: they are grouped), or one per answer (two per grade).
                    let range = if name == "after_journal_commit" {
                        8
                    } else {
                        2 * rig.n as u64
                    };
                    let at = 1 + rng.below(range);
                    cmd.env("PASSBACK_FAILPOINT", format!("{name}:{at}"))
                        .status()
                        .unwrap()
                }
            };
            let crashed = status.code().is_none();
            assert!(
                crashed || matches!(crash, Crash::Kill),
                "{crash:?} trial {trial}: the failpoint did not stop the process ({status})"
            );
            let in_flight = rig.in_flight_writes();
            if crashed && !in_flight.is_empty() {
                interrupted_somewhere += 1;
            }
            // Restart: the dead run's attempts are recovered, the rest is sent.
            let (out, summary) = rig.sync_json(&["--concurrency", "16"]);
            assert_eq!(
                out.code,
                Some(0),
                "{crash:?} trial {trial}: the second sync did not confirm everything: {summary}\n{}",
                out.stderr
            );
            let lms = rig.lms();
            for i in 0..rig.n {
                let want = score(i, v) / rig.max;
                let got = lms.get(&user(i)).copied().flatten();
                assert!(
                    got.is_some_and(|g| (g - want).abs() < 1e-9),
                    "{crash:?} trial {trial}: {} holds {got:?}, the ledger {want}",
                    user(i)
                );
            }
            let after = rig.writes();
            for i in 0..rig.n {
                let u = user(i);
                let sent = after.get(&u).unwrap_or(&0) - before.get(&u).unwrap_or(&0);
                let allowed = 1 + in_flight.get(&u).copied().unwrap_or(0);
                assert!(
                    sent <= allowed,
                    "{crash:?} trial {trial}: {u} was written {sent} times; the journal held {} write(s) in \
                     flight at the crash",
                    allowed - 1
                );
            }
        }
    }
    // The trials did crash with requests in flight (not only before or after the work).
    assert!(
        interrupted_somewhere >= 3,
        "only {interrupted_somewhere} crash(es) left writes in flight"
    );
}

#[test]
fn lti11_sync_survives_kill_9_and_failpoints() {
    // kill -9 at random moments of a 2,000-grade sync...
    let mut rig = Rig::lti11(2000, 0, &["--seed", "21", "--latency-ms", "1-4"]);
    rig.max = 1000.0;
    crash_trials(&rig, &[(Crash::Kill, 10)], 21);
    // ...and failpoints at exact moments (a smaller course: each trial is one crash).
    let mut rig = Rig::lti11(300, 0, &["--seed", "31", "--latency-ms", "1-4"]);
    rig.max = 1000.0;
    crash_trials(
        &rig,
        &[
            (Crash::Failpoint("after_journal_commit"), 10),
            (Crash::Failpoint("after_response"), 10),
        ],
        31,
    );
}

#[test]
fn ltiaas_sync_survives_kill_9_and_failpoints() {
    let mut rig = Rig::ltiaas(2000, &["--seed", "22", "--latency-ms", "1-4"]);
    rig.max = 1000.0;
    crash_trials(&rig, &[(Crash::Kill, 10)], 22);
    let mut rig = Rig::ltiaas(300, &["--seed", "32", "--latency-ms", "1-4"]);
    rig.max = 1000.0;
    crash_trials(
        &rig,
        &[
            (Crash::Failpoint("after_journal_commit"), 10),
            (Crash::Failpoint("after_response"), 10),
        ],
        32,
    );
}

/// Attempts per learner from the journal: (operation, outcome, cause, started, finished).
fn journal_of(rig: &Rig, u: &str) -> Vec<Value> {
    let out = rig.run(&["attempts", "--learner", u, "--json", "--limit", "1000"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn a_fault_soak_converges_without_hot_loops() {
    let n = 400;
    let unknown = 12; // 3 %
    let rig = Rig::lti11(
        n,
        unknown,
        &[
            "--seed",
            "23",
            "--dialect",
            "canvas",
            "--fault",
            "503:0.2",
            "--fault",
            "hang:0.05",
            "--fault",
            "reset:0.02",
            "--fault",
            "429:0.01",
            "--fault",
            "notice_html:0.03",
            "--fault",
            "notice_text:0.03",
            "--fault",
            "malformed:0.01",
            // A burst of 429s, then Canvas's plain-text 403 rate limit.
            "--fail-next",
            "429",
            "--fail-next",
            "429",
            "--fail-next",
            "429",
            "--fail-next",
            "403",
            "--fail-next",
            "403",
            "--retry-after",
            "1",
            "--budget",
            "4000:400:10",
        ],
    );
    rig.import(1);
    let mut runs = 0;
    loop {
        runs += 1;
        let (out, summary) = rig.sync_json(&["--concurrency", "8", "--timeout", "1"]);
        assert!(out.code == Some(0) || out.code == Some(1), "{}", out.stderr);
        let st = rig.statuses();
        let open = (0..n - unknown).filter(|&i| st[&user(i)] != "in_sync").count();
        if open == 0 {
            break;
        }
        assert!(
            runs < 6,
            "{open} sendable grades still not in_sync after {runs} runs: {summary}"
        );
    }
    let st = rig.statuses();
    let r = results(&rig.sb);
    for i in 0..n {
        let u = user(i);
        if i >= n - unknown {
            assert_eq!(st[&u], "failed", "{u}: an unknown sourcedid ends failed");
            // Refused at the read (permanent): exactly one request got the LMS's
            // verdict, and nothing was tried after it, by this run or the next.
            // (Before it, a random 503 or hang may have answered instead.)
            let j = journal_of(&rig, &u); // newest first
            let refused: Vec<&Value> = j.iter().filter(|a| a["cause"] == "unknown_sourcedid").collect();
            assert_eq!(refused.len(), 1, "{u}: {j:?}");
            assert_eq!(
                j[0]["cause"], "unknown_sourcedid",
                "{u}: the refusal is the last attempt"
            );
            assert_eq!(j[0]["error_class"], "permanent");
            assert!(
                j[1..].iter().all(|a| a["error_class"] == "transient"),
                "{u}: only transient failures before the refusal: {j:?}"
            );
            // (A request refused by the budget never reaches its sourcedid.)
            assert!(r["requests"][sid(i)].as_u64().unwrap() <= j.len() as u64, "{u}");
        } else {
            assert_eq!(st[&u], "in_sync", "{u}");
            let want = score(i, 1) / rig.max;
            let got = r["results"][sid(i)]["score"].as_f64().unwrap();
            assert!((got - want).abs() < 1e-9, "{u}: {got} != {want}");
        }
    }
    // No hot loop: each grade needs a read and a write; retries are bounded.
    let total = r["total_requests"].as_u64().unwrap();
    assert!(
        total < (n as u64) * 2 * 3,
        "{total} requests for {n} grades over {runs} runs"
    );
    // Retry-After honoured: after a 429 or 503 answer the same run retries the
    // grade no sooner than the second the sandbox asked for. (A new run does
    // not remember an earlier run's Retry-After.)
    // (The gap is computed here: SQLite and PostgreSQL do date arithmetic differently.)
    let ms_of = |t: &str| {
        let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap();
        (t.unix_timestamp_nanos() / 1_000_000) as i64
    };
    let waits: Vec<(String, i64)> = ledger_rows(
        &rig.db,
        "SELECT CAST(a.id AS TEXT) || ' ' || a.finished_at || ' ' || b.started_at, 0
           FROM attempts a JOIN attempts b ON b.grade_ref = a.grade_ref AND b.id = (
                SELECT MIN(id) FROM attempts c WHERE c.grade_ref = a.grade_ref AND c.id > a.id)
          WHERE a.http_status IN (429, 503) AND b.run_id = a.run_id",
    )
    .into_iter()
    .map(|(row, _)| {
        let mut parts = row.split(' ');
        let (id, finished, next) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        (id.to_string(), ms_of(next) - ms_of(finished))
    })
    .collect();
    assert!(!waits.is_empty(), "the soak produced no 429 or 503 answers");
    for (id, ms) in &waits {
        assert!(*ms >= 995, "attempt {id}: retried {ms} ms after Retry-After: 1");
    }
}

#[test]
fn a_success_behind_a_php_notice_is_in_sync_after_one_write() {
    for kind in ["notice_html", "notice_text"] {
        let rig = Rig::lti11(3, 0, &["--seed", "24"]);
        rig.import(1);
        // Learn what the LMS holds (nothing), so the sync only writes.
        let out = rig.run(&["reconcile", "--json"]);
        assert!(out.code.is_some(), "{}", out.stderr);
        let before = results(&rig.sb)["total_requests"].as_u64().unwrap();
        rig.sb.admin("faults", json!({"script": [kind, kind, kind]}));
        let (out, summary) = rig.sync_json(&[]);
        assert_eq!(out.code, Some(0), "{kind}: {summary}");
        let r = results(&rig.sb);
        assert_eq!(
            r["total_requests"].as_u64().unwrap() - before,
            3,
            "{kind}: one write per grade"
        );
        assert!(rig.statuses().values().all(|s| s == "in_sync"), "{kind}");
    }
}

#[test]
fn lms_higher_grades_survive_a_plain_sync_and_yield_to_force_lower() {
    for transport in [Transport::Lti11, Transport::Ltiaas] {
        let rig = match transport {
            Transport::Lti11 => Rig::lti11(4, 0, &["--seed", "25"]),
            Transport::Ltiaas => Rig::ltiaas(4, &["--seed", "25"]),
        };
        // The LMS holds 9/10 for everyone (an instructor's override)...
        rig.import_rows(|_| 9.0, 100);
        let (out, _) = rig.sync_json(&[]);
        assert_eq!(out.code, Some(0), "{transport:?}");
        // ...and the tool now says 4/10.
        rig.import_rows(|_| 4.0, 101);
        let writes = rig.writes();
        let (out, summary) = rig.sync_json(&[]);
        assert_eq!(
            out.code,
            Some(1),
            "{transport:?}: LMS-higher grades are not confirmed: {summary}"
        );
        assert_eq!(rig.writes(), writes, "{transport:?}: nothing written");
        assert!(
            rig.lms().values().all(|v| *v == Some(0.9)),
            "{transport:?}: {:?}",
            rig.lms()
        );
        let st = rig.statuses();
        assert!(st.values().all(|s| s == "differs"), "{transport:?}: {st:?}");
        let grades: Vec<Value> = serde_json::from_str(&rig.run(&["grades", "--json"]).stdout).unwrap();
        assert!(
            grades
                .iter()
                .all(|g| g["lms_score"] == 0.9 && g["lms_seen_at"].is_string()),
            "{transport:?}: {grades:?}"
        );
        let text = rig.run(&["sync"]);
        assert!(
            text.stdout.contains("LMS higher") || text.stderr.contains("LMS higher"),
            "{transport:?}: {}{}",
            text.stdout,
            text.stderr
        );
        // --force-lower writes them.
        let (out, summary) = rig.sync_json(&["--force-lower"]);
        assert_eq!(out.code, Some(0), "{transport:?}: {summary}");
        assert!(
            rig.lms().values().all(|v| *v == Some(0.4)),
            "{transport:?}: {:?}",
            rig.lms()
        );
        assert!(rig.statuses().values().all(|s| s == "in_sync"), "{transport:?}");
    }
}

#[test]
fn canvas_rounding_of_a_seven_point_activity_is_in_sync() {
    let mut rig = Rig::lti11(
        3,
        0,
        &["--seed", "26", "--dialect", "canvas", "--points-possible", "7"],
    );
    rig.max = 7.0;
    // 1/3, 2/3 and 0.125 of 7 points.
    let points = [7.0 / 3.0, 14.0 / 3.0, 0.875];
    rig.import_rows(|i| points[i], 1);
    let (out, summary) = rig.sync_json(&[]);
    assert_eq!(out.code, Some(0), "{summary}");
    // Canvas kept hundredths of a point: 2.33, 4.67 and 0.88 (of 7).
    let lms = rig.lms();
    assert!((lms["u-0"].unwrap() - 2.33 / 7.0).abs() < 1e-9, "{lms:?}");
    assert!((lms["u-1"].unwrap() - 4.67 / 7.0).abs() < 1e-9, "{lms:?}");
    assert!((lms["u-2"].unwrap() - 0.88 / 7.0).abs() < 1e-9, "{lms:?}");
    // Reading them back finds them in sync, and a second sync sends nothing.
    let out = rig.run(&["reconcile", "--json"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(
        rig.statuses().values().all(|s| s == "in_sync"),
        "{:?}",
        rig.statuses()
    );
    let before = results(&rig.sb)["total_requests"].as_u64().unwrap();
    let (out, summary) = rig.sync_json(&[]);
    assert_eq!(out.code, Some(0), "{summary}");
    assert_eq!(results(&rig.sb)["total_requests"].as_u64().unwrap(), before);
}

#[test]
fn dry_run_plans_and_shows_a_redacted_request_without_sending() {
    let rig = Rig::lti11(5, 1, &["--seed", "27"]);
    rig.import(1);
    let out = rig.run(&["sync", "--dry-run"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("5"), "{text}");
    assert!(text.to_lowercase().contains("redacted"), "{text}");
    assert!(!text.contains(&rig.sb.s("consumer_secret")), "{text}");
    assert!(
        !regex_like_signature(&text),
        "a live oauth_signature in the dry run: {text}"
    );
    assert_eq!(results(&rig.sb)["total_requests"], 0);
    assert!(rig.statuses().values().all(|s| s == "pending"));
}

/// Whether `text` carries an `oauth_signature="…"` value that is not redacted.
fn regex_like_signature(text: &str) -> bool {
    text.match_indices("oauth_signature=\"").any(|(at, m)| {
        let rest = &text[at + m.len()..];
        let value = &rest[..rest.find('"').unwrap_or(rest.len())];
        !value.is_empty() && !value.to_lowercase().contains("redacted")
    })
}

#[test]
fn attempts_and_exports_show_the_work_without_secrets() {
    let rig = Rig::lti11(6, 1, &["--seed", "28"]);
    rig.import(1);
    let (out, _) = rig.sync_json(&[]);
    assert_eq!(out.code, Some(1), "an unknown sourcedid fails");
    let j = journal_of(&rig, "u-0");
    assert_eq!(j.len(), 2, "a read, then a write: {j:?}");
    let ops: Vec<&str> = j.iter().map(|a| a["operation"].as_str().unwrap()).collect();
    assert!(ops.contains(&"read") && ops.contains(&"replace"), "{ops:?}");

    let dir = rig.ledger.dir.path();
    let audit = dir.join("audit.csv");
    let out = rig.run(&["export", "audit", "--out", audit.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let text = std::fs::read_to_string(&audit).unwrap();
    let headers: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    for col in [
        "attempt_id",
        "who",
        "started_at",
        "cause",
        "lms_before",
        "lms_before_at",
    ] {
        assert!(headers.contains(&col), "{col} in {headers:?}");
    }
    // Six grades: five read and written, one refused at the read.
    assert_eq!(text.lines().count(), 1 + 11, "every attempt: {text}");
    assert!(!text.contains(&rig.sb.s("consumer_secret")));

    let status = dir.join("status.csv");
    let out = rig.run(&[
        "export",
        "status",
        "--status",
        "failed",
        "--out",
        status.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let text = std::fs::read_to_string(&status).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("u-5") && text.contains("failed"), "{text}");
}

/// Two sync runs on one ledger — a team ledger on PostgreSQL in the test
/// command's PostgreSQL step, else a ledger file (two processes on one machine) —
/// split the grades; one is killed with `kill -9` midway, and the other finishes
/// the killed run's claims once their lease expires. Every grade lands, none is
/// written twice beyond what the killed run had in flight, and each attempt names
/// the worker that made it.
#[test]
fn team_two_runs_split_the_work_and_the_survivor_finishes_a_killed_runs_claims() {
    let n = 2000;
    let lease: u64 = 3;
    let rig = Rig::lti11_on(TeamDb::new(), n, 0, &["--seed", "31", "--latency-ms", "2-6"]);
    rig.import(1);
    let spawn = |actor: &str, out: Stdio, err: Stdio| {
        rig.command()
            .args(["sync", "--json", "--concurrency", "8"])
            .env("PASSBACK_CLAIM_LEASE_SECS", lease.to_string())
            .env("PASSBACK_ACTOR", actor)
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap()
    };
    // The killed run's output is not read (a full pipe would stall it).
    let mut a = spawn("worker-a", Stdio::null(), Stdio::null());
    // The survivor's output goes to files, read once it ends (a pipe nobody reads
    // would fill up and stall it).
    let b_out = rig.ledger.dir.path().join("worker-b.out");
    let b_err = rig.ledger.dir.path().join("worker-b.err");
    let mut b = spawn(
        "worker-b",
        std::fs::File::create(&b_out).unwrap().into(),
        std::fs::File::create(&b_err).unwrap().into(),
    );
    // Midway: a third of the grades written.
    let t = Instant::now();
    while results(&rig.sb)["total_writes"].as_u64().unwrap() < (n / 3) as u64 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the runs did not get going"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let a_pid = a.id();
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();
    let killed = Instant::now();
    let status = b.wait().unwrap();
    let out = Run {
        code: status.code(),
        stdout: std::fs::read_to_string(&b_out).unwrap(),
        stderr: std::fs::read_to_string(&b_err).unwrap(),
    };
    let survivor_took = killed.elapsed();
    assert_eq!(
        out.code,
        Some(0),
        "the survivor did not confirm everything: {}\n{}",
        out.stdout,
        out.stderr
    );
    let summary = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {}", out.stdout));
    let taken_over = summary["run"]["taken_over"].as_u64().unwrap();
    assert!(
        taken_over > 0,
        "the survivor took over the killed run's grades: {summary}"
    );
    assert!(
        survivor_took >= Duration::from_secs(lease - 1),
        "the survivor waited for the killed run's claims to expire ({survivor_took:?}, lease {lease} s)"
    );

    // Every grade landed with the ledger's value.
    let lms = rig.lms();
    for i in 0..n {
        let want = score(i, 1) / rig.max;
        let got = lms.get(&user(i)).copied().flatten();
        assert!(
            got.is_some_and(|g| (g - want).abs() < 1e-9),
            "{} holds {got:?}, the ledger {want}",
            user(i)
        );
    }
    // Written once each, beyond the writes the killed run had in flight (the
    // survivor closed those as interrupted, then read before sending again).
    let in_flight: BTreeMap<String, i64> = ledger_rows(
        &rig.db,
        &format!(
            "SELECT l.lti_user_id, COUNT(*) FROM attempts x JOIN learners l ON l.id = x.learner_ref
              WHERE x.cause = 'interrupted' AND x.operation = 'replace' AND x.run_id LIKE '{a_pid}@%'
              GROUP BY l.lti_user_id"
        ),
    )
    .into_iter()
    .collect();
    let writes = rig.writes();
    let mut total = 0;
    for i in 0..n {
        let u = user(i);
        let sent = writes.get(&u).copied().unwrap_or(0);
        let allowed = 1 + in_flight.get(&u).copied().unwrap_or(0) as u64;
        assert!(
            (1..=allowed).contains(&sent),
            "{u} was written {sent} times (allowed {allowed})"
        );
        total += sent;
    }
    let extra = total - n as u64;
    let in_flight_total: i64 = in_flight.values().sum();
    assert!(
        extra <= in_flight_total as u64,
        "{extra} extra writes, {in_flight_total} in flight at the kill"
    );
    eprintln!(
        "killed worker-a midway; worker-b took over {taken_over} grade(s) after {survivor_took:?}; \
         {in_flight_total} write(s) were in flight at the kill, {extra} grade(s) written twice"
    );
    // Both runs worked, each under its own name.
    let by: BTreeMap<String, i64> = ledger_rows(
        &rig.db,
        "SELECT COALESCE(actor, ''), COUNT(*) FROM attempts WHERE operation = 'replace' GROUP BY actor",
    )
    .into_iter()
    .collect();
    assert!(
        by.get("worker-a").copied().unwrap_or(0) > 0 && by.get("worker-b").copied().unwrap_or(0) > 0,
        "{by:?}"
    );
    // Nothing is left to send.
    let (out, summary) = rig.sync_json(&[]);
    assert_eq!(out.code, Some(0), "{summary}");
    assert_eq!(summary["run"]["requests"], 0, "{summary}");
}

/// A job with no keyring reads the platform's secret from a file only its owner
/// can read (`--secrets-file`); the file's secret is what signs (a wrong one is
/// refused by the LMS), and a file others can read is refused before anything.
#[test]
fn a_sync_job_takes_its_secret_from_a_private_secrets_file() {
    use std::os::unix::fs::PermissionsExt;
    let rig = Rig::lti11(3, 0, &["--seed", "41"]);
    rig.import(1);
    let file = rig.ledger.dir.path().join("secrets.json");
    let write = |secret: &str, mode: u32| {
        std::fs::write(
            &file,
            json!({"platforms": {"sb": {"secret": secret, "hosts": ["127.0.0.1"]}}}).to_string(),
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let f = file.to_str().unwrap();
    write(&rig.sb.s("consumer_secret"), 0o644);
    let out = rig.run(&["--secrets-file", f, "sync"]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("chmod 600"), "{}", out.stderr);
    assert_eq!(results(&rig.sb)["total_requests"], 0, "nothing was sent");
    write("not-the-secret", 0o600);
    let out = rig.run(&["--secrets-file", f, "sync"]);
    assert_ne!(
        out.code,
        Some(0),
        "a wrong secret in the file is what signed: {}",
        out.stdout
    );
    write(&rig.sb.s("consumer_secret"), 0o600);
    let out = rig.run(&["--secrets-file", f, "sync"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let out = rig.run(&["--secrets-file", f, "doctor"]);
    assert!(out.stdout.contains("secrets file"), "{}", out.stdout);
    let out = rig.run_stdin(&["--secrets-file", f, "platform", "secret", "set", "sb"], "x");
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("never writes"), "{}", out.stderr);
}
