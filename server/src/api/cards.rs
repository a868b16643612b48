//! `/api/v1/boards/{boardId}/cards`: list (filters, paging), create, read, edit or move, delete.

use super::board_call::{BoardCaller, json, now_ms};
use super::{ApiError, Caller, Problem};
use crate::app_state::AppState;
use crate::room::api_write::ApiWriteError;
pub use crate::shapes::CardJson;
use crate::shapes::card_json;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use funnel_protocol::board::{self, BoardView, CardEdit, CardPlace, NewCard};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use yrs::{Any, Map, ReadTxn, Transaction, TransactionMut};

/// The default and largest page of cards.
pub const DEFAULT_CARDS_PAGE: usize = 100;
pub const MAX_CARDS_PAGE: usize = 500;

/// A page of cards, in board order.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardList {
    pub cards: Vec<CardJson>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next: Option<String>,
}

/// A card to create: `title` always, and every field of the board's quick-create form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewCardJson {
    pub title: String,
    /// Default: the initial stage.
    pub stage_id: Option<String>,
    pub amount: Option<i64>,
    /// ISO 4217 (three capital letters); default the board's.
    pub currency: Option<String>,
    /// Default: the caller.
    pub responsible: Option<String>,
    pub client: Option<String>,
    pub email: Option<String>,
    #[schema(value_type = Object)]
    pub fields: Option<BTreeMap<String, Value>>,
    /// The expected close date (ms).
    pub close_date: Option<i64>,
    /// Why it was lost (one of the board's lost reasons when it lists any).
    pub lost_reason: Option<String>,
}

/// Changes to a card: only the fields sent change. `stageId` moves it, to the top of that stage
/// unless `before` or `after` names a card of it; `before`/`after` alone move it within its
/// stage.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CardPatch {
    pub title: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub responsible: Option<String>,
    pub client: Option<String>,
    pub email: Option<String>,
    /// Values to set; null clears one.
    #[schema(value_type = Object)]
    pub fields: Option<BTreeMap<String, Value>>,
    /// The expected close date (ms); null clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub close_date: Option<Option<i64>>,
    /// Why it was lost; empty clears it.
    pub lost_reason: Option<String>,
    pub stage_id: Option<String>,
    /// Place it right before this card of the target stage.
    pub before: Option<String>,
    /// Place it right after this card of the target stage.
    pub after: Option<String>,
    /// `true` archives the card (it leaves the board's columns, keeping its stage, place and
    /// activities); `false` restores it where it was.
    pub archived: Option<bool>,
}

/// A field that may be absent (`None`), null (`Some(None)`) or set.
fn double_option<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(deserializer).map(Some)
}

/// Filters and paging of the card list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardQuery {
    pub stage_id: Option<String>,
    pub responsible: Option<String>,
    pub q: Option<String>,
    pub updated_since: Option<i64>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    /// `true`: the archived cards instead (most recently archived first).
    pub archived: Option<bool>,
}

/// One card as JSON, in the column it is shown in.
pub(super) fn read_card(txn: &Transaction<'_>, id: &str) -> Result<Value, ApiWriteError> {
    let card =
        board::card(txn, id).ok_or_else(|| ApiWriteError::NotFound(format!("no card {id}")))?;
    let stages = board::stages(txn);
    let shown_in = if stages.iter().any(|s| s.id == card.stage) {
        card.stage.clone()
    } else {
        stages
            .first()
            .map(|s| s.id.clone())
            .unwrap_or_else(|| card.stage.clone())
    };
    Ok(json(card_json(txn, &card, &shown_in)))
}

fn to_any(field: &str, value: Value) -> Result<Any, ApiWriteError> {
    serde_json::from_value(value).map_err(|e| ApiWriteError::invalid(field, e.to_string()))
}

fn check_currency(currency: &str) -> Result<(), ApiWriteError> {
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(ApiWriteError::invalid(
            "currency",
            "use a three-letter ISO 4217 code such as USD",
        ))
    }
}

/// The stage a body names, as a field error when it is not on the board.
fn named_stage(txn: &TransactionMut<'_>, id: &str) -> Result<(), ApiWriteError> {
    if board::stages(txn).iter().any(|s| s.id == id) {
        Ok(())
    } else {
        Err(ApiWriteError::invalid("stageId", format!("no stage {id}")))
    }
}

