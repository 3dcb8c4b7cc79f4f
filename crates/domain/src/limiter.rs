//! Counting failed attempts (wrong codes, wrong passwords) per key in a fixed
//! window, so guessing is slow. Pure data: the caller supplies time and locking.

use std::collections::HashMap;

use time::{Duration, OffsetDateTime};

#[derive(Debug)]
pub struct AttemptLimiter {
    max_failures: u32,
    window: Duration,
    windows: HashMap<String, (OffsetDateTime, u32)>,
}

/// Keys kept before expired windows are swept, bounding memory under a flood of keys.
const SWEEP_AT: usize = 100_000;

impl AttemptLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self { max_failures, window, windows: HashMap::new() }
    }

    /// `Err(retry_after)` while `key` has used up its failures in this window.
    pub fn check(&self, key: &str, now: OffsetDateTime) -> Result<(), Duration> {
        match self.windows.get(key) {
            Some(&(started, count)) if count >= self.max_failures && now < started + self.window => {
                Err(started + self.window - now)
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&mut self, key: &str, now: OffsetDateTime) {
        if self.windows.len() >= SWEEP_AT {
            let window = self.window;
            self.windows.retain(|_, (started, _)| now < *started + window);
        }
        let entry = self.windows.entry(key.to_owned()).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn blocks_after_max_failures_until_the_window_ends() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let mut l = AttemptLimiter::new(3, Duration::minutes(15));
        for _ in 0..3 {
            assert!(l.check("k", t0).is_ok());
            l.record_failure("k", t0);
        }
        assert_eq!(l.check("k", t0 + Duration::minutes(5)), Err(Duration::minutes(10)));
        assert!(l.check("other", t0).is_ok());
        assert!(l.check("k", t0 + Duration::minutes(15)).is_ok());
    }
}
