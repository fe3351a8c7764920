//! Sending through the journal, for every transport: the one loop that journals
//! an attempt before its request leaves, completes it when the answer is known,
//! and retries transient failures with backoff (honouring `Retry-After`), each
//! retry prepared — signed — afresh.
//!
//! A transport plugs in through [`Transport`]: `prepare` builds a fresh request
//! (new nonce, timestamp and message identifier; for LTIAAS a strictly later
//! score timestamp) and says what the journal records about it; `execute` sends
//! it and returns the protocol's classified [`Answer`]. [`lti11`] and [`ltiaas`]
//! are the two transports.

pub mod engine;
pub mod hosts;
pub mod journal;
pub mod lti11;
pub mod ltiaas;
pub mod plan;
pub mod recovery;

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::error::Result;
use crate::http::Verdict;
use crate::intake::Intake;
use crate::model::{AttemptOperation, AttemptOutcome, AttemptResult, ErrorClass, NewAttempt, PlatformKind};

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub max_attempts: u32,
    /// First backoff; doubles each time.
    pub base_delay: Duration,
    /// Never wait longer than this between attempts; a longer `Retry-After` stops the run.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
        }
    }
}

/// What the journal links an attempt to.
#[derive(Debug, Clone, Copy, Default)]
pub struct JournalLink {
    pub grade_ref: Option<i64>,
    pub activity_ref: Option<i64>,
    pub learner_ref: Option<i64>,
}

/// One request, ready to send, and what the journal records about it. Holds no secret
/// in `excerpt` or `message_identifier`.
#[derive(Debug, Clone)]
pub struct Prepared<R> {
    pub request: R,
    /// The outcome URL or line item the request goes to.
    pub target: String,
    /// The request's own identifier (LTI 1.1 message identifier, LTIAAS score timestamp).
    pub message_identifier: Option<String>,
    /// A redacted excerpt of the request.
    pub excerpt: String,
}

/// What one exchange produced, classified by its protocol.
#[derive(Debug, Clone)]
pub struct Answer<O> {
    pub verdict: Verdict,
    pub http_status: Option<u16>,
    pub code_major: Option<String>,
    /// For reads: the score the LMS holds (`None` = no grade, or not a read).
    pub read_score: Option<f64>,
    /// The first bytes of the answer, scrubbed of secrets.
    pub response_excerpt: Option<String>,
    /// What else a transport returns (an LTIAAS read: the result record).
    pub output: Option<O>,
    /// What the LMS said of its request budget, if anything.
    pub budget: crate::http::RateBudget,
}

/// A request kind a transport can attempt again and again, each time afresh.
pub trait Transport: Sync {
    type Request: Send + Sync;
    type Output: Send;

    /// The operation as reports name it (`replaceResult`, `score`, …).
    fn report_name(&self) -> &'static str;
    fn operation(&self) -> AttemptOperation;
    fn kind(&self) -> PlatformKind;
    /// Who answers, for hints: `The LMS`, `LTIAAS`.
    fn peer(&self) -> &'static str;
    /// Build a fresh request (new nonce, timestamp, identifiers).
    fn prepare(
        &self,
        reserve: journal::Reservations<'_>,
    ) -> impl Future<Output = Result<Prepared<Self::Request>>> + Send;
    /// Send it and classify the answer. Never fails: a failure is a verdict.
    fn execute(&self, request: &Self::Request) -> impl Future<Output = Answer<Self::Output>> + Send;
}

/// One journaled attempt as reported to the user.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptReport {
    pub attempt_id: i64,
    pub http_status: Option<u16>,
    pub outcome: AttemptOutcome,
    pub error_class: Option<ErrorClass>,
    pub description: String,
    pub fix_hint: Option<String>,
    pub waited_before_ms: u64,
    /// The request's own identifier (not part of reports; LTIAAS shows its timestamp).
    #[serde(skip)]
    pub message_identifier: Option<String>,
}

