//! `passback import FILE…`, `passback import list | show BATCH | undo BATCH`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use passback::import::{Format, ImportEvent, ImportOptions, ImportReport, MacDigest};
use passback::model::{RowIssue, RowIssueKind};
use passback::progress::{Flow, Progress, Start, Tally};
use passback::{Error, Result};

use super::open;
use super::output::{JsonFlag, print_json, print_table};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub command: Option<ImportCmd>,
    /// Files to import (the format is told from their content).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// The format, when detection should not decide.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// The platform whose credentials will sign the imported grades.
    #[arg(long)]
    pub platform: Option<String>,
    /// Read and report; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Reject a whole file at its first bad row (default: quarantine bad rows, import the rest).
    #[arg(long)]
    pub strict: bool,
    /// The URL captured launches were signed for (when they carry no launch_url).
    #[arg(long, value_name = "URL")]
    pub launch_url: Option<String>,
    /// Read the proxy tool's shared secret from this environment variable
    /// (default: the --platform's keyring entry).
    #[arg(long, value_name = "VAR")]
    pub proxy_secret_env: Option<String>,
    /// The digest of proxy-tool MACs.
    #[arg(long, value_enum, default_value_t = MacArg::Md5)]
    pub mac: MacArg,
    /// The course (LTI context_id) a gradebook export belongs to.
    #[arg(long, value_name = "CONTEXT_ID")]
    pub context: Option<String>,
    /// When a gradebook export was made (ISO 8601), if not in its file name.
    #[arg(long, value_name = "TIME")]
    pub exported_at: Option<String>,
    /// Store Open edX consumer secrets found in a dump in the keyring of their platform
    /// (by default they are dropped).
    #[arg(long)]
    pub store_secrets: bool,
    /// Print NDJSON: an event per rejected or skipped row, progress, and a report per file.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImportCmd {
    /// List import batches with their counts, newest first.
    List(JsonFlag),
    /// Show one batch and every row it rejected or skipped.
    Show {
        batch: i64,
        #[arg(long)]
        json: bool,
    },
    /// Take a batch back: its grade versions, targets, observations and launches.
    Undo {
        batch: i64,
        /// Confirm taking the batch back.
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
}

/// The formats, as the command line spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    ToolCsv,
    EdxLog,
    EdxDump,
    Caliper,
    Launches,
    Proxy,
    LtiaasIdtoken,
    CanvasGradebook,
    MoodleGradebook,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::ToolCsv => Format::ToolCsv,
            FormatArg::EdxLog => Format::EdxLog,
            FormatArg::EdxDump => Format::EdxDump,
            FormatArg::Caliper => Format::Caliper,
            FormatArg::Launches => Format::Launches,
            FormatArg::Proxy => Format::Proxy,
            FormatArg::LtiaasIdtoken => Format::LtiaasIdtoken,
            FormatArg::CanvasGradebook => Format::CanvasGradebook,
            FormatArg::MoodleGradebook => Format::MoodleGradebook,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MacArg {
    Md5,
    Sha1,
}

/// Reports an import on the terminal: rejected rows as they come (stderr), a bar for
/// files that take more than a moment; or NDJSON events with `--json`.
struct Sink {
    json: bool,
    bar: ProgressBar,
    started: Instant,
    shown: bool,
    last_event: Instant,
    cancel: Arc<AtomicBool>,
}

impl Sink {
    fn new(json: bool, cancel: Arc<AtomicBool>) -> Self {
        Self {
            json,
            bar: ProgressBar::hidden(),
            started: Instant::now(),
            shown: false,
            last_event: Instant::now(),
            cancel,
        }
    }
}

fn issue_line(file: &str, i: &RowIssue) -> String {
    // Name the column unless the reason already starts with it.
    let col = i
        .column
        .as_deref()
        .filter(|c| !i.reason.starts_with(c))
        .map(|c| format!("{c}: "))
        .unwrap_or_default();
    match i.kind {
        RowIssueKind::Rejected => format!("{file}:{}: {col}{}", i.line, i.reason),
        RowIssueKind::Skipped => format!("{file}:{}: skipped: {col}{}", i.line, i.reason),
    }
}

