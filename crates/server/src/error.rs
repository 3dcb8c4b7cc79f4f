//! How errors reach clients: [`ErrorBody`] with the status its code carries;
//! unexpected ones are logged and answered without detail.

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use domain::Error;

use crate::wire::{ErrorBody, ErrorCode};

#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl From<domain::email::InvalidEmail> for ApiError {
    fn from(e: domain::email::InvalidEmail) -> Self {
        Self(e.into())
    }
}

pub fn error_response(code: ErrorCode, message: &str) -> Response {
    (code.status(), Json(ErrorBody { error: message.to_owned(), code })).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.0;
        if let Error::Unexpected(cause) = &error {
            // The chain goes to the log only; the client learns nothing internal.
            tracing::error!(error = format!("{cause:#}"), "unexpected error");
        }
        let mut response = error_response(ErrorCode::from(&error), &error.to_string());
        if let Error::TooManyAttempts { retry_after } | Error::Unavailable { retry_after } = &error {
            let secs = retry_after.as_secs().max(1);
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
