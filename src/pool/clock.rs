//! The pool's clock: times kept as integer nanoseconds since the pool opened, plus a coarse
//! reading, `recent`, that the maintenance task refreshes every tick and returns refresh when
//! it has gone stale (core.rs invariant 9).
//!
//! Why: a checkout + return must not pay for a precise clock read. One costs ~35 ns on a KVM
//! guest (`clock_gettime` through the vDSO, then `Instant` arithmetic), as much as the bare
//! primitives' whole cycle. So slots store [`Nanos`]; a checkout compares integers against
//! `recent`, and only a deadline within two ticks of it is checked against the real clock
//! ([`Clock::passed`]). A return asks the kernel's coarse clock (`CLOCK_MONOTONIC_COARSE`,
//! ~10 ns, a few ms resolution) whether `recent` is more than a quarter tick old, and reads the
//! precise clock only then ([`Clock::fresh`]): so `recent` stays fresh even when the
//! maintenance task does not get to run (a runtime driven by `block_on` between long pauses).
//!
//! Invariant: `recent()` never runs ahead of the real clock. It lags it by at most a quarter
//! tick plus the coarse clock's resolution right after any return, and by at most one tick
//! while the maintenance task runs. The coarse clock only ever decides *whether* to read the
//! precise one; no time the pool stores or compares comes from it. (So tokio's paused test
//! clock, which it does not follow, leaves `recent` to the maintenance task's ticks: a tick
//! stale while it runs, arbitrarily stale after a manual `advance` until it runs; and whether
//! a return refreshes it then depends on how much *real* time the test has taken.)

use std::sync::atomic::{AtomicU64, Ordering::*};
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
    /// The coarse clock when `recent` was last refreshed (its raw ticks, 2^32 per second).
    mark: AtomicU64,
    /// A quarter tick in coarse ticks: how stale `recent` may get before a return refreshes it.
    stale_after: u64,
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
            mark: AtomicU64::new(coarse_now()),
            stale_after: coarse_ticks(lag / 4),
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
        self.refresh(self.at(now), coarse_now());
    }

    /// `recent`, refreshed first if the coarse kernel clock says it is more than a quarter tick
    /// old: one coarse read on most calls, a precise one a few times per tick (the return path).
    #[inline]
    pub(crate) fn fresh(&self) -> Nanos {
        let coarse = coarse_now();
        // Acquire: pairs with `refresh`'s release of `mark`, so the `recent` read below is at
        // least as new as the refresh that set this mark. A coarse clock behind the mark (a
        // concurrent refresh read it later; or, where coarsetime falls back to the wall clock,
        // a step backwards) wraps to "stale": one precise read too many, never a stale answer.
        if coarse.wrapping_sub(self.mark.load(Acquire)) < self.stale_after {
            return self.recent();
        }
        let now = self.now();
        self.refresh(now, coarse);
        now
    }

    /// Advances the coarse reading to `now` (a precise read made anyway: a return with
    /// `usage_stats` on), if it lags by more than a quarter tick.
    #[inline]
    pub(crate) fn observe(&self, now: Nanos) {
        if now > self.recent().saturating_add(self.slack / 8) {
            self.refresh(now, coarse_now());
        }
    }

    /// `recent` := `now` (only forwards), then `mark` := `coarse` (a plain store, so a coarse
    /// clock that stepped back is followed; racing refreshes at worst leave the older mark,
    /// which only makes the next `fresh` read the precise clock once more).
    fn refresh(&self, now: Nanos, coarse: u64) {
        self.recent.fetch_max(now, Release);
        self.mark.store(coarse, Release);
    }

    /// Whether `deadline` has passed. Exact while maintenance or returns refresh the coarse
    /// reading at least once a tick; reads the real clock only for a deadline within two ticks
    /// of it.
    #[inline]
    pub(crate) fn passed(&self, deadline: Nanos) -> bool {
        deadline <= self.recent().saturating_add(self.slack) && self.now() >= deadline
    }
}

/// The kernel's coarse monotonic clock, in its raw ticks (2^32 per second). Not cached by the
/// crate (`now_without_cache_update`): its cache is one global word every thread would write.
#[inline]
fn coarse_now() -> u64 {
    coarsetime::Instant::now_without_cache_update().as_ticks()
}

/// `d` in the coarse clock's ticks (2^32 per second), saturating.
fn coarse_ticks(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().saturating_mul(1 << 32) / 1_000_000_000).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fresh` answers from the cached reading while the coarse clock says it is recent, and
    /// reads the precise clock once real time has moved on by more than a quarter tick. Real
    /// time, not paused: passing real time is what the coarse clock detects.
    #[test]
    fn fresh_reads_the_precise_clock_only_once_the_cached_one_is_stale() {
        // A 400 ms tick: `recent` counts as stale after 100 ms, far more than a busy CI
        // machine needs between two lines.
        let clock = Clock::new(Duration::from_millis(400));
        assert_eq!(
            clock.fresh(),
            0,
            "just refreshed (at construction): the cached reading"
        );
        std::thread::sleep(Duration::from_millis(120)); // > a quarter tick plus a 4 ms jiffy
        let now = clock.fresh();
        assert!(
            now >= nanos(Duration::from_millis(120)),
            "a precise read: {now}"
        );
        assert_eq!(clock.recent(), now, "and it refreshed the cached reading");
        assert_eq!(clock.fresh(), now, "which is fresh again");
    }

    /// A coarse clock that went backwards (coarsetime's wall-clock fallback on some Unixes)
    /// must not freeze the cached reading until it catches up: `fresh` reads the precise
    /// clock and follows the coarse one back.
    #[test]
    fn a_coarse_clock_behind_the_mark_means_stale() {
        let clock = Clock::new(Duration::from_secs(400));
        std::thread::sleep(Duration::from_millis(5));
        clock.mark.store(u64::MAX - 1, Relaxed); // "refreshed" in the far future
        let now = clock.fresh();
        assert!(
            now >= nanos(Duration::from_millis(5)),
            "a precise read: {now}"
        );
        assert!(
            clock.mark.load(Relaxed) <= coarse_now(),
            "the mark followed the clock back"
        );
        assert_eq!(clock.fresh(), now, "and the cached reading is fresh again");
    }

    #[test]
    fn coarse_ticks_are_2_to_the_32_per_second() {
        assert_eq!(coarse_ticks(Duration::from_secs(1)), 1 << 32);
        assert_eq!(coarse_ticks(Duration::from_millis(250)), 1 << 30);
        assert_eq!(coarse_ticks(Duration::MAX), u64::MAX);
    }
}
