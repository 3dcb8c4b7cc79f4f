//! Counting failed attempts (wrong codes, wrong passwords) per key in a fixed
//! window, so guessing is slow. Pure data: the caller supplies time and locking.

use std::collections::HashMap;

use time::{Duration, OffsetDateTime};

#[derive(Debug)]
pub struct AttemptLimiter {
    max_failures: u32,
    window: Duration,
    windows: HashMap<String, (OffsetDateTime, u32)>,
    /// Size at which expired windows are next swept; doubling keeps sweeps amortised O(1).
    sweep_at: usize,
}

/// Keys kept before expired windows are swept, bounding memory under a flood of keys.
const SWEEP_AT: usize = 100_000;

impl AttemptLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self { max_failures, window, windows: HashMap::new(), sweep_at: SWEEP_AT }
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

    /// Counts an attempt before it runs, so parallel attempts cannot all slip
    /// through one check; `forgive` takes it back if it turned out not to be a guess.
    pub fn begin(&mut self, key: &str, now: OffsetDateTime) -> Result<(), Duration> {
        self.check(key, now)?;
        self.record_failure(key, now);
        Ok(())
    }

    pub fn forgive(&mut self, key: &str, now: OffsetDateTime) {
        if let Some((started, count)) = self.windows.get_mut(key)
            && now < *started + self.window
        {
            *count = count.saturating_sub(1);
        }
    }

    pub fn record_failure(&mut self, key: &str, now: OffsetDateTime) {
        if self.windows.len() >= self.sweep_at {
            let window = self.window;
            self.windows.retain(|_, (started, _)| now < *started + window);
            self.sweep_at = (self.windows.len() * 2).max(SWEEP_AT);
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

    #[test]
    fn attempts_count_when_they_begin_and_successes_are_forgiven() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let mut l = AttemptLimiter::new(2, Duration::minutes(15));
        assert!(l.begin("k", t0).is_ok());
        assert!(l.begin("k", t0).is_ok());
        assert!(l.begin("k", t0).is_err(), "a third attempt in flight is refused");
        l.forgive("k", t0);
        assert!(l.begin("k", t0).is_ok());
    }
}
