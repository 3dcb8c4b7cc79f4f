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

/// A listing cursor: the backend's own continuation, hex-encoded so that it
/// is URL-safe and anything else is refused as malformed.
pub(crate) fn encode_cursor(raw: &str) -> String {
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn decode_cursor(cursor: &str) -> Result<String, domain::Error> {
    let invalid = || domain::Error::InvalidRequest("Invalid cursor".into());
    if cursor.is_empty() || !cursor.len().is_multiple_of(2) || cursor.len() > 8192 {
        return Err(invalid());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| cursor.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

/// An SDK failure nobody can act on: keep the whole chain for the log.
pub(crate) fn unexpected(error: impl std::error::Error + Send + Sync + 'static, context: &str) -> domain::Error {
    domain::Error::Unexpected(anyhow::Error::new(error).context(context.to_owned()))
}

#[cfg(feature = "service")]
mod service;
#[cfg(feature = "service")]
pub use service::*;
