//! Open edX `lti_provider` outcome-failure logs, under any logging prefix:
//!
//! * `Outcome Service: Failed to update score on LTI consumer. User: …, course: …,
//!   usage: …, score: …, possible: … status: …, body: …` — a grade Open edX could
//!   not send, and why (the body, which may run over several lines, is the LMS's
//!   answer). It becomes a grade observed at the line's time, and Open edX's failed
//!   attempt (classified like Passback's own, marked as Open edX's).
//! * `Outcome Service: Required signal parameter is None. …` — a score Open edX
//!   never sent because a value was missing: nothing to import, listed as skipped.
//! * `Outcome service response: Unexpected status code N` — the status of the
//!   failure that follows, when that one says none.
//!
//! Activities are (course key, usage key); learners are the `LtiUser.lti_user_id`
//! the `lti_provider` records map the Open edX user to. Before those records are
//! imported, the grade is kept under a stand-in learner (`edx-user:<id>`) of the
//! `--platform`, as cannot-send with that reason; importing the records gives the
//! learner its real id and the grade its target.

use std::collections::HashMap;

use memchr::memmem::Finder;

use super::Ctx;
use super::text::{Input, normalize_time, parse_number};
use crate::error::Result;
use crate::http::{EXCERPT_BYTES, TransportError, cut};
use crate::intake::{ActivityOwned, ContextOwned, ExternalAttempt, Fact, PersonOwned, PlaceOwned};
use crate::lti11::classify::{Observed, classify};
use crate::lti11::pox;
use crate::model::{AttemptOperation, AttemptResult, NewGrade, OutcomeTarget, PlatformKind};
use crate::store::EdxAssignment;

/// Where Open edX's own attempts come from, in the journal.
pub const ORIGIN: &str = "open-edx";

/// The learner id used until Open edX's `LtiUser` record is imported.
pub fn stand_in_user(edx_user: i64) -> String {
    format!("edx-user:{edx_user}")
}

/// The longest body kept of one failure (bodies are LMS answers, usually small).
const MAX_BODY: usize = 64 * 1024;

const FAILED: &str = "Outcome Service: Failed to update score on LTI consumer.";
const NONE_PARAM: &str = "Outcome Service: Required signal parameter is None.";
const UNEXPECTED: &str = "Outcome service response: Unexpected status code";

/// One failure record being read (its body may continue on later lines).
struct Open {
    line: u64,
    at: Option<String>,
    /// The line starts with a date that is not one (`2026-13-45 25:61:00`).
    bad_time: bool,
    text: String,
}

/// The fields of a failure line.
#[derive(Debug, PartialEq)]
struct Failure<'a> {
    user: &'a str,
    course: &'a str,
    usage: &'a str,
    score: &'a str,
    possible: &'a str,
    status: &'a str,
    body: &'a str,
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<(&'a str, &'a str)> {
    let from = s.find(start)? + start.len();
    let rest = &s[from..];
    let to = rest.find(end)?;
    Some((&rest[..to], &rest[to + end.len()..]))
}

fn parse_failure(msg: &str) -> Option<Failure<'_>> {
    let (user, rest) = between(msg, "User: ", ", course: ")?;
    let (course, rest) = rest.split_once(", usage: ")?;
    let (usage, rest) = rest.split_once(", score: ")?;
    let (score, rest) = rest.split_once(", possible: ")?;
    let (possible, rest) = rest.split_once(" status: ")?;
    let (status, body) = match rest.split_once(", body: ") {
        Some((s, b)) => (s, b),
        None => (rest, ""),
    };
    Some(Failure {
        user: user.trim(),
        course: course.trim(),
        usage: usage.trim(),
        score: score.trim(),
        possible: possible.trim(),
        status: status.trim(),
        body,
    })
}

/// `<Response [422]>` → 422.
fn response_status(s: &str) -> Option<u16> {
    let inner = s.strip_prefix("<Response [")?.strip_suffix("]>")?;
    inner.parse().ok()
}

/// Whether a line starts with a date (`2026-11-20…`, `[2026-11-20…`).
fn starts_dated(line: &[u8]) -> bool {
    let l = line.strip_prefix(b"[").unwrap_or(line);
    let digits = |b: &[u8]| b.iter().all(u8::is_ascii_digit);
    l.len() >= 10 && digits(&l[..4]) && l[4] == b'-' && digits(&l[5..7]) && l[7] == b'-'
}

/// Whether a line starts a new log record (a time, in the usual log layouts).
fn starts_record(line: &[u8]) -> bool {
    let l = line.strip_prefix(b"[").unwrap_or(line);
    if starts_dated(line) {
        return true;
    }
    // syslog: `Nov 20 10:00:00 host …`
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
    ];
    l.len() > 4 && MONTHS.iter().any(|m| l.starts_with(m)) && l[3] == b' '
}

