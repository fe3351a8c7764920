//! The sandbox's LTI 1.1 outcomes endpoint and its admin calls.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::faults::{Fault, FaultConfig};
use super::{Dialect, Shared, SourcedidState, StoredResult};
use crate::pox_server::{self, Operation, ResponseSpec};
use passback::http::format_http_date;
use passback::lti11::oauth::{self, VerifyError};
use passback::lti11::pox::{CodeMajor, ResultData};

/// Why a request is refused, before dialect shaping.
#[derive(Debug, Clone)]
enum Refusal {
    ContentType(String),
    Auth(VerifyError),
    BadXml(String),
    UnknownSourcedid,
    State(SourcedidState),
    NoScore,
    UnparseableScore(String),
    BadScore(String),
    Unsupported(String),
}

fn sandbox_now(offset: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::seconds(offset)
}

fn with_date(mut resp: Response, offset: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format_http_date(sandbox_now(offset))) {
        resp.headers_mut().insert(header::DATE, v);
    }
    resp
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn canvas_json_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"errors": [{"message": message}], "error_report_id": 4711})),
    )
        .into_response()
}

/// The operation name as each LMS echoes it in `imsx_operationRefIdentifier`.
fn op_ref(dialect: Dialect, op: &str) -> String {
    match dialect {
        Dialect::Canvas => op.trim_end_matches("Request").to_string(),
        Dialect::Moodle | Dialect::Sakai => {
            if op.ends_with("Request") {
                op.to_string()
            } else {
                format!("{op}Request")
            }
        }
    }
}

fn body_element(op: &str) -> String {
    format!("{}Response", op.trim_end_matches("Request"))
}

#[allow(clippy::too_many_arguments)]
fn pox_response(
    dialect: Dialect,
    status: StatusCode,
    message_id: u64,
    major: CodeMajor,
    description: &str,
    msg_ref: &str,
    op: &str,
    canvas_code: Option<&str>,
    read_score: Option<Option<String>>,
) -> Response {
    let severity = match (dialect, &major) {
        (Dialect::Sakai, CodeMajor::Failure | CodeMajor::Unsupported) => "error",
        _ => "status",
    };
    let spec = ResponseSpec {
        message_identifier: message_id.to_string(),
        code_major: major,
        severity: Some(severity.to_string()),
        description: Some(description.to_string()),
        message_ref_identifier: Some(msg_ref.to_string()),
        operation_ref_identifier: Some(op_ref(dialect, op)),
        code_minor: Vec::new(),
        ext_canvas_error_code: if dialect == Dialect::Canvas {
            canvas_code.map(str::to_string)
        } else {
            None
        },
        body_element: body_element(op),
        read_score_text: read_score,
    };
    xml(status, pox_server::response(&spec))
}

