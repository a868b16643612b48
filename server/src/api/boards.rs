//! `/api/v1/boards` and `/api/v1/boards/{boardId}`: the board list (archived boards apart,
//! with `?archived=true`), a new board with its entity's default stages, one board. Its
//! settings and archive state are changed in `settings.rs`.

use super::{ApiError, Caller, Problem, may_open};
use crate::app_state::AppState;
use crate::room;
use crate::storage::BoardMeta;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use funnel_protocol::BoardId;
use funnel_protocol::board::MAX_NAME_CHARS;
use funnel_protocol::ids::new_id;
use funnel_protocol::policy::Role;
use funnel_protocol::schema::{Entity, Language};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A board (one pipeline).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Board {
    pub id: String,
    /// `lead`, `deal`, `invoice`, `quote` or `smart:<typeId>`.
    pub entity: String,
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Whether an admin archived it: an archived board is listed only with `?archived=true`
    /// and opens read-only until it is restored.
    pub archived: bool,
    /// When it was archived (ms since the Unix epoch); null when it is not.
    pub archived_at: Option<i64>,
}

/// The board list's query.
#[derive(Debug, Deserialize)]
pub struct BoardsQuery {
    /// `true`: the archived boards instead (most recently archived first).
    pub archived: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BoardList {
    pub boards: Vec<Board>,
}

/// A board to create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewBoard {
    /// `lead`, `deal`, `invoice`, `quote` or `smart:<typeId>`.
    pub entity: String,
    /// 1 to 200 characters; defaults to the entity's name in the board's language ("Deals",
    /// "Transactions", ...).
    #[serde(default)]
    pub name: Option<String>,
    /// `en` or `fr`: the language the default stages (and the default name) are named in.
    /// Missing: the first of these the request's `Accept-Language` names, else `en`.
    #[serde(default)]
    #[schema(example = "fr")]
    pub language: Option<String>,
}

impl From<BoardMeta> for Board {
    fn from(meta: BoardMeta) -> Self {
        Board {
            id: meta.id.to_string(),
            entity: meta.entity,
            name: meta.name,
            created_at: meta.created_at,
            archived: meta.archived_at.is_some(),
            archived_at: meta.archived_at,
        }
    }
}

/// Every board the caller's token opens that is not archived, oldest first; with
/// `archived=true`, the archived ones instead, most recently archived first.
#[utoipa::path(
    get,
    path = "/api/v1/boards",
    params(("archived" = Option<bool>, Query, description = "true: the archived boards (most recently archived first) instead")),
    responses(
        (status = 200, body = BoardList),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "`archived` is not true or false"),
        (status = 401, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_boards(
    State(state): State<AppState>,
    Caller(who): Caller,
    query: Result<Query<BoardsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<BoardList>, ApiError> {
    let Query(query) = query?;
    let archived = query.archived.unwrap_or(false);
    let mut boards: Vec<BoardMeta> = state
        .storage
        .list()
        .await?
        .into_iter()
        .filter(|meta| who.may_open(&meta.id) && meta.archived_at.is_some() == archived)
        .collect();
    if archived {
        boards.sort_by(|a, b| b.archived_at.cmp(&a.archived_at).then(a.id.cmp(&b.id)));
    }
    Ok(Json(BoardList {
        boards: boards.into_iter().map(Board::from).collect(),
    }))
}

/// Creates a board with the default stages of its entity.
#[utoipa::path(
    post,
    path = "/api/v1/boards",
    request_body = NewBoard,
    responses(
        (status = 201, body = Board),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "unknown entity or language, bad name or bad JSON"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "no valid token"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "only admins create boards")
    )
)]
pub async fn create_board(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: Result<Json<NewBoard>, JsonRejection>,
) -> Result<(StatusCode, Json<Board>), ApiError> {
    caller.at_least(Role::Admin)?;
    let Json(new) = body?;
    let entity = Entity::parse(&new.entity).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let language = match new.language.as_deref() {
        Some(raw) => Language::parse(raw).map_err(|e| ApiError::BadRequest(e.to_string()))?,
        None => headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|value| value.to_str().ok())
            .and_then(Language::from_accept_language)
            .unwrap_or_default(),
    };
    let name = match new.name.as_deref().map(str::trim) {
        None | Some("") => entity.default_board_name(language),
        Some(name) if name.chars().count() > MAX_NAME_CHARS => {
            return Err(ApiError::BadRequest(format!(
                "a board name has at most {MAX_NAME_CHARS} characters"
            )));
        }
        Some(name) => name.to_owned(),
    };
    let id = BoardId::parse(&new_id()).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let meta = BoardMeta {
        id: id.clone(),
        entity: entity.as_string(),
        name,
        created_at: 0,
        archived_at: None,
    };
    room::create_board(state.storage.as_ref(), &meta, &entity, language).await?;
    let created = state
        .storage
        .meta(&id)
        .await?
        .ok_or_else(|| ApiError::NoSuchBoard(id.to_string()))?;
    tracing::info!(board = %id, entity = %created.entity, "board created");
    Ok((StatusCode::CREATED, Json(Board::from(created))))
}

/// One board.
#[utoipa::path(
    get,
    path = "/api/v1/boards/{boardId}",
    params(("boardId" = String, Path, description = "the board's id")),
    responses(
        (status = 200, body = Board),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_board(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(board_id): Path<String>,
) -> Result<Json<Board>, ApiError> {
    let not_found = || ApiError::NoSuchBoard(board_id.clone());
    let id = BoardId::parse(&board_id).map_err(|_| not_found())?;
    may_open(&who, &id)?;
    let meta = state.storage.meta(&id).await?.ok_or_else(not_found)?;
    Ok(Json(Board::from(meta)))
}
