//! Slowing down guessing (used by the service, so every front end gets it):
//! attempts at a secret (access codes, passwords,
//! confirmation codes) are counted per email and per client network; past the
//! limit, requests get `429` with `Retry-After`. An attempt counts when it
//! starts, so a burst of parallel guesses cannot all pass one check; it is
//! forgiven when it turns out not to have been a wrong guess.

use std::net::IpAddr;
use std::sync::Mutex;

use domain::limiter::AttemptLimiter;
use domain::{Error, UserSub};
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
    Inviter(UserSub),
}

pub struct FailureGuard {
    by_subject: Mutex<AttemptLimiter>,
    by_client: Mutex<AttemptLimiter>,
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
    pub fn new(limits: AttemptLimits) -> Self {
        Self {
            by_subject: Mutex::new(AttemptLimiter::new(limits.per_email, limits.window)),
            by_client: Mutex::new(AttemptLimiter::new(limits.per_client, limits.window)),
        }
    }

    /// Counts an attempt, or refuses it with `TooManyAttempts` if either key is used up.
    pub fn begin(&self, subject: Subject, client: IpAddr, now: OffsetDateTime) -> Result<Attempt, Error> {
        let client = client_key(client);
        let attempt = Attempt { subject: subject_key(&subject, &client), client, at: now };
        let mut by_subject = self.by_subject.lock().map_err(|_| Error::unexpected("limiter mutex poisoned"))?;
        let mut by_client = self.by_client.lock().map_err(|_| Error::unexpected("limiter mutex poisoned"))?;
        let waits = [by_subject.check(&attempt.subject, now).err(), by_client.check(&attempt.client, now).err()];
        if let Some(wait) = waits.into_iter().flatten().max() {
            let secs = wait.whole_seconds().max(1).unsigned_abs();
            return Err(Error::TooManyAttempts { retry_after: std::time::Duration::from_secs(secs) });
        }
        by_subject.record_failure(&attempt.subject, now);
        by_client.record_failure(&attempt.client, now);
        Ok(attempt)
    }

    /// Passes the result through; forgives the attempt unless it was a wrong guess.
    pub fn finish<T>(&self, attempt: Attempt, result: Result<T, Error>) -> Result<T, Error> {
        let counts = matches!(&result, Err(e) if is_guess_failure(e));
        if !counts {
            if let Ok(mut limiter) = self.by_subject.lock() {
                limiter.forgive(&attempt.subject, attempt.at);
            }
            if let Ok(mut limiter) = self.by_client.lock() {
                limiter.forgive(&attempt.client, attempt.at);
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
