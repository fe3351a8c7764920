//! Turning what an LMS answered into an outcome, an error class and a one-line
//! fix hint a support person can act on.
//!
//! Success needs both an HTTP 2xx and `imsx_codeMajor` = `success`; Canvas
//! answers failures with 422, Moodle and Sakai with 200 + `failure`, OAuth
//! problems come back as 401 (Canvas) or as a 200 failure whose description
//! names the signature (Moodle, Sakai).

use std::time::Duration;

use crate::http::{RateBudget, TransportError, Verdict, throttle_wait};
use crate::model::{AttemptOutcome, Cause, ErrorClass};

/// What came back, in a transport-neutral shape.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// HTTP status, if a response arrived at all.
    pub http_status: Option<u16>,
    /// `imsx_codeMajor` of a parsed POX response.
    pub code_major: Option<String>,
    pub description: Option<String>,
    pub ext_canvas_error_code: Option<String>,
    /// Why the body could not be read as POX (non-XML page, missing codeMajor, too large).
    pub body_problem: Option<String>,
    /// The body looked like XML but broke off or was malformed (likely a glitch,
    /// not a wrong URL): retried as transient.
    pub body_malformed: bool,
    /// The transport failed before a response (connect error, timeout, reset).
    pub transport_error: Option<TransportError>,
    /// Seconds from `Retry-After`, if present and parseable.
    pub retry_after: Option<Duration>,
    /// LMS clock minus our clock, from the response `Date` header.
    pub clock_skew_secs: Option<i64>,
    /// The response was a redirect to this location (never followed for signed requests).
    pub redirect_to: Option<String>,
    /// What the LMS said of its request budget (`X-Rate-Limit-Remaining`, `X-Request-Cost`).
    pub budget: RateBudget,
    /// The body says `Rate Limit Exceeded` (Canvas's throttling 403).
    pub says_rate_limited: bool,
    /// The request's `imsx_messageIdentifier` (unset: nothing to compare).
    pub expected_message_identifier: Option<String>,
    /// The response's `imsx_messageRefIdentifier`, if it carried one.
    pub message_ref_identifier: Option<String>,
    /// The operation the answer must carry (`readResultResponse` for a `readResult`).
    pub expected_operation: Option<String>,
    /// The operation inside the answer's `imsx_POXBody`, if any.
    pub operation: Option<String>,
}

impl Observed {
    /// Take what a parsed POX answer says: its status, the LMS's words and which
    /// request and operation it answers.
    pub fn record_pox(&mut self, p: &super::pox::PoxResponse) {
        self.code_major = Some(p.code_major.as_str().to_string());
        self.description = p.description.clone();
        self.ext_canvas_error_code = p.ext_canvas_error_code.clone();
        self.message_ref_identifier = p.message_ref_identifier.clone();
        self.operation = p.operation.clone();
    }
}

/// Clock skew beyond this is reported as the likely cause of an auth failure.
pub const CLOCK_SKEW_WARN_SECS: i64 = 5 * 60;

fn describe_skew(skew: i64) -> String {
    let mins = skew.abs() / 60;
    let (amount, unit) = if mins >= 120 {
        (mins / 60, "hours")
    } else {
        (mins, "minutes")
    };
    if skew > 0 {
        format!("this computer's clock is about {amount} {unit} behind the LMS")
    } else {
        format!("this computer's clock is about {amount} {unit} ahead of the LMS")
    }
}

fn verdict(
    outcome: AttemptOutcome,
    class: Option<ErrorClass>,
    cause: Cause,
    description: String,
    hint: Option<&str>,
) -> Verdict {
    Verdict {
        outcome,
        error_class: class,
        description,
        fix_hint: hint.map(str::to_string),
        retry_after: None,
        cause,
    }
}

