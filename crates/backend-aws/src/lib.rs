//! invitegate on AWS: Cognito (confidential client), DynamoDB, SES v2. The
//! adapters take and return the domain's types; SDK types stay inside.

#[cfg(feature = "service")]
mod attempts;
mod dynamo;
mod env_names;

#[cfg(feature = "service")]
pub use attempts::DynamoAttemptCounter;
pub use dynamo::{BY_EMAIL_INDEX, BY_INVITER_INDEX, DynamoInvitationStore, invitation_reserved_for};
pub use env_names::*;

/// An SDK failure nobody can act on: keep the whole chain for the log.
pub(crate) fn unexpected(error: impl std::error::Error + Send + Sync + 'static, context: &str) -> domain::Error {
    domain::Error::Unexpected(anyhow::Error::new(error).context(context.to_owned()))
}

#[cfg(feature = "service")]
mod service;
#[cfg(feature = "service")]
pub use service::*;
