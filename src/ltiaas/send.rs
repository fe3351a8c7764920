//! Sending scores and reading results through the journal, as `sync` does for
//! LTI 1.1: every request is journaled before it leaves and completed when its
//! answer is known; only transient failures are retried, with backoff that
//! honours `Retry-After`. Every score attempt carries a fresh timestamp with
//! milliseconds, strictly increasing per (line item, learner).

use std::time::Duration;

use serde::Serialize;

use super::client::{
    ActivityProgress, Exchange, GradingProgress, LtiaasAuth, LtiaasClient, ResultScore, ScoreBody,
    format_timestamp_ms,
};
use crate::error::{Error, Result};
use crate::lti11::classify::Verdict;
use crate::model::{AttemptOperation, AttemptOutcome, AttemptResult, ErrorClass, NewAttempt, PlatformKind};
use crate::store::Store;
pub use crate::sync::{AttemptReport, JournalLink, RetryPolicy};

/// A score to send to one learner.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ScoreToSend {
    pub user_id: String,
    /// 0 is a valid score.
    pub score_given: f64,
    pub score_maximum: f64,
    pub comment: Option<String>,
    pub activity_progress: ActivityProgress,
    pub grading_progress: GradingProgress,
}

impl LineItemSource {
    /// A few words for people: `looked up by resource link`.
    pub fn describe(self) -> &'static str {
        match self {
            LineItemSource::Given => "given",
            LineItemSource::Ledger => "remembered in the ledger",
            LineItemSource::Lookup => "looked up by resource link",
            LineItemSource::Created => "created",
        }
    }
}

impl ScoreToSend {
    /// A final score (`Completed` / `FullyGraded`), the usual re-send.
    pub fn final_score(user_id: &str, score_given: f64, score_maximum: f64) -> Self {
        Self {
            user_id: user_id.to_string(),
            score_given,
            score_maximum,
            comment: None,
            activity_progress: ActivityProgress::Completed,
            grading_progress: GradingProgress::FullyGraded,
        }
    }

    /// Check the values before anything is journaled or sent.
    pub fn validate(&self) -> Result<()> {
        if self.user_id.trim().is_empty() {
            return Err(Error::invalid("the user id is empty"));
        }
        if !self.score_maximum.is_finite() || self.score_maximum <= 0.0 {
            return Err(Error::invalid(format!(
                "the score maximum must be a number above 0, got {}",
                self.score_maximum
            )));
        }
        if !self.score_given.is_finite() || self.score_given < 0.0 {
            return Err(Error::invalid(format!(
                "the score must be a number of 0 or more, got {}",
                self.score_given
            )));
        }
        Ok(())
    }

    /// The request body with `timestamp`.
    pub fn body(&self, timestamp: String) -> ScoreBody {
        ScoreBody {
            user_id: self.user_id.clone(),
            score_given: Some(self.score_given),
            score_maximum: Some(self.score_maximum),
            comment: self.comment.clone(),
            activity_progress: self.activity_progress,
            grading_progress: self.grading_progress,
            timestamp,
        }
    }
}

/// How the line item a score went to was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineItemSource {
    /// Given by the caller (`--line-item`).
    Given,
    /// Remembered on the activity in the ledger.
    Ledger,
    /// Looked up by resource link through `GET /api/lineitems`.
    Lookup,
    /// Created because none existed (`--create-line-item`).
    Created,
}

/// The result of sending a score or reading results, possibly over several attempts.
#[derive(Debug, Clone, Serialize)]
pub struct LtiaasReport {
    /// `score` or `score_read`.
    pub operation: &'static str,
    pub confirmed: bool,
    pub outcome: AttemptOutcome,
    pub error_class: Option<ErrorClass>,
    pub description: String,
    pub fix_hint: Option<String>,
    pub user_id: String,
    pub line_item_id: Option<String>,
    pub line_item_source: Option<LineItemSource>,
    /// When the service key used was captured (RFC 3339), and how old it was.
    pub service_key_captured_at: Option<String>,
    pub service_key_age: Option<String>,
    /// The timestamp of the last score attempt.
    pub timestamp: Option<String>,
    /// For reads: the result the LMS holds for the user (`null` = no grade).
    pub result: Option<ResultScore>,
    /// For reads: the score the LMS holds (`null` = no grade).
    pub read_score: Option<f64>,
    pub attempts: Vec<AttemptReport>,
}

impl LtiaasReport {
    /// A report for a failure before any journaled attempt (e.g. the line item lookup).
    pub fn failed_before_sending(
        operation: &'static str,
        user_id: &str,
        verdict: &Verdict,
        what: &str,
    ) -> Self {
        Self {
            operation,
            confirmed: false,
            outcome: verdict.outcome,
            error_class: verdict.error_class,
            description: format!("{what}: {}", verdict.description),
            fix_hint: verdict.fix_hint.clone(),
            user_id: user_id.to_string(),
            line_item_id: None,
            line_item_source: None,
            service_key_captured_at: None,
            service_key_age: None,
            timestamp: None,
            result: None,
            read_score: None,
            attempts: Vec::new(),
        }
    }
}

/// Sends LTIAAS score operations for one platform through the journal.
#[derive(Debug, Clone, Copy)]
pub struct LtiaasSender<'a> {
    pub store: &'a Store,
    pub client: &'a LtiaasClient,
    pub auth: &'a LtiaasAuth,
    /// The ledger id of the platform (keys the score clock).
    pub platform_id: i64,
    pub policy: RetryPolicy,
}

