//! Extractors whose rejections speak the API's error format.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use domain::{Error, SecretString, UserRecord};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, error_response};
use crate::startup::AppState;
use crate::wire::ErrorCode;

/// `axum::Json`, but malformed bodies and wrong content types answer
/// `400 invalid_request` and oversized ones `413 payload_too_large`.
pub struct ApiJson<T>(pub T);

pub enum JsonError {
    TooLarge,
    Invalid(&'static str),
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        match self {
            Self::TooLarge => error_response(ErrorCode::PayloadTooLarge, "Request body too large"),
            Self::Invalid(message) => error_response(ErrorCode::InvalidRequest, message),
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
                Err(JsonError::Invalid("Expected a JSON body with Content-Type: application/json"))
            }
            // serde's message would quote the submitted value, which may be a password.
            Err(JsonRejection::JsonDataError(_)) => {
                Err(JsonError::Invalid("Invalid request body: expected a JSON object whose fields are strings"))
            }
            Err(_) => Err(JsonError::Invalid("Malformed JSON body")),
        }
    }
}

/// `axum::extract::Path`, but a segment that is not valid UTF-8 (`%FF`)
/// answers in the API's error format, not plain text.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => {
                Err(error_response(ErrorCode::InvalidRequest, "Invalid path parameter"))
            }
            Err(_) => Err(error_response(ErrorCode::Internal, "Internal error")),
        }
    }
}

/// A caller authenticated by a valid access token in `Authorization: Bearer …`,
/// with their account as it is now.
/// The caller's account as read now, and the access token that proved it
/// (Cognito's own operations on a user, such as ChangePassword, take it).
pub struct Authenticated(pub UserRecord, pub SecretString);

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
        let token = SecretString::new(token);
        Ok(Self(state.service.authenticate(&token).await?, token))
    }
}

/// A request carrying the admin token (`Authorization: Bearer <admin token>`),
/// compared in constant time. Without a configured token every `/admin`
/// route answers 401, like a wrong one.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let presented =
            parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|value| value.to_str().ok()).and_then(
                |value| {
                    let (scheme, token) = value.split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then_some(token)
                },
            );
        match (&state.admin, presented) {
            (Some(credential), Some(token)) if credential.accepts(token) => Ok(Self),
            _ => Err(ApiError(Error::InvalidToken)),
        }
    }
}

/// Non-empty string field or `missing_params`.
pub fn required(field: Option<String>) -> Result<String, ApiError> {
    field.filter(|value| !value.trim().is_empty()).ok_or(ApiError(Error::MissingParams))
}
