//! The operator's credential for the admin API.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What the admin API checks a bearer token against: only its SHA-256 is
/// kept, and the comparison is constant-time (a digest hides the length too).
#[derive(Clone)]
pub struct AdminCredential {
    digest: [u8; 32],
}

impl AdminCredential {
    /// `None` for an empty token: an empty secret would be no secret.
    pub fn new(token: &str) -> Option<Self> {
        let token = token.trim();
        (!token.is_empty()).then(|| Self { digest: Sha256::digest(token.as_bytes()).into() })
    }

    pub fn accepts(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        self.digest.ct_eq(&presented).into()
    }
}

impl std::fmt::Debug for AdminCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminCredential(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_passes_and_nothing_shows() {
        let credential = AdminCredential::new("s3cret-token").unwrap();
        assert!(credential.accepts("s3cret-token"));
        assert!(!credential.accepts("s3cret-tokeN"));
        assert!(!credential.accepts(""));
        assert!(AdminCredential::new("  ").is_none());
        assert!(!format!("{credential:?}").contains("s3cret"));
    }
}
