//! Reading LTIAAS error bodies leniently and turning an answer into an
//! outcome, an error class and a one-line fix hint.
//!
//! LTIAAS errors come in several shapes (`details.message/description`,
//! `details.errors[]`, `details.bodyReceived` + `externalError` when the LMS
//! refused, or a non-JSON body from something in between), and whether LTIAAS
//! passes the LMS's HTTP status through is undocumented. So the LMS's own words
//! are checked first: "not a student", "course concluded" and "max attempts"
//! are permanent whatever the status; 401 is `auth` (a fresh launch is needed
//! for a service key); 429, Canvas's `403 Forbidden (Rate Limit Exceeded)` and
//! 5xx are `transient`, honouring `Retry-After`.

use std::time::Duration;

use serde_json::Value;

use crate::http::{RateBudget, TransportError, Verdict, cut, throttle_wait};
use crate::model::{AttemptOutcome, Cause, ErrorClass};

/// Which `Authorization` scheme a request used (decides the hint on a 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthScheme {
    /// `LTIK-AUTH-V2 API_KEY:LTIK` (inside a launch, 24 h).
    Ltik,
    /// `SERVICE-AUTH-V1 API_KEY:SERVICE_KEY` (outside a launch).
    ServiceKey,
}

/// An LTIAAS error body, read leniently: every field is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LtiaasError {
    pub status: Option<u16>,
    /// `error`, e.g. `Unauthorized`.
    pub error: Option<String>,
    /// `details.code`.
    pub code: Option<String>,
    /// `details.message`, e.g. `INVALID_LTIK_AUTH_AUTHORIZATION_HEADER`.
    pub message: Option<String>,
    /// `details.description`, e.g. `Invalid or expired ltik.`
    pub description: Option<String>,
    /// `details.errors[]` as text (strings, or objects' `message`).
    pub errors: Vec<String>,
    /// The LMS's own words from `details.bodyReceived` (the whole text if it is not JSON).
    pub body_received: Option<String>,
    /// `details.externalError`: the error came from the LMS, not LTIAAS.
    pub external_error: bool,
    pub external_url: Option<String>,
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The human words in an LMS error body: Canvas `{"errors":{"message"}}` or
/// `{"errors":[{"message"}]}`, `{"message"}`, `{"error"}`, `{"error_description"}`,
/// a JSON string, or plain text.
pub fn lms_words(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return None;
            }
            if (t.starts_with('{') || t.starts_with('[') || t.starts_with('"'))
                && let Ok(inner) = serde_json::from_str::<Value>(t)
                && let Some(w) = lms_words(&inner)
            {
                return Some(w);
            }
            Some(cut(t, 500))
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(lms_words).collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        }
        Value::Object(m) => {
            for key in [
                "errors",
                "message",
                "error_description",
                "description",
                "error",
                "detail",
            ] {
                if let Some(w) = m.get(key).and_then(lms_words) {
                    return Some(w);
                }
            }
            None
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl LtiaasError {
    /// Parse an error body. Any JSON object is accepted; a body that is not
    /// JSON (an LMS or proxy page) becomes `body_received` with `external_error`.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let text = String::from_utf8_lossy(body);
        if text.trim().is_empty() {
            return None;
        }
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return Some(Self {
                body_received: Some(cut(text.trim(), 500)),
                external_error: true,
                ..Self::default()
            });
        };
        let Value::Object(top) = &v else {
            return Some(Self {
                body_received: lms_words(&v),
                external_error: true,
                ..Self::default()
            });
        };
        let details = top.get("details");
        let d = |k: &str| details.and_then(|d| d.get(k));
        let mut errors = Vec::new();
        match d("errors").or_else(|| top.get("errors")) {
            Some(Value::Array(items)) => errors.extend(items.iter().filter_map(lms_words)),
            Some(other) => errors.extend(lms_words(other)),
            None => {}
        }
        let external_error = match d("externalError") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            Some(Value::Null) | None => false,
            Some(_) => true,
        };
        let details_text = details.and_then(text_of);
        Some(Self {
            status: top
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok()),
            error: top.get("error").and_then(text_of),
            code: d("code").and_then(text_of),
            message: d("message")
                .and_then(text_of)
                .or_else(|| top.get("message").and_then(text_of)),
            description: d("description").and_then(text_of).or(details_text),
            errors,
            body_received: d("bodyReceived").and_then(lms_words),
            external_error,
            external_url: d("externalUrl").and_then(text_of),
        })
    }

    /// One line: the LMS's words when it refused, else LTIAAS's description,
    /// message and errors.
    pub fn summary(&self) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        if let Some(b) = &self.body_received {
            parts.push(if self.external_error {
                format!("{b} (from the LMS)")
            } else {
                b.clone()
            });
        }
        for p in [&self.description, &self.message].into_iter().flatten() {
            if !parts.iter().any(|x| x.contains(p.as_str())) {
                parts.push(p.clone());
            }
        }
        for e in &self.errors {
            if !parts.iter().any(|x| x.contains(e.as_str())) {
                parts.push(e.clone());
            }
        }
        if parts.is_empty()
            && let Some(e) = &self.error
        {
            parts.push(e.clone());
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Every text field, lower-cased, for phrase matching.
    fn haystack(&self) -> String {
        let mut all: Vec<&str> = Vec::new();
        for s in [
            &self.error,
            &self.code,
            &self.message,
            &self.description,
            &self.body_received,
        ]
        .into_iter()
        .flatten()
        {
            all.push(s);
        }
        all.extend(self.errors.iter().map(String::as_str));
        all.join(" | ").to_ascii_lowercase()
    }
}

