//! Firebase Authentication's password hashes (its modified scrypt), so
//! users exported from Firebase keep their passwords. A hash is checked once,
//! at the user's first sign-in, and then replaced by the pool's own.
//!
//! The algorithm: key = scrypt(password, salt ‖ salt separator, N = 2^mem_cost,
//! r = rounds, p = 1, 32 bytes); hash = AES-256-CTR(key, counter from zero)
//! applied to the project's signer key.

use std::fmt;

use aes::cipher::{KeyIvInit, StreamCipher};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::Email;

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// A Firebase project's password-hash parameters, as its console shows them
/// (`base64_signer_key`, `base64_salt_separator`, `rounds`, `mem_cost`).
#[derive(Clone, PartialEq, Eq)]
pub struct FirebaseHashParams {
    signer_key: Vec<u8>,
    salt_separator: Vec<u8>,
    rounds: u32,
    mem_cost: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHashParams {
    #[error("--hash-key is not base64")]
    SignerKey,
    #[error("--salt-separator is not base64")]
    SaltSeparator,
    #[error("--rounds must be 1 to 8 (Firebase's range)")]
    Rounds,
    #[error("--mem-cost must be 1 to 14 (Firebase's range)")]
    MemCost,
}

impl FirebaseHashParams {
    pub fn new(
        signer_key_b64: &str,
        salt_separator_b64: &str,
        rounds: u32,
        mem_cost: u32,
    ) -> Result<Self, InvalidHashParams> {
        let signer_key = STANDARD.decode(signer_key_b64.trim()).map_err(|_| InvalidHashParams::SignerKey)?;
        if signer_key.is_empty() {
            return Err(InvalidHashParams::SignerKey);
        }
        let salt_separator =
            STANDARD.decode(salt_separator_b64.trim()).map_err(|_| InvalidHashParams::SaltSeparator)?;
        Self::from_parts(signer_key, salt_separator, rounds, mem_cost)
    }

    /// As stored by a backend.
    pub fn from_parts(
        signer_key: Vec<u8>,
        salt_separator: Vec<u8>,
        rounds: u32,
        mem_cost: u32,
    ) -> Result<Self, InvalidHashParams> {
        if !(1..=8).contains(&rounds) {
            return Err(InvalidHashParams::Rounds);
        }
        if !(1..=14).contains(&mem_cost) {
            return Err(InvalidHashParams::MemCost);
        }
        Ok(Self { signer_key, salt_separator, rounds, mem_cost })
    }

    pub fn signer_key(&self) -> &[u8] {
        &self.signer_key
    }

    pub fn salt_separator(&self) -> &[u8] {
        &self.salt_separator
    }

    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    pub fn mem_cost(&self) -> u32 {
        self.mem_cost
    }

    /// Firebase's hash of `password` with `salt`. CPU- and memory-bound
    /// (16 MiB and tens of milliseconds at the usual mem_cost 14): run it off
    /// the async executor.
    pub fn hash(&self, password: &str, salt: &[u8]) -> Vec<u8> {
        let mut salted = salt.to_vec();
        salted.extend_from_slice(&self.salt_separator);
        // `new` bounds the parameters to what scrypt accepts.
        let params = scrypt::Params::new(u8::try_from(self.mem_cost).unwrap_or(14), self.rounds, 1)
            .unwrap_or_else(|_| unreachable!("rounds and mem_cost are checked in new"));
        let mut key = [0u8; 32];
        scrypt::scrypt(password.as_bytes(), &salted, &params, &mut key)
            .unwrap_or_else(|_| unreachable!("a 32-byte output is valid"));
        let mut hash = self.signer_key.clone();
        Aes256Ctr::new(&key.into(), &[0u8; 16].into()).apply_keystream(&mut hash);
        hash
    }

    /// Whether `password` is the one behind `stored`, compared in constant time.
    pub fn verify(&self, password: &str, stored: &FirebasePassword) -> bool {
        self.hash(password, &stored.salt).ct_eq(&stored.hash).into()
    }
}

impl fmt::Debug for FirebaseHashParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FirebaseHashParams")
            .field("signer_key", &"<redacted>")
            .field("salt_separator", &"<redacted>")
            .field("rounds", &self.rounds)
            .field("mem_cost", &self.mem_cost)
            .finish()
    }
}

/// One user's Firebase password hash and salt (decoded from the export's base64).
#[derive(Clone, PartialEq, Eq)]
pub struct FirebasePassword {
    pub hash: Vec<u8>,
    pub salt: Vec<u8>,
}