/// The time at the start of a log line, when it has one.
fn line_time(line: &str) -> Option<String> {
    let l = line.trim_start_matches('[');
    let mut parts = l.split([' ', ']']);
    let first = parts.next()?;
    if first.contains('T') {
        return normalize_time(first.trim_end_matches(','));
    }
    let second = parts.next()?;
    normalize_time(&format!("{first} {second}"))
}

/// How Open edX's failed attempt ends in the journal.
fn attempt_result(status: &str, body: &str, pending_status: Option<u16>) -> AttemptResult {
    let mut obs = Observed::default();
    let http = response_status(status).or(pending_status);
    match http {
        None => {
            obs.transport_error = Some(TransportError::Other(
                "Open edX got no answer from the LMS".into(),
            ));
        }
        Some(code) => {
            obs.http_status = Some(code);
            match pox::parse_response(body.trim().as_bytes()) {
                Ok(p) => obs.record_pox(&p),
                Err(e) if body.trim().is_empty() || body.trim() == "Unknown" => {
                    if code >= 400 {
                        obs.description = None;
                    } else {
                        obs.body_problem = Some(format!("empty answer ({e})"));
                    }
                }
                Err(e) => obs.body_problem = Some(e.to_string()),
            }
        }
    }
    let v = classify(&obs);
    AttemptResult {
        outcome: v.outcome,
        http_status: http,
        code_major: obs.code_major,
        description: Some(format!("Open edX could not send it: {}", v.description)),
        error_class: v.error_class,
        fix_hint: v.fix_hint,
        read_score: None,
        response_excerpt: (!body.trim().is_empty()).then(|| cut(body.trim(), EXCERPT_BYTES)),
        cause: Some(v.cause),
    }
}

struct Reader<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    /// (Open edX user, course, usage) → graded assignments, from imported records.
    assignments: HashMap<(i64, String, String), Vec<EdxAssignment>>,
    pending_status: Option<u16>,
}

