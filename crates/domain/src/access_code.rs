//! Access codes: what an invitee types to prove they read the invitation email.
//!
//! 16 Crockford base32 symbols = 80 bits of entropy, shown as four groups of
//! four (`7KQ2-M9XD-4HTB-R0WE`). Input is accepted in any case, with or without
//! separators, and with the letters Crockford maps to digits (I/L → 1, O → 0).
//! Codes are never stored: only their HMAC-SHA256 under a server key.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use rand::{CryptoRng, RngExt};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
pub const CODE_SYMBOLS: usize = 16;
pub const CODE_ENTROPY_BITS: usize = CODE_SYMBOLS * 5;
// The product promises at least 60 bits; the build fails if that ever stops being true.
const _: () = assert!(CODE_ENTROPY_BITS >= 60);
/// Bound on what we bother to read: separators and spaces allowed, but not megabytes.
const MAX_INPUT_LEN: usize = 64;

/// A well-formed access code in canonical form (16 upper-case symbols, no separators).
#[derive(Clone, PartialEq, Eq)]
pub struct AccessCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the access code is not in the expected form")]
pub struct MalformedAccessCode;

impl AccessCode {
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let code = (0..CODE_SYMBOLS).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
        Self(code)
    }

    pub fn parse(raw: &str) -> Result<Self, MalformedAccessCode> {
        if raw.len() > MAX_INPUT_LEN {
            return Err(MalformedAccessCode);
        }
        let mut canonical = String::with_capacity(CODE_SYMBOLS);
        for c in raw.chars() {
            let symbol = match c.to_ascii_uppercase() {
                '-' | ' ' | '_' => continue,
                'I' | 'L' => '1',
                'O' => '0',
                c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
                _ => return Err(MalformedAccessCode),
            };
            canonical.push(symbol);
        }
        if canonical.len() != CODE_SYMBOLS {
            return Err(MalformedAccessCode);
        }
        Ok(Self(canonical))
    }

    /// The form shown to people: groups of four separated by dashes.
    pub fn expose_grouped(&self) -> String {
        self.0
            .as_bytes()
            .chunks(4)
            .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("-")
    }

    fn canonical(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessCode(<redacted>)")
    }
}

/// The server key under which access and confirmation codes are hashed.
#[derive(Clone)]
pub struct CodeHasher {
    key: [u8; 32],
}

/// HMAC-SHA256 of a code; safe to store.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeHash([u8; 32]);

impl CodeHasher {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    pub fn hash_access_code(&self, code: &AccessCode) -> CodeHash {
        self.mac(&[b"access-code\0", code.canonical().as_bytes()])
    }

    /// A code imported from another system (`invite import`), kept exactly
    /// as it was issued, but for surrounding blanks: its own alphabet and
    /// length, compared as a whole. The prefix keeps it apart from our own.
    pub fn hash_imported_code(&self, code: &str) -> CodeHash {
        self.mac(&[b"imported-code\0", code.trim().as_bytes()])
    }

    /// A code as typed at sign-up, hashed each way an invitation's code may
    /// be stored: as one of ours (if it reads as one) and as an imported one.
    pub fn present(&self, typed: &str) -> PresentedCode {
        PresentedCode {
            own: AccessCode::parse(typed).ok().map(|code| self.hash_access_code(&code)),
            imported: self.hash_imported_code(typed),
        }
    }

    /// Recovery codes, like confirmation codes, are bound to their address;
    /// the prefix keeps one kind of code from ever passing as the other.
    pub fn hash_recovery_code(&self, email: &crate::Email, code: &str) -> CodeHash {
        self.mac(&[b"recovery-code\0", email.as_str().as_bytes(), b"\0", code.as_bytes()])
    }

    /// Confirmation codes are short, so the hash binds them to the address they were sent to.
    pub fn hash_confirmation_code(&self, email: &crate::Email, code: &str) -> CodeHash {
        self.mac(&[b"confirmation-code\0", email.as_str().as_bytes(), b"\0", code.as_bytes()])
    }

