//! Users and tokens as the rest of the code sees them, whatever pool holds them.

use std::fmt;

use serde::{Deserialize, Serialize};
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
    /// The last global sign-out: access tokens issued at or before it (in
    /// whole seconds, as `iat` is) are refused.
    pub signed_out_at: Option<OffsetDateTime>,
    /// Disabled by an operator: cannot sign in, refresh or use a token.
    pub disabled: bool,
}

impl UserRecord {
    /// Whether a token with these claims was issued after the user's last
    /// global sign-out (if any). Pools make sure a token issued after a
    /// sign-out has a later `iat` second (see `UserPool::global_sign_out`).
    pub fn accepts(&self, claims: &AccessClaims) -> bool {
        !self.disabled && self.signed_out_at.is_none_or(|at| claims.issued_at.unix_timestamp() > at.unix_timestamp())
    }

    /// An unconfirmed (open-mode) account never proved its address; an
    /// invitation, which does, may replace it. Every other account is real.
    pub fn gives_way_to_invitation(&self) -> bool {
        self.status == UserStatus::Unconfirmed
    }
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

/// How long a refresh token works: the embedded pool's fixed lifetime, and
/// the app client's `RefreshTokenValidity` that provisioning and the
/// template set on AWS. Browser sessions last as long.
pub const REFRESH_TOKEN_LIFETIME: time::Duration = time::Duration::days(30);

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
    /// When the token was issued (`iat`): tokens from before a global
    /// sign-out are refused.
    pub issued_at: OffsetDateTime,
}

/// The claims both pools' access tokens carry (Cognito's shape), as decoded
/// once the signature and issuer have been checked.
#[derive(Debug, Clone, Deserialize)]
pub struct AccessTokenClaims {
    pub sub: String,
    pub token_use: String,
    pub client_id: String,
    pub exp: i64,
    pub iat: i64,
}

/// Access tokens whose signature and issuer were checked, by the SHA-256 of
/// the token: a session presents the same token on every call, and a digest
/// costs a microsecond where an RS256 verification costs tens. Only the
/// decoded claims are kept, so expiry and client are still checked on every
/// use (`AccessTokenClaims::verify`). Bounded: when full it starts over.
pub struct VerifiedTokens {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], AccessTokenClaims>>,
    capacity: usize,
}

impl VerifiedTokens {
    pub fn new(capacity: usize) -> Self {
        Self { entries: std::sync::Mutex::default(), capacity: capacity.max(1) }
    }

    fn key(token: &str) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    /// The claims of a token verified before, if it was.
    pub fn get(&self, token: &str) -> Option<AccessTokenClaims> {
        self.entries.lock().ok()?.get(&Self::key(token)).cloned()
    }

    /// Remembers a token whose signature and issuer were just checked.
    pub fn insert(&self, token: &str, claims: AccessTokenClaims) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity {
                entries.clear();
            }
            entries.insert(Self::key(token), claims);
        }
    }
}

impl fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the claims: which users are active is nobody's business.
        f.debug_struct("VerifiedTokens").field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

impl AccessTokenClaims {
    /// The checks after the signature: an access token (not an id token), for
    /// this app client, not expired at `now` (no leeway).
    pub fn verify(self, client_id: &str, now: OffsetDateTime) -> Result<AccessClaims, crate::Error> {
        if self.exp <= now.unix_timestamp() || self.token_use != "access" || self.client_id != client_id {
            return Err(crate::Error::InvalidToken);
        }
        let issued_at = OffsetDateTime::from_unix_timestamp(self.iat).map_err(|_| crate::Error::InvalidToken)?;
        Ok(AccessClaims { sub: UserSub::new(self.sub), issued_at })
    }
}

#[derive(Debug, Clone)]
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

#[cfg(test)]
mod verified_tokens_tests {
    use super::*;

    fn claims(sub: &str, exp: i64) -> AccessTokenClaims {
        AccessTokenClaims { sub: sub.into(), token_use: "access".into(), client_id: "app".into(), exp, iat: exp - 3600 }
    }

    #[test]
    fn remembers_by_the_whole_token_and_stays_bounded() {
        let cache = VerifiedTokens::new(2);
        assert!(cache.get("token-a").is_none());
        cache.insert("token-a", claims("a", 100));
        assert_eq!(cache.get("token-a").map(|c| c.sub), Some("a".into()));
        assert!(cache.get("token-a ").is_none(), "another string is another token");
        cache.insert("token-b", claims("b", 100));
        cache.insert("token-c", claims("c", 100));
        let kept = ["token-a", "token-b", "token-c"].iter().filter(|t| cache.get(t).is_some()).count();
        assert!(kept <= 2, "never more than its capacity");
        assert!(cache.get("token-c").is_some(), "the newest is kept");
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let cache = VerifiedTokens::new(8);
        cache.insert("t", claims("a", 1_000));
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        assert!(cache.get("t").unwrap().verify("app", now).is_err(), "exp is checked on each use");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn claims(token_use: &str, client_id: &str, exp: i64) -> AccessTokenClaims {
        AccessTokenClaims {
            sub: "s".into(),
            token_use: token_use.into(),
            client_id: client_id.into(),
            exp,
            iat: exp - 3600,
        }
    }

    #[test]
    fn access_claims_are_checked_for_use_client_and_expiry() {
        let now = datetime!(2026-01-01 0:00 UTC);
        let t = now.unix_timestamp();
        assert_eq!(claims("access", "app", t + 1).verify("app", now).unwrap().sub.as_str(), "s");
        assert!(claims("access", "app", t).verify("app", now).is_err(), "expired at exp");
        assert!(claims("id", "app", t + 60).verify("app", now).is_err(), "an id token");
        assert!(claims("access", "other", t + 60).verify("app", now).is_err(), "another client");
    }
}