/// What came back from LTIAAS, in a transport-neutral shape.
#[derive(Debug, Clone)]
pub struct Observed {
    pub auth: AuthScheme,
    pub http_status: Option<u16>,
    pub error: Option<LtiaasError>,
    /// Why a 2xx body could not be used (not JSON, wrong shape, too large).
    pub body_problem: Option<String>,
    /// The 2xx body started as JSON but broke off or is malformed (a glitch,
    /// not a wrong URL): retried as transient.
    pub body_malformed: bool,
    pub transport_error: Option<TransportError>,
    pub retry_after: Option<Duration>,
    /// The response was a redirect to this location (never followed: it would carry the key).
    pub redirect_to: Option<String>,
    /// What the LMS (through LTIAAS) said of its request budget.
    pub budget: RateBudget,
    /// The body says `Rate Limit Exceeded` (Canvas's throttling 403, passed through).
    pub says_rate_limited: bool,
}

impl Observed {
    /// An empty observation for a request made with `auth`.
    pub fn new(auth: AuthScheme) -> Self {
        Self {
            auth,
            http_status: None,
            error: None,
            body_problem: None,
            body_malformed: false,
            transport_error: None,
            retry_after: None,
            redirect_to: None,
            budget: RateBudget::default(),
            says_rate_limited: false,
        }
    }
}

fn verdict(
    outcome: AttemptOutcome,
    class: Option<ErrorClass>,
    cause: Cause,
    description: String,
    hint: &str,
) -> Verdict {
    Verdict {
        outcome,
        error_class: class,
        description,
        fix_hint: (!hint.is_empty()).then(|| hint.to_string()),
        retry_after: None,
        cause,
    }
}

