//! Browser bridge: serves the built web UI and the same commands the desktop
//! shell exposes over Tauri IPC, as `POST /api/<command>` on loopback.
//!
//! It exists so the real UI can be driven in a real browser (Playwright) against
//! a real ledger, and for support sessions on machines without the desktop app.
//! The command names match the Tauri commands one for one ([`COMMANDS`]).

use std::net::SocketAddr;
use std::path::Path;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use tower_http::services::{ServeDir, ServeFile};

use crate::app::Passback;
use crate::error::{Error, ErrorKind, Result};

/// Commands the UI may call (the desktop shell registers the same names).
pub const COMMANDS: &[&str] = &[
    "overview",
    "list_platforms",
    "list_activities",
    "list_grades",
    "doctor",
];

/// Run one UI command by name with JSON arguments.
pub async fn dispatch(pb: &Passback, command: &str, _args: Value) -> Result<Value> {
    fn json<T: serde::Serialize>(v: T) -> Result<Value> {
        serde_json::to_value(v).map_err(|e| Error::internal(e.to_string()))
    }
    match command {
        "overview" => json(pb.overview().await?),
        "list_platforms" => json(pb.list_platforms().await?),
        "list_activities" => json(pb.list_activities().await?),
        "list_grades" => json(pb.list_grades().await?),
        "doctor" => json(pb.doctor().await?),
        other => Err(Error::not_found(format!("unknown command {other:?}"))),
    }
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

async fn call(
    State(pb): State<Passback>,
    UrlPath(command): UrlPath<String>,
    body: Option<Json<Value>>,
) -> std::result::Result<Json<Value>, ApiError> {
    let args = body.map(|Json(v)| v).unwrap_or(Value::Null);
    dispatch(&pb, &command, args).await.map(Json).map_err(ApiError)
}

/// Build the router (exposed for tests).
pub fn router(pb: Passback, ui_dir: &Path) -> Router {
    let index = ui_dir.join("index.html");
    Router::new()
        .route("/api/{command}", post(call))
        .fallback_service(ServeDir::new(ui_dir).fallback(ServeFile::new(index)))
        .with_state(pb)
}

/// Serve until Ctrl-C. Prints one JSON line with the URL when ready.
pub async fn serve(pb: Passback, listen: SocketAddr, ui_dir: &Path) -> Result<()> {
    if !listen.ip().is_loopback() {
        return Err(Error::invalid("the UI bridge listens on loopback only"));
    }
    if !ui_dir.join("index.html").is_file() {
        return Err(Error::invalid(format!(
            "no built UI at {}: run `npm --prefix ui run build` first, or pass --ui-dir",
            ui_dir.display()
        )));
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    println!(
        "{}",
        serde_json::json!({ "url": format!("http://{addr}/"), "db": pb.db_path() })
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    axum::serve(listener, router(pb, ui_dir))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