    /// The anti-forgery token a page's forms carry for a browser holding
    /// `browser_secret` in a cookie: only pages of this service can show it,
    /// and a form sent without it (from another site) is refused.
    pub fn form_token(&self, browser_secret: &str) -> CodeHash {
        self.mac(&[b"form-token\0", browser_secret.as_bytes()])
    }

    fn mac(&self, parts: &[&[u8]]) -> CodeHash {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        for part in parts {
            mac.update(part);
        }
        CodeHash(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeHasher(<redacted>)")
    }
}

/// What a sign-up presents, hashed every way a stored code can be (see [`CodeHasher::present`]).
#[derive(Clone)]
pub struct PresentedCode {
    own: Option<CodeHash>,
    imported: CodeHash,
}

impl PresentedCode {
    /// Whether `stored` is this code's hash; both comparisons always run, in constant time.
    pub fn matches(&self, stored: &CodeHash) -> bool {
        let own = self.own.as_ref().is_some_and(|own| own.matches(stored));
        let imported = self.imported.matches(stored);
        own | imported
    }
}

impl fmt::Debug for PresentedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresentedCode(<redacted>)")
    }
}

/// Below this, a code can be guessed by someone trying hard enough (about
/// 10¹² tries); invitegate's own codes have 80 bits.
pub const WEAK_CODE_BITS: f64 = 40.0;

/// How many bits a code of this shape can hold at most: its length times the
/// log of the alphabet its characters come from (digits, lower case, upper
/// case, anything else). An estimate of what a guesser faces, not a proof.
pub fn estimated_bits(code: &str) -> f64 {
    let code = code.trim();
    let classes = [
        (code.chars().any(|c| c.is_ascii_digit()), 10.0),
        (code.chars().any(|c| c.is_ascii_lowercase()), 26.0),
        (code.chars().any(|c| c.is_ascii_uppercase()), 26.0),
        (code.chars().any(|c| !c.is_ascii_alphanumeric() && !matches!(c, '-' | ' ')), 33.0),
    ];
    let alphabet: f64 = classes.iter().filter(|(present, _)| *present).map(|(_, size)| size).sum();
    // Dashes and blanks group a code; they add nothing to guess.
    let length = code.chars().filter(|c| !matches!(c, '-' | ' ')).count();
    if alphabet <= 1.0 { 0.0 } else { length as f64 * alphabet.log2() }
}

impl CodeHash {
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time comparison, so response timing says nothing about how close a guess was.
    pub fn matches(&self, other: &CodeHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for CodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeHash(<redacted>)")
    }
}

