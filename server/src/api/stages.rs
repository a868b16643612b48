//! `/api/v1/boards/{boardId}/stages`: list, add, rename/recolour/move, delete (admin writes).

use super::board_call::{BoardCaller, json};
use super::{ApiError, Caller, Problem};
use crate::app_state::AppState;
use crate::room::api_write::ApiWriteError;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use funnel_protocol::board::{self, BoardView};
use funnel_protocol::policy::Role;
use funnel_protocol::schema::StageKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use yrs::{ReadTxn, Transaction};

/// A stage (a column), in board order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageJson {
    pub id: String,
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    /// `initial`, `progress`, `success` or `failure`.
    pub kind: String,
    pub pos: String,
    /// How many cards it shows.
    pub cards: usize,
    /// What a card must carry to enter it: card keys (`amount`, `client`, `email`,
    /// `responsible`, `closeDate`, `lostReason`) and custom field ids.
    pub required: Vec<String>,
    /// Percent chance that a card here is won (0 to 100); unset: 100 for the success stage, 0
    /// elsewhere.
    pub probability: i64,
    /// Days without activity after which a card here is stale; 0: never.
    pub rot_days: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StageList {
    pub stages: Vec<StageJson>,
    /// Always null: every stage is on one page.
    pub next: Option<String>,
}

/// A stage to add: a `progress` stage (default) or another `failure` stage.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStage {
    pub name: String,
    pub color: String,
    #[serde(default)]
    pub kind: Option<String>,
    /// The stage it goes right after; default: the last stage of its kind's place.
    #[serde(default)]
    pub after: Option<String>,
}

/// Changes to a stage: `name`, `color`, `after` (the stage it moves right after), and its
/// rules: `required`, `probability`, `rotDays`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StagePatch {
    pub name: Option<String>,
    pub color: Option<String>,
    pub after: Option<String>,
    /// Replaces the list of what a card must carry to enter the stage.
    pub required: Option<Vec<String>>,
    /// 0 to 100.
    #[schema(minimum = 0, maximum = 100)]
    pub probability: Option<i64>,
    /// 0 (never) to 3650.
    #[schema(minimum = 0, maximum = 3650)]
    pub rot_days: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteQuery {
    pub move_cards_to: Option<String>,
}

fn stage_json<T: ReadTxn>(txn: &T) -> Vec<StageJson> {
    BoardView::read(txn, 0)
        .columns
        .into_iter()
        .map(|column| StageJson {
            probability: column.stage.probability(),
            id: column.stage.id,
            name: column.stage.name,
            color: column.stage.color,
            kind: column.stage.kind.as_str().to_owned(),
            pos: column.stage.pos,
            cards: column.cards.len(),
            required: column.stage.required,
            rot_days: column.stage.rot_days,
        })
        .collect()
}

fn read_stage(txn: &Transaction<'_>, id: &str) -> Result<Value, ApiWriteError> {
    stage_json(txn)
        .into_iter()
        .find(|s| s.id == id)
        .map(json)
        .ok_or_else(|| ApiWriteError::NotFound(format!("no stage {id}")))
}

