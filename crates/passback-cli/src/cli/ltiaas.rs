//! `passback ltiaas idtoken | send-one | read-one | keys | line-items`: exit 0 when
//! the LMS confirmed, 1 otherwise (class and hint on stderr).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use passback::Result;
use passback::app::ltiaas::{LineItemChoice, LtiaasReport, LtiaasTarget, describe_result};
use passback::http::ClientOptions;
use passback::ltiaas::ScoreToSend;
use passback::ltiaas::client::{ActivityProgress, GradingProgress, LineItemFilter};
use passback::sync::RetryPolicy;

use super::output::{fmt_score, print_attempts, print_failure, print_json, print_table, read_secret};
use super::{code, open};

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
    /// Discouraged: a value on the command line shows in `ps` and the shell's history.
    /// Pipe the ltik (from the launch URL's `?ltik=`) on stdin, or name --ltik-env.
    #[arg(long, hide_short_help = true)]
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
    #[arg(long, value_enum, default_value_t = ActivityProgressArg::Completed)]
    pub activity_progress: ActivityProgressArg,
    /// LMSs may ignore scores that are not FullyGraded.
    #[arg(long, value_enum, default_value_t = GradingProgressArg::FullyGraded)]
    pub grading_progress: GradingProgressArg,
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

/// AGS `activityProgress`, as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActivityProgressArg {
    Initialized,
    Started,
    InProgress,
    Submitted,
    Completed,
}

impl From<ActivityProgressArg> for ActivityProgress {
    fn from(a: ActivityProgressArg) -> Self {
        match a {
            ActivityProgressArg::Initialized => ActivityProgress::Initialized,
            ActivityProgressArg::Started => ActivityProgress::Started,
            ActivityProgressArg::InProgress => ActivityProgress::InProgress,
            ActivityProgressArg::Submitted => ActivityProgress::Submitted,
            ActivityProgressArg::Completed => ActivityProgress::Completed,
        }
    }
}

/// AGS `gradingProgress`, as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GradingProgressArg {
    FullyGraded,
    Pending,
    PendingManual,
    Failed,
    NotReady,
}

impl From<GradingProgressArg> for GradingProgress {
    fn from(g: GradingProgressArg) -> Self {
        match g {
            GradingProgressArg::FullyGraded => GradingProgress::FullyGraded,
            GradingProgressArg::Pending => GradingProgress::Pending,
            GradingProgressArg::PendingManual => GradingProgress::PendingManual,
            GradingProgressArg::Failed => GradingProgress::Failed,
            GradingProgressArg::NotReady => GradingProgress::NotReady,
        }
    }
}

/// `passback ltiaas …`: exit 0 when the LMS confirmed, 1 otherwise (class and hint on stderr).
pub async fn run(db: Option<&Path>, cmd: LtiaasCmd) -> Result<ExitCode> {
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
            print_failure(r.error_class, &r.description, r.fix_hint.as_deref());
        }
        Ok(code(r.confirmed))
    }

    let pb = open(db).await?;
    match cmd {
        LtiaasCmd::Idtoken(a) => {
            let ltik = match a.ltik {
                Some(l) => {
                    eprintln!(
                        "warning: --ltik puts the ltik where other users of this computer can read it (`ps`, \
                         the shell's history). Pipe it on stdin instead: printf %s \"$LTIK\" | passback ltiaas \
                         idtoken --platform {}",
                        a.platform
                    );
                    l
                }
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
                    _ => print_failure(r.error_class, &r.description, r.fix_hint.as_deref()),
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
                activity_progress: a.activity_progress.into(),
                grading_progress: a.grading_progress.into(),
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
                    "No LTIAAS service keys yet. Capture one from a launch: pipe its ltik on stdin to \
                     `passback ltiaas idtoken --platform NAME`."
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
            let filter = LineItemFilter {
                resource_link_id: None,
                resource_id: a.resource_id.clone(),
                tag: a.tag.clone(),
                limit: a.limit,
            };
            let l = pb.ltiaas_line_items(&t, filter, a.all, opts(a.timeout)).await?;
            if a.json {
                print_json(&l)?;
            } else if !l.confirmed {
                print_failure(l.error_class, &l.description, l.fix_hint.as_deref());
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
