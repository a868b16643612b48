//! What every board resource shares: the caller as actor, the call to the board's room
//! (`room::api_write`), and how its refusals become problem documents.

use super::{ApiError, Caller, FieldError, USER_HEADER, existing_board_meta, not_archived};
use crate::app_state::AppState;
use crate::auth::Principal;
use crate::feed::Origin;
use crate::room::RoomCommand;
use crate::room::api_write::{ApiReadFn, ApiRequest, ApiWriteError, ApiWriteFn};
use crate::storage::BoardMeta;
use axum::http::HeaderMap;
use funnel_protocol::BoardId;
use funnel_protocol::board::{BoardError, MAX_NAME_CHARS};
use funnel_protocol::policy::{Refusal, Role};
use funnel_protocol::schema;
use serde_json::Value;

/// A response body as JSON. The API's types serialize without fail (plain structs and maps with
/// string keys); were one not to, the body is `null` rather than a panic in the room.
pub fn json(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The caller of a board resource, with the board it names checked (it exists and the token
/// opens it) and the actor of its writes: the token's user; in local mode the `X-Funnel-User`
/// header, default `local`.
pub struct BoardCaller {
    pub board: BoardId,
    pub principal: Principal,
    /// The board as storage lists it (its name, whether it is archived).
    pub meta: BoardMeta,
}

impl BoardCaller {
    pub async fn new(
        state: &AppState,
        Caller(who): Caller,
        headers: &HeaderMap,
        board_id: &str,
    ) -> Result<Self, ApiError> {
        let meta = existing_board_meta(state, &who, board_id).await?;
        let board = meta.id.clone();
        let mut principal = who.on_board(&board);
        principal.user = actor(state, &principal, headers)?;
        Ok(BoardCaller {
            board,
            principal,
            meta,
        })
    }

    /// Reads from the board's document in its room.
    pub async fn read(
        &self,
        state: &AppState,
        target: impl Into<String>,
        read: ApiReadFn,
    ) -> Result<Value, ApiError> {
        let request = ApiRequest::Read {
            target: target.into(),
            read,
        };
        call(state, &self.board, request).await
    }

    /// Writes as the caller (at least `role`, else 403 before the room is asked; an archived
    /// board, 409), then reads what the write names, once stored.
    pub async fn write(
        &self,
        state: &AppState,
        role: Role,
        write: ApiWriteFn,
        read: ApiReadFn,
    ) -> Result<Value, ApiError> {
        if self.principal.role < role {
            return Err(ApiError::Forbidden(format!(
                "this needs the {role} role; the token's is {}",
                self.principal.role
            )));
        }
        not_archived(&self.meta)?;
        let request = ApiRequest::Write {
            principal: self.principal.clone(),
            origin: Origin::Api,
            write,
            read,
        };
        call(state, &self.board, request).await
    }
}

/// Who acts: the token's user, or in local mode the `X-Funnel-User` header (default `local`).
pub fn actor(state: &AppState, who: &Principal, headers: &HeaderMap) -> Result<String, ApiError> {
    if !state.connections.auth.is_local() {
        return Ok(who.user.clone());
    }
    match headers.get(USER_HEADER) {
        None => Ok(who.user.clone()),
        Some(value) => {
            let user = value.to_str().map(str::trim).unwrap_or_default();
            if user.is_empty() || user.chars().count() > MAX_NAME_CHARS {
                return Err(ApiError::BadRequest(format!(
                    "X-Funnel-User must be 1 to {MAX_NAME_CHARS} visible ASCII characters"
                )));
            }
            Ok(user.to_owned())
        }
    }
}

async fn call(state: &AppState, board: &BoardId, request: ApiRequest) -> Result<Value, ApiError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let room = state.connections.rooms.get_or_spawn(board);
    room.send(RoomCommand::Api {
        request: Box::new(request),
        reply,
    })
    .await
    .map_err(|_| ApiError::Busy)?;
    Ok(answer.await.map_err(|_| ApiError::Busy)??)
}

/// The server's clock, for `createdAt` and `updatedAt`.
pub fn now_ms() -> i64 {
    crate::clock::Clock::now_ms(&crate::clock::SystemClock)
}

impl From<ApiWriteError> for ApiError {
    fn from(error: ApiWriteError) -> Self {
        match error {
            ApiWriteError::Refused(Refusal::Invariant(e)) => ApiError::Conflict(e.to_string()),
            // What the stage requires and the card lacks: one field error each, as a form
            // shows them.
            ApiWriteError::Refused(Refusal::MissingFields(unmet)) => ApiError::Invalid {
                errors: unmet
                    .missing
                    .iter()
                    .map(|key| {
                        let field = if schema::REQUIRABLE_CARD_KEYS.contains(&key.as_str()) {
                            key.clone()
                        } else {
                            format!("fields.{key}")
                        };
                        FieldError::new(
                            field,
                            format!("the stage {:?} requires it", unmet.stage_name),
                        )
                    })
                    .collect(),
            },
            ApiWriteError::Refused(refusal) => ApiError::Forbidden(refusal.to_string()),
            ApiWriteError::Board(e) => from_board(e),
            ApiWriteError::Invalid(errors) => ApiError::Invalid {
                errors: errors
                    .into_iter()
                    .map(|(field, message)| FieldError::new(field, message))
                    .collect(),
            },
            ApiWriteError::Conflict(reason) => ApiError::Conflict(reason),
            ApiWriteError::NotFound(what) => ApiError::NotFound(what),
            e @ ApiWriteError::BoardFull { .. } => ApiError::TooLarge(e.to_string()),
            ApiWriteError::Storage => ApiError::Busy,
        }
    }
}

/// A typed write's refusal: what is missing is 404, a bad value is that field's 422, and what
/// the board's stages forbid is 409.
fn from_board(error: BoardError) -> ApiError {
    let field = |name: &str| ApiError::invalid(name, error.to_string());
    match &error {
        BoardError::NoSuchStage(_) | BoardError::NoSuchCard(_) | BoardError::NoSuchActivity(_) => {
            ApiError::NotFound(error.to_string())
        }
        BoardError::BadName { what } => field(match *what {
            "a card title" => "title",
            "a field label" => "label",
            _ => "name",
        }),
        BoardError::BadColor(_) => field("color"),
        BoardError::BadAmount => field("amount"),
        BoardError::BadEmail(_) => field("email"),
        BoardError::BadThreshold => field("counterThresholdMin"),
        BoardError::BadFieldType(_) => field("type"),
        BoardError::BadProbability => field("probability"),
        BoardError::BadRotDays => field("rotDays"),
        BoardError::UnknownRequiredField(_) | BoardError::InitialStageRequiresNothing => {
            field("required")
        }
        BoardError::BadLostReason(_) => field("lostReason"),
        BoardError::BadLostReasons => field("lostReasons"),
        BoardError::InitialStageIsPermanent
        | BoardError::SuccessStageIsUnique
        | BoardError::InitialStageIsUnique
        | BoardError::LastFailureStage
        | BoardError::StageOrder(_)
        | BoardError::CardsNeedAnotherStage
        | BoardError::NeedsRebalance
        | BoardError::Order(_) => ApiError::Conflict(error.to_string()),
    }
}
