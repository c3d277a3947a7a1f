//! Pool statistics with psycopg_pool's names: counters kept as relaxed atomics striped by
//! thread ([`Counters`], Java's `LongAdder`), never a lock; gauges read from the core on demand.
//!
//! Consistency: a [`PoolStats`] is assembled from independent relaxed loads, so under load it is
//! a close approximation, not an atomic snapshot (deadpool says the same of its `Status`).

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use crossbeam_utils::CachePadded;

/// A snapshot of a pool's gauges and counters (see `Pool::stats`, `Pool::pop_stats`).
///
/// Gauges (`pool_*`, `requests_waiting`, `connecting`, `permits_available`) describe now;
/// counters accumulate since the pool opened or since the last `pop_stats`. `Display` prints
/// the non-zero ones on one line, for logs.
///
/// ```
/// let stats = wirepool::PoolStats::default();
/// assert_eq!(stats.requests_num, 0);
/// assert_eq!(stats.to_string(), "size 0/0 (min 0), idle 0, waiting 0");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Connections found dead (at checkout or by `check`) or evicted (below).
    pub connections_lost: u64,
    /// Evicted because the server went away or lost its state (class 08, 57P01-03).
    pub evicted_server_gone: u64,
    /// Evicted after a read-only refusal (25006) in a pool that wants a writable server.
    pub evicted_read_only: u64,
    /// Evicted after the server's role changed against the pool's target.
    pub evicted_role_changed: u64,
    /// Replaced by [`Pool::drain`](super::Pool::drain).
    pub connections_drained: u64,
    /// Checkouts held longer than
    /// [`leak_detection_threshold`](super::PoolBuilder::leak_detection_threshold), each counted
    /// (and logged) once.
    pub leaks_detected: u64,
    /// How long checkouts that had to wait waited (those served at once are not timed: the
    /// fast path reads no clock).
    pub checkout_wait: Percentiles,
    /// How long connections were held, from checkout to return; empty unless
    /// [`usage_stats`](super::PoolBuilder::usage_stats) is on (it costs two clock reads per
    /// checkout).
    pub hold_time: Percentiles,
    /// How long connection attempts took (connect and `configure`), failed ones included.
    pub connect_time: Percentiles,
}

impl fmt::Display for PoolStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "size {}/{} (min {}), idle {}, waiting {}",
            self.pool_size,
            self.pool_max,
            self.pool_min,
            self.pool_available,
            self.requests_waiting
        )?;
        let counters = [
            ("connecting", self.connecting as u64),
            ("requests", self.requests_num),
            ("queued", self.requests_queued),
            ("wait_ms", self.requests_wait_ms),
            ("errors", self.requests_errors),
            ("usage_ms", self.usage_ms),
            ("returns_bad", self.returns_bad),
            ("connections", self.connections_num),
            ("connections_ms", self.connections_ms),
            ("connections_errors", self.connections_errors),
            ("connections_lost", self.connections_lost),
            ("evicted_server_gone", self.evicted_server_gone),
            ("evicted_read_only", self.evicted_read_only),
            ("evicted_role_changed", self.evicted_role_changed),
            ("connections_drained", self.connections_drained),
            ("leaks_detected", self.leaks_detected),
        ];
        for (name, value) in counters.into_iter().filter(|&(_, v)| v != 0) {
            write!(f, ", {name} {value}")?;
        }
        let histograms = [
            ("wait", self.checkout_wait),
            ("hold", self.hold_time),
            ("connect", self.connect_time),
        ];
        for (name, p) in histograms.into_iter().filter(|(_, p)| p.count != 0) {
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            write!(
                f,
                ", {name} p50/p99/max {:.1}/{:.1}/{:.1} ms",
                ms(p.p50),
                ms(p.p99),
                ms(p.max)
            )?;
        }
        Ok(())
    }
}

/// One copy of every counter, on a cache line of its own.
#[derive(Debug, Default)]
pub(crate) struct CounterSet {
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
    pub evicted_server_gone: AtomicU64,
    pub evicted_read_only: AtomicU64,
    pub evicted_role_changed: AtomicU64,
    pub connections_drained: AtomicU64,
    pub leaks_detected: AtomicU64,
    /// Requests that started / stopped waiting: `requests_waiting` is the difference, so a
    /// waiter bumps its own thread's line, never one shared with the other workers.
    pub waits_begun: AtomicU64,
    pub waits_ended: AtomicU64,
}

