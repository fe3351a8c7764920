//! Turning what an LMS answered into an outcome, an error class and a one-line
//! fix hint a support person can act on.
//!
//! Success needs both an HTTP 2xx and `imsx_codeMajor` = `success`; Canvas
//! answers failures with 422, Moodle and Sakai with 200 + `failure`, OAuth
//! problems come back as 401 (Canvas) or as a 200 failure whose description
//! names the signature (Moodle, Sakai).

use std::time::Duration;

use crate::http::{TransportError, Verdict};
use crate::model::{AttemptOutcome, ErrorClass};

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
    description: String,
    hint: Option<&str>,
) -> Verdict {
    Verdict {
        outcome,
        error_class: class,
        description,
        fix_hint: hint.map(str::to_string),
        retry_after: None,
        cause: crate::model::Cause::default_for(outcome, class),
    }
}

/// Canvas `ext_canvas_error_code` → (class, hint).
fn canvas_code(code: &str) -> Option<(ErrorClass, &'static str)> {
    use ErrorClass::*;
    Some(match code {
        "sourcedid_invalid" => (
            Permanent,
            "The LMS does not know this lis_result_sourcedid: the learner must launch the activity again so a fresh one is captured.",
        ),
        "signature_invalid" => (
            Permanent,
            "The sourcedid's own signature is invalid (it was altered or belongs to another tool): capture it again from a fresh launch.",
        ),
        "tool_invalid" => (
            Permanent,
            "The LMS no longer has this tool installed: reinstall or reconfigure the tool in the course, then relaunch.",
        ),
        "course_invalid" => (Permanent, "The course no longer exists in the LMS."),
        "user_not_in_course" => (
            Permanent,
            "The learner is no longer enrolled in the course: re-enrol them or leave this grade unsent.",
        ),
        "assignment_invalid" => (
            Permanent,
            "The assignment was deleted in the LMS: recreate it and have learners launch it again.",
        ),
        "assignment_tool_mismatch" => (
            Permanent,
            "The assignment is no longer linked to this tool: fix the assignment's external tool setting.",
        ),
        "course_not_available" => (
            Permanent,
            "The course is concluded or the enrolment inactive; the LMS blocks grade writes. Ask the LMS admin to reopen it.",
        ),
        "no_parseable_result_score" | "no_parseable_result_total_score" | "bad_score" | "no_score" => (
            Permanent,
            "The LMS rejected the score value: check the local grade (0 to maximum) and send again.",
        ),
        "timestamp_not_parseable" | "timestamp_in_future" => (
            Permanent,
            "The LMS rejected submittedAt: check the submission time and this computer's clock.",
        ),
        "no_points_possible" => (
            Permanent,
            "The assignment has no points possible: the instructor must set points in the LMS, then send again.",
        ),
        "no_submission_created" => (
            Transient,
            "The LMS failed to create the submission; this is usually temporary. Send again later.",
        ),
        _ => return None,
    })
}

