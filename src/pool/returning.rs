//! The return path: where a connection goes when its guard is dropped or handed to
//! `putconn`. Decided from `Manage::state` alone, with no I/O in the caller's `Drop` (core.rs
//! invariant 7): back idle, to a bounded background rollback/reset, or closed. Every path
//! pushes idle only through `Core::reusable` (invariant 6), and always before the permit
//! goes back (invariant 3).

use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;

use super::clock::{Nanos, NEVER};
use super::core::{Core, Live, Permit, Slot};
use super::manage::{ConnState, Manage};
use super::stats::{add_us, bump};
use crate::error::Error;

impl<M: Manage> Core<M> {
    /// The one return path, shared by a guard's `Drop` and `putconn`. Never does I/O itself.
    /// Reads the precise clock only if `usage_stats` is on or the pool's cached clock has gone
    /// stale (invariant 9): expiry is exact, and `idle_since` is at most a tick early (the idle
    /// sweep allows for that). (An associated fn borrowing the core through the permit:
    /// no `Arc` clone per return.)
    pub(crate) fn return_slot(mut slot: Slot<M::Connection>, permit: Permit<M>, since: Nanos) {
        let core = &permit.core;
        let now = if since == NEVER {
            core.clock.fresh()
        } else {
            let now = core.clock.now();
            core.clock.observe(now);
            let used = now.saturating_sub(since);
            add_us(&core.counters.here().usage_us, Duration::from_nanos(used));
            now
        };
        let state = core.manager.state(&slot.conn);
        if core.is_closed() {
            core.discard(slot);
            return drop(permit);
        }
        match state {
            ConnState::Idle if core.settings.reset.is_none() => {
                if !core.reusable(state, &slot, now) {
                    tracing::debug!(pool = %core.name(), "returned connection expired or surplus; closing");
                    core.discard(slot);
                } else {
                    tracing::debug!(pool = %core.name(), "connection returned");
                    slot.idle_since = now;
                    core.push_idle(slot);
                }
                drop(permit); // invariant 3: after the push
            }
            ConnState::Idle | ConnState::InTransaction => {
                if state == ConnState::InTransaction {
                    tracing::warn!(pool = %core.name(), "rolling back returned connection");
                }
                Arc::clone(core).spawn_reset(slot, permit, state);
            }
            ConnState::Busy => {
                tracing::warn!(pool = %core.name(), "connection returned with a query running; cancelling and closing");
                core.discard(slot); // cancels first (Busy)
                drop(permit);
            }
            ConnState::Broken => {
                bump(&core.counters.here().returns_bad);
                tracing::debug!(pool = %core.name(), "returned connection is broken; discarding");
                core.discard(slot);
                drop(permit);
            }
        }
    }

    /// Rollback and/or the `reset` hook in a bounded background task that owns the slot and
    /// the permit; the permit is released only once the connection is idle again or discarded.
    fn spawn_reset(
        self: Arc<Self>,
        slot: Slot<M::Connection>,
        permit: Permit<M>,
        state: ConnState,
    ) {
        let Ok(handle) = Handle::try_current() else {
            self.discard(slot);
            return drop(permit);
        };
        let mut live = Live::new(self, slot);
        handle.spawn(async move {
            let core = Arc::clone(&live.core);
            let work = async {
                let conn = live.conn_mut();
                if state == ConnState::InTransaction {
                    core.manager.rollback(conn).await?;
                }
                if let Some(reset) = &core.settings.reset {
                    reset(conn).await.map_err(|e| Error::hook("reset", e))?;
                }
                Ok::<(), Error>(())
            };
            match tokio::time::timeout(core.settings.return_timeout, work).await {
                Ok(Ok(())) if live
                    .slot_mut()
                    .is_some_and(|s| core.reusable(core.manager.state(&s.conn), s, core.clock.now())) =>
                {
                    live.into_idle()
                }
                Ok(Err(e)) => tracing::warn!(pool = %core.name(), error = %e, "resetting returned connection failed; discarding"),
                Err(_) => tracing::warn!(pool = %core.name(), "resetting returned connection timed out; discarding"),
                Ok(Ok(())) => tracing::debug!(pool = %core.name(), "connection not idle, expired or surplus after reset; discarding"),
            }
            drop(permit);
        });
    }

    /// The one test a returned connection passes before it goes back idle, on the plain path
    /// and after a rollback/reset alike: idle, not expired, and not surplus after `resize`
    /// shrank `max_size` (`size` still counts this connection). `now` may lag the real clock
    /// (invariant 9), so a lifetime close to it is checked against the real clock.
    fn reusable(&self, state: ConnState, slot: &Slot<M::Connection>, now: Nanos) -> bool {
        state == ConnState::Idle
            && !slot.expired(now)
            && !self.clock.passed(slot.expires)
            && self.size.load(Relaxed) <= self.max_size.load(Relaxed)
    }
}
