//! Growth: new connections are opened in BACKGROUND tasks, at most `max_connecting` at once,
//! never inline in a waiter (sqlx#3132's churn, HikariCP's spike test). A waiter takes whichever
//! comes first, a returned connection or a new one; a waiter that times out does not kill the
//! connect, whose connection lands in the idle queue for the next one.
//!
//! A connect holds a [`Reservation`] (`size` + `connecting`) from before the attempt until the
//! connection is pushed idle or the attempt is abandoned, so a cancelled or failed connect
//! gives its slot back. Failed attempts (an `Err`, a `connect_timeout`, a panic in
//! `Manage::connect` or the `configure` hook) are retried with psycopg's backoff (1 s,
//! doubling, ±10% jitter), kept pool-wide, while there is demand, and given up after
//! `reconnect_timeout`, calling `reconnect_failed`; the next attempt then waits for
//! maintenance's next tick or a waiter's demand, and still for the backoff. The reservation is
//! held across the backoff, so an outage never turns into a connection storm (deadpool#201).

use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::Instant;

use super::checkout::left_in;
use super::core::{deadline, Core, Live, CANCEL_TIMEOUT};
use super::manage::{ConnState, Manage};
use super::stats::{add_us, bump};
use crate::error::{Error, Kind, Result};

/// psycopg_pool's first reconnect delay (`AttemptWithBackoff.INITIAL_DELAY`).
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// psycopg_pool's jitter on each delay (`DELAY_JITTER`).
pub(crate) const BACKOFF_JITTER: f64 = 0.1;

/// Polls `fut`, turning a panic inside it into `Err(())`.
async fn catch_panic<F: Future>(fut: F) -> std::result::Result<F::Output, ()> {
    let mut fut = pin!(fut);
    poll_fn(
        move |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll.map(Ok),
            Err(_) => Poll::Ready(Err(())),
        },
    )
    .await
}

/// The last connect error after a panic in user code (`which`: the trait method or hook).
fn panicked(which: &'static str) -> Error {
    Error::with_source(Kind::Hook(which), "connect task panicked")
}

/// One unit of `size` and one of `connecting`, held by a connect in progress.
pub(crate) struct Reservation<M: Manage> {
    core: Arc<Core<M>>,
    landed: bool,
    /// Given up after `reconnect_timeout`: free the slot without starting another connect at
    /// once (maintenance retries at its next tick, or a waiter on demand).
    abandoned: bool,
}

impl<M: Manage> Reservation<M> {
    /// The connection arrived: `size` moves to the connection; `connecting` goes down when
    /// the reservation is dropped. `landed` is set only once the `Live` guard owns the unit of
    /// `size`, so a panic before that point still frees it (the reservation's drop does).
    fn land(&mut self, conn: M::Connection) -> Live<M> {
        let live = Live::new(Arc::clone(&self.core), self.core.new_slot(conn));
        self.landed = true;
        live
    }
}

impl<M: Manage> Drop for Reservation<M> {
    fn drop(&mut self) {
        self.core.connecting.fetch_sub(1, SeqCst);
        // Unwinding: do not start another connect from here (a panic that escaped
        // `catch_panic` would otherwise restart at once, again and again).
        if self.abandoned || std::thread::panicking() {
            self.core.release_size();
        } else if !self.landed {
            self.core.slot_freed();
        }
    }
}

impl<M: Manage> Core<M> {
    /// Whether someone needs another connection: `min_size` not reached, or permit holders
    /// are starving beyond what is idle or already on its way.
    pub(crate) fn wants_growth(&self) -> bool {
        let size = self.size.load(SeqCst);
        let starving = self.starving.load(SeqCst);
        let coming = self.connecting.load(SeqCst) + self.idle_count();
        size < self.min_size.load(Relaxed) || starving > coming
    }

    /// Reserves a slot for a new connection, within `max_size` and `max_connecting`.
    fn try_reserve(self: &Arc<Self>) -> Option<Reservation<M>> {
        let max_connecting = self.settings.max_connecting;
        self.connecting
            .fetch_update(SeqCst, SeqCst, |c| (c < max_connecting).then_some(c + 1))
            .ok()?;
        let max = self.max_size.load(SeqCst);
        if self
            .size
            .fetch_update(SeqCst, SeqCst, |s| (s < max).then_some(s + 1))
            .is_err()
        {
            self.connecting.fetch_sub(1, SeqCst);
            return None;
        }
        Some(Reservation {
            core: Arc::clone(self),
            landed: false,
            abandoned: false,
        })
    }

    /// Starts background connects while there is demand and room. Cheap when there is none.
    pub(crate) fn maybe_grow(self: &Arc<Self>) {
        while !self.is_closed() && self.wants_growth() {
            let Ok(handle) = Handle::try_current() else {
                return;
            };
            let Some(reservation) = self.try_reserve() else {
                return;
            };
            handle.spawn(connect_task(reservation));
        }
    }

