//! The background tasks of a pool. Maintenance keeps `min_size`, closes idle connections above
//! `min_size` after `max_idle` (each connection idle that long, and, psycopg's rule, one more
//! per `max_idle` period in which the idle queue never ran dry), replaces expired ones
//! (deadpool has no such task, so its dead idle connections are found only at the next
//! checkout: deadpool#191), and advances the coarse clock (`clock.rs`). The wait watchdog
//! (`spawn_watchdog`) bounds queued checkouts (`waiting.rs`).
//!
//! Maintenance holds only a `Weak` to the core between ticks, so dropping every `Pool` handle
//! (which closes the pool) ends it; it also wakes at once on `close()`. The watchdog holds the
//! core, and `close()` (which the last handle's drop calls) ends it.

use std::sync::atomic::Ordering::*;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::builder::Settings;
use super::clock::nanos;
use super::core::Core;
use super::manage::Manage;

/// The longest pause between two maintenance runs (HikariCP's housekeeper and r2d2's reaper
/// run every 30 s).
const MAX_TICK: Duration = Duration::from_secs(30);
/// The shortest, so tiny test settings cannot make it spin.
const MIN_TICK: Duration = Duration::from_millis(10);

/// The pause between two runs: often enough that expiry lags its setting by at most a quarter
/// of it, and idle shrink by at most half (the sweep adds a tick for the cached reading a return
/// stamps `idle_since` from). Also how far the coarse clock may lag (core.rs invariant 9).
pub(crate) fn tick<C>(s: &Settings<C>) -> Duration {
    let horizon = match (s.max_idle, s.max_lifetime) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(MAX_TICK),
    };
    (horizon / 4).clamp(MIN_TICK, MAX_TICK)
}

/// Starts the wait watchdog (`waiting.rs`). It holds the core until `mark_closed` stops it,
/// which the last `Pool` handle's drop always calls.
pub(crate) fn spawn_watchdog<M: Manage>(core: &Arc<Core<M>>) {
    let core = Arc::clone(core);
    tokio::spawn(async move { core.deadlines.watch(&core.permits, &core.shed).await });
}

/// Starts the task. Requires a tokio runtime (the pool is opened from async code).
pub(crate) fn spawn<M: Manage>(core: &Arc<Core<M>>) {
    let s = &core.settings;
    let tick = core.clock.lag();
    let weak = Arc::downgrade(core);
    let events = Arc::clone(&core.events);
    let max_idle = s.max_idle;
    tokio::spawn(async move {
        let mut next = Instant::now();
        let mut next_shrink = max_idle.and_then(|d| next.checked_add(d));
        loop {
            if Instant::now() >= next {
                if !run_once(&weak, max_idle, &mut next_shrink) {
                    return;
                }
                next = Instant::now() + tick;
            }
            // `events` also fires on connects and frees; only a close cuts the sleep short.
            let notified = events.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !weak.upgrade().is_some_and(|core| !core.is_closed()) {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = &mut notified => {}
            }
        }
    });
}

/// One pass; `false` when the pool is gone or closed.
fn run_once<M: Manage>(
    weak: &Weak<Core<M>>,
    max_idle: Option<Duration>,
    next_shrink: &mut Option<Instant>,
) -> bool {
    let Some(core) = weak.upgrade() else {
        return false;
    };
    if core.is_closed() {
        return false;
    }
    core.clock.tick(Instant::now());
    core.sweep_idle();
    if let (Some(period), Some(at)) = (max_idle, *next_shrink) {
        let now = Instant::now();
        if now >= at {
            core.shrink_one_unused();
            *next_shrink = now.checked_add(period);
        }
    }
    core.maybe_grow();
    true
}

impl<M: Manage> Core<M> {
    /// psycopg's `_shrink_pool`, run once per `max_idle` period: if no checkout found the
    /// queue down to zero idle connections during the period, one connection was never
    /// needed, so close ONE idle connection (while above `min_size`). Unlike the per-connection
    /// rule in `sweep_idle`, this also shrinks a pool under light steady load, whose FIFO
    /// rotation keeps refreshing every connection's `idle_since`.
    fn shrink_one_unused(self: &Arc<Self>) {
        let fewest = self.idle_min.load(Relaxed);
        if fewest > 0 && self.size.load(SeqCst) > self.min_size.load(SeqCst) {
            if let Some(slot) = self.try_pop() {
                tracing::debug!(pool = %self.name(), "an idle connection was unused for max_idle; closing one");
                self.discard(slot);
            }
        }
        self.idle_min.store(self.idle_count(), Relaxed);
    }

    /// Takes each idle connection out once: expired ones are closed (and replaced by
    /// `slot_freed` → `maybe_grow`); ones idle longer than `max_idle` are closed while the pool
    /// is above `min_size`; the rest go back, oldest first as they came.
    fn sweep_idle(self: &Arc<Self>) {
        let now = self.clock.now();
        // A return stamps `idle_since` from the cached reading, which lags the real clock by
        // up to one tick (core.rs invariant 9; under tokio's paused clock the coarse kernel
        // clock never marks it stale): a tick more keeps the sweep from closing early.
        let max_idle = self
            .settings
            .max_idle
            .map(|max| nanos(max.saturating_add(self.clock.lag())));
        let mut excess = self
            .size
            .load(SeqCst)
            .saturating_sub(self.min_size.load(SeqCst));
        for _ in 0..self.idle_count() {
            let Some(slot) = self.try_pop() else { break };
            if slot.expired(now) {
                tracing::debug!(pool = %self.name(), "idle connection expired; replacing");
                excess = excess.saturating_sub(1);
                self.discard(slot);
            } else if excess > 0
                && max_idle.is_some_and(|max| now.saturating_sub(slot.idle_since) >= max)
            {
                tracing::debug!(pool = %self.name(), "closing connection idle for max_idle");
                excess -= 1;
                self.discard(slot);
            } else {
                self.push_idle(slot);
            }
        }
    }
}
