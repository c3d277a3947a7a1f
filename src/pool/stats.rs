//! Pool statistics with psycopg_pool's names: counters kept as relaxed atomics, never a lock,
//! gauges read from the core on demand. The one counter every checkout bumps, `requests_num`,
//! is split: the fast path counts on a cache line of the connection's own ([`PerSlot`]), the
//! slow path on the shared counter. A shared counter bumped by every checkout would bounce its
//! cache line between cores on every cycle (the costliest thing in a contended checkout after
//! the semaphore itself).
//!
//! Consistency: a [`PoolStats`] is assembled from independent relaxed loads, so under load it is
//! a close approximation, not an atomic snapshot (deadpool says the same of its `Status`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use crossbeam_utils::CachePadded;

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
    /// Total milliseconds connections were checked out; 0 unless
    /// [`PoolBuilder::usage_stats`](super::PoolBuilder::usage_stats) is on.
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
    /// Requests that took the slow path (the fast path's are in [`PerSlot`]).
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

/// Fast-path checkouts, counted per connection: each connection gets one of `capacity`
/// padded cells when it opens (round robin), so a checkout bumps a line no other connection
/// in use is writing, uncontended. Two live connections share a cell only after more than
/// `capacity` opens; the increment is atomic, so that costs contention, never a count.
#[derive(Debug)]
pub(crate) struct PerSlot {
    cells: Box<[CachePadded<AtomicU64>]>,
    next: AtomicUsize,
    /// The total at the last `pop_stats`: the cells are never reset, the report subtracts.
    popped: AtomicU64,
}

impl PerSlot {
    pub(crate) fn new(capacity: usize) -> Self {
        PerSlot {
            cells: (0..capacity.max(1))
                .map(|_| CachePadded::default())
                .collect(),
            next: AtomicUsize::new(0),
            popped: AtomicU64::new(0),
        }
    }

    /// The cell for a connection being opened.
    pub(crate) fn assign(&self) -> usize {
        self.next.fetch_add(1, Relaxed) % self.cells.len()
    }

    pub(crate) fn bump(&self, cell: usize) {
        if let Some(c) = self.cells.get(cell) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// The count since the last reset, resetting it if `reset`.
    fn read(&self, reset: bool) -> u64 {
        let total: u64 = self.cells.iter().map(|c| c.load(Relaxed)).sum();
        let since = if reset {
            self.popped.swap(total, Relaxed)
        } else {
            self.popped.load(Relaxed)
        };
        total.saturating_sub(since)
    }
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
    /// Copies the counters into `s` (`fast`: the fast path's checkouts), resetting them to zero
    /// if `reset`.
    pub(crate) fn fill(&self, fast: &PerSlot, s: &mut PoolStats, reset: bool) {
        let read = |c: &AtomicU64| {
            if reset {
                c.swap(0, Relaxed)
            } else {
                c.load(Relaxed)
            }
        };
        s.requests_num = read(&self.requests_num) + fast.read(reset);
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
