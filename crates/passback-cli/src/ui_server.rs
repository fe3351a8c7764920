//! `passback ui-server`: serves the built web UI and the core's commands as
//! `POST /api/<command>` on loopback, so the real UI runs in a real browser
//! (Playwright) against a real ledger, and support sessions work without the
//! desktop app. The command list and JSON dispatch are the core's
//! (`passback::app::commands`), the same the desktop shell routes through.
//!
//! Loopback alone does not keep other web pages out: any page the user visits
//! can send requests to `127.0.0.1`, and DNS rebinding lets a foreign name
//! resolve there. So every request must name the bound address in `Host`
//! (else 403), a present `Origin` must be this server's own (else 403), and
//! every `/api/*` request must carry the per-run token in `X-Passback-Token`
//! (else 401) and, for a POST, a JSON body (`Content-Type: application/json`,
//! else 415). The token is printed once, inside the URL's fragment, which
//! browsers never send to a server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use clap::Args;
use passback::app::jobs::JobQuery;
use passback::app::session::Session;
use passback::progress::Flow;
use passback::{Error, ErrorKind, Result};
use serde_json::Value;
use subtle::ConstantTimeEq;
use tower_http::services::{ServeDir, ServeFile};

/// The header every bridge call carries the per-run token in.
pub const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-passback-token");

/// Bytes of OS randomness in the per-run token (256 bits, printed as hex).
const TOKEN_BYTES: usize = 32;

#[derive(Debug, Args)]
pub struct UiServerArgs {
    /// Address to listen on; must be loopback.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The built web UI (ui/dist).
    #[arg(long, value_name = "DIR", default_value = "ui/dist")]
    pub ui_dir: PathBuf,
}

struct ApiError(Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.0.kind {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(self.0)).into_response()
    }
}

/// A refusal of the guard: `status` with the usual `{kind, message}` body.
fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(Error::invalid(message))).into_response()
}

/// What a request must match to be served: the run's token and the
/// `Host`/`Origin` values that name this server.
struct Guard {
    token: String,
    /// `Host` values naming the bound address (`127.0.0.1:PORT`, `localhost:PORT`).
    hosts: Vec<String>,
    /// The same, as origins (`http://127.0.0.1:PORT`, `http://localhost:PORT`).
    origins: Vec<String>,
}

impl Guard {
    fn new(addr: SocketAddr, token: String) -> Self {
        let ip = match addr {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        let port = addr.port();
        let mut hosts = Vec::new();
        // `localhost` always resolves to loopback (browsers do not ask DNS for it), so
        // no rebinding name can take its place; every other name is refused.
        for name in [ip.as_str(), "localhost"] {
            hosts.push(format!("{name}:{port}"));
            if port == 80 {
                // Browsers leave out the default port.
                hosts.push(name.to_string());
            }
        }
        let origins = hosts.iter().map(|h| format!("http://{h}")).collect();
        Self {
            token,
            hosts,
            origins,
        }
    }

    fn host_ok(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    fn origin_ok(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    fn token_ok(&self, given: &[u8]) -> bool {
        bool::from(given.ct_eq(self.token.as_bytes()))
    }
}

/// The single value of header `name`: `None` when absent, `Err` when repeated
/// or not visible ASCII.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> std::result::Result<Option<&'a str>, ()> {
    let mut all = headers.get_all(name).iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(());
    }
    first.to_str().map(Some).map_err(|_| ())
}

/// Runs before every route, the static files included.
async fn guard(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let headers = req.headers();

    // Host: the bound address, never a foreign name (DNS rebinding). HTTP/2 names
    // it in the request's authority instead; whatever is present must match.
    let Ok(host) = single(headers, &header::HOST) else {
        return refuse(StatusCode::FORBIDDEN, "more than one Host header");
    };
    let authority = req.uri().authority().map(|a| a.as_str());
    if host.is_none() && authority.is_none() {
        return refuse(StatusCode::FORBIDDEN, "the request names no Host");
    }
    if let Some(bad) = [host, authority].into_iter().flatten().find(|h| !g.host_ok(h)) {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "the UI bridge answers only to {}, not to Host {bad:?}",
                g.hosts[0]
            ),
        );
    }

    // Origin: absent (navigations, curl) or this server's own; `null` and every other
    // site are refused.
    match single(headers, &header::ORIGIN) {
        Ok(None) => {}
        Ok(Some(o)) if g.origin_ok(o) => {}
        Ok(Some(o)) => {
            return refuse(
                StatusCode::FORBIDDEN,
                format!("requests from origin {o:?} are not accepted by the UI bridge"),
            );
        }
        Err(()) => return refuse(StatusCode::FORBIDDEN, "more than one Origin header"),
    }

    let path = req.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        // The token, compared in constant time.
        match single(headers, &TOKEN_HEADER) {
            Ok(Some(t)) if g.token_ok(t.as_bytes()) => {}
            _ => {
                let mut r = refuse(
                    StatusCode::UNAUTHORIZED,
                    "missing or wrong X-Passback-Token: open the address `passback ui-server` \
                     printed (its #token=… part carries the token); after a reload of the page, \
                     open that address again",
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("X-Passback-Token"),
                );
                return r;
            }
        }
        // A JSON body: no form or plain-text POST a foreign page could send runs a command.
        if req.method() == Method::POST {
            let json = matches!(single(headers, &header::CONTENT_TYPE), Ok(Some(ct))
                if ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return refuse(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "bridge calls must send Content-Type: application/json",
                );
            }
        }
    }
    next.run(req).await
}

