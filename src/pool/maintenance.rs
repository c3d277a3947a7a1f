//! Maintenance: the background task that keeps `min_size`, closes idle connections above
//! `min_size` after `max_idle` (each connection idle that long, and, psycopg's rule, one more
//! per `max_idle` period in which the idle queue never ran dry), replaces expired ones
//! (deadpool has no such task, so its dead idle connections are found only at the next
//! checkout: deadpool#191), and advances the cached clock (`clock.rs`); and [`check`], which
//! pings every idle connection on demand (`Pool::check`).
//!
//! The task holds only a `Weak` to the core between ticks, so dropping every `Pool` handle
//! (which closes the pool) ends it; it also wakes at once on `close()`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::clock::deadline;
use super::core::{Core, Live, CANCEL_TIMEOUT};
use super::manage::Manage;
use super::stats::bump;
use crate::error::{Error, Result};

/// Runs maintenance every tick (`clock::tick`) until the pool is closed or gone.
pub(crate) async fn run<M: Manage>(weak: Weak<Core<M>>) {
    let Some((tick, events, max_idle)) = weak.upgrade().map(|core| {
        let settings = core.settings();
        (
            core.clock().lag(),
            Arc::clone(core.events()),
            settings.max_idle,
        )
    }) else {
        return;
    };
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
}

/// The leak watch (`leaks.rs`), while leak detection is on: every quarter of the threshold,
/// reports (once each) the checkouts held longer than it, and with `cancel_leaked` sends their
/// cancels (each bounded by `CANCEL_TIMEOUT`, in a task of its own), until the pool is closed
/// or gone.
pub(crate) async fn watch_leaks<M: Manage>(weak: Weak<Core<M>>) {
    let Some(period) = weak
        .upgrade()
        .and_then(|core| core.leaks().map(|leaks| leaks.threshold() / 4))
    else {
        return;
    };
    let period = period.max(Duration::from_millis(10));
    loop {
        let Some(core) = weak.upgrade() else { return };
        if core.is_closed() {
            return;
        }
        if let Some(leaks) = core.leaks() {
            for leak in leaks.scan() {
                bump(&core.counters().here().leaks_detected);
                tracing::warn!(
                    pool = %core.name(),
                    held_ms = leak.held.as_millis() as u64,
                    checkout = %leak.at,
                    "connection held longer than leak_detection_threshold; possibly leaked"
                );
                if let Some(cancel) = leak.cancel {
                    tracing::warn!(
                        pool = %core.name(),
                        checkout = %leak.at,
                        "cancel_leaked: cancelling the leaked connection's server work; it is closed when returned"
                    );
                    core.spawn(async move {
                        let _ = tokio::time::timeout(CANCEL_TIMEOUT, cancel).await;
                    });
                }
            }
        }
        let closed = Arc::clone(&core);
        drop(core);
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = closed.closed_signal() => return,
        }
    }
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
    core.clock().tick(Instant::now());
    sweep_idle(&core);
    if let (Some(period), Some(at)) = (max_idle, *next_shrink) {
        let now = Instant::now();
        if now >= at {
            shrink_one_unused(&core);
            *next_shrink = now.checked_add(period);
        }
    }
    core.request_growth();
    true
}

/// psycopg's `_shrink_pool`, run once per `max_idle` period: if no checkout found the queue
/// down to zero idle connections during the period, one connection was never needed, so close
/// ONE idle connection (while above `min_size`). Unlike the per-connection rule in
/// [`sweep_idle`], this also shrinks a pool under light steady load, whose FIFO rotation keeps
/// refreshing every connection's `idle_since`.
fn shrink_one_unused<M: Manage>(core: &Arc<Core<M>>) {
    if core.idle_min() > 0 && core.size() > core.min_size() {
        if let Some(slot) = core.try_pop() {
            tracing::debug!(pool = %core.name(), "an idle connection was unused for max_idle; closing one");
            core.discard(slot);
        }
    }
    core.restart_idle_min();
}

/// Takes each idle connection out once: expired ones are closed (and replaced by growth); ones
/// idle longer than `max_idle` are closed while the pool is above `min_size`; the rest go
/// back, oldest first as they came.
fn sweep_idle<M: Manage>(core: &Arc<Core<M>>) {
    let now = core.clock().now();
    // A return stamps `idle_since` from the cached reading, up to a tick early (`clock.rs`): a
    // tick more keeps the sweep from closing early.
    let lag = core.clock().lag();
    let max_idle = core.settings().max_idle.map(|max| max.saturating_add(lag));
    let mut excess = core.size().saturating_sub(core.min_size());
    for _ in 0..core.idle_count() {
        let Some(slot) = core.try_pop() else { break };
        if slot.expired(now) {
            tracing::debug!(pool = %core.name(), "idle connection expired; replacing");
            excess = excess.saturating_sub(1);
            core.discard(slot);
        } else if excess > 0 && max_idle.is_some_and(|max| now.since(slot.idle_since) >= max) {
            tracing::debug!(pool = %core.name(), "closing connection idle for max_idle");
            excess -= 1;
            core.discard(slot);
        } else {
            core.push_idle(slot);
        }
    }
}

/// Pings every idle connection (one round trip each, all within the pool's `timeout`); broken
/// or expired ones are closed and replaced.
///
/// Each connection is pinged under a permit, like a checkout, so concurrent checkouts see it as
/// in use rather than as room to open another. If no permit is free (the pool is busy), or the
/// timeout is reached, the rest are left for later: in use, they are checked by use.
///
/// # Cancel safety
/// Cancel-safe: a connection being pinged when the future is dropped is closed (its state is
/// unknown) and replaced; the others stay idle.
///
/// # Errors
/// `PoolClosed` if the pool is closed.
pub(crate) async fn check<M: Manage>(core: &Arc<Core<M>>) -> Result<()> {
    let deadline = deadline(Instant::now(), core.settings().timeout);
    for _ in 0..core.idle_count() {
        let Some(_permit) = core.try_permit() else {
            break; // busy, or closed (reported below)
        };
        let Some(slot) = core.try_pop() else { break };
        let mut live = Live::new(Arc::clone(core), slot);
        if live.slot().is_some_and(|s| s.expired(core.clock().now())) {
            continue; // `live` drops: closed, and `min_size` refilled; then the permit
        }
        let ping = core.manager().ping(live.conn_mut());
        match tokio::time::timeout_at(deadline, ping).await {
            Ok(Ok(())) => live.into_idle(), // push before release: before `_permit` drops
            Ok(Err(_)) => {
                bump(&core.counters().here().connections_lost);
                tracing::warn!(pool = %core.name(), "idle connection failed its check; replacing");
            }
            Err(_) => {
                tracing::warn!(pool = %core.name(), "check() reached the pool's timeout; closing the connection being pinged");
                break;
            }
        }
    }
    if core.is_closed() {
        return Err(Error::pool_closed());
    }
    Ok(())
}
