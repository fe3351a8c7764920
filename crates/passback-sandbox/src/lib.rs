//! The sandbox LMS: a real HTTP peer on loopback that behaves like Canvas,
//! Moodle or Sakai (LTI 1.1 Basic Outcomes), for demos, practice and tests.
//! Test and demo infrastructure in its own crate: the core library (`passback`)
//! never depends on it; the CLI (`passback sandbox`, `passback demo`), the
//! desktop shell (the demo workspace) and the tests do.
//!
//! It verifies what real LMSs verify (OAuth signature, body hash, a 90-minute
//! timestamp window, nonce replay, Content-Type), stores results per
//! sourcedid, answers failures in the chosen dialect and injects faults
//! reproducibly. Admin endpoints under `/_sandbox/` let tests and the demo
//! workspace register sourcedids, change faults and read what was stored.
//! Like Canvas, the Canvas dialect stores a score as a percentage with two
//! decimals (rounded to 4 decimals: 1/3 is read back as 0.3333); Moodle and
//! Sakai keep it as received. An optional request budget (see
//! [`faults::Budget`]) imitates Canvas's throttling.
//!
//! The same server also speaks the LTIAAS service API under `/api/` (ID
//! tokens, line items, scores) with its own admin calls under
//! `/_sandbox/ltiaas/` to mint ltiks and service keys; see [`ltiaas`].

pub mod demo;
pub mod faults;
mod lti11;
pub mod ltiaas;
pub mod pox_server;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use faults::{FaultConfig, FaultPlan};
use passback::lti11::oauth::NonceCache;
use passback::{Error, Result};

/// How the sandbox shapes its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// 401/415 for OAuth and Content-Type, 422 + `ext_canvas_error_code` for failures.
    Canvas,
    /// Always HTTP 200; failures as `codeMajor` failure with severity status.
    Moodle,
    /// Always HTTP 200; failures with severity error and `key: detail` descriptions.
    Sakai,
}

impl Dialect {
    /// The outcome endpoint path each LMS uses.
    pub fn outcome_path(self) -> &'static str {
        match self {
            Dialect::Canvas => "/api/lti/v1/tools/1/grade_passback",
            Dialect::Moodle => "/mod/lti/service.php",
            Dialect::Sakai => "/imsblis/service/",
        }
    }
}

/// What a registered sourcedid stands for; anything but `valid` fails the way that LMS fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourcedidState {
    Valid,
    /// The learner was dropped from the course.
    UserNotInCourse,
    /// The course is concluded; writes are blocked, reads allowed.
    CourseConcluded,
    /// The assignment has no points possible.
    NoPointsPossible,
    /// The assignment was deleted.
    AssignmentInvalid,
}

/// What the sandbox holds for one sourcedid.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredResult {
    /// The normalized score (0.0–1.0): as received (Moodle, Sakai) or as hundredths
    /// of a point of the assignment's points possible (Canvas).
    pub score: Option<f64>,
    pub result_text: Option<String>,
    pub result_url: Option<String>,
    pub result_lti_launch_url: Option<String>,
    pub result_total_score: Option<f64>,
    pub submitted_at: Option<String>,
    pub updated_at: String,
}

/// Sandbox settings.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub listen: SocketAddr,
    pub dialect: Dialect,
    pub seed: u64,
    pub consumer_key: String,
    pub consumer_secret: String,
    /// The sandbox's clock minus the real clock, in seconds (to practise clock skew).
    pub clock_offset_secs: i64,
    /// Accepted distance between `oauth_timestamp` and the sandbox clock.
    pub timestamp_window_secs: u64,
    pub faults: FaultConfig,
    pub sourcedids: Vec<String>,
    /// The LTIAAS API key the sandbox accepts (default: derived from the seed).
    pub ltiaas_api_key: String,
    /// LTIAAS listings' page size when the caller gives no `limit`.
    pub ltiaas_page_size: usize,
    /// The points possible of every LTI 1.1 assignment (Canvas keeps hundredths of a
    /// point, so this decides how a score is rounded; 100 = a percentage with two decimals).
    pub points_possible: f64,
}

impl SandboxConfig {
    pub fn new(dialect: Dialect, seed: u64) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("static address"),
            dialect,
            seed,
            consumer_key: "passback-sandbox".into(),
            consumer_secret: format!("sandbox-secret-{seed:016x}"),
            clock_offset_secs: 0,
            timestamp_window_secs: 90 * 60,
            faults: FaultConfig::default(),
            sourcedids: Vec::new(),
            ltiaas_api_key: format!("sandbox-ltiaas-key-{seed:016x}"),
            ltiaas_page_size: 10,
            points_possible: 100.0,
        }
    }
}

