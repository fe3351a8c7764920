//! `passback sandbox` (the sandbox LMS on loopback) and `passback demo` (the demo
//! workspace: a practice ledger wired to a sandbox).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use passback::secrets::Secrets;
use passback::{Error, Result};
use passback_sandbox::faults::{Budget, BudgetAnswer, Fault, FaultConfig, FaultRate};
use passback_sandbox::{Dialect, Sandbox, SandboxConfig, read_sourcedids_file};

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Which LMS to imitate.
    #[arg(long, value_enum, default_value_t = DialectArg::Canvas)]
    pub dialect: DialectArg,
    /// Seed for generated credentials and fault rates (same seed, same run).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value = "passback-sandbox")]
    pub consumer_key: String,
    /// Consumer secret (default: derived from the seed).
    #[arg(long)]
    pub consumer_secret: Option<String>,
    /// The LTIAAS API key the sandbox accepts (default: derived from the seed).
    #[arg(long, value_name = "KEY")]
    pub ltiaas_api_key: Option<String>,
    /// File of valid sourcedids, one per line (optionally `<sourcedid> <state>`).
    #[arg(long, value_name = "FILE")]
    pub sourcedids: Option<PathBuf>,
    /// Register these sourcedids as valid (repeatable).
    #[arg(long = "sourcedid", value_name = "ID")]
    pub sourcedid: Vec<String>,
    /// Points possible of the assignments (Canvas keeps scores as hundredths of a point).
    #[arg(long, default_value_t = 100.0, value_name = "POINTS")]
    pub points_possible: f64,
    /// The sandbox clock minus the real clock, in seconds (practise clock skew).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub clock_offset: i64,
    /// Fail requests at random: KIND:RATE with KIND one of 500, 503, 429, 403, hang, reset,
    /// malformed, html, notice_html, notice_text.
    #[arg(long = "fault", value_name = "KIND:RATE")]
    pub faults: Vec<FaultRate>,
    /// Fail the next requests in this order (repeatable), before any random fault.
    #[arg(long = "fail-next", value_name = "KIND")]
    pub fail_next: Vec<Fault>,
    /// Added latency per request in ms: N or MIN-MAX.
    #[arg(long, value_name = "MS")]
    pub latency_ms: Option<String>,
    /// Retry-After seconds on 429 and 503 answers.
    #[arg(long, default_value_t = 1)]
    pub retry_after: u64,
    /// A request budget like Canvas's leaky bucket: CAPACITY:LEAK_PER_SEC:COST (e.g. 700:10:50).
    #[arg(long, value_name = "CAPACITY:LEAK_PER_SEC:COST")]
    pub budget: Option<Budget>,
    /// How a request is answered when the budget is exhausted: 403 (old Canvas, plain text)
    /// or 429 (new Canvas, JSON).
    #[arg(long, value_name = "403|429", default_value = "429")]
    pub budget_exhausted: BudgetAnswer,
}

/// Which LMS the sandbox imitates, as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DialectArg {
    /// 401/415 for OAuth and Content-Type, 422 + `ext_canvas_error_code` for failures.
    Canvas,
    /// Always HTTP 200; failures as `codeMajor` failure with severity status.
    Moodle,
    /// Always HTTP 200; failures with severity error and `key: detail` descriptions.
    Sakai,
}

impl From<DialectArg> for Dialect {
    fn from(d: DialectArg) -> Self {
        match d {
            DialectArg::Canvas => Dialect::Canvas,
            DialectArg::Moodle => Dialect::Moodle,
            DialectArg::Sakai => Dialect::Sakai,
        }
    }
}

/// `passback sandbox`: serve until Ctrl-C, after one JSON start line.
pub async fn run_sandbox(a: SandboxArgs) -> Result<ExitCode> {
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
    let mut cfg = SandboxConfig::new(a.dialect.into(), a.seed);
    cfg.listen = a.listen;
    cfg.consumer_key = a.consumer_key;
    if let Some(s) = a.consumer_secret {
        cfg.consumer_secret = s;
    }
    if let Some(k) = a.ltiaas_api_key {
        cfg.ltiaas_api_key = k;
    }
    cfg.clock_offset_secs = a.clock_offset;
    if !(a.points_possible.is_finite() && a.points_possible > 0.0) {
        return Err(Error::invalid("--points-possible must be a positive number"));
    }
    cfg.points_possible = a.points_possible;
    cfg.faults = FaultConfig {
        script: a.fail_next,
        rates: a.faults,
        latency_ms,
        retry_after_secs: Some(a.retry_after),
        budget: a.budget,
        budget_exhausted: a.budget_exhausted,
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
    Ok(ExitCode::SUCCESS)
}

/// `passback demo`: open the demo workspace and keep its sandbox running until Ctrl-C.
pub async fn run_demo(db: Option<&Path>) -> Result<ExitCode> {
    let path = match db {
        Some(p) => p.to_path_buf(),
        None => passback_sandbox::demo::default_demo_path()?,
    };
    let demo = passback_sandbox::demo::open(&path, Secrets::os().await).await?;
    println!(
        "{}",
        serde_json::json!({
            "db": path.display().to_string(),
            "platform": passback_sandbox::demo::DEMO_PLATFORM,
            "sandbox": demo.sandbox.info,
        })
    );
    eprintln!(
        "Demo workspace ready. In another terminal: passback --db {} grades\nPress Ctrl-C to stop the sandbox LMS.",
        path.display()
    );
    let _ = tokio::signal::ctrl_c().await;
    demo.sandbox.stop().await;
    Ok(ExitCode::SUCCESS)
}
