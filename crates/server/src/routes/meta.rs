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

/// Ready to serve: the database takes a write (embedded), or DynamoDB and
/// Cognito answer (AWS). Not ready is 503 `unavailable` with `Retry-After`.
#[utoipa::path(
    get,
    path = "/readyz",
    responses((status = 200, description = "Ready", body = crate::wire::HealthResponse), (status = 503, description = "Not ready (`unavailable`)", body = crate::wire::ErrorBody))
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.service.ready().await {
        Ok(()) => Json(HealthResponse { status: "ready".to_owned() }).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

/// Counters, gauges and latency histograms in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Metrics (OpenMetrics text)", body = String, content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.service.metrics().render(),
    )
        .into_response()
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
