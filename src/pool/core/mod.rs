//! The accounting core: idle slots, permits and counts, and every method that changes a count.
//! Everything above (checkout, return, growth, maintenance, the facade) reads the counts
//! through this file and changes them only through its methods and guards.
//!
//! # Invariants
//!
//! - **Bounded size.** `size` counts every live connection: idle, checked out, being returned
//!   (rollback/reset), being checked or pinged, being closed, and being opened (a
//!   [`Reservation`]). Only [`Core::try_reserve`] raises it, with a CAS against `max_size`, so
//!   `size ≤ max_size`; a connection being closed still counts until `Manage::close` has
//!   finished, so the server never sees more than `max_size` sessions from this pool (after a
//!   `resize` down, until the surplus returns).
//! - **A permit per checkout.** There are `max_size` permits (`permits.rs`), plus one per
//!   promotion in flight (`waiting.rs`: the wait watchdog adds a permit to wake a waiter near its
//!   deadline and counts it in `shed`, so the next release forgets it). A checkout holds one as
//!   a [`Permit`] guard; the permit is given back only once its connection has been pushed idle
//!   or its slot freed. So a permit holder finds an idle connection, room to open one, or an
//!   open in progress that will land in the queue; or, holding a promoted permit, it waits in
//!   the starving stage ([`Core::await_landing`]) until its deadline.
//! - **Push before release** (sqlx's release order). An idle connection is pushed BEFORE its
//!   permit is released: the waiter the permit wakes must find it. A returner never hands a
//!   connection to itself past queued waiters: while anyone waits, the release goes to tokio's
//!   FIFO semaphore, which gives it to the head waiter before `try_acquire` can see it.
//! - **Guarded counts.** Every count change has a guard that undoes it on drop or cancel:
//!   [`Permit`], [`Live`] (one unit of `size` outside the queue), [`Reservation`] (`size` +
//!   `connecting`), [`Freed`] (`closing`), and the starving gauge inside `await_landing`. A unit
//!   moves from one guard to the next only once the next exists (`Reservation::land`), and
//!   nothing between can panic (`new_slot` uses checked time arithmetic).
//! - **Idle is the queue's length.** A pop leaves the count in the same CAS that claims the
//!   connection, so no one ever counts a connection someone already popped; it over-counts only
//!   a push in flight, whose wake-up follows. Read on slow paths only.
//! - **Only idle connections are pooled.** The queue holds only connections whose
//!   `Manage::state` was `Idle` when pushed, not expired, and not surplus ([`Core::reusable`]);
//!   a checkout does not hand out a connection past its expiry (`pop_live`, within the clock's
//!   lag: `clock.rs`).
//! - **No I/O in `Drop`.** Returns decide from `Manage::state`; anything needing I/O (rollback,
//!   reset, cancel, close) is spawned on the pool's runtime (captured at `open`, so a guard
//!   dropped on any thread works). A `Busy` connection is cancelled, then closed, in ONE task
//!   that frees its slot last (postgrex#747).
//! - **No lost wake-up** (bb8#122). A starving waiter bumps `starving`, enables its `Notified`,
//!   then fences before popping; a producer pushes (or frees a slot), fences, then reads
//!   `starving`. One of the two always sees the other.
//!
//! The one edge upwards is growth: freeing a slot or finding nothing idle may need a new
//! connection, which the connect task (`connecting.rs`) opens. The core does not call it: it
//! signals `growth`, and the grower task that `open` starts reserves and connects.

use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use tokio::runtime::Handle;
use tokio::sync::{AcquireError, Notify, TryAcquireError};
use tokio::time::Instant;

use super::backoff::{Backoff, Jitter};
use super::clock::{self, Clock, Nanos};
use super::inflight::InFlight;
use super::leaks::Leaks;
use super::manage::{ConnState, Eviction, Manage};
use super::permits::Permits;
use super::revoke::{Registry, Revocable};
use super::settings::Settings;
use super::stats::{bump, Counters, Histograms, PoolStats};
use super::waiting::Deadlines;
use crate::error::{Error, Kind, PoolTimeoutInfo};

