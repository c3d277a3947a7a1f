//! The core's guards: each holds one unit of a count and gives it back when dropped, so a
//! future dropped at any await point, or a task aborted, leaves every count right ("guarded
//! counts" in the core's invariants).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use super::{Core, Slot, CLOSE_TIMEOUT};
use crate::pool::manage::Manage;

/// Raises a gauge for as long as it lives.
pub(super) struct Gauge<'a>(&'a AtomicUsize);

impl<'a> Gauge<'a> {
    pub(super) fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, SeqCst);
        Gauge(counter)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// A connection being closed: counted in `closing` while alive, and frees its unit of `size`
/// when dropped (even if the task owning it is aborted).
pub(crate) struct Freed<M: Manage>(pub(super) Arc<Core<M>>);

impl<M: Manage> Freed<M> {
    pub(super) fn new(core: Arc<Core<M>>) -> Self {
        core.closing.fetch_add(1, SeqCst);
        Freed(core)
    }
}

impl<M: Manage> Drop for Freed<M> {
    fn drop(&mut self) {
        self.0.closing.fetch_sub(1, SeqCst);
        self.0.slot_freed();
    }
}

/// A checkout's permit; dropping it gives the permit back (or to `shed`).
pub(crate) struct Permit<M: Manage> {
    pub(super) core: Arc<Core<M>>,
}

impl<M: Manage> Permit<M> {
    pub(crate) fn core(&self) -> &Arc<Core<M>> {
        &self.core
    }

    /// The connection this permit covered left the pool for good (`PooledConnection::take`):
    /// its unit of `size` is freed (growth may replace it), then the permit goes back.
    pub(crate) fn release_detached(self) {
        self.core.slot_freed();
    }
}

impl<M: Manage> Drop for Permit<M> {
    fn drop(&mut self) {
        self.core.release_permit();
    }
}

/// A live connection outside the idle queue and outside any checkout: its unit of `size` is
/// freed (after closing it) when dropped, unless it is pushed idle first.
pub(crate) struct Live<M: Manage> {
    core: Arc<Core<M>>,
    slot: Option<Slot<M::Connection>>,
}

impl<M: Manage> Live<M> {
    pub(crate) fn new(core: Arc<Core<M>>, slot: Slot<M::Connection>) -> Self {
        Live {
            core,
            slot: Some(slot),
        }
    }

    pub(crate) fn slot(&self) -> Option<&Slot<M::Connection>> {
        self.slot.as_ref()
    }

    /// The connection. Only `None` after `into_idle`, which consumes `self`.
    pub(crate) fn conn_mut(&mut self) -> &mut M::Connection {
        match self.slot.as_mut() {
            Some(slot) => &mut slot.conn,
            None => unreachable!("Live holds its slot until consumed"),
        }
    }

    /// Closes the connection now (awaiting `Manage::close`), then frees its slot; the slot is
    /// freed even if this future is dropped midway.
    pub(crate) async fn close(mut self) {
        if let Some(slot) = self.slot.take() {
            let freed = Freed::new(Arc::clone(&self.core));
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.core.manager.close(slot.conn)).await;
            drop(freed);
        }
    }

    /// Pushes the connection idle, stamped with the real clock; its `size` unit moves with it
    /// into the queue.
    pub(crate) fn into_idle(mut self) {
        if let Some(mut slot) = self.slot.take() {
            slot.idle_since = self.core.clock.now();
            self.core.push_idle(slot);
        }
    }
}

impl<M: Manage> Drop for Live<M> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.core.discard(slot);
        }
    }
}

/// One unit of `size` and one of `connecting`, held by a connect in progress.
pub(crate) struct Reservation<M: Manage> {
    core: Arc<Core<M>>,
    landed: bool,
    /// Given up after `reconnect_timeout`: free the slot without asking for growth at once
    /// (maintenance retries at its next tick, or a waiter on demand).
    abandoned: bool,
}

impl<M: Manage> Reservation<M> {
    /// Holds a unit of `size` and one of `connecting` the caller has just taken.
    pub(super) fn new(core: Arc<Core<M>>) -> Self {
        Reservation {
            core,
            landed: false,
            abandoned: false,
        }
    }

    pub(crate) fn core(&self) -> &Arc<Core<M>> {
        &self.core
    }

    /// The connection arrived: its unit of `size` moves to a [`Live`]; `connecting` goes down
    /// when the reservation is dropped. `landed` is set only once the `Live` owns the unit, so
    /// a panic before that point still frees it (the reservation's drop does).
    pub(crate) fn land(&mut self, conn: M::Connection) -> Live<M> {
        let live = Live::new(Arc::clone(&self.core), self.core.new_slot(conn));
        self.landed = true;
        live
    }

    /// Reconnecting failed for `reconnect_timeout`: dropping this frees the slot quietly.
    pub(crate) fn abandon(mut self) {
        self.abandoned = true;
    }
}

impl<M: Manage> Drop for Reservation<M> {
    fn drop(&mut self) {
        self.core.counts.end_connect();
        // Unwinding: do not ask for another connect from here (a panic that escaped the connect
        // task's guard would otherwise restart at once, again and again).
        if self.abandoned || std::thread::panicking() {
            self.core.release_size();
        } else if !self.landed {
            self.core.slot_freed();
        }
    }
}
