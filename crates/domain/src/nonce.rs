//! The reservation nonce: what binds a reserved invitation to the one sign-up
//! that reserved it. The service makes one per reservation and hands it to the
//! user pool with that sign-up; storage keeps only its digest; on AWS the
//! PreSignUp trigger confirms a SignUp only if it carries the nonce whose
//! digest the email's lock holds. Any other SignUp for the email, even one
//! with a valid SECRET_HASH, is not confirmed by the invitation.

use std::fmt;

use rand::{CryptoRng, RngExt};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Crockford base32, as access codes; 26 symbols carry 130 bits.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const SYMBOLS: usize = 26;

#[derive(Clone, PartialEq, Eq)]
pub struct ReservationNonce(String);

impl ReservationNonce {
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self((0..SYMBOLS).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect())
    }

    /// For handing to the user pool with the sign-up; never for logs.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What storage keeps.
    pub fn digest(&self) -> [u8; 32] {
        digest(&self.0)
    }
}

fn digest(nonce: &str) -> [u8; 32] {
    Sha256::digest(nonce.as_bytes()).into()
}

/// Whether `presented` (as the sign-up carried it) is the nonce whose digest
/// is `stored`; compared in constant time.
pub fn nonce_matches(stored: &[u8], presented: &str) -> bool {
    stored.len() == 32 && bool::from(digest(presented).ct_eq(stored))
}

impl fmt::Debug for ReservationNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReservationNonce(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_nonce_itself_matches_its_digest() {
        let nonce = ReservationNonce::generate(&mut rand::rng());
        let other = ReservationNonce::generate(&mut rand::rng());
        assert_eq!(nonce.expose().len(), SYMBOLS);
        assert!(nonce_matches(&nonce.digest(), nonce.expose()));
        assert!(!nonce_matches(&nonce.digest(), other.expose()));
        assert!(!nonce_matches(&nonce.digest(), ""));
        assert!(!nonce_matches(&[], nonce.expose()));
        assert!(!format!("{nonce:?}").contains(nonce.expose()));
    }
}
