//! LTIAAS scores and result reads as a [`Transport`]: every score attempt carries
//! a fresh timestamp with milliseconds, strictly increasing per (line item,
//! learner), reserved in the ledger so two senders never share one.

use super::journal::Reservations;
use super::{Answer, Prepared, Transport};
use crate::error::Result;
use crate::intake::journal::ScoreClock;
use crate::ltiaas::ScoreToSend;
use crate::ltiaas::client::{
    ApiAnswer, LtiaasAuth, LtiaasClient, LtiaasRequest, ResultScore, format_timestamp_ms,
};
use crate::model::{AttemptOperation, PlatformKind};

/// What to do on a line item.
#[derive(Debug, Clone, Copy)]
pub enum LtiaasOp<'a> {
    /// Post a score.
    Score(&'a ScoreToSend),
    /// Read what the LMS holds for one user.
    Read { user_id: &'a str },
}

/// One score post or result read on one line item, through one service key.
#[derive(Debug, Clone, Copy)]
pub struct LtiaasTransport<'a> {
    pub client: &'a LtiaasClient,
    pub auth: &'a LtiaasAuth,
    /// The ledger id of the platform (keys the score clock).
    pub platform_id: i64,
    pub line_item_id: &'a str,
    pub op: LtiaasOp<'a>,
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl Transport for LtiaasTransport<'_> {
    type Request = LtiaasRequest;
    type Output = ResultScore;

    fn report_name(&self) -> &'static str {
        self.operation().as_str()
    }

    fn operation(&self) -> AttemptOperation {
        match self.op {
            LtiaasOp::Score(_) => AttemptOperation::Score,
            LtiaasOp::Read { .. } => AttemptOperation::ScoreRead,
        }
    }

    fn kind(&self) -> PlatformKind {
        PlatformKind::Ltiaas
    }

    fn peer(&self) -> &'static str {
        "LTIAAS"
    }

    async fn prepare(&self, reserve: Reservations<'_>) -> Result<Prepared<LtiaasRequest>> {
        let (request, timestamp) = match self.op {
            LtiaasOp::Score(score) => {
                let ms = reserve
                    .score_timestamp(ScoreClock {
                        platform_id: self.platform_id,
                        line_item_id: self.line_item_id.to_string(),
                        lti_user_id: score.user_id.clone(),
                        now_ms: now_ms(),
                    })
                    .await?;
                let ts = format_timestamp_ms(ms);
                (
                    self.client
                        .score_request(self.line_item_id, &score.body(ts.clone()))?,
                    Some(ts),
                )
            }
            LtiaasOp::Read { user_id } => (
                self.client
                    .scores_request(self.line_item_id, Some(user_id), None)?,
                None,
            ),
        };
        Ok(Prepared {
            target: self.line_item_id.to_string(),
            message_identifier: timestamp,
            excerpt: request.journal_excerpt(),
            request,
        })
    }

    async fn execute(&self, request: &LtiaasRequest) -> Answer<ResultScore> {
        match self.op {
            LtiaasOp::Score(_) => {
                let mut answer = self.client.post_score(self.auth, request).await;
                if answer.verdict.is_success() {
                    answer.verdict.description = "the LMS accepted the score".into();
                }
                into_answer(answer, None)
            }
            LtiaasOp::Read { user_id } => {
                let all = self
                    .client
                    .read_scores(self.auth, self.line_item_id, Some(user_id), None)
                    .await;
                // The user's newest result; LMSs that ignore the filter return everyone's.
                let found = all.value.as_ref().and_then(|results| {
                    results
                        .iter()
                        .rev()
                        .find(|r| r.user_id.as_deref() == Some(user_id))
                        .cloned()
                });
                let pages = all.pages;
                let mut answer = ApiAnswer {
                    verdict: all.verdict,
                    http_status: all.http_status,
                    value: None::<()>,
                    response_excerpt: all.response_excerpt,
                    pages,
                    budget: all.budget,
                };
                if answer.verdict.is_success() {
                    answer.verdict.description = match &found {
                        Some(_) => format!("read the result ({pages} page(s))"),
                        None => format!("no result for this user ({pages} page(s) read)"),
                    };
                }
                into_answer(answer, found)
            }
        }
    }
}

fn into_answer<T>(answer: ApiAnswer<T>, found: Option<ResultScore>) -> Answer<ResultScore> {
    Answer {
        verdict: answer.verdict,
        http_status: answer.http_status,
        code_major: None,
        // The journal keeps reads on the 0–1 scale; AGS results count against
        // `resultMaximum`, which is 1 when absent.
        read_score: found.as_ref().and_then(normalized),
        response_excerpt: answer.response_excerpt,
        output: found,
        budget: answer.budget,
    }
}

/// A result on the 0–1 scale: `resultScore / resultMaximum` (1 when absent).
fn normalized(r: &ResultScore) -> Option<f64> {
    let score = r.result_score?;
    match r.result_maximum {
        Some(max) if max > 0.0 => Some(score / max),
        Some(_) => None,
        None => Some(score),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(score: Option<f64>, max: Option<f64>) -> ResultScore {
        serde_json::from_value(serde_json::json!({
            "userId": "u1", "resultScore": score, "resultMaximum": max,
        }))
        .unwrap()
    }

    #[test]
    fn reads_are_normalized_to_the_result_maximum() {
        assert_eq!(normalized(&result(Some(9.0), Some(10.0))), Some(0.9));
        assert_eq!(normalized(&result(Some(0.25), None)), Some(0.25));
        assert_eq!(normalized(&result(Some(3.0), Some(0.0))), None);
        assert_eq!(normalized(&result(None, Some(10.0))), None);
    }
}