impl Progress<ImportEvent> for Sink {
    fn begin(&mut self, start: &Start) {
        self.started = Instant::now();
        self.shown = false;
        self.bar = ProgressBar::with_draw_target(start.total, ProgressDrawTarget::hidden());
        self.bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        self.bar.set_message(start.title.clone());
        if self.json {
            println!(
                "{}",
                serde_json::json!({"event": "begin", "title": start.title, "bytes": start.total})
            );
        }
    }

    fn item(&mut self, tally: &Tally, item: &ImportEvent) -> Flow {
        match item {
            ImportEvent::Issue { file, issue } => {
                if self.json {
                    println!("{}", serde_json::to_string(item).unwrap_or_default());
                } else {
                    self.bar.suspend(|| eprintln!("{}", issue_line(file, issue)));
                }
            }
            ImportEvent::Rows { bytes, .. } => {
                self.bar.set_position(*bytes);
                if !self.json
                    && !self.shown
                    && self.started.elapsed() > Duration::from_millis(500)
                    && std::io::stderr().is_terminal()
                {
                    self.bar.set_draw_target(ProgressDrawTarget::stderr());
                    self.shown = true;
                }
                if self.json && self.last_event.elapsed() > Duration::from_secs(1) {
                    self.last_event = Instant::now();
                    println!(
                        "{}",
                        serde_json::json!({"event": "progress", "bytes": bytes, "records": tally.done,
                                           "quarantined": tally.failed, "per_second": tally.rate()})
                    );
                }
            }
        }
        if self.cancel.load(Ordering::Relaxed) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn finish(&mut self, _tally: &Tally) {
        self.bar.finish_and_clear();
    }
}

fn summary(r: &ImportReport) -> String {
    let c = &r.counts;
    let platform = r
        .platform
        .as_deref()
        .map(|p| format!(", platform {p}"))
        .unwrap_or_default();
    let mut s = format!(
        "{}: {}{platform}: {} read, {} imported, {} unchanged, {} quarantined, {} skipped",
        r.file,
        r.format.describe(),
        c.read,
        c.imported,
        c.unchanged,
        c.quarantined,
        c.skipped
    );
    if c.not_learners > 0 {
        s.push_str(&format!(
            ", {} not learners' (kept, not sent by default)",
            c.not_learners
        ));
    }
    if c.older > 0 {
        s.push_str(&format!(", {} older than the ledger's (kept out)", c.older));
    }
    match (r.status.as_str(), r.batch_id) {
        ("dry_run", _) => s.push_str(". Dry run: nothing was written."),
        ("rejected", Some(id)) => s.push_str(&format!(
            ". Rejected (--strict): nothing was kept. Batch {id} records why."
        )),
        ("cancelled", Some(id)) => s.push_str(&format!(". Cancelled: nothing was kept. Batch {id}.")),
        (_, Some(id)) => s.push_str(&format!(". Batch {id}.")),
        _ => s.push('.'),
    }
    s
}

/// Import files; exit 0 only when every file was imported without a quarantined row.
pub async fn run(db: Option<&Path>, a: ImportArgs) -> Result<ExitCode> {
    if let Some(cmd) = a.command {
        return run_cmd(db, cmd).await;
    }
    let proxy_secret = match &a.proxy_secret_env {
        Some(var) => Some(super::output::read_secret(Some(var), "proxy-tool shared secret")?),
        None => None,
    };
    let opts = ImportOptions {
        format: a.format.map(Format::from),
        platform: a.platform.clone(),
        dry_run: a.dry_run,
        strict: a.strict,
        launch_url: a.launch_url.clone(),
        proxy_secret,
        mac: match a.mac {
            MacArg::Md5 => MacDigest::Md5,
            MacArg::Sha1 => MacDigest::Sha1,
        },
        context: a.context.clone(),
        exported_at: a.exported_at.clone(),
        store_secrets: a.store_secrets,
        display_name: None,
    };
    let pb = open(db).await?;
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });
    let mut all_clean = true;
    for file in &a.files {
        let mut sink = Sink::new(a.json, cancel.clone());
        let report = match pb.import_file(file, &opts, &mut sink).await {
            Ok(r) => r,
            Err(e) => {
                sink.bar.finish_and_clear();
                if a.json {
                    println!(
                        "{}",
                        serde_json::json!({"event": "error", "file": file.display().to_string(), "error": e})
                    );
                } else {
                    eprintln!("error: {}", e.message);
                }
                all_clean = false;
                continue;
            }
        };
        sink.bar.finish_and_clear();
        if report.status != "imported" && report.status != "dry_run" || report.counts.quarantined > 0 {
            all_clean = false;
        }
        if a.json {
            let mut v = serde_json::to_value(&report).map_err(|e| Error::internal(e.to_string()))?;
            v["event"] = "report".into();
            println!("{v}");
        } else {
            if report.status == "rejected" {
                for i in &report.issues {
                    eprintln!("{}", issue_line(&report.file, i));
                }
            }
            println!("{}", summary(&report));
            for n in &report.notes {
                println!("  note: {n}");
            }
            if report.issues_not_listed > 0 {
                println!(
                    "  {} more rows are listed in the ledger: passback import show {}",
                    report.issues_not_listed,
                    report.batch_id.unwrap_or_default()
                );
            }
        }
        if cancel.load(Ordering::Relaxed) {
            break;
        }
    }
    let _ = std::io::stdout().flush();
    Ok(super::code(all_clean))
}