/// The LMS's (or LTIAAS's) words that decide a refusal whatever the status.
fn by_words(text: &str) -> Option<(ErrorClass, Cause, &'static str)> {
    use ErrorClass::*;
    let has = |s: &str| text.contains(s);
    Some(
        if has("not a student")
            || has("user not found in course")
            || has("student not in course")
            || has("not enrolled")
            || has("not gradable")
            || has("not gradeable")
            || has("non-gradeable")
            || has("non-gradable")
            || has("incorrect score received")
        {
            (
                Permanent,
                Cause::NotAStudent,
                "The LMS says this user is not a gradable student of the course (dropped, a test student, or \
                 staff): check the enrolment in the LMS. Passback will not retry.",
            )
        } else if has("concluded")
            || has("no longer be accepted")
            || has("course is closed")
            || has("course not available")
        {
            (
                Permanent,
                Cause::CourseClosed,
                "The course is concluded or closed in the LMS, which blocks grade writes: ask the LMS admin to \
                 reopen it or extend its dates, then send again.",
            )
        } else if has("maximum number of allowed attempts") || has("max attempts") || has("maximum attempts")
        {
            (
                Permanent,
                Cause::NotAcceptingGrades,
                "The LMS allows no more attempts for this learner: the instructor must allow another attempt in \
                 the LMS, then send again.",
            )
        } else if has("unpublished") {
            (
                Permanent,
                Cause::NotAcceptingGrades,
                "The assignment is unpublished in the LMS: the instructor must publish it, then send again.",
            )
        } else if has("timestamp") && (has("before") || has("earlier") || has("refusing")) {
            (
                Permanent,
                Cause::BadTimestamp,
                "The LMS holds a score with a later timestamp than this one; this computer's clock may be \
                 behind. Set the clock (enable NTP), then send again.",
            )
        } else if has("service_not_available_for_context") {
            (
                Permanent,
                Cause::OutcomesDisabled,
                "The LMS does not grant Assignment and Grades to the tool in this context: enable the service \
                 for the tool in the LMS, then launch again.",
            )
        } else if has("inactive_service") {
            (
                Permanent,
                Cause::OutcomesDisabled,
                "The Assignment and Grades service is not enabled on the LTIAAS account: enable it in the \
                 LTIAAS portal.",
            )
        } else if has("unregistered_or_inactive_platform") {
            (
                Permanent,
                Cause::InvalidRequest,
                "LTIAAS does not know this LMS registration or it is inactive: check it in the LTIAAS portal \
                 (a trailing slash or hidden character in the URL is a common cause).",
            )
        } else if has("scoremaximum") || has("score maximum") || has("scoregiven") {
            (
                Permanent,
                Cause::BadScore,
                "The LMS rejected the score values: check the score (0 or more) and the maximum (above 0).",
            )
        } else {
            return None;
        },
    )
}

/// Whether a 401 names the API key (rather than the ltik or service key).
fn names_api_key(text: &str) -> bool {
    text.contains("api key") || text.contains("api_key") || text.contains("apikey")
}

fn auth_hint(auth: AuthScheme, text: &str) -> &'static str {
    if names_api_key(text) {
        return "LTIAAS rejected the API key: check this platform's API key (remove and re-add the platform \
                with the key from the LTIAAS portal).";
    }
    match auth {
        AuthScheme::ServiceKey => {
            "The service key for this context is stale or revoked: it needs a fresh launch. Have someone open \
             the activity in the LMS, then capture the new ID token with `passback ltiaas idtoken`."
        }
        AuthScheme::Ltik => {
            "The ltik is invalid or expired (ltiks last 24 hours): launch the activity again and capture the \
             new ltik."
        }
    }
}

/// Whether the answer is throttling, by LTIAAS or by the LMS it passes through: a
/// 429; a 403 whose words say rate limit or whose `X-Rate-Limit-Remaining` is ≤ 0
/// (Canvas's `403 Forbidden (Rate Limit Exceeded)`); or any other refusal whose
/// body says `Rate Limit Exceeded` (LTIAAS may not pass the LMS's status through).
pub fn is_throttled(o: &Observed) -> bool {
    let text = o.error.as_ref().map(LtiaasError::haystack).unwrap_or_default();
    match o.http_status {
        Some(429) => true,
        Some(403) => o.says_rate_limited || o.budget.is_exhausted() || text.contains("rate limit"),
        Some(s) if s >= 400 => o.says_rate_limited || text.contains("rate limit exceeded"),
        _ => false,
    }
}

