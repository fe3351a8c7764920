//! The sandbox's LTIAAS-compatible service API and its admin calls.
//!
//! API (what a tool calls, on the sandbox's base URL):
//!
//! * `GET /api/idtoken` (`LTIK-AUTH-V2 API_KEY:LTIK` only): the launch's ID
//!   token, with `services.serviceKey`.
//! * `GET /api/lineitems?resourceLinkId=&resourceId=&tag=&limit=` and
//!   `?url=NEXT`: line items of the caller's context, paged with `next` links
//!   (LMS-style URLs that must be passed back, encoded once, in `url`).
//! * `POST /api/lineitems`: create a line item in the caller's context.
//! * `GET /api/lineitems/{id}`: one line item (`{id}` URL-encoded once).
//! * `POST /api/lineitems/{id}/scores`: store a score; validates the AGS fields
//!   (`userId`, `activityProgress`, `gradingProgress`, `timestamp` with
//!   sub-second precision, `scoreGiven` ≥ 0, `scoreMaximum` > 0 with a score),
//!   refuses a timestamp not later than the stored one, and refuses (as the LMS,
//!   `externalError`) users who are not students, concluded courses and
//!   exhausted attempts. Answers `204`.
//! * `GET /api/lineitems/{id}/scores?userId=&limit=` and `?url=NEXT`: results.
//!
//! The header formats, the API key and service keys are checked; a bad
//! credential gets LTIAAS's 401 shape (`{status, error, details: {message,
//! description}}`). The fault plan of the sandbox (`--fault`, `--fail-next`,
//! latency, `Retry-After`, the request budget) applies to every `/api/` request
//! (an unknown `/api/` path excepted). The PHP notice faults (`notice_html`,
//! `notice_text`) answer normally here: LTIAAS speaks JSON, and a notice in front
//! of it would say nothing about Moodle. A budget-throttled request gets the same
//! answer as an outcome request (the plain-text 403 or the JSON 429) and is not
//! handled; every answer under a budget carries `X-Request-Cost` and
//! `X-Rate-Limit-Remaining`.
//!
//! Admin calls (tests, demos):
//!
//! * `POST /_sandbox/ltiaas/launches` mints an ltik and a service key for a
//!   launch: `{"context_id", "resource_link_id", "user_id", "roles"?: [...],
//!   "user_name"?, "context_title"?, "resource_link_title"?, "ags"?: true,
//!   "line_item"?: {"label", "score_maximum", "id"?}, "members"?: [{"user_id",
//!   "roles"}]}` → `{"ltik", "service_key", "platform_id", "line_item_id"}`.
//!   Users without a Learner role are "not a student" to the LMS.
//! * `POST /_sandbox/ltiaas/lineitems` `{"context_id", "resource_link_id"?,
//!   "label"?, "score_maximum"?, "id"?, "tag"?, "resource_id"?, "count"?}`
//!   creates line items (an `id` of your choosing, e.g. with `/`, `?`, `%`).
//! * `POST /_sandbox/ltiaas/revoke` `{"service_key"}`, `{"ltik"}` or
//!   `{"context_id", "resource_link_id"}` makes keys stale (401 from then on).
//! * `POST /_sandbox/ltiaas/refusals` `{"context_id", "user_id"?, "refusal":
//!   "not_a_student" | "course_concluded" | "max_attempts" | "none"}`.
//! * `GET /_sandbox/ltiaas/state`: request counts, every score post (to count
//!   duplicates), stored results and line items. Never shows a key. Also
//!   `score_writes` (`{line item id: {user id: n}}`, score posts that passed
//!   authentication, found their line item and named a `userId`, whatever the
//!   answer), `score_reads` (`{line item id: n}`, result reads likewise, every
//!   page), `total_score_writes`, `total_score_reads`, `throttled` (requests the
//!   budget turned away) and `budget_remaining` (`null` without a budget).
//! * `POST /_sandbox/ltiaas/reset`: forget scores, posts and counters, and fill
//!   the budget's bucket again.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Shared;
use super::faults::Fault;
use passback::ltiaas::client::encode_component;

const LEARNER: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner";

/// A line item held by the sandbox LMS.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SbLineItem {
    id: String,
    label: String,
    score_maximum: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_link_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Refusal {
    None,
    NotAStudent,
    CourseConcluded,
    MaxAttempts,
}

#[derive(Debug, Clone, Default)]
struct Member {
    roles: Vec<String>,
    refusal: Option<Refusal>,
}

#[derive(Debug, Clone, Default)]
struct ContextState {
    title: Option<String>,
    label: Option<String>,
    concluded: bool,
    members: HashMap<String, Member>,
    line_items: Vec<SbLineItem>,
}

#[derive(Debug, Clone)]
struct Launch {
    context_id: String,
    resource_link_id: String,
    resource_link_title: Option<String>,
    user_id: String,
    user_name: Option<String>,
    email: Option<String>,
    roles: Vec<String>,
    service_key: Option<String>,
    expired: bool,
}

#[derive(Debug, Clone)]
struct KeyState {
    context_id: String,
    resource_link_id: String,
    revoked: bool,
}

