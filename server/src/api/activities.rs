//! `/api/v1/boards/{boardId}/cards/{cardId}/activities`: a card's activities (planned calls,
//! meetings, tasks; incoming ones); list, add, edit or complete (`done: true`).

use super::board_call::{BoardCaller, json, now_ms};
use super::{ApiError, Caller, Problem};
use crate::app_state::AppState;
use crate::room::api_write::ApiWriteError;
pub use crate::shapes::ActivityJson;
use crate::shapes::activity_json as json_of;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use funnel_protocol::board::{self, ActivityEdit, NewActivity};
use funnel_protocol::policy::Role;
use funnel_protocol::rules::Direction;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use yrs::Transaction;

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityList {
    pub activities: Vec<ActivityJson>,
    /// Always null: a card's activities are on one page.
    pub next: Option<String>,
}

/// An activity to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewActivityJson {
    pub kind: String,
    /// `outgoing` (default: planned) or `incoming`.
    pub direction: Option<String>,
    pub subject: Option<String>,
    pub deadline: Option<i64>,
    pub remind_min: Option<i64>,
    /// Default: the caller.
    pub responsible: Option<String>,
}

/// Changes to an activity; `done: true` completes it (`false` opens it again).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ActivityPatch {
    pub done: Option<bool>,
    pub subject: Option<String>,
    pub deadline: Option<i64>,
    pub remind_min: Option<i64>,
    pub responsible: Option<String>,
}

fn read_activity(txn: &Transaction<'_>, id: &str) -> Result<Value, ApiWriteError> {
    board::activities_by_card(txn)
        .values()
        .flatten()
        .find(|a| a.id == id)
        .map(|a| json(json_of(a)))
        .ok_or_else(|| ApiWriteError::NotFound(format!("no activity {id}")))
}

fn no_card(card: &str) -> ApiWriteError {
    ApiWriteError::NotFound(format!("no card {card}"))
}

/// A card's activities, in id (creation) order.
#[utoipa::path(
    get,
    path = "/api/v1/boards/{boardId}/cards/{cardId}/activities",
    params(
        ("boardId" = String, Path, description = "the board's id"),
        ("cardId" = String, Path, description = "the card's id")
    ),
    responses(
        (status = 200, body = ActivityList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_activities(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((board_id, card_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    let list = caller
        .read(
            &state,
            card_id,
            Box::new(|txn, card| {
                board::card(txn, card).ok_or_else(|| no_card(card))?;
                let activities = board::activities_by_card(txn)
                    .remove(card)
                    .unwrap_or_default()
                    .iter()
                    .map(json_of)
                    .collect();
                let list = ActivityList {
                    activities,
                    next: None,
                };
                Ok(json(list))
            }),
        )
        .await?;
    Ok(Json(list))
}

/// Adds an activity to a card.
#[utoipa::path(
    post,
    path = "/api/v1/boards/{boardId}/cards/{cardId}/activities",
    params(
        ("boardId" = String, Path, description = "the board's id"),
        ("cardId" = String, Path, description = "the card's id")
    ),
    request_body = NewActivityJson,
    responses(
        (status = 201, body = ActivityJson, headers(("Location" = String, description = "the activity's URL"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "viewers write nothing"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the board is archived (read-only)"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_activity(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((board_id, card_id)): Path<(String, String)>,
    body: Result<Json<NewActivityJson>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    let Json(new) = body?;
    if new.kind.trim().is_empty() || new.kind.chars().count() > 50 {
        return Err(ApiError::invalid(
            "kind",
            "1 to 50 characters: call, meeting, task, ...",
        ));
    }
    let direction = match new.direction.as_deref() {
        None | Some("outgoing") => Direction::Outgoing,
        Some("incoming") => Direction::Incoming,
        Some(_) => return Err(ApiError::invalid("direction", "use incoming or outgoing")),
    };
    let actor = caller.principal.user.clone();
    let card = card_id.clone();
    let activity = caller
        .write(
            &state,
            Role::Member,
            Box::new(move |txn| {
                board::card(txn, &card).ok_or_else(|| no_card(&card))?;
                let activity = NewActivity {
                    card: card.clone(),
                    kind: new.kind.trim().to_owned(),
                    direction,
                    subject: new.subject.unwrap_or_default(),
                    deadline: new.deadline,
                    remind_min: new.remind_min,
                    responsible: new.responsible.unwrap_or(actor),
                };
                let id = board::add_activity(txn, activity)?;
                board::touch_card(txn, &card, now_ms())?;
                Ok(id)
            }),
            Box::new(read_activity),
        )
        .await?;
    let location = format!(
        "/api/v1/boards/{board_id}/cards/{card_id}/activities/{}",
        activity["id"].as_str().unwrap_or_default()
    );
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(activity),
    )
        .into_response())
}

/// Edits an activity; `done: true` completes it.
#[utoipa::path(
    patch,
    path = "/api/v1/boards/{boardId}/cards/{cardId}/activities/{activityId}",
    params(
        ("boardId" = String, Path, description = "the board's id"),
        ("cardId" = String, Path, description = "the card's id"),
        ("activityId" = String, Path, description = "the activity's id")
    ),
    request_body = ActivityPatch,
    responses(
        (status = 200, body = ActivityJson),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "viewers write nothing"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such card, or no such activity of it"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the board is archived (read-only)")
    )
)]
pub async fn patch_activity(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((board_id, card_id, activity_id)): Path<(String, String, String)>,
    body: Result<Json<ActivityPatch>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    let Json(patch) = body?;
    let activity = caller
        .write(
            &state,
            Role::Member,
            Box::new(move |txn| {
                let of_card = board::activities_by_card(txn)
                    .get(&card_id)
                    .is_some_and(|list| list.iter().any(|a| a.id == activity_id));
                if !of_card {
                    return Err(ApiWriteError::NotFound(format!(
                        "no activity {activity_id} on card {card_id}"
                    )));
                }
                let edit = ActivityEdit {
                    subject: patch.subject,
                    deadline: patch.deadline,
                    remind_min: patch.remind_min,
                    responsible: patch.responsible,
                };
                board::edit_activity(txn, &activity_id, edit)?;
                if let Some(done) = patch.done {
                    board::complete_activity_at(txn, &activity_id, done, now_ms())?;
                }
                board::touch_card(txn, &card_id, now_ms())?;
                Ok(activity_id)
            }),
            Box::new(read_activity),
        )
        .await?;
    Ok(Json(activity))
}
