//! Reading request headers: the few ways the socket upgrade (`http`) and the JSON API (`api`)
//! look at them, in one place.

use axum::http::{HeaderMap, header};

/// The header's value, if it is present and visible ASCII.
pub fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The token of an `Authorization: Bearer <token>` header (a value without the scheme counts
/// as the token itself).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    header_str(headers, header::AUTHORIZATION).map(|value| {
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or(value)
            .trim()
    })
}
