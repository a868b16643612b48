//! The HTTP surface: the router, the WebSocket upgrade, health and readiness, and the web
//! client's files (any other GET gets the client's `index.html`: it routes itself). The JSON
//! API brings its own routes (`api::routes`), merged here.

use crate::api;
use crate::app_state::AppState;
use crate::bus::BusStatus;
use crate::connection::{self, Admitted, Refused};
use crate::headers::header_str;
use crate::socket::SocketUpgrade;
use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use funnel_protocol::BoardId;
use funnel_protocol::policy::Role;
use funnel_protocol::wire::CloseCode;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tower_http::LatencyUnit;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Instrument;

/// The main listener's routes. `metrics_here`: `/metrics` is served here (no
/// `--metrics-listen`), to an admin token when tokens are on; otherwise it is a 404 here.
pub fn router(state: AppState, web_dir: &Path, metrics_here: bool) -> Router {
    let metrics_route = if metrics_here {
        get(guarded_metrics)
    } else {
        get(metrics_elsewhere)
    };
    Router::new()
        .route("/ws/boards/{board_id}", get(board_socket))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", metrics_route)
        .merge(api::guard(api::routes(), &state))
        .merge(api::docs_page())
        .merge(crate::oidc::routes())
        .fallback_service(web_client(web_dir))
        .with_state(state)
        // Every request gets an id: the `X-Request-Id` it came with (a load balancer's) or a
        // new UUID, on its log lines (the `request` span) and in the response's `X-Request-Id`.
        // A socket keeps the id of its upgrade request for its whole life. (The last layer is
        // the outermost: the id is set before the span is made.)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<_>| {
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = request.uri().path(),
                        request_id = request_id(request.headers()),
                    )
                })
                .on_request(())
                // Handlers log their own failures; a 503 readiness probe is not one.
                .on_failure(())
                .on_response(
                    DefaultOnResponse::new()
                        .level(tracing::Level::DEBUG)
                        .latency_unit(LatencyUnit::Micros),
                ),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// The request id the router's layers gave a request.
fn request_id(headers: &HeaderMap) -> &str {
    header_str(headers, REQUEST_ID).unwrap_or("")
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

/// The query of a WebSocket URL: browsers cannot set headers on a WebSocket, so the token
/// comes as `?token=`. `?notices=1` asks for funnel's notices (docs/recovery.md): a parameter,
/// not a message, because a server that does not know it ignores it, so a newer page never gets
/// refused by an older instance during a rolling upgrade.
#[derive(Debug, Default, Deserialize)]
pub struct TokenQuery {
    pub token: Option<String>,
    pub notices: Option<String>,
}

/// `GET /ws/boards/{boardId}`: the y-websocket endpoint. Refusals happen after the upgrade, as
/// close codes, so that browser clients stop retrying (an HTTP error would make them loop).
async fn board_socket(
    State(state): State<AppState>,
    axum::extract::Path(board_id): axum::extract::Path<String>,
    Query(query): Query<TokenQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: SocketUpgrade,
) -> Response {
    if state.connections.drain.is_draining() {
        // Before the upgrade, unlike every other refusal: a balancer retries a 503 on another
        // instance (nginx `proxy_next_upstream http_503`), so the client never sees it; a client
        // that reaches this instance directly retries later, as after any failed handshake.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "this instance is draining: connect to another one\n",
        )
            .into_response();
    }
    // Turned away before the upgrade: no socket, no join, and (the socket never opening) a
    // stock provider's own reconnect backoff grows.
    if let Err(wait) =
        state
            .connections
            .backoff
            .check(peer.ip(), &board_id, std::time::Instant::now())
    {
        let secs = wait.as_secs().max(1);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            format!(
                "this address sent this board a frame over the size limit; retry in {secs} s\n"
            ),
        )
            .into_response();
    }
    let admission = admit(&state, &board_id, query.token.as_deref(), &headers, peer)
        .await
        .map(|admitted| Admitted {
            wants_notices: query.notices.is_some_and(|value| value == "1"),
            ..admitted
        });
    let ctx = Arc::clone(&state.connections);
    let tracker = state.tracker.clone();
    // The connection's own span is a child of this one, so its log lines carry the id too. A
    // root, not the request's child: a child keeps its parent, and the request's span (method,
    // path, id) would stay in memory as long as the socket.
    let socket_span =
        tracing::info_span!(parent: None, "socket", request_id = request_id(&headers));
    upgrade.on_upgrade(move |socket| {
        async move {
            let serving = connection::start(socket, admission, ctx).await;
            // A task of its own, so the upgrade's state (this task's) does not stay beside the
            // connection's for as long as the socket is open (BENCHMARKS.md, `idle`).
            tracker.spawn(serving);
        }
        .instrument(socket_span)
    })
}

