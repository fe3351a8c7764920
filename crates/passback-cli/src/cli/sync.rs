//! `passback reconcile`, `passback sync`, `passback attempts`, `passback export`.
//!
//! Thin: the engine reports through [`Progress`]; this file draws it as an
//! `indicatif` bar on a terminal (or NDJSON events with `--json`) and prints the
//! summary grouped by cause. Exit 0 only when everything planned ended confirmed.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use passback::app::sync::{ReconcileRequest, SyncReport, SyncRequest};
use passback::model::GradeStatus;
use passback::progress::{Flow, Progress, Start, Tally};
use passback::store::{AttemptFilter, GradeFilter};
use passback::sync::engine::{Ended, GradeResult};
use passback::sync::plan::Only;
use passback::{Error, Result};

use super::grades::StatusArg;
use super::open;
use super::output::{fmt_score, one_line, print_json, print_table};

/// Which grades: the filters every grade command shares.
#[derive(Debug, Args, Clone, Default)]
pub struct Which {
    /// Only this platform's grades.
    #[arg(long)]
    pub platform: Option<String>,
    /// Only this course (LTI context_id).
    #[arg(long)]
    pub context: Option<String>,
    /// Only this activity (resource_link_id or title).
    #[arg(long)]
    pub activity: Option<String>,
    /// Only this learner (LTI user_id).
    #[arg(long)]
    pub learner: Option<String>,
}

impl Which {
    pub fn filter(&self) -> GradeFilter {
        GradeFilter {
            platform: self.platform.clone(),
            context: self.context.clone(),
            activity: self.activity.clone(),
            learner: self.learner.clone(),
            ..GradeFilter::default()
        }
    }
}

/// How politely to talk to each LMS host.
#[derive(Debug, Args, Clone, Default)]
pub struct Pace {
    /// Requests in flight per LMS host.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub concurrency: usize,
    /// At most this many requests a second per LMS host.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Seconds before one request gives up (it is then retried as a transient failure).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub which: Which,
    /// Compare against the latest imported gradebook export instead of reading the LMS.
    #[arg(long)]
    pub from_export: bool,
    #[command(flatten)]
    pub pace: Pace,
    /// Print NDJSON: an event per grade read, then a summary.
    #[arg(long)]
    pub json: bool,
}

/// `--only`, as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum OnlyArg {
    Failed,
    Pending,
    LmsMissing,
    Differs,
    All,
}