/// One stored result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SbScore {
    line_item_id: String,
    user_id: String,
    result_score: Option<f64>,
    result_maximum: Option<f64>,
    comment: Option<String>,
    timestamp: String,
    activity_progress: String,
    grading_progress: String,
}

/// One score POST as received (accepted or not), for counting duplicates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ScorePost {
    line_item_id: String,
    user_id: Option<String>,
    score_given: Option<f64>,
    score_maximum: Option<f64>,
    timestamp: Option<String>,
    status: u16,
    accepted: bool,
}

/// The sandbox's LTIAAS state.
#[derive(Debug)]
pub(crate) struct LtiaasState {
    api_key: String,
    platform_id: String,
    /// The sandbox's own base URL (for line item ids and `next` links).
    base: String,
    page_size: usize,
    counter: u64,
    ltiks: HashMap<String, Launch>,
    keys: HashMap<String, KeyState>,
    contexts: BTreeMap<String, ContextState>,
    scores: BTreeMap<(String, String), SbScore>,
    posts: Vec<ScorePost>,
    requests: BTreeMap<&'static str, u64>,
    /// Score posts per line item and user: those that passed authentication, named a line
    /// item of the caller's context and carried a `userId`, whatever the answer.
    score_writes: BTreeMap<String, BTreeMap<String, u64>>,
    /// Result reads per line item: those that passed authentication and named a line item
    /// of the caller's context, whatever the answer (every page counts).
    score_reads: BTreeMap<String, u64>,
    /// API requests the budget turned away.
    throttled: u64,
}

impl LtiaasState {
    pub(crate) fn new(api_key: String, seed: u64, base: String, page_size: usize) -> Self {
        Self {
            api_key,
            platform_id: format!("sandbox-lms-{seed:x}"),
            base,
            page_size: page_size.max(1),
            counter: 0,
            ltiks: HashMap::new(),
            keys: HashMap::new(),
            contexts: BTreeMap::new(),
            scores: BTreeMap::new(),
            posts: Vec::new(),
            requests: BTreeMap::new(),
            score_writes: BTreeMap::new(),
            score_reads: BTreeMap::new(),
            throttled: 0,
        }
    }

    fn mint(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{}-{}", self.counter, uuid::Uuid::new_v4().simple())
    }

    fn new_line_item_id(&mut self, context_id: &str) -> String {
        self.counter += 1;
        format!(
            "{}/lms/courses/{}/line_items/{}",
            self.base,
            encode_component(context_id),
            self.counter
        )
    }
}

// ---------------------------------------------------------------------------
// Answers in LTIAAS's shapes.

fn ltiaas_error(status: StatusCode, message: &str, description: &str) -> Response {
    (
        status,
        Json(json!({
            "status": status.as_u16(),
            "error": status.canonical_reason().unwrap_or("Error"),
            "details": {"message": message, "description": description},
        })),
    )
        .into_response()
}

fn validation_error(errors: Vec<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "status": 400,
            "error": "Bad Request",
            "details": {"errors": errors},
        })),
    )
        .into_response()
}

/// An error the LMS raised, as LTIAAS forwards it.
fn external_error(status: StatusCode, body_received: Value, url: &str) -> Response {
    (
        status,
        Json(json!({
            "status": status.as_u16(),
            "error": status.canonical_reason().unwrap_or("Error"),
            "details": {"bodyReceived": body_received, "externalError": true, "externalUrl": url},
        })),
    )
        .into_response()
}

