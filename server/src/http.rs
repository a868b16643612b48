//! The HTTP surface: the router, the WebSocket upgrade, health and readiness.

use crate::connection::{self, ConnectionContext};
use crate::storage::Storage;
use axum::Router;
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use funnel_protocol::BoardId;
use std::sync::Arc;
use tokio_util::task::TaskTracker;

#[derive(Clone)]
pub struct AppState {
    pub connections: ConnectionContext,
    pub storage: Arc<dyn Storage>,
    /// Tracks every connection task, so shutdown waits for their close frames.
    pub tracker: TaskTracker,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/ws/boards/{board_id}", get(board_socket))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// `GET /ws/boards/{boardId}`: the y-websocket endpoint. Refusals happen after the upgrade, as
/// close codes, so that browser clients stop retrying (an HTTP error would make them loop).
async fn board_socket(
    State(state): State<AppState>,
    Path(board_id): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let max = state.connections.max_frame_bytes;
    let board = BoardId::parse(&board_id);
    let ctx = state.connections.clone();
    let tracker = state.tracker.clone();
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| tracker.track_future(connection::serve(socket, board, ctx)))
}

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
