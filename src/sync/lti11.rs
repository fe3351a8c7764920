//! LTI 1.1 Basic Outcomes as a [`Transport`]: every attempt is signed afresh
//! (new nonce, timestamp and message identifier) for one outcome URL and sourcedid.

use url::Url;

use super::journal::Reservations;
use super::{Answer, Prepared, Transport};
use crate::error::Result;
use crate::lti11::client::{Lti11Credentials, OutcomeClient, OutcomeOp, SignedOutcome, sign};
use crate::model::{AttemptOperation, PlatformKind};

/// One Basic Outcomes operation for one sourcedid.
#[derive(Debug, Clone, Copy)]
pub struct OutcomeTransport<'a> {
    pub client: &'a OutcomeClient,
    pub creds: &'a Lti11Credentials,
    /// Checked against the platform's policy ([`crate::lti11::client::check_target`]).
    pub url: &'a Url,
    pub sourcedid: &'a str,
    pub op: &'a OutcomeOp,
}

impl Transport for OutcomeTransport<'_> {
    type Request = SignedOutcome;
    type Output = ();

    fn report_name(&self) -> &'static str {
        self.op.name()
    }

    fn operation(&self) -> AttemptOperation {
        match self.op {
            OutcomeOp::Replace(_) => AttemptOperation::Replace,
            OutcomeOp::Read => AttemptOperation::Read,
            OutcomeOp::Delete => AttemptOperation::Delete,
        }
    }

    fn kind(&self) -> PlatformKind {
        PlatformKind::Lti11
    }

    fn peer(&self) -> &'static str {
        "The LMS"
    }

    async fn prepare(&self, _reserve: Reservations<'_>) -> Result<Prepared<SignedOutcome>> {
        let signed = sign(self.creds, self.url, self.op, self.sourcedid)?;
        Ok(Prepared {
            target: self.url.to_string(),
            message_identifier: Some(signed.message_identifier.clone()),
            excerpt: signed.journal_excerpt(),
            request: signed,
        })
    }

    async fn execute(&self, request: &SignedOutcome) -> Answer<()> {
        let answer = self
            .client
            .execute(request, matches!(self.op, OutcomeOp::Read))
            .await;
        Answer {
            code_major: answer
                .response
                .as_ref()
                .map(|r| r.code_major.as_str().to_string()),
            read_score: answer.read_score.flatten(),
            verdict: answer.verdict,
            http_status: answer.http_status,
            response_excerpt: answer.response_excerpt,
            output: None,
            budget: answer.budget,
        }
    }
}