/// A six-digit code emailed to confirm an address in open sign-up mode.
pub fn generate_confirmation_code<R: CryptoRng + ?Sized>(rng: &mut R) -> String {
    format!("{:06}", rng.random_range(0..1_000_000u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    #[test]
    fn imported_codes_match_exactly_and_never_as_our_own() {
        let hasher = CodeHasher::new([7; 32]);
        let stored = hasher.hash_imported_code("beta-2023-Xy7");
        assert!(hasher.present("  beta-2023-Xy7 ").matches(&stored));
        assert!(!hasher.present("BETA-2023-XY7").matches(&stored), "compared exactly, case included");
        assert!(!hasher.present("beta2023Xy7").matches(&stored));
        let ours = AccessCode::generate(&mut rand::rngs::StdRng::seed_from_u64(3));
        let own = hasher.hash_access_code(&ours);
        assert!(hasher.present(&ours.expose_grouped().to_lowercase()).matches(&own));
        assert!(!hasher.present(&ours.expose_grouped()).matches(&hasher.hash_imported_code("something else")));
        // The same text as an imported code does not pass for one of ours, nor the other way.
        assert!(!own.matches(&hasher.hash_imported_code(&ours.expose_grouped())));
    }

    #[test]
    fn short_or_narrow_codes_are_weak_and_ours_are_not() {
        assert!(estimated_bits("123456") < WEAK_CODE_BITS);
        assert!(estimated_bits("BETA23") < WEAK_CODE_BITS);
        assert!(estimated_bits("BETA2023") > WEAK_CODE_BITS, "8 of 36 symbols: 41 bits");
        assert!(estimated_bits("k3j9x") < WEAK_CODE_BITS);
        assert!(estimated_bits("Xq7-pL2-mZ9w-Rt") > WEAK_CODE_BITS);
        let ours = AccessCode::generate(&mut rand::rngs::StdRng::seed_from_u64(3));
        assert!(estimated_bits(&ours.expose_grouped()) >= 70.0);
        assert_eq!(estimated_bits("    "), 0.0);
    }

    #[test]
    fn generated_codes_round_trip_through_every_accepted_spelling() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..100 {
            let code = AccessCode::generate(&mut rng);
            let grouped = code.expose_grouped();
            assert_eq!(grouped.len(), 19);
            assert_eq!(AccessCode::parse(&grouped).unwrap(), code);
            assert_eq!(AccessCode::parse(&grouped.to_lowercase()).unwrap(), code);
            assert_eq!(AccessCode::parse(&grouped.replace('-', "")).unwrap(), code);
            assert_eq!(AccessCode::parse(&grouped.replace('-', " ")).unwrap(), code);
        }
    }

    #[test]
    fn confusable_letters_map_to_digits() {
        let a = AccessCode::parse("ILO0-1111-0000-ABCD").unwrap();
        let b = AccessCode::parse("1100-1111-0000-abcd").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn rejects_wrong_length_and_foreign_symbols() {
        assert!(AccessCode::parse("").is_err());
        assert!(AccessCode::parse("ABCD-EFGH-JKMN").is_err());
        assert!(AccessCode::parse("ABCD-EFGH-JKMN-PQRST").is_err());
        assert!(AccessCode::parse("ABCD-EFGH-JKMN-PQRU").is_err(), "U is not Crockford");
        assert!(AccessCode::parse("ABCD-EFGH-JKMN-PQR!").is_err());
        assert!(AccessCode::parse(&"A".repeat(1000)).is_err());
    }

    #[test]
    fn debug_never_shows_the_code() {
        let code = AccessCode::parse("ABCD-EFGH-JKMN-PQRS").unwrap();
        let shown = format!("{code:?}");
        assert!(!shown.contains("ABCD"), "{shown}");
    }

    #[test]
    fn hash_depends_on_key_and_code() {
        let code = AccessCode::parse("ABCD-EFGH-JKMN-PQRS").unwrap();
        let other = AccessCode::parse("ABCD-EFGH-JKMN-PQRT").unwrap();
        let h1 = CodeHasher::new([1; 32]);
        let h2 = CodeHasher::new([2; 32]);
        assert!(h1.hash_access_code(&code).matches(&h1.hash_access_code(&code)));
        assert!(!h1.hash_access_code(&code).matches(&h2.hash_access_code(&code)));
        assert!(!h1.hash_access_code(&code).matches(&h1.hash_access_code(&other)));
    }

    proptest! {
        #[test]
        fn parse_is_canonical_and_never_panics(raw in "\\PC{0,70}") {
            if let Ok(code) = AccessCode::parse(&raw) {
                // Whatever was accepted re-parses, from its shown form, to itself.
                prop_assert_eq!(AccessCode::parse(&code.expose_grouped()).unwrap(), code.clone());
                prop_assert_eq!(code.canonical().len(), CODE_SYMBOLS);
            }
        }

        #[test]
        fn any_crockford_string_of_sixteen_symbols_is_accepted(
            symbols in proptest::collection::vec(0usize..32, CODE_SYMBOLS),
            lower in any::<bool>(),
            sep in prop_oneof![Just(""), Just("-"), Just(" ")],
        ) {
            let canonical: String = symbols.iter().map(|&i| ALPHABET[i] as char).collect();
            let mut typed = canonical.as_bytes().chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap().to_string())
                .collect::<Vec<_>>().join(sep);
            if lower { typed = typed.to_lowercase(); }
            let parsed = AccessCode::parse(&typed).unwrap();
            prop_assert_eq!(parsed.canonical(), canonical.as_str());
        }
    }
}