enum Op<'a> {
    Score(&'a ScoreToSend),
    Read(&'a str),
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl LtiaasSender<'_> {
    /// Post `score` to `line_item_id`, retrying transient failures, each attempt
    /// with a fresh, strictly increasing timestamp.
    pub async fn send_score(
        &self,
        line_item_id: &str,
        score: &ScoreToSend,
        link: JournalLink,
    ) -> Result<LtiaasReport> {
        score.validate()?;
        self.run(line_item_id, Op::Score(score), link).await
    }

    /// Read what the LMS holds for `user_id` on `line_item_id`.
    pub async fn read_score(
        &self,
        line_item_id: &str,
        user_id: &str,
        link: JournalLink,
    ) -> Result<LtiaasReport> {
        if user_id.trim().is_empty() {
            return Err(Error::invalid("the user id is empty"));
        }
        self.run(line_item_id, Op::Read(user_id), link).await
    }

    async fn run(&self, line_item_id: &str, op: Op<'_>, link: JournalLink) -> Result<LtiaasReport> {
        let (operation, user_id) = match &op {
            Op::Score(s) => (AttemptOperation::Score, s.user_id.as_str()),
            Op::Read(u) => (AttemptOperation::ScoreRead, *u),
        };
        let mut attempts = Vec::new();
        let mut waited = Duration::ZERO;
        let mut attempt_no = 0u32;
        loop {
            attempt_no += 1;
            let (req, timestamp) = match &op {
                Op::Score(s) => {
                    let ms = self
                        .store
                        .next_score_timestamp_ms(self.platform_id, line_item_id, &s.user_id, now_ms())
                        .await?;
                    let ts = format_timestamp_ms(ms);
                    (
                        self.client.score_request(line_item_id, &s.body(ts.clone()))?,
                        Some(ts),
                    )
                }
                Op::Read(u) => (self.client.scores_request(line_item_id, Some(u), None)?, None),
            };
            let id = self
                .store
                .start_attempt(&NewAttempt {
                    grade_ref: link.grade_ref,
                    activity_ref: link.activity_ref,
                    learner_ref: link.learner_ref,
                    operation,
                    transport: PlatformKind::Ltiaas,
                    target: line_item_id.to_string(),
                    message_identifier: timestamp.clone(),
                    request_excerpt: Some(req.journal_excerpt()),
                })
                .await?;
            tracing::info!(
                attempt = id,
                op = operation.as_str(),
                line_item = line_item_id,
                "sending"
            );
            let (mut x, result): (Exchange<()>, Option<Option<ResultScore>>) = match &op {
                Op::Score(_) => (self.client.post_score(self.auth, &req).await, None),
                Op::Read(u) => {
                    let x = self
                        .client
                        .read_scores(self.auth, line_item_id, Some(u), None)
                        .await;
                    let found = x.value.as_ref().map(|all| {
                        all.iter()
                            .rev()
                            .find(|r| r.user_id.as_deref() == Some(u))
                            .cloned()
                    });
                    (
                        Exchange {
                            verdict: x.verdict,
                            http_status: x.http_status,
                            value: None,
                            response_excerpt: x.response_excerpt,
                            pages: x.pages,
                        },
                        found,
                    )
                }
            };
            if x.verdict.is_success() {
                x.verdict.description = match (&op, &result) {
                    (Op::Score(_), _) => "the LMS accepted the score".into(),
                    (Op::Read(_), Some(Some(_))) => format!("read the result ({} page(s))", x.pages),
                    (Op::Read(_), _) => format!("no result for this user ({} page(s) read)", x.pages),
                };
            }
            let v = &x.verdict;
            let read_score = result
                .as_ref()
                .and_then(|r| r.as_ref())
                .and_then(|r| r.result_score);
            self.store
                .finish_attempt(
                    id,
                    &AttemptResult {
                        outcome: v.outcome,
                        http_status: x.http_status,
                        code_major: None,
                        description: Some(v.description.clone()),
                        error_class: v.error_class,
                        fix_hint: v.fix_hint.clone(),
                        read_score,
                        response_excerpt: x.response_excerpt.clone(),
                    },
                )
                .await?;
            attempts.push(AttemptReport {
                attempt_id: id,
                http_status: x.http_status,
                outcome: v.outcome,
                error_class: v.error_class,
                description: v.description.clone(),
                fix_hint: v.fix_hint.clone(),
                waited_before_ms: waited.as_millis() as u64,
            });
            let retry = v.error_class == Some(ErrorClass::Transient) && attempt_no < self.policy.max_attempts;
            let mut report = LtiaasReport {
                operation: operation.as_str(),
                confirmed: v.is_success(),
                outcome: v.outcome,
                error_class: v.error_class,
                description: v.description.clone(),
                fix_hint: v.fix_hint.clone(),
                user_id: user_id.to_string(),
                line_item_id: Some(line_item_id.to_string()),
                line_item_source: None,
                service_key_captured_at: None,
                service_key_age: None,
                timestamp,
                result: result.clone().flatten(),
                read_score,
                attempts: Vec::new(),
            };
            if !retry {
                report.attempts = attempts;
                return Ok(report);
            }
            let backoff = self.policy.base_delay * 2u32.saturating_pow(attempt_no - 1);
            let wait = v.retry_after.map_or(backoff, |ra| ra.max(backoff));
            if wait > self.policy.max_wait {
                let mut hint = v.fix_hint.clone().unwrap_or_default();
                hint.push_str(&format!(
                    " LTIAAS asked to wait {} s, longer than the {} s Passback waits in one run; send again later.",
                    wait.as_secs(),
                    self.policy.max_wait.as_secs()
                ));
                report.fix_hint = Some(hint.trim().to_string());
                report.attempts = attempts;
                return Ok(report);
            }
            tokio::time::sleep(wait).await;
            waited = wait;
        }
    }
}