impl From<OnlyArg> for Only {
    fn from(o: OnlyArg) -> Self {
        match o {
            OnlyArg::Failed => Only::Failed,
            OnlyArg::Pending => Only::Pending,
            OnlyArg::LmsMissing => Only::LmsMissing,
            OnlyArg::Differs => Only::Differs,
            OnlyArg::All => Only::All,
        }
    }
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub which: Which,
    /// Only grades with these statuses (repeatable or comma-separated; `failed` and `all`
    /// also retry permanent failures). Default: everything not in sync, except permanent
    /// failures nobody changed.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<OnlyArg>,
    /// These grades (ids from `passback grades --json`), whatever their last failure.
    #[arg(long = "grade", value_name = "ID", value_delimiter = ',')]
    pub grades: Vec<i64>,
    /// Print the plan and one example request (secrets and signature redacted); send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Read back after writing; a grade is in sync only when the read matches.
    #[arg(long)]
    pub verify: bool,
    /// Write even where the LMS holds a higher grade (a possible instructor override).
    #[arg(long)]
    pub force_lower: bool,
    #[command(flatten)]
    pub pace: Pace,
    /// Print NDJSON: an event per grade, then a summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AttemptsArgs {
    /// Only this grade's attempts (its id from `passback grades --json`).
    #[arg(long, value_name = "ID")]
    pub grade: Option<i64>,
    /// Only this learner's attempts (LTI user_id).
    #[arg(long)]
    pub learner: Option<String>,
    /// Only this platform's attempts.
    #[arg(long)]
    pub platform: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// Show the redacted request and response excerpts too.
    #[arg(long)]
    pub excerpts: bool,
    /// Print JSON (with the excerpts).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ExportCmd {
    /// Every attempt, oldest first: who sent what, when, how it ended, its cause, and the
    /// LMS value seen before each write (so a mistaken bulk sync can be reversed). No secrets.
    Audit {
        /// The CSV file to write.
        #[arg(long, value_name = "FILE.csv")]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The current grades with these statuses, local and LMS values side by side
    /// (default: every status but in_sync).
    Status {
        /// Statuses (repeatable or comma-separated).
        #[arg(long, value_enum, value_delimiter = ',')]
        status: Vec<StatusArg>,
        #[command(flatten)]
        which: Which,
        /// The CSV file to write.
        #[arg(long, value_name = "FILE.csv")]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// Ctrl-C once: finish what is in flight, start nothing new. Twice: quit at once
/// (what was in flight is resolved by a read next time).
fn cancel_on_ctrl_c() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
            eprintln!(
                "\nstopping: waiting for the requests in flight (Ctrl-C again to quit now; the next run \
                 resolves them by reading the LMS)"
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    cancel
}

/// One failure cause as the summary shows it: how many, with the first description and hint.
#[derive(Default)]
struct CauseGroup {
    n: u64,
    class: Option<String>,
    example: String,
    hint: Option<String>,
}

/// Draws a run: a bar on a terminal, NDJSON with `--json`; remembers an example per cause.
struct Sink {
    json: bool,
    bar: ProgressBar,
    cancel: Arc<AtomicBool>,
    causes: BTreeMap<String, CauseGroup>,
    cannot_send: BTreeMap<String, u64>,
    lms_higher: u64,
}

impl Sink {
    fn new(json: bool, cancel: Arc<AtomicBool>) -> Self {
        Self {
            json,
            bar: ProgressBar::hidden(),
            cancel,
            causes: BTreeMap::new(),
            cannot_send: BTreeMap::new(),
            lms_higher: 0,
        }
    }
}

impl Progress<GradeResult> for Sink {
    fn begin(&mut self, start: &Start) {
        if self.json {
            println!(
                "{}",
                serde_json::json!({"event": "begin", "job": start.job, "title": start.title, "total": start.total})
            );
            return;
        }
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        self.bar = ProgressBar::with_draw_target(start.total, target);
        self.bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        self.bar.set_message(start.title.clone());
    }

    fn item(&mut self, tally: &Tally, r: &GradeResult) -> Flow {
        match r.ended {
            Ended::Failed => {
                let key = r.cause.map(|c| c.as_str()).unwrap_or("unknown").to_string();
                let g = self.causes.entry(key).or_default();
                g.n += 1;
                if g.n == 1 {
                    g.class = r.error_class.map(|c| c.as_str().to_string());
                    g.example = one_line(&r.description);
                    g.hint = r.fix_hint.clone();
                }
            }
            Ended::CannotSend => *self.cannot_send.entry(one_line(&r.description)).or_default() += 1,
            Ended::LmsHigher => self.lms_higher += 1,
            _ => {}
        }
        if self.json {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["event"] = "grade".into();
            v["done"] = tally.done.into();
            v["failed"] = tally.failed.into();
            v["remaining"] = tally.remaining().into();
            v["per_second"] = tally.rate().into();
            v["eta_seconds"] = tally.eta().map(|d| d.as_secs_f64()).into();
            println!("{v}");
        } else {
            self.bar.set_position(tally.done);
            if tally.failed > 0 {
                self.bar.set_message(format!("{} failed so far", tally.failed));
            }
        }
        if self.cancel.load(Ordering::SeqCst) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn finish(&mut self, _tally: &Tally) {
        self.bar.finish_and_clear();
    }
}

fn n_of(map: &BTreeMap<String, u64>, k: &str) -> u64 {
    map.get(k).copied().unwrap_or(0)
}

fn status_line(report: &SyncReport) -> String {
    let parts: Vec<String> = report
        .statuses
        .counts
        .iter()
        .map(|(s, n)| format!("{} {n}", s.as_str()))
        .collect();
    if parts.is_empty() {
        "no grades match".into()
    } else {
        parts.join(", ")
    }
}

/// The human summary of a run.
fn print_summary(report: &SyncReport, sink: &Sink) {
    let run = &report.run;
    let p = &run.plan;
    let mut skipped: Vec<String> = p.skipped.iter().map(|(k, n)| format!("{k} {n}")).collect();
    if skipped.is_empty() {
        skipped.push("none".into());
    }
    println!(
        "{} grade(s) matched: {} to work on ({} read first), {} cannot be sent, skipped: {}.",
        p.matched,
        p.work,
        p.read_first,
        p.cannot_send,
        skipped.join(", ")
    );
    let e = &run.ended;
    if run.job == "reconcile" {
        println!("Read {} grade(s), {} failed.", n_of(e, "read"), n_of(e, "failed"));
    } else {
        println!(
            "Sent {}, already in sync {}, LMS higher (left alone) {}, failed {}, cannot send {}, not tried {}.",
            n_of(e, "sent"),
            n_of(e, "already_in_sync"),
            n_of(e, "lms_higher"),
            n_of(e, "failed"),
            n_of(e, "cannot_send"),
            n_of(e, "stopped"),
        );
    }
    // Runs on one ledger split the grades (see `passback sync --help`).
    let mine: u64 = e.values().sum();
    if mine < p.work + p.cannot_send && !run.cancelled {
        println!(
            "Another run on this ledger worked on the other {} grade(s) at the same time.",
            p.work + p.cannot_send - mine
        );
    }
    if run.taken_over > 0 {
        println!(
            "Took over {} grade(s) from a run that stopped (read first, sent only if the LMS lacked them).",
            run.taken_over
        );
    }
    for (platform, why) in &run.stopped_platforms {
        println!("Platform {platform} stopped: {why}");
    }
    if !sink.causes.is_empty() {
        println!("Failed, by cause:");
        for (cause, g) in &sink.causes {
            let class = g.class.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default();
            println!("  {cause}{class}: {} — e.g. {}", g.n, g.example);
            if let Some(h) = &g.hint {
                println!("    hint: {h}");
            }
        }
    }
    if !sink.cannot_send.is_empty() {
        println!("Cannot be sent until someone acts:");
        for (why, n) in &sink.cannot_send {
            println!("  {n}: {why}");
        }
    }
    if sink.lms_higher > 0 {
        println!(
            "{} grade(s) are higher in the LMS than here (possible instructor override): left alone; \
             `passback sync --only differs --force-lower` writes over them.",
            sink.lms_higher
        );
    }
    println!(
        "{} request(s) in {:.1} s{}.",
        run.requests,
        run.elapsed_ms as f64 / 1000.0,
        if run.cancelled { ", cancelled" } else { "" }
    );
    println!("Statuses now: {}.", status_line(report));
    if !sink.causes.is_empty() {
        println!(
            "List the failures: passback grades --status failed; their attempts: passback attempts --grade ID"
        );
    }
}

fn print_report(report: &SyncReport, sink: &Sink, json: bool) -> Result<()> {
    if json {
        let mut v = serde_json::to_value(report).map_err(|e| Error::internal(e.to_string()))?;
        v["event"] = "summary".into();
        v["all_confirmed"] = report.run.all_confirmed().into();
        println!("{v}");
    } else {
        print_summary(report, sink);
    }
    let _ = std::io::stdout().flush();
    Ok(())
}

pub async fn reconcile(db: Option<&Path>, a: ReconcileArgs) -> Result<ExitCode> {
    let pb = open(db).await?;
    let req = ReconcileRequest {
        filter: a.which.filter(),
        from_export: a.from_export,
        concurrency: Some(a.pace.concurrency),
        rate: a.pace.rate,
        timeout_secs: Some(a.pace.timeout),
    };
    let mut sink = Sink::new(a.json, cancel_on_ctrl_c());
    let report = pb.reconcile(&req, &mut sink).await;
    sink.bar.finish_and_clear();
    let report = report?;
    if a.from_export && !a.json {
        if let Some((file, at)) = &report.statuses.export {
            println!("Compared against the gradebook export {file}, made {at}.");
        }
        println!("Statuses: {}.", status_line(&report));
        return Ok(ExitCode::SUCCESS);
    }
    print_report(&report, &sink, a.json)?;
    Ok(super::code(report.run.all_confirmed()))
}

pub async fn sync(db: Option<&Path>, a: SyncArgs) -> Result<ExitCode> {
    let pb = open(db).await?;
    let mut filter = a.which.filter();
    filter.grades = a.grades.clone();
    let req = SyncRequest {
        filter,
        only: a.only.iter().copied().map(Only::from).collect(),
        force_lower: a.force_lower,
        verify: a.verify,
        dry_run: a.dry_run,
        concurrency: Some(a.pace.concurrency),
        rate: a.pace.rate,
        timeout_secs: Some(a.pace.timeout),
    };
    let mut sink = Sink::new(a.json, cancel_on_ctrl_c());
    let report = pb.sync(&req, &mut sink).await;
    sink.bar.finish_and_clear();
    let report = report?;
    if a.dry_run {
        if a.json {
            print_report(&report, &sink, true)?;
        } else {
            let p = &report.run.plan;
            println!(
                "Dry run: {} grade(s) matched; would work on {} ({} read first); {} cannot be sent; {} skipped.",
                p.matched,
                p.work,
                p.read_first,
                p.cannot_send,
                p.skipped.values().sum::<u64>()
            );
            for (k, n) in &p.skipped {
                println!("  skipped {k}: {n}");
            }
            match &report.run.example_request {
                Some(ex) => println!("An example request (secrets and signature redacted):\n{ex}"),
                None => println!("Nothing to send."),
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    print_report(&report, &sink, a.json)?;
    Ok(super::code(report.run.all_confirmed()))
}

pub async fn attempts(db: Option<&Path>, a: AttemptsArgs) -> Result<ExitCode> {
    let pb = open(db).await?;
    let rows = pb
        .attempts(
            &AttemptFilter {
                grade_id: a.grade,
                learner: a.learner.clone(),
                platform: a.platform.clone(),
            },
            a.limit,
        )
        .await?;
    if a.json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("No attempts match. Attempts are journaled by sync, reconcile and send-one.");
        return Ok(ExitCode::SUCCESS);
    }
    let score = |v: Option<f64>| {
        v.map(|v| format!("{}%", fmt_score(v * 100.0)))
            .unwrap_or_default()
    };
    if a.excerpts {
        for r in &rows {
            println!(
                "#{} {} by {} {} {} {} {}: {}",
                r.attempt_id,
                r.started_at,
                r.actor.as_deref().or(r.run_id.as_deref()).unwrap_or("?"),
                r.operation,
                r.outcome,
                r.cause.as_deref().unwrap_or(""),
                r.http_status.map(|s| s.to_string()).unwrap_or_default(),
                r.description.as_deref().unwrap_or("")
            );
            if let Some(req) = &r.request_excerpt {
                println!("  request:\n{}", indent(req));
            }
            if let Some(resp) = &r.response_excerpt {
                println!("  response:\n{}", indent(resp));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.attempt_id.to_string(),
                r.started_at.clone(),
                // The person or job; the process (or import batch) for older attempts.
                r.actor.clone().or_else(|| r.run_id.clone()).unwrap_or_default(),
                r.lti_user_id.clone().unwrap_or_default(),
                r.resource_link_id.clone().unwrap_or_default(),
                r.operation.clone(),
                r.outcome.clone(),
                r.http_status.map(|s| s.to_string()).unwrap_or_default(),
                r.cause.clone().unwrap_or_default(),
                score(r.score_sent),
                score(r.read_score),
                r.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "STARTED",
            "WHO",
            "LEARNER",
            "ACTIVITY",
            "OP",
            "OUTCOME",
            "HTTP",
            "CAUSE",
            "SENT",
            "READ",
            "DESCRIPTION",
        ],
        &table,
    );
    Ok(ExitCode::SUCCESS)
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub async fn export(db: Option<&Path>, cmd: ExportCmd) -> Result<ExitCode> {
    let pb = open(db).await?;
    let (what, out, n, json) = match cmd {
        ExportCmd::Audit { out, json } => {
            let n = pb.export_audit(&out).await?;
            ("attempt", out, n, json)
        }
        ExportCmd::Status {
            status,
            which,
            out,
            json,
        } => {
            let mut filter = which.filter();
            filter.status = if status.is_empty() {
                GradeStatus::ALL
                    .into_iter()
                    .filter(|s| *s != GradeStatus::InSync)
                    .collect()
            } else {
                status.into_iter().map(GradeStatus::from).collect()
            };
            let n = pb.export_status(&filter, &out).await?;
            ("grade", out, n, json)
        }
    };
    if json {
        print_json(&serde_json::json!({"file": out.display().to_string(), "rows": n}))?;
    } else {
        println!("Wrote {n} {what}(s) to {}.", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_only_value_maps_to_its_engine_value() {
        for (arg, only) in [
            (OnlyArg::Failed, Only::Failed),
            (OnlyArg::Pending, Only::Pending),
            (OnlyArg::LmsMissing, Only::LmsMissing),
            (OnlyArg::Differs, Only::Differs),
            (OnlyArg::All, Only::All),
        ] {
            assert_eq!(Only::from(arg), only);
            // The spelling on the command line is the engine's serde name.
            let spelled = arg.to_possible_value().map(|v| v.get_name().to_string());
            assert_eq!(
                spelled,
                serde_json::to_value(only)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
            );
        }
    }

    #[test]
    fn which_becomes_a_filter_with_no_status_and_no_grades() {
        let w = Which {
            platform: Some("p".into()),
            context: Some("c".into()),
            activity: None,
            learner: Some("u".into()),
        };
        let f = w.filter();
        assert_eq!(f.platform.as_deref(), Some("p"));
        assert_eq!(f.context.as_deref(), Some("c"));
        assert_eq!(f.learner.as_deref(), Some("u"));
        assert!(f.status.is_empty() && f.grades.is_empty());
    }
}