impl FirebasePassword {
    /// From the export's `passwordHash` and `salt`; `None` if either is not base64.
    pub fn from_base64(hash: &str, salt: &str) -> Option<Self> {
        // Exports use the standard alphabet; some tools write the URL-safe one.
        let decode = |s: &str| {
            let s = s.trim();
            STANDARD.decode(s).or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s)).ok()
        };
        let hash = decode(hash).filter(|h| !h.is_empty())?;
        Some(Self { hash, salt: decode(salt)? })
    }

    pub fn hash_base64(&self) -> String {
        STANDARD.encode(&self.hash)
    }

    pub fn salt_base64(&self) -> String {
        STANDARD.encode(&self.salt)
    }
}

impl fmt::Debug for FirebasePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FirebasePassword(<redacted>)")
    }
}

/// A user from a Firebase export, checked: what the pool and the legacy
/// store keep of them.
#[derive(Debug, Clone)]
pub struct ImportedUser {
    /// Firebase's `localId`, kept with the account.
    pub firebase_uid: String,
    pub email: Email,
    pub email_verified: bool,
    pub created_at: OffsetDateTime,
    pub disabled: bool,
    /// `None`: no password in Firebase (federated only); set one by recovery.
    pub password: Option<FirebasePassword>,
}

/// What became of one imported user's account in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountImport {
    Created,
    /// Made by an earlier run of the same import (same Firebase uid).
    AlreadyImported,
    /// The address belongs to an account that did not come from this user.
    Taken,
}

/// Where an imported user's Firebase password stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyState {
    /// Recorded; the account may not exist yet (an import was cut short).
    Pending,
    /// The account exists and the Firebase password is what signs in to it.
    Active,
    /// Used once and replaced, or replaced by a new password (reset,
    /// change): nothing of it is kept but this mark, so a repeated import
    /// never brings the old password back.
    Retired,
}

impl LegacyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "active" => Self::Active,
            "retired" => Self::Retired,
            _ => return None,
        })
    }
}

/// The password to check at an imported user's first sign-in.
#[derive(Debug, Clone)]
pub struct LegacyPassword {
    pub params: FirebaseHashParams,
    pub password: FirebasePassword,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From Firebase's own scrypt tool (github.com/firebase/scrypt).
    const SIGNER_KEY: &str = "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==";
    const SALT: &str = "42xEC+ixf3L2lw==";
    const HASH: &str = "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==";

    #[test]
    fn firebases_known_answer() {
        let params = FirebaseHashParams::new(SIGNER_KEY, "Bw==", 8, 14).unwrap();
        let stored = FirebasePassword::from_base64(HASH, SALT).unwrap();
        assert_eq!(STANDARD.encode(params.hash("user1password", &stored.salt)), HASH);
        assert!(params.verify("user1password", &stored));
        assert!(!params.verify("user1password ", &stored));
        assert!(!params.verify("User1password", &stored));
    }

    #[test]
    fn other_parameters_give_other_hashes() {
        let stored = FirebasePassword::from_base64(HASH, SALT).unwrap();
        for params in [
            FirebaseHashParams::new(SIGNER_KEY, "Bw==", 8, 13).unwrap(),
            FirebaseHashParams::new(SIGNER_KEY, "Bg==", 8, 14).unwrap(),
            FirebaseHashParams::new(SIGNER_KEY, "Bw==", 7, 14).unwrap(),
        ] {
            assert!(!params.verify("user1password", &stored));
        }
    }

    #[test]
    fn parameters_are_checked_and_never_shown() {
        assert_eq!(FirebaseHashParams::new("not base64!", "Bw==", 8, 14), Err(InvalidHashParams::SignerKey));
        assert_eq!(FirebaseHashParams::new(SIGNER_KEY, "%%", 8, 14), Err(InvalidHashParams::SaltSeparator));
        assert_eq!(FirebaseHashParams::new(SIGNER_KEY, "Bw==", 0, 14), Err(InvalidHashParams::Rounds));
        assert_eq!(FirebaseHashParams::new(SIGNER_KEY, "Bw==", 8, 15), Err(InvalidHashParams::MemCost));
        let params = FirebaseHashParams::new(SIGNER_KEY, "Bw==", 8, 14).unwrap();
        let shown = format!("{params:?} {:?}", FirebasePassword::from_base64(HASH, SALT).unwrap());
        assert!(!shown.contains("jxspr8") && !shown.contains("lSrfV") && !shown.contains("42xEC"), "{shown}");
        assert!(FirebasePassword::from_base64("", SALT).is_none());
    }
}