/// The JSON line the sandbox prints when it is ready.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxInfo {
    pub base_url: String,
    pub lti11_outcome_url: String,
    pub consumer_key: String,
    pub consumer_secret: String,
    pub dialect: Dialect,
    pub seed: u64,
    /// Base URL of the LTIAAS-compatible API (`/api/...`).
    pub ltiaas_base_url: String,
    /// The API key the LTIAAS API accepts.
    pub ltiaas_api_key: String,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub config: SandboxConfig,
    pub registry: HashMap<String, SourcedidState>,
    pub results: BTreeMap<String, StoredResult>,
    /// Per sourcedid: every request that passed authentication and named it.
    pub request_counts: BTreeMap<String, u64>,
    /// Per sourcedid: replaceResult and deleteResult requests, likewise.
    pub write_counts: BTreeMap<String, u64>,
    /// Per sourcedid: readResult requests, likewise.
    pub read_counts: BTreeMap<String, u64>,
    pub total_requests: u64,
    pub total_writes: u64,
    pub total_reads: u64,
    /// Outcome requests the budget turned away.
    pub throttled: u64,
    pub faults: FaultPlan,
    pub nonces: NonceCache,
    pub message_counter: u64,
    pub ltiaas: ltiaas::LtiaasState,
}

pub(crate) type Shared = Arc<Mutex<Inner>>;

/// Read a sourcedid registry file: one sourcedid per line, `#` comments, optional
/// `<sourcedid> <state>` with a state like `user_not_in_course`.
pub fn read_sourcedids_file(path: &Path) -> Result<Vec<(String, SourcedidState)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(format!("cannot read {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let id = parts.next().unwrap_or_default().to_string();
        let state = match parts.next() {
            None => SourcedidState::Valid,
            Some(s) => serde_json::from_value(serde_json::Value::String(s.into())).map_err(|_| {
                Error::invalid(format!(
                    "{}:{}: unknown state {s:?} (use valid, user_not_in_course, course_concluded, \
                     no_points_possible or assignment_invalid)",
                    path.display(),
                    i + 1
                ))
            })?,
        };
        out.push((id, state));
    }
    Ok(out)
}

/// A running sandbox.
pub struct Sandbox {
    pub info: SandboxInfo,
    pub addr: SocketAddr,
    state: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sandbox {
    /// Bind and start serving in the background.
    pub async fn start(config: SandboxConfig) -> Result<Self> {
        if !config.listen.ip().is_loopback() {
            return Err(Error::invalid(format!(
                "the sandbox listens on loopback only; {} is not a loopback address",
                config.listen
            )));
        }
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let info = SandboxInfo {
            lti11_outcome_url: format!("{base_url}{}", config.dialect.outcome_path()),
            ltiaas_base_url: base_url.clone(),
            ltiaas_api_key: config.ltiaas_api_key.clone(),
            base_url: base_url.clone(),
            consumer_key: config.consumer_key.clone(),
            consumer_secret: config.consumer_secret.clone(),
            dialect: config.dialect,
            seed: config.seed,
        };
        let registry = config
            .sourcedids
            .iter()
            .map(|s| (s.clone(), SourcedidState::Valid))
            .collect();
        let inner = Inner {
            ltiaas: ltiaas::LtiaasState::new(
                config.ltiaas_api_key.clone(),
                config.seed,
                base_url,
                config.ltiaas_page_size,
            ),
            faults: FaultPlan::new(config.faults.clone(), config.seed),
            nonces: NonceCache::new(std::time::Duration::from_secs(config.timestamp_window_secs)),
            config,
            registry,
            results: BTreeMap::new(),
            request_counts: BTreeMap::new(),
            write_counts: BTreeMap::new(),
            read_counts: BTreeMap::new(),
            total_requests: 0,
            total_writes: 0,
            total_reads: 0,
            throttled: 0,
            message_counter: 0,
        };
        let state: Shared = Arc::new(Mutex::new(inner));
        let app = router(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            info,
            addr,
            state,
            shutdown: Some(tx),
            task,
        })
    }

    /// Register sourcedids with a state (same as `POST /_sandbox/sourcedids`).
    pub async fn register(&self, ids: &[(String, SourcedidState)]) {
        let mut s = self.state.lock().await;
        for (id, st) in ids {
            s.registry.insert(id.clone(), *st);
        }
    }

    /// Store a result as if a replaceResult had set it (demo restarts, test set-up).
    pub async fn put_result(&self, sourcedid: &str, score: f64) {
        let mut s = self.state.lock().await;
        s.results.insert(
            sourcedid.to_string(),
            StoredResult {
                score: Some(score),
                updated_at: passback::store::now_rfc3339(),
                ..StoredResult::default()
            },
        );
    }