mod counts;
mod guards;

use counts::{Counts, Pushed};
use guards::Gauge;
pub(crate) use guards::{Freed, Live, Permit, Reservation};

/// How long closing one connection (Terminate) may take before it is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a CancelRequest (a connection of its own) may take before the session is closed
/// anyway.
pub(crate) const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection with the pool's bookkeeping about it.
pub(crate) struct Slot<C> {
    pub(crate) conn: C,
    /// When it expires: `max_lifetime` with up to 5% taken off (psycopg's jitter), so a pool
    /// opened at once does not expire all at once. [`Nanos::NEVER`] without `max_lifetime`.
    pub(crate) expires: Nanos,
    /// When it went idle: the real clock at a connect or reset, the cached reading at a return
    /// (never later than the real time; up to one tick earlier: `clock.rs`).
    pub(crate) idle_since: Nanos,
    /// The pool's generation when it was opened (a `drain` since makes it stale) and its
    /// prepared cancel, which `close_timeout` reaches through the registry. Behind one pointer,
    /// so a slot stays four words: every checkout and return moves it.
    info: Arc<Revocable>,
}

impl<C> Slot<C> {
    /// Whether the connection has outlived its `max_lifetime` at `now`.
    pub(crate) fn expired(&self, now: Nanos) -> bool {
        now >= self.expires
    }

    /// The connection's handle: its generation, its prepared cancel, whether it was revoked.
    pub(crate) fn info(&self) -> &Arc<Revocable> {
        &self.info
    }
}

/// What [`Core::await_landing`] ended with.
pub(crate) enum Landing<C> {
    /// A connection, popped and alive.
    Slot(Slot<C>),
    /// Woken with nothing to take (another waiter took it, or a slot was freed): look again.
    Woken,
    /// The deadline passed.
    TimedOut,
    /// The pool closed.
    Closed,
    /// Connecting is known to fail (`Core::connect_failed`): this error says why.
    Down(Error),
}

/// The shared state behind every `Pool` handle, guard and background task.
pub(crate) struct Core<M: Manage> {
    manager: M,
    settings: Settings<M::Connection>,
    /// The runtime the pool was opened on: every background task runs there.
    runtime: Handle,
    idle: ArrayQueue<Slot<M::Connection>>,
    /// The fewest idle connections seen after a checkout's pop during the current `max_idle`
    /// period (psycopg's `_nconns_min`); maintenance reads and resets it.
    idle_min: AtomicUsize,
    /// On lines of their own: every queued checkout and return writes the permit word and the
    /// semaphore's state, and `size`/`max_size` beside them are read by every return.
    permits: CachePadded<Permits>,
    /// `size`, `connecting`, `max_size`, `shed` and `closed`: the model-checked counts
    /// (`counts.rs`).
    counts: Counts,
    /// Connections being closed (still in `size` until the server has let go of them).
    closing: AtomicUsize,
    /// Busy connections being cancelled, then closed (named by a `PoolTimeout`).
    cancels: InFlight,
    /// Connect attempts in flight (named by a `PoolTimeout`).
    connects: InFlight,
    /// Every live connection's prepared cancel (`close_timeout`).
    revocable: Registry,
    /// Checkouts in progress, when leak detection is on.
    leaks: Option<Leaks>,
    /// Neither a `check` hook nor leak detection: a checkout may take the fast path.
    plain_checkout: bool,
    /// Permit holders waiting for a connection to land.
    starving: AtomicUsize,
    min_size: AtomicUsize,
    /// Waiters' deadlines, for the one watchdog that bounds every wait (`waiting.rs`).
    deadlines: Deadlines,
    /// A connection landed in the queue or a slot was freed: wakes one starving waiter.
    landed: Notify,
    /// Something changed (a connect finished, a slot was freed, the pool closed): wakes every
    /// observer (`Pool::wait`, maintenance, connect tasks in backoff).
    events: Arc<Notify>,
    /// Someone may need another connection: wakes the grower (`connecting.rs`).
    growth: Notify,
    counters: Counters,
    histograms: Histograms,
    last_connect_error: Mutex<Option<Arc<Error>>>,
    /// Connect attempts that failed in a row (reset by a success).
    connect_failures: AtomicU32,
    /// Bumped by `drain`: connections opened before it are replaced.
    generation: AtomicU64,
    /// Connecting is known to fail: checkouts that find nothing idle fail at once
    /// ([`Landing::Down`]) and a probe connects in the background even with nobody waiting.
    down: AtomicBool,
    backoff: Backoff,
    jitter: Jitter,
    /// Slot times, and the cached reading the fast path uses (`clock.rs`).
    clock: Clock,
}

