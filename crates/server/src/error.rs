//! How errors reach clients: `{"error": "<text>", "code": "<machine code>"}`
//! with the right status; unexpected ones are logged and answered without detail.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::Error;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::MissingParams
        | Error::InvalidRequest(_)
        | Error::InvalidEmail(_)
        | Error::InvalidPassword(_)
        | Error::InvalidConfirmationCode => StatusCode::BAD_REQUEST,
        Error::NotAuthorized | Error::InvalidToken => StatusCode::UNAUTHORIZED,
        Error::InvalidAccessCode
        | Error::InvitationExpired
        | Error::InvitationRevoked
        | Error::InvitationRedeemed
        | Error::UserNotConfirmed
        | Error::InviteQuotaExhausted
        | Error::SignUpNotAllowed => StatusCode::FORBIDDEN,
        Error::NotFound => StatusCode::NOT_FOUND,
        Error::UserExists | Error::AlreadyInvited | Error::InvitationInUse => StatusCode::CONFLICT,
        Error::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": message, "code": code }))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.0;
        if let Error::Unexpected(cause) = &error {
            // The chain goes to the log only; the client learns nothing internal.
            tracing::error!(error = format!("{cause:#}"), "unexpected error");
        }
        let mut response = error_response(status_of(&error), error.code(), &error.to_string());
        if let Error::TooManyAttempts { retry_after } | Error::Unavailable { retry_after } = &error {
            let secs = retry_after.as_secs().max(1);
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<domain::email::InvalidEmail> for ApiError {
    fn from(e: domain::email::InvalidEmail) -> Self {
        Self(e.into())
    }
}