    /// Stop serving and wait for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

/// The answers a broken LMS front end gives whatever the protocol: a 500 error page, a 503
/// with `Retry-After`, a 200 sign-in page or the old Canvas throttling 403 (costing
/// `request_cost`). `None` for faults each protocol shapes itself.
pub(crate) fn infrastructure_fault(
    fault: faults::Fault,
    retry_after: u64,
    request_cost: f64,
) -> Option<axum::response::Response> {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use faults::Fault;
    Some(match fault {
        Fault::Status500 => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/html")],
            "<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head><body><h1>Something went wrong</h1></body></html>",
        )
            .into_response(),
        Fault::Status503 => (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "text/html".to_string()),
                (header::RETRY_AFTER, retry_after.to_string()),
            ],
            "<html><body><h1>503 Service Unavailable</h1><p>Down for maintenance.</p></body></html>",
        )
            .into_response(),
        Fault::HtmlPage => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><head><title>Sign in</title></head><body><form action=\"/login\">Please sign in</form></body></html>",
        )
            .into_response(),
        Fault::ForbiddenRateLimit => forbidden_rate_limit(request_cost, 0.0),
        _ => return None,
    })
}

/// `X-Rate-Limit-Remaining`.
pub const RATE_LIMIT_REMAINING: &str = "x-rate-limit-remaining";
/// `X-Request-Cost`.
pub const REQUEST_COST: &str = "x-request-cost";

/// Budget units as Canvas writes them: always a float (`50.0`, `612.3456`).
fn units(v: f64) -> String {
    format!("{:?}", (v * 10_000.0).round() / 10_000.0)
}

/// Old Canvas throttling: 403, plain text, no `Retry-After`.
fn forbidden_rate_limit(cost: f64, remaining: f64) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    (
        StatusCode::FORBIDDEN,
        [
            (header::CONTENT_TYPE.as_str(), "text/plain".to_string()),
            (RATE_LIMIT_REMAINING, units(remaining)),
            (REQUEST_COST, units(cost)),
        ],
        faults::FORBIDDEN_RATE_LIMIT_BODY,
    )
        .into_response()
}

/// The answer to a request the budget turned away (both protocols answer alike).
pub(crate) fn throttle_response(
    answer: faults::BudgetAnswer,
    charge: faults::Charge,
) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    match answer {
        faults::BudgetAnswer::Forbidden => forbidden_rate_limit(charge.cost, charge.remaining),
        faults::BudgetAnswer::TooManyRequests => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::CONTENT_TYPE, "application/json")],
            faults::RATE_LIMIT_JSON_BODY,
        )
            .into_response(),
    }
}

/// Add the budget's `X-Request-Cost` and `X-Rate-Limit-Remaining` to an answer (keeping
/// those a scripted 403 already carries).
pub(crate) fn with_budget(
    mut resp: axum::response::Response,
    charge: Option<faults::Charge>,
) -> axum::response::Response {
    let Some(c) = charge else { return resp };
    for (name, value) in [(REQUEST_COST, c.cost), (RATE_LIMIT_REMAINING, c.remaining)] {
        if !resp.headers().contains_key(name)
            && let Ok(v) = axum::http::HeaderValue::from_str(&units(value))
        {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

/// The same answer (status, headers) with `notice` in front of its body, as PHP in
/// debug mode prints it.
pub(crate) async fn with_notice(resp: axum::response::Response, notice: &str) -> axum::response::Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let mut out = Vec::with_capacity(notice.len() + bytes.len());
    out.extend_from_slice(notice.as_bytes());
    out.extend_from_slice(&bytes);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    axum::response::Response::from_parts(parts, axum::body::Body::from(out))
}

fn router(state: Shared) -> Router {
    let mut r = Router::new();
    for d in [Dialect::Canvas, Dialect::Moodle, Dialect::Sakai] {
        r = r.route(d.outcome_path(), post(lti11::outcome));
    }
    r.route("/_sandbox/results", get(lti11::admin_results))
        .route("/_sandbox/sourcedids", post(lti11::admin_register))
        .route("/_sandbox/faults", post(lti11::admin_faults))
        .route("/_sandbox/reset", post(lti11::admin_reset))
        .route("/api/idtoken", get(ltiaas::idtoken))
        .route(
            "/api/lineitems",
            get(ltiaas::list_line_items).post(ltiaas::create_line_item),
        )
        .route("/api/lineitems/{id}", get(ltiaas::get_line_item))
        .route(
            "/api/lineitems/{id}/scores",
            get(ltiaas::get_scores).post(ltiaas::post_score),
        )
        .route("/api/{*rest}", any(ltiaas::api_not_found))
        .route("/_sandbox/ltiaas/launches", post(ltiaas::admin_launch))
        .route("/_sandbox/ltiaas/lineitems", post(ltiaas::admin_line_items))
        .route("/_sandbox/ltiaas/revoke", post(ltiaas::admin_revoke))
        .route("/_sandbox/ltiaas/refusals", post(ltiaas::admin_refusals))
        .route("/_sandbox/ltiaas/state", get(ltiaas::admin_state))
        .route("/_sandbox/ltiaas/reset", post(ltiaas::admin_reset))
        .with_state(state)
}
