//! The accounting core: idle slots, permits and counts. No public items; the facade in
//! `pool.rs` and the guard in `guard.rs` are thin layers over this file.
//!
//! # Invariants
//!
//! 1. `size` counts every live connection: idle, checked out, being returned (rollback/reset),
//!    being checked or pinged, being closed, and being opened (a `Reservation`). `size ≤ max_size`
//!    because only `Core::try_reserve` raises it, with a CAS against `max_size`. A connection
//!    being closed still counts until `Manage::close` has finished, so the server never sees more
//!    than `max_size` sessions from this pool (resize-down excepted, until surplus returns).
//!    Each connect attempt (the `configure` hook included) is bounded by `connect_timeout`,
//!    so a `Reservation` cannot count as "on its way" forever and block growth.
//!    A failed attempt (an `Err`, a timeout, a panic in user code, caught) waits for the
//!    pool-wide backoff before the next, whoever starts it (a retry or a waiter's `maybe_grow`).
//! 2. There are `max_size` permits (`permits.rs`: parked in one atomic word while nobody
//!    waits, in tokio's FIFO semaphore otherwise), plus one per promotion in flight (`waiting.rs`:
//!    the wait watchdog adds a permit to wake a waiter near its deadline and counts it in
//!    `shed`, so the next release forgets it). A checkout takes one and `forget()`s it into a
//!    [`Permit`] guard (so does `Pool::check` for each idle connection it pings); the permit is
//!    added back only when its connection has been pushed idle or its slot freed
//!    (`return_slot`, in `returning.rs`), never before. So a task holding a permit finds an
//!    idle connection, room to open one, or an open in progress that will land in the queue —
//!    or, holding a promoted permit, it waits as starving for the next connection to land,
//!    with its own timer, until its deadline.
//! 3. An idle connection is pushed BEFORE its permit is released (sqlx's release order): the
//!    waiter the permit wakes must find it. A returning task never hands a connection to itself
//!    past queued waiters: it pushes and releases, and while anyone waits the release goes to
//!    tokio's FIFO semaphore, which gives the permit to the head waiter before `try_acquire`
//!    can see it (`permits.rs` invariant 3).
//! 4. Every count change has a guard that undoes it on drop or cancel: [`Permit`] (the permit),
//!    [`Live`] (one unit of `size` outside the queue), `Reservation` (`size` + `connecting`),
//!    `Starving` and `Waiting` (the waiter gauges). The checkout future owns only guards, so
//!    dropping it at any await point loses neither a permit nor a connection. A unit moves from
//!    one guard to the next only once the next exists (`Reservation::land`), and nothing between
//!    can panic (`new_slot` uses checked time arithmetic), so a panic cannot leak `size`.
//! 5. The idle count is the queue's own `len()`: a pop leaves it in the same CAS that claims
//!    the connection, so no one ever counts a connection someone already popped (F12); it
//!    over-counts only a push in flight (whose waker follows, invariant 8). Read on slow paths
//!    only: the fast path keeps no idle counter of its own (two contended RMWs per cycle).
//! 6. The idle queue only holds connections whose `Manage::state` was `Idle` when pushed: a
//!    connection returned inside a transaction is rolled back (in a bounded background task
//!    that owns its slot and permit) before it can be pushed, or it is discarded. Every return
//!    path pushes only through one predicate (`reusable`: idle, not expired, `size ≤
//!    max_size`). The `configure` and `check` hooks must leave the connection `Idle` too (else
//!    it is discarded: a failed connect, a failed check), and a checkout does not hand out a
//!    connection past its expiry (`pop_live`, via `Clock::passed`; the one exception, after
//!    a stalled runtime, is in invariant 9).
//! 7. No network I/O runs in `Drop`: returns decide from `Manage::state`; anything needing I/O
//!    (rollback, reset, cancel, close) is spawned, or, with no runtime, the connection is dropped.
//!    Every discard of a `Busy` connection (returned busy, returned to a closed pool, left busy
//!    by a hook) cancels its query, then closes it, in ONE task that frees the slot last.
//! 8. Lost-wakeup freedom (bb8#122): a waiter bumps `starving`, enables its `Notified`, then
//!    issues a SeqCst fence before popping; a producer pushes (or frees a slot), fences, then
//!    reads `starving`. One of the two always sees the other.
//! 9. A checkout reads no clock (`clock.rs`: a read costs as much as the rest of a bare
//!    checkout + return). It judges expiry by `Clock::passed`, against a cached reading that
//!    the maintenance task and returns keep fresh, and reads the real clock only within two
//!    ticks of an expiry. A return asks the kernel's coarse clock (~10 ns) whether the cached
//!    reading is more than a quarter tick old and refreshes it with a precise read if so; it
//!    stamps `idle_since` from it (a quarter tick plus the coarse clock's resolution early at
//!    most in real time, up to a tick under tokio's paused clock, which the coarse clock does not
//!    follow: so the idle sweep adds a tick to `max_idle`) and checks expiry with
//!    `Clock::passed` (exact while the cached reading lags by under two ticks). After a stall in
//!    which neither ran (a runtime driven by `block_on` between long pauses) a checkout may hand
//!    out a connection that expired meanwhile, once: its return sees the stale reading, reads
//!    the real clock and closes it (psycopg_pool checks expiry only at return). Under tokio's
//!    paused clock a return never sees the reading as stale, so after `advance` past two ticks
//!    and until the maintenance task runs, an expired connection may be handed out and
//!    re-pooled any number of times.
//!
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::builder::Settings;
use super::clock::{Clock, Nanos, NEVER};
use super::connecting::Backoff;
use super::manage::{ConnState, Manage};
use super::permits::Permits;
use super::stats::{bump, Counters, PoolStats};
use super::waiting::Deadlines;
use crate::error::Error;