/// Decides, before anything is queued for it, whether a socket may open a board: a valid id, an
/// allowed origin, a valid token that allows this board, a board that exists (only admins
/// create one by opening it), and room under the connection limits.
async fn admit(
    state: &AppState,
    board_id: &str,
    token: Option<&str>,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Admitted, Refused> {
    let ctx = &state.connections;
    let board = BoardId::parse(board_id)
        .map_err(|e| Refused::new(CloseCode::BadRequest, format!("invalid board id: {e}")))?;
    if !ctx.origins.allows(
        header_str(headers, header::ORIGIN),
        header_str(headers, header::HOST),
    ) {
        return Err(Refused::new(
            CloseCode::Forbidden,
            "this page's origin may not open boards (see --allowed-origins)",
        ));
    }
    let mut principal = match state.accounts.authenticate(&ctx.auth, headers, token).await {
        Ok(Ok(principal)) => principal.on_board(&board),
        Ok(Err(e)) => return Err(Refused::new(CloseCode::Unauthenticated, e.to_string())),
        Err(e) => {
            tracing::warn!(error = %e, "cannot check a session");
            return Err(Refused::new(
                CloseCode::InternalError,
                "storage unavailable; reconnect",
            ));
        }
    };
    if !principal.may_open(&board) {
        return Err(Refused::new(
            CloseCode::Forbidden,
            format!("the token does not open board {board}"),
        ));
    }
    // An admin may create a board by opening it (local mode: anyone); others need it to exist.
    // An archived board opens read-only for everyone: a viewer's socket, so that the board
    // shows as it was left and nothing changes it until an admin restores it.
    match state.storage.meta(&board).await {
        Ok(Some(meta)) => {
            if meta.archived_at.is_some() {
                principal.role = principal.role.min(Role::Viewer);
            }
        }
        Ok(None) if principal.role >= Role::Admin => {}
        Ok(None) => {
            return Err(Refused::new(
                CloseCode::NotFound,
                format!("no board {board}"),
            ));
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot check that a board exists");
            return Err(Refused::new(
                CloseCode::InternalError,
                "storage unavailable; reconnect",
            ));
        }
    }
    let user = (!ctx.auth.is_local()).then_some(principal.user.as_str());
    let slot = ctx
        .counts
        .admit(user, peer.ip(), ctx.limits.per_user, ctx.limits.per_address)
        .map_err(|e| Refused::new(CloseCode::TooMany, e.to_string()))?;
    Ok(Admitted {
        board,
        peer: peer.ip(),
        principal,
        slot,
        wants_notices: false,
    })
}

/// The routes of the `--metrics-listen` listener: `/metrics`, open to whoever reaches it.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// `/metrics` on the main listener: with tokens, only for an admin's.
async fn guarded_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.connections.auth.is_local() {
        let who = state
            .accounts
            .authenticate(&state.connections.auth, &headers, None)
            .await;
        match who {
            Err(e) => return api::ApiError::Storage(e).into_response(),
            Ok(Err(e)) => return api::ApiError::Unauthenticated(e).into_response(),
            Ok(Ok(who)) if who.role < Role::Admin => {
                return api::ApiError::Forbidden(format!(
                    "/metrics needs the admin role; the token's is {}",
                    who.role
                ))
                .into_response();
            }
            Ok(Ok(_)) => {}
        }
    }
    metrics(State(state)).await
}

/// `/metrics` on the main listener when `--metrics-listen` serves it.
async fn metrics_elsewhere() -> Response {
    (
        StatusCode::NOT_FOUND,
        "/metrics is served on the --metrics-listen address\n",
    )
        .into_response()
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

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the instance is not draining, storage answers and, in a cluster, Redis does. An instance whose Redis is down
/// keeps serving its own clients (other instances' changes reach them through the storage log),
/// so the load balancer should send new clients elsewhere, not kill it.
async fn readyz(State(state): State<AppState>) -> Response {
    if state.connections.drain.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "error": "draining: this instance is stopping; its clients reconnect elsewhere",
            })),
        )
            .into_response();
    }
    if let Some(bus) = &state.bus
        && let BusStatus::Down { since } = bus.status()
    {
        let for_secs = since.elapsed().map_or(0, |d| d.as_secs());
        // The bus logs the outage once at warn; probes come every few seconds.
        tracing::debug!(for_secs, "not ready: redis is down");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "error": format!(
                    "redis is down (for {for_secs} s): this instance keeps serving its own \
                     clients, who get other instances' changes only through the storage log \
                     (within seconds) until redis is back; send new clients elsewhere"
                ),
            })),
        )
            .into_response();
    }
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
