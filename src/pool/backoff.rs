//! Randomised delays: the pool-wide reconnect backoff (psycopg_pool's `AttemptWithBackoff`),
//! and the jitter it and `max_lifetime` share.
//!
//! Invariant: one [`Backoff`] per pool, shared by every connect task and by a waiter asking for
//! growth, so neither a task that gave up nor a new demand can restart the attempts early: an
//! outage never turns into a connection storm (deadpool#201).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// psycopg_pool's first reconnect delay (`AttemptWithBackoff.INITIAL_DELAY`).
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// psycopg_pool's jitter on each delay (`DELAY_JITTER`): ±10%.
const BACKOFF_JITTER: f64 = 0.1;

/// A uniform random source for jitter (splitmix64): spreads timings, not security.
#[derive(Debug)]
pub(crate) struct Jitter(AtomicU64);

impl Jitter {
    pub(crate) fn new(seed: u64) -> Self {
        Jitter(AtomicU64::new(seed))
    }

    /// A uniform number in `[0, 1)`.
    pub(crate) fn unit(&self) -> f64 {
        let mut z = self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `d` scaled by a factor in `[1 - 0.1, 1 + 0.1)`: psycopg's jitter on every delay.
    pub(crate) fn spread(&self, d: Duration) -> Duration {
        d.mul_f64(1.0 + BACKOFF_JITTER * (2.0 * self.unit() - 1.0))
    }
}

/// The `n`-th delay of a doubling series from [`INITIAL_BACKOFF`] (1 s, 2 s, 4 s, ...),
/// saturating; `n` counts from 0.
pub(crate) fn doubling(n: u32) -> Duration {
    INITIAL_BACKOFF.saturating_mul(1 << n.min(16))
}

#[derive(Debug)]
struct State {
    not_before: Option<Instant>,
    delay: Duration,
}

/// When the next connect attempt may start: each failure pushes it back by the current delay
/// (±10%) and doubles the delay; a success resets both.
#[derive(Debug)]
pub(crate) struct Backoff(Mutex<State>);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Mutex::new(State {
            not_before: None,
            delay: INITIAL_BACKOFF,
        }))
    }
}

impl Backoff {
    /// The instant the next attempt must wait for, if it is still ahead.
    pub(crate) fn until(&self) -> Option<Instant> {
        let until = self.0.lock().ok()?.not_before?;
        (until > Instant::now()).then_some(until)
    }

    /// A failed attempt: the next one waits the current delay (spread by `jitter`), and the
    /// delay doubles. Returns the wait.
    pub(crate) fn failed(&self, jitter: &Jitter) -> Duration {
        let Ok(mut b) = self.0.lock() else {
            return INITIAL_BACKOFF;
        };
        let wait = jitter.spread(b.delay);
        b.not_before = Instant::now().checked_add(wait);
        b.delay = b.delay.saturating_mul(2);
        wait
    }

    /// After `reconnect_timeout`: the next round of attempts starts from the first delay again
    /// (still not before the wait already scheduled).
    pub(crate) fn give_up(&self) {
        if let Ok(mut b) = self.0.lock() {
            b.delay = INITIAL_BACKOFF;
        }
    }

    /// A successful connect.
    pub(crate) fn reset(&self) {
        if let Ok(mut b) = self.0.lock() {
            b.not_before = None;
            b.delay = INITIAL_BACKOFF;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent_and_in_the_unit_interval() {
        let j = Jitter::new(7);
        for _ in 0..10_000 {
            let u = j.unit();
            assert!((0.0..1.0).contains(&u));
            let d = j.spread(Duration::from_secs(10));
            assert!(
                d >= Duration::from_secs(9) && d < Duration::from_secs(11),
                "{d:?}"
            );
        }
    }

    #[test]
    fn the_doubling_series_saturates() {
        assert_eq!(doubling(0), Duration::from_secs(1));
        assert_eq!(doubling(3), Duration::from_secs(8));
        assert_eq!(doubling(40), doubling(16));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_double_the_delay_and_a_success_resets_it() {
        let (b, j) = (Backoff::default(), Jitter::new(1));
        assert_eq!(b.until(), None);
        let first = b.failed(&j);
        let second = b.failed(&j);
        assert!(first < Duration::from_millis(1100) && second > Duration::from_millis(1800));
        assert!(b.until().is_some());
        b.reset();
        assert_eq!(b.until(), None);
        assert!(b.failed(&j) < Duration::from_millis(1100));
    }
}