fn fault_response(fault: Fault, retry_after: u64, request_cost: f64) -> Response {
    if let Some(r) = super::infrastructure_fault(fault, retry_after, request_cost) {
        return r;
    }
    match fault {
        Fault::RateLimit => {
            let mut r = ltiaas_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_REQUESTS",
                "Too many requests, please slow down.",
            );
            if let Ok(v) = retry_after.to_string().parse() {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Fault::MalformedXml => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"lineItems":[{"id":"#,
        )
            .into_response(),
        Fault::Reset => super::faults::reset_mid_body("application/json", b"{\"lineItems\":["),
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

/// Count the request, charge the budget and apply the fault plan around `answer` (the
/// request's own handling, run only when neither the budget nor a fault stops it). The
/// state lock is not held while sleeping. PHP notice faults answer normally here.
async fn metered(st: &Shared, kind: &'static str, answer: impl Future<Output = Response>) -> Response {
    let adm = {
        let mut s = st.lock().await;
        *s.ltiaas.requests.entry(kind).or_default() += 1;
        *s.ltiaas.requests.entry("total").or_default() += 1;
        let adm = s.faults.admit(Instant::now());
        if adm.throttled().is_some() {
            s.ltiaas.throttled += 1;
        }
        adm
    };
    if let (Some(how), Some(charge)) = (adm.throttled(), adm.charge) {
        return super::with_budget(super::throttle_response(how, charge), Some(charge));
    }
    if !adm.delay.is_zero() {
        crate::faults::sleep_latency(adm.delay).await;
    }
    let resp = match adm.fault.filter(|f| f.php_notice().is_none()) {
        None => answer.await,
        Some(f) => {
            if f == Fault::Hang {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            fault_response(f, adm.retry_after, adm.request_cost)
        }
    };
    super::with_budget(resp, adm.charge)
}

/// An answer that ends a request early (boxed: responses are large).
type Reject = Box<Response>;

/// Who is calling, once the credentials check out.
#[derive(Debug, Clone)]
enum Caller {
    Ltik(String),
    Service { context_id: String },
}

impl Caller {
    fn context_id(&self, s: &LtiaasState) -> Option<String> {
        match self {
            Caller::Ltik(t) => s.ltiks.get(t).map(|l| l.context_id.clone()),
            Caller::Service { context_id } => Some(context_id.clone()),
        }
    }
}

fn authenticate(s: &LtiaasState, headers: &HeaderMap, ltik_only: bool) -> Result<Caller, Reject> {
    let unauthorized = StatusCode::UNAUTHORIZED;
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    let (scheme, creds) = raw.split_once(' ').unwrap_or((raw, ""));
    let malformed = || {
        ltiaas_error(
            unauthorized,
            "MISSING_OR_MALFORMED_AUTHORIZATION_HEADER",
            "Expected 'LTIK-AUTH-V2 <API_KEY>:<LTIK>' or 'SERVICE-AUTH-V1 <API_KEY>:<SERVICE_KEY>'.",
        )
    };
    let ltik_refused = || {
        ltiaas_error(
            unauthorized,
            "INVALID_LTIK_AUTH_AUTHORIZATION_HEADER",
            "Invalid or expired ltik.",
        )
    };
    let Some((api_key, token)) = creds.trim().split_once(':') else {
        return Err(Box::new(malformed()));
    };
    if api_key.is_empty() || token.is_empty() {
        return Err(Box::new(malformed()));
    }
    match scheme {
        "LTIK-AUTH-V2" | "SERVICE-AUTH-V1" => {}
        _ => return Err(Box::new(malformed())),
    }
    if api_key != s.api_key {
        return Err(Box::new(ltiaas_error(
            unauthorized,
            "INVALID_API_KEY",
            "Invalid API key.",
        )));
    }
    match scheme {
        "LTIK-AUTH-V2" => match s.ltiks.get(token) {
            Some(l) if !l.expired => Ok(Caller::Ltik(token.to_string())),
            _ => Err(Box::new(ltik_refused())),
        },
        _ if ltik_only => Err(Box::new(ltiaas_error(
            unauthorized,
            "INVALID_LTIK_AUTH_AUTHORIZATION_HEADER",
            "This endpoint only accepts LTIK-AUTH-V2 authentication.",
        ))),
        _ => match s.keys.get(token) {
            Some(k) if !k.revoked => Ok(Caller::Service {
                context_id: k.context_id.clone(),
            }),
            _ => Err(Box::new(ltiaas_error(
                unauthorized,
                "INVALID_SERVICE_KEY_AUTH_AUTHORIZATION_HEADER",
                "Invalid or expired service key.",
            ))),
        },
    }
}

fn query_pairs(q: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// One page of `items` and the LMS-style `next` link (made by `next_url(page)`).
fn paginate<T: Clone>(
    items: &[T],
    page: usize,
    per_page: usize,
    next_url: impl Fn(usize) -> String,
) -> (Vec<T>, Option<String>) {
    let start = (page.saturating_sub(1)) * per_page;
    let chunk: Vec<T> = items.iter().skip(start).take(per_page).cloned().collect();
    let next = (start + per_page < items.len()).then(|| next_url(page + 1));
    (chunk, next)
}

/// Read `?url=` (an LMS page link this sandbox made) back into its query parameters.
fn page_link_params(s: &LtiaasState, link: &str, path: &str) -> Result<HashMap<String, String>, Reject> {
    let bad = || {
        validation_error(vec![format!(
            "url: {link:?} is not a page link this LMS gave out (pass the 'next' value back URL-encoded once)"
        )])
    };
    let Ok(u) = url::Url::parse(link) else {
        return Err(Box::new(bad()));
    };
    if !link.starts_with(&format!("{}{path}", s.base)) {
        return Err(Box::new(bad()));
    }
    Ok(query_pairs(u.query()))
}

fn per_page(s: &LtiaasState, q: &HashMap<String, String>) -> Result<usize, Reject> {
    match q.get("limit").or_else(|| q.get("per_page")) {
        None => Ok(s.page_size),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(Box::new(validation_error(vec![format!(
                "limit: {v:?} must be an integer of 1 or more"
            )]))),
        },
    }
}

// ---------------------------------------------------------------------------
// The API.

/// `GET /api/idtoken`.
pub(crate) async fn idtoken(State(st): State<Shared>, headers: HeaderMap) -> Response {
    metered(&st.clone(), "idtoken", idtoken_inner(State(st), headers)).await
}

async fn idtoken_inner(State(st): State<Shared>, headers: HeaderMap) -> Response {
    let s = st.lock().await;
    let l = &s.ltiaas;
    let ltik = match authenticate(l, &headers, true) {
        Ok(Caller::Ltik(t)) => t,
        Ok(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Err(r) => return *r,
    };
    let Some(launch) = l.ltiks.get(&ltik) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let ctx = l.contexts.get(&launch.context_id);
    let tied: Vec<&SbLineItem> = ctx
        .map(|c| {
            c.line_items
                .iter()
                .filter(|li| li.resource_link_id.as_deref() == Some(launch.resource_link_id.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let ags = launch.service_key.is_some();
    let mut ags_json = json!({"available": ags});
    if let [one] = tied.as_slice() {
        ags_json["lineItemId"] = json!(one.id);
    }
    let mut services = json!({
        "deepLinking": {"available": false},
        "namesAndRoles": {"available": ags},
        "assignmentAndGrades": ags_json,
    });
    if let Some(k) = &launch.service_key {
        services["serviceKey"] = json!(k);
    }
    Json(json!({
        "ltiVersion": "1.3.0",
        "user": {
            "id": launch.user_id,
            "roles": launch.roles,
            "name": launch.user_name,
            "email": launch.email,
        },
        "platform": {
            "id": l.platform_id,
            "url": format!("{}/lms", l.base),
            "clientId": "passback-sandbox",
            "deploymentId": "1",
            "name": "Passback sandbox LMS",
        },
        "launch": {
            "type": "LtiResourceLinkRequest",
            "target": format!("{}/tool", l.base),
            "context": {
                "id": launch.context_id,
                "title": ctx.and_then(|c| c.title.clone()),
                "label": ctx.and_then(|c| c.label.clone()),
                "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
            },
            "resourceLink": {"id": launch.resource_link_id, "title": launch.resource_link_title},
            "custom": {},
        },
        "services": services,
    }))
    .into_response()
}

/// `GET /api/lineitems`.
pub(crate) async fn list_line_items(State(st): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    metered(
        &st.clone(),
        "lineitems",
        list_line_items_inner(State(st), headers, uri),
    )
    .await
}

async fn list_line_items_inner(State(st): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let s = st.lock().await;
    let l = &s.ltiaas;
    let caller = match authenticate(l, &headers, false) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(context_id) = caller.context_id(l) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut q = query_pairs(uri.query());
    let mut page = 1;
    if let Some(link) = q.get("url").cloned() {
        // `url` overrides every other parameter.
        let path = format!("/lms/courses/{}/line_items", encode_component(&context_id));
        q = match page_link_params(l, &link, &path) {
            Ok(p) => p,
            Err(r) => return *r,
        };
        page = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        for (from, to) in [
            ("resource_link_id", "resourceLinkId"),
            ("resource_id", "resourceId"),
        ] {
            if let Some(v) = q.remove(from) {
                q.insert(to.to_string(), v);
            }
        }
    }
    let per = match per_page(l, &q) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let items: Vec<SbLineItem> = l
        .contexts
        .get(&context_id)
        .map(|c| c.line_items.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|li| {
            q.get("resourceLinkId")
                .is_none_or(|v| li.resource_link_id.as_deref() == Some(v.as_str()))
                && q.get("resourceId")
                    .is_none_or(|v| li.resource_id.as_deref() == Some(v.as_str()))
                && q.get("tag").is_none_or(|v| li.tag.as_deref() == Some(v.as_str()))
        })
        .collect();
    let base = format!(
        "{}/lms/courses/{}/line_items",
        l.base,
        encode_component(&context_id)
    );
    let next_url = |p: usize| {
        let mut link = format!("{base}?page={p}&per_page={per}");
        for (k, name) in [
            ("resourceLinkId", "resource_link_id"),
            ("resourceId", "resource_id"),
            ("tag", "tag"),
        ] {
            if let Some(v) = q.get(k) {
                link.push_str(&format!("&{name}={}", encode_component(v)));
            }
        }
        link
    };
    let (chunk, next) = paginate(&items, page, per, next_url);
    let mut body = json!({"lineItems": chunk, "first": next_url(1)});
    if let Some(n) = next {
        body["next"] = json!(n);
    }
    if page > 1 {
        body["prev"] = json!(next_url(page - 1));
    }
    Json(body).into_response()
}

fn parse_json_body(headers: &HeaderMap, body: &Bytes) -> Result<serde_json::Map<String, Value>, Reject> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if ct != "application/json" {
        return Err(Box::new(validation_error(vec![format!(
            "Content-Type must be application/json (got {ct:?})"
        )])));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Box::new(validation_error(vec![
            "the body must be a JSON object".into(),
        ]))),
    }
}

fn opt_string(m: &serde_json::Map<String, Value>, k: &str) -> Option<String> {
    m.get(k).and_then(Value::as_str).map(str::to_string)
}

/// `POST /api/lineitems`.
pub(crate) async fn create_line_item(State(st): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    metered(
        &st.clone(),
        "lineitems_create",
        create_line_item_inner(State(st), headers, body),
    )
    .await
}

async fn create_line_item_inner(State(st): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = st.lock().await;
    let caller = match authenticate(&s.ltiaas, &headers, false) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(context_id) = caller.context_id(&s.ltiaas) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let m = match parse_json_body(&headers, &body) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let mut errors = Vec::new();
    let label = opt_string(&m, "label").filter(|l| !l.trim().is_empty());
    if label.is_none() {
        errors.push("label: required".to_string());
    }
    let max = m.get("scoreMaximum").and_then(Value::as_f64);
    if !max.is_some_and(|v| v > 0.0) {
        errors.push("scoreMaximum: required, a number above 0".into());
    }
    if !errors.is_empty() {
        return validation_error(errors);
    }
    let id = s.ltiaas.new_line_item_id(&context_id);
    let li = SbLineItem {
        id,
        label: label.unwrap_or_default(),
        score_maximum: max.unwrap_or(1.0),
        resource_link_id: opt_string(&m, "resourceLinkId"),
        resource_id: opt_string(&m, "resourceId"),
        tag: opt_string(&m, "tag"),
    };
    s.ltiaas
        .contexts
        .entry(context_id)
        .or_default()
        .line_items
        .push(li.clone());
    (StatusCode::CREATED, Json(li)).into_response()
}

fn find_line_item<'a>(s: &'a LtiaasState, context_id: &str, id: &str) -> Option<&'a SbLineItem> {
    s.contexts
        .get(context_id)
        .and_then(|c| c.line_items.iter().find(|li| li.id == id))
}

fn line_item_not_found(s: &LtiaasState, id: &str) -> Response {
    external_error(
        StatusCode::NOT_FOUND,
        json!({"errors": [{"message": "The specified resource does not exist."}]}),
        &format!("{}/lms/line_items/{}", s.base, encode_component(id)),
    )
}

/// `GET /api/lineitems/{id}`.
pub(crate) async fn get_line_item(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    metered(
        &st.clone(),
        "lineitem",
        get_line_item_inner(State(st), Path(id), headers),
    )
    .await
}

async fn get_line_item_inner(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let s = st.lock().await;
    let l = &s.ltiaas;
    let caller = match authenticate(l, &headers, false) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let context_id = caller.context_id(l).unwrap_or_default();
    match find_line_item(l, &context_id, &id) {
        Some(li) => Json(li).into_response(),
        None => line_item_not_found(l, &id),
    }
}

const ACTIVITY: [&str; 5] = ["Initialized", "Started", "InProgress", "Submitted", "Completed"];
const GRADING: [&str; 5] = ["FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"];

fn parse_timestamp(t: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
}

/// `POST /api/lineitems/{id}/scores`.
pub(crate) async fn post_score(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    metered(
        &st.clone(),
        "scores_post",
        post_score_inner(State(st), Path(id), headers, body),
    )
    .await
}

async fn post_score_inner(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = st.lock().await;
    let l = &mut s.ltiaas;
    let caller = match authenticate(l, &headers, false) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let context_id = caller.context_id(l).unwrap_or_default();
    let Some(li) = find_line_item(l, &context_id, &id).cloned() else {
        return line_item_not_found(l, &id);
    };
    let m = match parse_json_body(&headers, &body) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let user_id = opt_string(&m, "userId").filter(|u| !u.is_empty());
    let given = m.get("scoreGiven");
    let score_given = given.and_then(Value::as_f64);
    let score_maximum = m.get("scoreMaximum").and_then(Value::as_f64);
    let timestamp = opt_string(&m, "timestamp");
    let activity = opt_string(&m, "activityProgress");
    let grading = opt_string(&m, "gradingProgress");
    if let Some(u) = &user_id {
        *l.score_writes
            .entry(li.id.clone())
            .or_default()
            .entry(u.clone())
            .or_default() += 1;
    }
    let mut post = ScorePost {
        line_item_id: li.id.clone(),
        user_id: user_id.clone(),
        score_given,
        score_maximum,
        timestamp: timestamp.clone(),
        status: 400,
        accepted: false,
    };

    // LTIAAS's own validation.
    let mut errors = Vec::new();
    if user_id.is_none() {
        errors.push("userId: required".to_string());
    }
    if !activity.as_deref().is_some_and(|a| ACTIVITY.contains(&a)) {
        errors.push(format!(
            "activityProgress: must be one of {}",
            ACTIVITY.join(", ")
        ));
    }
    if !grading.as_deref().is_some_and(|g| GRADING.contains(&g)) {
        errors.push(format!("gradingProgress: must be one of {}", GRADING.join(", ")));
    }
    match (given, score_given) {
        (None | Some(Value::Null), _) => {}
        (Some(_), Some(v)) if v >= 0.0 => {
            if !score_maximum.is_some_and(|m| m > 0.0) {
                errors.push("scoreMaximum: required when scoreGiven is present, a number above 0".into());
            }
        }
        _ => errors.push("scoreGiven: must be a number of 0 or more".into()),
    }
    let ts = timestamp.as_deref().and_then(parse_timestamp);
    match (&timestamp, ts) {
        (None, _) => errors.push("timestamp: required".into()),
        (Some(t), None) => errors.push(format!("timestamp: {t:?} is not an ISO 8601 date-time")),
        (Some(t), Some(_)) if !t.contains('.') => {
            errors.push(format!("timestamp: {t:?} needs sub-second precision"))
        }
        _ => {}
    }
    if !errors.is_empty() {
        l.posts.push(post);
        return validation_error(errors);
    }
    let (Some(user_id), Some(ts), Some(timestamp)) = (user_id, ts, timestamp) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };

    // What the LMS checks (answered as LTIAAS forwards LMS errors).
    let lms_url = format!("{}/scores", li.id);
    let ctx = l.contexts.get(&context_id);
    let member = ctx.and_then(|c| c.members.get(&user_id));
    let refusal = if ctx.is_some_and(|c| c.concluded) {
        Some(Refusal::CourseConcluded)
    } else {
        match member {
            None => Some(Refusal::NotAStudent),
            Some(m) => match m.refusal {
                Some(Refusal::None) | None => {
                    let student = m.roles.iter().any(|r| {
                        passback::lti::roles::normalize_roles(std::slice::from_ref(r))
                            == passback::model::Role::Learner
                    });
                    (!student).then_some(Refusal::NotAStudent)
                }
                Some(r) => Some(r),
            },
        }
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let refused = match refusal {
        Some(Refusal::NotAStudent) => Some(external_error(
            unprocessable,
            json!({"errors": {"type": "unprocessable_entity", "message": "User not found in course or is not a student"}}),
            &lms_url,
        )),
        Some(Refusal::CourseConcluded) => Some(external_error(
            unprocessable,
            json!(json!({"errors": {"type": "unprocessable_entity", "message": "This course has concluded. AGS requests will no longer be accepted for this course."}}).to_string()),
            &lms_url,
        )),
        Some(Refusal::MaxAttempts) => Some(external_error(
            unprocessable,
            json!("The maximum number of allowed attempts has been reached for this submission"),
            &lms_url,
        )),
        Some(Refusal::None) | None => None,
    };
    if let Some(r) = refused {
        post.status = 422;
        l.posts.push(post);
        return r;
    }
    let key = (li.id.clone(), user_id.clone());
    if let Some(prev) = l.scores.get(&key)
        && let Some(prev_ts) = parse_timestamp(&prev.timestamp)
        && ts <= prev_ts
    {
        post.status = 400;
        let prev_t = prev.timestamp.clone();
        l.posts.push(post);
        return external_error(
            StatusCode::BAD_REQUEST,
            json!({"errors": {"type": "bad_request", "message": format!("Provided timestamp of {timestamp} before last updated timestamp of {prev_t}")}}),
            &lms_url,
        );
    }
    let fully_graded = grading.as_deref() == Some("FullyGraded");
    l.scores.insert(
        key,
        SbScore {
            line_item_id: li.id.clone(),
            user_id,
            // Like Canvas, scores that are not FullyGraded do not set a grade.
            result_score: if fully_graded { score_given } else { None },
            result_maximum: score_maximum.or(Some(li.score_maximum)),
            comment: opt_string(&m, "comment"),
            timestamp,
            activity_progress: activity.unwrap_or_default(),
            grading_progress: grading.unwrap_or_default(),
        },
    );
    post.status = 204;
    post.accepted = true;
    l.posts.push(post);
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /api/lineitems/{id}/scores`.
pub(crate) async fn get_scores(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    metered(
        &st.clone(),
        "scores_get",
        get_scores_inner(State(st), Path(id), headers, uri),
    )
    .await
}

async fn get_scores_inner(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let mut s = st.lock().await;
    let caller = match authenticate(&s.ltiaas, &headers, false) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let context_id = caller.context_id(&s.ltiaas).unwrap_or_default();
    let Some(li) = find_line_item(&s.ltiaas, &context_id, &id).cloned() else {
        return line_item_not_found(&s.ltiaas, &id);
    };
    *s.ltiaas.score_reads.entry(li.id.clone()).or_default() += 1;
    let l = &s.ltiaas;
    let mut q = query_pairs(uri.query());
    let mut page = 1;
    let results_path = "/lms/results";
    if let Some(link) = q.get("url").cloned() {
        q = match page_link_params(l, &link, results_path) {
            Ok(p) => p,
            Err(r) => return *r,
        };
        if q.get("line_item").map(String::as_str) != Some(li.id.as_str()) {
            return validation_error(vec!["url: the page link belongs to another line item".into()]);
        }
        page = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        if let Some(u) = q.remove("user_id") {
            q.insert("userId".into(), u);
        }
    }
    let per = match per_page(l, &q) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let results: Vec<Value> = l
        .scores
        .values()
        .filter(|r| r.line_item_id == li.id)
        .filter(|r| q.get("userId").is_none_or(|u| &r.user_id == u))
        .map(|r| {
            json!({
                "id": format!("{}/results/{}", li.id, encode_component(&r.user_id)),
                "userId": r.user_id,
                "scoreOf": li.id,
                "timestamp": r.timestamp,
                "resultScore": r.result_score,
                "resultMaximum": r.result_maximum,
                "comment": r.comment,
            })
        })
        .collect();
    let next_url = |p: usize| {
        let mut link = format!(
            "{}{results_path}?line_item={}&page={p}&per_page={per}",
            l.base,
            encode_component(&li.id)
        );
        if let Some(u) = q.get("userId") {
            link.push_str(&format!("&user_id={}", encode_component(u)));
        }
        link
    };
    let (chunk, next) = paginate(&results, page, per, next_url);
    let mut body = json!({"scores": chunk});
    if let Some(n) = next {
        body["next"] = json!(n);
    }
    Json(body).into_response()
}

/// Any other `/api/…` path (e.g. a line item id sent with raw `/`).
pub(crate) async fn api_not_found(uri: Uri) -> Response {
    ltiaas_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &format!("No LTIAAS endpoint at {}", uri.path()),
    )
}

// ---------------------------------------------------------------------------
// Admin calls.

#[derive(Debug, Deserialize)]
pub(crate) struct LineItemSpec {
    label: Option<String>,
    score_maximum: Option<f64>,
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct MemberSpec {
    user_id: String,
    #[serde(default = "learner_roles")]
    roles: Vec<String>,
}

fn learner_roles() -> Vec<String> {
    vec![LEARNER.to_string()]
}

fn yes() -> bool {
    true
}

/// The body of `POST /_sandbox/ltiaas/launches`.
#[derive(Debug, Deserialize)]
pub(crate) struct LaunchSpec {
    context_id: String,
    resource_link_id: String,
    user_id: String,
    #[serde(default = "learner_roles")]
    roles: Vec<String>,
    user_name: Option<String>,
    email: Option<String>,
    context_title: Option<String>,
    context_label: Option<String>,
    resource_link_title: Option<String>,
    /// Whether the launch context has Assignment and Grades (and so a service key).
    #[serde(default = "yes")]
    ags: bool,
    line_item: Option<LineItemSpec>,
    #[serde(default)]
    members: Vec<MemberSpec>,
}

fn admin_bad(msg: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg}))).into_response()
}

/// `POST /_sandbox/ltiaas/launches`: mint an ltik (and a service key) for a launch.
pub(crate) async fn admin_launch(State(st): State<Shared>, Json(b): Json<LaunchSpec>) -> Response {
    if [&b.context_id, &b.resource_link_id, &b.user_id]
        .iter()
        .any(|v| v.trim().is_empty())
    {
        return admin_bad("context_id, resource_link_id and user_id must not be empty");
    }
    let mut s = st.lock().await;
    let l = &mut s.ltiaas;
    let ltik = l.mint("ltik");
    let service_key = b.ags.then(|| l.mint("sk"));
    let mut line_item_id = None;
    if let Some(spec) = &b.line_item {
        let id = match &spec.id {
            Some(id) => id.clone(),
            None => l.new_line_item_id(&b.context_id),
        };
        let ctx = l.contexts.entry(b.context_id.clone()).or_default();
        if !ctx.line_items.iter().any(|li| li.id == id) {
            ctx.line_items.push(SbLineItem {
                id: id.clone(),
                label: spec.label.clone().unwrap_or_else(|| "Sandbox activity".into()),
                score_maximum: spec.score_maximum.filter(|m| *m > 0.0).unwrap_or(10.0),
                resource_link_id: Some(b.resource_link_id.clone()),
                resource_id: None,
                tag: None,
            });
        }
        line_item_id = Some(id);
    }
    let ctx = l.contexts.entry(b.context_id.clone()).or_default();
    if b.context_title.is_some() {
        ctx.title = b.context_title.clone();
    }
    if b.context_label.is_some() {
        ctx.label = b.context_label.clone();
    }
    let refusal_of = |ctx: &ContextState, u: &str| ctx.members.get(u).and_then(|m| m.refusal);
    let keep = refusal_of(ctx, &b.user_id);
    ctx.members.insert(
        b.user_id.clone(),
        Member {
            roles: b.roles.clone(),
            refusal: keep,
        },
    );
    for m in &b.members {
        let keep = refusal_of(ctx, &m.user_id);
        ctx.members.insert(
            m.user_id.clone(),
            Member {
                roles: m.roles.clone(),
                refusal: keep,
            },
        );
    }
    if let Some(k) = &service_key {
        l.keys.insert(
            k.clone(),
            KeyState {
                context_id: b.context_id.clone(),
                resource_link_id: b.resource_link_id.clone(),
                revoked: false,
            },
        );
    }
    l.ltiks.insert(
        ltik.clone(),
        Launch {
            context_id: b.context_id,
            resource_link_id: b.resource_link_id,
            resource_link_title: b.resource_link_title,
            user_id: b.user_id,
            user_name: b.user_name,
            email: b.email,
            roles: b.roles,
            service_key: service_key.clone(),
            expired: false,
        },
    );
    Json(json!({
        "ltik": ltik,
        "service_key": service_key,
        "platform_id": l.platform_id,
        "line_item_id": line_item_id,
    }))
    .into_response()
}

/// The body of `POST /_sandbox/ltiaas/lineitems`.
#[derive(Debug, Deserialize)]
pub(crate) struct LineItemsSpec {
    context_id: String,
    resource_link_id: Option<String>,
    label: Option<String>,
    score_maximum: Option<f64>,
    id: Option<String>,
    tag: Option<String>,
    resource_id: Option<String>,
    count: Option<usize>,
}

/// `POST /_sandbox/ltiaas/lineitems`: create line items directly in the LMS.
pub(crate) async fn admin_line_items(State(st): State<Shared>, Json(b): Json<LineItemsSpec>) -> Response {
    let count = b.count.unwrap_or(1);
    if count == 0 || count > 1000 || (b.id.is_some() && count != 1) {
        return admin_bad("count must be 1 to 1000, and exactly 1 when an id is given");
    }
    let mut s = st.lock().await;
    let l = &mut s.ltiaas;
    let mut made = Vec::new();
    for i in 0..count {
        let id = match &b.id {
            Some(id) => id.clone(),
            None => l.new_line_item_id(&b.context_id),
        };
        let label = match (&b.label, count) {
            (Some(lb), 1) => lb.clone(),
            (Some(lb), _) => format!("{lb} {}", i + 1),
            (None, _) => format!("Activity {}", i + 1),
        };
        let li = SbLineItem {
            id,
            label,
            score_maximum: b.score_maximum.filter(|m| *m > 0.0).unwrap_or(10.0),
            resource_link_id: b.resource_link_id.clone(),
            resource_id: b.resource_id.clone(),
            tag: b.tag.clone(),
        };
        let ctx = l.contexts.entry(b.context_id.clone()).or_default();
        if ctx.line_items.iter().any(|x| x.id == li.id) {
            return admin_bad("a line item with this id already exists in the context");
        }
        ctx.line_items.push(li.clone());
        made.push(li);
    }
    Json(json!({"line_items": made})).into_response()
}

/// The body of `POST /_sandbox/ltiaas/revoke`.
#[derive(Debug, Deserialize)]
pub(crate) struct RevokeSpec {
    service_key: Option<String>,
    ltik: Option<String>,
    context_id: Option<String>,
    resource_link_id: Option<String>,
}

/// `POST /_sandbox/ltiaas/revoke`: make service keys stale or ltiks expired.
pub(crate) async fn admin_revoke(State(st): State<Shared>, Json(b): Json<RevokeSpec>) -> Response {
    let mut s = st.lock().await;
    let l = &mut s.ltiaas;
    let mut n = 0;
    if let Some(t) = &b.ltik
        && let Some(launch) = l.ltiks.get_mut(t)
    {
        launch.expired = true;
        n += 1;
    }
    for (k, st) in l.keys.iter_mut() {
        let by_key = b.service_key.as_deref() == Some(k.as_str());
        let by_link = b.context_id.as_deref() == Some(st.context_id.as_str())
            && b.resource_link_id.as_deref() == Some(st.resource_link_id.as_str());
        if (by_key || by_link) && !st.revoked {
            st.revoked = true;
            n += 1;
        }
    }
    Json(json!({"revoked": n})).into_response()
}

/// The body of `POST /_sandbox/ltiaas/refusals`.
#[derive(Debug, Deserialize)]
pub(crate) struct RefusalSpec {
    context_id: String,
    user_id: Option<String>,
    refusal: Refusal,
}

/// `POST /_sandbox/ltiaas/refusals`: make the LMS refuse scores for a user or a whole context.
pub(crate) async fn admin_refusals(State(st): State<Shared>, Json(b): Json<RefusalSpec>) -> Response {
    let mut s = st.lock().await;
    let ctx = s.ltiaas.contexts.entry(b.context_id).or_default();
    match (b.user_id, b.refusal) {
        (None, Refusal::CourseConcluded) => ctx.concluded = true,
        (None, Refusal::None) => ctx.concluded = false,
        (None, _) => return admin_bad("not_a_student and max_attempts need a user_id"),
        (Some(u), r) => {
            let m = ctx.members.entry(u).or_insert_with(|| Member {
                roles: learner_roles(),
                refusal: None,
            });
            m.refusal = (r != Refusal::None).then_some(r);
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /_sandbox/ltiaas/state`: counters, score posts, results and line items (never keys).
pub(crate) async fn admin_state(State(st): State<Shared>) -> Response {
    let mut s = st.lock().await;
    let budget_remaining = s.faults.remaining(Instant::now());
    let l = &s.ltiaas;
    let line_items: BTreeMap<&String, Vec<&SbLineItem>> = l
        .contexts
        .iter()
        .map(|(c, st)| (c, st.line_items.iter().collect()))
        .collect();
    let total_score_writes: u64 = l.score_writes.values().flat_map(|m| m.values()).sum();
    Json(json!({
        "platform_id": l.platform_id,
        "requests": l.requests,
        "throttled": l.throttled,
        "budget_remaining": budget_remaining,
        "score_writes": l.score_writes,
        "score_reads": l.score_reads,
        "total_score_writes": total_score_writes,
        "total_score_reads": l.score_reads.values().sum::<u64>(),
        "score_posts": l.posts,
        "scores": l.scores.values().collect::<Vec<_>>(),
        "line_items": line_items,
        "service_keys": l.keys.len(),
        "revoked_service_keys": l.keys.values().filter(|k| k.revoked).count(),
    }))
    .into_response()
}

/// `POST /_sandbox/ltiaas/reset`: forget scores, posts and counters and fill the budget's
/// bucket again (keeps launches, line items and the fault settings).
pub(crate) async fn admin_reset(State(st): State<Shared>) -> Response {
    let mut s = st.lock().await;
    s.ltiaas.scores.clear();
    s.ltiaas.posts.clear();
    s.ltiaas.requests.clear();
    s.ltiaas.score_writes.clear();
    s.ltiaas.score_reads.clear();
    s.ltiaas.throttled = 0;
    s.faults.refill();
    StatusCode::NO_CONTENT.into_response()
}
