//! The pool's clock: times kept as [`Nanos`] since the pool opened, plus a cached reading,
//! `recent`, that the maintenance task refreshes every tick and returns refresh when stale.
//!
//! Why: a checkout + return must not pay for a precise clock read, which costs as much as the
//! bare primitives' whole cycle on a virtual machine (`clock_gettime` through the vDSO, then
//! `Instant` arithmetic). So slots store [`Nanos`]; a checkout compares integers against
//! `recent`, and only a deadline within two ticks of it is checked against the real clock
//! ([`Clock::passed`]). A return asks the kernel's coarse clock (`CLOCK_MONOTONIC_COARSE`, a few
//! ms resolution, a fraction of the precise read's cost) whether `recent` is more than a
//! quarter tick old, and reads the precise clock only then ([`Clock::fresh`]): so `recent`
//! stays fresh even when the maintenance task does not get to run (a runtime driven by
//! `block_on` between long pauses).
//!
//! # Invariant: the cached reading lags, never leads
//!
//! `recent()` never runs ahead of the real clock. It lags it by at most a quarter tick plus the
//! coarse clock's resolution right after any return, and by at most one [`tick`] while the
//! maintenance task runs. The coarse clock only ever decides *whether* to read the precise one;
//! no time the pool stores or compares comes from it. Consequences the rest of the pool relies on:
//! - a return stamps `idle_since` at most a tick early, so the idle sweep adds a tick to
//!   `max_idle` and never closes a connection early;
//! - expiry is exact while the reading lags by under two ticks (`passed` reads the real clock
//!   near a deadline). After a stall in which neither maintenance nor a return ran, a checkout
//!   may hand out a connection that expired meanwhile, once: its return reads the real clock and
//!   closes it (psycopg_pool checks expiry only at return);
//! - tokio's paused test clock is not followed by the coarse kernel clock, so under it `recent`
//!   moves only with the maintenance task's ticks: after a manual `advance` past two ticks and
//!   until maintenance runs, an expired connection may be handed out and re-pooled.

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::time::Duration;

use tokio::time::Instant;

/// "Never", for a deadline: about 30 years, tokio's own `Instant::far_future`.
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// The longest pause between two maintenance runs (HikariCP's housekeeper and r2d2's reaper
/// run every 30 s).
const MAX_TICK: Duration = Duration::from_secs(30);
/// The shortest, so tiny test settings cannot make it spin.
const MIN_TICK: Duration = Duration::from_millis(10);

/// `start + timeout`, saturating: a timeout too long for `Instant` (`Duration::MAX`, "wait
/// forever") gives a far-future deadline instead of an overflow panic.
pub(crate) fn deadline(start: Instant, timeout: Duration) -> Instant {
    start
        .checked_add(timeout)
        .or_else(|| start.checked_add(FAR_FUTURE))
        .unwrap_or(start)
}

/// The pause between two maintenance runs: often enough that expiry lags its setting by at most
/// a quarter of it, and idle shrink by at most half (the sweep adds a tick for the cached
/// reading a return stamps `idle_since` from). Also how far the cached reading may lag.
pub(crate) fn tick(max_idle: Option<Duration>, max_lifetime: Option<Duration>) -> Duration {
    let horizon = match (max_idle, max_lifetime) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(MAX_TICK),
    };
    (horizon / 4).clamp(MIN_TICK, MAX_TICK)
}

/// A point on the pool's clock: nanoseconds since it started (~584 years fit), or
/// [`Nanos::NEVER`]. A plain word with no spare values, so a guard holding one moves cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Nanos(u64);

impl Nanos {
    /// "Never": a deadline that does not pass, or a time that was not taken.
    pub(crate) const NEVER: Nanos = Nanos(u64::MAX);

