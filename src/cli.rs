//! The `passback` command line: clap definitions and thin handlers over
//! [`crate::app::Passback`]. Exit codes: 0 success, 1 failure, 2 usage error.

use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::app::OneOutcome;
use crate::app::{ManualGrade, Passback, resolve_db_path};
use crate::error::{Error, Result};
use crate::lti11::client::{ClientOptions, OutcomeOp};
use crate::lti11::pox::{ReplaceResult, ResultData};
use crate::model::AttemptOutcome;
use crate::model::{NewGrade, NewLti11Platform, NewLtiaasPlatform, Platform, PlatformKind};
use crate::secrets::Secrets;
use crate::sync::{RetryPolicy, SendReport};

#[derive(Debug, Parser)]
#[command(
    name = "passback",
    version,
    about = "See the grades your learning tool holds, find the ones that never reached the LMS, and send them again.",
    after_help = "The ledger is a SQLite file: --db PATH, else $PASSBACK_DB, else the OS data folder.\n\
                  Secrets (consumer secrets, API keys, service keys) live only in the OS keyring."
)]
pub struct Cli {
    /// Ledger file (default: $PASSBACK_DB, else the OS data folder).
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage LMS connections (platforms).
    #[command(subcommand)]
    Platform(PlatformCmd),
    /// List the current version of every local grade with its status.
    Grades(JsonFlag),
    /// Work with a single grade.
    #[command(subcommand)]
    Grade(GradeCmd),
    /// List activities (resource links) with learner and grade counts.
    Activities(JsonFlag),
    /// Check the ledger, its schema and the OS keyring.
    Doctor(JsonFlag),
    /// Send one LTI 1.1 replaceResult (a score, optionally with Canvas result data).
    #[command(name = "send-one")]
    SendOne(SendOneArgs),
    /// Read what the LMS holds for one sourcedid (LTI 1.1 readResult).
    #[command(name = "read-one")]
    ReadOne(OneTargetArgs),
    /// Delete the LMS's result for one sourcedid (LTI 1.1 deleteResult).
    #[command(name = "delete-one")]
    DeleteOne(OneTargetArgs),
    /// LTIAAS: capture ID tokens (service keys), send and read scores, list keys and line items.
    #[command(subcommand)]
    Ltiaas(LtiaasCmd),
    /// Run the sandbox LMS on loopback: LTI 1.1 outcomes and an LTIAAS-compatible API under /api/
    /// (prints one JSON line with its URLs and credentials).
    Sandbox(SandboxArgs),
    /// Open the demo workspace (a practice ledger wired to a built-in sandbox LMS) and keep
    /// the sandbox running until Ctrl-C. Uses --db if given, else demo.sqlite in the data folder.
    Demo,
    /// Serve the desktop UI to a browser on loopback (for browser tests and support sessions).
    UiServer(UiServerArgs),
}

#[derive(Debug, Args)]
pub struct OneTargetArgs {
    /// The LTI 1.1 platform whose consumer key and secret sign the request.
    #[arg(long)]
    pub platform: String,
    /// The lis_result_sourcedid from the launch.
    #[arg(long)]
    pub sourcedid: String,
    /// The lis_outcome_service_url from the launch.
    #[arg(long = "outcome-url", value_name = "URL")]
    pub outcome_url: String,
    /// Print the exact signed request instead of sending it (never shows the secret).
    #[arg(long)]
    pub dry_run: bool,
    /// Attempts for transient failures (5xx, timeouts, 429), each signed afresh.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub attempts: u32,
    /// Longest wait between attempts, in seconds (a longer Retry-After stops the run).
    #[arg(long, default_value_t = 60)]
    pub max_wait: u64,
    /// Total timeout of one request, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SendOneArgs {
    #[command(flatten)]
    pub target: OneTargetArgs,
    /// The score, 0.0 to 1.0 (the LTI 1.1 resultScore).
    #[arg(long)]
    pub score: Option<f64>,
    /// Canvas resultData text (only if the launch advertised text).
    #[arg(long, conflicts_with_all = ["url", "lti_launch_url"])]
    pub text: Option<String>,
    /// Canvas resultData URL (only if the launch advertised url).
    #[arg(long, conflicts_with = "lti_launch_url")]
    pub url: Option<String>,
    /// Canvas resultData ltiLaunchUrl.
    #[arg(long)]
    pub lti_launch_url: Option<String>,
    /// Canvas resultTotalScore: raw points (Canvas then ignores --score).
    #[arg(long)]
    pub total_score: Option<f64>,
    /// Canvas submissionDetails/submittedAt (ISO 8601).
    #[arg(long)]
    pub submitted_at: Option<String>,
    /// Canvas prioritizeNonToolGrade: do not overwrite a grade a person gave.
    #[arg(long)]
    pub prioritize_non_tool_grade: bool,
}