/// Shape a refusal the way the chosen LMS does.
fn refuse(
    dialect: Dialect,
    r: &Refusal,
    message_id: u64,
    msg_ref: &str,
    op: &str,
    consumer_key: &str,
) -> Response {
    use Refusal::*;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    match dialect {
        Dialect::Canvas => match r {
            ContentType(_) => canvas_json_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be 'application/xml'",
            ),
            Auth(VerifyError::TimestampOutOfWindow { .. }) => canvas_json_error(
                StatusCode::UNAUTHORIZED,
                "Timestamp too old or too far in the future, request has expired",
            ),
            Auth(VerifyError::NonceReplayed) => {
                canvas_json_error(StatusCode::UNAUTHORIZED, "Duplicate nonce detected")
            }
            Auth(_) => canvas_json_error(StatusCode::UNAUTHORIZED, "Invalid authorization header"),
            BadXml(_) | Unsupported(_) => pox_response(
                dialect,
                unprocessable,
                message_id,
                CodeMajor::Unsupported,
                "Request could not be handled. ¯\\_(ツ)_/¯",
                msg_ref,
                op,
                None,
                None,
            ),
            other => {
                let (desc, code) = match other {
                    UnknownSourcedid => ("Invalid sourcedid".to_string(), "sourcedid_invalid"),
                    State(SourcedidState::UserNotInCourse) => {
                        ("User is no longer in course".into(), "user_not_in_course")
                    }
                    State(SourcedidState::CourseConcluded) => {
                        ("Course not available for student".into(), "course_not_available")
                    }
                    State(SourcedidState::NoPointsPossible) => {
                        ("Assignment has no points possible.".into(), "no_points_possible")
                    }
                    State(SourcedidState::AssignmentInvalid) => {
                        ("Assignment is invalid".into(), "assignment_invalid")
                    }
                    NoScore => ("No score given".into(), "no_score"),
                    UnparseableScore(s) => (
                        format!("Unable to parse resultScore: {s}"),
                        "no_parseable_result_score",
                    ),
                    BadScore(_) => ("Score is not between 0 and 1".into(), "bad_score"),
                    _ => ("Request could not be handled".into(), "unsupported"),
                };
                pox_response(
                    dialect,
                    unprocessable,
                    message_id,
                    CodeMajor::Failure,
                    &format!("{desc}\n[EID_{message_id}]"),
                    msg_ref,
                    op,
                    Some(code),
                    None,
                )
            }
        },
        // Moodle and Sakai answer every failure with HTTP 200 and a POX failure.
        Dialect::Moodle | Dialect::Sakai => {
            let desc = if dialect == Dialect::Moodle {
                moodle_words(r, op)
            } else {
                sakai_words(r, consumer_key)
            };
            let major = if matches!(r, Unsupported(_)) {
                CodeMajor::Unsupported
            } else {
                CodeMajor::Failure
            };
            pox_response(
                dialect,
                StatusCode::OK,
                message_id,
                major,
                &desc,
                msg_ref,
                op,
                None,
                None,
            )
        }
    }
}

/// Moodle's `imsx_description` for a refusal (mod/lti/servicelib.php wording).
fn moodle_words(r: &Refusal, op: &str) -> String {
    use Refusal::*;
    match r {
        ContentType(_) | Auth(_) => "Message signature not valid".to_string(),
        BadXml(_) => "Invalid XML content".into(),
        UnknownSourcedid => "SourcedId hash not valid".into(),
        State(SourcedidState::UserNotInCourse) => "User is not enrolled in the course".into(),
        State(_) => "Tool does not accept grades".into(),
        NoScore | UnparseableScore(_) => "Score must be numeric".into(),
        BadScore(_) => "Score not between 0.0 and 1.0".into(),
        Unsupported(_) => format!("{op} is not supported"),
    }
}

/// Sakai's `imsx_description` for a refusal (`<bundle text>: <detail>` style).
fn sakai_words(r: &Refusal, consumer_key: &str) -> String {
    use Refusal::*;
    match r {
        ContentType(ct) => {
            format!("Invalid POX request: Content Type must be application/xml (got {ct})")
        }
        Auth(VerifyError::BodyHashMismatch) => "Invalid POX request: Body hash does not match header".into(),
        Auth(VerifyError::MissingParameter(p)) if p == "oauth_body_hash" => {
            "Invalid POX request: Did not find oauth_body_hash".into()
        }
        Auth(e) => format!("Could not validate the OAuth signature for {consumer_key}: {e}"),
        BadXml(e) => format!("Invalid POX request: Could not parse XML: {e}"),
        UnknownSourcedid => "Invalid sourcedid: not recognised by this site".into(),
        State(SourcedidState::UserNotInCourse) => {
            "Unable to store grade: user is not enrolled in the site".into()
        }
        State(SourcedidState::CourseConcluded) => "Unable to store grade: the site is closed".into(),
        State(_) => "Unable to store grade: the assignment does not accept grades".into(),
        NoScore => "Missing required data: result_resultscore_textstring".into(),
        UnparseableScore(s) => format!("Unable to store grade: Grade is not a number: {s}"),
        BadScore(s) => format!("Unable to store grade: Grade out of range: {s}"),
        Unsupported(o) => format!("Operation not supported: {o}"),
    }
}

