//! The JSON API under `/api/v1/`, described by the OpenAPI document at
//! `/api/v1/openapi.json`. Errors are `{"error": "..."}` with a 4xx or 5xx status, made in one
//! place ([`ApiError`]).

use crate::http::AppState;
use crate::room;
use crate::storage::{BoardMeta, StorageError};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use funnel_protocol::BoardId;
use funnel_protocol::board::MAX_NAME_CHARS;
use funnel_protocol::ids::new_id;
use funnel_protocol::schema::Entity;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "funnel",
        description = "Real-time CRM Kanban: boards (pipelines) of stages and cards. A board's \
                       content is a Yjs document served at /ws/boards/{boardId} over the \
                       y-websocket protocol; this API lists and creates boards."
    ),
    paths(list_boards, create_board, get_board),
    components(schemas(Board, BoardList, NewBoard, ErrorBody))
)]
pub struct ApiDoc;

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
    /// 1 to 200 characters; defaults to the entity's name ("Deals", ...).
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

impl From<BoardMeta> for Board {
    fn from(meta: BoardMeta) -> Self {
        Board {
            id: meta.id.to_string(),
            entity: meta.entity,
            name: meta.name,
            created_at: meta.created_at,
        }
    }
}

/// Every way an API call fails, and the one place it becomes a response.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("no board {0}")]
    NoSuchBoard(String),
    #[error("no such endpoint: see /api/v1/openapi.json")]
    NoSuchEndpoint,
    #[error("storage is unavailable; try again")]
    Storage(#[from] StorageError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NoSuchBoard(_) | ApiError::NoSuchEndpoint => StatusCode::NOT_FOUND,
            ApiError::Storage(e) => {
                tracing::error!(error = %e, "api: storage failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

pub async fn openapi() -> Response {
    match ApiDoc::openapi().to_pretty_json() {
        Ok(json) => ([("content-type", "application/json")], json).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "api: cannot render the OpenAPI document");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

pub async fn not_found() -> ApiError {
    ApiError::NoSuchEndpoint
}

/// Every board, oldest first.
#[utoipa::path(get, path = "/api/v1/boards", responses((status = 200, body = BoardList)))]
pub async fn list_boards(State(state): State<AppState>) -> Result<Json<BoardList>, ApiError> {
    let boards = state.storage.list().await?;
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
        (status = 400, body = ErrorBody, description = "unknown entity, bad name or bad JSON")
    )
)]
pub async fn create_board(
    State(state): State<AppState>,
    body: Result<Json<NewBoard>, JsonRejection>,
) -> Result<(StatusCode, Json<Board>), ApiError> {
    let Json(new) = body?;
    let entity = Entity::parse(&new.entity).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let name = match new.name.as_deref().map(str::trim) {
        None | Some("") => entity.default_board_name(),
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
    };
    room::create_board(state.storage.as_ref(), &meta, &entity).await?;
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
    responses((status = 200, body = Board), (status = 404, body = ErrorBody))
)]
pub async fn get_board(
    State(state): State<AppState>,
    Path(board_id): Path<String>,
) -> Result<Json<Board>, ApiError> {
    let not_found = || ApiError::NoSuchBoard(board_id.clone());
    let id = BoardId::parse(&board_id).map_err(|_| not_found())?;
    let meta = state.storage.meta(&id).await?.ok_or_else(not_found)?;
    Ok(Json(Board::from(meta)))
}
