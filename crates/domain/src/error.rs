//! Errors: the ones a caller can act on (the server gives each a stable
//! machine code, `server::wire::ErrorCode`), and
//! `Unexpected`, whose detail is logged and never shown.

use std::time::Duration;

use crate::PasswordPolicyViolation;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Missing params")]
    MissingParams,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Invalid email: {0}")]
    InvalidEmail(String),
    #[error("{0}")]
    InvalidPassword(String),
    /// One message whether the email or the code was wrong.
    #[error("Invalid email or access code")]
    InvalidAccessCode,
    #[error("This invitation has expired; ask for a new one")]
    InvitationExpired,
    #[error("This invitation was revoked")]
    InvitationRevoked,
    #[error("This invitation has already been used")]
    InvitationRedeemed,
    #[error("This invitation is being used by another sign-up right now; try again shortly")]
    InvitationInUse,
    #[error("An account with this email already exists")]
    UserExists,
    #[error("Too many attempts; try again later")]
    TooManyAttempts { retry_after: Duration },
    #[error("The service is busy; try again shortly")]
    Unavailable { retry_after: Duration },
    /// One message for unknown user, wrong password and bad token.
    #[error("Incorrect email or password")]
    NotAuthorized,
    #[error("Missing or invalid access token")]
    InvalidToken,
    #[error("The account has not been confirmed; enter the code sent by email")]
    UserNotConfirmed,
    /// Only told to someone who gave the account's right password.
    #[error("This account is disabled")]
    UserDisabled,
    /// Only told to someone who gave the account's right (imported) password.
    #[error("Your password must be changed: a code to choose a new one was sent to your email")]
    PasswordResetRequired,
    #[error("Invalid or expired confirmation code")]
    InvalidConfirmationCode,
    #[error("No invitations left to send")]
    InviteQuotaExhausted,
    #[error("This email already has a pending invitation")]
    AlreadyInvited,
    #[error("This access request was already approved or rejected")]
    AccessRequestDecided,
    #[error("Not found")]
    NotFound,
    #[error("Sign-up requires an invitation")]
    SignUpNotAllowed,
    #[error("Internal error")]
    Unexpected(#[from] anyhow::Error),
}

impl Error {
    pub fn unexpected(context: impl std::fmt::Display) -> Self {
        Self::Unexpected(anyhow::anyhow!("{context}"))
    }
}

impl From<PasswordPolicyViolation> for Error {
    fn from(v: PasswordPolicyViolation) -> Self {
        Self::InvalidPassword(v.to_string())
    }
}

impl From<crate::email::InvalidEmail> for Error {
    fn from(e: crate::email::InvalidEmail) -> Self {
        Self::InvalidEmail(e.to_string())
    }
}