fn fault_response(fault: Fault, retry_after: u64, request_cost: f64) -> Response {
    if let Some(r) = super::infrastructure_fault(fault, retry_after, request_cost) {
        return r;
    }
    match fault {
        Fault::RateLimit => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (header::RETRY_AFTER, retry_after.to_string()),
            ],
            r#"{"errors":[{"message":"Rate Limit Exceeded"}]}"#,
        )
            .into_response(),
        Fault::MalformedXml => xml(
            StatusCode::OK,
            "<?xml version=\"1.0\"?><imsx_POXEnvelopeResponse><imsx_POXHeader><imsx_POXResponse".into(),
        ),
        Fault::Reset => super::faults::reset_mid_body("application/xml", b"<?xml version=\"1.0\"?><imsx_POX"),
        // Hang is handled by sleeping, PHP notices by answering normally; the others
        // were answered above.
        Fault::Hang
        | Fault::Status500
        | Fault::Status503
        | Fault::HtmlPage
        | Fault::ForbiddenRateLimit
        | Fault::PhpNoticeHtml
        | Fault::PhpNoticeText => StatusCode::GATEWAY_TIMEOUT.into_response(),
    }
}

fn parse_score(raw: &str) -> Result<f64, Refusal> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(Refusal::NoScore);
    }
    let v: f64 = t.parse().map_err(|_| Refusal::UnparseableScore(t.to_string()))?;
    if !v.is_finite() {
        return Err(Refusal::UnparseableScore(t.to_string()));
    }
    if !(0.0..=1.0).contains(&v) {
        return Err(Refusal::BadScore(t.to_string()));
    }
    Ok(v)
}

/// The score the LMS stores for a replaceResult (0–1). Canvas turns it into a
/// percentage grade and keeps points rounded to hundredths of a point
/// (`(points_possible * percentage * 100.0).round / 100.0` in `Assignment.interpret_grade`),
/// so on a 7-point assignment 1/3 reads back as 2.33 / 7; Moodle and Sakai keep it as received.
pub(crate) fn stored_score(dialect: Dialect, score: f64, points_possible: f64) -> f64 {
    match dialect {
        Dialect::Canvas if points_possible > 0.0 => {
            (points_possible * score * 100.0).round() / (100.0 * points_possible)
        }
        Dialect::Canvas | Dialect::Moodle | Dialect::Sakai => score,
    }
}

