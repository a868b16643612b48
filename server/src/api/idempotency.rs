//! `Idempotency-Key` on every POST of the API: a client that retries a POST with the same key
//! (a lost answer, a timeout) gets the first response back, and nothing is written twice.
//!
//! The key belongs to the caller (the token's user; the local admin in local mode) and is kept
//! in storage ([`Storage::claim_key`]), so it holds across restarts and across the instances of
//! a cluster, for [`KEY_LIFETIME_MS`] (24 h). For a request with a key, the middleware:
//! - claims the key with a fingerprint of the request (method, path and query, body);
//! - a key whose first request finished answers that request's response again (status, body,
//!   `Location`), marked `Idempotent-Replayed: true`, when the fingerprint is the same, and a
//!   422 problem when it differs (a key is for one request);
//! - a key whose first request is still running answers a 409 problem (retry later);
//! - otherwise it runs the request, in a task of its own so that a client hanging up does not
//!   cancel it half-way, and keeps a success (2xx) under the key. Any other answer wrote
//!   nothing, so the key is released and a retry runs the request again.
//!
//! Requests without the header, and requests that are not POSTs, pass through untouched.

use super::ApiError;
use crate::app_state::AppState;
use crate::storage::{KEY_LIFETIME_MS, KeptResponse, KeyClaim, KeyRequest, Storage};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};

/// The request header that names a request for retries.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The response header on a replayed response.
pub const REPLAYED: &str = "idempotent-replayed";

/// The longest key, in characters (printable ASCII only).
pub const MAX_KEY_CHARS: usize = 255;

/// The largest body of a POST with a key: what is read to fingerprint it. The routes' own
/// limits (smaller) still apply after it.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The largest response kept under a key (POSTs answer one resource, far smaller).
pub const MAX_KEPT_BYTES: usize = 4 * 1024 * 1024;

/// The axum middleware (`from_fn_with_state`) over every API route.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(raw_key) = request.headers().get(IDEMPOTENCY_KEY) else {
        return next.run(request).await;
    };
    let key = match parse_key(raw_key) {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    // An unauthenticated request is the handler's to refuse (401): it writes nothing.
    let Ok(Ok(caller)) = state
        .accounts
        .authenticate(&state.connections.auth, request.headers(), None)
        .await
    else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return ApiError::TooLarge(format!(
                "a POST with an Idempotency-Key has a body of at most {MAX_BODY_BYTES} bytes"
            ))
            .into_response();
        }
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let claim = KeyRequest {
        caller: caller.user,
        key,
        fingerprint: fingerprint(parts.method.as_str(), &path, &body),
        token: funnel_protocol::ids::new_id(),
        now: crate::clock::Clock::now_ms(&crate::clock::SystemClock),
    };
    match state.storage.claim_key(&claim).await {
        Ok(KeyClaim::Claimed) => {}
        Ok(KeyClaim::Done {
            fingerprint,
            response,
        }) if fingerprint == claim.fingerprint => return replay(response),
        Ok(KeyClaim::InFlight { fingerprint }) if fingerprint == claim.fingerprint => {
            return ApiError::KeyInFlight.into_response();
        }
        Ok(KeyClaim::Done { .. } | KeyClaim::InFlight { .. }) => {
            return ApiError::KeyReused.into_response();
        }
        Err(e) => return ApiError::Storage(e).into_response(),
    }
    let request = Request::from_parts(parts, Body::from(body));
    let storage = Arc::clone(&state.storage);
    // Its own task: the client hanging up must not cancel a request half-way through with its
    // key still in flight.
    let run = tokio::spawn(async move {
        let response = next.run(request).await;
        settle(storage.as_ref(), &claim, response).await
    });
    match run.await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "api: a request with an idempotency key failed");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Keeps a success under the key and returns it; releases the key after anything else.
