//! The JSON API under `/api/v1/`, described by the OpenAPI document at
//! `/api/v1/openapi.json`. Errors are `application/problem+json` (RFC 9457), made in one place
//! ([`problem`]). [`routes`] is every endpoint; the router merges them.

pub mod accounts;
mod activities;
mod board_call;
mod boards;
mod cards;
mod docs;
mod events;
mod history;
mod idempotency;
mod inbound_mail;
mod problem;
mod rate_limit;
mod settings;
mod stages;
mod webhooks;

pub use docs::{DOCS_PATH, document};
pub use idempotency::{IDEMPOTENCY_KEY, fingerprint};

pub use problem::{ApiError, FieldError, PROBLEM_JSON, Problem};

use crate::app_state::AppState;
use crate::auth::Principal;
use crate::headers::header_str;
use crate::room::{RoomCommand, TimelineError};
use crate::storage::{BoardMeta, TimelineEvent};
use axum::extract::Query;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts};
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use funnel_protocol::BoardId;
use funnel_protocol::board::MAX_NAME_CHARS;
use funnel_protocol::policy::Role;
use funnel_protocol::timeline::{TimelineDirection, TimelineKind};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "funnel",
        description = "Real-time CRM Kanban: boards (pipelines) of stages and cards. A board's \
                       content is a Yjs document served at /ws/boards/{boardId} over the \
                       y-websocket protocol; this API lists and creates boards. With \
                       authentication on, every call needs `Authorization: Bearer <token>` \
                       (an HS256 JWT: `funnel token` makes one)."
    ),
    paths(
        me,
        boards::list_boards,
        boards::create_board,
        boards::get_board,
        add_timeline_event,
        get_timeline,
        history::card_history,
        cards::list_cards,
        cards::create_card,
        cards::get_card,
        cards::patch_card,
        cards::delete_card,
        stages::list_stages,
        stages::create_stage,
        stages::patch_stage,
        stages::delete_stage,
        activities::list_activities,
        activities::create_activity,
        activities::patch_activity,
        settings::patch_board,
        settings::list_fields,
        settings::define_field,
        settings::get_quick_create,
        settings::put_quick_create,
        inbound_mail::post_inbound_email,
        inbound_mail::get_inbound_address,
        events::list_events,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::get_webhook,
        webhooks::patch_webhook,
        webhooks::delete_webhook,
        webhooks::rotate_webhook,
        webhooks::list_deliveries,
        webhooks::replay_webhook,
        accounts::sign_in,
        accounts::sign_out,
        accounts::create_invite,
        accounts::get_invite,
        accounts::accept_invite,
        accounts::list_people,
        accounts::patch_person,
        crate::oidc::auth_methods,
        crate::oidc::start,
        crate::oidc::callback
    ),
    components(schemas(
        Me,
        BoardRole,
        boards::Board,
        boards::BoardList,
        boards::NewBoard,
        Problem,
        FieldError,
        TimelineEntry,
        NewTimelineEvent,
        TimelinePage,
        history::CardHistory,
        cards::CardJson,
        cards::CardList,
        cards::NewCardJson,
        cards::CardPatch,
        stages::StageJson,
        stages::StageList,
        stages::NewStage,
        stages::StagePatch,
        activities::ActivityJson,
        activities::ActivityList,
        activities::NewActivityJson,
        activities::ActivityPatch,
        settings::SettingsJson,
        settings::SettingsPatch,
        settings::FieldJson,
        settings::FieldList,
        settings::QuickCreateForm,
        inbound_mail::InboundAddress,
        TimelineMail,
        crate::mail::MailOutcome,
        crate::mail::MailAction,
        events::ChangeList,
        crate::feed::ChangeEventJson,
        webhooks::WebhookJson,
        webhooks::WebhookList,
        webhooks::NewWebhook,
        webhooks::WebhookPatch,
        webhooks::DeliveryJson,
        webhooks::DeliveryList,
        crate::oidc::AuthMethods,
        crate::oidc::OidcMethod,
        webhooks::ReplayJson,
        accounts::Credentials,
        accounts::NewInvite,
        accounts::InviteJson,
        accounts::InviteInfo,
        accounts::Acceptance,
        accounts::PersonJson,
        accounts::PeopleList,
        accounts::PersonPatch
    ))
)]
pub struct ApiDoc;

