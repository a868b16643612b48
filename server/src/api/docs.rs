//! The interactive API docs page at `/api/docs` (Swagger UI, its files built into the binary
//! from the crate: no network needed) over the whole OpenAPI document ([`document`]).
//!
//! The page loads its copy of the document from `/api/docs/openapi.json`, open to anyone who
//! reaches the server: a browser fetching it cannot send a token. It describes the API, it
//! holds no data; every call made from the page still needs a token ("Authorize").

use super::{ApiDoc, idempotency, rate_limit};
use crate::app_state::AppState;
use axum::Router;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

/// Where the page is served.
pub const DOCS_PATH: &str = "/api/docs";

/// The OpenAPI document of every route, with what the layers over them add: the
/// `Idempotency-Key` header on POSTs and the 429 of the rate limit.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    idempotency::describe(&mut doc);
    rate_limit::describe(&mut doc);
    doc
}

/// The page's routes.
pub fn page() -> Router<AppState> {
    Router::from(SwaggerUi::new(DOCS_PATH).url("/api/docs/openapi.json", document()))
}
