//! The `passback` command line: clap definitions and thin handlers over
//! [`passback::app::Passback`], one file per command group, with this small
//! dispatcher. Exit codes: 0 success, 1 failure, 2 usage error.

mod doctor;
mod grades;
mod import;
mod ledger;
mod lti11;
mod ltiaas;
mod output;
mod platform;
mod sandbox;
mod sync;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use passback::app::{Passback, resolve_ledger};
use passback::secrets::Secrets;
use passback::{Error, Result};

#[derive(Debug, Parser)]
#[command(
    name = "passback",
    version,
    about = "See the grades your learning tool holds, find the ones that never reached the LMS, and send them again.",
    after_help = "The ledger is a SQLite file (--db PATH, else $PASSBACK_DB, else the OS data folder) or a team\n\
                  ledger on PostgreSQL (--db postgres://USER@HOST:PORT/DATABASE; the password from\n\
                  `passback ledger password set ADDRESS` or PGPASSFILE).\n\
                  Secrets (consumer secrets, API keys, service keys) live only in the OS keyring."
)]
pub struct Cli {
    /// Ledger file or team ledger address postgres://USER@HOST:PORT/DATABASE
    /// (default: $PASSBACK_DB, else the file in the OS data folder).
    #[arg(long, global = true, value_name = "PATH|URL")]
    pub db: Option<PathBuf>,

    /// Read secrets from this file instead of the OS keyring (a job on a server):
    /// JSON only its owner can read (see README). Default: $PASSBACK_SECRETS_FILE,
    /// else a systemd credential named passback-secrets, else the keyring.
    #[arg(long, global = true, value_name = "PATH")]
    pub secrets_file: Option<PathBuf>,

    /// Who is doing this, as attempts, imports and grades record it (e.g.
    /// nightly-sync); default: $PASSBACK_ACTOR, else your OS user at this computer.
    #[arg(long, global = true, value_name = "NAME")]
    pub actor: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage LMS connections (platforms).
    #[command(subcommand)]
    Platform(platform::PlatformCmd),
    /// List the current version of every local grade with its status (filtered in SQL).
    Grades(grades::GradesArgs),
    /// Work with a single grade.
    #[command(subcommand)]
    Grade(grades::GradeCmd),
    /// List activities (resource links) with learner and grade counts.
    Activities(output::JsonFlag),
    /// Check the ledger, its schema and the OS keyring.
    Doctor(output::JsonFlag),
    /// Import files other systems emit: tool grade CSVs, Open edX logs and lti_provider records,
    /// Caliper LTIEvents, captured launches, proxy-tool requests, LTIAAS ID tokens, Canvas and
    /// Moodle gradebook exports. `import list`, `import show BATCH`, `import undo BATCH`.
    Import(import::ImportArgs),
    /// Read what the LMS holds for each matched grade (or compare against the latest imported
    /// gradebook export) and give every grade its status. Never writes to the LMS.
    Reconcile(sync::ReconcileArgs),
    /// Send what the LMS is missing: plan from the statuses, read first where the LMS value is
    /// unknown, never lower a higher LMS grade unless --force-lower, journal every attempt.
    Sync(sync::SyncArgs),
    /// The attempt timeline (newest first), with causes and redacted excerpts.
    Attempts(sync::AttemptsArgs),
    /// Write CSV reports: `export audit` (every attempt) and `export status` (grades by status).
    #[command(subcommand)]
    Export(sync::ExportCmd),
    /// Send one LTI 1.1 replaceResult (a score, optionally with Canvas result data).
    #[command(name = "send-one")]
    SendOne(lti11::SendOneArgs),
    /// Read what the LMS holds for one sourcedid (LTI 1.1 readResult).
    #[command(name = "read-one")]
    ReadOne(lti11::OneTargetArgs),
    /// Delete the LMS's result for one sourcedid (LTI 1.1 deleteResult).
    #[command(name = "delete-one")]
    DeleteOne(lti11::OneTargetArgs),
    /// LTIAAS: capture ID tokens (service keys), send and read scores, list keys and line items.
    #[command(subcommand)]
    Ltiaas(ltiaas::LtiaasCmd),
    /// Run the sandbox LMS on loopback: LTI 1.1 outcomes and an LTIAAS-compatible API under /api/
    /// (prints one JSON line with its URLs and credentials).
    Sandbox(sandbox::SandboxArgs),
    /// The ledger itself: a team ledger's password (`ledger password set ADDRESS`).
    #[command(subcommand)]
    Ledger(ledger::LedgerCmd),
    /// Open the demo workspace (a practice ledger wired to a built-in sandbox LMS) and keep
    /// the sandbox running until Ctrl-C. Uses --db if given, else demo.sqlite in the data folder.
    Demo,
    /// Serve the desktop UI to a browser on loopback (for browser tests and support sessions).
    UiServer(crate::ui_server::UiServerArgs),
}