/// Description text → (class, hint) for LMSs without error codes (Moodle, Sakai).
fn by_description(desc: &str) -> Option<(ErrorClass, &'static str)> {
    use ErrorClass::*;
    let d = desc.to_ascii_lowercase();
    let has = |s: &str| d.contains(s);
    Some(
        if has("signature") || has("body hash") || has("oauth_body_hash") || has("no.validate") {
            (
                Auth,
                "The LMS could not verify the request's signature: check the consumer key and secret for this platform (and this computer's clock).",
            )
        } else if has("consumer key") {
            (
                Auth,
                "The LMS does not recognise the consumer key: check the platform's consumer key.",
            )
        } else if has("timestamp") {
            (
                Auth,
                "The LMS rejected the request time: check this computer's clock.",
            )
        } else if has("nonce") {
            (
                Auth,
                "The LMS saw this request's nonce before; send again (Passback signs every attempt afresh).",
            )
        } else if has("sourcedid") || has("unknown") && has("result") {
            (
                Permanent,
                "The LMS does not accept this lis_result_sourcedid: the learner must launch the activity again.",
            )
        } else if has("not between")
            || has("out of range")
            || has("must be numeric")
            || has("score") && has("invalid")
        {
            (
                Permanent,
                "The LMS rejected the score value: check the local grade and send again.",
            )
        } else if has("does not accept grades") || has("not accept") {
            (
                Permanent,
                "The activity is not set to accept grades in the LMS: the instructor must enable grading for the tool.",
            )
        } else if has("no longer in course") || has("not enrolled") || has("not a student") {
            (Permanent, "The learner is no longer enrolled in the course.")
        } else if has("concluded") || has("not available") || has("closed") {
            (
                Permanent,
                "The course is closed for grading: ask the LMS admin to reopen it.",
            )
        } else if has("no points possible") {
            (
                Permanent,
                "The assignment has no points possible: the instructor must set points in the LMS.",
            )
        } else if has("content type") || has("content-type") {
            (Permanent, "The LMS rejected the request's Content-Type.")
        } else {
            return None;
        },
    )
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
        return verdict(Out::Error, Some(Transient), desc, Some(hint));
    }
    let status = o.http_status.unwrap_or(0);
    let lms_words = o.description.clone().filter(|d| !d.trim().is_empty());

    if let Some(loc) = &o.redirect_to {
        return verdict(
            Out::Error,
            Some(Permanent),
            format!("the LMS answered HTTP {status} redirecting to {loc}"),
            Some(
                "Signed requests are never sent on to a redirect target. If the LMS moved, update the outcome URL (a fresh launch captures it).",
            ),
        );
    }
    if status == 429 {
        let mut slow_down = verdict(
            Out::Error,
            Some(Transient),
            lms_words.unwrap_or_else(|| "the LMS is rate limiting requests (HTTP 429)".into()),
            Some("The LMS asked Passback to slow down; it will wait as told and retry."),
        );
        slow_down.retry_after = Some(o.retry_after.unwrap_or(Duration::from_secs(30)));
        return slow_down;
    }
    if status >= 500 {
        let mut server_error = verdict(
            Out::Error,
            Some(Transient),
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
                format!("{desc} ({})", describe_skew(s)),
                Some(&format!(
                    "Clock skew: {}; LMSs reject signatures more than 90 minutes off. Set the system clock (enable NTP), then send again.",
                    describe_skew(s)
                )),
            );
        }
        let hint = if lower.contains("timestamp") || lower.contains("expired") {
            "The LMS rejected the request time: check this computer's clock (enable NTP), then send again."
        } else if lower.contains("nonce") {
            "The LMS saw this nonce before. Passback signs every attempt afresh, so send again; if it repeats, check for a proxy replaying requests."
        } else if status == 403 {
            "The LMS forbids this request: outcomes may be disabled for the tool or the whole LMS. Ask the LMS admin."
        } else {
            "The LMS rejected the signature: check this platform's consumer key and secret (passback platform list), and this computer's clock."
        };
        return verdict(Out::Failure, Some(Auth), desc, Some(hint));
    }
    if status == 415 {
        return verdict(
            Out::Failure,
            Some(Permanent),
            lms_words.unwrap_or_else(|| "the LMS rejected the Content-Type (HTTP 415)".into()),
            Some("The LMS wants Content-Type application/xml; this is a Passback or proxy bug, report it."),
        );
    }
    if let Some(problem) = &o.body_problem {
        if o.body_malformed && status != 404 {
            return verdict(
                Out::Error,
                Some(Transient),
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
            format!("HTTP {status}: {problem}"),
            Some(hint),
        );
    }
    match o.code_major.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("success") if (200..300).contains(&status) => verdict(
            Out::Success,
            None,
            lms_words.unwrap_or_else(|| "success".into()),
            None,
        ),
        Some("processing") if (200..300).contains(&status) => verdict(
            Out::Processing,
            None,
            lms_words.unwrap_or_else(|| "accepted for processing".into()),
            Some("The LMS accepted the request but has not applied it yet; a later read will confirm it."),
        ),
        Some("success") | Some("processing") => verdict(
            Out::Failure,
            Some(Permanent),
            format!("HTTP {status} with codeMajor success: the LMS's answer contradicts itself"),
            Some("Treating it as not sent. Read the grade back to see what the LMS holds."),
        ),
        Some(major) => {
            let desc = lms_words
                .clone()
                .unwrap_or_else(|| format!("the LMS answered codeMajor {major}"));
            if let Some((class, hint)) = o.ext_canvas_error_code.as_deref().and_then(canvas_code) {
                return verdict(Out::Failure, Some(class), desc, Some(hint));
            }
            if let Some((class, hint)) = lms_words.as_deref().and_then(by_description) {
                return verdict(Out::Failure, Some(class), desc, Some(hint));
            }
            if major == "unsupported" {
                return verdict(
                    Out::Failure,
                    Some(Permanent),
                    desc,
                    Some("The LMS does not support this operation or an extension sent with it."),
                );
            }
            verdict(
                Out::Failure,
                Some(Permanent),
                desc,
                Some("The LMS refused the grade; read the description, fix the cause, then send again."),
            )
        }
        None => verdict(
            Out::Error,
            Some(Permanent),
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
}