    /// Whether a failed connect should be retried: demand remains (this attempt's own
    /// reservation is part of `size`, hence `≤`).
    fn still_wanted(&self) -> bool {
        !self.is_closed()
            && (self.starving.load(SeqCst) > 0
                || self.size.load(SeqCst) <= self.min_size.load(Relaxed))
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

    /// Connects and runs the `configure` hook, both within `connect_timeout` (a hung attempt
    /// would otherwise count as "on its way" in `wants_growth` forever).
    async fn open_one(&self) -> Result<M::Connection> {
        let deadline = deadline(Instant::now(), self.settings.connect_timeout);
        match tokio::time::timeout_at(deadline, self.connect_and_configure()).await {
            Ok(result) => result,
            Err(_) => Err(Error::connect_timeout()),
        }
    }

    /// A panic in `Manage::connect` or in the hook is a failed attempt like an `Err` (same
    /// backoff), not an unwinding task whose reservation would restart it at once.
    async fn connect_and_configure(&self) -> Result<M::Connection> {
        let mut conn = catch_panic(self.manager.connect())
            .await
            .map_err(|()| panicked("Manage::connect"))??;
        if let Some(configure) = &self.settings.configure {
            let result = match catch_panic(configure(&mut conn)).await {
                Ok(r) => r.map_err(|e| Error::hook("configure", e)),
                Err(()) => Err(panicked("configure")),
            };
            // psycopg: a configure hook must leave the connection idle (a `BEGIN` left open
            // would be handed to the first user as if it were theirs).
            let result = result.and_then(|()| match self.manager.state(&conn) {
                ConnState::Idle => Ok(()),
                state => Err(left_in(state, "configure")),
            });
            if let Err(e) = result {
                if self.manager.state(&conn) == ConnState::Busy {
                    let _ = tokio::time::timeout(CANCEL_TIMEOUT, self.manager.cancel(&conn)).await;
                }
                self.manager.close(conn).await;
                return Err(e);
            }
        }
        Ok(conn)
    }
}

/// One background connect, retried with backoff while wanted. Every attempt, the first of a
/// fresh task included, waits for the pool-wide [`Backoff`], so neither a task that gave up
/// nor a waiter's `maybe_grow` can restart the attempts early.
async fn connect_task<M: Manage>(mut reservation: Reservation<M>) {
    let core = Arc::clone(&reservation.core);
    let mut first_failure: Option<Instant> = None;
    loop {
        if let Some(until) = core.backoff_until() {
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = core.closed_signal() => return,
            }
            if first_failure.is_none() && !core.still_wanted() {
                return; // the demand that spawned this task is gone
            }
        }
        let started = Instant::now();
        bump(&core.counters.here().connections_num);
        let result = tokio::select! {
            r = core.open_one() => r,
            () = core.closed_signal() => return,
        };
        add_us(&core.counters.here().connections_us, started.elapsed());
        match result {
            Ok(conn) => {
                tracing::debug!(pool = %core.name(), "new connection");
                core.set_last_connect_error(None);
                core.backoff_reset();
                // Drop the reservation (connecting - 1) only after the push, so `wants_growth`
                // never sees the connection as neither coming nor idle.
                reservation.land(conn).into_idle();
                drop(reservation);
                core.events.notify_waiters();
                core.maybe_grow();
                return;
            }
            Err(e) => {
                bump(&core.counters.here().connections_errors);
                tracing::warn!(pool = %core.name(), error = %e, "connection attempt failed");
                core.set_last_connect_error(Some(e));
                let wait = core.backoff_failed();
                core.events.notify_waiters();
                if !core.still_wanted() {
                    return;
                }
                let since = *first_failure.get_or_insert(started);
                if since.elapsed() + wait > core.settings.reconnect_timeout {
                    tracing::warn!(pool = %core.name(), "reconnection attempts failed for reconnect_timeout; giving up");
                    if let Some(cb) = &core.settings.reconnect_failed {
                        cb(core.name());
                    }
                    core.backoff_give_up();
                    reservation.abandoned = true;
                    return;
                }
            }
        }
    }
}

/// The pool-wide reconnect backoff (psycopg's `AttemptWithBackoff`, shared by every connect
/// task): the next attempt is not before `not_before`; each failure doubles `delay`.
#[derive(Debug)]
pub(crate) struct Backoff {
    not_before: Option<Instant>,
    delay: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            not_before: None,
            delay: INITIAL_BACKOFF,
        }
    }
}

impl<M: Manage> Core<M> {
    fn backoff_until(&self) -> Option<Instant> {
        let until = self.backoff.lock().ok()?.not_before?;
        (until > Instant::now()).then_some(until)
    }

    /// A failed attempt: pushes the next one back by the current delay (±10%), doubles the
    /// delay, and returns the wait.
    fn backoff_failed(&self) -> Duration {
        let jitter = 1.0 + BACKOFF_JITTER * (2.0 * self.random() - 1.0);
        let Ok(mut b) = self.backoff.lock() else {
            return INITIAL_BACKOFF;
        };
        let wait = b.delay.mul_f64(jitter);
        b.not_before = Instant::now().checked_add(wait);
        b.delay = b.delay.saturating_mul(2);
        wait
    }

    /// After `reconnect_timeout`: the next round of attempts starts from the first delay again
    /// (still not before the wait already scheduled).
    fn backoff_give_up(&self) {
        if let Ok(mut b) = self.backoff.lock() {
            b.delay = INITIAL_BACKOFF;
        }
    }

    fn backoff_reset(&self) {
        if let Ok(mut b) = self.backoff.lock() {
            *b = Backoff::default();
        }
    }
}
