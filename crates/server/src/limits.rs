//! Slowing down guessing (used by the service, so every front end gets it):
//! attempts at a secret (access codes, passwords,
//! confirmation codes) are counted per email and per client network; past the
//! limit, requests get `429` with `Retry-After`. An attempt counts when it
//! starts, so a burst of parallel guesses cannot all pass one check; it is
//! forgiven when it turns out not to have been a wrong guess.

use std::net::IpAddr;
use std::sync::Arc;

use domain::{AttemptCounter, AttemptKey, Error, UserSub};
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, Copy)]
pub struct AttemptLimits {
    pub per_email: u32,
    pub per_client: u32,
    pub window: Duration,
}

impl Default for AttemptLimits {
    fn default() -> Self {
        Self { per_email: 10, per_client: 100, window: Duration::minutes(15) }
    }
}

/// What an attempt is counted against, besides the client's address.
pub enum Subject {
    /// A password or confirmation code for this account: counted per email,
    /// wherever it comes from (these secrets are short).
    Email(domain::Email),
    /// An access code for this email, counted per email *and client network*:
    /// codes carry 80 bits, so the per-client limit alone keeps guessing
    /// hopeless (see the README), and wrong codes from others never lock the
    /// invitee out.
    SignUp(domain::Email),
    /// Resending a confirmation code to this email.
    Resend(domain::Email),
    /// Asking for a password-recovery code for this email.
    Recovery(domain::Email),
    /// Asking for an invitation for this email.
    AccessRequest(domain::Email),
    Inviter(UserSub),
}

/// The policy (keys, limits, which outcomes count) over the backend's shared counter.
pub struct FailureGuard {
    limits: AttemptLimits,
    counter: Arc<dyn AttemptCounter>,
}

/// Failures that count: wrong guesses at a secret, and probing for accounts.
pub fn is_guess_failure(error: &Error) -> bool {
    matches!(
        error,
        Error::InvalidAccessCode | Error::NotAuthorized | Error::InvalidConfirmationCode | Error::UserExists
    )
}

/// IPv6 clients are counted by /64, the block one subscriber usually holds.
pub(crate) fn client_key(client: IpAddr) -> String {
    match client {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

fn subject_key(subject: &Subject, client: &str) -> String {
    match subject {
        Subject::Email(email) => format!("email:{email}"),
        Subject::SignUp(email) => format!("sign-up:{email}:{client}"),
        Subject::Resend(email) => format!("resend:{email}"),
        Subject::Recovery(email) => format!("recovery:{email}"),
        Subject::AccessRequest(email) => format!("access-request:{email}"),
        Subject::Inviter(sub) => format!("inviter:{sub}"),
    }
}

/// A counted attempt; hand it back with the outcome to [`FailureGuard::finish`].
pub struct Attempt {
    subject: String,
    client: String,
    at: OffsetDateTime,
}

impl FailureGuard {
    pub fn new(limits: AttemptLimits, counter: Arc<dyn AttemptCounter>) -> Self {
        Self { limits, counter }
    }

    /// Counts an attempt, or refuses it with `TooManyAttempts` if either key is used up.
    pub async fn begin(&self, subject: Subject, client: IpAddr, now: OffsetDateTime) -> Result<Attempt, Error> {
        let client = client_key(client);
        let attempt = Attempt { subject: subject_key(&subject, &client), client: format!("client:{client}"), at: now };
        let keys = [
            AttemptKey { key: attempt.subject.clone(), max: self.limits.per_email },
            AttemptKey { key: attempt.client.clone(), max: self.limits.per_client },
        ];
        self.counter.begin(&keys, self.limits.window, now).await?;
        Ok(attempt)
    }

    /// Passes the result through; forgives the attempt unless it was a wrong guess.
    pub async fn finish<T>(&self, attempt: Attempt, result: Result<T, Error>) -> Result<T, Error> {
        let counts = matches!(&result, Err(e) if is_guess_failure(e));
        if !counts {
            let keys = [attempt.subject, attempt.client];
            if let Err(e) = self.counter.forgive(&keys, self.limits.window, attempt.at).await {
                // The attempt stays counted; the answer is still the right one.
                tracing::warn!(error = ?e, "could not forgive an attempt");
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap_or(IpAddr::V4([0, 0, 0, 0].into()));
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap_or(IpAddr::V4([0, 0, 0, 0].into()));
        assert_eq!(client_key(a), client_key(b));
        assert_eq!(client_key("::ffff:10.0.0.1".parse().unwrap_or(a)), "10.0.0.1");
    }
}