impl Reader<'_, '_> {
    async fn finish(&mut self, rec: Open) -> Result<bool> {
        let line = rec.line;
        if let Some(rest) = rec
            .text
            .find(NONE_PARAM)
            .map(|i| &rec.text[i + NONE_PARAM.len()..])
        {
            let missing: Vec<&str> = rest
                .split(',')
                .filter_map(|kv| kv.split_once(':'))
                .filter(|(_, v)| v.trim() == "None")
                .map(|(k, _)| k.trim())
                .collect();
            let what = if missing.is_empty() {
                "a value".to_string()
            } else {
                missing.join(", ")
            };
            return self
                .ctx
                .skip(
                    line,
                    None,
                    format!("Open edX had no {what} for this score change, so it never sent it: no grade to import"),
                )
                .await;
        }
        let Some(msg) = rec.text.find(FAILED).map(|i| &rec.text[i + FAILED.len()..]) else {
            return Ok(true);
        };
        if rec.bad_time {
            // Not the import's time instead: the grade's time decides which version is current.
            return self
                .ctx
                .reject(line, Some("time"), "the line's time is not a valid date and time")
                .await;
        }
        let Some(f) = parse_failure(msg) else {
            return self
                .ctx
                .reject(
                    line,
                    None,
                    "a failure line without its User, course, usage, score and possible fields",
                )
                .await;
        };
        let Ok(edx_user) = f.user.parse::<i64>() else {
            return self
                .ctx
                .reject(line, Some("User"), "not an Open edX user id (a number)")
                .await;
        };
        let Some(score) = parse_number(f.score) else {
            return self
                .ctx
                .reject(line, Some("score"), "score is not a number")
                .await;
        };
        let Some(possible) = parse_number(f.possible) else {
            return self
                .ctx
                .reject(line, Some("possible"), "possible is not a number")
                .await;
        };
        if possible == 0.0 {
            return self
                .ctx
                .reject(
                    line,
                    Some("possible"),
                    "points possible is 0: the score cannot be put on the 0–1 scale",
                )
                .await;
        }
        if possible < 0.0 || score < 0.0 {
            return self
                .ctx
                .reject(line, Some("score"), "a negative score or points possible")
                .await;
        }
        let result = attempt_result(f.status, f.body, self.pending_status.take());
        let file = self.ctx.file().to_string();
        let grade = NewGrade {
            score_given: score,
            score_maximum: possible,
            comment: None,
            result_text: None,
            result_url: None,
            submitted_at: None,
            source: format!("edx-log:{file}:{line}"),
        };
        let at = rec.at.clone().unwrap_or_else(crate::store::now_rfc3339);
        let attempt = |target: String| ExternalAttempt {
            origin: ORIGIN.into(),
            operation: AttemptOperation::Replace,
            transport: PlatformKind::Lti11,
            target,
            at: at.clone(),
            result: result.clone(),
        };
        let place = |platform_id: i64, user: String| PlaceOwned {
            platform_id,
            context: Some(ContextOwned {
                context_id: f.course.to_string(),
                ..ContextOwned::default()
            }),
            activity: Some(ActivityOwned {
                resource_link_id: f.usage.to_string(),
                ..ActivityOwned::default()
            }),
            person: Some(PersonOwned {
                lti_user_id: user,
                ..PersonOwned::default()
            }),
        };
        let known = self
            .assignments
            .get(&(edx_user, f.course.to_string(), f.usage.to_string()))
            .cloned()
            .unwrap_or_default();
        let mut facts = Vec::new();
        let mut why_not = None;
        for a in &known {
            match (&a.consumer_key, &a.lti_user_id) {
                (Some(key), Some(lti_user)) => match self.ctx.platform_for_consumer_key(key) {
                    Ok(p) => {
                        let pl = place(p.id, lti_user.clone());
                        facts.push(Fact::Grade {
                            place: pl.clone(),
                            grade: grade.clone(),
                            observed_at: rec.at.clone(),
                        });
                        facts.push(Fact::ExternalAttempt {
                            place: pl,
                            attempt: attempt(a.outcome_url.clone().unwrap_or_else(|| "Open edX".into())),
                        });
                    }
                    Err(reason) => {
                        self.ctx.note(reason.clone());
                        why_not = Some(reason);
                    }
                },
                (None, _) => {
                    why_not = Some(format!(
                        "the LtiConsumer of Open edX user {edx_user}'s graded assignment has not been imported"
                    ))
                }
                (Some(_), None) => {
                    why_not = Some(format!(
                        "the LtiUser record of Open edX user {edx_user} has not been imported"
                    ))
                }
            }
        }
        if facts.is_empty() {
            // Not resolvable yet: keep the grade under a stand-in learner of --platform.
            let reason = why_not.unwrap_or_else(|| {
                "the Open edX lti_provider records (dumpdata) for this learner and activity have not been \
                 imported yet: import them to learn where this grade goes"
                    .into()
            });
            let platform = match self.ctx.sole_platform(
                Some(PlatformKind::Lti11),
                "an Open edX failure line whose lti_provider records are not imported",
            ) {
                Ok(p) => p,
                Err(msg) => {
                    self.ctx.note(msg.clone());
                    return self.ctx.reject(line, None, msg).await;
                }
            };
            let pl = place(platform.id, stand_in_user(edx_user));
            facts.push(Fact::Target {
                place: pl.clone(),
                target: OutcomeTarget {
                    learned_at: "1970-01-01T00:00:00.000Z".into(),
                    learned_from: format!("edx-log:{file}:{line}"),
                    unavailable_reason: Some(reason),
                    ..OutcomeTarget::default()
                },
            });
            facts.push(Fact::Grade {
                place: pl.clone(),
                grade,
                observed_at: rec.at.clone(),
            });
            facts.push(Fact::ExternalAttempt {
                place: pl,
                attempt: attempt("Open edX".into()),
            });
        }
        self.ctx.row(line, facts).await
    }
}