/// Decide the outcome of one exchange with LTIAAS.
pub fn classify(o: &Observed) -> Verdict {
    use AttemptOutcome as Out;
    use ErrorClass::*;

    if let Some(t) = &o.transport_error {
        let (desc, hint) = match t {
            TransportError::Connect(e) => (
                format!("could not connect to LTIAAS: {e}"),
                "LTIAAS did not answer; check the network and the platform's base URL. Passback will retry.",
            ),
            TransportError::Timeout => (
                "LTIAAS did not answer in time".to_string(),
                "LTIAAS or the LMS is slow or down; Passback will retry later. The grade is not marked sent.",
            ),
            TransportError::Other(e) => (
                format!("the connection failed: {e}"),
                "The connection broke before LTIAAS answered; Passback will retry. The grade is not marked sent.",
            ),
        };
        return verdict(Out::Error, Some(Transient), t.cause(), desc, hint);
    }
    let status = o.http_status.unwrap_or(0);
    let words = o.error.as_ref().and_then(LtiaasError::summary);
    let text = o.error.as_ref().map(LtiaasError::haystack).unwrap_or_default();
    let described = |fallback: String| match &words {
        Some(w) => format!("HTTP {status}: {w}"),
        None => fallback,
    };

    if let Some(loc) = &o.redirect_to {
        return verdict(
            Out::Error,
            Some(Permanent),
            Cause::Redirected,
            format!("LTIAAS answered HTTP {status} redirecting to {loc}"),
            "Requests carrying the API key are never sent on to a redirect target: check the platform's base \
             URL (it should be the https://…ltiaas.com address itself).",
        );
    }
    if (200..300).contains(&status) {
        return match &o.body_problem {
            None => verdict(Out::Success, None, Cause::Ok, "success".into(), ""),
            Some(p) if o.body_malformed => verdict(
                Out::Error,
                Some(Transient),
                Cause::MalformedAnswer,
                format!("HTTP {status}: {p}"),
                "The answer was cut off or malformed; Passback will retry. The grade is not marked sent.",
            ),
            Some(p) => verdict(
                Out::Error,
                Some(Permanent),
                Cause::NotAnOutcomeService,
                format!("HTTP {status}: {p}"),
                "The answer was not LTIAAS JSON (a login or proxy page?): check the platform's base URL.",
            ),
        };
    }
    if is_throttled(o) {
        let fallback = match (status, o.budget.remaining) {
            (403, Some(left)) => {
                format!(
                    "the LMS is throttling requests (HTTP 403 Rate Limit Exceeded; request budget left: {left})"
                )
            }
            (403, None) => "the LMS is throttling requests (HTTP 403 Rate Limit Exceeded)".into(),
            _ => format!("rate limited (HTTP {status})"),
        };
        let mut slow_down = verdict(
            Out::Error,
            Some(Transient),
            Cause::RateLimited,
            described(fallback),
            "LTIAAS or the LMS asked Passback to slow down; it waits and retries. The grade is not marked sent.",
        );
        slow_down.retry_after = Some(throttle_wait(o.retry_after, &o.budget));
        return slow_down;
    }
    if status == 401 {
        let cause = if names_api_key(&text) {
            Cause::ApiKeyRejected
        } else {
            Cause::ServiceKeyStale
        };
        return verdict(
            Out::Failure,
            Some(Auth),
            cause,
            described("LTIAAS refused the credentials (HTTP 401)".into()),
            auth_hint(o.auth, &text),
        );
    }
    if status >= 400
        && let Some((class, cause, hint)) = by_words(&text)
    {
        return verdict(
            Out::Failure,
            Some(class),
            cause,
            described(format!("refused with HTTP {status}")),
            hint,
        );
    }
    if status >= 500 {
        let mut server_error = verdict(
            Out::Error,
            Some(Transient),
            Cause::ServerError,
            described(format!("LTIAAS failed with HTTP {status}")),
            "LTIAAS or the LMS had a server error; Passback will retry later. The grade is not marked sent.",
        );
        server_error.retry_after = o.retry_after;
        return server_error;
    }
    // A 404 page that is not JSON comes from something other than LTIAAS (a wrong base URL).
    let html_404 = status == 404
        && o.error.as_ref().is_some_and(|e| {
            e.status.is_none()
                && e.error.is_none()
                && e.body_received
                    .as_deref()
                    .is_some_and(|b| b.trim_start().starts_with('<'))
        });
    let (cause, hint) = match status {
        404 if html_404 => (
            Cause::NotAnOutcomeService,
            "The address answered with a web page, not the LTIAAS API: check the platform's base URL (it \
             should be your LTIAAS domain).",
        ),
        404 => (
            Cause::AssignmentInvalid,
            "The line item (or resource) was not found: it may have been deleted in the LMS. Look it up again \
             (send without --line-item), or have the activity relaunched.",
        ),
        403 => (
            Cause::OutcomesDisabled,
            "LTIAAS or the LMS forbids this request: the tool may lack the Assignment and Grades service in \
             this context. Ask the LMS admin.",
        ),
        409 => (
            Cause::BadTimestamp,
            "The LMS refused the score as out of order (it holds a later timestamp): check this computer's \
             clock, then send again.",
        ),
        415 => (
            Cause::ContentType,
            "The LMS rejected the Content-Type; this is a Passback or proxy bug, report it.",
        ),
        s if s >= 400 => (
            Cause::LmsRefused,
            "The LMS refused the request; read the description, fix the cause, then send again.",
        ),
        _ => (
            Cause::Unknown,
            "The LMS refused the request; read the description, fix the cause, then send again.",
        ),
    };
    let outcome = if status >= 400 { Out::Failure } else { Out::Error };
    verdict(
        outcome,
        Some(Permanent),
        cause,
        described(format!("unexpected HTTP {status}")),
        hint,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(status: u16, body: &str, auth: AuthScheme) -> Observed {
        Observed {
            http_status: Some(status),
            error: LtiaasError::parse(body.as_bytes()),
            ..Observed::new(auth)
        }
    }

    #[test]
    fn parses_every_documented_shape() {
        let e = LtiaasError::parse(
            br#"{"status":401,"error":"Unauthorized","details":{"message":"INVALID_LTIK_AUTH_AUTHORIZATION_HEADER","description":"Invalid or expired ltik."}}"#,
        )
        .unwrap();
        assert_eq!(e.status, Some(401));
        assert_eq!(
            e.message.as_deref(),
            Some("INVALID_LTIK_AUTH_AUTHORIZATION_HEADER")
        );
        assert_eq!(
            e.summary().unwrap(),
            "Invalid or expired ltik.; INVALID_LTIK_AUTH_AUTHORIZATION_HEADER"
        );

        let e = LtiaasError::parse(
            br#"{"status":400,"error":"Bad Request","details":{"errors":["INACTIVE_SERVICE", {"message":"x"}]}}"#,
        )
        .unwrap();
        assert_eq!(e.errors, vec!["INACTIVE_SERVICE", "x"]);

        let e = LtiaasError::parse(
            br#"{"status":422,"error":"Unprocessable Entity","details":{"bodyReceived":{"errors":{"type":"unprocessable_entity","message":"User not found in course or is not a student"}},"externalError":true}}"#,
        )
        .unwrap();
        assert!(e.external_error);
        assert_eq!(
            e.summary().unwrap(),
            "User not found in course or is not a student (from the LMS)"
        );

        // bodyReceived as a JSON string, and as plain text.
        let e = LtiaasError::parse(
            br#"{"status":500,"details":{"bodyReceived":"{\"errors\":[{\"message\":\"This course has concluded.\"}]}","externalError":"true"}}"#,
        )
        .unwrap();
        assert_eq!(e.body_received.as_deref(), Some("This course has concluded."));
        assert!(e.external_error);
        let e = LtiaasError::parse(b"<html><body>Bad gateway</body></html>").unwrap();
        assert!(e.external_error);
        assert!(e.summary().unwrap().contains("Bad gateway"));
        assert!(LtiaasError::parse(b"  ").is_none());
        // Odd but valid JSON never panics.
        for odd in [
            &b"[]"[..],
            b"42",
            b"null",
            br#"{"details":"plain words"}"#,
            br#"{"details":[1]}"#,
        ] {
            let _ = LtiaasError::parse(odd).map(|e| e.summary());
        }
        assert_eq!(
            LtiaasError::parse(br#"{"details":"plain words"}"#)
                .unwrap()
                .summary()
                .as_deref(),
            Some("plain words")
        );
    }

    #[test]
    fn a_401_is_auth_and_the_hint_follows_the_scheme() {
        let body = r#"{"status":401,"error":"Unauthorized","details":{"message":"INVALID_SERVICE_KEY_AUTH_AUTHORIZATION_HEADER","description":"Invalid or expired service key."}}"#;
        let v = classify(&obs(401, body, AuthScheme::ServiceKey));
        assert_eq!(v.error_class, Some(ErrorClass::Auth));
        assert_eq!(v.outcome, AttemptOutcome::Failure);
        assert!(v.fix_hint.as_deref().unwrap().contains("needs a fresh launch"));
        assert!(v.description.contains("Invalid or expired service key"));
        let v = classify(&obs(401, "", AuthScheme::Ltik));
        assert!(v.fix_hint.unwrap().contains("ltik"));
        let v = classify(&obs(
            401,
            r#"{"details":{"message":"INVALID_API_KEY","description":"Invalid API key."}}"#,
            AuthScheme::ServiceKey,
        ));
        assert!(v.fix_hint.unwrap().contains("API key"));
    }

    #[test]
    fn lms_refusals_are_permanent_whatever_the_status() {
        for (status, words, needle) in [
            (
                422,
                "User not found in course or is not a student",
                "not a gradable student",
            ),
            (
                500,
                "User not found in course or is not a student",
                "not a gradable student",
            ),
            (
                422,
                "This course has concluded. AGS requests will no longer be accepted for this course.",
                "concluded",
            ),
            (
                422,
                "The maximum number of allowed attempts has been reached for this submission",
                "no more attempts",
            ),
            (400, "Incorrect score received", "gradable"),
            (
                409,
                "Refusing score with an earlier timestamp for item 1 and user 2",
                "clock",
            ),
        ] {
            let body = serde_json::json!({"status": status, "details": {"bodyReceived": words, "externalError": true}});
            let v = classify(&obs(status, &body.to_string(), AuthScheme::ServiceKey));
            assert_eq!(v.error_class, Some(ErrorClass::Permanent), "{status} {words}");
            assert!(
                v.fix_hint.as_deref().unwrap().contains(needle),
                "{words}: {:?}",
                v.fix_hint
            );
            assert!(v.description.contains(words), "{}", v.description);
        }
    }

    #[test]
    fn rate_limits_and_server_errors_are_transient() {
        let mut o = obs(
            429,
            r#"{"status":429,"error":"Too Many Requests"}"#,
            AuthScheme::ServiceKey,
        );
        o.retry_after = Some(Duration::from_secs(3));
        let v = classify(&o);
        assert_eq!(v.error_class, Some(ErrorClass::Transient));
        assert_eq!(v.retry_after, Some(Duration::from_secs(3)));
        o.retry_after = None;
        assert_eq!(classify(&o).retry_after, Some(Duration::from_secs(30)));
        for st in [500, 502, 503, 504] {
            let v = classify(&obs(st, "<html>oops</html>", AuthScheme::ServiceKey));
            assert_eq!(v.error_class, Some(ErrorClass::Transient), "{st}");
        }
        let v = classify(&Observed {
            transport_error: Some(TransportError::Timeout),
            ..Observed::new(AuthScheme::ServiceKey)
        });
        assert_eq!(v.error_class, Some(ErrorClass::Transient));
    }

    #[test]
    fn other_answers() {
        let v = classify(&obs(204, "", AuthScheme::ServiceKey));
        assert!(v.is_success());
        let mut o = obs(200, "", AuthScheme::ServiceKey);
        o.body_problem = Some("not JSON: <html>".into());
        let v = classify(&o);
        assert_eq!(v.outcome, AttemptOutcome::Error);
        assert_eq!(v.error_class, Some(ErrorClass::Permanent));
        o.body_malformed = true;
        assert_eq!(classify(&o).error_class, Some(ErrorClass::Transient));
        let v = classify(&obs(
            404,
            r#"{"status":404,"error":"Not Found"}"#,
            AuthScheme::ServiceKey,
        ));
        assert_eq!(v.error_class, Some(ErrorClass::Permanent));
        assert!(v.fix_hint.unwrap().contains("not found"));
        let mut o = obs(302, "", AuthScheme::ServiceKey);
        o.redirect_to = Some("https://login.example".into());
        assert_eq!(classify(&o).error_class, Some(ErrorClass::Permanent));
        let v = classify(&obs(
            403,
            r#"{"details":{"errors":["SERVICE_NOT_AVAILABLE_FOR_CONTEXT"]}}"#,
            AuthScheme::ServiceKey,
        ));
        assert!(v.fix_hint.unwrap().contains("enable the service"));
    }

    #[test]
    fn every_answer_gets_its_precise_cause() {
        use AuthScheme::*;
        use ErrorClass::*;
        let lms = |status: u16, words: &str| {
            serde_json::json!({"status": status, "details": {"bodyReceived": words, "externalError": true}})
                .to_string()
        };
        let cases: Vec<(&str, Observed, Cause, Option<ErrorClass>)> = vec![
            ("204", obs(204, "", ServiceKey), Cause::Ok, None),
            (
                "timeout",
                Observed {
                    transport_error: Some(TransportError::Timeout),
                    ..Observed::new(ServiceKey)
                },
                Cause::Timeout,
                Some(Transient),
            ),
            (
                "connect",
                Observed {
                    transport_error: Some(TransportError::Connect("refused".into())),
                    ..Observed::new(ServiceKey)
                },
                Cause::ConnectionFailed,
                Some(Transient),
            ),
            (
                "malformed JSON",
                Observed {
                    body_problem: Some("the JSON answer broke off".into()),
                    body_malformed: true,
                    ..obs(200, "", ServiceKey)
                },
                Cause::MalformedAnswer,
                Some(Transient),
            ),
            (
                "login page",
                Observed {
                    body_problem: Some("not JSON: \"<html>\"".into()),
                    ..obs(200, "", ServiceKey)
                },
                Cause::NotAnOutcomeService,
                Some(Permanent),
            ),
            (
                "redirect",
                Observed {
                    redirect_to: Some("https://login.example".into()),
                    ..obs(302, "", ServiceKey)
                },
                Cause::Redirected,
                Some(Permanent),
            ),
            (
                "429",
                obs(429, "", ServiceKey),
                Cause::RateLimited,
                Some(Transient),
            ),
            (
                "502",
                obs(502, "<html>oops</html>", ServiceKey),
                Cause::ServerError,
                Some(Transient),
            ),
            (
                "401 API key",
                obs(
                    401,
                    r#"{"details":{"message":"INVALID_API_KEY","description":"Invalid API key."}}"#,
                    ServiceKey,
                ),
                Cause::ApiKeyRejected,
                Some(Auth),
            ),
            (
                "401 service key",
                obs(
                    401,
                    r#"{"status":401,"error":"Unauthorized","details":{"message":"INVALID_SERVICE_KEY_AUTH_AUTHORIZATION_HEADER","description":"Invalid or expired service key."}}"#,
                    ServiceKey,
                ),
                Cause::ServiceKeyStale,
                Some(Auth),
            ),
            (
                "401 ltik",
                obs(
                    401,
                    r#"{"status":401,"error":"Unauthorized","details":{"message":"INVALID_LTIK_AUTH_AUTHORIZATION_HEADER","description":"Invalid or expired ltik."}}"#,
                    Ltik,
                ),
                Cause::ServiceKeyStale,
                Some(Auth),
            ),
            (
                "Canvas AGS not a student",
                obs(
                    422,
                    r#"{"status":422,"error":"Unprocessable Entity","details":{"bodyReceived":{"errors":{"type":"unprocessable_entity","message":"User not found in course or is not a student"}},"externalError":true}}"#,
                    ServiceKey,
                ),
                Cause::NotAStudent,
                Some(Permanent),
            ),
            (
                "concluded",
                obs(
                    422,
                    &lms(
                        422,
                        "This course has concluded. AGS requests will no longer be accepted for this course.",
                    ),
                    ServiceKey,
                ),
                Cause::CourseClosed,
                Some(Permanent),
            ),
            (
                "score before last updated",
                obs(
                    400,
                    &lms(400, "Score timestamp cannot be before last updated timestamp"),
                    ServiceKey,
                ),
                Cause::BadTimestamp,
                Some(Permanent),
            ),
            (
                "max attempts",
                obs(
                    422,
                    &lms(
                        422,
                        "The maximum number of allowed attempts has been reached for this submission",
                    ),
                    ServiceKey,
                ),
                Cause::NotAcceptingGrades,
                Some(Permanent),
            ),
            (
                "unpublished",
                obs(422, &lms(422, "Assignment is unpublished"), ServiceKey),
                Cause::NotAcceptingGrades,
                Some(Permanent),
            ),
            (
                "score maximum",
                obs(400, &lms(400, "scoreMaximum must be greater than 0"), ServiceKey),
                Cause::BadScore,
                Some(Permanent),
            ),
            (
                "AGS not in context",
                obs(
                    403,
                    r#"{"details":{"errors":["SERVICE_NOT_AVAILABLE_FOR_CONTEXT"]}}"#,
                    ServiceKey,
                ),
                Cause::OutcomesDisabled,
                Some(Permanent),
            ),
            (
                "AGS not on the account",
                obs(400, r#"{"details":{"errors":["INACTIVE_SERVICE"]}}"#, ServiceKey),
                Cause::OutcomesDisabled,
                Some(Permanent),
            ),
            (
                "unknown platform",
                obs(
                    400,
                    r#"{"details":{"errors":["UNREGISTERED_OR_INACTIVE_PLATFORM"]}}"#,
                    ServiceKey,
                ),
                Cause::InvalidRequest,
                Some(Permanent),
            ),
            (
                "404 line item",
                obs(404, r#"{"status":404,"error":"Not Found"}"#, ServiceKey),
                Cause::AssignmentInvalid,
                Some(Permanent),
            ),
            (
                "404 web page",
                obs(404, "<html><body>Not Found</body></html>", ServiceKey),
                Cause::NotAnOutcomeService,
                Some(Permanent),
            ),
            (
                "plain 403",
                obs(403, r#"{"error":"Forbidden"}"#, ServiceKey),
                Cause::OutcomesDisabled,
                Some(Permanent),
            ),
            (
                "409",
                obs(409, "", ServiceKey),
                Cause::BadTimestamp,
                Some(Permanent),
            ),
            (
                "415",
                obs(415, "", ServiceKey),
                Cause::ContentType,
                Some(Permanent),
            ),
            (
                "other 400",
                obs(
                    400,
                    r#"{"error":"Bad Request","details":{"message":"something new"}}"#,
                    ServiceKey,
                ),
                Cause::LmsRefused,
                Some(Permanent),
            ),
        ];
        for (name, o, cause, class) in cases {
            let v = classify(&o);
            assert_eq!(v.cause, cause, "{name}: {v:?}");
            assert_eq!(v.error_class, class, "{name}: {v:?}");
        }
    }

    #[test]
    fn canvas_throttling_passed_through_is_rate_limiting() {
        let spent = RateBudget {
            remaining: Some(0.0),
            cost: None,
        };
        for (name, o, wait) in [
            (
                "403 plain text with header",
                Observed {
                    budget: spent,
                    says_rate_limited: true,
                    ..obs(403, "403 Forbidden (Rate Limit Exceeded)", AuthScheme::ServiceKey)
                },
                crate::http::BUDGET_THROTTLE_DEFAULT_WAIT,
            ),
            (
                "403 header only",
                Observed {
                    budget: spent,
                    ..obs(403, "", AuthScheme::ServiceKey)
                },
                crate::http::BUDGET_THROTTLE_DEFAULT_WAIT,
            ),
            (
                "403 wrapped by LTIAAS",
                Observed {
                    says_rate_limited: true,
                    ..obs(
                        403,
                        r#"{"status":403,"details":{"bodyReceived":"403 Forbidden (Rate Limit Exceeded)","externalError":true}}"#,
                        AuthScheme::ServiceKey,
                    )
                },
                crate::http::RATE_LIMIT_DEFAULT_WAIT,
            ),
            (
                "status not passed through",
                Observed {
                    says_rate_limited: true,
                    ..obs(
                        500,
                        r#"{"status":500,"details":{"bodyReceived":"403 Forbidden (Rate Limit Exceeded)","externalError":true}}"#,
                        AuthScheme::ServiceKey,
                    )
                },
                crate::http::RATE_LIMIT_DEFAULT_WAIT,
            ),
            (
                "429 with budget",
                Observed {
                    budget: spent,
                    ..obs(429, "", AuthScheme::ServiceKey)
                },
                crate::http::BUDGET_THROTTLE_DEFAULT_WAIT,
            ),
        ] {
            let v = classify(&o);
            assert_eq!(v.cause, Cause::RateLimited, "{name}: {v:?}");
            assert_eq!(v.error_class, Some(ErrorClass::Transient), "{name}");
            assert_eq!(v.outcome, AttemptOutcome::Error, "{name}");
            assert_eq!(v.retry_after, Some(wait), "{name}");
        }
        // A 403 with budget left and no such words is a refusal, not throttling.
        let v = classify(&Observed {
            budget: RateBudget {
                remaining: Some(300.0),
                cost: Some(1.0),
            },
            ..obs(403, r#"{"error":"Forbidden"}"#, AuthScheme::ServiceKey)
        });
        assert_eq!(v.cause, Cause::OutcomesDisabled);
        assert_eq!(v.error_class, Some(ErrorClass::Permanent));
    }
}
