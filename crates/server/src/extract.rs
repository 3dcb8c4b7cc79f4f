//! Extractors whose rejections speak the API's error format.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use domain::{AccessClaims, Error, SecretString};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, error_response};
use crate::startup::AppState;

/// `axum::Json`, but malformed bodies and wrong content types answer
/// `400 invalid_request` and oversized ones `413 payload_too_large`.
pub struct ApiJson<T>(pub T);

pub enum JsonError {
    TooLarge,
    Invalid(String),
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        match self {
            Self::TooLarge => {
                error_response(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Request body too large")
            }
            Self::Invalid(message) => error_response(StatusCode::BAD_REQUEST, "invalid_request", &message),
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = JsonError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(JsonError::TooLarge),
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(JsonError::Invalid("Expected a JSON body with Content-Type: application/json".into()))
            }
            // serde's message would quote the submitted value, which may be a password.
            Err(JsonRejection::JsonDataError(_)) => {
                Err(JsonError::Invalid("Invalid request body: expected a JSON object whose fields are strings".into()))
            }
            Err(_) => Err(JsonError::Invalid("Malformed JSON body".into())),
        }
    }
}

/// A caller authenticated by a valid access token in `Authorization: Bearer …`.
pub struct Authenticated(pub AccessClaims);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
            })
            .filter(|token| !token.is_empty())
            .ok_or(ApiError(Error::InvalidToken))?;
        let now = state.service.clock.now();
        let claims = state.service.pool.verify_access_token(&SecretString::new(token), now).await?;
        Ok(Self(claims))
    }
}

/// Non-empty string field or `missing_params`.
pub fn required(field: Option<String>) -> Result<String, ApiError> {
    field.filter(|value| !value.trim().is_empty()).ok_or(ApiError(Error::MissingParams))
}