/// How the LMS judged one refusal: class, cause, hint.
type Judgement = (ErrorClass, Cause, &'static str);

/// Canvas `ext_canvas_error_code` → (class, cause, hint).
fn canvas_code(code: &str) -> Option<Judgement> {
    use ErrorClass::*;
    Some(match code {
        "sourcedid_invalid" => (
            Permanent,
            Cause::UnknownSourcedid,
            "The LMS does not know this lis_result_sourcedid: the learner must launch the activity again so a fresh one is captured.",
        ),
        "signature_invalid" => (
            Permanent,
            Cause::UnknownSourcedid,
            "The sourcedid's own signature is invalid (it was altered or belongs to another tool): capture it again from a fresh launch.",
        ),
        // Canvas: the sourcedid belongs to another tool than the one that signed.
        "tool_invalid" => (
            Permanent,
            Cause::AssignmentInvalid,
            "The LMS no longer has this tool installed: reinstall or reconfigure the tool in the course, then relaunch.",
        ),
        "course_invalid" => (
            Permanent,
            Cause::CourseClosed,
            "The course no longer exists in the LMS.",
        ),
        "user_not_in_course" => (
            Permanent,
            Cause::NotAStudent,
            "The learner is no longer enrolled in the course: re-enrol them or leave this grade unsent.",
        ),
        "assignment_invalid" => (
            Permanent,
            Cause::AssignmentInvalid,
            "The assignment was deleted in the LMS: recreate it and have learners launch it again.",
        ),
        "assignment_tool_mismatch" => (
            Permanent,
            Cause::AssignmentInvalid,
            "The assignment is no longer linked to this tool: fix the assignment's external tool setting.",
        ),
        "course_not_available" => (
            Permanent,
            Cause::CourseClosed,
            "The course is concluded or the enrolment inactive; the LMS blocks grade writes. Ask the LMS admin to reopen it.",
        ),
        "no_parseable_result_score" | "no_parseable_result_total_score" | "bad_score" | "no_score" => (
            Permanent,
            Cause::BadScore,
            "The LMS rejected the score value: check the local grade (0 to maximum) and send again.",
        ),
        "timestamp_not_parseable" | "timestamp_in_future" => (
            Permanent,
            Cause::BadTimestamp,
            "The LMS rejected submittedAt: check the submission time and this computer's clock.",
        ),
        "no_points_possible" => (
            Permanent,
            Cause::NoPointsPossible,
            "The assignment has no points possible: the instructor must set points in the LMS, then send again.",
        ),
        "no_submission_created" => (
            Transient,
            Cause::LmsBusy,
            "The LMS failed to create the submission; this is usually temporary. Send again later.",
        ),
        _ => return None,
    })
}

/// Description text → (class, cause, hint) for LMSs without error codes (Moodle, Sakai).
fn by_description(desc: &str) -> Option<Judgement> {
    use ErrorClass::*;
    let d = desc.to_ascii_lowercase();
    let has = |s: &str| d.contains(s);
    // Sakai wraps every OAuth problem in "Could not validate the OAuth signature
    // for KEY: <reason>", so the precise reasons are looked for before "signature".
    Some(if has("nonce") {
        (
            Auth,
            Cause::NonceReplayed,
            "The LMS saw this request's nonce before; send again (Passback signs every attempt afresh).",
        )
    } else if has("timestamp") {
        (
            Auth,
            Cause::ClockSkew,
            "The LMS rejected the request time: check this computer's clock.",
        )
    } else if (has("consumer key") || has("consumer_key"))
        && (has("unknown")
            || has("not found")
            || has("incorrect")
            || has("invalid")
            || has("not recogni")
            || has("no such"))
    {
        (
            Auth,
            Cause::ConsumerKeyUnknown,
            "The LMS does not recognise the consumer key: check the platform's consumer key.",
        )
    } else if has("signature") || has("body hash") || has("oauth_body_hash") || has("no.validate") {
        (
            Auth,
            Cause::SignatureRejected,
            "The LMS could not verify the request's signature: check the consumer key and secret for this platform (and this computer's clock).",
        )
    } else if has("consumer key") {
        (
            Auth,
            Cause::ConsumerKeyUnknown,
            "The LMS does not recognise the consumer key: check the platform's consumer key.",
        )
    } else if has("content type") || has("content-type") {
        (
            Permanent,
            Cause::ContentType,
            "The LMS rejected the request's Content-Type.",
        )
    } else if has("sourcedid") || has("unknown") && has("result") {
        (
            Permanent,
            Cause::UnknownSourcedid,
            "The LMS does not accept this lis_result_sourcedid: the learner must launch the activity again.",
        )
    } else if has("not between")
        || has("out of range")
        || has("must be numeric")
        || has("not a number")
        || has("resultscore")
        || has("score") && has("invalid")
    {
        (
            Permanent,
            Cause::BadScore,
            "The LMS rejected the score value: check the local grade and send again.",
        )
    } else if has("does not accept grades") || has("not accept") {
        (
            Permanent,
            Cause::NotAcceptingGrades,
            "The activity is not set to accept grades in the LMS: the instructor must enable grading for the tool.",
        )
    } else if has("no longer in course") || has("not enrolled") || has("not a student") {
        (
            Permanent,
            Cause::NotAStudent,
            "The learner is no longer enrolled in the course.",
        )
    } else if has("concluded") || has("not available") || has("closed") {
        (
            Permanent,
            Cause::CourseClosed,
            "The course is closed for grading: ask the LMS admin to reopen it.",
        )
    } else if has("no points possible") {
        (
            Permanent,
            Cause::NoPointsPossible,
            "The assignment has no points possible: the instructor must set points in the LMS.",
        )
    } else if has("invalid xml") || has("parse xml") || has("xml content") {
        (
            Permanent,
            Cause::InvalidRequest,
            "The LMS could not read the request's XML; this is a Passback or proxy bug, report it.",
        )
    } else {
        return None;
    })
}

/// Whether the answer is throttling: a 429, or Canvas's `403 Forbidden (Rate
/// Limit Exceeded)` (recognised by its words or by `X-Rate-Limit-Remaining` ≤ 0).
pub fn is_throttled(o: &Observed) -> bool {
    match o.http_status {
        Some(429) => true,
        Some(403) => o.says_rate_limited || o.budget.is_exhausted(),
        _ => false,
    }
}

/// The response names another request than the one sent.
fn mismatched_ref(o: &Observed) -> Option<(&str, &str)> {
    let expected = o.expected_message_identifier.as_deref()?.trim();
    let got = o.message_ref_identifier.as_deref()?.trim();
    (!expected.is_empty() && !got.is_empty() && !got.eq_ignore_ascii_case(expected))
        .then_some((expected, got))
}

/// A success that answers another operation than the one sent, or a read whose
/// answer holds no `readResultResponse` (what the LMS holds is then unknown, not
/// "no grade"): (what was expected, what came).
fn mismatched_operation(o: &Observed) -> Option<(&str, &str)> {
    let expected = o.expected_operation.as_deref()?;
    match o.operation.as_deref() {
        Some(got) if got != expected => Some((expected, got)),
        None if expected == "readResultResponse" => Some((expected, "nothing")),
        _ => None,
    }
}

/// Decide the outcome of one attempt.
pub fn classify(o: &Observed) -> Verdict {
    use AttemptOutcome as Out;
    use ErrorClass::*;

    if let Some(t) = &o.transport_error {
        let (desc, hint) = match t {
            TransportError::Connect(e) => (
                format!("could not connect to the LMS: {e}"),
                "The LMS did not answer; check the network and the LMS's status. Passback will retry.",
            ),
            TransportError::Timeout => (
                "the LMS did not answer in time".to_string(),
                "The LMS is slow or down; Passback will retry later. The grade is not marked sent.",
            ),
            TransportError::Other(e) => (
                format!("the connection failed: {e}"),
                "The connection broke before the LMS answered; Passback will retry. The grade is not marked sent.",
            ),
        };
        return verdict(Out::Error, Some(Transient), t.cause(), desc, Some(hint));
    }
    let status = o.http_status.unwrap_or(0);
    let lms_words = o.description.clone().filter(|d| !d.trim().is_empty());

    if let Some(loc) = &o.redirect_to {
        return verdict(
            Out::Error,
            Some(Permanent),
            Cause::Redirected,
            format!("the LMS answered HTTP {status} redirecting to {loc}"),
            Some(
                "Signed requests are never sent on to a redirect target. If the LMS moved, update the outcome URL (a fresh launch captures it).",
            ),
        );
    }
    if is_throttled(o) {
        let description = if status == 429 {
            lms_words.unwrap_or_else(|| "the LMS is rate limiting requests (HTTP 429)".into())
        } else {
            match o.budget.remaining {
                Some(left) => format!(
                    "the LMS is throttling requests (HTTP 403 Rate Limit Exceeded; request budget left: {left})"
                ),
                None => "the LMS is throttling requests (HTTP 403 Rate Limit Exceeded)".into(),
            }
        };
        let mut slow_down = verdict(
            Out::Error,
            Some(Transient),
            Cause::RateLimited,
            description,
            Some(
                "The LMS asked Passback to slow down (its request budget is spent); Passback waits and retries. The grade is not marked sent.",
            ),
        );
        slow_down.retry_after = Some(throttle_wait(o.retry_after, &o.budget));
        return slow_down;
    }
    if status >= 500 {
        let mut server_error = verdict(
            Out::Error,
            Some(Transient),
            Cause::ServerError,
            match (&lms_words, &o.body_problem) {
                (Some(d), _) => format!("HTTP {status}: {d}"),
                (None, Some(p)) => format!("HTTP {status}: {p}"),
                _ => format!("the LMS failed with HTTP {status}"),
            },
            Some("The LMS had a server error; Passback will retry later. The grade is not marked sent."),
        );
        server_error.retry_after = o.retry_after;
        return server_error;
    }
    if status == 401 || status == 403 && o.code_major.is_none() {
        let text = lms_words.clone().unwrap_or_default();
        let lower = text.to_ascii_lowercase();
        let skew = o.clock_skew_secs.filter(|s| s.abs() >= CLOCK_SKEW_WARN_SECS);
        let desc = if text.is_empty() {
            format!("the LMS refused the request (HTTP {status})")
        } else {
            format!("HTTP {status}: {text}")
        };
        if let Some(s) = skew {
            return verdict(
                Out::Failure,
                Some(Auth),
                Cause::ClockSkew,
                format!("{desc} ({})", describe_skew(s)),
                Some(&format!(
                    "Clock skew: {}; LMSs reject signatures more than 90 minutes off. Set the system clock (enable NTP), then send again.",
                    describe_skew(s)
                )),
            );
        }
        let (cause, hint) = if lower.contains("timestamp") || lower.contains("expired") {
            (
                Cause::ClockSkew,
                "The LMS rejected the request time: check this computer's clock (enable NTP), then send again.",
            )
        } else if lower.contains("nonce") {
            (
                Cause::NonceReplayed,
                "The LMS saw this nonce before. Passback signs every attempt afresh, so send again; if it repeats, check for a proxy replaying requests.",
            )
        } else if lower.contains("consumer key") || lower.contains("consumer_key") {
            (
                Cause::ConsumerKeyUnknown,
                "The LMS does not recognise the consumer key: check this platform's consumer key (passback platform list).",
            )
        } else if status == 403 {
            (
                Cause::OutcomesDisabled,
                "The LMS forbids this request: outcomes may be disabled for the tool or the whole LMS. Ask the LMS admin.",
            )
        } else {
            (
                Cause::SignatureRejected,
                "The LMS rejected the signature: check this platform's consumer key and secret (passback platform list), and this computer's clock.",
            )
        };
        return verdict(Out::Failure, Some(Auth), cause, desc, Some(hint));
    }
    if status == 415 {
        return verdict(
            Out::Failure,
            Some(Permanent),
            Cause::ContentType,
            lms_words.unwrap_or_else(|| "the LMS rejected the Content-Type (HTTP 415)".into()),
            Some("The LMS wants Content-Type application/xml; this is a Passback or proxy bug, report it."),
        );
    }
    if let Some(problem) = &o.body_problem {
        if o.body_malformed && status != 404 {
            return verdict(
                Out::Error,
                Some(Transient),
                Cause::MalformedAnswer,
                format!("HTTP {status}: {problem}"),
                Some(
                    "The LMS's answer was cut off or malformed; Passback will retry. The grade is not marked sent.",
                ),
            );
        }
        let hint = if status == 404 {
            "The outcome URL was not found: check it, or capture it again from a fresh launch."
        } else {
            "The outcome URL did not answer like an LTI outcomes service; check the URL (capture it again from a fresh launch)."
        };
        return verdict(
            Out::Error,
            Some(Permanent),
            Cause::NotAnOutcomeService,
            format!("HTTP {status}: {problem}"),
            Some(hint),
        );
    }
    if let Some((expected, got)) = mismatched_ref(o) {
        return verdict(
            Out::Error,
            Some(Transient),
            Cause::MismatchedAnswer,
            format!(
                "HTTP {status}: the LMS's answer names another request (imsx_messageRefIdentifier {got:?}, this request was {expected:?})"
            ),
            Some(
                "The answer may belong to another request (a caching proxy or a confused LMS), so it confirms nothing; the grade is not marked sent. Passback will retry; if it repeats, read the grade back to see what the LMS holds.",
            ),
        );
    }
    if o.code_major
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case("success"))
        && (200..300).contains(&status)
        && let Some((expected, got)) = mismatched_operation(o)
    {
        return verdict(
            Out::Error,
            Some(Transient),
            Cause::MismatchedAnswer,
            format!("HTTP {status}: the LMS answered success with {got} where a {expected} was due"),
            Some(
                "An answer for another operation confirms nothing; the grade is not marked sent (and a read is not taken as \"no grade\"). Passback will retry; if it repeats, check the LMS's outcome service.",
            ),
        );
    }
    match o.code_major.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("success") if (200..300).contains(&status) => verdict(
            Out::Success,
            None,
            Cause::Ok,
            lms_words.unwrap_or_else(|| "success".into()),
            None,
        ),
        Some("processing") if (200..300).contains(&status) => verdict(
            Out::Processing,
            None,
            Cause::Processing,
            lms_words.unwrap_or_else(|| "accepted for processing".into()),
            Some("The LMS accepted the request but has not applied it yet; a later read will confirm it."),
        ),
        Some("success") | Some("processing") => verdict(
            Out::Failure,
            Some(Permanent),
            Cause::ContradictoryAnswer,
            format!("HTTP {status} with codeMajor success: the LMS's answer contradicts itself"),
            Some("Treating it as not sent. Read the grade back to see what the LMS holds."),
        ),
        Some(major) => {
            let desc = lms_words
                .clone()
                .unwrap_or_else(|| format!("the LMS answered codeMajor {major}"));
            if let Some((class, cause, hint)) = o.ext_canvas_error_code.as_deref().and_then(canvas_code) {
                return verdict(Out::Failure, Some(class), cause, desc, Some(hint));
            }
            if let Some((class, cause, hint)) = lms_words.as_deref().and_then(by_description) {
                return verdict(Out::Failure, Some(class), cause, desc, Some(hint));
            }
            if major == "unsupported" {
                return verdict(
                    Out::Failure,
                    Some(Permanent),
                    Cause::InvalidRequest,
                    desc,
                    Some("The LMS does not support this operation or an extension sent with it."),
                );
            }
            verdict(
                Out::Failure,
                Some(Permanent),
                Cause::LmsRefused,
                desc,
                Some("The LMS refused the grade; read the description, fix the cause, then send again."),
            )
        }
        None => verdict(
            Out::Error,
            Some(Permanent),
            if (400..500).contains(&status) && status != 404 && lms_words.is_some() {
                Cause::LmsRefused
            } else {
                Cause::NotAnOutcomeService
            },
            format!("HTTP {status} without an outcome status"),
            Some("The LMS's answer had no imsx_codeMajor; check the outcome URL."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pox(status: u16, major: &str, desc: &str, code: Option<&str>) -> Observed {
        Observed {
            http_status: Some(status),
            code_major: Some(major.into()),
            description: Some(desc.into()),
            ext_canvas_error_code: code.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn a_success_for_another_operation_or_a_read_without_its_result_confirms_nothing() {
        let answered = |expected: &str, got: Option<&str>| {
            classify(&Observed {
                expected_operation: Some(expected.into()),
                operation: got.map(str::to_string),
                ..pox(200, "success", "ok", None)
            })
        };
        for (expected, got) in [
            ("replaceResultResponse", Some("deleteResultResponse")),
            ("readResultResponse", Some("replaceResultResponse")),
            // A read answered without a readResultResponse is not "no grade".
            ("readResultResponse", None),
        ] {
            let v = answered(expected, got);
            assert!(!v.is_success(), "{expected} answered with {got:?}");
            assert_eq!(
                (v.cause, v.error_class),
                (Cause::MismatchedAnswer, Some(ErrorClass::Transient))
            );
        }
        assert!(answered("readResultResponse", Some("readResultResponse")).is_success());
        assert!(answered("replaceResultResponse", Some("replaceResultResponse")).is_success());
        // Some LMSs send an empty body with a replace's success: nothing contradicts it.
        assert!(answered("replaceResultResponse", None).is_success());
        // A failure is a failure whatever its body holds.
        let failed = classify(&Observed {
            expected_operation: Some("readResultResponse".into()),
            ..pox(200, "failure", "no such sourcedid", None)
        });
        assert_ne!(failed.cause, Cause::MismatchedAnswer);
    }

    #[test]
    fn success_needs_2xx_and_code_major_success() {
        assert!(classify(&pox(200, "success", "ok", None)).is_success());
        let odd = classify(&pox(422, "success", "", None));
        assert!(!odd.is_success());
        let p = classify(&pox(200, "processing", "", None));
        assert_eq!(p.outcome, AttemptOutcome::Processing);
        assert_eq!(p.error_class, None);
    }

    #[test]
    fn canvas_422_codes_are_permanent_with_hints() {
        let c = classify(&pox(
            422,
            "failure",
            "User is no longer in course",
            Some("user_not_in_course"),
        ));
        assert_eq!(c.outcome, AttemptOutcome::Failure);
        assert_eq!(c.error_class, Some(ErrorClass::Permanent));
        assert!(c.fix_hint.unwrap().contains("enrol"));
        let c = classify(&pox(
            422,
            "failure",
            "Course not available for student",
            Some("course_not_available"),
        ));
        assert!(c.fix_hint.unwrap().contains("concluded"));
        let c = classify(&pox(422, "failure", "x", Some("no_submission_created")));
        assert_eq!(c.error_class, Some(ErrorClass::Transient));
    }

    #[test]
    fn moodle_and_sakai_200_failures_are_not_success() {
        let m = classify(&pox(200, "failure", "Message signature not valid", None));
        assert_eq!(m.error_class, Some(ErrorClass::Auth));
        let m = classify(&pox(200, "failure", "Score not between 0.0 and 1.0", None));
        assert_eq!(m.error_class, Some(ErrorClass::Permanent));
        let s = classify(&pox(
            200,
            "failure",
            "pox.invalid: Body hash does not match header",
            None,
        ));
        assert_eq!(s.error_class, Some(ErrorClass::Auth));
        let s = classify(&pox(200, "failure", "outcomes.sourcedid: bad sourcedid", None));
        assert_eq!(s.error_class, Some(ErrorClass::Permanent));
        assert!(s.fix_hint.unwrap().contains("launch"));
        let u = classify(&pox(200, "unsupported", "Operation not supported", None));
        assert_eq!(u.error_class, Some(ErrorClass::Permanent));
    }

    #[test]
    fn transient_cases() {
        for st in [500, 502, 503] {
            let r = classify(&Observed {
                http_status: Some(st),
                body_problem: Some("not XML".into()),
                ..Default::default()
            });
            assert_eq!(r.error_class, Some(ErrorClass::Transient), "{st}");
            assert_eq!(r.outcome, AttemptOutcome::Error);
        }
        let r = classify(&Observed {
            http_status: Some(429),
            retry_after: Some(Duration::from_secs(7)),
            ..Default::default()
        });
        assert_eq!(r.error_class, Some(ErrorClass::Transient));
        assert_eq!(r.retry_after, Some(Duration::from_secs(7)));
        let r = classify(&Observed {
            transport_error: Some(TransportError::Timeout),
            ..Default::default()
        });
        assert_eq!(r.error_class, Some(ErrorClass::Transient));
    }

    #[test]
    fn auth_with_clock_skew_says_so() {
        let r = classify(&Observed {
            http_status: Some(401),
            description: Some("Timestamp too old or too far in the future, request has expired".into()),
            clock_skew_secs: Some(2 * 3600 + 30),
            ..Default::default()
        });
        assert_eq!(r.error_class, Some(ErrorClass::Auth));
        let hint = r.fix_hint.unwrap();
        assert!(hint.contains("Clock skew"), "{hint}");
        assert!(hint.contains("2 hours behind"), "{hint}");
        let r = classify(&Observed {
            http_status: Some(401),
            description: Some("Invalid authorization header".into()),
            clock_skew_secs: Some(3),
            ..Default::default()
        });
        assert!(r.fix_hint.unwrap().contains("consumer key and secret"));
    }

    #[test]
    fn malformed_xml_is_retried_but_html_is_not() {
        let mut o = Observed {
            http_status: Some(200),
            body_problem: Some("unexpected end of XML".into()),
            body_malformed: true,
            ..Default::default()
        };
        assert_eq!(classify(&o).error_class, Some(ErrorClass::Transient));
        o.body_malformed = false;
        assert_eq!(classify(&o).error_class, Some(ErrorClass::Permanent));
    }

    #[test]
    fn html_pages_and_redirects_are_errors_not_success() {
        let r = classify(&Observed {
            http_status: Some(200),
            body_problem: Some("not XML: \"<html><body>Login\"".into()),
            ..Default::default()
        });
        assert_eq!(r.outcome, AttemptOutcome::Error);
        assert!(r.description.contains("<html>"));
        let r = classify(&Observed {
            http_status: Some(302),
            redirect_to: Some("https://sso.example.edu/login".into()),
            ..Default::default()
        });
        assert_eq!(r.error_class, Some(ErrorClass::Permanent));
        assert!(r.description.contains("sso.example.edu"));
        let r = classify(&Observed {
            http_status: Some(415),
            ..Default::default()
        });
        assert_eq!(r.error_class, Some(ErrorClass::Permanent));
    }

    fn http(status: u16, desc: Option<&str>) -> Observed {
        Observed {
            http_status: Some(status),
            description: desc.map(str::to_string),
            ..Default::default()
        }
    }

    fn body_problem(status: u16, problem: &str, malformed: bool) -> Observed {
        Observed {
            http_status: Some(status),
            body_problem: Some(problem.into()),
            body_malformed: malformed,
            ..Default::default()
        }
    }

    #[test]
    fn every_answer_gets_its_precise_cause() {
        use ErrorClass::*;
        let cases: Vec<(&str, Observed, Cause, Option<ErrorClass>)> = vec![
            ("2xx success", pox(200, "success", "ok", None), Cause::Ok, None),
            (
                "processing",
                pox(200, "processing", "", None),
                Cause::Processing,
                None,
            ),
            (
                "timeout",
                Observed {
                    transport_error: Some(TransportError::Timeout),
                    ..Default::default()
                },
                Cause::Timeout,
                Some(Transient),
            ),
            (
                "connect",
                Observed {
                    transport_error: Some(TransportError::Connect("connection refused".into())),
                    ..Default::default()
                },
                Cause::ConnectionFailed,
                Some(Transient),
            ),
            (
                "reset mid-body",
                Observed {
                    http_status: Some(200),
                    transport_error: Some(TransportError::Other(
                        "the answer broke off: connection reset by peer".into(),
                    )),
                    ..Default::default()
                },
                Cause::ConnectionFailed,
                Some(Transient),
            ),
            (
                "body timed out",
                Observed {
                    http_status: Some(200),
                    transport_error: Some(TransportError::Other(
                        "the answer broke off: timed out reading the answer".into(),
                    )),
                    ..Default::default()
                },
                Cause::Timeout,
                Some(Transient),
            ),
            (
                "500",
                body_problem(500, "not XML", false),
                Cause::ServerError,
                Some(Transient),
            ),
            ("503", http(503, None), Cause::ServerError, Some(Transient)),
            ("429", http(429, None), Cause::RateLimited, Some(Transient)),
            (
                "malformed",
                body_problem(200, "malformed XML: unexpected end", true),
                Cause::MalformedAnswer,
                Some(Transient),
            ),
            (
                "html page",
                body_problem(200, "response is not XML; it starts with: \"<html>\"", false),
                Cause::NotAnOutcomeService,
                Some(Permanent),
            ),
            (
                "404",
                body_problem(404, "response is not XML", false),
                Cause::NotAnOutcomeService,
                Some(Permanent),
            ),
            (
                "404 with broken XML",
                body_problem(404, "malformed XML", true),
                Cause::NotAnOutcomeService,
                Some(Permanent),
            ),
            (
                "redirect",
                Observed {
                    http_status: Some(302),
                    redirect_to: Some("https://sso.example.edu/login".into()),
                    ..Default::default()
                },
                Cause::Redirected,
                Some(Permanent),
            ),
            ("415", http(415, None), Cause::ContentType, Some(Permanent)),
            (
                "401 signature",
                http(401, Some("Invalid authorization header")),
                Cause::SignatureRejected,
                Some(Auth),
            ),
            (
                "401 timestamp",
                http(
                    401,
                    Some("Timestamp too old or too far in the future, request has expired"),
                ),
                Cause::ClockSkew,
                Some(Auth),
            ),
            (
                "401 with skew",
                Observed {
                    clock_skew_secs: Some(-3 * 3600),
                    ..http(401, Some("Invalid authorization header"))
                },
                Cause::ClockSkew,
                Some(Auth),
            ),
            (
                "401 nonce",
                http(401, Some("Duplicate nonce detected")),
                Cause::NonceReplayed,
                Some(Auth),
            ),
            (
                "401 consumer key",
                http(401, Some("Invalid consumer key")),
                Cause::ConsumerKeyUnknown,
                Some(Auth),
            ),
            ("403 plain", http(403, None), Cause::OutcomesDisabled, Some(Auth)),
            (
                "success with 422",
                pox(422, "success", "", None),
                Cause::ContradictoryAnswer,
                Some(Permanent),
            ),
            (
                "unsupported",
                pox(200, "unsupported", "Operation not supported", None),
                Cause::InvalidRequest,
                Some(Permanent),
            ),
            (
                "unknown words",
                pox(200, "failure", "Something odd happened", None),
                Cause::LmsRefused,
                Some(Permanent),
            ),
            (
                "no codeMajor, JSON words on 400",
                http(400, Some("bad request")),
                Cause::LmsRefused,
                Some(Permanent),
            ),
            (
                "no codeMajor at all",
                http(200, None),
                Cause::NotAnOutcomeService,
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
    fn canvas_codes_name_their_cause() {
        use ErrorClass::*;
        for (code, cause, class) in [
            ("sourcedid_invalid", Cause::UnknownSourcedid, Permanent),
            ("signature_invalid", Cause::UnknownSourcedid, Permanent),
            ("user_not_in_course", Cause::NotAStudent, Permanent),
            ("course_not_available", Cause::CourseClosed, Permanent),
            ("course_invalid", Cause::CourseClosed, Permanent),
            ("assignment_invalid", Cause::AssignmentInvalid, Permanent),
            ("assignment_tool_mismatch", Cause::AssignmentInvalid, Permanent),
            ("tool_invalid", Cause::AssignmentInvalid, Permanent),
            ("no_points_possible", Cause::NoPointsPossible, Permanent),
            ("bad_score", Cause::BadScore, Permanent),
            ("no_score", Cause::BadScore, Permanent),
            ("no_parseable_result_score", Cause::BadScore, Permanent),
            ("no_parseable_result_total_score", Cause::BadScore, Permanent),
            ("timestamp_not_parseable", Cause::BadTimestamp, Permanent),
            ("timestamp_in_future", Cause::BadTimestamp, Permanent),
            ("no_submission_created", Cause::LmsBusy, Transient),
            ("something_new", Cause::LmsRefused, Permanent),
        ] {
            let v = classify(&pox(422, "failure", "whatever Canvas said", Some(code)));
            assert_eq!(v.outcome, AttemptOutcome::Failure, "{code}");
            assert_eq!(v.cause, cause, "{code}");
            assert_eq!(v.error_class, Some(class), "{code}");
        }
    }

    #[test]
    fn moodle_and_sakai_words_name_their_cause() {
        use ErrorClass::*;
        for (words, cause, class) in [
            // Moodle (mod/lti/servicelib.php)
            ("Message signature not valid", Cause::SignatureRejected, Auth),
            ("Consumer key is incorrect.", Cause::ConsumerKeyUnknown, Auth),
            ("SourcedId hash not valid", Cause::UnknownSourcedid, Permanent),
            (
                "User is not enrolled in the course",
                Cause::NotAStudent,
                Permanent,
            ),
            (
                "Tool does not accept grades",
                Cause::NotAcceptingGrades,
                Permanent,
            ),
            ("Score must be numeric", Cause::BadScore, Permanent),
            ("Score not between 0.0 and 1.0", Cause::BadScore, Permanent),
            ("Invalid XML content", Cause::InvalidRequest, Permanent),
            // Sakai
            (
                "Invalid POX request: Body hash does not match header",
                Cause::SignatureRejected,
                Auth,
            ),
            (
                "Could not validate the OAuth signature for key1: OAuth signature does not match",
                Cause::SignatureRejected,
                Auth,
            ),
            (
                "Could not validate the OAuth signature for key1: oauth_timestamp is 7300 seconds behind the server clock (allowed: 5400 seconds either way)",
                Cause::ClockSkew,
                Auth,
            ),
            (
                "Could not validate the OAuth signature for key1: oauth_nonce has already been used (duplicate nonce)",
                Cause::NonceReplayed,
                Auth,
            ),
            (
                "Could not validate the OAuth signature for key1: unknown oauth_consumer_key \"key1\"",
                Cause::ConsumerKeyUnknown,
                Auth,
            ),
            (
                "Invalid POX request: Content Type must be application/xml (got text/plain)",
                Cause::ContentType,
                Permanent,
            ),
            (
                "Invalid sourcedid: not recognised by this site",
                Cause::UnknownSourcedid,
                Permanent,
            ),
            (
                "Unable to store grade: user is not enrolled in the site",
                Cause::NotAStudent,
                Permanent,
            ),
            (
                "Unable to store grade: the site is closed",
                Cause::CourseClosed,
                Permanent,
            ),
            (
                "Unable to store grade: the assignment does not accept grades",
                Cause::NotAcceptingGrades,
                Permanent,
            ),
            (
                "Unable to store grade: Grade is not a number: abc",
                Cause::BadScore,
                Permanent,
            ),
            (
                "Unable to store grade: Grade out of range: 1.5",
                Cause::BadScore,
                Permanent,
            ),
            (
                "Missing required data: result_resultscore_textstring",
                Cause::BadScore,
                Permanent,
            ),
            (
                "Invalid POX request: Could not parse XML: unexpected end",
                Cause::InvalidRequest,
                Permanent,
            ),
            ("Course has concluded", Cause::CourseClosed, Permanent),
            (
                "Assignment has no points possible",
                Cause::NoPointsPossible,
                Permanent,
            ),
        ] {
            let v = classify(&pox(200, "failure", words, None));
            assert_eq!(v.outcome, AttemptOutcome::Failure, "{words}");
            assert_eq!(v.cause, cause, "{words}");
            assert_eq!(v.error_class, Some(class), "{words}");
            assert!(v.description.contains(words), "{words}");
        }
    }

    #[test]
    fn canvas_throttling_403_is_rate_limiting_not_auth() {
        let spent = RateBudget {
            remaining: Some(0.0),
            cost: Some(1.5),
        };
        for (name, o, wait) in [
            (
                "words and header",
                Observed {
                    says_rate_limited: true,
                    budget: spent,
                    ..http(
                        403,
                        Some("response is not XML; it starts with: \"403 Forbidden (Rate Limit Exceeded)\""),
                    )
                },
                crate::http::BUDGET_THROTTLE_DEFAULT_WAIT,
            ),
            (
                "header only",
                Observed {
                    budget: RateBudget {
                        remaining: Some(-2.25),
                        cost: None,
                    },
                    ..http(403, None)
                },
                crate::http::BUDGET_THROTTLE_DEFAULT_WAIT,
            ),
            (
                "words only",
                Observed {
                    says_rate_limited: true,
                    ..http(403, None)
                },
                crate::http::RATE_LIMIT_DEFAULT_WAIT,
            ),
            (
                "words and Retry-After",
                Observed {
                    says_rate_limited: true,
                    budget: spent,
                    retry_after: Some(Duration::from_secs(11)),
                    ..http(403, None)
                },
                Duration::from_secs(11),
            ),
            (
                "newer Canvas 429 with budget",
                Observed {
                    budget: spent,
                    ..http(429, None)
                },
                crate::http::BUDGET_THROTTLE_DEFAULT_WAIT,
            ),
            ("plain 429", http(429, None), crate::http::RATE_LIMIT_DEFAULT_WAIT),
        ] {
            let v = classify(&o);
            assert_eq!(v.outcome, AttemptOutcome::Error, "{name}");
            assert_eq!(v.error_class, Some(ErrorClass::Transient), "{name}");
            assert_eq!(v.cause, Cause::RateLimited, "{name}");
            assert_eq!(v.retry_after, Some(wait), "{name}");
        }
        // A 403 with budget left and no such words is still a refusal.
        let v = classify(&Observed {
            budget: RateBudget {
                remaining: Some(512.0),
                cost: Some(1.0),
            },
            ..http(403, Some("Forbidden"))
        });
        assert_eq!(v.error_class, Some(ErrorClass::Auth));
        assert_eq!(v.cause, Cause::OutcomesDisabled);
        // Words about rate limits on other statuses do not turn them into throttling.
        let v = classify(&Observed {
            says_rate_limited: true,
            ..http(401, Some("Invalid authorization header"))
        });
        assert_eq!(v.cause, Cause::SignatureRejected);
    }

    #[test]
    fn an_answer_to_another_request_confirms_nothing() {
        let mut o = pox(200, "success", "ok", None);
        o.expected_message_identifier = Some("abc123".into());
        o.message_ref_identifier = Some("abc123".into());
        assert!(classify(&o).is_success());
        o.message_ref_identifier = Some("ABC123".into());
        assert!(classify(&o).is_success(), "hex case is not a different request");
        o.message_ref_identifier = None;
        assert!(classify(&o).is_success(), "no ref: nothing to compare");
        o.message_ref_identifier = Some("zzz999".into());
        let v = classify(&o);
        assert!(!v.is_success());
        assert_eq!(v.outcome, AttemptOutcome::Error);
        assert_eq!(v.error_class, Some(ErrorClass::Transient));
        assert_eq!(v.cause, Cause::MismatchedAnswer);
        assert!(
            v.description.contains("zzz999") && v.description.contains("abc123"),
            "{}",
            v.description
        );
        assert!(v.fix_hint.unwrap().contains("not marked sent"));
        // A failure that names another request is not that request's failure either.
        let mut f = pox(422, "failure", "x", Some("user_not_in_course"));
        f.expected_message_identifier = Some("abc123".into());
        f.message_ref_identifier = Some("other".into());
        assert_eq!(classify(&f).cause, Cause::MismatchedAnswer);
        // Without an expectation (e.g. an imported log) nothing is compared.
        let mut g = pox(200, "success", "ok", None);
        g.message_ref_identifier = Some("whatever".into());
        assert!(classify(&g).is_success());
    }
}
