//! One LTI 1.1 outcome operation by hand (support work outside the ledger's targets):
//! sign it for a dry run, or send it through the journal.

use super::Passback;
use crate::error::{Error, Result};
use crate::http::ClientOptions;
use crate::lti11::client::{self, Lti11Credentials, OutcomeClient, OutcomeOp, SignedOutcome};
use crate::lti11::oauth::SignatureMethod;
use crate::model::PlatformKind;
use crate::sync::lti11::OutcomeTransport;
use crate::sync::{self, JournalLink, RetryPolicy, SendReport};

/// Where one LTI 1.1 outcome operation goes (support work outside the ledger's targets).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct OneOutcome {
    pub platform: String,
    pub sourcedid: String,
    pub outcome_url: String,
}

impl Passback {
    /// An LTI 1.1 platform's signing credentials and policy (secret from the keyring).
    pub async fn lti11_credentials(&self, platform: &str) -> Result<Lti11Credentials> {
        let p = self.store().platform_by_name(platform).await?;
        if p.kind != PlatformKind::Lti11 {
            return Err(Error::invalid(format!(
                "platform {platform:?} is an LTIAAS platform; LTI 1.1 outcomes need an lti11 platform"
            )));
        }
        let (secret_ref, bound) = self.platform_secret(&p).await?;
        // Signing is allowed only for hosts the ledger lists AND the keyring entry was
        // stored for: a ledger edited to add a host cannot have the secret sign for it.
        // `check_target` then checks every outcome URL against these, at each send.
        let allowed_hosts: Vec<String> = p
            .allowed_hosts
            .iter()
            .filter(|h| bound.allows(h))
            .cloned()
            .collect();
        if allowed_hosts.is_empty() {
            let wanted = p.allowed_hosts.join(", ");
            return Err(bound.refusal(&wanted, &secret_ref));
        }
        Ok(Lti11Credentials {
            consumer_key: p.consumer_key.clone().unwrap_or_default(),
            consumer_secret: bound.secret,
            method: SignatureMethod::HmacSha1,
            allowed_hosts,
            allow_http: p.allow_http,
        })
    }

    /// Sign one operation without sending it (`--dry-run`). The host policy is
    /// checked first, exactly as for a real send.
    pub async fn sign_one(&self, t: &OneOutcome, op: &OutcomeOp) -> Result<SignedOutcome> {
        let creds = self.lti11_credentials(&t.platform).await?;
        let url = client::check_target(&t.outcome_url, &creds)?;
        // Only ever shown: without its signature (see `SignedOutcome::for_display`).
        Ok(client::sign(&creds, &url, op, &t.sourcedid)?.for_display())
    }

    /// Send one LTI 1.1 operation through the journal, retrying transient failures.
    pub async fn send_one(
        &self,
        t: &OneOutcome,
        op: &OutcomeOp,
        policy: RetryPolicy,
        opts: ClientOptions,
    ) -> Result<SendReport> {
        let creds = self.lti11_credentials(&t.platform).await?;
        let url = client::check_target(&t.outcome_url, &creds)?;
        let client = OutcomeClient::new(opts)?;
        let transport = OutcomeTransport {
            client: &client,
            creds: &creds,
            url: &url,
            sourcedid: &t.sourcedid,
            op,
        };
        sync::send(self.intake(), &transport, policy, JournalLink::default()).await
    }
}
