//! The LTI 1.1 outcome client: policy checks, signing, one HTTP exchange, and
//! a verdict. Every attempt is signed afresh (new nonce, new timestamp, new
//! message identifier); a stored request is never replayed.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, DATE, LOCATION, RETRY_AFTER};
use url::Url;

use super::classify::{Observed, classify};
use super::oauth::{OAuthSigner, SignatureMethod};
use super::pox::{self, PoxResponse, ReadScore, ReplaceResult};
use crate::error::{Error, Result};
use crate::http::{
    BodyError, ClientOptions, EXCERPT_BYTES, MAX_RESPONSE_BYTES, TransportError, Verdict, build_client, cut,
    header, is_loopback_host, parse_http_date, parse_retry_after, read_capped,
};

/// Where an LTI 1.1 platform may be sent requests, and with what credentials.
#[derive(Clone)]
pub struct Lti11Credentials {
    pub consumer_key: String,
    pub consumer_secret: String,
    pub method: SignatureMethod,
    pub allowed_hosts: Vec<String>,
    pub allow_http: bool,
}

impl std::fmt::Debug for Lti11Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lti11Credentials")
            .field("consumer_key", &self.consumer_key)
            .field("consumer_secret", &"***")
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// The Basic Outcomes operation to perform.
#[derive(Debug, Clone, PartialEq)]
pub enum OutcomeOp {
    Replace(Box<ReplaceResult>),
    Read,
    Delete,
}

impl OutcomeOp {
    pub fn name(&self) -> &'static str {
        match self {
            OutcomeOp::Replace(_) => "replaceResult",
            OutcomeOp::Read => "readResult",
            OutcomeOp::Delete => "deleteResult",
        }
    }
}

/// A request ready to send (and to show in `--dry-run`).
#[derive(Debug, Clone)]
pub struct SignedOutcome {
    pub url: Url,
    pub body: String,
    pub authorization: String,
    pub message_identifier: String,
    pub base_string: String,
    /// Always `application/xml` for Basic Outcomes (tests change it to see the LMS refuse).
    pub content_type: &'static str,
}

impl SignedOutcome {
    /// The exact HTTP request as text (no secret is ever part of it).
    pub fn to_http_text(&self) -> String {
        let host = self.url.host_str().unwrap_or("");
        let host = match self.url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let target = match self.url.query() {
            Some(q) => format!("{}?{q}", self.url.path()),
            None => self.url.path().to_string(),
        };
        format!(
            "POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {}\r\nContent-Length: {}\r\nAuthorization: {}\r\n\r\n{}",
            self.content_type,
            self.body.len(),
            self.authorization,
            self.body
        )
    }

    /// A redacted excerpt for the attempt journal: the body (cut at 2 KiB) and
    /// the Authorization header without its signature.
    pub fn journal_excerpt(&self) -> String {
        let auth = redact_signature(&self.authorization);
        let body = cut(&self.body, EXCERPT_BYTES);
        format!("POST {}\nAuthorization: {auth}\n\n{body}", self.url)
    }
}

