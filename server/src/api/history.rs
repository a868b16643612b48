//! `GET /api/v1/boards/{boardId}/cards/{cardId}/history`: a card's history, newest first, from
//! the change feed (docs/events.md) through its index by card (`Storage::card_changes`): who
//! created, moved, edited, won, lost, archived or deleted it, and its activities, a page at a
//! time. Anyone the token lets open the board may read it, viewers too.

use super::board_call::{BoardCaller, json};
use super::{ApiError, Caller, Problem};
use crate::app_state::AppState;
use crate::feed::ChangeEventJson;
use crate::room::api_write::ApiWriteError;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use funnel_protocol::board;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The default page of a card's history.
pub const DEFAULT_HISTORY_PAGE: usize = 50;
/// The largest page of a card's history.
pub const MAX_HISTORY_PAGE: usize = 200;

/// A page of a card's history, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardHistory {
    /// The change feed's events about the card (`card.*`, and `activity.*` of its activities).
    pub events: Vec<ChangeEventJson>,
    /// Pass as `before` for the next (older) page; null on the last page.
    pub next: Option<String>,
}

/// The history's query.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    pub before: Option<String>,
    pub limit: Option<usize>,
}

/// A card's history: the change events about it, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/boards/{boardId}/cards/{cardId}/history",
    params(
        ("boardId" = String, Path, description = "the board's id"),
        ("cardId" = String, Path, description = "the card's id"),
        ("before" = Option<String>, Query, pattern = "^[0-9]{1,18}$", description = "an event id: only older events (the previous page's `next`)"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "events per page, 1 to 200 (default 50)")
    ),
    responses(
        (status = 200, body = CardHistory),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "a bad `before` or `limit`"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "the token does not open this board"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such board, or no such card and no history of one")
    )
)]
pub async fn card_history(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((board_id, card_id)): Path<(String, String)>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<CardHistory>, ApiError> {
    let Query(query) = query?;
    let before = query.before.as_deref().map(before_cursor).transpose()?;
    let limit = match query.limit {
        None => DEFAULT_HISTORY_PAGE,
        Some(limit @ 1..=MAX_HISTORY_PAGE) => limit,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "limit must be 1 to {MAX_HISTORY_PAGE}, got {other}"
            )));
        }
    };
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    // One more than the page: whether an older page exists, without a last empty one.
    let mut events = state
        .storage
        .card_changes(&caller.board, &card_id, before, limit + 1)
        .await?;
    let more = events.len() > limit;
    events.truncate(limit);
    if events.is_empty() && before.is_none() {
        // A deleted card keeps its history; a card that never was has none and no card.
        caller
            .read(&state, card_id.clone(), Box::new(card_exists))
            .await?;
    }
    let next = more
        .then(|| events.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Json(CardHistory {
        events: events.iter().map(|e| e.to_json()).collect(),
        next,
    }))
}

fn before_cursor(raw: &str) -> Result<i64, ApiError> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "before must be an event id (a non-negative integer), got {raw:?}"
            ))
        })
}

fn card_exists(txn: &yrs::Transaction<'_>, id: &str) -> Result<Value, ApiWriteError> {
    board::card(txn, id)
        .map(|_| json(true))
        .ok_or_else(|| ApiWriteError::NotFound(format!("no card {id}")))
}
