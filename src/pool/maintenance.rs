//! The one background task per pool: keeps `min_size`, closes idle connections above
//! `min_size` after `max_idle`, and replaces expired ones (deadpool has no such task, so its
//! dead idle connections are found only at the next checkout: deadpool#191).
//!
//! It holds only a `Weak` to the core between ticks, so dropping every `Pool` handle (which
//! closes the pool) ends it; it also wakes at once on `close()`.

use std::sync::atomic::Ordering::*;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::core::Core;
use super::manage::Manage;

/// The longest pause between two maintenance runs (HikariCP's housekeeper and r2d2's reaper
/// run every 30 s).
const MAX_TICK: Duration = Duration::from_secs(30);
/// The shortest, so tiny test settings cannot make it spin.
const MIN_TICK: Duration = Duration::from_millis(10);

/// Starts the task. Requires a tokio runtime (the pool is opened from async code).
pub(crate) fn spawn<M: Manage>(core: &Arc<Core<M>>) {
    let s = &core.settings;
    // Often enough that expiry and idle shrink lag their setting by at most a quarter of it.
    let tick = (s.max_idle.min(s.max_lifetime) / 4).clamp(MIN_TICK, MAX_TICK);
    let weak = Arc::downgrade(core);
    let events = Arc::clone(&core.events);
    tokio::spawn(async move {
        let mut next = Instant::now();
        loop {
            if Instant::now() >= next {
                if !run_once(&weak) {
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
fn run_once<M: Manage>(weak: &Weak<Core<M>>) -> bool {
    let Some(core) = weak.upgrade() else {
        return false;
    };
    if core.is_closed() {
        return false;
    }
    core.sweep_idle();
    core.maybe_grow();
    true
}

impl<M: Manage> Core<M> {
    /// Takes each idle connection out once: expired ones are closed (and replaced by
    /// `slot_freed` → `maybe_grow`); ones idle longer than `max_idle` are closed while the pool
    /// is above `min_size`; the rest go back, oldest first as they came.
    fn sweep_idle(self: &Arc<Self>) {
        let now = Instant::now();
        let mut excess = self
            .size
            .load(SeqCst)
            .saturating_sub(self.min_size.load(SeqCst));
        for _ in 0..self.idle_count() {
            let Some(slot) = self.try_pop() else { break };
            if now >= slot.expires_at {
                tracing::debug!(pool = %self.name(), "idle connection expired; replacing");
                excess = excess.saturating_sub(1);
                self.discard(slot);
            } else if excess > 0
                && now.saturating_duration_since(slot.idle_since) >= self.settings.max_idle
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