/// The cards of the board, in board order, filtered.
#[utoipa::path(
    get,
    path = "/api/v1/boards/{boardId}/cards",
    params(
        ("boardId" = String, Path, description = "the board's id"),
        ("stageId" = Option<String>, Query, description = "only the cards shown in this stage"),
        ("responsible" = Option<String>, Query, description = "only this user's cards"),
        ("q" = Option<String>, Query, description = "text in the title, client or e-mail (case-insensitive)"),
        ("updatedSince" = Option<i64>, Query, description = "only cards changed at this time (ms) or later: their updatedAt, or any change of the change feed (socket edits too)"),
        ("limit" = Option<usize>, Query, description = "cards per page, 1 to 500 (default 100)"),
        ("cursor" = Option<String>, Query, description = "the previous page's `next`"),
        ("archived" = Option<bool>, Query, description = "true: the archived cards (most recently archived first) instead of the board's")
    ),
    responses(
        (status = 200, body = CardList),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "a query parameter that does not parse (a number out of range)"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "a cursor that is no longer on the board")
    )
)]
pub async fn list_cards(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(board_id): Path<String>,
    query: Result<Query<CardQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query?;
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    // A client's socket edit need not set `updatedAt`; its change events say when it changed.
    let changed: std::collections::HashSet<String> = match query.updated_since {
        Some(since) => state
            .storage
            .cards_changed_since(&caller.board, since)
            .await?
            .into_iter()
            .collect(),
        None => Default::default(),
    };
    let limit = query
        .limit
        .unwrap_or(DEFAULT_CARDS_PAGE)
        .clamp(1, MAX_CARDS_PAGE);
    let list = caller
        .read(
            &state,
            "",
            Box::new(move |txn, _| {
                let view = BoardView::read(txn, now_ms());
                let needle = query.q.as_deref().map(str::to_lowercase);
                let archived = if query.archived == Some(true) {
                    archived_cards(txn, &view)
                } else {
                    Vec::new()
                };
                let shown: Box<dyn Iterator<Item = (&str, &board::Card)>> =
                    if query.archived == Some(true) {
                        Box::new(archived.iter().map(|(stage, card)| (stage.as_str(), card)))
                    } else {
                        Box::new(view.columns.iter().flat_map(|column| {
                            column
                                .cards
                                .iter()
                                .map(move |card| (column.stage.id.as_str(), card.as_ref()))
                        }))
                    };
                let all = shown;
                let mut matching = all.filter(|(stage, card)| {
                    query.stage_id.as_deref().is_none_or(|s| s == *stage)
                        && query
                            .responsible
                            .as_deref()
                            .is_none_or(|r| r == card.responsible)
                        && query
                            .updated_since
                            .is_none_or(|t| card.updated_at >= t || changed.contains(&card.id))
                        && needle.as_deref().is_none_or(|n| {
                            [&card.title, &card.client, &card.email]
                                .iter()
                                .any(|text| text.to_lowercase().contains(n))
                        })
                });
                if let Some(cursor) = &query.cursor
                    && !matching.any(|(_, card)| &card.id == cursor)
                {
                    return Err(ApiWriteError::invalid(
                        "cursor",
                        "that card is no longer in the list: start again without a cursor",
                    ));
                }
                let page: Vec<CardJson> = matching
                    .by_ref()
                    .take(limit)
                    .map(|(stage, card)| card_json(txn, card, stage))
                    .collect();
                let next = if page.len() == limit && matching.next().is_some() {
                    page.last().map(|c| c.id.clone())
                } else {
                    None
                };
                Ok(json(CardList { cards: page, next }))
            }),
        )
        .await?;
    Ok(Json(list))
}

