//! An email address, parsed once at the edge and normalised so that the same
//! mailbox always compares equal (Cognito also treats addresses case-insensitively).

use std::fmt;

/// A syntactically valid, lower-cased email address.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidEmail(&'static str);

const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 63;

/// Characters allowed in the local part besides ASCII letters and digits
/// (RFC 5322 `atext`, minus the rarely-used quoted form).
const LOCAL_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(InvalidEmail("email is empty"));
        }
        if trimmed.len() > MAX_LEN {
            return Err(InvalidEmail("email is longer than 254 characters"));
        }
        if !trimmed.is_ascii() {
            return Err(InvalidEmail("email must be ASCII"));
        }
        let normalised = trimmed.to_ascii_lowercase();
        let (local, domain) = normalised.rsplit_once('@').ok_or(InvalidEmail("email must contain '@'"))?;
        validate_local(local)?;
        validate_domain(domain)?;
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate_local(local: &str) -> Result<(), InvalidEmail> {
    if local.is_empty() || local.len() > MAX_LOCAL_LEN {
        return Err(InvalidEmail("the part before '@' must be 1 to 64 characters"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(InvalidEmail("dots in the part before '@' must separate words"));
    }
    if !local.chars().all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c)) {
        return Err(InvalidEmail("the part before '@' has a character that is not allowed"));
    }
    Ok(())
}

fn validate_domain(domain: &str) -> Result<(), InvalidEmail> {
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(InvalidEmail("the domain must contain a dot"));
    }
    for label in &labels {
        let ok_len = !label.is_empty() && label.len() <= MAX_LABEL_LEN;
        let ok_chars = label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok_len || !ok_chars || label.starts_with('-') || label.ends_with('-') {
            return Err(InvalidEmail("the domain is not a valid host name"));
        }
    }
    let tld = labels.last().copied().unwrap_or_default();
    if tld.chars().all(|c| c.is_ascii_digit()) {
        return Err(InvalidEmail("the domain must be a name, not an address"));
    }
    Ok(())
}

impl TryFrom<&str> for Email {
    type Error = InvalidEmail;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let email = Email::parse("  Alice.Smith@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "alice.smith@example.com");
    }

    #[test]
    fn rejects_common_mistakes() {
        for bad in [
            "",
            "   ",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "alice@@example.com",
            "alice@exa mple.com",
            "al ice@example.com",
            ".alice@example.com",
            "alice.@example.com",
            "al..ice@example.com",
            "alice@-example.com",
            "alice@example-.com",
            "alice@example..com",
            "alice@127.0.0.1",
            "alice@exämple.com",
            "<alice@example.com>",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn enforces_length_limits() {
        let local = "a".repeat(65);
        assert!(Email::parse(&format!("{local}@example.com")).is_err());
        let label = "a".repeat(64);
        assert!(Email::parse(&format!("a@{label}.com")).is_err());
        let long_domain = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        assert!(Email::parse(&format!("a@{long_domain}")).is_err());
    }

    fn local_part() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\\.[A-Za-z0-9_+-]{1,10}){0,2}").unwrap()
    }

    fn domain_part() -> impl Strategy<Value = String> {
        proptest::string::string_regex("([A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?\\.){1,3}[A-Za-z]{2,8}").unwrap()
    }

    proptest! {
        #[test]
        fn valid_addresses_parse_and_normalise(local in local_part(), domain in domain_part()) {
            let raw = format!("{local}@{domain}");
            let email = Email::parse(&raw).unwrap();
            prop_assert_eq!(email.as_str(), raw.to_ascii_lowercase());
            // Parsing is idempotent and case-insensitive.
            prop_assert_eq!(Email::parse(email.as_str()).unwrap(), email.clone());
            prop_assert_eq!(Email::parse(&raw.to_ascii_uppercase()).unwrap(), email);
        }

        #[test]
        fn never_panics_and_accepted_values_are_well_formed(raw in "\\PC{0,80}") {
            if let Ok(email) = Email::parse(&raw) {
                let s = email.as_str();
                prop_assert_eq!(s.matches('@').count(), 1);
                prop_assert!(s.len() <= MAX_LEN);
                prop_assert!(!s.chars().any(|c| c.is_whitespace() || c.is_ascii_uppercase()));
            }
        }

        #[test]
        fn strings_without_at_sign_are_rejected(raw in "[^@]{0,60}") {
            prop_assert!(Email::parse(&raw).is_err());
        }
    }
}