    /// `d` on the clock's scale, saturating at [`Nanos::NEVER`].
    pub(crate) fn of(d: Duration) -> Nanos {
        Nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    pub(crate) fn is_never(self) -> bool {
        self == Nanos::NEVER
    }

    /// How long after `earlier` this is (zero if it is not later).
    pub(crate) fn since(self, earlier: Nanos) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at [`Nanos::NEVER`].
    #[cfg(test)]
    pub(crate) fn plus(self, d: Duration) -> Nanos {
        Nanos(self.0.saturating_add(Nanos::of(d).0))
    }
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
    /// How close to the cached reading a deadline must be for `passed` to read the clock: two
    /// ticks, so a tick that runs somewhat late still cannot hide an expiry. In nanoseconds,
    /// like the readings it is added to (no conversion on the checkout path).
    slack: u64,
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
            slack: Nanos::of(lag.saturating_mul(2)).0,
        }
    }

    /// How far `recent` may lag the real clock: one maintenance tick.
    pub(crate) fn lag(&self) -> Duration {
        self.lag
    }

    /// `t` on this clock (instants before the start read as 0).
    #[inline]
    pub(crate) fn at(&self, t: Instant) -> Nanos {
        Nanos::of(t.saturating_duration_since(self.epoch))
    }

    /// The real clock: one clock read. Slow paths only.
    #[inline]
    pub(crate) fn now(&self) -> Nanos {
        self.at(Instant::now())
    }

    /// `start + d`, or [`Nanos::NEVER`] if that is past `Instant`'s range.
    pub(crate) fn after(&self, start: Instant, d: Duration) -> Nanos {
        start.checked_add(d).map_or(Nanos::NEVER, |t| self.at(t))
    }

    /// The cached reading: the real clock as of the last refresh. One relaxed load.
    #[inline]
    pub(crate) fn recent(&self) -> Nanos {
        Nanos(self.recent.load(Relaxed))
    }

    /// Advances the cached reading to `now` (the maintenance task, every tick).
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

    /// Advances the cached reading to `now` (a precise read made anyway: a return with
    /// `usage_stats` on), if it lags by more than a quarter tick.
    #[inline]
    pub(crate) fn observe(&self, now: Nanos) {
        if now.0 > self.recent().0.saturating_add(self.slack / 8) {
            self.refresh(now, coarse_now());
        }
    }

    /// `recent` := `now` (only forwards), then `mark` := `coarse` (a plain store, so a coarse
    /// clock that stepped back is followed; racing refreshes at worst leave the older mark,
    /// which only makes the next `fresh` read the precise clock once more).
    fn refresh(&self, now: Nanos, coarse: u64) {
        self.recent.fetch_max(now.0, Release);
        self.mark.store(coarse, Release);
    }

    /// Whether `deadline` has passed. Exact while maintenance or returns refresh the cached
    /// reading at least once a tick; reads the real clock only for a deadline within two ticks
    /// of it.
    #[inline]
    pub(crate) fn passed(&self, deadline: Nanos) -> bool {
        deadline.0 <= self.recent().0.saturating_add(self.slack) && self.now() >= deadline
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
            Nanos(0),
            "just refreshed (at construction): the cached reading"
        );
        std::thread::sleep(Duration::from_millis(120)); // > a quarter tick plus a 4 ms jiffy
        let now = clock.fresh();
        assert!(
            now >= Nanos::of(Duration::from_millis(120)),
            "a precise read: {now:?}"
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
            now >= Nanos::of(Duration::from_millis(5)),
            "a precise read: {now:?}"
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

    /// A deadline far from the cached reading is judged without a clock read, and one near it
    /// against the real clock, so a checkout never hands out an expired connection while
    /// maintenance keeps the cached reading within a tick.
    #[tokio::test(start_paused = true)]
    async fn expiry_reads_the_real_clock_near_the_deadline() {
        let clock = Clock::new(tick(None, Some(Duration::from_secs(400))));
        assert_eq!(clock.lag(), Duration::from_secs(30), "the longest tick");
        let at = clock.after(Instant::now(), Duration::from_secs(100));
        tokio::time::advance(Duration::from_secs(100)).await;
        assert_eq!(clock.now(), at);
        assert!(
            !clock.passed(at),
            "cached reading 100 s behind, more than two ticks: judged without reading the clock"
        );
        clock.tick(Instant::now() - Duration::from_secs(30)); // maintenance ran one tick ago
        assert!(
            clock.passed(at),
            "within two ticks: the real clock says passed"
        );
        assert!(
            !clock.passed(at.plus(Duration::from_nanos(1))),
            "near, but not yet"
        );
        assert!(!clock.passed(Nanos::NEVER));
        assert_eq!(
            at.since(clock.recent()),
            Duration::from_secs(30),
            "never ahead of the real clock"
        );
    }

    #[test]
    fn ticks_follow_the_shortest_horizon_within_bounds() {
        let s = Duration::from_secs;
        assert_eq!(
            tick(None, None),
            Duration::from_millis(7500),
            "a quarter of the longest"
        );
        assert_eq!(tick(Some(s(600)), Some(s(3600))), s(30));
        assert_eq!(tick(Some(s(8)), Some(s(3600))), s(2));
        assert_eq!(
            tick(None, Some(Duration::from_millis(1))),
            Duration::from_millis(10)
        );
    }

    #[test]
    fn a_deadline_too_far_for_instant_saturates() {
        let start = Instant::now();
        assert_eq!(
            deadline(start, Duration::from_secs(1)),
            start + Duration::from_secs(1)
        );
        assert!(deadline(start, Duration::MAX) >= start + FAR_FUTURE);
    }
}
