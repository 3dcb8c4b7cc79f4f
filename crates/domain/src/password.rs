//! Passwords and the password policy (Cognito's default unless configured).

use std::fmt;

/// A password that satisfied the policy it was checked against.
#[derive(Clone)]
pub struct Password(String);

/// Cognito's accepted symbols (space included), so both backends agree.
const SYMBOLS: &str = "^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+- ";
/// Cognito's upper bound.
const MAX_LENGTH: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_digit: bool,
    pub require_symbol: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            require_uppercase: true,
            require_lowercase: true,
            require_digit: true,
            require_symbol: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordRule {
    MinLength(usize),
    MaxLength(usize),
    Uppercase,
    Lowercase,
    Digit,
    Symbol,
}

impl fmt::Display for PasswordRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MinLength(n) => write!(f, "at least {n} characters"),
            Self::MaxLength(n) => write!(f, "at most {n} characters"),
            Self::Uppercase => f.write_str("an upper-case letter"),
            Self::Lowercase => f.write_str("a lower-case letter"),
            Self::Digit => f.write_str("a digit"),
            Self::Symbol => f.write_str("a symbol"),
        }
    }
}

/// Which rules a password broke; all of them, so the user can fix it in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct PasswordPolicyViolation(pub Vec<PasswordRule>);

fn describe(rules: &[PasswordRule]) -> String {
    let list: Vec<String> = rules.iter().map(ToString::to_string).collect();
    format!("Password must contain {}", list.join(", "))
}

impl PasswordPolicy {
    /// Every rule a password must meet, as shown before one is typed.
    pub fn rules(&self) -> Vec<PasswordRule> {
        let mut rules = vec![PasswordRule::MinLength(self.min_length)];
        rules.extend(
            [
                (self.require_uppercase, PasswordRule::Uppercase),
                (self.require_lowercase, PasswordRule::Lowercase),
                (self.require_digit, PasswordRule::Digit),
                (self.require_symbol, PasswordRule::Symbol),
            ]
            .into_iter()
            .filter_map(|(required, rule)| required.then_some(rule)),
        );
        rules
    }

    pub fn check(&self, raw: &str) -> Result<Password, PasswordPolicyViolation> {
        let mut unmet = Vec::new();
        let length = raw.chars().count();
        if length < self.min_length {
            unmet.push(PasswordRule::MinLength(self.min_length));
        }
        if length > MAX_LENGTH {
            unmet.push(PasswordRule::MaxLength(MAX_LENGTH));
        }
        if self.require_uppercase && !raw.chars().any(|c| c.is_uppercase()) {
            unmet.push(PasswordRule::Uppercase);
        }
        if self.require_lowercase && !raw.chars().any(|c| c.is_lowercase()) {
            unmet.push(PasswordRule::Lowercase);
        }
        if self.require_digit && !raw.chars().any(|c| c.is_ascii_digit()) {
            unmet.push(PasswordRule::Digit);
        }
        if self.require_symbol && !raw.chars().any(|c| SYMBOLS.contains(c)) {
            unmet.push(PasswordRule::Symbol);
        }
        if unmet.is_empty() { Ok(Password(raw.to_owned())) } else { Err(PasswordPolicyViolation(unmet)) }
    }
}

impl Password {
    /// For handing to a hasher or an identity provider; never for display.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_password_meeting_every_rule() {
        assert!(PasswordPolicy::default().check("Corr3ct-horse").is_ok());
    }

    #[test]
    fn names_every_unmet_rule() {
        let err = PasswordPolicy::default().check("abc").unwrap_err();
        assert_eq!(
            err.0,
            vec![PasswordRule::MinLength(8), PasswordRule::Uppercase, PasswordRule::Digit, PasswordRule::Symbol]
        );
        assert_eq!(
            err.to_string(),
            "Password must contain at least 8 characters, an upper-case letter, a digit, a symbol"
        );
    }

    #[test]
    fn debug_is_redacted() {
        let p = PasswordPolicy::default().check("Corr3ct-horse").unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}