#[derive(Debug, Subcommand)]
pub enum LtiaasCmd {
    /// Read a launch's ID token with its ltik, record the launch in the ledger and keep its
    /// service key in the OS keyring (a newer capture replaces an older one).
    Idtoken(LtiaasIdtokenArgs),
    /// Send one score through LTIAAS with the stored service key (fresh timestamp per attempt).
    #[command(name = "send-one")]
    SendOne(LtiaasSendArgs),
    /// Read what the LMS holds for one learner through LTIAAS.
    #[command(name = "read-one")]
    ReadOne(LtiaasOneArgs),
    /// List stored service keys with their age (never the keys themselves).
    Keys {
        /// Only this platform's keys.
        #[arg(long)]
        platform: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List line items of a (context, resource link) through its service key.
    #[command(name = "line-items")]
    LineItems(LtiaasLineItemsArgs),
}

#[derive(Debug, Args)]
pub struct LtiaasIdtokenArgs {
    /// The LTIAAS platform (its API key is in the keyring).
    #[arg(long)]
    pub platform: String,
    /// The ltik from the launch URL (`?ltik=`). Without it, read from --ltik-env or stdin.
    #[arg(long)]
    pub ltik: Option<String>,
    /// Read the ltik from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "ltik")]
    pub ltik_env: Option<String>,
    /// Total timeout of the request, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LtiaasOneArgs {
    /// The LTIAAS platform.
    #[arg(long)]
    pub platform: String,
    /// LTI context id of the course.
    #[arg(long)]
    pub context: String,
    /// LTI resource link id of the activity (its service key is used).
    #[arg(long)]
    pub resource_link: String,
    /// LTI user id of the learner.
    #[arg(long)]
    pub user: String,
    /// Use this line item id as is (default: the one the ledger remembers, else a lookup).
    #[arg(long, value_name = "ID")]
    pub line_item: Option<String>,
    /// Look the line item up again even if the ledger remembers one.
    #[arg(long, conflicts_with = "line_item")]
    pub refresh_line_item: bool,
    /// Attempts for transient failures (5xx, timeouts, 429).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub attempts: u32,
    /// Longest wait between attempts, in seconds (a longer Retry-After stops the run).
    #[arg(long, default_value_t = 60)]
    pub max_wait: u64,
    /// Total timeout of one request, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LtiaasSendArgs {
    #[command(flatten)]
    pub target: LtiaasOneArgs,
    /// Score given (0 is a real score).
    #[arg(long)]
    pub score: f64,
    /// Score maximum (above 0).
    #[arg(long)]
    pub max: f64,
    /// Comment for the learner (most LMSs clear the comment when none is sent).
    #[arg(long)]
    pub comment: Option<String>,
    #[arg(long, value_enum, default_value_t = crate::ltiaas::client::ActivityProgress::Completed)]
    pub activity_progress: crate::ltiaas::client::ActivityProgress,
    /// LMSs may ignore scores that are not FullyGraded.
    #[arg(long, value_enum, default_value_t = crate::ltiaas::client::GradingProgress::FullyGraded)]
    pub grading_progress: crate::ltiaas::client::GradingProgress,
    /// When no line item is tied to the resource link, create one with this label.
    #[arg(long, value_name = "LABEL", conflicts_with = "line_item")]
    pub create_line_item: Option<String>,
    /// Print the requests instead of sending them (keys shown as <API_KEY>:<SERVICE_KEY>).
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct LtiaasLineItemsArgs {
    #[arg(long)]
    pub platform: String,
    #[arg(long)]
    pub context: String,
    /// The resource link whose service key is used (and, unless --all, the filter).
    #[arg(long)]
    pub resource_link: String,
    /// List every line item of the context, not only the resource link's.
    #[arg(long)]
    pub all: bool,
    #[arg(long)]
    pub tag: Option<String>,
    #[arg(long)]
    pub resource_id: Option<String>,
    /// Page size to ask for (pages are followed to the end).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Which LMS to imitate.
    #[arg(long, value_enum, default_value_t = crate::sandbox::Dialect::Canvas)]
    pub dialect: crate::sandbox::Dialect,
    /// Seed for generated credentials and fault rates (same seed, same run).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value = "passback-sandbox")]
    pub consumer_key: String,
    /// Consumer secret (default: derived from the seed).
    #[arg(long)]
    pub consumer_secret: Option<String>,
    /// File of valid sourcedids, one per line (optionally `<sourcedid> <state>`).
    #[arg(long, value_name = "FILE")]
    pub sourcedids: Option<PathBuf>,
    /// Register these sourcedids as valid (repeatable).
    #[arg(long = "sourcedid", value_name = "ID")]
    pub sourcedid: Vec<String>,
    /// The sandbox clock minus the real clock, in seconds (practise clock skew).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub clock_offset: i64,
    /// Fail requests at random: KIND:RATE with KIND one of 500, 503, 429, hang, reset, malformed, html.
    #[arg(long = "fault", value_name = "KIND:RATE")]
    pub faults: Vec<crate::sandbox::faults::FaultRate>,
    /// Fail the next requests in this order (repeatable), before any random fault.
    #[arg(long = "fail-next", value_name = "KIND")]
    pub fail_next: Vec<crate::sandbox::faults::Fault>,
    /// Added latency per request in ms: N or MIN-MAX.
    #[arg(long, value_name = "MS")]
    pub latency_ms: Option<String>,
    /// Retry-After seconds on 429 and 503 answers.
    #[arg(long, default_value_t = 1)]
    pub retry_after: u64,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PlatformCmd {
    /// Add an LTI 1.1 platform; the consumer secret is read from stdin or --secret-env.
    #[command(name = "add-lti11")]
    AddLti11 {
        /// A short name you will use in other commands.
        #[arg(long)]
        name: String,
        /// The OAuth consumer key the LMS issued.
        #[arg(long)]
        consumer_key: String,
        /// A host Passback may send outcomes to (repeatable), e.g. canvas.example.edu.
        #[arg(long = "allow-host", value_name = "HOST", required = true)]
        allow_hosts: Vec<String>,
        /// Allow plain http:// to non-loopback hosts (loopback is always allowed).
        #[arg(long)]
        allow_http: bool,
        /// Read the secret from this environment variable instead of stdin.
        #[arg(long, value_name = "VAR")]
        secret_env: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Add an LTIAAS platform; the API key is read from stdin or --secret-env.
    #[command(name = "add-ltiaas")]
    AddLtiaas {
        #[arg(long)]
        name: String,
        /// e.g. https://your.ltiaas.com
        #[arg(long)]
        base_url: String,
        #[arg(long, value_name = "VAR")]
        secret_env: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List platforms (never shows secrets).
    List(JsonFlag),
    /// Remove a platform, its ledger data and its keyring entries.
    Remove {
        name: String,
        /// Confirm removing a platform that still has grades.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum GradeCmd {
    /// Record a local grade by hand (creates the context, activity and learner if needed).
    Set {
        #[arg(long)]
        platform: String,
        /// LTI context_id of the course.
        #[arg(long)]
        context: String,
        /// LTI resource_link_id of the activity.
        #[arg(long)]
        resource_link: String,
        /// LTI user_id of the learner.
        #[arg(long)]
        user: String,
        #[arg(long)]
        score: f64,
        #[arg(long)]
        max: f64,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        points: Option<f64>,
        #[arg(long = "learner-name")]
        learner_name: Option<String>,
        #[arg(long)]
        comment: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct UiServerArgs {
    /// Address to listen on; must be loopback.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The built web UI (ui/dist).
    #[arg(long, value_name = "DIR", default_value = "ui/dist")]
    pub ui_dir: PathBuf,
}

/// Parse arguments and run; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse(); // exits 2 on usage errors, 0 on --help/--version
    init_tracing();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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

async fn open(cli_db: Option<&std::path::Path>) -> Result<Passback> {
    let path = resolve_db_path(cli_db)?;
    Passback::open(&path, Secrets::os().await).await
}

/// Read a secret from `--secret-env VAR` or stdin (prompting without echo on a terminal).
fn read_secret(secret_env: Option<&str>, what: &str) -> Result<String> {
    if let Some(var) = secret_env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(v),
            Ok(_) => Err(Error::invalid(format!("environment variable {var} is empty"))),
            Err(_) => Err(Error::invalid(format!(
                "environment variable {var} is not set; export it or pipe the {what} on stdin"
            ))),
        };
    }
    let stdin = std::io::stdin();
    let raw = if stdin.is_terminal() {
        rpassword::prompt_password(format!("{what}: "))?
    } else {
        let mut s = String::new();
        stdin.lock().read_to_string(&mut s)?;
        s
    };
    // Drop one trailing newline (from `echo` or a file), keep everything else.
    let secret = raw
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&raw);
    if secret.is_empty() {
        return Err(Error::invalid(format!(
            "no {what} given: pipe it on stdin (printf 'secret' | passback ...) or use --secret-env VAR"
        )));
    }
    Ok(secret.to_string())
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::internal(e.to_string()))?;
    println!("{s}");
    Ok(())
}

/// Print rows as aligned columns.
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{:<w$}  ", c, w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line(headers.iter().map(|h| h.to_string()).collect()));
    for r in rows {
        let _ = writeln!(out, "{}", line(r.clone()));
    }
}

fn platform_summary(p: &Platform) -> String {
    match p.kind {
        PlatformKind::Lti11 => format!(
            "{} (LTI 1.1, consumer key {}, hosts {})",
            p.name,
            p.consumer_key.as_deref().unwrap_or("?"),
            p.allowed_hosts.join(", ")
        ),
        PlatformKind::Ltiaas => format!("{} (LTIAAS, {})", p.name, p.base_url.as_deref().unwrap_or("?")),
    }
}

fn fmt_score(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let db = cli.db.as_deref();
    match cli.command {
        Command::Platform(PlatformCmd::AddLti11 {
            name,
            consumer_key,
            allow_hosts,
            allow_http,
            secret_env,
            json,
        }) => {
            let secret = read_secret(secret_env.as_deref(), "consumer secret")?;
            let pb = open(db).await?;
            let p = pb
                .add_lti11_platform(
                    NewLti11Platform {
                        name,
                        consumer_key,
                        allowed_hosts: allow_hosts,
                        allow_http,
                    },
                    &secret,
                )
                .await?;
            if json {
                print_json(&p)?;
            } else {
                println!(
                    "Added platform {}. The secret is in the OS keyring ({}).",
                    platform_summary(&p),
                    p.secret_ref
                );
            }
        }
        Command::Platform(PlatformCmd::AddLtiaas {
            name,
            base_url,
            secret_env,
            json,
        }) => {
            let secret = read_secret(secret_env.as_deref(), "LTIAAS API key")?;
            let pb = open(db).await?;
            let p = pb
                .add_ltiaas_platform(NewLtiaasPlatform { name, base_url }, &secret)
                .await?;
            if json {
                print_json(&p)?;
            } else {
                println!(
                    "Added platform {}. The API key is in the OS keyring ({}).",
                    platform_summary(&p),
                    p.secret_ref
                );
            }
        }
        Command::Platform(PlatformCmd::List(f)) => {
            let pb = open(db).await?;
            let ps = pb.list_platforms().await?;
            if f.json {
                print_json(&ps)?;
            } else if ps.is_empty() {
                println!(
                    "No platforms yet. Add one with `passback platform add-lti11 --name N --consumer-key K --allow-host H`."
                );
            } else {
                let rows = ps
                    .iter()
                    .map(|p| {
                        vec![
                            p.name.clone(),
                            p.kind.as_str().into(),
                            p.consumer_key
                                .clone()
                                .or_else(|| p.base_url.clone())
                                .unwrap_or_default(),
                            p.allowed_hosts.join(","),
                            if p.allow_http {
                                "yes".into()
                            } else {
                                "loopback only".into()
                            },
                        ]
                    })
                    .collect::<Vec<_>>();
                print_table(
                    &["NAME", "KIND", "KEY / BASE URL", "ALLOWED HOSTS", "PLAIN HTTP"],
                    &rows,
                );
            }
        }
        Command::Platform(PlatformCmd::Remove { name, yes }) => {
            let pb = open(db).await?;
            let r = pb.remove_platform(&name, yes).await?;
            println!(
                "Removed platform {} ({} context(s), {} grade(s), {} keyring entr{}).",
                r.name,
                r.contexts,
                r.grades,
                r.keyring_entries,
                if r.keyring_entries == 1 { "y" } else { "ies" }
            );
        }
        Command::Grades(f) => {
            let pb = open(db).await?;
            let gs = pb.list_grades().await?;
            if f.json {
                print_json(&gs)?;
            } else if gs.is_empty() {
                println!("No grades in the ledger yet.");
            } else {
                let rows = gs
                    .iter()
                    .map(|g| {
                        vec![
                            g.platform.clone(),
                            g.context_id.clone(),
                            g.activity_title
                                .clone()
                                .unwrap_or_else(|| g.resource_link_id.clone()),
                            g.learner_name.clone().unwrap_or_else(|| g.lti_user_id.clone()),
                            format!("{}/{}", fmt_score(g.score_given), fmt_score(g.score_maximum)),
                            format!("v{}", g.version),
                            g.status.as_str().into(),
                            g.status_detail.clone().unwrap_or_default(),
                        ]
                    })
                    .collect::<Vec<_>>();
                print_table(
                    &[
                        "PLATFORM", "CONTEXT", "ACTIVITY", "LEARNER", "SCORE", "VER", "STATUS", "DETAIL",
                    ],
                    &rows,
                );
            }
        }
        Command::Grade(GradeCmd::Set {
            platform,
            context,
            resource_link,
            user,
            score,
            max,
            title,
            points,
            learner_name,
            comment,
        }) => {
            let pb = open(db).await?;
            let (g, created) = pb
                .record_manual_grade(ManualGrade {
                    platform,
                    context_id: context,
                    resource_link_id: resource_link,
                    activity_title: title,
                    points_possible: points,
                    lti_user_id: user,
                    learner_name,
                    grade: NewGrade {
                        score_given: score,
                        score_maximum: max,
                        comment,
                        result_text: None,
                        result_url: None,
                        submitted_at: None,
                        source: "cli".into(),
                    },
                })
                .await?;
            if created {
                println!(
                    "Recorded grade {}/{} as version {}.",
                    fmt_score(g.score_given),
                    fmt_score(g.score_maximum),
                    g.version
                );
            } else {
                println!("Unchanged: version {} already holds this grade.", g.version);
            }
        }
        Command::Activities(f) => {
            let pb = open(db).await?;
            let acts = pb.list_activities().await?;
            if f.json {
                print_json(&acts)?;
            } else if acts.is_empty() {
                println!("No activities in the ledger yet.");
            } else {
                let rows = acts
                    .iter()
                    .map(|a| {
                        vec![
                            a.platform.clone(),
                            a.context_id.clone(),
                            a.resource_link_id.clone(),
                            a.title.clone().unwrap_or_default(),
                            a.points_possible.map(fmt_score).unwrap_or_default(),
                            a.grades.to_string(),
                        ]
                    })
                    .collect::<Vec<_>>();
                print_table(
                    &[
                        "PLATFORM",
                        "CONTEXT",
                        "RESOURCE LINK",
                        "TITLE",
                        "POINTS",
                        "GRADES",
                    ],
                    &rows,
                );
            }
        }
        Command::Doctor(f) => {
            let pb = open(db).await?;
            let d = pb.doctor().await?;
            if f.json {
                print_json(&d)?;
            } else {
                println!("Passback {}", d.passback_version);
                println!("Ledger:   {}", d.db_path);
                println!(
                    "Schema:   version {} (this build knows {})",
                    d.schema_version, d.schema_latest
                );
                println!("SQLite:   {}", d.sqlite_version);
                println!("Keyring:  {}", if d.keyring_ok { "ok" } else { "NOT AVAILABLE" });
                println!("          {}", d.keyring_detail);
            }
            if !d.healthy() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::SendOne(a) => {
            let data = match (a.text, a.url, a.lti_launch_url) {
                (Some(t), _, _) => Some(ResultData::Text(t)),
                (_, Some(u), _) => Some(ResultData::Url(u)),
                (_, _, Some(u)) => Some(ResultData::LtiLaunchUrl(u)),
                _ => None,
            };
            if a.score.is_none() && data.is_none() && a.submitted_at.is_none() && a.total_score.is_none() {
                return Err(Error::invalid(
                    "nothing to send: give --score (0.0 to 1.0) and/or --text, --url, --total-score, --submitted-at",
                ));
            }
            let op = OutcomeOp::Replace(Box::new(ReplaceResult {
                message_identifier: String::new(),
                sourcedid: String::new(),
                score: a.score,
                result_data: data,
                result_total_score: a.total_score,
                submitted_at: a.submitted_at,
                prioritize_non_tool_grade: a.prioritize_non_tool_grade,
                needs_additional_review: false,
            }));
            return one_outcome(db, &a.target, op).await;
        }
        Command::ReadOne(a) => return one_outcome(db, &a, OutcomeOp::Read).await,
        Command::DeleteOne(a) => return one_outcome(db, &a, OutcomeOp::Delete).await,
        Command::Ltiaas(c) => return run_ltiaas(db, c).await,
        Command::Sandbox(a) => run_sandbox(a).await?,
        Command::Demo => {
            let path = match db {
                Some(p) => p.to_path_buf(),
                None => crate::demo::default_demo_path()?,
            };
            let demo = crate::demo::open(&path, Secrets::os().await).await?;
            println!(
                "{}",
                serde_json::json!({
                    "db": path.display().to_string(),
                    "platform": crate::demo::DEMO_PLATFORM,
                    "sandbox": demo.sandbox.info,
                })
            );
            eprintln!(
                "Demo workspace ready. In another terminal: passback --db {} grades\nPress Ctrl-C to stop the sandbox LMS.",
                path.display()
            );
            let _ = tokio::signal::ctrl_c().await;
            demo.sandbox.stop().await;
        }
        Command::UiServer(a) => {
            if !a.listen.ip().is_loopback() {
                return Err(Error::invalid(format!(
                    "refusing to serve the UI on {}: only loopback addresses are allowed",
                    a.listen
                )));
            }
            let pb = open(db).await?;
            crate::bridge::serve(pb, a.listen, &a.ui_dir).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn one_outcome(db: Option<&std::path::Path>, a: &OneTargetArgs, op: OutcomeOp) -> Result<ExitCode> {
    let pb = open(db).await?;
    let target = OneOutcome {
        platform: a.platform.clone(),
        sourcedid: a.sourcedid.clone(),
        outcome_url: a.outcome_url.clone(),
    };
    if a.dry_run {
        let signed = pb.sign_one(&target, &op).await?;
        if a.json {
            print_json(&serde_json::json!({
                "url": signed.url.as_str(),
                "authorization": signed.authorization,
                "body": signed.body,
                "base_string": signed.base_string,
                "message_identifier": signed.message_identifier,
            }))?;
        } else {
            println!("{}", signed.to_http_text());
            eprintln!(
                "\n(dry run: nothing was sent; a real send signs again with a fresh nonce and timestamp)"
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let policy = RetryPolicy {
        max_attempts: a.attempts,
        max_wait: std::time::Duration::from_secs(a.max_wait),
        ..RetryPolicy::default()
    };
    let opts = ClientOptions {
        total_timeout: std::time::Duration::from_secs(a.timeout.max(1)),
        ..ClientOptions::default()
    };
    let report = pb.send_one(&target, &op, policy, opts).await?;
    print_report(&report, a.json)?;
    Ok(if report.confirmed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One line per journaled attempt: successes on stdout, the rest on stderr.
fn print_attempts(attempts: &[crate::sync::AttemptReport]) {
    for (i, at) in attempts.iter().enumerate() {
        let waited = if at.waited_before_ms > 0 {
            format!(" after waiting {:.1} s", at.waited_before_ms as f64 / 1000.0)
        } else {
            String::new()
        };
        let status = at
            .http_status
            .map(|s| format!("HTTP {s}"))
            .unwrap_or_else(|| "no answer".into());
        let line = format!(
            "attempt {} (journal #{}){waited}: {status}, {}: {}",
            i + 1,
            at.attempt_id,
            at.outcome.as_str(),
            at.description
        );
        if at.outcome == AttemptOutcome::Success {
            println!("{line}");
        } else {
            eprintln!("{line}");
        }
    }
}

fn print_report(r: &SendReport, json: bool) -> Result<()> {
    if json {
        return print_json(r);
    }
    print_attempts(&r.attempts);
    if r.confirmed {
        match (r.operation, r.read_score) {
            ("readResult", Some(v)) => println!("The LMS holds score {v}."),
            ("readResult", None) => println!("The LMS holds no grade for this sourcedid."),
            _ => println!("The LMS confirmed the {}.", r.operation),
        }
    } else {
        let class = r.error_class.map(|c| c.as_str()).unwrap_or("unconfirmed");
        eprintln!("error [{class}]: {}", r.description);
        if let Some(h) = &r.fix_hint {
            eprintln!("hint: {h}");
        }
    }
    Ok(())
}

/// `passback ltiaas …`: exit 0 when the LMS confirmed, 1 otherwise (class and hint on stderr).
async fn run_ltiaas(db: Option<&std::path::Path>, cmd: LtiaasCmd) -> Result<ExitCode> {
    use crate::ltiaas::ops::describe_result;
    use crate::ltiaas::{LineItemChoice, LtiaasReport, LtiaasTarget, ScoreToSend};
    use std::time::Duration;

    fn failed(class: Option<crate::model::ErrorClass>, description: &str, hint: Option<&str>) {
        let class = class.map(|c| c.as_str()).unwrap_or("unconfirmed");
        eprintln!("error [{class}]: {description}");
        if let Some(h) = hint {
            eprintln!("hint: {h}");
        }
    }
    fn code(ok: bool) -> ExitCode {
        if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
    }
    fn opts(timeout: u64) -> ClientOptions {
        ClientOptions {
            total_timeout: Duration::from_secs(timeout.max(1)),
            ..ClientOptions::default()
        }
    }
    fn split(a: &LtiaasOneArgs) -> (LtiaasTarget, LineItemChoice, RetryPolicy) {
        (
            LtiaasTarget {
                platform: a.platform.clone(),
                context_id: a.context.clone(),
                resource_link_id: a.resource_link.clone(),
                user_id: a.user.clone(),
            },
            LineItemChoice {
                line_item_id: a.line_item.clone(),
                refresh: a.refresh_line_item,
                create_label: None,
            },
            RetryPolicy {
                max_attempts: a.attempts,
                max_wait: Duration::from_secs(a.max_wait),
                ..RetryPolicy::default()
            },
        )
    }
    fn report(r: &LtiaasReport, json: bool) -> Result<ExitCode> {
        if json {
            print_json(r)?;
            return Ok(code(r.confirmed));
        }
        if let Some(id) = &r.line_item_id {
            let how = r
                .line_item_source
                .map(|s| format!(" ({})", s.describe()))
                .unwrap_or_default();
            println!("line item: {id}{how}");
        }
        print_attempts(&r.attempts);
        if r.confirmed {
            if r.operation == "score_read" {
                println!(
                    "The LMS holds {} for {}.",
                    describe_result(r.result.as_ref()),
                    r.user_id
                );
            } else {
                println!(
                    "The LMS confirmed the score for {} (timestamp {}).",
                    r.user_id,
                    r.timestamp.as_deref().unwrap_or("?")
                );
            }
        } else {
            failed(r.error_class, &r.description, r.fix_hint.as_deref());
        }
        Ok(code(r.confirmed))
    }

    let pb = open(db).await?;
    match cmd {
        LtiaasCmd::Idtoken(a) => {
            let ltik = match a.ltik {
                Some(l) => l,
                None => read_secret(a.ltik_env.as_deref(), "ltik")?,
            };
            let r = pb
                .ltiaas_capture_idtoken(&a.platform, &ltik, opts(a.timeout))
                .await?;
            if a.json {
                print_json(&r)?;
            } else {
                if let Some(l) = &r.launch {
                    println!(
                        "ID token of {} ({}) in {} / {}.",
                        l.user_name.clone().unwrap_or_else(|| l.user_id.clone()),
                        l.role.as_str(),
                        l.context_title.clone().unwrap_or_else(|| l.context_id.clone()),
                        l.resource_link_title
                            .clone()
                            .unwrap_or_else(|| l.resource_link_id.clone()),
                    );
                    println!(
                        "context {:?}, resource link {:?}, user {:?}",
                        l.context_id, l.resource_link_id, l.user_id
                    );
                    match &l.line_item_id {
                        Some(id) => println!("line item: {id}"),
                        None => println!("line item: not named by the launch (send-one looks it up)"),
                    }
                }
                for w in &r.warnings {
                    eprintln!("warning: {w}");
                }
                match (&r.launch, r.ok) {
                    (Some(l), true) => println!(
                        "Service key: {} (keyring {}), captured {}.",
                        r.description,
                        l.service_key_ref.as_deref().unwrap_or("?"),
                        l.captured_at
                    ),
                    _ => failed(r.error_class, &r.description, r.fix_hint.as_deref()),
                }
            }
            Ok(code(r.ok))
        }
        LtiaasCmd::SendOne(a) => {
            let (t, mut choice, policy) = split(&a.target);
            choice.create_label = a.create_line_item.clone();
            let score = ScoreToSend {
                user_id: t.user_id.clone(),
                score_given: a.score,
                score_maximum: a.max,
                comment: a.comment.clone(),
                activity_progress: a.activity_progress,
                grading_progress: a.grading_progress,
            };
            if a.dry_run {
                let d = pb.ltiaas_dry_run(&t, &score, &choice).await?;
                if a.target.json {
                    print_json(&d)?;
                } else {
                    for r in &d.requests {
                        println!("# {}\n{}\n", r.purpose, r.http_text);
                    }
                    for n in &d.notes {
                        eprintln!("({n})");
                    }
                    eprintln!(
                        "(service key captured {}, {} ago)",
                        d.service_key_captured_at, d.service_key_age
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            let r = pb
                .ltiaas_send_one(&t, &score, &choice, policy, opts(a.target.timeout))
                .await?;
            report(&r, a.target.json)
        }
        LtiaasCmd::ReadOne(a) => {
            let (t, choice, policy) = split(&a);
            let r = pb.ltiaas_read_one(&t, &choice, policy, opts(a.timeout)).await?;
            report(&r, a.json)
        }
        LtiaasCmd::Keys { platform, json } => {
            let keys = pb.ltiaas_service_keys(platform.as_deref()).await?;
            if json {
                print_json(&keys)?;
            } else if keys.is_empty() {
                println!(
                    "No LTIAAS service keys yet. Capture one from a launch with \
                     `passback ltiaas idtoken --platform NAME --ltik LTIK`."
                );
            } else {
                let rows = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.platform.clone(),
                            k.context_id.clone(),
                            k.resource_link_id.clone(),
                            k.captured_at.clone(),
                            k.age.clone(),
                            k.source.clone(),
                        ]
                    })
                    .collect::<Vec<_>>();
                print_table(
                    &[
                        "PLATFORM",
                        "CONTEXT",
                        "RESOURCE LINK",
                        "CAPTURED",
                        "AGE",
                        "SOURCE",
                    ],
                    &rows,
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        LtiaasCmd::LineItems(a) => {
            let t = LtiaasTarget {
                platform: a.platform.clone(),
                context_id: a.context.clone(),
                resource_link_id: a.resource_link.clone(),
                user_id: String::new(),
            };
            let filter = crate::ltiaas::client::LineItemFilter {
                resource_link_id: None,
                resource_id: a.resource_id.clone(),
                tag: a.tag.clone(),
                limit: a.limit,
            };
            let l = pb.ltiaas_line_items(&t, filter, a.all, opts(a.timeout)).await?;
            if a.json {
                print_json(&l)?;
            } else if !l.confirmed {
                failed(l.error_class, &l.description, l.fix_hint.as_deref());
            } else if l.line_items.is_empty() {
                println!("No line items ({} page(s) read).", l.pages);
            } else {
                let rows = l
                    .line_items
                    .iter()
                    .map(|li| {
                        vec![
                            li.id.clone().unwrap_or_default(),
                            li.label.clone().unwrap_or_default(),
                            li.score_maximum.map(fmt_score).unwrap_or_default(),
                            li.resource_link_id.clone().unwrap_or_default(),
                            li.tag.clone().unwrap_or_default(),
                        ]
                    })
                    .collect::<Vec<_>>();
                print_table(&["ID", "LABEL", "MAX", "RESOURCE LINK", "TAG"], &rows);
            }
            Ok(code(l.confirmed))
        }
    }
}

async fn run_sandbox(a: SandboxArgs) -> Result<()> {
    use crate::sandbox::{Sandbox, SandboxConfig, faults::FaultConfig, read_sourcedids_file};
    let latency_ms = match a.latency_ms.as_deref() {
        None => None,
        Some(v) => {
            let parse = |x: &str| {
                x.trim().parse::<u64>().map_err(|_| {
                    Error::invalid(format!("--latency-ms {v:?}: use N or MIN-MAX in milliseconds"))
                })
            };
            Some(match v.split_once('-') {
                Some((lo, hi)) => (parse(lo)?, parse(hi)?),
                None => (parse(v)?, parse(v)?),
            })
        }
    };
    let mut cfg = SandboxConfig::new(a.dialect, a.seed);
    cfg.listen = a.listen;
    cfg.consumer_key = a.consumer_key;
    if let Some(s) = a.consumer_secret {
        cfg.consumer_secret = s;
    }
    cfg.clock_offset_secs = a.clock_offset;
    cfg.faults = FaultConfig {
        script: a.fail_next,
        rates: a.faults,
        latency_ms,
        retry_after_secs: Some(a.retry_after),
    };
    cfg.sourcedids = a.sourcedid;
    let extra = match &a.sourcedids {
        Some(f) => read_sourcedids_file(f)?,
        None => Vec::new(),
    };
    let sb = Sandbox::start(cfg).await?;
    if !extra.is_empty() {
        sb.register(&extra).await;
    }
    println!(
        "{}",
        serde_json::to_string(&sb.info).map_err(|e| Error::internal(e.to_string()))?
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    sb.stop().await;
    Ok(())
}