impl<M: Manage> Core<M> {
    /// A core with no connection yet. Its background tasks (grower, maintenance, watchdog) are
    /// started by `open`, on `runtime`.
    pub(crate) fn new(manager: M, settings: Settings<M::Connection>, runtime: Handle) -> Self {
        let clock = Clock::new(clock::tick(settings.max_idle, settings.max_lifetime));
        Core {
            manager,
            idle: ArrayQueue::new(settings.capacity.max(1)),
            idle_min: AtomicUsize::new(0),
            permits: CachePadded::new(Permits::new(settings.max_size)),
            counts: Counts::new(settings.max_size),
            closing: AtomicUsize::new(0),
            cancels: InFlight::default(),
            connects: InFlight::default(),
            revocable: Registry::default(),
            leaks: settings
                .leak_threshold
                .map(|threshold| Leaks::new(threshold, settings.cancel_leaked)),
            plain_checkout: settings.check.is_none() && settings.leak_threshold.is_none(),
            starving: AtomicUsize::new(0),
            min_size: AtomicUsize::new(settings.min_size),
            deadlines: Deadlines::new(settings.timeout),
            landed: Notify::new(),
            events: Arc::new(Notify::new()),
            growth: Notify::new(),
            counters: Counters::default(),
            histograms: Histograms::default(),
            last_connect_error: Mutex::new(None),
            connect_failures: AtomicU32::new(0),
            down: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            backoff: Backoff::default(),
            jitter: Jitter::new(settings.seed),
            clock,
            runtime,
            settings,
        }
    }

    pub(crate) fn manager(&self) -> &M {
        &self.manager
    }

    pub(crate) fn settings(&self) -> &Settings<M::Connection> {
        &self.settings
    }

    pub(crate) fn name(&self) -> &str {
        &self.settings.name
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    pub(crate) fn histograms(&self) -> &Histograms {
        &self.histograms
    }

    /// Connect attempts in flight: each registers for the time it runs.
    pub(crate) fn connects(&self) -> &InFlight {
        &self.connects
    }

    /// Whether a checkout may take the fast path (no `check` hook, no leak detection).
    #[inline]
    pub(crate) fn plain_checkout(&self) -> bool {
        self.plain_checkout
    }

    /// Checkouts in progress, when leak detection is on.
    #[inline]
    pub(crate) fn leaks(&self) -> Option<&Leaks> {
        self.leaks.as_ref()
    }

    pub(crate) fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    pub(crate) fn jitter(&self) -> &Jitter {
        &self.jitter
    }

    /// Fires on every change an observer may wait for (see the field).
    pub(crate) fn events(&self) -> &Arc<Notify> {
        &self.events
    }

    /// Fires when growth may be wanted (see the field).
    pub(crate) fn growth(&self) -> &Notify {
        &self.growth
    }

    /// Runs `task` on the pool's runtime, in a `wirepool{pool}` tracing span (the parent of the
    /// spans of the connections it opens). If that runtime has shut down, the task is dropped
    /// unpolled, and with it whatever it owns (guards free their counts).
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let span = tracing::info_span!("wirepool", pool = %self.name());
        drop(
            self.runtime
                .spawn(tracing::Instrument::instrument(task, span)),
        );
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.counts.is_closed()
    }

