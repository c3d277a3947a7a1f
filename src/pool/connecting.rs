//! Growth: new connections are opened in BACKGROUND tasks, at most `max_connecting` at once,
//! never inline in a waiter (sqlx#3132's churn, HikariCP's spike test). A waiter takes whichever
//! comes first, a returned connection or a new one; a waiter that times out does not kill the
//! connect, whose connection lands in the idle queue for the next one.
//!
//! A connect holds a [`Reservation`] (`size` + `connecting`) from before the attempt until the
//! connection is pushed idle or the attempt is abandoned, so a cancelled or failed connect
//! gives its slot back. Failed attempts are retried with psycopg's backoff (1 s, doubling,
//! ±10% jitter) while there is demand, and given up after `reconnect_timeout`, calling
//! `reconnect_failed`; the next attempt then waits for maintenance's next tick or a waiter's
//! demand. The reservation is held across the backoff, so an outage never turns into a
//! connection storm (deadpool#201).

use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::Instant;

use super::core::{Core, Live};
use super::manage::Manage;
use super::stats::{add_ms, bump};
use crate::error::{Error, Result};

/// psycopg_pool's first reconnect delay (`AttemptWithBackoff.INITIAL_DELAY`).
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// psycopg_pool's jitter on each delay (`DELAY_JITTER`).
pub(crate) const BACKOFF_JITTER: f64 = 0.1;

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
    /// the reservation is dropped.
    fn land(&mut self, conn: M::Connection) -> Live<M> {
        self.landed = true;
        let slot = self.core.new_slot(conn);
        Live::new(Arc::clone(&self.core), slot)
    }
}

impl<M: Manage> Drop for Reservation<M> {
    fn drop(&mut self) {
        self.core.connecting.fetch_sub(1, SeqCst);
        if self.abandoned {
            self.core.release_size();
        } else if !self.landed {
            self.core.slot_freed();
        }
    }
}

impl<M: Manage> Core<M> {
    /// Whether someone needs another connection: `min_size` not reached, or permit holders
    /// are starving beyond what is idle or already on its way.
    fn wants_growth(&self) -> bool {
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

    /// Connects and runs the `configure` hook.
    async fn open_one(&self) -> Result<M::Connection> {
        let mut conn = self.manager.connect().await?;
        if let Some(configure) = &self.settings.configure {
            if let Err(e) = configure(&mut conn).await {
                self.manager.close(conn).await;
                return Err(Error::hook("configure", e));
            }
        }
        Ok(conn)
    }
}

/// One background connect, retried with backoff while wanted.
async fn connect_task<M: Manage>(mut reservation: Reservation<M>) {
    let core = Arc::clone(&reservation.core);
    let mut delay = INITIAL_BACKOFF;
    let mut first_failure: Option<Instant> = None;
    loop {
        let started = Instant::now();
        bump(&core.counters.connections_num);
        let result = tokio::select! {
            r = core.open_one() => r,
            () = core.closed_signal() => return,
        };
        add_ms(&core.counters.connections_ms, started.elapsed());
        match result {
            Ok(conn) => {
                tracing::debug!(pool = %core.name(), "new connection");
                core.set_last_connect_error(None);
                // Drop the reservation (connecting - 1) only after the push, so `wants_growth`
                // never sees the connection as neither coming nor idle.
                reservation.land(conn).into_idle();
                drop(reservation);
                core.events.notify_waiters();
                core.maybe_grow();
                return;
            }
            Err(e) => {
                bump(&core.counters.connections_errors);
                tracing::warn!(pool = %core.name(), error = %e, "connection attempt failed");
                core.set_last_connect_error(Some(e));
                core.events.notify_waiters();
                if !core.still_wanted() {
                    return;
                }
                let since = *first_failure.get_or_insert(started);
                let jitter = 1.0 + BACKOFF_JITTER * (2.0 * core.random() - 1.0);
                let wait = delay.mul_f64(jitter);
                if since.elapsed() + wait > core.settings.reconnect_timeout {
                    tracing::warn!(pool = %core.name(), "reconnection attempts failed for reconnect_timeout; giving up");
                    if let Some(cb) = &core.settings.reconnect_failed {
                        cb(core.name());
                    }
                    reservation.abandoned = true;
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = core.closed_signal() => return,
                }
                delay = delay.saturating_mul(2);
            }
        }
    }
}
