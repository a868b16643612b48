//! `/api/v1/webhooks`: the admin API of webhook endpoints (docs/webhooks.md): create, list,
//! read, edit, delete, rotate the secret, read the delivery log, replay from a cursor. Admins
//! only; a token limited to some boards sees and makes only endpoints limited to those boards.

use super::board_call::now_ms;
use super::{ApiError, Caller, FieldError, Problem};
use crate::app_state::AppState;
use crate::auth::Principal;
use crate::feed::ChangeFilter;
use crate::storage::webhooks::{AttemptRecord, Disabled, Endpoint};
use crate::webhooks::address::check_url;
use crate::webhooks::signing::new_secret;
use crate::webhooks::{EVENT_TYPES, worker};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use funnel_protocol::BoardId;
use funnel_protocol::ids::new_id;
use funnel_protocol::policy::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The longest URL an endpoint may have.
pub const MAX_URL_BYTES: usize = 2048;
/// The most boards one endpoint may name.
pub const MAX_BOARDS: usize = 100;
/// The default and largest page of the delivery log.
pub const DEFAULT_LOG_PAGE: usize = 50;
pub const MAX_LOG_PAGE: usize = 200;
/// The most events one replay queues; a longer replay answers where to go on (`next`).
pub const MAX_REPLAY: usize = 10_000;

/// A webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookJson {
    pub id: String,
    pub url: String,
    /// The event types it receives; empty: every type.
    pub events: Vec<String>,
    /// The boards whose events it receives; empty: every board.
    pub boards: Vec<String>,
    /// `whsec_...`: shown only when created and when rotated. Verify deliveries with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// False once its receiver answered 410 Gone, or an admin disabled it.
    pub enabled: bool,
    /// Why it is disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Since when it is disabled (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<i64>,
    /// Until when (ms) the secret before the last rotation still signs deliveries too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_until: Option<i64>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

impl WebhookJson {
    fn of(endpoint: Endpoint, secret: Option<String>, now: i64) -> Self {
        WebhookJson {
            id: endpoint.id,
            url: endpoint.url,
            events: endpoint.events,
            boards: endpoint.boards.iter().map(|b| b.to_string()).collect(),
            secret,
            enabled: endpoint.disabled.is_none(),
            disabled_reason: endpoint.disabled.as_ref().map(|d| d.reason.clone()),
            disabled_at: endpoint.disabled.as_ref().map(|d| d.at),
            previous_secret_until: (endpoint.previous_secret.is_some()
                && endpoint.previous_until > now)
                .then_some(endpoint.previous_until),
            created_at: endpoint.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookJson>,
    /// Always null: every endpoint is on the one page.
    pub next: Option<String>,
}

/// An endpoint to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `https://` or `http://`, at most 2048 bytes; a literal private or loopback address is
    /// refused (unless the server allows them).
    pub url: String,
    /// Event types (`card.created`, `card.moved`, ...) or prefixes (`card.*`: every card type);
    /// absent or empty: every type.
    #[serde(default)]
    pub events: Vec<String>,
    /// Board ids; absent or empty: every board (a token limited to boards must name them).
    #[serde(default)]
    pub boards: Vec<String>,
}

/// Changes to an endpoint; only the fields sent change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub boards: Option<Vec<String>>,
    /// `true` enables a disabled endpoint from the newest event on (a replay sends what it
    /// missed); `false` disables it and cancels its pending deliveries.
    pub enabled: Option<bool>,
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJson {
    pub id: i64,
    /// The event's id (its `webhook-id` header, and its cursor in `/api/v1/events`).
    pub event_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The receiver's HTTP status; absent when no answer came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Milliseconds from sending to the answer (or the failure).
    pub latency_ms: i64,
    /// Why no answer came (a timeout, a refused connection, an internal address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `delivered`, `retry` (another attempt is scheduled), `failed` (that was the last) or
    /// `disabled` (the receiver answered 410).
    pub outcome: String,
    /// When the attempt was made (ms).
    pub at: i64,
}

impl From<AttemptRecord> for DeliveryJson {
    fn from(a: AttemptRecord) -> Self {
        DeliveryJson {
            id: a.id,
            event_id: a.event.to_string(),
            attempt: a.attempt,
            status: a.status,
            latency_ms: a.latency_ms,
            error: a.error,
            outcome: a.outcome.as_str().to_owned(),
            at: a.at,
        }
    }
}

/// A page of the delivery log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryJson>,
    /// Pass as `before` for the next (older) page; null on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    pub before: Option<i64>,
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
pub struct ReplayQuery {
    pub from: String,
}

/// What a replay queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayJson {
    /// Deliveries queued (the endpoint's events after `from`, up to its cursor).
    pub queued: usize,
    /// When more than 10,000 events matched: the `from` of the next replay; null otherwise.
    pub next: Option<String>,
}

