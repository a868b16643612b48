//! Every way an API call fails ([`ApiError`]) and the one place it becomes a response: an
//! `application/problem+json` body (RFC 9457) `{type, title, status, detail, errors?}`.
//!
//! `type` names the kind of problem (`urn:funnel:problem:<kind>`, listed in docs/api.md), `title`
//! is the same for every problem of that kind, `detail` says what went wrong this time and what
//! to do. Field-level mistakes in a body that is valid JSON are one 422 listing every bad field
//! (`errors: [{field, message}]`), so a form can show them all at once; a body that is not JSON
//! or not the expected shape is a 400.

use super::MAX_EVENT_BODY_BYTES;
use crate::auth::AuthError;
use crate::storage::StorageError;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error response (RFC 9457 problem details).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:funnel:problem:<kind>`: what kind of problem (see docs/api.md).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary, the same for every problem of this kind.
    pub title: String,
    /// The HTTP status, repeated.
    pub status: u16,
    /// What went wrong this time, and what to do about it.
    pub detail: String,
    /// Field-level mistakes (422 only): each bad field of the body and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// One bad field of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name as sent (`title`, `email`, `fields.source`, ...).
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every way an API call fails.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthenticated(AuthError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    /// Valid JSON of the right shape, but some fields are wrong: one 422 lists them all.
    #[error("{}", describe_fields(errors))]
    Invalid { errors: Vec<FieldError> },
    /// The request contradicts the board's state (a stage invariant, a stage that holds cards).
    #[error("{0}")]
    Conflict(String),
    #[error("no board {0}")]
    NoSuchBoard(String),
    #[error("no card {0} on this board")]
    NoSuchCard(String),
    /// Something else a path or body names is not on the board (a stage, an activity).
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    TooLarge(String),
    /// The body is not of the media type the endpoint takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the board is busy; try again")]
    Busy,
    #[error("no such endpoint: see /api/v1/openapi.json")]
    NoSuchEndpoint,
    #[error("storage is unavailable; try again")]
    Storage(#[from] StorageError),
    #[error("a request with this Idempotency-Key is still running; retry once it has answered")]
    KeyInFlight,
    #[error(
        "this Idempotency-Key was used for another request (another path or body) in the last \
         24 h; send a new key for a new request"
    )]
    KeyReused,
}

impl ApiError {
    /// One bad field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            errors: vec![FieldError::new(field, message)],
        }
    }

    /// The status, the kind (the end of the `type` URI) and the title.
    fn classify(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "No valid token",
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            ApiError::Invalid { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-fields",
                "Some fields are invalid",
            ),
            ApiError::Conflict(_) => (
                StatusCode::CONFLICT,
                "conflict",
                "The board's state does not allow this",
            ),
            ApiError::NoSuchBoard(_) | ApiError::NoSuchCard(_) | ApiError::NotFound(_) => {
                (StatusCode::NOT_FOUND, "not-found", "Not found")
            }
            ApiError::NoSuchEndpoint => (StatusCode::NOT_FOUND, "no-such-endpoint", "Not found"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too-large", "Too large"),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy", "The board is busy"),
            ApiError::Storage(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage-unavailable",
                "Storage is unavailable",
            ),
            ApiError::KeyInFlight => (
                StatusCode::CONFLICT,
                "idempotency-key-in-flight",
                "A request with this key is running",
            ),
            ApiError::KeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "This key was used for another request",
            ),
        }
    }

    /// The problem document of this error.
    pub fn problem(&self) -> Problem {
        let (status, kind, title) = self.classify();
        Problem {
            kind: format!("urn:funnel:problem:{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            errors: match self {
                ApiError::Invalid { errors } => Some(errors.clone()),
                _ => None,
            },
        }
    }
}

fn describe_fields(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Storage(e) = &self {
            // The detail stays generic: storage internals are not the caller's business.
            tracing::error!(error = %e, "api: storage failed");
        }
        let problem = self.problem();
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = match serde_json::to_vec(&problem) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "api: cannot render a problem");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        let mut response = (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthenticated(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

/// A query string that does not parse (`?limit=-1`, a number out of range) is a 400 problem, not
/// axum's plain-text answer.
impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!("the body has at most {MAX_EVENT_BODY_BYTES} bytes"))
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

    use super::*;

    async fn render(error: ApiError) -> (StatusCode, String, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        (status, content_type, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn field_errors_are_one_422_listing_every_field() {
        let (status, content_type, body) = render(ApiError::Invalid {
            errors: vec![
                FieldError::new("title", "enter a title"),
                FieldError::new("email", "not an e-mail address"),
            ],
        })
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(content_type, PROBLEM_JSON);
        assert_eq!(
            body,
            serde_json::json!({
                "type": "urn:funnel:problem:invalid-fields",
                "title": "Some fields are invalid",
                "status": 422,
                "detail": "title: enter a title; email: not an e-mail address",
                "errors": [
                    {"field": "title", "message": "enter a title"},
                    {"field": "email", "message": "not an e-mail address"}
                ]
            })
        );
    }

    #[tokio::test]
    async fn a_conflict_is_409_with_its_reason_and_no_field_list() {
        let (status, _, body) = render(ApiError::Conflict(
            "the initial stage cannot be deleted".into(),
        ))
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["type"], "urn:funnel:problem:conflict");
        assert_eq!(body["detail"], "the initial stage cannot be deleted");
        assert!(body.get("errors").is_none(), "{body}");
    }

    #[tokio::test]
    async fn storage_details_stay_on_the_server() {
        let (status, _, body) = render(ApiError::Storage(StorageError::PostgresUnavailable(
            "password authentication failed for user x".into(),
        )))
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!body.to_string().contains("password"), "{body}");
    }
}
