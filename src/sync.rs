//! Sending through the journal: every request is journaled before it leaves
//! and completed when its answer is known; transient failures are retried with
//! backoff (honouring `Retry-After`), each retry signed afresh.

use std::time::Duration;

use serde::Serialize;

use crate::error::Result;
use crate::lti11::classify::Verdict;
use crate::lti11::client::{Exchange, Lti11Credentials, OutcomeClient, OutcomeOp, sign};
use crate::model::{AttemptOperation, AttemptOutcome, AttemptResult, ErrorClass, NewAttempt, PlatformKind};
use crate::store::Store;

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
}

/// The result of sending one operation, possibly over several attempts.
#[derive(Debug, Clone, Serialize)]
pub struct SendReport {
    pub operation: &'static str,
    pub confirmed: bool,
    pub outcome: AttemptOutcome,
    pub error_class: Option<ErrorClass>,
    pub description: String,
    pub fix_hint: Option<String>,
    /// For reads: the score the LMS holds (`null` = no grade).
    pub read_score: Option<f64>,
    pub attempts: Vec<AttemptReport>,
}

fn attempt_result(x: &Exchange) -> AttemptResult {
    AttemptResult {
        outcome: x.verdict.outcome,
        http_status: x.http_status,
        code_major: x.response.as_ref().map(|r| r.code_major.as_str().to_string()),
        description: Some(x.verdict.description.clone()),
        error_class: x.verdict.error_class,
        fix_hint: x.verdict.fix_hint.clone(),
        read_score: x.read_score.flatten(),
        response_excerpt: x.response_excerpt.clone(),
    }
}

fn operation_of(op: &OutcomeOp) -> AttemptOperation {
    match op {
        OutcomeOp::Replace(_) => AttemptOperation::Replace,
        OutcomeOp::Read => AttemptOperation::Read,
        OutcomeOp::Delete => AttemptOperation::Delete,
    }
}

/// Sends LTI 1.1 outcome operations for one platform through the journal.
#[derive(Debug, Clone, Copy)]
pub struct Lti11Sender<'a> {
    pub store: &'a Store,
    pub client: &'a OutcomeClient,
    pub creds: &'a Lti11Credentials,
    pub policy: RetryPolicy,
}

impl Lti11Sender<'_> {
    /// Send one operation to `url` for `sourcedid`, retrying transient failures.
    pub async fn send(
        &self,
        url: &url::Url,
        sourcedid: &str,
        op: &OutcomeOp,
        link: JournalLink,
    ) -> Result<SendReport> {
        send_lti11(self, url, sourcedid, op, link).await
    }
}

async fn send_lti11(
    s: &Lti11Sender<'_>,
    url: &url::Url,
    sourcedid: &str,
    op: &OutcomeOp,
    link: JournalLink,
) -> Result<SendReport> {
    let (store, client, creds, policy) = (s.store, s.client, s.creds, s.policy);
    let mut attempts = Vec::new();
    let mut waited = Duration::ZERO;
    let mut attempt_no = 0;
    loop {
        attempt_no += 1;
        let signed = sign(creds, url, op, sourcedid)?;
        let id = store
            .start_attempt(&NewAttempt {
                grade_ref: link.grade_ref,
                activity_ref: link.activity_ref,
                learner_ref: link.learner_ref,
                operation: operation_of(op),
                transport: PlatformKind::Lti11,
                target: url.to_string(),
                message_identifier: Some(signed.message_identifier.clone()),
                request_excerpt: Some(signed.journal_excerpt()),
            })
            .await?;
        tracing::info!(attempt = id, op = op.name(), %url, "sending");
        let x = client.execute(&signed, matches!(op, OutcomeOp::Read)).await;
        store.finish_attempt(id, &attempt_result(&x)).await?;
        attempts.push(AttemptReport {
            attempt_id: id,
            http_status: x.http_status,
            outcome: x.verdict.outcome,
            error_class: x.verdict.error_class,
            description: x.verdict.description.clone(),
            fix_hint: x.verdict.fix_hint.clone(),
            waited_before_ms: waited.as_millis() as u64,
        });
        let v: &Verdict = &x.verdict;
        let retry = v.error_class == Some(ErrorClass::Transient) && attempt_no < policy.max_attempts;
        if !retry {
            return Ok(SendReport {
                operation: op.name(),
                confirmed: v.is_success(),
                outcome: v.outcome,
                error_class: v.error_class,
                description: v.description.clone(),
                fix_hint: v.fix_hint.clone(),
                read_score: x.read_score.flatten(),
                attempts,
            });
        }
        let backoff = policy.base_delay * 2u32.saturating_pow(attempt_no - 1);
        let wait = v.retry_after.map_or(backoff, |ra| ra.max(backoff));
        if wait > policy.max_wait {
            let mut hint = v.fix_hint.clone().unwrap_or_default();
            hint.push_str(&format!(
                " The LMS asked to wait {} s, longer than the {} s Passback waits in one run; send again later.",
                wait.as_secs(),
                policy.max_wait.as_secs()
            ));
            return Ok(SendReport {
                operation: op.name(),
                confirmed: false,
                outcome: v.outcome,
                error_class: v.error_class,
                description: v.description.clone(),
                fix_hint: Some(hint.trim().to_string()),
                read_score: None,
                attempts,
            });
        }
        tokio::time::sleep(wait).await;
        waited = wait;
    }
}
