//! Requests per caller on every API route (`--api-rate` a minute on average, `--api-burst` at
//! once): per token user (its `sub`), and per peer address for a request without a valid token
//! (local mode, or one about to get a 401). Over the rate: 429 with `Retry-After` and a problem
//! body. The budget is `limits::CallerRate`, the one the timeline's posts use too.

use super::ApiError;
use crate::app_state::AppState;
use crate::headers::bearer_token;
use crate::limits::retry_after_secs;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder};

/// The axum middleware (`from_fn_with_state`) over every API route.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(rate) = &state.api_rate else {
        return next.run(request).await;
    };
    let key = caller_key(&state, &request);
    match rate.take(&key) {
        Ok(()) => next.run(request).await,
        Err(wait) => ApiError::RateLimited {
            retry_after_secs: retry_after_secs(wait),
        }
        .into_response(),
    }
}

/// `user:<sub>` for a valid token (not in local mode, where everyone is the local admin),
/// otherwise `address:<ip>`.
fn caller_key(state: &AppState, request: &Request) -> String {
    let auth = &state.connections.auth;
    if !auth.is_local()
        && let Ok(who) = auth.authenticate(bearer_token(request.headers()))
    {
        return format!("user:{}", who.user);
    }
    // Per session, without asking storage (the handler does): a cookie that names no session
    // only costs its holder's own budget.
    if !auth.is_local()
        && let Some(secret) =
            crate::accounts::cookie(request.headers(), crate::accounts::SESSION_COOKIE)
    {
        return format!("session:{}", crate::accounts::digest(secret));
    }
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => format!("address:{}", peer.ip()),
        None => "address:unknown".to_owned(),
    }
}

/// Adds the 429 answer to every operation of the OpenAPI document.
pub fn describe(doc: &mut utoipa::openapi::OpenApi) {
    let response = ResponseBuilder::new()
        .description("too many requests from this caller: retry after Retry-After seconds")
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::Type::Integer),
                ))
                .description(Some("seconds to wait"))
                .build(),
        )
        .content(
            super::PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            operation
                .responses
                .responses
                .entry("429".into())
                .or_insert_with(|| response.clone().into());
        }
    }
}
