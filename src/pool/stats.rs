//! Pool statistics with psycopg_pool's names: counters kept as relaxed atomics (a checkout adds
//! a few uncontended-cost increments, never a lock), gauges read from the core on demand.
//!
//! Consistency: a [`PoolStats`] is assembled from independent relaxed loads, so under load it is
//! a close approximation, not an atomic snapshot (deadpool says the same of its `Status`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A snapshot of a pool's gauges and counters (see `Pool::stats`, `Pool::pop_stats`).
///
/// Gauges (`pool_*`, `requests_waiting`, `connecting`, `permits_available`) describe now;
/// counters accumulate since the pool opened or since the last `pop_stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Configured `min_size`.
    pub pool_min: usize,
    /// Configured `max_size`.
    pub pool_max: usize,
    /// Live connections: idle, checked out, being returned, and being opened.
    pub pool_size: usize,
    /// Idle connections, ready for a checkout.
    pub pool_available: usize,
    /// Requests waiting for a connection now.
    pub requests_waiting: usize,
    /// Connections being opened now (not part of psycopg's set).
    pub connecting: usize,
    /// Checkouts that could start without queueing now (not part of psycopg's set).
    pub permits_available: usize,
    /// Checkout requests made.
    pub requests_num: u64,
    /// Requests that had to wait (no permit or no idle connection at once).
    pub requests_queued: u64,
    /// Total milliseconds queued requests waited.
    pub requests_wait_ms: u64,
    /// Requests that failed (timeout, too many requests, closed).
    pub requests_errors: u64,
    /// Total milliseconds connections were checked out.
    pub usage_ms: u64,
    /// Connections returned broken.
    pub returns_bad: u64,
    /// Connection attempts made.
    pub connections_num: u64,
    /// Total milliseconds spent connecting.
    pub connections_ms: u64,
    /// Connection attempts that failed.
    pub connections_errors: u64,
    /// Idle connections found dead (at checkout or by `check`).
    pub connections_lost: u64,
}

/// The counters; gauges live in the core.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests_num: AtomicU64,
    pub requests_queued: AtomicU64,
    pub requests_wait_us: AtomicU64,
    pub requests_errors: AtomicU64,
    pub usage_us: AtomicU64,
    pub returns_bad: AtomicU64,
    pub connections_num: AtomicU64,
    pub connections_us: AtomicU64,
    pub connections_errors: AtomicU64,
    pub connections_lost: AtomicU64,
}

/// Bumps a counter by one.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// Adds a duration to a microsecond counter. Kept in µs, reported in ms: checkouts are often
/// shorter than a millisecond, and truncating each sample to whole ms would leave `usage_ms` at 0
/// however busy the pool is.
pub(crate) fn add_us(c: &AtomicU64, d: Duration) {
    c.fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
}

impl Counters {
    /// Copies the counters into `s`, resetting them to zero if `reset`.
    pub(crate) fn fill(&self, s: &mut PoolStats, reset: bool) {
        let read = |c: &AtomicU64| {
            if reset {
                c.swap(0, Relaxed)
            } else {
                c.load(Relaxed)
            }
        };
        s.requests_num = read(&self.requests_num);
        s.requests_queued = read(&self.requests_queued);
        s.requests_wait_ms = read(&self.requests_wait_us) / 1000;
        s.requests_errors = read(&self.requests_errors);
        s.usage_ms = read(&self.usage_us) / 1000;
        s.returns_bad = read(&self.returns_bad);
        s.connections_num = read(&self.connections_num);
        s.connections_ms = read(&self.connections_us) / 1000;
        s.connections_errors = read(&self.connections_errors);
        s.connections_lost = read(&self.connections_lost);
    }
}
