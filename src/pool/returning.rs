//! The return path: where a connection goes when its guard is dropped or handed to `putconn`.
//! Decided from `Manage::state` alone, with no I/O in the caller's `Drop`: back idle, to a
//! bounded background rollback/reset, or closed. Every path pushes idle only through
//! `Core::reusable`, and always before the permit goes back (push before release).
//!
//! | state when returned | pool closed? | `reset` hook | what happens |
//! |---|---|---|---|
//! | any | yes | — | closed (a busy one cancelled first) |
//! | any, revoked (a leak whose work was cancelled) | no | — | closed |
//! | `Idle`, reusable | no | none | pushed idle at once, then the permit goes back |
//! | `Idle`, expired or surplus after `resize` | no | none | closed |
//! | `Idle` | no | set | the hook runs in the background, then as below |
//! | `InTransaction` | no | any | `ROLLBACK` (then the hook) in the background; pushed if reusable
//! after, else closed |
//! | `Busy` | no | any | its query cancelled, then closed, in one background task |
//! | `Broken` | no | any | closed, counted in `returns_bad` |
//!
//! Background work is bounded by `return_timeout` and holds the permit until it ends, so the
//! connection counts as in use meanwhile.

use std::sync::Arc;

use super::clock::Nanos;
use super::core::{Live, Permit, Slot};
use super::hooks::configure;
use super::manage::{ConnState, Manage};
use super::stats::{add_us, bump};
use crate::error::Error;

/// The one return path, shared by a guard's `Drop` and `putconn`. Never does I/O itself.
/// `since` is when the checkout got the connection, or `Nanos::NEVER` when `usage_stats` is
/// off; the precise clock is read only then, or when the cached reading has gone stale
/// (`clock.rs`).
pub(crate) fn return_slot<M: Manage>(
    mut slot: Slot<M::Connection>,
    permit: Permit<M>,
    since: Nanos,
) {
    // Borrowed through the permit: no `Arc` clone per return.
    let core = permit.core();
    let now = if since.is_never() {
        core.clock().fresh()
    } else {
        let now = core.clock().now();
        core.clock().observe(now);
        let held = now.since(since);
        add_us(&core.counters().here().usage_us, held);
        core.histograms().hold.record(held);
        now
    };
    let state = core.manager().state(&slot.conn);
    if core.is_closed() {
        core.discard(slot);
        return drop(permit);
    }
    if core.is_drained(&slot) {
        bump(&core.counters().here().connections_drained);
        tracing::debug!(pool = %core.name(), "returned connection predates drain(); closing");
        core.discard(slot);
        return drop(permit);
    }
    // Its leak watch entry is gone (the guard left it first), so the mark is final here.
    if core.settings().cancel_leaked && slot.info().is_revoked() {
        tracing::info!(pool = %core.name(), "returned connection had its leaked work cancelled; closing");
        core.discard(slot);
        return drop(permit);
    }
    let clean =
        state == ConnState::Idle || (state == ConnState::Dirty && !core.settings().reset_dirty);
    match state {
        ConnState::Idle | ConnState::Dirty if clean && core.settings().reset.is_none() => {
            if core.reusable(state, &slot, now) {
                tracing::debug!(pool = %core.name(), "connection returned");
                slot.idle_since = now;
                core.push_idle(slot);
            } else {
                tracing::debug!(pool = %core.name(), "returned connection expired or surplus; closing");
                core.discard(slot);
            }
            drop(permit); // push before release
        }
        ConnState::Idle | ConnState::Dirty | ConnState::InTransaction => {
            if state == ConnState::InTransaction {
                tracing::warn!(pool = %core.name(), "rolling back returned connection");
            }
            spawn_reset(slot, permit, state);
        }
        ConnState::Busy => {
            tracing::warn!(pool = %core.name(), "connection returned with a query running; cancelling and closing");
            core.discard(slot); // cancels first (Busy)
            drop(permit);
        }
        ConnState::Evict(cause) => {
            core.count_eviction(cause);
            tracing::warn!(pool = %core.name(), ?cause, "returned connection evicted; discarding");
            core.discard(slot);
            drop(permit);
        }
        ConnState::Broken => {
            bump(&core.counters().here().returns_bad);
            tracing::debug!(pool = %core.name(), "returned connection is broken; discarding");
            core.discard(slot);
            drop(permit);
        }
    }
}

/// Rollback, the `reset` hook and the reset of a changed session, in that order, in a bounded
/// background task that owns the slot and the permit; the permit goes back only once the
/// connection is idle again or discarded.
fn spawn_reset<M: Manage>(slot: Slot<M::Connection>, permit: Permit<M>, state: ConnState) {
    let core = Arc::clone(permit.core());
    let mut live = Live::new(Arc::clone(&core), slot);
    core.spawn(async move {
        let core = permit.core();
        let work = async {
            let conn = live.conn_mut();
            let manager = core.manager();
            if state == ConnState::InTransaction {
                manager.rollback(conn).await?;
            }
            if let Some(reset) = &core.settings().reset {
                reset(conn).await.map_err(|e| Error::hook("reset", e))?;
            }
            // Last, so that what the user's hook changed (a `RESET ALL` undoes the `configure`
            // hook's settings) is restored too.
            if core.settings().reset_dirty && manager.state(conn) == ConnState::Dirty {
                tracing::debug!(pool = %core.name(), "resetting a changed session");
                manager.reset(conn).await?;
                configure(manager, core.settings(), conn).await?;
            }
            Ok::<(), Error>(())
        };
        let outcome = tokio::time::timeout(core.settings().return_timeout, work).await;
        match outcome {
            Ok(Ok(())) if live.slot().is_some_and(|s| {
                core.reusable(core.manager().state(&s.conn), s, core.clock().now())
            }) =>
            {
                live.into_idle();
            }
            failed => {
                match failed {
                    Ok(Err(e)) => tracing::warn!(pool = %core.name(), error = %e, "resetting returned connection failed; discarding"),
                    Err(_) => tracing::warn!(pool = %core.name(), "resetting returned connection timed out; discarding"),
                    Ok(Ok(())) => tracing::debug!(pool = %core.name(), "connection not idle, expired or surplus after reset; discarding"),
                }
                drop(live);
            }
        }
        drop(permit); // after the push, or after the discard has taken the slot
    });
}
