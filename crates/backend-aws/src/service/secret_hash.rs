//! Cognito's SECRET_HASH for confidential app clients, computed in one place.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// `Base64(HMAC-SHA256(key = client secret, message = username + client id))`.
pub fn secret_hash(username: &str, client_id: &str, client_secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(client_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(username.as_bytes());
    mac.update(client_id.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_independently_computed_vector() {
        // From the team's reference notes (rust-deps.md, kept beside this repository): computed separately in Rust and Python.
        assert_eq!(
            secret_hash("user@example.com", "1example23456789", "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmno"),
            "VH7cXdbPim0iPgxC2xs4n0d39EhNI7JFMqFreVRJqOY="
        );
    }

    #[test]
    fn depends_on_every_input() {
        let base = secret_hash("u", "c", "s");
        assert_ne!(base, secret_hash("v", "c", "s"));
        assert_ne!(base, secret_hash("u", "d", "s"));
        assert_ne!(base, secret_hash("u", "c", "t"));
    }
}