/// How long closing one connection (Terminate) may take before it is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a CancelRequest (a connection of its own) may take before the session is closed
/// anyway.
pub(crate) const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// "Never", for a deadline: about 30 years, tokio's own `Instant::far_future`.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `start + timeout`, saturating: a timeout too long for `Instant` (`Duration::MAX`, "wait
/// forever") gives a far-future deadline instead of an overflow panic.
pub(crate) fn deadline(start: Instant, timeout: Duration) -> Instant {
    start
        .checked_add(timeout)
        .or_else(|| start.checked_add(FAR_FUTURE))
        .unwrap_or(start)
}

/// A connection with the pool's bookkeeping about it.
pub(crate) struct Slot<C> {
    pub(crate) conn: C,
    /// When it expires: `max_lifetime` with up to 5% taken off (psycopg's jitter), so a pool
    /// opened at once does not expire all at once. [`NEVER`] without `max_lifetime`.
    pub(crate) expires: Nanos,
    /// When it went idle: the real clock at a connect or reset, the cached reading at a return
    /// (never later than the real time; up to one tick earlier: invariant 9).
    pub(crate) idle_since: Nanos,
}

impl<C> Slot<C> {
    /// Whether the connection has outlived its `max_lifetime` at `now`.
    pub(crate) fn expired(&self, now: Nanos) -> bool {
        now >= self.expires
    }
}

