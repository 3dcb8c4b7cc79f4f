//! Users and tokens as the rest of the code sees them, whatever pool holds them.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

use crate::{Email, Password, Reservation};

/// The pool's stable id for a user (a UUID on both backends; Cognito's `sub`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserSub(String);

impl UserSub {
    pub fn new(sub: String) -> Self {
        Self(sub)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    Unconfirmed,
    Confirmed,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unconfirmed => "UNCONFIRMED",
            Self::Confirmed => "CONFIRMED",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "UNCONFIRMED" => Some(Self::Unconfirmed),
            "CONFIRMED" => Some(Self::Confirmed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub sub: UserSub,
    pub email: Email,
    pub status: UserStatus,
    pub email_verified: bool,
    pub created_at: OffsetDateTime,
}

/// A bearer credential: shown to its owner once, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// So configuration (clap) can hold secrets, such as an SMTP URL with a password.
impl std::str::FromStr for SecretString {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone)]
pub struct Tokens {
    pub id_token: SecretString,
    pub access_token: SecretString,
    /// Only issued at sign-in; refreshing keeps the same refresh token (as Cognito does).
    pub refresh_token: Option<SecretString>,
    pub expires_in_secs: u64,
}

/// What a verified access token says about its bearer.
#[derive(Debug, Clone)]
pub struct AccessClaims {
    pub sub: UserSub,
}

#[derive(Debug)]
pub struct SignUpRequest {
    pub email: Email,
    pub password: Password,
    /// Present when the caller presented the invitation's code and holds it reserved.
    pub reservation: Option<Reservation>,
}

#[derive(Debug, Clone)]
pub struct SignUpOutcome {
    pub sub: UserSub,
    pub confirmed: bool,
}