/// How many copies: enough that a runtime's worker threads rarely share one.
pub(crate) const STRIPES: usize = 8;

/// This thread's stripe index, in `0..8`: threads take stripes round-robin as they first ask,
/// so a runtime's few workers each get their own. Shared by every striped structure of the
/// pool (the counters here, the wait deadlines' rings).
pub(crate) fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Relaxed) % STRIPES;
    }
    STRIPE.with(|i| *i)
}

/// The counters, striped by thread (Java's `LongAdder`): each thread bumps the copy on its own
/// cache line, so no checkout writes a line another core is writing (a shared counter bumped on
/// every checkout is, after the semaphore, the costliest thing in a contended one); a read
/// sums the copies. Gauges other than `requests_waiting` live in the core.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    stripes: [CachePadded<CounterSet>; STRIPES],
}

impl Counters {
    /// This thread's copy.
    pub(crate) fn here(&self) -> &CounterSet {
        &self.stripes[stripe() % STRIPES]
    }

    fn sum(&self, field: impl Fn(&CounterSet) -> &AtomicU64, reset: bool) -> u64 {
        let read = |c: &AtomicU64| {
            if reset {
                c.swap(0, Relaxed)
            } else {
                c.load(Relaxed)
            }
        };
        self.stripes
            .iter()
            .map(|s| read(field(s)))
            .fold(0, u64::wrapping_add)
    }

    /// Requests waiting now. Ends are summed before beginnings, and both only grow, so a
    /// concurrent wait can make this lag, never go below zero.
    pub(crate) fn waiting(&self) -> usize {
        let ended = self.sum(|c| &c.waits_ended, false);
        let begun = self.sum(|c| &c.waits_begun, false);
        usize::try_from(begun.saturating_sub(ended)).unwrap_or(usize::MAX)
    }

    /// Copies the counters into `s`, resetting them to zero if `reset`.
    pub(crate) fn fill(&self, s: &mut PoolStats, reset: bool) {
        s.requests_num = self.sum(|c| &c.requests_num, reset);
        s.requests_queued = self.sum(|c| &c.requests_queued, reset);
        s.requests_wait_ms = self.sum(|c| &c.requests_wait_us, reset) / 1000;
        s.requests_errors = self.sum(|c| &c.requests_errors, reset);
        s.usage_ms = self.sum(|c| &c.usage_us, reset) / 1000;
        s.returns_bad = self.sum(|c| &c.returns_bad, reset);
        s.connections_num = self.sum(|c| &c.connections_num, reset);
        s.connections_ms = self.sum(|c| &c.connections_us, reset) / 1000;
        s.connections_errors = self.sum(|c| &c.connections_errors, reset);
        s.connections_lost = self.sum(|c| &c.connections_lost, reset);
        s.evicted_server_gone = self.sum(|c| &c.evicted_server_gone, reset);
        s.evicted_read_only = self.sum(|c| &c.evicted_read_only, reset);
        s.evicted_role_changed = self.sum(|c| &c.evicted_role_changed, reset);
        s.connections_drained = self.sum(|c| &c.connections_drained, reset);
        s.leaks_detected = self.sum(|c| &c.leaks_detected, reset);
        s.requests_waiting = self.waiting();
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

/// The distribution of one duration since the pool opened (or the last `pop_stats`): how many
/// samples, the median, the 99th percentile and the largest. The quantiles are bucket bounds
/// (four buckets per power of two, microsecond resolution): at most 25% above the true value,
/// and never above `max`, which is exact.
///
/// ```
/// let p = wirepool::pool::Percentiles::default();
/// assert_eq!((p.count, p.p99), (0, std::time::Duration::ZERO));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Percentiles {
    /// Samples recorded.
    pub count: u64,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The largest sample.
    pub max: Duration,
}

/// Buckets per histogram stripe: values below 4 µs get one each, then four per power of two
/// up to 2^41 µs (25 days; longer samples land in the last one).
const BUCKETS: usize = 4 * 40 + 1;
const MAX_EXP: u32 = 41;

/// The bucket of a value in µs.
fn bucket(us: u64) -> usize {
    if us < 4 {
        return us as usize;
    }
    let exp = (63 - us.leading_zeros()).min(MAX_EXP);
    if exp == MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = (us >> (exp - 2)) & 3;
    (4 * (exp - 1) + sub as u32) as usize
}

/// The largest value (µs) bucket `i` holds.
fn bucket_top(i: usize) -> u64 {
    if i < 4 {
        return i as u64;
    }
    let (exp, sub) = (i as u32 / 4 + 1, i as u64 % 4);
    ((4 + sub + 1) << (exp - 2)) - 1
}

/// A histogram of durations kept as log buckets of relaxed atomics, striped by thread like the
/// counters: recording is two uncontended read-modify-writes on this thread's lines, never a
/// lock; memory is fixed (11 KiB).
pub(crate) struct Histogram {
    /// Per stripe: `BUCKETS` counts, then the largest sample in µs.
    stripes: [CachePadded<[AtomicU64; BUCKETS + 1]>; STRIPES],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            stripes: std::array::from_fn(|_| {
                CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0)))
            }),
        }
    }
}

