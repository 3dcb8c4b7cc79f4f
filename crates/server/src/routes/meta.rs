//! Health, keys, and the JSON 404.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, error_response};
use crate::startup::AppState;
use crate::wire::{ErrorCode, HealthResponse};

pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok".to_owned() })
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    match state.service.jwks().await {
        Ok(Some(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(None) => not_found().await,
        Err(e) => ApiError(e).into_response(),
    }
}

pub async fn not_found() -> Response {
    error_response(ErrorCode::NotFound, "Not found")
}