async fn call(
    State(session): State<Arc<Session>>,
    UrlPath(command): UrlPath<String>,
    body: Bytes,
) -> std::result::Result<Json<Value>, ApiError> {
    // The guard has checked the token and the JSON content type; an empty body means
    // no arguments.
    let args = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError(Error::invalid(format!("the request body is not JSON: {e}"))))?
    };
    session.dispatch(&command, args).await.map(Json).map_err(ApiError)
}

/// Follow a job (`{"job_id": N, "after": K}`): its events as NDJSON, one line
/// each as they happen, until it ends. The window's progress and Cancel in a
/// browser work from this stream, as in the desktop app from IPC.
async fn watch_job(
    State(session): State<Arc<Session>>,
    body: Bytes,
) -> std::result::Result<Response, ApiError> {
    let pb = session.current().map_err(ApiError)?;
    let q: JobQuery = serde_json::from_slice(&body)
        .map_err(|e| ApiError(Error::invalid(format!("bad arguments for watch_job: {e}"))))?;
    // Refuse an unknown job before the stream starts (a plain JSON error).
    pb.job_events(&JobQuery { after: u64::MAX, ..q })
        .await
        .map_err(ApiError)?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        let _ = pb
            .watch_job(&q, |e| {
                let mut line = serde_json::to_vec(e).unwrap_or_default();
                line.push(b'\n');
                // The page went away: stop following.
                if tx.send(Bytes::from(line)).is_err() {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            })
            .await;
    });
    let lines = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        axum::body::Body::from_stream(lines),
    )
        .into_response())
}

/// The largest request body the bridge takes: a file to import rides in one.
const UPLOAD_LIMIT: usize = 512 * 1024 * 1024;

/// Build the router: the API and the static UI, all behind the guard.
fn router(session: Arc<Session>, ui_dir: &Path, guard_state: Arc<Guard>) -> Router {
    let index = ui_dir.join("index.html");
    Router::new()
        .route("/api/stream/watch_job", post(watch_job))
        .route("/api/{command}", post(call))
        // A file to import travels in the body (axum's default cap is 2 MB).
        .layer(axum::extract::DefaultBodyLimit::max(UPLOAD_LIMIT))
        .fallback_service(ServeDir::new(ui_dir).fallback(ServeFile::new(index)))
        .layer(middleware::from_fn_with_state(guard_state, guard))
        .with_state(session)
}

/// A fresh per-run token: 256 bits from the OS random number generator, as hex.
fn new_token() -> Result<String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::internal(format!("the OS random number generator failed: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Serve until Ctrl-C. Prints one JSON line when ready: `url` (the address to open,
/// with the token in its fragment), `base_url`, `token` and `db`.
pub async fn serve(session: Session, listen: SocketAddr, ui_dir: &Path) -> Result<()> {
    if !listen.ip().is_loopback() {
        return Err(Error::invalid("the UI bridge listens on loopback only"));
    }
    if !ui_dir.join("index.html").is_file() {
        return Err(Error::invalid(format!(
            "no built UI at {}: run `npm --prefix ui run build` first, or pass --ui-dir",
            ui_dir.display()
        )));
    }
    let token = new_token()?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}/");
    println!(
        "{}",
        serde_json::json!({
            "url": format!("{base_url}#token={token}"),
            "base_url": base_url,
            "token": token,
            "db": session.current()?.db_path(),
        })
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let guard_state = Arc::new(Guard::new(addr, token));
    axum::serve(listener, router(Arc::new(session), ui_dir, guard_state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_256_bit_hex() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 2 * TOKEN_BYTES);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn guard_names_only_the_bound_address_and_localhost() {
        let g = Guard::new("127.0.0.1:4321".parse().unwrap(), "t".into());
        assert!(g.host_ok("127.0.0.1:4321"));
        assert!(g.host_ok("LOCALHOST:4321"));
        assert!(!g.host_ok("127.0.0.1"));
        assert!(!g.host_ok("127.0.0.1:4322"));
        assert!(!g.host_ok("evil.example:4321"));
        assert!(!g.host_ok("localhost.:4321"));
        assert!(g.origin_ok("http://127.0.0.1:4321"));
        assert!(g.origin_ok("http://localhost:4321"));
        assert!(!g.origin_ok("https://127.0.0.1:4321"));
        assert!(!g.origin_ok("null"));
        assert!(!g.origin_ok("http://evil.example"));

        let v6 = Guard::new("[::1]:80".parse().unwrap(), "t".into());
        assert!(v6.host_ok("[::1]:80"));
        assert!(v6.host_ok("[::1]"));
        assert!(v6.origin_ok("http://[::1]"));
        assert!(!v6.host_ok("::1"));
    }

    #[test]
    fn token_must_match_exactly() {
        let g = Guard::new("127.0.0.1:1".parse().unwrap(), "abcd".into());
        assert!(g.token_ok(b"abcd"));
        assert!(!g.token_ok(b"abce"));
        assert!(!g.token_ok(b"abc"));
        assert!(!g.token_ok(b""));
    }
}