/// The caller if an admin; a token limited to boards may touch only endpoints limited to them.
fn admin(caller: Caller) -> Result<Principal, ApiError> {
    caller.at_least(Role::Admin)
}

fn visible(who: &Principal, endpoint: &Endpoint) -> bool {
    match &who.boards {
        None => true,
        Some(_) => !endpoint.boards.is_empty() && endpoint.boards.iter().all(|b| who.may_open(b)),
    }
}

fn no_such_webhook(id: &str) -> ApiError {
    ApiError::NotFound(format!("no webhook {id}"))
}

async fn visible_endpoint(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<Endpoint, ApiError> {
    match state.storage.webhooks().endpoint(id).await? {
        Some(endpoint) if visible(who, &endpoint) => Ok(endpoint),
        _ => Err(no_such_webhook(id)),
    }
}

/// Checks the fields of a new or edited endpoint, every bad one listed in one 422.
async fn validate(
    state: &AppState,
    who: &Principal,
    url: &str,
    events: &[String],
    boards: &[String],
) -> Result<(String, Vec<String>, Vec<BoardId>), ApiError> {
    let mut errors = Vec::new();
    let url = url.trim();
    if url.len() > MAX_URL_BYTES {
        errors.push(FieldError::new(
            "url",
            format!("a URL has at most {MAX_URL_BYTES} bytes"),
        ));
    } else if let Err(e) = check_url(url, state.webhooks.settings.allow_private) {
        errors.push(FieldError::new("url", e.to_string()));
    }
    let mut kinds: Vec<String> = Vec::new();
    for kind in events {
        // One type, or a prefix such as `card.*` for all of its types (the feed's own rule).
        match ChangeFilter::parse_types(kind) {
            Ok(named) if !kind.contains(',') && !named.is_empty() => {
                for t in named {
                    if !kinds.contains(&t) {
                        kinds.push(t);
                    }
                }
            }
            _ => errors.push(FieldError::new(
                "events",
                format!(
                    "unknown event type {kind:?}; known: {} (or a prefix such as card.*)",
                    EVENT_TYPES.join(", ")
                ),
            )),
        }
    }
    let mut ids: Vec<BoardId> = Vec::new();
    if boards.len() > MAX_BOARDS {
        errors.push(FieldError::new(
            "boards",
            format!("an endpoint names at most {MAX_BOARDS} boards"),
        ));
    } else {
        for raw in boards {
            let id = match BoardId::parse(raw) {
                Ok(id) if who.may_open(&id) => id,
                _ => {
                    errors.push(FieldError::new("boards", format!("no board {raw}")));
                    continue;
                }
            };
            if state.storage.meta(&id).await?.is_none() {
                errors.push(FieldError::new("boards", format!("no board {raw}")));
            } else if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    if boards.is_empty() && who.boards.is_some() {
        errors.push(FieldError::new(
            "boards",
            "the token is limited to some boards: name the boards the webhook is for",
        ));
    }
    if errors.is_empty() {
        Ok((url.to_owned(), kinds, ids))
    } else {
        Err(ApiError::Invalid { errors })
    }
}

fn secret() -> Result<String, ApiError> {
    new_secret().map_err(|e| {
        tracing::error!(error = %e, "webhooks: cannot make a secret");
        ApiError::Busy
    })
}

/// Creates an endpoint; it receives the events stored from now on.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    request_body = NewWebhook,
    responses(
        (status = 201, body = WebhookJson, description = "with its secret, shown this once", headers(("Location" = String, description = "the endpoint's URL"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "not JSON, or an unknown field"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "admins only"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "a bad URL (or a private address), an unknown event type, a board that does not exist: every one listed")
    )
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewWebhook>, JsonRejection>,
) -> Result<Response, ApiError> {
    let who = admin(caller)?;
    let Json(new) = body?;
    let (url, events, boards) = validate(&state, &who, &new.url, &new.events, &new.boards).await?;
    let now = now_ms();
    let endpoint = Endpoint {
        id: new_id(),
        url,
        events,
        boards,
        secret: secret()?,
        previous_secret: None,
        previous_until: 0,
        disabled: None,
        cursor: state.feed.latest(),
        created_at: now,
    };
    state.storage.webhooks().create_endpoint(&endpoint).await?;
    tracing::info!(webhook = %endpoint.id, url = %endpoint.url, "webhook created");
    let location = format!("/api/v1/webhooks/{}", endpoint.id);
    let secret = Some(endpoint.secret.clone());
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(WebhookJson::of(endpoint, secret, now)),
    )
        .into_response())
}

/// Every endpoint (that the caller's token may see), oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    responses(
        (status = 200, body = WebhookList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "admins only")
    )
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<WebhookList>, ApiError> {
    let who = admin(caller)?;
    let now = now_ms();
    let webhooks = state
        .storage
        .webhooks()
        .endpoints()
        .await?
        .into_iter()
        .filter(|e| visible(&who, e))
        .map(|e| WebhookJson::of(e, None, now))
        .collect();
    Ok(Json(WebhookList {
        webhooks,
        next: None,
    }))
}

/// One endpoint (without its secret).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{webhookId}",
    params(("webhookId" = String, Path, description = "the endpoint's id")),
    responses(
        (status = 200, body = WebhookJson),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "admins only"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookJson>, ApiError> {
    let who = admin(caller)?;
    let endpoint = visible_endpoint(&state, &who, &id).await?;
    Ok(Json(WebhookJson::of(endpoint, None, now_ms())))
}

/// Changes an endpoint's URL, event types or boards, or enables or disables it.
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{webhookId}",
    params(("webhookId" = String, Path, description = "the endpoint's id")),
    request_body = WebhookPatch,
    responses(
        (status = 200, body = WebhookJson),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "not JSON, or an unknown field"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "admins only"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "as for creating one")
    )
)]
pub async fn patch_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<WebhookPatch>, JsonRejection>,
) -> Result<Json<WebhookJson>, ApiError> {
    let who = admin(caller)?;
    let Json(patch) = body?;
    let endpoint = visible_endpoint(&state, &who, &id).await?;
    let store = state.storage.webhooks();
    if patch.url.is_some() || patch.events.is_some() || patch.boards.is_some() {
        let current_boards: Vec<String> = endpoint.boards.iter().map(|b| b.to_string()).collect();
        let (url, events, boards) = validate(
            &state,
            &who,
            patch.url.as_deref().unwrap_or(&endpoint.url),
            patch.events.as_deref().unwrap_or(&endpoint.events),
            patch.boards.as_deref().unwrap_or(&current_boards),
        )
        .await?;
        if !store.edit_endpoint(&id, &url, &events, &boards).await? {
            return Err(no_such_webhook(&id));
        }
    }
    match patch.enabled {
        Some(true) if endpoint.disabled.is_some() => {
            if !store.enable(&id, state.feed.latest()).await? {
                return Err(no_such_webhook(&id));
            }
            tracing::info!(webhook = %id, "webhook enabled");
        }
        Some(false) if endpoint.disabled.is_none() => {
            let disabled = Disabled {
                at: now_ms(),
                reason: format!("disabled by {}", who.user),
            };
            if !store.disable(&id, &disabled).await? {
                return Err(no_such_webhook(&id));
            }
            tracing::info!(webhook = %id, "webhook disabled");
        }
        _ => {}
    }
    state.webhooks.wake_worker();
    let endpoint = store
        .endpoint(&id)
        .await?
        .ok_or_else(|| no_such_webhook(&id))?;
    Ok(Json(WebhookJson::of(endpoint, None, now_ms())))
}

