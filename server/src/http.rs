//! The HTTP surface: the router, the WebSocket upgrade, the JSON API, health and readiness, and
//! the web client's files (any other GET gets the client's `index.html`: it routes itself).

use crate::api;
use crate::connection::{self, ConnectionContext};
use crate::storage::Storage;
use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use funnel_protocol::BoardId;
use std::path::Path;
use std::sync::Arc;
use tokio_util::task::TaskTracker;
use tower_http::services::{ServeDir, ServeFile};

#[derive(Clone)]
pub struct AppState {
    pub connections: ConnectionContext,
    pub storage: Arc<dyn Storage>,
    /// Tracks every connection task, so shutdown waits for their close frames.
    pub tracker: TaskTracker,
}

pub fn router(state: AppState, web_dir: &Path) -> Router {
    Router::new()
        .route("/ws/boards/{board_id}", get(board_socket))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route(
            "/api/v1/boards",
            get(api::list_boards).post(api::create_board),
        )
        .route("/api/v1/boards/{board_id}", get(api::get_board))
        .route(
            "/api/v1/boards/{board_id}/cards/{card_id}/timeline",
            get(api::get_timeline).post(api::add_timeline_event),
        )
        .route("/api/{*rest}", any(api::not_found))
        .fallback_service(web_client(web_dir))
        .with_state(state)
}

/// The built web client. Files by path; any other path gets `index.html`, so that
/// `/boards/{boardId}` opens the app. Without a build, a page says how to make one.
fn web_client(dir: &Path) -> Router {
    let index = dir.join("index.html");
    if !index.is_file() {
        tracing::warn!(
            web_dir = %dir.display(),
            "no web client build found; build it with: npm --prefix clients/web ci && npm --prefix clients/web run build"
        );
        return Router::new().fallback(get(no_web_client));
    }
    Router::new().fallback_service(ServeDir::new(dir).fallback(ServeFile::new(index)))
}

async fn no_web_client() -> Response {
    let page = "<!doctype html><title>funnel</title><h1>funnel is running</h1>\
        <p>The web client is not built. Build it with \
        <code>npm --prefix clients/web ci &amp;&amp; npm --prefix clients/web run build</code> \
        and start funnel with <code>--web-dir clients/web/dist</code>.</p>";
    (StatusCode::NOT_FOUND, axum::response::Html(page)).into_response()
}

/// `GET /ws/boards/{boardId}`: the y-websocket endpoint. Refusals happen after the upgrade, as
/// close codes, so that browser clients stop retrying (an HTTP error would make them loop).
async fn board_socket(
    State(state): State<AppState>,
    axum::extract::Path(board_id): axum::extract::Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let max = state.connections.max_frame_bytes;
    let board = BoardId::parse(&board_id);
    let ctx = state.connections.clone();
    let tracker = state.tracker.clone();
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| tracker.track_future(connection::serve(socket, board, ctx)))
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.connections.metrics.encode(),
    )
        .into_response()
}

/// Each connection's read buffer. tungstenite's default (128 KiB) is what an idle connection
/// would cost; client frames are small (a move is ~100 bytes), and larger ones grow the buffer
/// as they come.
const READ_BUFFER_BYTES: usize = 4 * 1024;

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.storage.ping().await {
        Ok(()) => "ready\n".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: storage does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({ "error": "storage unavailable" })),
            )
                .into_response()
        }
    }
}
