//! Health, keys, and the JSON 404.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, error_response};
use crate::startup::AppState;
use crate::wire::{ErrorCode, HealthResponse};

#[utoipa::path(
    get,
    path = "/healthz",
    responses((status = 200, description = "Alive", body = crate::wire::HealthResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok".to_owned() })
}

#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    responses((status = 200, description = "The public keys that verify the pool's tokens (JWKS)", body = Object), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn jwks(State(state): State<AppState>) -> Response {
    match state.service.jwks().await {
        Ok(Some(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(None) => not_found().await,
        Err(e) => ApiError(e).into_response(),
    }
}

#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "This document", body = Object)))]
pub async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::document()).into_response()
}

pub async fn not_found() -> Response {
    error_response(ErrorCode::NotFound, "Not found")
}
