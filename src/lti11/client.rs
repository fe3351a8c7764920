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
    BodyError, ClientOptions, EXCERPT_BYTES, MAX_RESPONSE_BYTES, RateBudget, TransportError, Verdict,
    build_client, cut, header, is_loopback_ip, parse_http_date, parse_retry_after, read_capped,
    says_rate_limit_exceeded,
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
    /// The operation asked for (`replaceResult`, `readResult`, `deleteResult`).
    pub operation: &'static str,
    /// Always `application/xml` for Basic Outcomes (tests change it to see the LMS refuse).
    pub content_type: &'static str,
}

impl SignedOutcome {
    /// The request to show instead of send (a dry run): its signature redacted, so
    /// it cannot be replayed within the LMS's timestamp window (a `deleteResult`
    /// could delete a grade) and, beside the base string, offers nothing to guess a
    /// weak secret from. Everything else is as it would be sent.
    pub fn for_display(mut self) -> Self {
        self.authorization = redact_signature(&self.authorization);
        self
    }

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
        "http" if is_loopback_ip(&url) || creds.allow_http => {}
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
        operation: op.name(),
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
    /// What the LMS said of its request budget (`X-Rate-Limit-Remaining`,
    /// `X-Request-Cost`); empty when no answer arrived or it named none.
    pub budget: RateBudget,
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
    ///
    /// An answer whose `imsx_messageRefIdentifier` names another request than
    /// `req.message_identifier` confirms nothing (cause `mismatched_answer`).
    pub async fn execute(&self, req: &SignedOutcome, is_read: bool) -> OutcomeAnswer {
        let sent = self
            .http
            .post(req.url.clone())
            .header(CONTENT_TYPE, req.content_type)
            .header(AUTHORIZATION, &req.authorization)
            .body(req.body.clone())
            .send()
            .await;
        let mut obs = Observed {
            expected_message_identifier: Some(req.message_identifier.clone()),
            expected_operation: Some(format!("{}Response", req.operation)),
            ..Observed::default()
        };
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
                    budget: RateBudget::default(),
                };
            }
        };
        let status = resp.status().as_u16();
        obs.http_status = Some(status);
        obs.budget = RateBudget::from_headers(resp.headers());
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
                    budget: obs.budget,
                };
            }
            Err(BodyError::TooLarge(b)) => {
                obs.body_problem = Some(format!("the answer is larger than {} bytes", MAX_RESPONSE_BYTES));
                b
            }
        };
        let excerpt = Some(cut(&String::from_utf8_lossy(&body), EXCERPT_BYTES));
        // Canvas throttles with `403 Forbidden (Rate Limit Exceeded)` in plain text.
        obs.says_rate_limited = (400..500).contains(&status) && says_rate_limit_exceeded(&body);
        let mut response = None;
        if obs.body_problem.is_none() && obs.redirect_to.is_none() {
            match pox::parse_response(&body) {
                Ok(p) => {
                    obs.record_pox(&p);
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
                        cause: crate::model::Cause::MalformedAnswer,
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
            budget: obs.budget,
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

    /// The `imsx_messageIdentifier` of a request body.
    fn message_id(body: &str) -> String {
        body.split("<imsx_messageIdentifier>")
            .nth(1)
            .and_then(|rest| rest.split("</imsx_messageIdentifier>").next())
            .unwrap_or_default()
            .to_string()
    }

    fn moodle_answer(major: &str, desc: &str, msg_ref: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<imsx_POXEnvelopeResponse xmlns=\"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0\"><imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_version>V1.0</imsx_version><imsx_messageIdentifier>42</imsx_messageIdentifier><imsx_statusInfo><imsx_codeMajor>{major}</imsx_codeMajor><imsx_severity>status</imsx_severity><imsx_description>{desc}</imsx_description><imsx_messageRefIdentifier>{msg_ref}</imsx_messageRefIdentifier><imsx_operationRefIdentifier>replaceResultRequest</imsx_operationRefIdentifier></imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader><imsx_POXBody><replaceResultResponse/></imsx_POXBody></imsx_POXEnvelopeResponse>\n"
        )
    }

    const HTML_NOTICE: &str = "<br />\n<b>Notice</b>:  Undefined index: foo in <b>/var/www/moodle/mod/lti/service.php</b> on line <b>42</b><br />\n";
    const TEXT_NOTICE: &str = "PHP Notice:  Undefined variable: bar in /var/www/x.php on line 1\n";

    /// Send one replaceResult to a loopback server answering with `answer`.
    async fn exchange(answer: crate::http::test_server::Answer) -> OutcomeAnswer {
        let base = crate::http::test_server::serve(vec![answer]);
        send_to(&base, ClientOptions::default()).await
    }

    fn ok_xml(
        headers: &'static [(&'static str, &'static str)],
        junk: &'static str,
    ) -> crate::http::test_server::Answer {
        Box::new(move |body| {
            let xml = format!(
                "{junk}{}",
                moodle_answer("success", "Grade replace response", &message_id(body))
            );
            crate::http::test_server::response("200 OK", headers, &xml)
        })
    }

    /// Send one signed replaceResult to `base`/outcomes with `opts`.
    async fn send_to(base: &str, opts: ClientOptions) -> OutcomeAnswer {
        let c = creds(&["127.0.0.1"], false);
        let url = check_target(&format!("{base}/outcomes"), &c).unwrap();
        let op = OutcomeOp::Replace(Box::new(ReplaceResult {
            score: Some(0.5),
            ..ReplaceResult::default()
        }));
        let signed = sign(&c, &url, &op, "sid-1").unwrap();
        OutcomeClient::new(opts).unwrap().execute(&signed, false).await
    }

    #[tokio::test]
    async fn a_signed_request_is_never_sent_on_to_a_redirect_target() {
        use crate::http::test_server::{response, serve, witness};
        let (elsewhere, seen) = witness();
        for status in [
            "301 Moved Permanently",
            "302 Found",
            "307 Temporary Redirect",
            "308 Permanent Redirect",
        ] {
            let location = format!("{elsewhere}/outcomes");
            let base = serve(vec![Box::new(move |_| {
                response(status, &[("Location", &location)], "")
            })]);
            let a = send_to(&base, ClientOptions::default()).await;
            assert!(!a.verdict.is_success(), "{status}");
            assert_eq!(a.verdict.cause, crate::model::Cause::Redirected, "{status}");
            assert_eq!(a.verdict.error_class, Some(crate::model::ErrorClass::Permanent));
            assert!(
                a.verdict.description.contains(&elsewhere),
                "{}",
                a.verdict.description
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !seen.load(std::sync::atomic::Ordering::SeqCst),
            "nothing reached the redirect target"
        );
    }

    #[tokio::test]
    async fn an_answer_over_the_size_cap_is_never_a_success() {
        let a = exchange(Box::new(|body| {
            // A success, then padding past the cap (trailing spaces are still good XML).
            let xml = moodle_answer("success", "ok", &message_id(body));
            let padded = format!("{xml}{}", " ".repeat(MAX_RESPONSE_BYTES));
            crate::http::test_server::response("200 OK", &[], &padded)
        }))
        .await;
        assert!(!a.verdict.is_success(), "{:?}", a.verdict);
        assert!(
            a.verdict.description.contains("larger than"),
            "{}",
            a.verdict.description
        );
        assert!(
            a.response_excerpt.unwrap().len() <= EXCERPT_BYTES + 64,
            "the journal keeps an excerpt"
        );
    }

    #[tokio::test]
    async fn an_answer_that_does_not_come_in_time_is_a_transient_timeout() {
        let (base, opts) = crate::http::test_server::too_late();
        let started = std::time::Instant::now();
        let a = send_to(&base, opts).await;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "the cap ended the wait"
        );
        assert_eq!(a.verdict.cause, crate::model::Cause::Timeout, "{:?}", a.verdict);
        assert_eq!(a.verdict.error_class, Some(crate::model::ErrorClass::Transient));
    }

    #[tokio::test]
    async fn a_server_whose_certificate_is_not_trusted_gets_nothing() {
        let tls = crate::http::test_server::untrusted_tls();
        let a = send_to(&tls.url, ClientOptions::default()).await;
        assert!(!a.verdict.is_success());
        assert_eq!(a.http_status, None, "no HTTP exchange happened");
        assert_eq!(a.verdict.cause, crate::model::Cause::ConnectionFailed);
        assert!(
            a.verdict.description.to_ascii_lowercase().contains("certificate"),
            "{}",
            a.verdict.description
        );
    }

    #[tokio::test]
    async fn notices_before_a_success_are_a_success() {
        for junk in [HTML_NOTICE, TEXT_NOTICE, ""] {
            let a = exchange(ok_xml(&[("Content-Type", "text/html")], junk)).await;
            assert!(a.verdict.is_success(), "{junk:?}: {:?}", a.verdict);
            assert_eq!(a.verdict.cause, crate::model::Cause::Ok);
            assert!(
                a.response_excerpt.unwrap().starts_with(junk),
                "the journal keeps what came"
            );
        }
    }

    #[tokio::test]
    async fn notices_before_a_failure_are_that_failure() {
        let a = exchange(Box::new(|body| {
            let xml = format!(
                "{TEXT_NOTICE}{}",
                moodle_answer("failure", "User is not enrolled in the course", &message_id(body))
            );
            crate::http::test_server::response("200 OK", &[], &xml)
        }))
        .await;
        assert_eq!(a.verdict.outcome, crate::model::AttemptOutcome::Failure);
        assert_eq!(a.verdict.error_class, Some(crate::model::ErrorClass::Permanent));
        assert_eq!(a.verdict.cause, crate::model::Cause::NotAStudent);
        assert_eq!(a.verdict.description, "User is not enrolled in the course");
    }

    #[tokio::test]
    async fn an_html_page_is_still_refused() {
        let a = exchange(Box::new(|_| {
            crate::http::test_server::response(
                "200 OK",
                &[("Content-Type", "text/html")],
                "<!DOCTYPE html><html><body><h1>Log in</h1></body></html>",
            )
        }))
        .await;
        assert_eq!(a.verdict.outcome, crate::model::AttemptOutcome::Error);
        assert_eq!(a.verdict.error_class, Some(crate::model::ErrorClass::Permanent));
        assert_eq!(a.verdict.cause, crate::model::Cause::NotAnOutcomeService);
        assert!(
            a.verdict.description.contains("not XML"),
            "{}",
            a.verdict.description
        );
        let a = exchange(Box::new(|_| {
            crate::http::test_server::response(
                "200 OK",
                &[],
                &format!("{HTML_NOTICE}<p>Fatal error: database unreachable</p>"),
            )
        }))
        .await;
        assert!(!a.verdict.is_success());
    }

    #[tokio::test]
    async fn an_answer_naming_another_request_is_not_a_confirmation() {
        let a = exchange(Box::new(|_| {
            crate::http::test_server::response(
                "200 OK",
                &[],
                &moodle_answer(
                    "success",
                    "Grade replace response",
                    "0123456789abcdef0123456789abcdef",
                ),
            )
        }))
        .await;
        assert!(!a.verdict.is_success());
        assert_eq!(a.verdict.outcome, crate::model::AttemptOutcome::Error);
        assert_eq!(a.verdict.error_class, Some(crate::model::ErrorClass::Transient));
        assert_eq!(a.verdict.cause, crate::model::Cause::MismatchedAnswer);
        assert!(a.verdict.description.contains("0123456789abcdef0123456789abcdef"));
        assert!(a.response.is_some(), "the parsed answer is kept for the journal");
        // An empty ref names no request: nothing to compare.
        let a = exchange(Box::new(|_| {
            crate::http::test_server::response("200 OK", &[], &moodle_answer("success", "ok", ""))
        }))
        .await;
        assert!(a.verdict.is_success(), "{:?}", a.verdict);
    }

    #[tokio::test]
    async fn canvas_throttling_is_rate_limiting_with_its_budget() {
        let a = exchange(Box::new(|_| {
            crate::http::test_server::response(
                "403 Forbidden",
                &[
                    ("Content-Type", "text/plain"),
                    ("X-Rate-Limit-Remaining", "0.0"),
                    ("X-Request-Cost", "1.25"),
                ],
                "403 Forbidden (Rate Limit Exceeded)\n",
            )
        }))
        .await;
        assert_eq!(a.http_status, Some(403));
        assert_eq!(a.verdict.outcome, crate::model::AttemptOutcome::Error);
        assert_eq!(a.verdict.error_class, Some(crate::model::ErrorClass::Transient));
        assert_eq!(a.verdict.cause, crate::model::Cause::RateLimited);
        assert_eq!(
            a.verdict.retry_after,
            Some(crate::http::BUDGET_THROTTLE_DEFAULT_WAIT)
        );
        assert_eq!(a.budget.remaining, Some(0.0));
        assert_eq!(a.budget.cost, Some(1.25));
        // The words alone are enough, and Retry-After wins.
        let a = exchange(Box::new(|_| {
            crate::http::test_server::response(
                "403 Forbidden",
                &[("Retry-After", "9")],
                "Rate Limit Exceeded",
            )
        }))
        .await;
        assert_eq!(a.verdict.cause, crate::model::Cause::RateLimited);
        assert_eq!(a.verdict.retry_after, Some(std::time::Duration::from_secs(9)));
        assert_eq!(a.budget, RateBudget::default());
        // A plain 403 is still a refusal.
        let a = exchange(Box::new(|_| {
            crate::http::test_server::response(
                "403 Forbidden",
                &[("X-Rate-Limit-Remaining", "550")],
                "Forbidden",
            )
        }))
        .await;
        assert_eq!(a.verdict.error_class, Some(crate::model::ErrorClass::Auth));
        assert_eq!(a.verdict.cause, crate::model::Cause::OutcomesDisabled);
    }

    #[tokio::test]
    async fn every_answer_carries_the_budget() {
        let a = exchange(ok_xml(
            &[("x-rate-limit-remaining", "599.5"), ("X-REQUEST-COST", "0.25")],
            "",
        ))
        .await;
        assert!(a.verdict.is_success());
        assert_eq!(
            a.budget,
            RateBudget {
                remaining: Some(599.5),
                cost: Some(0.25)
            }
        );
    }

    fn extract_sig(auth: &str) -> String {
        auth.split(',')
            .find_map(|p| p.trim().strip_prefix("oauth_signature=\""))
            .map(|s| s.trim_end_matches('"').to_string())
            .unwrap()
    }
}