/// An event of a card's timeline.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    pub id: i64,
    pub card: String,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// `comment`, `call`, `email` or `chat`.
    #[schema(value_type = String)]
    pub kind: TimelineKind,
    /// `incoming`, `outgoing` or `missed` (calls only); empty for comments.
    #[schema(value_type = String)]
    pub direction: TimelineDirection,
    /// The employee: who commented, took or missed the call, got the e-mail or chatted.
    pub user: String,
    pub text: String,
    /// For an e-mail that came in (`POST .../inbound-email` or SMTP): its subject and sender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail: Option<TimelineMail>,
}

/// The message an inbound e-mail entry of a timeline came from.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineMail {
    /// Without angle brackets.
    pub message_id: String,
    pub subject: String,
    /// The sender's address.
    pub from: String,
    /// The sender's display name; empty when none.
    pub from_name: String,
}

/// An event to add to a card's timeline. It belongs to the caller (the token's user; in local
/// mode the `X-Funnel-User` header, default `local`) and happens now, by the server's clock:
/// other fields (`user`, `at`) are refused. Comments, incoming and missed calls, incoming
/// e-mails and chats move the card's avatar to the caller; incoming ones also add an open
/// incoming activity to the card.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTimelineEvent {
    pub kind: String,
    #[serde(default)]
    pub direction: Option<String>,
    /// At most 4 KiB (UTF-8).
    #[serde(default)]
    pub text: String,
}

/// A page of a card's timeline, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelinePage {
    pub events: Vec<TimelineEntry>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next: Option<i64>,
}

/// Query of a timeline page.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub before: Option<i64>,
    pub limit: Option<usize>,
}

/// The longest timeline text, in bytes (UTF-8).
pub const MAX_EVENT_TEXT_BYTES: usize = 4 * 1024;
/// The largest body of a timeline post: the text and the JSON around it.
pub const MAX_EVENT_BODY_BYTES: usize = 8 * 1024;
/// In local mode (no tokens), the header that names the user of a timeline event.
pub const USER_HEADER: &str = "x-funnel-user";
/// The default and largest timeline page.
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 200;

impl From<TimelineEvent> for TimelineEntry {
    fn from(event: TimelineEvent) -> Self {
        TimelineEntry {
            id: event.id,
            card: event.card,
            at: event.at,
            kind: event.kind,
            direction: event.direction,
            user: event.user,
            text: event.text,
            mail: None,
        }
    }
}

/// Who the caller is, as the server sees their token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub user: String,
    pub name: String,
    /// `viewer`, `member` or `admin`.
    pub role: String,
    /// The only boards the token opens; absent: every board.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boards: Option<Vec<String>>,
    /// Local mode: no tokens, everyone is the local admin.
    pub local: bool,
    /// A signed-in person's e-mail (absent for a token or the local admin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `session` (a person signed in, who may sign out), `token` or `local`.
    pub signed_in_with: String,
    /// Asked with `?boardId=`: the caller's role on that board, their role of their own there
    /// (an administrator's per-board role) over `role`, the default. What the server allows
    /// on that board's socket and API calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub board_role: Option<BoardRole>,
}

/// The caller's effective role on one board (`GET /api/v1/me?boardId=`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoardRole {
    pub board_id: String,
    /// `viewer`, `member` or `admin`.
    pub role: String,
    /// Whether the role is the person's own on this board (`false`: the default `role`).
    pub own: bool,
}

/// Query of `GET /api/v1/me`. Other parameters are ignored, as they were before `boardId`
/// (a client's cache-buster keeps working).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeQuery {
    pub board_id: Option<String>,
}

/// The caller of an API request: `Authorization: Bearer <token>`, or the local admin in local
/// mode, from an allowed browser origin (or no browser at all).
pub struct Caller(pub Principal);

impl Caller {
    /// The caller as they act on the board `board_id` names (their role there, if they have
    /// one of their own; an id that is not valid changes nothing, and is refused later).
    pub fn on_board(self, board_id: &str) -> Self {
        match BoardId::parse(board_id) {
            Ok(board) => Caller(self.0.on_board(&board)),
            Err(_) => self,
        }
    }

