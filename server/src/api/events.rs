//! `/api/v1/events`: the change feed (`crate::feed`) after a cursor, as a JSON page or, with
//! `Accept: text/event-stream` (or at `/api/v1/events/stream`), as a server-sent event stream
//! that resumes from `Last-Event-ID`. A caller sees only the boards its token opens.

use super::{ApiError, Caller, Problem};
use crate::app_state::AppState;
use crate::auth::Principal;
use crate::feed::{ChangeEvent, ChangeEventJson, ChangeFilter};
use crate::storage::MAX_CHANGES_PAGE;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use funnel_protocol::BoardId;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::ToSchema;

/// The default page of events.
pub const DEFAULT_EVENTS_PAGE: usize = 100;

/// How often an idle stream sends a comment: proxies and load balancers close connections
/// that carry nothing for a while (often 60 s).
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

/// Events a stream reads from storage at once.
const STREAM_BATCH: usize = 100;

/// A page of the change feed, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeList {
    pub events: Vec<ChangeEventJson>,
    /// Pass as `after` for what follows: the last event's id, or the `after` given when there
    /// is nothing newer yet (never null: a feed has no last page).
    pub next: String,
}

/// The feed's query.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsQuery {
    /// A cursor: an event's id. Default: the start (the list), or now (the stream).
    pub after: Option<String>,
    pub board_id: Option<String>,
    /// Comma-separated types, each exact (`card.moved`) or a prefix (`card.*`).
    pub types: Option<String>,
    pub limit: Option<usize>,
}

/// What a request asks of the feed, checked.
struct Asked {
    after: Option<i64>,
    filter: ChangeFilter,
    limit: usize,
}

fn cursor(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{what} must be an event id (a non-negative integer), got {raw:?}"
            ))
        })
}

fn asked(who: &Principal, query: EventsQuery, headers: &HeaderMap) -> Result<Asked, ApiError> {
    // `Last-Event-ID` is what a reconnecting EventSource sends: it wins over `after`.
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("(not text)").to_owned());
    let after = match (last_event_id, &query.after) {
        (Some(id), _) => Some(cursor(&id, "Last-Event-ID")?),
        (None, Some(after)) => Some(cursor(after, "after")?),
        (None, None) => None,
    };
    let boards = match &query.board_id {
        Some(raw) => {
            let board =
                BoardId::parse(raw).map_err(|e| ApiError::BadRequest(format!("boardId: {e}")))?;
            if !who.may_open(&board) {
                return Err(ApiError::Forbidden(format!(
                    "the token does not open board {board}"
                )));
            }
            Some(vec![board])
        }
        None => who.boards.as_ref().map(|boards| boards.to_vec()),
    };
    let types = query
        .types
        .as_deref()
        .map(ChangeFilter::parse_types)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("types: {e}")))?;
    let limit = match query.limit {
        None => DEFAULT_EVENTS_PAGE,
        Some(limit @ 1..=MAX_CHANGES_PAGE) => limit,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "limit must be 1 to {MAX_CHANGES_PAGE}, got {other}"
            )));
        }
    };
    Ok(Asked {
        after,
        filter: ChangeFilter { boards, types },
        limit,
    })
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"))
}

/// The change feed after a cursor, oldest first (see docs/events.md). With `Accept:
/// text/event-stream`, a server-sent event stream instead (not described here: see
/// docs/api.md).
#[utoipa::path(
    get,
    path = "/api/v1/events",
    params(
        ("after" = Option<String>, Query, pattern = "^[0-9]{1,18}$", description = "an event id: list what came after it (default: from the oldest kept)"),
        ("boardId" = Option<String>, Query, description = "only this board's events"),
        ("types" = Option<String>, Query, pattern = "^(card|activity|stage)\\.[a-z*]+(,(card|activity|stage)\\.[a-z*]+)*$", description = "comma-separated event types, exact (`card.moved`) or a prefix (`card.*`)"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100"),
        ("Last-Event-ID" = Option<String>, Header, pattern = "^[0-9]{1,18}$", description = "an event id; wins over `after`")
    ),
    responses(
        (status = 200, body = ChangeList),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "a bad cursor, board id, type or limit"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "the token does not open that board")
    )
)]
pub async fn list_events(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let asked = asked(&who, query, &headers)?;
    if wants_stream(&headers) {
        return Ok(stream(state, asked).into_response());
    }
    let after = asked.after.unwrap_or(0);
    let events = state
        .storage
        .changes_after(after, &asked.filter, asked.limit)
        .await?;
    let next = events.last().map_or(after, |e| e.id).to_string();
    Ok(Json(ChangeList {
        events: events.iter().map(ChangeEvent::to_json).collect(),
        next,
    })
    .into_response())
}

/// `/api/v1/events/stream`: the stream whatever the `Accept` header says.
pub async fn stream_events(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let asked = asked(&who, query, &headers)?;
    Ok(stream(state, asked).into_response())
}

/// Where a stream is: its cursor, what it read but has not sent, and its wake-up.
struct Streaming {
    state: AppState,
    feed: crate::feed::Feed,
    filter: ChangeFilter,
    cursor: i64,
    ready: VecDeque<ChangeEvent>,
}

/// Events after the cursor (default: the newest stored now), each as `id:` (the cursor) and
/// `data:` (the event's JSON), then new ones as they are stored; ends at shutdown or when
/// storage fails (the client reconnects with `Last-Event-ID`).
fn stream(
    state: AppState,
    asked: Asked,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let feed = state.feed.clone();
    let cursor = asked.after.unwrap_or_else(|| feed.latest());
    let start = Streaming {
        state,
        feed,
        filter: asked.filter,
        cursor,
        ready: VecDeque::new(),
    };
    let events = futures_util::stream::unfold(start, |mut s| async move {
        loop {
            if let Some(event) = s.ready.pop_front() {
                let json = serde_json::to_string(&event.to_json()).unwrap_or_default();
                let sse = Event::default().id(event.id.to_string()).data(json);
                return Some((Ok(sse), s));
            }
            let read = s
                .state
                .storage
                .changes_after(s.cursor, &s.filter, STREAM_BATCH)
                .await;
            match read {
                Ok(events) if !events.is_empty() => {
                    if let Some(last) = events.last() {
                        s.cursor = last.id;
                    }
                    s.ready.extend(events);
                }
                Ok(_) => {
                    let shutdown = s.state.connections.shutdown.clone();
                    tokio::select! {
                        () = shutdown.cancelled() => return None,
                        _ = s.feed.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "change feed stream: storage failed; ending it");
                    return None;
                }
            }
        }
    });
    Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(KEEP_ALIVE_EVERY)
            .text("keep-alive"),
    )
}