/// Deletes an endpoint, its pending deliveries and its log.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{webhookId}",
    params(("webhookId" = String, Path, description = "the endpoint's id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "admins only"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let who = admin(caller)?;
    visible_endpoint(&state, &who, &id).await?;
    if !state.storage.webhooks().delete_endpoint(&id).await? {
        return Err(no_such_webhook(&id));
    }
    tracing::info!(webhook = %id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Gives the endpoint a new secret. The old one still signs every delivery beside the new one
/// (two `v1,` signatures in `webhook-signature`) for `--webhook-secret-overlap` (24 h).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{webhookId}/rotate",
    params(("webhookId" = String, Path, description = "the endpoint's id")),
    responses(
        (status = 200, body = WebhookJson, description = "with its new secret, shown this once"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "admins only"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn rotate_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookJson>, ApiError> {
    let who = admin(caller)?;
    visible_endpoint(&state, &who, &id).await?;
    let secret = secret()?;
    let now = now_ms();
    let overlap = state.webhooks.settings.secret_overlap.as_millis() as i64;
    let store = state.storage.webhooks();
    if !store
        .rotate_secret(&id, &secret, now.saturating_add(overlap))
        .await?
    {
        return Err(no_such_webhook(&id));
    }
    tracing::info!(webhook = %id, "webhook secret rotated");
    let endpoint = store
        .endpoint(&id)
        .await?
        .ok_or_else(|| no_such_webhook(&id))?;
    Ok(Json(WebhookJson::of(endpoint, Some(secret), now)))
}

/// The endpoint's delivery log: every attempt, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{webhookId}/deliveries",
    params(
        ("webhookId" = String, Path, description = "the endpoint's id"),
        ("before" = Option<i64>, Query, description = "only attempts with a smaller id (the previous page's `next`)"),
        ("limit" = Option<usize>, Query, description = "attempts per page, 1 to 200 (default 50)")
    ),
    responses(
        (status = 200, body = DeliveryList),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "a `before` or `limit` that is not a number"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "admins only"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Json<DeliveryList>, ApiError> {
    let who = admin(caller)?;
    let Query(query) = query?;
    visible_endpoint(&state, &who, &id).await?;
    let limit = query
        .limit
        .unwrap_or(DEFAULT_LOG_PAGE)
        .clamp(1, MAX_LOG_PAGE);
    let attempts = state
        .storage
        .webhooks()
        .attempts(&id, query.before, limit)
        .await?;
    let next = (attempts.len() == limit)
        .then(|| attempts.last().map(|a| a.id.to_string()))
        .flatten();
    Ok(Json(DeliveryList {
        deliveries: attempts.into_iter().map(DeliveryJson::from).collect(),
        next,
    }))
}

/// Delivers again every event the endpoint wants after the cursor `from` (an event id; `0`:
/// from the oldest kept), up to the newest it has queued, as new deliveries with the events'
/// own `webhook-id`s. At most 10,000 per call: `next` says where to go on.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{webhookId}/replay",
    params(
        ("webhookId" = String, Path, description = "the endpoint's id"),
        ("from" = String, Query, description = "an event id: the events after it are delivered again")
    ),
    responses(
        (status = 202, body = ReplayJson),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "no `from`, or one that is not an event id"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "admins only"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the endpoint is disabled: enable it first")
    )
)]
pub async fn replay_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<ReplayQuery>, QueryRejection>,
) -> Result<(StatusCode, Json<ReplayJson>), ApiError> {
    let who = admin(caller)?;
    let Query(query) = query?;
    let from: i64 = query
        .from
        .trim()
        .parse()
        .ok()
        .filter(|from| *from >= 0)
        .ok_or_else(|| {
            ApiError::BadRequest(format!("from must be an event id, not {:?}", query.from))
        })?;
    let endpoint = visible_endpoint(&state, &who, &id).await?;
    if endpoint.disabled.is_some() {
        return Err(ApiError::Conflict(
            "the webhook is disabled: enable it (PATCH enabled: true) before a replay".into(),
        ));
    }
    // Everything up to the cursor; what lies above it is queued by the worker anyway.
    let until = endpoint.cursor;
    let mut after = from;
    let mut queued = 0;
    let mut scanned = 0;
    let mut next = None;
    while after < until {
        let events = state
            .storage
            .changes_after(after, &Default::default(), worker::FEED_PAGE)
            .await?;
        let Some(last) = events.last().map(|e| e.id) else {
            break;
        };
        let page: Vec<_> = events
            .iter()
            .filter(|e| e.id <= until && endpoint.wants(&e.kind, &e.board))
            .map(worker::delivery_of)
            .collect();
        state
            .storage
            .webhooks()
            .requeue(&id, &page, now_ms())
            .await?;
        queued += page.len();
        scanned += events.len();
        after = last;
        if scanned >= MAX_REPLAY && after < until {
            next = Some(after.to_string());
            break;
        }
    }
    tracing::info!(webhook = %id, from, queued, "webhook replay queued");
    state.webhooks.wake_worker();
    Ok((StatusCode::ACCEPTED, Json(ReplayJson { queued, next })))
}