/// Creates a card at the top of its stage (default: the initial stage), as the caller.
#[utoipa::path(
    post,
    path = "/api/v1/boards/{boardId}/cards",
    params(("boardId" = String, Path, description = "the board's id")),
    request_body = NewCardJson,
    responses(
        (status = 201, body = CardJson, headers(("Location" = String, description = "the card's URL"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "not JSON, or an unknown field"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "viewers write nothing"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the board is archived (read-only)"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "the board is at its size limit"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "bad fields, or a quick-create field missing: every one listed")
    )
)]
pub async fn create_card(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(board_id): Path<String>,
    body: Result<Json<NewCardJson>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    let Json(new) = body?;
    let actor = caller.principal.user.clone();
    let card = caller
        .write(
            &state,
            funnel_protocol::policy::Role::Member,
            Box::new(move |txn| {
                let mut errors: Vec<(String, String)> = Vec::new();
                if new.title.trim().is_empty() {
                    errors.push(("title".into(), "enter a title".into()));
                }
                for field in board::quick_create_fields(txn) {
                    let given = match field.as_str() {
                        "title" | "responsible" | "currency" => true,
                        "amount" => new.amount.is_some(),
                        "client" => new.client.as_deref().is_some_and(|c| !c.trim().is_empty()),
                        "email" => new.email.as_deref().is_some_and(|e| !e.trim().is_empty()),
                        custom => new
                            .fields
                            .as_ref()
                            .and_then(|f| f.get(custom))
                            .is_some_and(|v| !v.is_null()),
                    };
                    if !given {
                        errors.push((field, "the board's quick-create form asks for it".into()));
                    }
                }
                if !errors.is_empty() {
                    return Err(ApiWriteError::Invalid(errors));
                }
                if let Some(currency) = &new.currency {
                    check_currency(currency)?;
                }
                let stage = match &new.stage_id {
                    Some(stage) => {
                        named_stage(txn, stage)?;
                        stage.clone()
                    }
                    None => board::stages(txn)
                        .into_iter()
                        .next()
                        .map(|s| s.id)
                        .ok_or_else(|| ApiWriteError::Conflict("the board has no stage".into()))?,
                };
                let mut fields = BTreeMap::new();
                for (id, value) in new.fields.unwrap_or_default() {
                    let any = to_any(&format!("fields.{id}"), value)?;
                    fields.insert(id, any);
                }
                let card = NewCard {
                    title: new.title,
                    amount: new.amount.unwrap_or(0),
                    currency: new.currency.unwrap_or_default(),
                    responsible: new.responsible.unwrap_or(actor),
                    client: new.client.unwrap_or_default(),
                    email: new.email.unwrap_or_default(),
                    fields,
                    close_date: new.close_date,
                    lost_reason: new.lost_reason.unwrap_or_default(),
                };
                let now = now_ms();
                let id = board::create_card(txn, &stage, card, now)?;
                board::touch_card(txn, &id, now)?;
                Ok(id)
            }),
            Box::new(read_card),
        )
        .await?;
    let location = format!(
        "/api/v1/boards/{board_id}/cards/{}",
        card["id"].as_str().unwrap_or_default()
    );
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(card),
    )
        .into_response())
}