/// The shared state behind every `Pool` handle, guard and background task.
pub(crate) struct Core<M: Manage> {
    pub(crate) manager: M,
    pub(crate) settings: Settings<M::Connection>,
    idle: ArrayQueue<Slot<M::Connection>>,
    /// The fewest idle connections seen after a checkout's pop during the current `max_idle`
    /// period (psycopg's `_nconns_min`); maintenance reads and resets it.
    pub(crate) idle_min: AtomicUsize,
    /// On lines of its own: every queued checkout and return writes the permit word and the
    /// semaphore's state, and unpadded they shared a line with `size` and `max_size`, which
    /// every return reads (`perf annotate`: half of `return_slot`'s samples on that load).
    pub(crate) permits: CachePadded<Permits>,
    pub(crate) size: AtomicUsize,
    pub(crate) connecting: AtomicUsize,
    /// Connections being closed (still in `size` until the server has let go of them).
    pub(crate) closing: AtomicUsize,
    /// Permit holders waiting for a connection to land.
    pub(crate) starving: AtomicUsize,
    pub(crate) min_size: AtomicUsize,
    pub(crate) max_size: AtomicUsize,
    /// Permits still to be forgotten as they come back: after `resize` shrank `max_size`, and
    /// one per promotion of the wait watchdog (invariant 2).
    pub(crate) shed: AtomicUsize,
    /// Waiters' deadlines, for the one watchdog that bounds every wait (`waiting.rs`).
    pub(crate) deadlines: Deadlines,
    closed: AtomicBool,
    /// A connection landed in the queue or a slot was freed: wakes one starving waiter.
    pub(crate) landed: Notify,
    /// Something changed (a connect finished, the pool closed): wakes every observer.
    pub(crate) events: Arc<Notify>,
    pub(crate) counters: Counters,
    last_connect_error: Mutex<Option<Arc<Error>>>,
    /// When the next connect attempt may start (shared by every connect task).
    pub(crate) backoff: Mutex<Backoff>,
    rng: AtomicU64,
    /// Slot times, and the coarse reading the fast path uses (invariant 9).
    pub(crate) clock: Clock,
}

