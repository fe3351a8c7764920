//! `passback send-one | read-one | delete-one`: one LTI 1.1 Basic Outcomes operation by hand.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use passback::app::OneOutcome;
use passback::http::ClientOptions;
use passback::lti11::client::OutcomeOp;
use passback::lti11::pox::{ReplaceResult, ResultData};
use passback::sync::{RetryPolicy, SendReport};
use passback::{Error, Result};

use super::open;
use super::output::{print_attempts, print_failure, print_json};

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

/// `send-one`: a replaceResult with a score and/or Canvas result data.
pub async fn send_one(db: Option<&Path>, a: SendOneArgs) -> Result<ExitCode> {
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
    one_outcome(db, &a.target, op).await
}

/// Sign (dry run) or send one operation, and report each journaled attempt.
pub async fn one_outcome(db: Option<&Path>, a: &OneTargetArgs, op: OutcomeOp) -> Result<ExitCode> {
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
                "signature_redacted": true,
            }))?;
        } else {
            println!("{}", signed.to_http_text());
            eprintln!(
                "\n(dry run: nothing was sent. The signature is redacted, so this request cannot be replayed; \
                 a real send signs again with a fresh nonce and timestamp.)"
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
        print_failure(r.error_class, &r.description, r.fix_hint.as_deref());
    }
    Ok(())
}