/// One card.
#[utoipa::path(
    get,
    path = "/api/v1/boards/{boardId}/cards/{cardId}",
    params(
        ("boardId" = String, Path, description = "the board's id"),
        ("cardId" = String, Path, description = "the card's id")
    ),
    responses(
        (status = 200, body = CardJson),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_card(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((board_id, card_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    Ok(Json(
        caller.read(&state, card_id, Box::new(read_card)).await?,
    ))
}

/// Edits the fields sent; `stageId`, `before` or `after` move the card.
#[utoipa::path(
    patch,
    path = "/api/v1/boards/{boardId}/cards/{cardId}",
    params(
        ("boardId" = String, Path, description = "the board's id"),
        ("cardId" = String, Path, description = "the card's id")
    ),
    request_body = CardPatch,
    responses(
        (status = 200, body = CardJson),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "not JSON, or an unknown field"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "viewers write nothing"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such board or card"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the column's order keys cannot take it"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "a bad field, a stage or neighbour that is not on the board")
    )
)]
pub async fn patch_card(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((board_id, card_id)): Path<(String, String)>,
    body: Result<Json<CardPatch>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    let Json(patch) = body?;
    if patch.before.is_some() && patch.after.is_some() {
        return Err(ApiError::invalid(
            "before",
            "send before or after, not both",
        ));
    }
    let card = caller
        .write(
            &state,
            funnel_protocol::policy::Role::Member,
            Box::new(move |txn| {
                let current = board::card(txn, &card_id)
                    .ok_or_else(|| ApiWriteError::NotFound(format!("no card {card_id}")))?;
                if let Some(currency) = &patch.currency {
                    check_currency(currency)?;
                }
                let mut fields = BTreeMap::new();
                for (id, value) in patch.fields.unwrap_or_default() {
                    let any = to_any(&format!("fields.{id}"), value)?;
                    fields.insert(id, any);
                }
                let edit = CardEdit {
                    title: patch.title,
                    amount: patch.amount,
                    currency: patch.currency,
                    responsible: patch.responsible,
                    client: patch.client,
                    email: patch.email,
                    fields,
                    close_date: patch.close_date,
                    lost_reason: patch.lost_reason,
                };
                if let Some(stage) = &patch.stage_id {
                    named_stage(txn, stage)?;
                }
                let moves =
                    patch.stage_id.is_some() || patch.before.is_some() || patch.after.is_some();
                // Check every edit before the move writes anything.
                board::edit_card(txn, &card_id, edit)?;
                match patch.archived {
                    Some(true) if current.archived_at.is_none() => {
                        board::archive_card(txn, &card_id, Some(now_ms()))?;
                    }
                    Some(false) => board::archive_card(txn, &card_id, None)?,
                    _ => {}
                }
                if moves {
                    let stage = patch.stage_id.unwrap_or_else(|| {
                        let stages = board::stages(txn);
                        if stages.iter().any(|s| s.id == current.stage) {
                            current.stage.clone()
                        } else {
                            stages.first().map(|s| s.id.clone()).unwrap_or_default()
                        }
                    });
                    let column = column_of(txn, &stage, &card_id);
                    let neighbour = |field: &str, id: &str| {
                        column.iter().position(|c| c == id).ok_or_else(|| {
                            ApiWriteError::invalid(field, format!("no card {id} in that stage"))
                        })
                    };
                    let place = match (&patch.before, &patch.after) {
                        (Some(before), _) => match neighbour("before", before)? {
                            0 => CardPlace::Top,
                            i => CardPlace::After(column[i - 1].as_str()),
                        },
                        (None, Some(after)) => {
                            neighbour("after", after)?;
                            CardPlace::After(after.as_str())
                        }
                        (None, None) => CardPlace::Top,
                    };
                    board::move_card(txn, &card_id, &stage, place)?;
                }
                board::touch_card(txn, &card_id, now_ms())?;
                Ok(card_id)
            }),
            Box::new(read_card),
        )
        .await?;
    Ok(Json(card))
}

/// The archived cards, most recently archived first, each with the stage it would show in.
fn archived_cards<T: ReadTxn>(txn: &T, view: &BoardView) -> Vec<(String, board::Card)> {
    let initial = view.columns.first().map(|c| c.stage.id.clone());
    let Some(cards) = txn.get_map(funnel_protocol::schema::root::CARDS) else {
        return Vec::new();
    };
    let mut list: Vec<(String, board::Card)> = cards
        .keys(txn)
        .filter_map(|id| board::card(txn, id))
        .filter(|card| card.archived_at.is_some())
        .map(|card| {
            let shown = if view.columns.iter().any(|c| c.stage.id == card.stage) {
                card.stage.clone()
            } else {
                initial.clone().unwrap_or_else(|| card.stage.clone())
            };
            (shown, card)
        })
        .collect();
    list.sort_by(|(_, a), (_, b)| b.archived_at.cmp(&a.archived_at).then(a.id.cmp(&b.id)));
    list
}

/// The ids of the cards shown in `stage`, in order, without `except`.
fn column_of<T: ReadTxn>(txn: &T, stage: &str, except: &str) -> Vec<String> {
    BoardView::read(txn, 0)
        .columns
        .into_iter()
        .find(|c| c.stage.id == stage)
        .map(|c| {
            c.cards
                .iter()
                .filter(|card| card.id != except)
                .map(|card| card.id.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Deletes a card and its activities.
#[utoipa::path(
    delete,
    path = "/api/v1/boards/{boardId}/cards/{cardId}",
    params(
        ("boardId" = String, Path, description = "the board's id"),
        ("cardId" = String, Path, description = "the card's id")
    ),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "viewers write nothing"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the board is archived (read-only)")
    )
)]
pub async fn delete_card(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((board_id, card_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    caller
        .write(
            &state,
            funnel_protocol::policy::Role::Member,
            Box::new(move |txn| {
                board::delete_card(txn, &card_id)?;
                Ok(card_id)
            }),
            Box::new(|_, _| Ok(Value::Null)),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
