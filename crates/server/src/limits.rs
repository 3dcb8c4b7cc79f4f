//! Slowing down guessing: failed codes and passwords are counted per email and
//! per client address; past the limit, requests get `429` with `Retry-After`.

use std::net::IpAddr;
use std::sync::Mutex;

use domain::limiter::AttemptLimiter;
use domain::{Email, Error};
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

pub struct FailureGuard {
    by_email: Mutex<AttemptLimiter>,
    by_client: Mutex<AttemptLimiter>,
}

/// Failures that count: guesses at a secret.
pub fn is_guess_failure(error: &Error) -> bool {
    matches!(error, Error::InvalidAccessCode | Error::NotAuthorized | Error::InvalidConfirmationCode)
}

impl FailureGuard {
    pub fn new(limits: AttemptLimits) -> Self {
        Self {
            by_email: Mutex::new(AttemptLimiter::new(limits.per_email, limits.window)),
            by_client: Mutex::new(AttemptLimiter::new(limits.per_client, limits.window)),
        }
    }

    pub fn check(&self, email: &Email, client: IpAddr, now: OffsetDateTime) -> Result<(), Error> {
        let client = client.to_string();
        let blocked = [(&self.by_email, email.as_str()), (&self.by_client, client.as_str())]
            .into_iter()
            .filter_map(|(limiter, key)| limiter.lock().ok()?.check(key, now).err())
            .max();
        match blocked {
            Some(wait) => Err(Error::TooManyAttempts {
                retry_after: std::time::Duration::from_secs(wait.whole_seconds().max(1).unsigned_abs()),
            }),
            None => Ok(()),
        }
    }

    /// Passes the result through, counting it if it was a wrong guess.
    pub fn observe<T>(
        &self,
        email: &Email,
        client: IpAddr,
        now: OffsetDateTime,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        if let Err(e) = &result
            && is_guess_failure(e)
        {
            let client = client.to_string();
            for (limiter, key) in [(&self.by_email, email.as_str()), (&self.by_client, client.as_str())] {
                if let Ok(mut limiter) = limiter.lock() {
                    limiter.record_failure(key, now);
                }
            }
        }
        result
    }
}