/// Parse arguments and run; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse(); // exits 2 on usage errors, 0 on --help/--version
    init_tracing();
    // Reconcile and sync wait on the network: one thread drives every request and
    // the engine, so a request's wake-up never crosses threads (measured: about a
    // third of the CPU per grade). The rest (imports parse while a writer task
    // writes) use the multi-threaded runtime.
    let builder = match &cli.command {
        Command::Sync(_) | Command::Reconcile(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let rt = match { builder }.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PASSBACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// `--secrets-file`, when given.
static SECRETS_FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The secrets of this process: `--secrets-file`, `PASSBACK_SECRETS_FILE`, a
/// systemd credential, else the OS keyring (see `Secrets::for_process`).
pub(crate) async fn secrets() -> Result<Secrets> {
    Secrets::for_process(SECRETS_FILE.get().map(PathBuf::as_path)).await
}

/// Open the ledger the flags and environment name, with this process's secrets.
async fn open(cli_db: Option<&Path>) -> Result<Passback> {
    let ledger = resolve_ledger(cli_db)?;
    Passback::open_ledger(&ledger, secrets().await?).await
}

/// Exit code 0 when `ok`, else 1.
fn code(ok: bool) -> ExitCode {
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    if let Some(actor) = &cli.actor {
        passback::store::set_actor(actor)?;
    }
    if let Some(f) = &cli.secrets_file {
        // Read where secrets are needed (see `secrets()`); checked once here.
        Secrets::from_file(f)?;
        SECRETS_FILE.set(f.clone()).ok();
    }
    let db = cli.db.as_deref();
    match cli.command {
        Command::Platform(c) => platform::run(db, c).await,
        Command::Grades(a) => grades::list_grades(db, a).await,
        Command::Import(a) => import::run(db, a).await,
        Command::Grade(c) => grades::run(db, c).await,
        Command::Activities(f) => grades::list_activities(db, f).await,
        Command::Doctor(f) => doctor::run(db, f).await,
        Command::Reconcile(a) => sync::reconcile(db, a).await,
        Command::Sync(a) => sync::sync(db, a).await,
        Command::Attempts(a) => sync::attempts(db, a).await,
        Command::Export(c) => sync::export(db, c).await,
        Command::SendOne(a) => lti11::send_one(db, a).await,
        Command::ReadOne(a) => lti11::one_outcome(db, &a, passback::lti11::client::OutcomeOp::Read).await,
        Command::DeleteOne(a) => lti11::one_outcome(db, &a, passback::lti11::client::OutcomeOp::Delete).await,
        Command::Ltiaas(c) => ltiaas::run(db, c).await,
        Command::Sandbox(a) => sandbox::run_sandbox(a).await,
        Command::Demo => sandbox::run_demo(db).await,
        Command::Ledger(c) => ledger::run(c).await,
        Command::UiServer(a) => {
            if !a.listen.ip().is_loopback() {
                return Err(Error::invalid(format!(
                    "refusing to serve the UI on {}: only loopback addresses are allowed",
                    a.listen
                )));
            }
            let ledger = resolve_ledger(db)?;
            let secrets = secrets().await?;
            let pb = Passback::open_ledger(&ledger, secrets.clone()).await?;
            let trust = passback::app::session::TrustList::default_location()?;
            let session = passback::app::session::Session::new(Ok(pb), secrets, trust);
            crate::ui_server::serve(session, a.listen, &a.ui_dir).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