/// Every stage, in board order.
#[utoipa::path(
    get,
    path = "/api/v1/boards/{boardId}/stages",
    params(("boardId" = String, Path, description = "the board's id")),
    responses(
        (status = 200, body = StageList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_stages(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(board_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    let list = caller
        .read(
            &state,
            "",
            Box::new(|txn, _| {
                let list = StageList {
                    stages: stage_json(txn),
                    next: None,
                };
                Ok(json(list))
            }),
        )
        .await?;
    Ok(Json(list))
}

/// Adds a stage (admin).
#[utoipa::path(
    post,
    path = "/api/v1/boards/{boardId}/stages",
    params(("boardId" = String, Path, description = "the board's id")),
    request_body = NewStage,
    responses(
        (status = 201, body = StageJson, headers(("Location" = String, description = "the stage's URL"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "only admins change stages"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "a second initial or success stage, or a place that breaks the stage order"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_stage(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(board_id): Path<String>,
    body: Result<Json<NewStage>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    let Json(new) = body?;
    let kind = match new.kind.as_deref() {
        None => StageKind::Progress,
        Some(raw) => StageKind::parse(raw).map_err(|e| ApiError::invalid("kind", e.to_string()))?,
    };
    let stage = caller
        .write(
            &state,
            Role::Admin,
            Box::new(move |txn| {
                let stages = board::stages(txn);
                let after = match new.after {
                    Some(after) => {
                        if !stages.iter().any(|s| s.id == after) {
                            return Err(ApiWriteError::invalid(
                                "after",
                                format!("no stage {after}"),
                            ));
                        }
                        after
                    }
                    // A progress stage goes after the last non-final stage; a failure stage last.
                    None => stages
                        .iter()
                        .rev()
                        .find(|s| {
                            kind != StageKind::Progress
                                || matches!(s.kind, StageKind::Initial | StageKind::Progress)
                        })
                        .map(|s| s.id.clone())
                        .ok_or_else(|| ApiWriteError::Conflict("the board has no stage".into()))?,
                };
                Ok(board::add_stage(txn, &new.name, &new.color, kind, &after)?)
            }),
            Box::new(read_stage),
        )
        .await?;
    let location = format!(
        "/api/v1/boards/{board_id}/stages/{}",
        stage["id"].as_str().unwrap_or_default()
    );
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(stage),
    )
        .into_response())
}

/// Renames, recolours or moves a stage, or sets its rules (admin).
#[utoipa::path(
    patch,
    path = "/api/v1/boards/{boardId}/stages/{stageId}",
    params(
        ("boardId" = String, Path, description = "the board's id"),
        ("stageId" = String, Path, description = "the stage's id")
    ),
    request_body = StagePatch,
    responses(
        (status = 200, body = StageJson),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "only admins change stages"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "a move that breaks the stage order (the initial stage first, final stages last)"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn patch_stage(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((board_id, stage_id)): Path<(String, String)>,
    body: Result<Json<StagePatch>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    let Json(patch) = body?;
    let stage = caller
        .write(
            &state,
            Role::Admin,
            Box::new(move |txn| {
                if !board::stages(txn).iter().any(|s| s.id == stage_id) {
                    return Err(ApiWriteError::NotFound(format!("no stage {stage_id}")));
                }
                if let Some(name) = &patch.name {
                    board::rename_stage(txn, &stage_id, name)?;
                }
                if let Some(color) = &patch.color {
                    board::recolor_stage(txn, &stage_id, color)?;
                }
                if let Some(after) = &patch.after {
                    if !board::stages(txn).iter().any(|s| &s.id == after) {
                        return Err(ApiWriteError::invalid("after", format!("no stage {after}")));
                    }
                    board::move_stage(txn, &stage_id, after)?;
                }
                let rules = board::StageRules {
                    required: patch.required,
                    probability: patch.probability,
                    rot_days: patch.rot_days,
                };
                if rules != board::StageRules::default() {
                    board::set_stage_rules(txn, &stage_id, rules)?;
                }
                Ok(stage_id)
            }),
            Box::new(read_stage),
        )
        .await?;
    Ok(Json(stage))
}

/// Deletes a stage (admin). Its cards go to `moveCardsTo`; without it, a stage that holds cards
/// is not deleted (409). The initial and the success stage are never deleted (409).
#[utoipa::path(
    delete,
    path = "/api/v1/boards/{boardId}/stages/{stageId}",
    params(
        ("boardId" = String, Path, description = "the board's id"),
        ("stageId" = String, Path, description = "the stage's id"),
        ("moveCardsTo" = Option<String>, Query, description = "the stage that takes its cards, at its end")
    ),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "only admins change stages"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the initial, the success or the last failure stage, or a stage that holds cards without moveCardsTo"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "moveCardsTo names no other stage")
    )
)]
pub async fn delete_stage(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((board_id, stage_id)): Path<(String, String)>,
    Query(query): Query<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    let caller = BoardCaller::new(&state, caller, &headers, &board_id).await?;
    caller
        .write(
            &state,
            Role::Admin,
            Box::new(move |txn| {
                let stages = stage_json(txn);
                let Some(stage) = stages.iter().find(|s| s.id == stage_id) else {
                    return Err(ApiWriteError::NotFound(format!("no stage {stage_id}")));
                };
                let target = match query.move_cards_to {
                    Some(target) => {
                        if target == stage_id || !stages.iter().any(|s| s.id == target) {
                            return Err(ApiWriteError::invalid(
                                "moveCardsTo",
                                format!("{target} is not another stage of this board"),
                            ));
                        }
                        target
                    }
                    None if stage.cards > 0 && stage.kind != "initial" => {
                        let cards = match stage.cards {
                            1 => "1 card".to_owned(),
                            n => format!("{n} cards"),
                        };
                        return Err(ApiWriteError::Conflict(format!(
                            "the stage holds {cards}: pass ?moveCardsTo=<stageId>"
                        )));
                    }
                    // No card moves: any other stage will do as the target.
                    None => stages
                        .iter()
                        .find(|s| s.id != stage_id)
                        .map(|s| s.id.clone())
                        .unwrap_or_default(),
                };
                board::delete_stage(txn, &stage_id, &target)?;
                Ok(stage_id)
            }),
            Box::new(|_, _| Ok(Value::Null)),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