    /// Idle connections now. Slow paths only: it reads both ends of the queue.
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.len()
    }

    pub(crate) fn size(&self) -> usize {
        self.counts.size.load(SeqCst)
    }

    pub(crate) fn min_size(&self) -> usize {
        self.min_size.load(SeqCst)
    }

    // ----- Permits -----------------------------------------------------------------------

    /// A permit without waiting, if one is free and the pool is open (a pointer-sized answer:
    /// the fast path moves nothing more).
    #[inline]
    pub(crate) fn try_permit(self: &Arc<Self>) -> Option<Permit<M>> {
        match self.permits.try_acquire() {
            Ok(()) => Some(Permit {
                core: Arc::clone(self),
            }),
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => None,
        }
    }

    /// Queues for a permit in FIFO order. Registers no timer: one to two eighths of `timeout`
    /// before the deadline the watchdog hands a still-queued waiter a permit with no connection
    /// behind it, and [`Core::await_landing`] then times it out exactly (`waiting.rs`).
    /// `timeout` counts from the caller's clock read, made with no await since.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropped, it holds no permit and leaves no count.
    ///
    /// # Errors
    /// `PoolClosed`.
    pub(crate) async fn queue_for_permit(
        self: &Arc<Self>,
        timeout: Duration,
    ) -> Result<Permit<M>, Error> {
        let acquired = self
            .deadlines
            .acquire(&self.permits, &self.counts.shed, timeout);
        match acquired.await {
            Ok(()) => Ok(Permit {
                core: Arc::clone(self),
            }),
            Err(AcquireError { .. }) => Err(Error::pool_closed()),
        }
    }

    /// The wait watchdog (`waiting.rs`), run by a task `open` starts until the pool closes.
    pub(crate) async fn watch_deadlines(&self) {
        self.deadlines.watch(&self.permits, &self.counts.shed).await;
    }

    /// Gives a permit back, unless `shed` owes one (`resize` shrank the pool, or the watchdog
    /// promoted a waiter).
    fn release_permit(&self) {
        self.counts.release_permit(&self.permits);
    }

    // ----- The idle queue ----------------------------------------------------------------

    /// A fresh slot for a just-opened connection. Never panics: a lifetime too long for
    /// `Duration`/`Instant` arithmetic (`Duration::MAX`, "never") means no expiry.
    fn new_slot(&self, conn: M::Connection) -> Slot<M::Connection> {
        let now = Instant::now();
        let jitter = 1.0 - 0.05 * self.jitter.unit();
        let expires = self.settings.max_lifetime.map_or(Nanos::NEVER, |lifetime| {
            Duration::try_from_secs_f64(lifetime.as_secs_f64() * jitter)
                .map_or(Nanos::NEVER, |lifetime| self.clock.after(now, lifetime))
        });
        Slot {
            info: (self.revocable.register(
                self.generation.load(SeqCst),
                self.manager.prepare_cancel(&conn),
            )),
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
    /// have swept it yet) nor closed by the server (`Manage::check_closed`, no round trip);
    /// discards the others.
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
            } else if self.is_drained(&slot) {
                bump(&self.counters.here().connections_drained);
                tracing::debug!(pool = %self.name(), "idle connection predates drain(); closing");
            } else if self.manager.check_closed(&mut slot.conn) {
                match self.manager.state(&slot.conn) {
                    ConnState::Evict(cause) => {
                        self.count_eviction(cause);
                        tracing::warn!(pool = %self.name(), ?cause, "idle connection evicted; discarding");
                    }
                    _ => {
                        bump(&self.counters.here().connections_lost);
                        tracing::debug!(pool = %self.name(), "idle connection closed by the server; discarding");
                    }
                }
            } else {
                return Some(slot);
            }
            self.discard(slot);
        }
    }

    /// Tracks the fewest idle connections a checkout left during this `max_idle` period
    /// (psycopg's shrink rule, `maintenance.rs`). Only a pool above `min_size` can shrink, so
    /// only there is it worth reading the queue's length on a checkout.
    fn note_idle_left(&self) {
        if self.counts.size.load(Relaxed) > self.min_size.load(Relaxed) {
            let left = self.idle_count();
            if left < self.idle_min.load(Relaxed) {
                self.idle_min.fetch_min(left, Relaxed);
            }
        }
    }

    /// The fewest idle connections a checkout left during this `max_idle` period.
    pub(crate) fn idle_min(&self) -> usize {
        self.idle_min.load(Relaxed)
    }

    /// Starts a new `max_idle` period at the current idle count.
    pub(crate) fn restart_idle_min(&self) {
        self.idle_min.store(self.idle_count(), Relaxed);
    }

    /// Pushes a connection idle (push before release: the caller gives its permit back
    /// afterwards).
    pub(crate) fn push_idle(self: &Arc<Self>, slot: Slot<M::Connection>) {
        match self.counts.push_idle(&self.idle, slot) {
            Pushed::Idle => {}
            // Raced with close(): it may have drained the queue before our push.
            Pushed::Closed => self.drain_idle(),
            // Raced with a shrink that may have looked for surplus before our push.
            Pushed::Surplus => {
                if let Some(surplus) = self.try_pop() {
                    self.discard(surplus);
                }
            }
            Pushed::Full(slot) => {
                // Capacity ≥ max_size ≥ size makes this unreachable; if it ever happens the
                // connection is closed, never leaked.
                debug_assert!(false, "idle queue full");
                self.discard(slot);
                return;
            }
        }
        self.wake_one();
    }

    /// Wakes one starving waiter, if any (no lost wake-up).
    fn wake_one(&self) {
        if self.starving.load(Relaxed) > 0 {
            self.landed.notify_one();
        }
    }

    /// The test every connection passes before it goes back idle, on a plain return and after
    /// a rollback/reset alike: idle (or dirty, where dirty sessions are kept), not expired, and
    /// not surplus after `resize` shrank
    /// `max_size` (`size` still counts this connection). `now` may lag the real clock, so a
    /// lifetime close to it is checked against the real clock.
    pub(crate) fn reusable(
        &self,
        state: ConnState,
        slot: &Slot<M::Connection>,
        now: Nanos,
    ) -> bool {
        (state == ConnState::Idle || (state == ConnState::Dirty && !self.settings.reset_dirty))
            && !slot.expired(now)
            && !self.clock.passed(slot.expires)
            && self.counts.within_max()
    }

    /// The starving stage: holding `permit`'s place, wait until `deadline` for a connection to
    /// land in the idle queue (or for a slot to be freed, which lets growth open one).
    ///
    /// # Cancel safety
    /// Cancel-safe: dropped, it leaves no count (the starving gauge is a guard).
    pub(crate) async fn await_landing(
        self: &Arc<Self>,
        deadline: Instant,
    ) -> Landing<M::Connection> {
        let _starving = Gauge::enter(&self.starving);
        let notified = self.landed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        fence(SeqCst); // no lost wake-up: pairs with `push_idle` / `release_size`
        if let Some(slot) = self.pop_live() {
            return Landing::Slot(slot);
        }
        if self.is_closed() {
            return Landing::Closed;
        }
        self.request_growth();
        if self.down.load(SeqCst) {
            return Landing::Down(self.unavailable_error());
        }
        match tokio::time::timeout_at(deadline, notified).await {
            Ok(()) => Landing::Woken,
            Err(_) => Landing::TimedOut,
        }
    }

    // ----- Disposal ----------------------------------------------------------------------

    /// Closes a connection in the background, then frees its slot (size stays counted while the
    /// server still has the session). A `Busy` connection's query is cancelled first, in the
    /// same task, and the slot is freed only after both (postgrex#747: freeing it at once let a
    /// replacement open while the server still ran the old session's query, so the server saw
    /// more than `max_size` sessions).
    pub(crate) fn discard(self: &Arc<Self>, slot: Slot<M::Connection>) {
        let freed = Freed::new(Arc::clone(self));
        let cancel = (self.manager.state(&slot.conn) == ConnState::Busy)
            .then(|| self.manager.cancel(&slot.conn));
        // Only the connection goes on: no longer reachable by `close_timeout`.
        let conn = slot.conn;
        self.spawn(async move {
            let core = &freed.0;
            let cancelling = cancel.is_some().then(|| core.cancels.enter());
            if let Some(cancel) = cancel {
                let _ = tokio::time::timeout(CANCEL_TIMEOUT, cancel).await;
            }
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, core.manager.close(conn)).await;
            drop(cancelling);
            drop(freed);
        });
    }

    /// One unit of `size` is gone: wake a waiter (it may open one) and keep `min_size`.
    fn slot_freed(&self) {
        self.release_size();
        self.request_growth();
    }

    /// One unit of `size` is gone; wakes a waiter, which may open a replacement.
    fn release_size(&self) {
        self.counts.release_size();
        fence(SeqCst);
        self.wake_one();
        self.events.notify_waiters();
    }

    /// Counts an eviction (`ConnState::Evict`): as lost, and by its cause.
    pub(crate) fn count_eviction(&self, cause: Eviction) {
        let here = self.counters.here();
        bump(&here.connections_lost);
        bump(match cause {
            Eviction::ServerGone => &here.evicted_server_gone,
            Eviction::ReadOnly => &here.evicted_read_only,
            Eviction::RoleChanged => &here.evicted_role_changed,
        });
    }

    /// Whether `slot` was opened before the last `drain`.
    pub(crate) fn is_drained(&self, slot: &Slot<M::Connection>) -> bool {
        // A pool never drained skips the slot's pointer.
        let now = self.generation.load(Relaxed);
        now != 0 && slot.info.generation() != now
    }

    /// Replaces every connection (psycopg_pool 3.3's `drain`, HikariCP's
    /// `softEvictConnections`): idle ones are closed now and growth opens new ones; checked-out
    /// ones are closed when they come back; a connect in flight lands as a new one.
    pub(crate) fn drain(self: &Arc<Self>) {
        self.generation.fetch_add(1, SeqCst);
        let mut drained = 0;
        // Only what was idle now: a replacement can land while this runs (each discard frees a
        // slot that growth refills), and it belongs to the new generation: it goes back.
        for _ in 0..self.idle_count() {
            let Some(slot) = self.try_pop() else { break };
            if self.is_drained(&slot) {
                self.discard(slot);
                drained += 1;
            } else {
                self.push_idle(slot);
            }
        }
        self.counters
            .here()
            .connections_drained
            .fetch_add(drained, Relaxed);
        tracing::info!(pool = %self.name(), drained, "drain(): replacing every connection");
    }

    /// Takes every idle connection out and discards it.
    pub(crate) fn drain_idle(self: &Arc<Self>) {
        while let Some(slot) = self.try_pop() {
            self.discard(slot);
        }
    }

    /// Takes every idle connection out and closes it, awaiting each `Manage::close`; whatever
    /// is left when this future is dropped is still closed, in the background.
    pub(crate) async fn close_idle(self: &Arc<Self>) {
        let mut idle = Vec::new();
        while let Some(slot) = self.try_pop() {
            idle.push(Live::new(Arc::clone(self), slot));
        }
        for live in idle {
            live.close().await;
        }
    }

    /// Marks the pool closed, fails every waiter (the semaphore's and the starving ones) and
    /// stops the background tasks. The caller then drains the idle queue. Returns `false` if it
    /// was already closed.
    pub(crate) fn mark_closed(&self) -> bool {
        if !self.counts.close() {
            return false;
        }
        tracing::debug!(pool = %self.name(), "closing pool");
        self.permits.close();
        self.deadlines.close();
        self.landed.notify_waiters();
        self.events.notify_waiters();
        self.growth.notify_one();
        true
    }

    /// Closes the pool, giving checked-out connections until `timeout` to come back: returns
    /// once every connection is closed, or else, at the deadline, cancels the server work of
    /// every connection still alive (checked out: the idle ones are closed first, and the ones
    /// being closed have let their handle go), each CancelRequest bounded by
    /// [`CANCEL_TIMEOUT`], and returns how many it cancelled. Their guards close them when
    /// they come back (the pool is closed).
    ///
    /// # Cancel safety
    /// The pool is closed at the first poll; dropped while waiting, it cancels nothing;
    /// cancels already sent run to their end in the background.
    pub(crate) async fn close_within(self: &Arc<Self>, timeout: Duration) -> usize {
        let deadline = clock::deadline(Instant::now(), timeout);
        self.mark_closed();
        self.close_idle().await;
        loop {
            let notified = self.events.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.size() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        let cancels = self.revocable.take_live();
        let n = cancels.len();
        tracing::warn!(pool = %self.name(), connections = n, "close_timeout: connections still checked out; cancelling their server work");
        let sent: Vec<_> = cancels
            .into_iter()
            .map(|cancel| {
                self.runtime.spawn(async move {
                    let _ = tokio::time::timeout(CANCEL_TIMEOUT, cancel).await;
                })
            })
            .collect();
        for cancel in sent {
            let _ = cancel.await;
        }
        n
    }

    /// Resolves when the pool closes.
    pub(crate) async fn closed_signal(&self) {
        loop {
            let notified = self.events.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }

    // ----- Growth ------------------------------------------------------------------------

    /// Whether someone needs another connection: `min_size` not reached, permit holders
    /// starving beyond what is idle or already on its way, or — while connecting is known to
    /// fail — no probe in flight.
    pub(crate) fn wants_growth(&self) -> bool {
        let size = self.counts.size.load(SeqCst);
        let starving = self.starving.load(SeqCst);
        let connecting = self.counts.connecting.load(SeqCst);
        let coming = connecting + self.idle_count();
        size < self.min_size.load(Relaxed)
            || starving > coming
            || (self.down.load(SeqCst) && connecting == 0)
    }

    /// Wakes the grower if growth may be wanted. Cheap when it is not.
    pub(crate) fn request_growth(&self) {
        if !self.is_closed() && self.wants_growth() {
            self.growth.notify_one();
        }
    }

    /// Whether a failed connect should be retried: demand remains (the attempt's own
    /// reservation is part of `size`, hence `≤`).
    pub(crate) fn still_wanted(&self) -> bool {
        !self.is_closed()
            && (self.starving.load(SeqCst) > 0
                || self.counts.size.load(SeqCst) <= self.min_size.load(Relaxed)
                || self.down.load(SeqCst))
    }

    /// Reserves a slot for a new connection if growth is wanted, within `max_size` and
    /// `max_connecting`.
    pub(crate) fn try_reserve(self: &Arc<Self>) -> Option<Reservation<M>> {
        if self.is_closed() || !self.wants_growth() {
            return None;
        }
        self.counts
            .try_reserve(self.settings.max_connecting)
            .then(|| Reservation::new(Arc::clone(self)))
    }

    /// A connect attempt failed: remembers why (for `PoolTimeout` errors), and marks the pool
    /// down if retrying cannot fix the error or `fail_fast_after` failures came in a row; then
    /// starving waiters are woken to fail at once.
    pub(crate) fn connect_failed(&self, e: Error) {
        let failures = self.connect_failures.fetch_add(1, SeqCst).saturating_add(1);
        let limit = self.settings.fail_fast_after;
        let down = e.is_permanent_connect_error() || (limit > 0 && failures >= limit);
        if let Ok(mut last) = self.last_connect_error.lock() {
            *last = Some(Arc::new(e));
        }
        if down && !self.down.swap(true, SeqCst) {
            tracing::warn!(pool = %self.name(), failures, "connecting keeps failing; checkouts fail at once until an attempt succeeds");
            self.landed.notify_waiters();
        }
        self.events.notify_waiters();
    }

    /// A connect attempt succeeded: the pool is up again.
    pub(crate) fn connect_succeeded(&self) {
        self.connect_failures.store(0, SeqCst);
        if let Ok(mut last) = self.last_connect_error.lock() {
            *last = None;
        }
        if self.down.swap(false, SeqCst) {
            tracing::info!(pool = %self.name(), "connecting works again");
        }
    }

    /// The error a checkout fails with while the pool is down.
    fn unavailable_error(&self) -> Error {
        let kind = Kind::Unavailable {
            pool: self.name().to_owned(),
            failures: self.connect_failures.load(SeqCst),
        };
        match self.last_connect_error() {
            Some(last) => Error::with_source(kind, last),
            None => Error::new(kind),
        }
    }

    fn last_connect_error(&self) -> Option<Arc<Error>> {
        self.last_connect_error.lock().ok().and_then(|l| l.clone())
    }

    // ----- Sizes and statistics ----------------------------------------------------------

    /// Raises or lowers `max_size` (≤ the queue's capacity, checked by the caller) and
    /// `min_size`.
    pub(crate) fn resize(self: &Arc<Self>, min: usize, max: usize) {
        self.min_size.store(min, SeqCst);
        // Surplus idle connections are closed now; checked-out ones as they come back.
        let mut excess = self.counts.resize(&self.permits, max);
        while excess > 0 {
            let Some(slot) = self.try_pop() else { break };
            self.discard(slot);
            excess -= 1;
        }
        self.request_growth();
    }

    /// The gauges and the counters, which are reset to zero if `reset`.
    pub(crate) fn stats(&self, reset: bool) -> PoolStats {
        let mut s = PoolStats {
            pool_min: self.min_size.load(Relaxed),
            pool_max: self.counts.max_size.load(Relaxed),
            pool_size: self
                .counts
                .size
                .load(Relaxed)
                .saturating_sub(self.closing.load(Relaxed)),
            pool_available: self.idle_count(),
            connecting: self.counts.connecting.load(Relaxed),
            permits_available: self.permits.available(),
            ..PoolStats::default()
        };
        self.counters.fill(&mut s, reset);
        s.checkout_wait = self.histograms.wait.percentiles(reset);
        s.hold_time = self.histograms.hold.percentiles(reset);
        s.connect_time = self.histograms.connect.percentiles(reset);
        s
    }

    /// A `PoolTimeout` for a request that started at `start`: a snapshot of the pool and, as its
    /// source, the last connect error, or else what held the capacity while waiting on the
    /// server (connections awaiting cancellation, connects in flight), if anything did.
    pub(crate) fn timeout_error(&self, start: Instant) -> Error {
        let last = self.last_connect_error();
        let (cancels, connects) = (self.cancels.summary(), self.connects.summary());
        let info = PoolTimeoutInfo {
            pool: self.name().to_owned(),
            waited: start.elapsed(),
            size: self.counts.size.load(Relaxed),
            idle: self.idle_count(),
            waiting: self.counters.waiting(),
            last_connect_error: last.as_ref().map(|e| e.report()),
            cancelling: cancels.count,
            connecting: connects.count,
        };
        let kind = Kind::PoolTimeout(Box::new(info));
        match last {
            Some(last) => Error::with_source(kind, last),
            None if cancels.count + connects.count > 0 => {
                let held = Kind::CapacityHeld {
                    cancelling: cancels.count,
                    oldest_cancel: cancels.oldest,
                    connecting: connects.count,
                    oldest_connect: connects.oldest,
                };
                Error::with_source(kind, Error::new(held))
            }
            None => Error::new(kind),
        }
    }
}

#[cfg(test)]
impl<M: Manage> Core<M> {
    /// Permits owed to `shed` (promotions and shrinks not yet matched by a release).
    pub(crate) fn shed(&self) -> usize {
        self.counts.shed.load(SeqCst)
    }

    /// Waiters counted in the watchdog's deadline buckets.
    pub(crate) fn counted_waiters(&self) -> usize {
        self.deadlines.counted()
    }
}

#[cfg(test)]
mod tests;