impl Histogram {
    pub(crate) fn record(&self, d: Duration) {
        // Not `as_micros`: its `u128` arithmetic costs more than the rest of the recording.
        let us = d
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(d.subsec_micros()));
        let s = &self.stripes[stripe() % STRIPES];
        s[bucket(us)].fetch_add(1, Relaxed);
        // A plain load first: the maximum rarely moves, and a read costs no locked operation.
        if us > s[BUCKETS].load(Relaxed) {
            s[BUCKETS].fetch_max(us, Relaxed);
        }
    }

    /// The distribution so far, emptied if `reset`.
    pub(crate) fn percentiles(&self, reset: bool) -> Percentiles {
        let mut counts = [0u64; BUCKETS];
        let mut max = 0;
        for s in &self.stripes {
            let read = |c: &AtomicU64| {
                if reset {
                    c.swap(0, Relaxed)
                } else {
                    c.load(Relaxed)
                }
            };
            for (total, c) in counts.iter_mut().zip(s.iter()) {
                *total += read(c);
            }
            max = max.max(read(&s[BUCKETS]));
        }
        let count: u64 = counts.iter().sum();
        let quantile = |q: f64| {
            let rank = ((count as f64 * q).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, &c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Duration::from_micros(bucket_top(i).min(max));
                }
            }
            Duration::from_micros(max)
        };
        if count == 0 {
            return Percentiles::default();
        }
        Percentiles {
            count,
            p50: quantile(0.5),
            p99: quantile(0.99),
            max: Duration::from_micros(max),
        }
    }
}

/// The pool's three histograms.
#[derive(Default)]
pub(crate) struct Histograms {
    /// Checkouts that had to wait: how long.
    pub(crate) wait: Histogram,
    /// How long connections were held (with `usage_stats`).
    pub(crate) hold: Histogram,
    /// How long connection attempts took.
    pub(crate) connect: Histogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_each_value_lands_within_a_quarter() {
        for us in [
            0u64,
            1,
            3,
            4,
            5,
            7,
            8,
            9,
            15,
            16,
            1000,
            1023,
            1024,
            123_456_789,
        ] {
            let i = bucket(us);
            assert!(bucket_top(i) >= us, "{us} in {i}");
            assert!(
                bucket_top(i) as f64 <= us as f64 * 1.25 + 1.0,
                "{us} in {i}"
            );
            if i > 0 {
                assert!(bucket_top(i - 1) < us, "{us}");
            }
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        for i in 1..BUCKETS - 1 {
            assert_eq!(bucket(bucket_top(i - 1) + 1), i);
        }
    }

    #[test]
    fn percentiles_come_from_every_stripe_and_reset_empties() {
        let h = Histogram::default();
        assert_eq!(h.percentiles(false), Percentiles::default());
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let h = &h;
                s.spawn(move || {
                    for ms in 1..=25 {
                        h.record(Duration::from_millis(ms + 25 * t));
                    }
                });
            }
        });
        let p = h.percentiles(true);
        assert_eq!((p.count, p.max), (100, Duration::from_millis(100)));
        let near = |d: Duration, ms: f64| {
            let got = d.as_secs_f64() * 1000.0;
            got >= ms && got <= ms * 1.25
        };
        assert!(near(p.p50, 50.0) && near(p.p99, 99.0), "{p:?}");
        assert_eq!(h.percentiles(false).count, 0);
    }
}