    /// The caller, if their role is at least `role`.
    fn at_least(self, role: Role) -> Result<Principal, ApiError> {
        if self.0.role >= role {
            Ok(self.0)
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {role} role; the token's is {}",
                self.0.role
            )))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ctx = &state.connections;
        let origin = header_str(&parts.headers, header::ORIGIN);
        if !ctx
            .origins
            .allows(origin, header_str(&parts.headers, header::HOST))
        {
            return Err(ApiError::Forbidden(
                "this page's origin may not call the API (see --allowed-origins)".into(),
            ));
        }
        let who = state
            .accounts
            .authenticate(&ctx.auth, &parts.headers, None)
            .await?
            .map_err(ApiError::Unauthenticated)?;
        // A session cookie travels with every request the browser makes, whoever's page made
        // it: a write must prove it comes from an allowed page (SameSite=Lax already keeps the
        // cookie off other sites' POSTs; this holds for old browsers and sibling subdomains).
        if who.session.is_some() && !parts.method.is_safe() && origin.is_none() {
            return Err(ApiError::Forbidden(
                "a signed-in browser's write must carry an Origin header of an allowed page".into(),
            ));
        }
        Ok(Caller(who))
    }
}

/// 403 unless the caller's token opens `board`.
fn may_open(caller: &Principal, board: &BoardId) -> Result<(), ApiError> {
    if caller.may_open(board) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "the token does not open board {board}"
        )))
    }
}

/// Every endpoint of the API, under `/api/`; any other `/api/...` path is a JSON 404.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/me", get(me))
        .route(
            "/api/v1/boards",
            get(boards::list_boards).post(boards::create_board),
        )
        .route(
            "/api/v1/boards/{board_id}",
            get(boards::get_board).patch(settings::patch_board),
        )
        .route(
            "/api/v1/boards/{board_id}/cards/{card_id}/timeline",
            get(get_timeline)
                .post(add_timeline_event)
                .layer(DefaultBodyLimit::max(MAX_EVENT_BODY_BYTES)),
        )
        .route(
            "/api/v1/boards/{board_id}/cards/{card_id}/history",
            get(history::card_history),
        )
        .route(
            "/api/v1/boards/{board_id}/cards",
            get(cards::list_cards).post(cards::create_card),
        )
        .route(
            "/api/v1/boards/{board_id}/cards/{card_id}",
            get(cards::get_card)
                .patch(cards::patch_card)
                .delete(cards::delete_card),
        )
        .route(
            "/api/v1/boards/{board_id}/stages",
            get(stages::list_stages).post(stages::create_stage),
        )
        .route(
            "/api/v1/boards/{board_id}/stages/{stage_id}",
            axum::routing::patch(stages::patch_stage).delete(stages::delete_stage),
        )
        .route(
            "/api/v1/boards/{board_id}/cards/{card_id}/activities",
            get(activities::list_activities).post(activities::create_activity),
        )
        .route(
            "/api/v1/boards/{board_id}/cards/{card_id}/activities/{activity_id}",
            axum::routing::patch(activities::patch_activity),
        )
        .route(
            "/api/v1/boards/{board_id}/fields",
            get(settings::list_fields).post(settings::define_field),
        )
        .route(
            "/api/v1/boards/{board_id}/forms/quickCreate",
            get(settings::get_quick_create).put(settings::put_quick_create),
        )
        .route(
            "/api/v1/boards/{board_id}/inbound-email",
            get(inbound_mail::get_inbound_address)
                .post(inbound_mail::post_inbound_email)
                // The handler reads at most --max-mail-bytes itself.
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/events", get(events::list_events))
        .route("/api/v1/events/stream", get(events::stream_events))
        .route(
            "/api/v1/webhooks",
            get(webhooks::list_webhooks).post(webhooks::create_webhook),
        )
        .route(
            "/api/v1/webhooks/{webhook_id}",
            get(webhooks::get_webhook)
                .patch(webhooks::patch_webhook)
                .delete(webhooks::delete_webhook),
        )
        .route(
            "/api/v1/webhooks/{webhook_id}/rotate",
            axum::routing::post(webhooks::rotate_webhook),
        )
        .route(
            "/api/v1/webhooks/{webhook_id}/deliveries",
            get(webhooks::list_deliveries),
        )
        .route(
            "/api/v1/webhooks/{webhook_id}/replay",
            axum::routing::post(webhooks::replay_webhook),
        )
        .route(
            "/api/v1/session",
            axum::routing::post(accounts::sign_in).delete(accounts::sign_out),
        )
        .route(
            "/api/v1/invites",
            axum::routing::post(accounts::create_invite),
        )
        .route("/api/v1/invites/{secret}", get(accounts::get_invite))
        .route(
            "/api/v1/invites/{secret}/accept",
            axum::routing::post(accounts::accept_invite),
        )
        .route("/api/v1/auth/methods", get(crate::oidc::auth_methods))
        .route("/api/v1/people", get(accounts::list_people))
        .route(
            "/api/v1/people/{person_id}",
            axum::routing::patch(accounts::patch_person),
        )
        .route("/api/{*rest}", any(not_found))
}

