//! The HTTP API's wire format, in one place: every request and response body,
//! and every error code with its status. Handlers serialize these; the test
//! suite deserializes them, so a renamed field breaks a test, not a client.
//!
//! Request fields are `Option`s so that a missing field is answered
//! `missing_params` by the handler, not a serde error. Field names follow the
//! original write-up's `/sign_up` (camelCase).

use axum::http::StatusCode;
use domain::access_request::AccessRequest;
use domain::{Error, InvitationStatus, Inviter, Tokens, UserRecord};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::service::{InvitationSummary, Profile, UserDetails};

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignUpRequest {
    pub email: Option<String>,
    pub password: Option<String>,
    pub access_code: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignUpResponse {
    pub user_confirmed: bool,
    pub user_sub: String,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ConfirmSignUpRequest {
    pub email: Option<String>,
    pub code: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmSignUpResponse {
    pub user_confirmed: bool,
}

/// `/resend_confirmation` and `POST /invitations`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct EmailRequest {
    pub email: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmForgotPasswordRequest {
    pub email: Option<String>,
    /// The recovery code from the email.
    pub code: Option<String>,
    /// The new password.
    pub password: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordResetResponse {
    pub password_reset: bool,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    pub previous_password: Option<String>,
    pub proposed_password: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChangedResponse {
    pub password_changed: bool,
}

/// `DELETE /me`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct PasswordRequest {
    /// The account's current password.
    pub password: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeletedResponse {
    pub deleted: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SentResponse {
    pub sent: bool,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct SignInRequest {
    pub email: Option<String>,
    pub password: Option<String>,
}

/// `/sign_in` and `/refresh`; only sign-in carries a refresh token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokensResponse {
    pub id_token: String,
    pub access_token: String,
    pub expires_in: u64,
    pub token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl From<&Tokens> for TokensResponse {
    fn from(tokens: &Tokens) -> Self {
        Self {
            id_token: tokens.id_token.expose().to_owned(),
            access_token: tokens.access_token.expose().to_owned(),
            expires_in: tokens.expires_in_secs,
            token_type: "Bearer".to_owned(),
            refresh_token: tokens.refresh_token.as_ref().map(|t| t.expose().to_owned()),
        }
    }
}

/// `/refresh` and `/sign_out`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    pub refresh_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedOutResponse {
    pub signed_out: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationResponse {
    pub id: String,
    pub email: String,
    #[schema(value_type = String, pattern = "^(pending|redeemed|revoked|expired)$")]
    pub status: InvitationStatus,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    pub redeemed_by: Option<String>,
}

impl From<&InvitationSummary> for InvitationResponse {
    fn from(invitation: &InvitationSummary) -> Self {
        Self {
            id: invitation.id.to_string(),
            email: invitation.email.to_string(),
            status: invitation.status,
            created_at: invitation.created_at,
            expires_at: invitation.expires_at,
            redeemed_by: invitation.redeemed_by.as_ref().map(ToString::to_string),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvitationListResponse {
    pub invitations: Vec<InvitationResponse>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileResponse {
    pub sub: String,
    pub email: String,
    pub invites_remaining: u32,
    /// The inviter's sub, `"operator"`, or null for users who signed up without one.
    pub invited_by: Option<String>,
}

impl From<&Profile> for ProfileResponse {
    fn from(profile: &Profile) -> Self {
        Self {
            sub: profile.user.sub.to_string(),
            email: profile.user.email.to_string(),
            invites_remaining: profile.invites_remaining,
            invited_by: profile.invited_by.as_ref().map(|inviter| match inviter {
                Inviter::User(sub) => sub.to_string(),
                Inviter::Operator => "operator".to_owned(),
            }),
        }
    }
}

fn inviter_name(inviter: &Inviter) -> String {
    match inviter {
        Inviter::User(sub) => sub.to_string(),
        Inviter::Operator => "operator".to_owned(),
    }
}

/// `POST /admin/invitations`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminInvitationRequest {
    pub email: Option<String>,
    /// Invitations the invitee may send in turn (default: the service's quota).
    pub quota: Option<u32>,
    /// How long the invitation stays usable, 1 to 8760 (default: the service's lifetime).
    pub expires_in_hours: Option<u32>,
    /// `false`: no email; the answer carries `signUpLink` (with the code), once. Default true.
    pub send_email: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminInvitationResponse {
    #[serde(flatten)]
    pub invitation: InvitationResponse,
    /// Only with `sendEmail: false`: the sign-up link holding the code, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_up_link: Option<String>,
}

/// `GET /admin/…` listings: `?status=&limit=&cursor=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only entries with this status.
    pub status: Option<String>,
    /// Entries per page, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// `nextCursor` from the previous page.
    pub cursor: Option<String>,
}

/// A page of the operator's invitation listing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminInvitationListResponse {
    pub invitations: Vec<InvitationResponse>,
    /// Pass as `cursor` for the next page; null at the end.
    pub next_cursor: Option<String>,
}

/// An account as an operator sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminUserResponse {
    pub sub: String,
    pub email: String,
    /// `CONFIRMED` or `UNCONFIRMED`.
    pub status: String,
    pub email_verified: bool,
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<&UserRecord> for AdminUserResponse {
    fn from(user: &UserRecord) -> Self {
        Self {
            sub: user.sub.to_string(),
            email: user.email.to_string(),
            status: user.status.as_str().to_owned(),
            email_verified: user.email_verified,
            disabled: user.disabled,
            created_at: user.created_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserListResponse {
    pub users: Vec<AdminUserResponse>,
    /// Pass as `cursor` for the next page; null at the end.
    pub next_cursor: Option<String>,
}

/// `GET /admin/users/{sub}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminUserDetailsResponse {
    #[serde(flatten)]
    pub user: AdminUserResponse,
    /// The inviter's sub, `"operator"`, or null.
    pub invited_by: Option<String>,
    pub invites_remaining: u32,
    /// The invitations this user sent, newest first.
    pub invitations: Vec<InvitationResponse>,
    /// The subs of those who signed up with them.
    pub invitees: Vec<String>,
}

impl From<&UserDetails> for AdminUserDetailsResponse {
    fn from(details: &UserDetails) -> Self {
        Self {
            user: AdminUserResponse::from(&details.user),
            invited_by: details.invited_by.as_ref().map(inviter_name),
            invites_remaining: details.invites_remaining,
            invitations: details.invitations.iter().map(InvitationResponse::from).collect(),
            invitees: details.invitees.iter().map(ToString::to_string).collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RequestedResponse {
    pub requested: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessRequestResponse {
    pub id: String,
    pub email: String,
    #[schema(value_type = String, pattern = "^(open|approved|rejected)$")]
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<OffsetDateTime>,
}

impl From<&AccessRequest> for AccessRequestResponse {
    fn from(request: &AccessRequest) -> Self {
        Self {
            id: request.id.clone(),
            email: request.email.to_string(),
            status: request.status.as_str().to_owned(),
            created_at: request.created_at,
            decided_at: request.decided_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessRequestListResponse {
    pub access_requests: Vec<AccessRequestResponse>,
}

/// An approved request and the invitation sent for it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovedResponse {
    pub access_request: AccessRequestResponse,
    pub invitation: InvitationResponse,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    pub status: String,
}

/// Every error answer: `{"error": "<text for people>", "code": "<stable code>"}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    pub code: ErrorCode,
}

/// The stable machine-readable codes, all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MissingParams,
    InvalidRequest,
    InvalidEmail,
    InvalidPassword,
    InvalidAccessCode,
    InvitationExpired,
    InvitationRevoked,
    InvitationRedeemed,
    InvitationInUse,
    UserExists,
    TooManyAttempts,
    Unavailable,
    NotAuthorized,
    UserNotConfirmed,
    UserDisabled,
    PasswordResetRequired,
    InvalidConfirmationCode,
    InviteQuotaExhausted,
    AlreadyInvited,
    AlreadyDecided,
    NotFound,
    SignUpNotAllowed,
    MethodNotAllowed,
    PayloadTooLarge,
    Timeout,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingParams => "missing_params",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidEmail => "invalid_email",
            Self::InvalidPassword => "invalid_password",
            Self::InvalidAccessCode => "invalid_access_code",
            Self::InvitationExpired => "invitation_expired",
            Self::InvitationRevoked => "invitation_revoked",
            Self::InvitationRedeemed => "invitation_redeemed",
            Self::InvitationInUse => "invitation_in_use",
            Self::UserExists => "user_exists",
            Self::TooManyAttempts => "too_many_attempts",
            Self::Unavailable => "unavailable",
            Self::NotAuthorized => "not_authorized",
            Self::UserNotConfirmed => "user_not_confirmed",
            Self::UserDisabled => "user_disabled",
            Self::PasswordResetRequired => "password_reset_required",
            Self::InvalidConfirmationCode => "invalid_confirmation_code",
            Self::InviteQuotaExhausted => "invite_quota_exhausted",
            Self::AlreadyInvited => "already_invited",
            Self::AlreadyDecided => "already_decided",
            Self::NotFound => "not_found",
            Self::SignUpNotAllowed => "sign_up_not_allowed",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Timeout => "timeout",
            Self::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::MissingParams
            | Self::InvalidRequest
            | Self::InvalidEmail
            | Self::InvalidPassword
            | Self::InvalidConfirmationCode => StatusCode::BAD_REQUEST,
            Self::NotAuthorized => StatusCode::UNAUTHORIZED,
            Self::InvalidAccessCode
            | Self::InvitationExpired
            | Self::InvitationRevoked
            | Self::InvitationRedeemed
            | Self::UserNotConfirmed
            | Self::UserDisabled
            | Self::PasswordResetRequired
            | Self::InviteQuotaExhausted
            | Self::SignUpNotAllowed => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::UserExists | Self::AlreadyInvited | Self::AlreadyDecided | Self::InvitationInUse => {
                StatusCode::CONFLICT
            }
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&Error> for ErrorCode {
    fn from(error: &Error) -> Self {
        match error {
            Error::MissingParams => Self::MissingParams,
            Error::InvalidRequest(_) => Self::InvalidRequest,
            Error::InvalidEmail(_) => Self::InvalidEmail,
            Error::InvalidPassword(_) => Self::InvalidPassword,
            Error::InvalidAccessCode => Self::InvalidAccessCode,
            Error::InvitationExpired => Self::InvitationExpired,
            Error::InvitationRevoked => Self::InvitationRevoked,
            Error::InvitationRedeemed => Self::InvitationRedeemed,
            Error::InvitationInUse => Self::InvitationInUse,
            Error::UserExists => Self::UserExists,
            Error::TooManyAttempts { .. } => Self::TooManyAttempts,
            Error::Unavailable { .. } => Self::Unavailable,
            // One code for a wrong credential and a bad token: neither says which part was wrong.
            Error::NotAuthorized | Error::InvalidToken => Self::NotAuthorized,
            Error::UserNotConfirmed => Self::UserNotConfirmed,
            Error::UserDisabled => Self::UserDisabled,
            Error::PasswordResetRequired => Self::PasswordResetRequired,
            Error::InvalidConfirmationCode => Self::InvalidConfirmationCode,
            Error::InviteQuotaExhausted => Self::InviteQuotaExhausted,
            Error::AlreadyInvited => Self::AlreadyInvited,
            Error::AccessRequestDecided => Self::AlreadyDecided,
            Error::NotFound => Self::NotFound,
            Error::SignUpNotAllowed => Self::SignUpNotAllowed,
            Error::Unexpected(_) => Self::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_names() {
        for code in [ErrorCode::MissingParams, ErrorCode::InvitationInUse, ErrorCode::Internal] {
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::Value::String(code.as_str().to_owned()));
        }
    }
}