/// Import an Open edX log.
pub async fn run(ctx: &mut Ctx<'_>, input: Input) -> Result<()> {
    let (known, written) = ctx.batch().edx_assignments(false).await?;
    debug_assert!(written.is_empty());
    let mut assignments: HashMap<(i64, String, String), Vec<EdxAssignment>> = HashMap::new();
    for a in known {
        assignments
            .entry((a.edx_user, a.course_key.clone(), a.usage_key.clone()))
            .or_default()
            .push(a);
    }
    let mut r = Reader {
        ctx,
        assignments,
        pending_status: None,
    };
    let outcome_service = Finder::new(b"Outcome Service:");
    let outcome_response = Finder::new(b"Outcome service response:");
    let mut lines = input.lines();
    let mut open: Option<Open> = None;
    let mut lines_read = 0u64;
    loop {
        let next = lines.next_bytes().map_err(crate::error::Error::from)?;
        let Some((line, bytes)) = next else { break };
        lines_read = line;
        let service = outcome_service.find(bytes).is_some();
        let response = !service && outcome_response.find(bytes).is_some();
        if let Some(o) = &mut open {
            if !service && !response && !starts_record(bytes) {
                // The body of the open failure runs on.
                if o.text.len() < MAX_BODY {
                    o.text.push('\n');
                    o.text.push_str(&String::from_utf8_lossy(bytes));
                }
                continue;
            }
            let done = open.take().expect("open record");
            if !r.finish(done).await? {
                break;
            }
        }
        if response {
            let text = String::from_utf8_lossy(bytes);
            if let Some(i) = text.find(UNEXPECTED) {
                r.pending_status = text[i + UNEXPECTED.len()..]
                    .trim()
                    .trim_end_matches('.')
                    .parse()
                    .ok();
            }
            continue;
        }
        if service {
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => t.to_string(),
                Err(_) => String::from_utf8_lossy(bytes).into_owned(),
            };
            if text.contains(FAILED) || text.contains(NONE_PARAM) {
                let at = line_time(&text);
                open = Some(Open {
                    line,
                    bad_time: at.is_none() && starts_dated(bytes),
                    at,
                    text,
                });
            }
        }
    }
    if let Some(o) = open.take() {
        r.finish(o).await?;
    }
    r.ctx.note(format!("{lines_read} log lines read"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "2026-11-20 10:00:00,123 ERROR 4242 [edx.lti_provider] tasks.py:85 - Outcome Service: \
        Failed to update score on LTI consumer. User: 17, course: course-v1:edX+Bio+2026, usage: \
        block-v1:edX+Bio+2026+type@problem+block@q1, score: 3.0, possible: 4.0 status: <Response [422]>, body: <x/>";

    #[test]
    fn failure_lines_parse_under_any_prefix() {
        let msg = &LINE[LINE.find(FAILED).unwrap() + FAILED.len()..];
        let f = parse_failure(msg).unwrap();
        assert_eq!(
            f,
            Failure {
                user: "17",
                course: "course-v1:edX+Bio+2026",
                usage: "block-v1:edX+Bio+2026+type@problem+block@q1",
                score: "3.0",
                possible: "4.0",
                status: "<Response [422]>",
                body: "<x/>",
            }
        );
        assert_eq!(response_status("<Response [422]>"), Some(422));
        assert_eq!(response_status("None"), None);
        assert_eq!(line_time(LINE).as_deref(), Some("2026-11-20T10:00:00.123Z"));
        assert_eq!(
            line_time("[2026-11-20T10:00:00Z] x").as_deref(),
            Some("2026-11-20T10:00:00.000Z")
        );
        assert_eq!(line_time("Outcome Service: no time"), None);
    }

    #[test]
    fn record_starts_are_told_from_body_lines() {
        assert!(starts_record(b"2026-11-20 10:00:00,123 INFO x"));
        assert!(starts_record(b"[2026-11-20 10:00:00] x"));
        assert!(starts_record(b"Nov 20 10:00:00 edx-app lms: x"));
        assert!(!starts_record(b"<imsx_POXEnvelopeResponse>"));
        assert!(!starts_record(b"  <imsx_codeMajor>failure</imsx_codeMajor>"));
        assert!(!starts_record(b"{\"errors\": []}"));
        // A dated line whose date is not one is not given the import's time.
        let bad = LINE.replace("2026-11-20 10:00:00", "2026-13-45 25:61:00");
        assert!(starts_dated(bad.as_bytes()) && line_time(&bad).is_none());
        assert!(
            !starts_dated(b"Nov 20 10:00:00 edx-app lms: x"),
            "syslog lines have no year"
        );
    }

    #[test]
    fn open_edx_failures_are_classified_like_passbacks_own() {
        let canvas = "<?xml version=\"1.0\"?><imsx_POXEnvelopeResponse><imsx_POXHeader><imsx_POXResponseHeaderInfo>\
            <imsx_statusInfo><imsx_codeMajor>failure</imsx_codeMajor><imsx_description>User is no longer in course\
            </imsx_description><ext_canvas_error_code>user_not_in_course</ext_canvas_error_code></imsx_statusInfo>\
            </imsx_POXResponseHeaderInfo></imsx_POXHeader></imsx_POXEnvelopeResponse>";
        let r = attempt_result("<Response [422]>", canvas, None);
        assert_eq!(r.error_class, Some(crate::model::ErrorClass::Permanent));
        assert_eq!(r.http_status, Some(422));
        assert!(
            r.description
                .as_deref()
                .unwrap()
                .starts_with("Open edX could not send it: User is no longer in course")
        );
        let r = attempt_result("None", "Unknown", None);
        assert_eq!(r.error_class, Some(crate::model::ErrorClass::Transient));
        let r = attempt_result("None", "Unknown", Some(503));
        assert_eq!(r.http_status, Some(503), "the status of the line before");
        assert_eq!(r.error_class, Some(crate::model::ErrorClass::Transient));
    }
}