/// `routes` under the layers that every API call passes: the rate limit per caller first (a
/// refused call touches nothing), then `Idempotency-Key` on POSTs.
pub fn guard(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    routes
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit::layer,
        ))
}

/// The interactive docs page at `/api/docs` (outside the rate limit: static files).
pub fn docs_page() -> Router<AppState> {
    docs::page()
}

/// The OpenAPI document: with tokens, for any valid one (the `Caller` extractor).
async fn openapi(_caller: Caller) -> Response {
    match document().to_pretty_json() {
        Ok(json) => ([("content-type", "application/json")], json).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "api: cannot render the OpenAPI document");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::NoSuchEndpoint
}

/// The caller: user, name, role and the boards their token opens; with `?boardId=`, also
/// their role on that board.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    params(
        ("boardId" = Option<String>, Query, description = "a board id (1 to 64 letters, digits, `-` or `_`): the answer's `boardRole` is the caller's role there, their own role on that board over the default `role`")
    ),
    responses(
        (status = 200, body = Me),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "a `boardId` that is not a board id"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "the token does not open that board")
    )
)]
async fn me(
    State(state): State<AppState>,
    Caller(who): Caller,
    query: Result<Query<MeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Me>, ApiError> {
    let Query(query) = query?;
    let board_role = match query.board_id {
        None => None,
        Some(board_id) => {
            let board = BoardId::parse(&board_id)
                .map_err(|e| ApiError::BadRequest(format!("boardId: {e}")))?;
            may_open(&who, &board)?;
            let own = who.board_roles.get(&board).copied();
            Some(BoardRole {
                board_id: board.to_string(),
                role: own.unwrap_or(who.role).as_str().to_owned(),
                own: own.is_some(),
            })
        }
    };
    let local = state.connections.auth.is_local();
    let email = match &who.session {
        Some(_) => state
            .storage
            .accounts()
            .person(&who.user)
            .await?
            .map(|person| person.email),
        None => None,
    };
    let signed_in_with = match (&who.session, local) {
        (Some(_), _) => "session",
        (None, true) => "local",
        (None, false) => "token",
    };
    Ok(Json(Me {
        email,
        signed_in_with: signed_in_with.to_owned(),
        user: who.user,
        name: who.name,
        role: who.role.as_str().to_owned(),
        boards: who
            .boards
            .map(|boards| boards.iter().map(|b| b.to_string()).collect()),
        local,
        board_role,
    }))
}

/// Adds an event to a card's timeline, as the caller, now.
#[utoipa::path(
    post,
    path = "/api/v1/boards/{boardId}/cards/{cardId}/timeline",
    params(
        ("boardId" = String, Path, description = "the board's id"),
        ("cardId" = String, Path, description = "the card's id"),
        ("X-Funnel-User" = Option<String>, Header, description = "local mode only (no tokens): the user of the event, default `local`; ignored with tokens")
    ),
    request_body = NewTimelineEvent,
    responses(
        (status = 201, body = TimelineEntry),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "unknown kind or direction, an unknown field (`user`, `at`), text too long, a bad X-Funnel-User"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "no valid token"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "viewers cannot add events, or the token does not open this board"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such board or card"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the board is archived (read-only)"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "the body is too large, or the board is at its size limit (--max-board-bytes)"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "too many posts from this caller: retry after the Retry-After header's seconds")
    )
)]
async fn add_timeline_event(
    State(state): State<AppState>,
    caller: Caller,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Path((board_id, card)): Path<(String, String)>,
    body: Result<Json<NewTimelineEvent>, JsonRejection>,
) -> Result<(StatusCode, Json<TimelineEntry>), ApiError> {
    let who = caller.on_board(&board_id).at_least(Role::Member)?;
    let local = state.connections.auth.is_local();
    // Per token user; in local mode everyone is the local admin, so per address.
    let rate_key = if local {
        peer.ip().to_string()
    } else {
        who.user.clone()
    };
    state
        .timeline_rate
        .take(&rate_key)
        .map_err(|wait| ApiError::RateLimited {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        })?;
    let user = if local {
        match headers.get(USER_HEADER) {
            None => who.user.clone(),
            Some(value) => {
                let user = value.to_str().map(str::trim).unwrap_or_default();
                if user.is_empty() || user.chars().count() > MAX_NAME_CHARS {
                    return Err(ApiError::BadRequest(format!(
                        "X-Funnel-User must be 1 to {MAX_NAME_CHARS} visible ASCII characters"
                    )));
                }
                user.to_owned()
            }
        }
    } else {
        who.user.clone()
    };
    let Json(new) = body?;
    let meta = existing_board_meta(&state, &who, &board_id).await?;
    not_archived(&meta)?;
    let board = meta.id;
    let kind = TimelineKind::parse(&new.kind).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let direction = kind
        .parse_direction(new.direction.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if new.text.len() > MAX_EVENT_TEXT_BYTES {
        return Err(ApiError::BadRequest(format!(
            "text has at most {MAX_EVENT_TEXT_BYTES} bytes"
        )));
    }
    let event = TimelineEvent {
        id: 0,
        board: board.clone(),
        card,
        at: crate::clock::Clock::now_ms(&crate::clock::SystemClock),
        kind,
        direction,
        user,
        text: new.text,
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let room = state.connections.rooms.get_or_spawn(&board);
    room.send(RoomCommand::Timeline {
        event: Box::new(event),
        origin: crate::feed::Origin::Api,
        mail: None,
        reply,
    })
    .await
    .map_err(|_| ApiError::Busy)?;
    match answer.await.map_err(|_| ApiError::Busy)? {
        Ok(event) => Ok((StatusCode::CREATED, Json(TimelineEntry::from(event)))),
        Err(e @ TimelineError::BoardFull { .. }) => Err(ApiError::TooLarge(e.to_string())),
        Err(TimelineError::NoSuchCard(card)) => Err(ApiError::NoSuchCard(card)),
        Err(TimelineError::Storage(e)) => Err(ApiError::Storage(e)),
    }
}

/// A card's timeline, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/boards/{boardId}/cards/{cardId}/timeline",
    params(
        ("boardId" = String, Path, description = "the board's id"),
        ("cardId" = String, Path, description = "the card's id"),
        ("before" = Option<i64>, Query, description = "only events with a smaller id (the previous page's `next`)"),
        ("limit" = Option<usize>, Query, description = "events per page, 1 to 200 (default 50)")
    ),
    responses(
        (status = 200, body = TimelinePage),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "a `before` or `limit` that is not a number"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
async fn get_timeline(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((board_id, card)): Path<(String, String)>,
    page: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TimelinePage>, ApiError> {
    let Query(page) = page?;
    let board = existing_board(&state, &who, &board_id).await?;
    let limit = page.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let events = state
        .storage
        .events(&board, &card, page.before, limit)
        .await?;
    let next = (events.len() == limit)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    let mail_ids: Vec<i64> = events
        .iter()
        .filter(|e| e.kind == TimelineKind::Email && e.direction == TimelineDirection::Incoming)
        .map(|e| e.id)
        .collect();
    let mut mails: std::collections::HashMap<i64, crate::storage::InboundMail> =
        if mail_ids.is_empty() {
            Default::default()
        } else {
            state
                .storage
                .mails_of_events(&board, &mail_ids)
                .await?
                .into_iter()
                .map(|mail| (mail.event_id, mail))
                .collect()
        };
    Ok(Json(TimelinePage {
        events: events
            .into_iter()
            .map(|event| {
                let mail = mails.remove(&event.id).map(|mail| TimelineMail {
                    message_id: mail.message_id,
                    subject: mail.subject,
                    from: mail.from_address,
                    from_name: mail.from_name,
                });
                TimelineEntry {
                    mail,
                    ..TimelineEntry::from(event)
                }
            })
            .collect(),
        next,
    }))
}

async fn existing_board(
    state: &AppState,
    who: &Principal,
    board_id: &str,
) -> Result<BoardId, ApiError> {
    Ok(existing_board_meta(state, who, board_id).await?.id)
}

/// The board `board_id` names, if it exists and the caller's token opens it.
async fn existing_board_meta(
    state: &AppState,
    who: &Principal,
    board_id: &str,
) -> Result<BoardMeta, ApiError> {
    let not_found = || ApiError::NoSuchBoard(board_id.to_owned());
    let id = BoardId::parse(board_id).map_err(|_| not_found())?;
    may_open(who, &id)?;
    state.storage.meta(&id).await?.ok_or_else(not_found)
}

/// 409 when the board is archived: it is read-only until an admin restores it.
fn not_archived(meta: &BoardMeta) -> Result<(), ApiError> {
    match meta.archived_at {
        None => Ok(()),
        Some(_) => Err(ApiError::Conflict(format!(
            "board {} is archived and read-only: an admin restores it with PATCH \
             /api/v1/boards/{} {{\"archived\": false}}",
            meta.id, meta.id
        ))),
    }
}