/// `POST <outcome path>`: the LTI 1.1 Basic Outcomes service.
///
/// The state lock is held only to charge the budget and draw the fault, then again to
/// process the request; never while sleeping the latency (or a hang).
pub(crate) async fn outcome(State(st): State<Shared>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let (adm, dialect, offset) = {
        let mut s = st.lock().await;
        s.total_requests += 1;
        let adm = s.faults.admit(Instant::now());
        if adm.throttled().is_some() {
            s.throttled += 1;
        }
        (adm, s.config.dialect, s.config.clock_offset_secs)
    };
    if let (Some(answer), Some(charge)) = (adm.throttled(), adm.charge) {
        return with_date(
            super::with_budget(super::throttle_response(answer, charge), Some(charge)),
            offset,
        );
    }
    if !adm.delay.is_zero() {
        crate::faults::sleep_latency(adm.delay).await;
    }
    let resp = match (adm.fault, adm.fault.and_then(Fault::php_notice)) {
        (_, Some(notice)) => {
            let resp = handle(&st, dialect, &headers, &uri, &body).await;
            super::with_notice(resp, notice).await
        }
        (Some(f), None) => {
            if f == Fault::Hang {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            fault_response(f, adm.retry_after, adm.request_cost)
        }
        (None, None) => handle(&st, dialect, &headers, &uri, &body).await,
    };
    with_date(super::with_budget(resp, adm.charge), offset)
}

async fn handle(st: &Shared, dialect: Dialect, headers: &HeaderMap, uri: &Uri, body: &Bytes) -> Response {
    let mut s = st.lock().await;
    s.message_counter += 1;
    let message_id = s.message_counter;
    let consumer_key = s.config.consumer_key.clone();

    // Parse the envelope first only to learn the operation and message id for
    // the answer; nothing in it is trusted before the signature checks out.
    let parsed = pox_server::parse_request(body);
    let (msg_ref, op_name) = match &parsed {
        Ok(p) => (
            p.message_identifier.clone().unwrap_or_default(),
            operation_name(&p.operation),
        ),
        Err(_) => (String::new(), "replaceResultRequest".to_string()),
    };
    let refuse_now =
        |r: Refusal| -> Response { refuse(dialect, &r, message_id, &msg_ref, &op_name, &consumer_key) };

    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let ct_main = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if ct_main != "application/xml" {
        return refuse_now(Refusal::ContentType(ct));
    }

    // OAuth: signature over method + URL (with its query) + oauth params incl. body hash.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    // The signature covers the URL exactly as it arrived: scheme + Host + raw request target.
    let url = format!(
        "http://{host}{}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let params = match oauth::parse_authorization_header(auth) {
        Ok(p) => p,
        Err(_) => {
            return refuse_now(Refusal::Auth(VerifyError::MissingParameter(
                "Authorization".into(),
            )));
        }
    };
    let secret = s.config.consumer_secret.clone();
    let key = s.config.consumer_key.clone();
    let points_possible = s.config.points_possible;
    let verified = match oauth::verify_request_raw("POST", &url, &params, body, |k| {
        (k == key).then(|| secret.clone())
    }) {
        Ok(v) => v,
        Err(e) => return refuse_now(Refusal::Auth(e)),
    };
    let now = sandbox_now(s.config.clock_offset_secs).unix_timestamp().max(0) as u64;
    if let Err(e) =
        s.nonces
            .check_and_insert(&verified.consumer_key, &verified.nonce, verified.timestamp, now)
    {
        return refuse_now(Refusal::Auth(e));
    }

    let req = match parsed {
        Ok(r) => r,
        Err(e) => return refuse_now(Refusal::BadXml(e.to_string())),
    };
    let Some(sourcedid) = req.sourcedid.clone().filter(|s| !s.is_empty()) else {
        return refuse_now(Refusal::UnknownSourcedid);
    };
    *s.request_counts.entry(sourcedid.clone()).or_default() += 1;
    match &req.operation {
        Operation::ReplaceResult | Operation::DeleteResult => {
            *s.write_counts.entry(sourcedid.clone()).or_default() += 1;
            s.total_writes += 1;
        }
        Operation::ReadResult => {
            *s.read_counts.entry(sourcedid.clone()).or_default() += 1;
            s.total_reads += 1;
        }
        Operation::Other(_) => {}
    }
    let state = match s.registry.get(&sourcedid) {
        Some(st) => *st,
        None => return refuse_now(Refusal::UnknownSourcedid),
    };
    let blocked = |write: bool| match state {
        SourcedidState::Valid => None,
        SourcedidState::CourseConcluded if !write => None,
        other => Some(Refusal::State(other)),
    };
    let success = |desc: &str, read: Option<Option<String>>| {
        pox_response(
            dialect,
            StatusCode::OK,
            message_id,
            CodeMajor::Success,
            desc,
            &msg_ref,
            &op_name,
            None,
            read,
        )
    };
    match &req.operation {
        Operation::ReplaceResult => {
            if let Some(r) = blocked(true) {
                return refuse_now(r);
            }
            let score = match (
                &req.score_text,
                req.result_data.is_some() || req.submitted_at.is_some(),
            ) {
                (Some(t), _) => match parse_score(t) {
                    Ok(v) => Some(stored_score(dialect, v, points_possible)),
                    Err(r) => return refuse_now(r),
                },
                // Canvas accepts resultData or submittedAt without a score; the others need one.
                (None, true) if dialect == Dialect::Canvas => None,
                (None, _) => return refuse_now(Refusal::NoScore),
            };
            let total = match &req.result_total_score_text {
                Some(t) => match t.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() && v >= 0.0 => Some(v),
                    _ => return refuse_now(Refusal::UnparseableScore(t.clone())),
                },
                None => None,
            };
            let mut stored = StoredResult {
                score,
                result_total_score: total,
                submitted_at: req.submitted_at.clone(),
                updated_at: passback::store::now_rfc3339(),
                ..Default::default()
            };
            match &req.result_data {
                Some(ResultData::Text(t)) => stored.result_text = Some(t.clone()),
                Some(ResultData::Url(u)) => stored.result_url = Some(u.clone()),
                Some(ResultData::LtiLaunchUrl(u)) => stored.result_lti_launch_url = Some(u.clone()),
                None => {}
            }
            let desc = score
                .map(|v| format!("Score for {sourcedid} is now {v}"))
                .unwrap_or_else(|| format!("Submission for {sourcedid} recorded"));
            s.results.insert(sourcedid, stored);
            success(&desc, None)
        }
        Operation::ReadResult => {
            if let Some(r) = blocked(false) {
                return refuse_now(r);
            }
            let text = s
                .results
                .get(&sourcedid)
                .and_then(|r| r.score)
                .map(|v| format!("{v}"));
            success("Result read", Some(text))
        }
        Operation::DeleteResult => {
            if let Some(r) = blocked(true) {
                return refuse_now(r);
            }
            s.results.remove(&sourcedid);
            success(&format!("Score for {sourcedid} deleted"), None)
        }
        Operation::Other(name) => refuse_now(Refusal::Unsupported(name.clone())),
    }
}