fn redact_signature(auth: &str) -> String {
    auth.split(',')
        .map(|part| {
            if part.trim_start().starts_with("oauth_signature=") {
                let lead = &part[..part.len() - part.trim_start().len()];
                format!("{lead}oauth_signature=\"[redacted]\"")
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Check an outcome URL against the platform's policy before anything is signed.
pub fn check_target(outcome_url: &str, creds: &Lti11Credentials) -> Result<Url> {
    let url = Url::parse(outcome_url.trim())
        .map_err(|e| Error::invalid(format!("the outcome URL {outcome_url:?} is not a valid URL: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| Error::invalid(format!("the outcome URL {outcome_url:?} has no host")))?
        .to_ascii_lowercase();
    let host_port = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let allowed = creds.allowed_hosts.iter().any(|h| {
        h.eq_ignore_ascii_case(&host) || h.eq_ignore_ascii_case(&host_port) || h.eq_ignore_ascii_case(&bare)
    });
    if !allowed {
        return Err(Error::new(
            crate::error::ErrorKind::Invalid,
            format!(
                "refusing to sign for {host_port}: it is not one of this platform's allowed hosts ({}). \
                 If this LMS really lives there, add it to the platform's allowed hosts; otherwise the \
                 outcome URL may be forged.",
                creds.allowed_hosts.join(", ")
            ),
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&host) || creds.allow_http => {}
        "http" => {
            return Err(Error::invalid(format!(
                "refusing to send grades over plain http to {host}: use https, or allow plain http for this \
                 platform if the LMS truly has no TLS"
            )));
        }
        other => {
            return Err(Error::invalid(format!(
                "unsupported URL scheme {other:?} in the outcome URL"
            )));
        }
    }
    Ok(url)
}

/// Check that a replaceResult uses only the Canvas extensions the launch advertised
/// (`ext_outcome_data_values_accepted` and the `ext_outcome_*_accepted` flags); an LMS
/// that did not advertise an extension may reject or silently drop it.
pub fn check_extensions(target: &crate::model::OutcomeTarget, r: &ReplaceResult) -> Result<()> {
    use super::pox::ResultData;
    if let Some(data) = &r.result_data {
        let kind = match data {
            ResultData::Text(_) => "text",
            ResultData::Url(_) => "url",
            ResultData::LtiLaunchUrl(_) => "ltiLaunchUrl",
        };
        let accepted = target.ext_outcome_data_values_accepted.as_deref().unwrap_or("");
        if !accepted.split(',').any(|k| k.trim().eq_ignore_ascii_case(kind)) {
            return Err(Error::invalid(format!(
                "the launch did not advertise result data of kind {kind} (ext_outcome_data_values_accepted = \
                 {accepted:?}); send the score without it"
            )));
        }
    }
    let flags = [
        (
            r.result_total_score.is_some(),
            target.ext_result_total_score_accepted,
            "ext_outcome_result_total_score_accepted",
        ),
        (
            r.submitted_at.is_some(),
            target.ext_submitted_at_accepted,
            "ext_outcome_submission_submitted_at_accepted",
        ),
        (
            r.prioritize_non_tool_grade,
            target.ext_prioritize_non_tool_grade_accepted,
            "ext_outcome_submission_prioritize_non_tool_grade_accepted",
        ),
        (
            r.needs_additional_review,
            target.ext_needs_additional_review_accepted,
            "ext_outcome_submission_needs_additional_review_accepted",
        ),
    ];
    for (used, accepted, param) in flags {
        if used && !accepted {
            return Err(Error::invalid(format!(
                "the launch did not advertise {param}; this LMS may not accept that extension"
            )));
        }
    }
    Ok(())
}

/// Build and sign one request with a fresh nonce, timestamp and message identifier.
pub fn sign(creds: &Lti11Credentials, url: &Url, op: &OutcomeOp, sourcedid: &str) -> Result<SignedOutcome> {
    let message_identifier = pox::new_message_identifier();
    let body = match op {
        OutcomeOp::Replace(r) => {
            let mut r = (**r).clone();
            r.message_identifier = message_identifier.clone();
            r.sourcedid = sourcedid.to_string();
            pox::replace_result(&r).map_err(|e| Error::invalid(e.to_string()))?
        }
        OutcomeOp::Read => {
            pox::read_result(&message_identifier, sourcedid).map_err(|e| Error::invalid(e.to_string()))?
        }
        OutcomeOp::Delete => {
            pox::delete_result(&message_identifier, sourcedid).map_err(|e| Error::invalid(e.to_string()))?
        }
    };
    let signer = OAuthSigner {
        consumer_key: &creds.consumer_key,
        consumer_secret: &creds.consumer_secret,
        method: creds.method,
    };
    let signed = signer
        .sign_now("POST", url, body.as_bytes())
        .map_err(|e| Error::invalid(format!("cannot sign for {url}: {e}")))?;
    Ok(SignedOutcome {
        url: url.clone(),
        body,
        authorization: signed.authorization,
        message_identifier,
        base_string: signed.base_string,
        content_type: "application/xml",
    })
}

/// What one request to an outcome service produced.
#[derive(Debug, Clone)]
pub struct OutcomeAnswer {
    pub verdict: Verdict,
    pub http_status: Option<u16>,
    pub response: Option<PoxResponse>,
    /// The readResult score when the operation was a read: `Some(None)` = no grade.
    pub read_score: Option<Option<f64>>,
    /// The first bytes of the response, for the journal.
    pub response_excerpt: Option<String>,
}

/// An HTTP client for outcome services (rustls, no redirects, bounded bodies).
#[derive(Debug, Clone)]
pub struct OutcomeClient {
    http: reqwest::Client,
}

impl OutcomeClient {
    pub fn new(opts: ClientOptions) -> Result<Self> {
        Ok(Self {
            http: build_client(opts)?,
        })
    }

    /// Send one signed request and judge the answer.
    pub async fn execute(&self, req: &SignedOutcome, is_read: bool) -> OutcomeAnswer {
        let sent = self
            .http
            .post(req.url.clone())
            .header(CONTENT_TYPE, req.content_type)
            .header(AUTHORIZATION, &req.authorization)
            .body(req.body.clone())
            .send()
            .await;
        let mut obs = Observed::default();
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                obs.transport_error = Some(TransportError::from_reqwest(&e, str::to_string));
                return OutcomeAnswer {
                    verdict: classify(&obs),
                    http_status: None,
                    response: None,
                    read_score: None,
                    response_excerpt: None,
                };
            }
        };
        let status = resp.status().as_u16();
        obs.http_status = Some(status);
        let now = time::OffsetDateTime::now_utc();
        if let Some(d) = header(&resp, DATE).as_deref().and_then(parse_http_date) {
            obs.clock_skew_secs = Some((d - now).whole_seconds());
        }
        obs.retry_after = header(&resp, RETRY_AFTER)
            .as_deref()
            .and_then(|v| parse_retry_after(v, now));
        if (300..400).contains(&status) {
            obs.redirect_to = Some(header(&resp, LOCATION).unwrap_or_else(|| "(no Location)".into()));
        }
        let body = match read_capped(resp).await {
            Ok(b) => b,
            Err(BodyError::Transport(e)) => {
                obs.transport_error = Some(TransportError::Other(format!("the answer broke off: {e}")));
                return OutcomeAnswer {
                    verdict: classify(&obs),
                    http_status: Some(status),
                    response: None,
                    read_score: None,
                    response_excerpt: None,
                };
            }
            Err(BodyError::TooLarge(b)) => {
                obs.body_problem = Some(format!("the answer is larger than {} bytes", MAX_RESPONSE_BYTES));
                b
            }
        };
        let excerpt = Some(cut(&String::from_utf8_lossy(&body), EXCERPT_BYTES));
        let mut response = None;
        if obs.body_problem.is_none() && obs.redirect_to.is_none() {
            match pox::parse_response(&body) {
                Ok(p) => {
                    obs.code_major = Some(p.code_major.as_str().to_string());
                    obs.description = p.description.clone();
                    obs.ext_canvas_error_code = p.ext_canvas_error_code.clone();
                    response = Some(p);
                }
                Err(e) if body.is_empty() => obs.body_problem = Some(format!("empty answer ({e})")),
                Err(e @ (pox::PoxError::Malformed(_) | pox::PoxError::MissingCodeMajor))
                    if (200..300).contains(&status) || status >= 500 =>
                {
                    obs.body_malformed = matches!(e, pox::PoxError::Malformed(_));
                    obs.body_problem = Some(e.to_string());
                }
                Err(e) => {
                    // Canvas's 401/415/429 bodies are JSON: use their message as the description.
                    if let Some(msg) = json_error_message(&body) {
                        obs.description = Some(msg);
                        if !(400..500).contains(&status) || status == 404 {
                            obs.body_problem = Some(e.to_string());
                        }
                    } else if (400..500).contains(&status) && status != 404 && status != 422 {
                        obs.description = Some(e.to_string());
                    } else {
                        obs.body_problem = Some(e.to_string());
                    }
                }
            }
        }
        let mut verdict = classify(&obs);
        let mut read_score = None;
        if is_read && verdict.is_success() {
            match response.as_ref().map(|r| &r.read_score) {
                Some(ReadScore::Score(v)) => read_score = Some(Some(*v)),
                Some(ReadScore::Empty) | Some(ReadScore::NotARead) | None => read_score = Some(None),
                Some(ReadScore::Invalid(raw)) => {
                    verdict = Verdict {
                        outcome: crate::model::AttemptOutcome::Error,
                        error_class: Some(crate::model::ErrorClass::Permanent),
                        description: format!("the LMS returned an unreadable score {raw:?}"),
                        fix_hint: Some(
                            "The LMS's readResult answer is malformed; check the grade in the LMS itself."
                                .into(),
                        ),
                        retry_after: None,
                        cause: crate::model::Cause::LmsRefused,
                    };
                }
            }
        }
        OutcomeAnswer {
            verdict,
            http_status: Some(status),
            response,
            read_score,
            response_excerpt: excerpt,
        }
    }
}

fn json_error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.pointer("/errors/0/message")
        .or_else(|| v.get("message"))
        .or_else(|| v.get("error"))
        .and_then(|m| m.as_str())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(hosts: &[&str], allow_http: bool) -> Lti11Credentials {
        Lti11Credentials {
            consumer_key: "k".into(),
            consumer_secret: "very-secret".into(),
            method: SignatureMethod::HmacSha1,
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            allow_http,
        }
    }

    #[test]
    fn foreign_hosts_and_plain_http_are_refused_before_signing() {
        let c = creds(&["lms.example.edu", "127.0.0.1"], false);
        assert!(check_target("https://lms.example.edu/outcomes?x=1", &c).is_ok());
        assert!(check_target("https://LMS.example.edu:443/outcomes", &c).is_ok());
        let e = check_target("https://evil.example.com/outcomes", &c).unwrap_err();
        assert!(
            e.message.contains("not one of this platform's allowed hosts"),
            "{}",
            e.message
        );
        let e = check_target("http://lms.example.edu/outcomes", &c).unwrap_err();
        assert!(e.message.contains("plain http"));
        assert!(
            check_target("http://127.0.0.1:8080/outcomes", &c).is_ok(),
            "loopback http is fine"
        );
        assert!(check_target("http://lms.example.edu/o", &creds(&["lms.example.edu"], true)).is_ok());
        assert!(check_target("ftp://lms.example.edu/o", &c).is_err());
        assert!(check_target("not a url", &c).is_err());
    }

    #[test]
    fn every_signing_is_fresh_and_never_contains_the_secret() {
        let c = creds(&["lms.example.edu"], false);
        let url = check_target("https://lms.example.edu/o?a=1", &c).unwrap();
        let a = sign(&c, &url, &OutcomeOp::Read, "sid-1").unwrap();
        let b = sign(&c, &url, &OutcomeOp::Read, "sid-1").unwrap();
        assert_ne!(a.authorization, b.authorization);
        assert_ne!(a.message_identifier, b.message_identifier);
        for text in [a.to_http_text(), a.journal_excerpt(), a.base_string.clone()] {
            assert!(!text.contains("very-secret"));
        }
        assert!(a.journal_excerpt().contains("oauth_signature=\"[redacted]\""));
        assert!(!a.journal_excerpt().contains(&extract_sig(&a.authorization)));
        assert!(
            a.to_http_text()
                .starts_with("POST /o?a=1 HTTP/1.1\r\nHost: lms.example.edu\r\n")
        );
    }

    #[test]
    fn extensions_are_sent_only_when_the_launch_advertised_them() {
        use crate::lti11::pox::ResultData;
        let mut t = crate::model::OutcomeTarget {
            ext_outcome_data_values_accepted: Some("url, text".into()),
            ..Default::default()
        };
        let mut r = ReplaceResult {
            score: Some(0.5),
            result_data: Some(ResultData::Text("essay".into())),
            ..ReplaceResult::default()
        };
        assert!(check_extensions(&t, &r).is_ok());
        r.result_data = Some(ResultData::LtiLaunchUrl("https://tool/x".into()));
        assert!(
            check_extensions(&t, &r)
                .unwrap_err()
                .message
                .contains("ltiLaunchUrl")
        );
        r.result_data = None;
        r.submitted_at = Some("2026-11-20T10:00:00Z".into());
        let e = check_extensions(&t, &r).unwrap_err();
        assert!(e.message.contains("submitted_at_accepted"), "{}", e.message);
        t.ext_submitted_at_accepted = true;
        assert!(check_extensions(&t, &r).is_ok());
        t.ext_outcome_data_values_accepted = None;
        r.result_data = Some(ResultData::Url("https://tool/x".into()));
        assert!(
            check_extensions(&t, &r).is_err(),
            "nothing advertised, nothing sent"
        );
    }

    fn extract_sig(auth: &str) -> String {
        auth.split(',')
            .find_map(|p| p.trim().strip_prefix("oauth_signature=\""))
            .map(|s| s.trim_end_matches('"').to_string())
            .unwrap()
    }
}