/// The result of sending one operation, possibly over several attempts.
#[derive(Debug, Clone, Serialize)]
pub struct SendReport<O = ()> {
    pub operation: &'static str,
    pub confirmed: bool,
    pub outcome: AttemptOutcome,
    pub error_class: Option<ErrorClass>,
    pub description: String,
    pub fix_hint: Option<String>,
    /// For reads: the score the LMS holds (`null` = no grade).
    pub read_score: Option<f64>,
    pub attempts: Vec<AttemptReport>,
    /// The transport's extra output of the last attempt.
    #[serde(skip)]
    pub output: Option<O>,
}

/// Send one operation through the journal, retrying transient failures.
pub async fn send<T: Transport>(
    intake: &Intake,
    transport: &T,
    policy: RetryPolicy,
    link: JournalLink,
) -> Result<SendReport<T::Output>> {
    let mut attempts = Vec::new();
    let mut waited = Duration::ZERO;
    let mut attempt_no = 0u32;
    loop {
        attempt_no += 1;
        let prepared = transport.prepare(journal::Reservations::Direct(intake)).await?;
        let id = intake
            .attempt_started(&NewAttempt {
                grade_ref: link.grade_ref,
                activity_ref: link.activity_ref,
                learner_ref: link.learner_ref,
                operation: transport.operation(),
                transport: transport.kind(),
                target: prepared.target.clone(),
                message_identifier: prepared.message_identifier.clone(),
                request_excerpt: Some(prepared.excerpt.clone()),
            })
            .await?;
        tracing::info!(
            attempt = id,
            op = transport.report_name(),
            target = %prepared.target,
            "sending"
        );
        let answer = transport.execute(&prepared.request).await;
        let verdict = &answer.verdict;
        intake
            .attempt_finished(
                id,
                &AttemptResult {
                    outcome: verdict.outcome,
                    http_status: answer.http_status,
                    code_major: answer.code_major.clone(),
                    description: Some(verdict.description.clone()),
                    error_class: verdict.error_class,
                    fix_hint: verdict.fix_hint.clone(),
                    read_score: answer.read_score,
                    response_excerpt: answer.response_excerpt.clone(),
                    cause: Some(verdict.cause),
                },
            )
            .await?;
        attempts.push(AttemptReport {
            attempt_id: id,
            http_status: answer.http_status,
            outcome: verdict.outcome,
            error_class: verdict.error_class,
            description: verdict.description.clone(),
            fix_hint: verdict.fix_hint.clone(),
            waited_before_ms: waited.as_millis() as u64,
            message_identifier: prepared.message_identifier.clone(),
        });
        let retry = verdict.error_class == Some(ErrorClass::Transient) && attempt_no < policy.max_attempts;
        let mut report = SendReport {
            operation: transport.report_name(),
            confirmed: verdict.is_success(),
            outcome: verdict.outcome,
            error_class: verdict.error_class,
            description: verdict.description.clone(),
            fix_hint: verdict.fix_hint.clone(),
            read_score: answer.read_score,
            attempts: Vec::new(),
            output: None,
        };
        if !retry {
            report.attempts = attempts;
            report.output = answer.output;
            return Ok(report);
        }
        let backoff = policy.base_delay * 2u32.saturating_pow(attempt_no - 1);
        let wait = verdict.retry_after.map_or(backoff, |ra| ra.max(backoff));
        if wait > policy.max_wait {
            let mut hint = verdict.fix_hint.clone().unwrap_or_default();
            hint.push_str(&format!(
                " {} asked to wait {} s, longer than the {} s Passback waits in one run; send again later.",
                transport.peer(),
                wait.as_secs(),
                policy.max_wait.as_secs()
            ));
            report.fix_hint = Some(hint.trim().to_string());
            report.read_score = None;
            report.attempts = attempts;
            return Ok(report);
        }
        tokio::time::sleep(wait).await;
        waited = wait;
    }
}