impl<M: Manage> Core<M> {
    pub(crate) fn new(
        manager: M,
        settings: Settings<M::Connection>,
        min: usize,
        max: usize,
    ) -> Self {
        let seed = settings.seed;
        let clock = Clock::new(super::maintenance::tick(&settings));
        let deadlines = Deadlines::new(settings.timeout);
        Core {
            manager,
            idle: ArrayQueue::new(settings.capacity.max(1)),
            settings,
            idle_min: AtomicUsize::new(0),
            permits: CachePadded::new(Permits::new(max)),
            size: AtomicUsize::new(0),
            connecting: AtomicUsize::new(0),
            closing: AtomicUsize::new(0),
            starving: AtomicUsize::new(0),
            min_size: AtomicUsize::new(min),
            max_size: AtomicUsize::new(max),
            shed: AtomicUsize::new(0),
            deadlines,
            closed: AtomicBool::new(false),
            landed: Notify::new(),
            events: Arc::new(Notify::new()),
            counters: Counters::default(),
            last_connect_error: Mutex::new(None),
            backoff: Mutex::new(Backoff::default()),
            rng: AtomicU64::new(seed),
            clock,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.settings.name
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    /// Idle connections now (invariant 5). Slow paths only: it reads both ends of the queue.
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.len()
    }

    /// A uniform random number in `[0, 1)` (splitmix64): jitter only, not security.
    pub(crate) fn random(&self) -> f64 {
        let mut z = self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A fresh slot for a just-opened connection. Never panics: a lifetime too long for
    /// `Duration`/`Instant` arithmetic (`Duration::MAX`, "never") means no expiry.
    pub(crate) fn new_slot(&self, conn: M::Connection) -> Slot<M::Connection> {
        let now = Instant::now();
        let jitter = 1.0 - 0.05 * self.random();
        let expires = self.settings.max_lifetime.map_or(NEVER, |lifetime| {
            Duration::try_from_secs_f64(lifetime.as_secs_f64() * jitter)
                .map_or(NEVER, |lifetime| self.clock.after(now, lifetime))
        });
        Slot {
            conn,
            expires,
            idle_since: self.clock.at(now),
        }
    }

    /// Pops one idle connection (no liveness check).
    pub(crate) fn try_pop(&self) -> Option<Slot<M::Connection>> {
        self.idle.pop()
    }

    /// Pops idle connections until one is neither past its `max_lifetime` (maintenance may not
    /// have swept it yet) nor closed by the server (the zero-RTT `is_closed` peek); discards
    /// the others.
    pub(crate) fn pop_live(self: &Arc<Self>) -> Option<Slot<M::Connection>> {
        loop {
            let Some(mut slot) = self.try_pop() else {
                // A request found nothing idle: this period needed every connection.
                self.idle_min.store(0, Relaxed);
                return None;
            };
            self.note_idle_left();
            if self.clock.passed(slot.expires) {
                tracing::debug!(pool = %self.name(), "idle connection expired; closing");
            } else if self.manager.is_closed(&mut slot.conn) {
                bump(&self.counters.here().connections_lost);
                tracing::debug!(pool = %self.name(), "idle connection closed by the server; discarding");
            } else {
                return Some(slot);
            }
            self.discard(slot);
        }
    }

    /// Tracks the fewest idle connections a checkout left during this `max_idle` period (the
    /// F9 shrink rule). Only a pool above `min_size` can shrink, so only there is it worth
    /// reading the queue's length on a checkout.
    fn note_idle_left(&self) {
        if self.size.load(Relaxed) > self.min_size.load(Relaxed) {
            let left = self.idle_count();
            if left < self.idle_min.load(Relaxed) {
                self.idle_min.fetch_min(left, Relaxed);
            }
        }
    }

    /// Pushes a connection idle (invariant 3: the caller releases its permit afterwards).
    pub(crate) fn push_idle(self: &Arc<Self>, slot: Slot<M::Connection>) {
        if let Err(slot) = self.idle.push(slot) {
            // Capacity ≥ max_size ≥ size makes this unreachable; if it ever happens the
            // connection is closed, never leaked.
            debug_assert!(false, "idle queue full");
            self.discard(slot);
            return;
        }
        fence(SeqCst);
        if self.closed.load(Relaxed) {
            // Raced with close(): it may have drained the queue before our push.
            self.drain_idle();
        }
        self.wake_one();
    }

    /// Wakes one starving waiter, if any (invariant 8).
    fn wake_one(&self) {
        if self.starving.load(Relaxed) > 0 {
            self.landed.notify_one();
        }
    }

    /// Closes a connection in the background, then frees its slot (size stays counted while the
    /// server still has the session). A `Busy` connection's query is cancelled first, in the
    /// same task, and the slot is freed only after both (postgrex#747: freeing it at once let a
    /// replacement open while the server still ran the old session's query, so the server saw
    /// more than `max_size` sessions). Without a runtime the connection is simply dropped.
    pub(crate) fn discard(self: &Arc<Self>, slot: Slot<M::Connection>) {
        match Handle::try_current() {
            Ok(handle) => {
                let freed = Freed::new(Arc::clone(self));
                let cancel = (self.manager.state(&slot.conn) == ConnState::Busy)
                    .then(|| self.manager.cancel(&slot.conn));
                handle.spawn(async move {
                    let core = &freed.0;
                    if let Some(cancel) = cancel {
                        let _ = tokio::time::timeout(CANCEL_TIMEOUT, cancel).await;
                    }
                    let _ =
                        tokio::time::timeout(CLOSE_TIMEOUT, core.manager.close(slot.conn)).await;
                    drop(freed);
                });
            }
            Err(_) => {
                drop(slot);
                self.slot_freed();
            }
        }
    }

    /// One unit of `size` is gone: wake a waiter (it may open one) and keep `min_size`.
    pub(crate) fn slot_freed(self: &Arc<Self>) {
        self.release_size();
        self.maybe_grow();
    }

    /// One unit of `size` is gone; wakes a waiter, which may open a replacement.
    pub(crate) fn release_size(&self) {
        self.size.fetch_sub(1, SeqCst);
        fence(SeqCst);
        self.wake_one();
        self.events.notify_waiters();
    }

    /// Gives a permit back, unless `shed` owes one (`resize` shrank the pool, or the watchdog
    /// promoted a waiter: invariant 2).
    pub(crate) fn release_permit(&self) {
        if !self.take_shed() {
            self.permits.release(1);
        }
    }

    /// Takes one unit of `shed` if any is owed (a permit to forget instead of giving back).
    fn take_shed(&self) -> bool {
        self.shed
            .fetch_update(Relaxed, Relaxed, |s| s.checked_sub(1))
            .is_ok()
    }

    /// Marks the pool closed and fails every waiter (the semaphore's and the starving ones),
    /// and stops the background tasks. The caller then drains the idle queue.
    /// Returns `false` if it was already closed.
    pub(crate) fn mark_closed(&self) -> bool {
        if self.closed.swap(true, SeqCst) {
            return false;
        }
        tracing::debug!(pool = %self.name(), "closing pool");
        self.permits.close();
        self.deadlines.close();
        self.landed.notify_waiters();
        self.events.notify_waiters();
        true
    }

    /// Takes every idle connection out and discards it.
    pub(crate) fn drain_idle(self: &Arc<Self>) {
        while let Some(slot) = self.try_pop() {
            self.discard(slot);
        }
    }

    /// Remembers why connecting failed, for `PoolTimeout` errors.
    pub(crate) fn set_last_connect_error(&self, e: Option<Error>) {
        if let Ok(mut last) = self.last_connect_error.lock() {
            *last = e.map(Arc::new);
        }
    }

    pub(crate) fn last_connect_error(&self) -> Option<Arc<Error>> {
        self.last_connect_error.lock().ok().and_then(|l| l.clone())
    }

    /// Raises or lowers `max_size` (≤ the queue's capacity) and `min_size`.
    pub(crate) fn resize(self: &Arc<Self>, min: usize, max: usize) {
        self.min_size.store(min, SeqCst);
        let old = self.max_size.swap(max, SeqCst);
        if max > old {
            let mut add = max - old;
            while add > 0 && self.take_shed() {
                add -= 1;
            }
            self.permits.release(add);
        } else if max < old {
            let want = old - max;
            let forgotten = self.permits.forget(want);
            self.shed.fetch_add(want - forgotten, Relaxed);
            let mut excess = self.size.load(SeqCst).saturating_sub(max);
            while excess > 0 {
                let Some(slot) = self.try_pop() else { break };
                self.discard(slot);
                excess -= 1;
            }
        }
        self.maybe_grow();
    }

    /// The gauges (counters are filled by the caller).
    pub(crate) fn gauges(&self) -> PoolStats {
        PoolStats {
            pool_min: self.min_size.load(Relaxed),
            pool_max: self.max_size.load(Relaxed),
            pool_size: self
                .size
                .load(Relaxed)
                .saturating_sub(self.closing.load(Relaxed)),
            pool_available: self.idle_count(),
            connecting: self.connecting.load(Relaxed),
            permits_available: self.permits.available(),
            ..PoolStats::default()
        }
    }
}

/// A connection being closed: counted in `closing` while alive, and frees its unit of `size`
/// when dropped (even if the task owning it is aborted).
struct Freed<M: Manage>(Arc<Core<M>>);

impl<M: Manage> Freed<M> {
    fn new(core: Arc<Core<M>>) -> Self {
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

/// A permit taken from the semaphore and `forget()`-ed; dropping it adds it back.
pub(crate) struct Permit<M: Manage> {
    pub(crate) core: Arc<Core<M>>,
}

impl<M: Manage> Permit<M> {
    /// Adopts a permit the caller has just forgotten.
    pub(crate) fn adopt(core: Arc<Core<M>>) -> Self {
        Permit { core }
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
    pub(crate) core: Arc<Core<M>>,
    slot: Option<Slot<M::Connection>>,
}

impl<M: Manage> Live<M> {
    pub(crate) fn new(core: Arc<Core<M>>, slot: Slot<M::Connection>) -> Self {
        Live {
            core,
            slot: Some(slot),
        }
    }

    pub(crate) fn slot_mut(&mut self) -> Option<&mut Slot<M::Connection>> {
        self.slot.as_mut()
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

    /// Pushes the connection idle; its `size` unit moves with it into the queue.
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

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
