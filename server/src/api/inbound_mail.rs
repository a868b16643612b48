//! `/api/v1/boards/{boardId}/inbound-email`: a raw e-mail posted to a board (the same path as
//! the SMTP listener's, `crate::mail::take`), and the board's inbound address for admins.

use super::{ApiError, Caller, Problem, existing_board};
use crate::app_state::AppState;
use crate::mail::{self, MailAction, MailError, MailOutcome, MailSender};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use funnel_protocol::policy::Role;
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of a posted message.
pub const RFC822: &str = "message/rfc822";

/// Where mail for a board goes.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboundAddress {
    /// `{localPart}@{--mail-domain}`; any domain reaches the board.
    pub address: String,
    /// `{boardId}`, or with tokens on `{boardId}+{secret}`: the secret is the credential.
    pub local_part: String,
    /// Whether the address carries a secret (tokens are on).
    pub secret_required: bool,
    /// Whether this server listens for SMTP (`--smtp-listen`); if not, post messages here.
    pub smtp: bool,
    /// The largest message taken, in bytes (`--max-mail-bytes`).
    pub max_bytes: usize,
}

/// Takes a raw RFC 5322 message for the board: a reply (In-Reply-To or References naming a
/// message a card took) or mail from an open card's `email` goes to that card's timeline as an
/// incoming e-mail with an open incoming activity; anything else becomes a new deal in the
/// initial stage (title from the subject, client from the sender's name, email from the
/// address), responsible: the caller. The same Message-ID twice is taken once.
#[utoipa::path(
    post,
    path = "/api/v1/boards/{boardId}/inbound-email",
    params(("boardId" = String, Path, description = "the board's id")),
    request_body(content = String, content_type = "message/rfc822", description = "the message as received: header fields, a blank line, the body"),
    responses(
        (status = 201, body = MailOutcome, description = "taken: `action` is `created` (a new deal) or `appended` (an existing card)"),
        (status = 200, body = MailOutcome, description = "nothing was written: `duplicate` (the board took this Message-ID before) or `ignored` (an automatic message, an auto-reply or a bounce, about no card: a program's mail makes no deal)"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "a malformed message (no header, no From address), or one a card cannot hold"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "viewers post no mail, or the token does not open this board"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "another delivery of the same message is being taken"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "over --max-mail-bytes, or the board is at its size limit"),
        (status = 415, body = Problem, content_type = "application/problem+json", description = "the Content-Type is not message/rfc822"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "too many calls from this caller, or too many messages for this board (Retry-After)")
    )
)]
pub async fn post_inbound_email(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(board_id): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<MailOutcome>), ApiError> {
    let who = caller.on_board(&board_id).at_least(Role::Member)?;
    let board = existing_board(&state, &who, &board_id).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if content_type != RFC822 {
        return Err(ApiError::UnsupportedMediaType(format!(
            "send the raw message with Content-Type: {RFC822}"
        )));
    }
    let max = state.mail.max_bytes;
    let raw = axum::body::to_bytes(body, max)
        .await
        .map_err(|_| ApiError::TooLarge(format!("a message has at most {max} bytes")))?;
    let responsible = super::board_call::actor(&state, &who, &headers)?;
    let mut principal = who;
    principal.user = responsible.clone();
    let sender = MailSender {
        principal,
        responsible,
    };
    let outcome = mail::take(&state, &board, &raw, sender)
        .await
        .map_err(|e| match e {
            MailError::Malformed(e) => ApiError::BadRequest(e.to_string()),
            e @ MailError::Refused(_) => ApiError::BadRequest(e.to_string()),
            e @ (MailError::TooLarge { .. } | MailError::BoardFull { .. }) => {
                ApiError::TooLarge(e.to_string())
            }
            MailError::NoSuchBoard(board) => ApiError::NoSuchBoard(board),
            e @ MailError::InFlight(_) => ApiError::Conflict(e.to_string()),
            MailError::RateLimited { retry_after_secs } => {
                ApiError::RateLimited { retry_after_secs }
            }
            MailError::Storage(e) => ApiError::Storage(e),
            MailError::Busy => ApiError::Busy,
        })?;
    let status = if matches!(outcome.action, MailAction::Duplicate | MailAction::Ignored) {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(outcome)))
}

/// The board's inbound e-mail address (admins: with tokens on it carries the board's secret).
#[utoipa::path(
    get,
    path = "/api/v1/boards/{boardId}/inbound-email",
    params(("boardId" = String, Path, description = "the board's id")),
    responses(
        (status = 200, body = InboundAddress),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "only admins see the address"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_inbound_address(
    State(state): State<AppState>,
    caller: Caller,
    Path(board_id): Path<String>,
) -> Result<Json<InboundAddress>, ApiError> {
    let who = caller.on_board(&board_id).at_least(Role::Admin)?;
    let board = existing_board(&state, &who, &board_id).await?;
    let local_part = state.mail.local_part(&board);
    Ok(Json(InboundAddress {
        address: format!("{local_part}@{}", state.mail.domain),
        secret_required: state.mail.board_secret(&board).is_some(),
        local_part,
        smtp: state.mail.smtp,
        max_bytes: state.mail.max_bytes,
    }))
}