fn operation_name(op: &Operation) -> String {
    match op {
        Operation::ReplaceResult => "replaceResultRequest".into(),
        Operation::ReadResult => "readResultRequest".into(),
        Operation::DeleteResult => "deleteResultRequest".into(),
        Operation::Other(n) => n.clone(),
    }
}

/// `GET /_sandbox/results`: stored results, per-sourcedid request counts (all, writes,
/// reads), throttled requests and what the budget holds now.
pub(crate) async fn admin_results(State(st): State<Shared>) -> Response {
    let mut s = st.lock().await;
    let budget_remaining = s.faults.remaining(Instant::now());
    Json(serde_json::json!({
        "dialect": s.config.dialect,
        "results": s.results,
        "requests": s.request_counts,
        "writes": s.write_counts,
        "reads": s.read_counts,
        "total_requests": s.total_requests,
        "total_writes": s.total_writes,
        "total_reads": s.total_reads,
        "throttled": s.throttled,
        "budget_remaining": budget_remaining,
        "registered": s.registry.len(),
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct RegisterBody {
    sourcedids: Vec<String>,
    #[serde(default = "valid")]
    state: SourcedidState,
}

fn valid() -> SourcedidState {
    SourcedidState::Valid
}

/// `POST /_sandbox/sourcedids` `{"sourcedids": [...], "state": "valid"}`: register sourcedids.
pub(crate) async fn admin_register(State(st): State<Shared>, Json(b): Json<RegisterBody>) -> Response {
    let mut s = st.lock().await;
    for id in b.sourcedids {
        s.registry.insert(id, b.state);
    }
    Json(serde_json::json!({"registered": s.registry.len()})).into_response()
}

/// `POST /_sandbox/faults` with a [`FaultConfig`]: replace the fault settings.
pub(crate) async fn admin_faults(State(st): State<Shared>, Json(cfg): Json<FaultConfig>) -> Response {
    let mut s = st.lock().await;
    s.faults.reconfigure(cfg);
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_sandbox/reset`: forget stored results and counters and fill the budget's
/// bucket again (keeps the registry and the fault settings).
pub(crate) async fn admin_reset(State(st): State<Shared>) -> Response {
    let mut s = st.lock().await;
    s.results.clear();
    s.request_counts.clear();
    s.write_counts.clear();
    s.read_counts.clear();
    s.total_requests = 0;
    s.total_writes = 0;
    s.total_reads = 0;
    s.throttled = 0;
    s.faults.refill();
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canvas_keeps_hundredths_of_a_point_the_others_what_was_sent() {
        let third = 1.0 / 3.0;
        let two_thirds = 2.0 / 3.0;
        // A 100-point assignment: a percentage with two decimals.
        assert_eq!(stored_score(Dialect::Canvas, third, 100.0), 0.3333);
        assert_eq!(stored_score(Dialect::Canvas, two_thirds, 100.0), 0.6667);
        // A 7-point assignment: 2.33, 4.67 and 0.88 points (0.875 rounds half up).
        for (score, kept) in [(third, 2.33), (two_thirds, 4.67), (0.125, 0.88)] {
            let v = stored_score(Dialect::Canvas, score, 7.0);
            assert!((v * 7.0 - kept).abs() < 1e-12, "{score}: {v}");
        }
        for v in [0.0, 1.0, 0.85, 0.775] {
            assert_eq!(stored_score(Dialect::Canvas, v, 100.0), v);
        }
        for d in [Dialect::Moodle, Dialect::Sakai] {
            assert_eq!(stored_score(d, third, 7.0), third);
            assert_eq!(stored_score(d, two_thirds, 7.0), two_thirds);
            assert_eq!(stored_score(d, 0.125, 7.0), 0.125);
        }
    }
}
