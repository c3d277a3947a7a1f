//! The pool's clock: times kept as integer nanoseconds since the pool opened, plus a coarse
//! reading that the maintenance task refreshes every tick and returns refresh as they pass
//! (core.rs invariant 9).
//!
//! Why: a checkout must not read the clock. One read costs ~30 ns on a KVM guest
//! (`clock_gettime` through the vDSO), and `Instant + Duration` arithmetic ~80 instructions; a
//! bare checkout + return costs ~60 ns in all. Slots therefore store [`Nanos`], a checkout
//! compares integers against the coarse reading, and only a deadline within two ticks of it is
//! checked against the real clock. A return reads the clock once, so expiry and idle time are
//! exact there.
//!
//! Invariant: `recent()` never runs ahead of the real clock, and lags it by at most `lag` (one
//! maintenance tick) while the runtime runs the maintenance task or connections come back.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

/// Nanoseconds since the pool's clock started: ~584 years fit.
pub(crate) type Nanos = u64;

/// "Never", as a deadline.
pub(crate) const NEVER: Nanos = u64::MAX;

/// `d` in nanoseconds, saturating at [`NEVER`].
pub(crate) fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(NEVER)
}

#[derive(Debug)]
pub(crate) struct Clock {
    epoch: Instant,
    recent: AtomicU64,
    lag: Duration,
    /// How close to the coarse reading a deadline must be for `passed` to read the clock: two
    /// ticks, so a tick that runs somewhat late still cannot hide an expiry.
    slack: Nanos,
}

impl Clock {
    /// A clock starting now, refreshed every `lag`.
    pub(crate) fn new(lag: Duration) -> Self {
        Clock {
            epoch: Instant::now(),
            recent: AtomicU64::new(0),
            lag,
            slack: nanos(lag.saturating_mul(2)),
        }
    }

    /// How far `recent` may lag the real clock: one maintenance tick.
    pub(crate) fn lag(&self) -> Duration {
        self.lag
    }

    /// `t` on this clock (instants before the start read as 0).
    #[inline]
    pub(crate) fn at(&self, t: Instant) -> Nanos {
        nanos(t.saturating_duration_since(self.epoch))
    }

    /// The real clock: one clock read. Slow paths only.
    #[inline]
    pub(crate) fn now(&self) -> Nanos {
        self.at(Instant::now())
    }

    /// `start + d`, or [`NEVER`] if that is past `Instant`'s range.
    pub(crate) fn after(&self, start: Instant, d: Duration) -> Nanos {
        start.checked_add(d).map_or(NEVER, |t| self.at(t))
    }

    /// The coarse reading: the real clock as of the last tick. One relaxed load.
    #[inline]
    pub(crate) fn recent(&self) -> Nanos {
        self.recent.load(Relaxed)
    }

    /// Advances the coarse reading to `now` (the maintenance task, every tick).
    pub(crate) fn tick(&self, now: Instant) {
        self.recent.fetch_max(self.at(now), Relaxed);
    }

    /// Advances the coarse reading to `now`, a clock read made anyway (a return), if it lags by
    /// more than a quarter tick: a load on most calls, a write a few times per tick, so
    /// returns keep it fresh even when the maintenance task does not get to run (a runtime
    /// driven by `block_on` between long pauses).
    #[inline]
    pub(crate) fn observe(&self, now: Nanos) {
        if now > self.recent().saturating_add(self.slack / 8) {
            self.recent.fetch_max(now, Relaxed);
        }
    }

    /// Whether `deadline` has passed. Exact while maintenance or returns refresh the coarse
    /// reading at least once a tick; reads the real clock only for a deadline within two ticks
    /// of it.
    #[inline]
    pub(crate) fn passed(&self, deadline: Nanos) -> bool {
        deadline <= self.recent().saturating_add(self.slack) && self.now() >= deadline
    }
}
