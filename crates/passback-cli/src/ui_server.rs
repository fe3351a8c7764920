//! `passback ui-server`: serves the built web UI and the core's commands as
//! `POST /api/<command>` on loopback, so the real UI runs in a real browser
//! (Playwright) against a real ledger, and support sessions work without the
//! desktop app. The command list and JSON dispatch are the core's
//! (`passback::app::commands`), the same the desktop shell routes through.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use clap::Args;
use passback::app::commands::dispatch;
use passback::{Error, ErrorKind, Passback, Result};
use serde_json::Value;
use tower_http::services::{ServeDir, ServeFile};

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

async fn call(
    State(pb): State<Passback>,
    UrlPath(command): UrlPath<String>,
    body: Option<Json<Value>>,
) -> std::result::Result<Json<Value>, ApiError> {
    let args = body.map(|Json(v)| v).unwrap_or(Value::Null);
    dispatch(&pb, &command, args).await.map(Json).map_err(ApiError)
}

/// Build the router.
fn router(pb: Passback, ui_dir: &Path) -> Router {
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