async fn settle(storage: &dyn Storage, claim: &KeyRequest, response: Response) -> Response {
    let (caller, key, token) = (&claim.caller, &claim.key, &claim.token);
    if !response.status().is_success() {
        if let Err(e) = storage.release_key(caller, key, token).await {
            tracing::warn!(error = %e, "api: cannot release an idempotency key; it frees itself within a minute");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, MAX_KEPT_BYTES).await {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "api: cannot read a response to keep under its idempotency key");
            let _ = storage.release_key(caller, key, token).await;
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let text = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let kept = KeptResponse {
        status: parts.status.as_u16(),
        content_type: text(header::CONTENT_TYPE),
        location: text(header::LOCATION),
        body: body.clone(),
    };
    if let Err(e) = storage.finish_key(caller, key, token, &kept).await {
        // The write is done and answered; only a retry within the in-flight time would be told
        // to wait, and one after it would run again.
        tracing::error!(error = %e, "api: cannot keep a response under its idempotency key");
    }
    Response::from_parts(parts, Body::from(body))
}

/// The first response again, marked as a replay.
fn replay(kept: KeptResponse) -> Response {
    let status =
        axum::http::StatusCode::from_u16(kept.status).unwrap_or(axum::http::StatusCode::OK);
    let mut response = (status, kept.body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, kept.content_type),
        (header::LOCATION, kept.location),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, value);
        }
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// A key: 1 to [`MAX_KEY_CHARS`] printable ASCII characters.
fn parse_key(raw: &HeaderValue) -> Result<String, ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable ASCII characters, such as a \
             UUID"
        ))
    };
    let key = raw.to_str().map_err(|_| bad())?.trim();
    if key.is_empty()
        || key.len() > MAX_KEY_CHARS
        || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(bad());
    }
    Ok(key.to_owned())
}

/// What makes two requests the same: method, path with query, and body (SHA-256, hex).
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    for part in [method.as_bytes(), path.as_bytes(), body] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Adds the header and its answers (409, 422) to every POST of the OpenAPI document.
pub fn describe(doc: &mut utoipa::openapi::OpenApi) {
    let hours = KEY_LIFETIME_MS / 3_600_000;
    let parameter: Parameter = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(format!(
            "Names this request for retries (1 to {MAX_KEY_CHARS} printable ASCII characters, \
             e.g. a UUID): the same key from the same caller within {hours} h answers the first \
             response again and writes nothing"
        )))
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_KEY_CHARS)),
        ))
        .build();
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                super::PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        let Some(post) = item.post.as_mut() else {
            continue;
        };
        post.parameters
            .get_or_insert_with(Vec::new)
            .push(parameter.clone().into());
        let responses = &mut post.responses.responses;
        responses.entry("409".into()).or_insert_with(|| {
            problem("a conflict, or a request with this Idempotency-Key is still running").into()
        });
        responses.entry("422".into()).or_insert_with(|| {
            problem("invalid fields, or this Idempotency-Key was used for another request").into()
        });
        responses
            .entry("400".into())
            .or_insert_with(|| problem("a bad request, or a malformed Idempotency-Key").into());
        responses
            .entry("413".into())
            .or_insert_with(|| problem("the body is too large").into());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

    use super::*;

    #[test]
    fn keys_are_printable_ascii_of_bounded_length() {
        assert_eq!(
            parse_key(&HeaderValue::from_static(" 0b7e-4f ")).unwrap(),
            "0b7e-4f"
        );
        for bad in ["", "   "] {
            assert!(
                parse_key(&HeaderValue::from_static(bad)).is_err(),
                "{bad:?}"
            );
        }
        let long = "k".repeat(MAX_KEY_CHARS + 1);
        assert!(parse_key(&HeaderValue::from_str(&long).unwrap()).is_err());
        let utf8 = HeaderValue::from_bytes("clé".as_bytes()).unwrap();
        assert!(parse_key(&utf8).is_err());
    }

    #[test]
    fn the_fingerprint_covers_method_path_and_body_without_ambiguity() {
        let a = fingerprint("POST", "/api/v1/boards", b"{}");
        assert_eq!(a, fingerprint("POST", "/api/v1/boards", b"{}"));
        assert_ne!(a, fingerprint("POST", "/api/v1/boards", b"{ }"));
        assert_ne!(a, fingerprint("POST", "/api/v1/boards?x=1", b"{}"));
        // Lengths separate the parts: moving a byte from path to body changes it.
        assert_ne!(
            fingerprint("POST", "/a", b"b"),
            fingerprint("POST", "/", b"ab")
        );
        assert_eq!(a.len(), 64);
    }
}
