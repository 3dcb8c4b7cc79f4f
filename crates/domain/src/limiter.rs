//! Counting failed attempts (wrong codes, wrong passwords) per key in a fixed
//! window, so guessing is slow. The rule (`next_step`) is pure; the in-memory
//! counter here and the DynamoDB one (backend-aws) both apply it.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use time::{Duration, OffsetDateTime};

use crate::Error;
use crate::ports::{AttemptCounter, AttemptKey};

/// A key's window as stored: when it started and how many attempts it holds.
pub type Window = (OffsetDateTime, u32);

/// What counting one more attempt against a stored window means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowStep {
    /// No window, or it is over: a new one starts at `now`, holding this attempt.
    Start,
    /// The window goes on and has room: one more.
    Add,
    /// The window is full until it ends.
    Full { retry_after: Duration },
}

/// The one rule for every counter (in memory or in DynamoDB).
pub fn next_step(stored: Option<Window>, max: u32, window: Duration, now: OffsetDateTime) -> WindowStep {
    match stored {
        Some((started, count)) if now < started + window => {
            if count >= max {
                WindowStep::Full { retry_after: started + window - now }
            } else {
                WindowStep::Add
            }
        }
        _ => WindowStep::Start,
    }
}

/// Whether an attempt counted at `at` still sits in the stored window, so forgiving it takes it back.
pub fn counted_in(stored: Window, window: Duration, at: OffsetDateTime) -> bool {
    stored.0 <= at && at < stored.0 + window && stored.1 > 0
}

/// The attempt counter for one process (the embedded backend).
#[derive(Debug, Default)]
pub struct MemoryAttemptCounter {
    windows: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    by_key: HashMap<String, Window>,
    /// Size at which expired windows are next swept; doubling keeps sweeps amortised O(1).
    sweep_at: usize,
}

/// Keys kept before expired windows are swept, bounding memory under a flood of keys.
const SWEEP_AT: usize = 100_000;

#[async_trait]
impl AttemptCounter for MemoryAttemptCounter {
    async fn begin(&self, keys: &[AttemptKey], window: Duration, now: OffsetDateTime) -> Result<(), Error> {
        let mut windows = self.windows.lock().map_err(|_| Error::unexpected("attempt counter poisoned"))?;
        let steps: Vec<WindowStep> =
            keys.iter().map(|k| next_step(windows.by_key.get(&k.key).copied(), k.max, window, now)).collect();
        if let Some(wait) = steps
            .iter()
            .filter_map(|step| match step {
                WindowStep::Full { retry_after } => Some(*retry_after),
                _ => None,
            })
            .max()
        {
            return Err(too_many(wait));
        }
        if windows.by_key.len() >= windows.sweep_at.max(SWEEP_AT) {
            windows.by_key.retain(|_, (started, _)| now < *started + window);
            windows.sweep_at = (windows.by_key.len() * 2).max(SWEEP_AT);
        }
        for (key, step) in keys.iter().zip(steps) {
            let entry = windows.by_key.entry(key.key.clone()).or_insert((now, 0));
            match step {
                WindowStep::Start => *entry = (now, 1),
                WindowStep::Add => entry.1 = entry.1.saturating_add(1),
                WindowStep::Full { .. } => {}
            }
        }
        Ok(())
    }

    async fn forgive(&self, keys: &[String], window: Duration, at: OffsetDateTime) -> Result<(), Error> {
        let mut windows = self.windows.lock().map_err(|_| Error::unexpected("attempt counter poisoned"))?;
        for key in keys {
            if let Some(stored) = windows.by_key.get_mut(key)
                && counted_in(*stored, window, at)
            {
                stored.1 -= 1;
            }
        }
        Ok(())
    }
}

/// `TooManyAttempts`, with whole seconds to wait (at least one).
pub fn too_many(wait: Duration) -> Error {
    let secs = wait.whole_seconds().max(1).unsigned_abs();
    Error::TooManyAttempts { retry_after: std::time::Duration::from_secs(secs) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn key(max: u32) -> Vec<AttemptKey> {
        vec![AttemptKey { key: "k".into(), max }]
    }

    #[tokio::test]
    async fn blocks_after_max_attempts_until_the_window_ends() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let window = Duration::minutes(15);
        let counter = MemoryAttemptCounter::default();
        for _ in 0..3 {
            counter.begin(&key(3), window, t0).await.unwrap();
        }
        let refused = counter.begin(&key(3), window, t0 + Duration::minutes(5)).await.unwrap_err();
        assert!(matches!(refused, Error::TooManyAttempts { retry_after } if retry_after.as_secs() == 600));
        assert!(counter.begin(&key(3), window, t0 + Duration::minutes(15)).await.is_ok(), "a new window");
    }

    #[tokio::test]
    async fn a_full_key_counts_none_and_forgiven_attempts_free_their_place() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let window = Duration::minutes(15);
        let counter = MemoryAttemptCounter::default();
        let both = vec![AttemptKey { key: "small".into(), max: 1 }, AttemptKey { key: "large".into(), max: 10 }];
        counter.begin(&both, window, t0).await.unwrap();
        assert!(counter.begin(&both, window, t0).await.is_err(), "the small key is full");
        counter.forgive(&["small".into(), "large".into()], window, t0).await.unwrap();
        counter.begin(&both, window, t0).await.unwrap();
        // The refused attempt counted against neither key: "large" holds exactly one.
        let held = counter.windows.lock().unwrap().by_key["large"];
        assert_eq!(held.1, 1);
    }

    #[test]
    fn the_window_rule() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let w = Duration::minutes(15);
        assert_eq!(next_step(None, 2, w, t0), WindowStep::Start);
        assert_eq!(next_step(Some((t0, 1)), 2, w, t0), WindowStep::Add);
        assert_eq!(next_step(Some((t0, 2)), 2, w, t0), WindowStep::Full { retry_after: w });
        assert_eq!(next_step(Some((t0, 2)), 2, w, t0 + w), WindowStep::Start);
        assert!(counted_in((t0, 1), w, t0) && !counted_in((t0, 1), w, t0 + w) && !counted_in((t0, 0), w, t0));
    }
}