async fn run_cmd(db: Option<&Path>, cmd: ImportCmd) -> Result<ExitCode> {
    let pb = open(db).await?;
    match cmd {
        ImportCmd::List(f) => {
            let batches = pb.list_imports().await?;
            if f.json {
                print_json(&batches)?;
            } else if batches.is_empty() {
                println!("No imports yet. Import a file with `passback import FILE --platform NAME`.");
            } else {
                let rows = batches
                    .iter()
                    .map(|b| {
                        vec![
                            b.id.to_string(),
                            b.file_name.clone(),
                            b.format.clone(),
                            b.platform.clone().unwrap_or_default(),
                            b.status.clone(),
                            b.rows_read.to_string(),
                            b.rows_imported.to_string(),
                            b.rows_unchanged.to_string(),
                            b.rows_quarantined.to_string(),
                            b.rows_skipped.to_string(),
                            b.started_at.clone(),
                        ]
                    })
                    .collect::<Vec<_>>();
                print_table(
                    &[
                        "BATCH",
                        "FILE",
                        "FORMAT",
                        "PLATFORM",
                        "STATUS",
                        "READ",
                        "IMPORTED",
                        "UNCHANGED",
                        "QUARANTINED",
                        "SKIPPED",
                        "STARTED",
                    ],
                    &rows,
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ImportCmd::Show { batch, json } => {
            let (b, issues) = pb.import_batch(batch).await?;
            if json {
                print_json(&serde_json::json!({"batch": b, "issues": issues}))?;
            } else {
                println!(
                    "Batch {} ({}): {} {}, {} read, {} imported, {} unchanged, {} quarantined, {} skipped",
                    b.id,
                    b.status,
                    b.format,
                    b.file_name,
                    b.rows_read,
                    b.rows_imported,
                    b.rows_unchanged,
                    b.rows_quarantined,
                    b.rows_skipped
                );
                for n in &b.notes {
                    println!("  note: {n}");
                }
                for i in &issues {
                    println!("{}", issue_line(&b.file_name, i));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ImportCmd::Undo { batch, yes, json } => {
            let (b, _) = pb.import_batch(batch).await?;
            if !yes {
                eprintln!(
                    "Batch {} ({} {}) added {} row(s). Taking it back removes its grade versions, targets, LMS \
                     observations and launches. Re-run with --yes to confirm.",
                    b.id, b.format, b.file_name, b.rows_imported
                );
                return Ok(ExitCode::FAILURE);
            }
            let r = pb.undo_import(batch).await?;
            if json {
                print_json(&r)?;
            } else {
                println!(
                    "Took back batch {}: {} grade version(s), {} target(s), {} LMS observation(s), {} attempt(s) of \
                     other systems, {} launch(es).",
                    r.batch_id,
                    r.grade_versions_removed,
                    r.targets_restored,
                    r.observations_removed,
                    r.attempts_removed,
                    r.launches_removed
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
