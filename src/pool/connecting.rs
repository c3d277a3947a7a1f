//! Growth: new connections are opened in BACKGROUND tasks, at most `max_connecting` at once,
//! never inline in a waiter (sqlx#3132's churn, HikariCP's spike test). A waiter takes whichever
//! comes first, a returned connection or a new one; a waiter that times out does not kill the
//! connect, whose connection lands in the idle queue for the next one.
//!
//! One grower task per pool ([`grow`], started by `open`) waits for the core's `growth` signal
//! and, while `Core::try_reserve` grants a [`Reservation`], spawns a [`connect_task`] for it
//! (HikariCP's `addConnectionExecutor`, psycopg_pool's worker). The core only signals, so it
//! depends on nothing here, and a slot freed on a thread outside the runtime (a guard dropped by
//! synchronous code) still starts its replacement.
//!
//! A connect holds its `Reservation` (`size` + `connecting`) from before the attempt until the
//! connection is pushed idle or the attempt is abandoned, so a cancelled or failed connect
//! gives its slot back. Failed attempts (an `Err`, a `connect_timeout`, a panic in
//! `Manage::connect` or the `configure` hook) are retried with psycopg's backoff (1 s,
//! doubling, ±10%), kept pool-wide (`backoff.rs`), while there is demand, and given up after
//! `reconnect_timeout`, calling `reconnect_failed`; the next attempt then waits for
//! maintenance's next tick or a waiter's demand, and still for the backoff. The reservation is
//! held across the backoff, so an outage never turns into a connection storm (deadpool#201).

use std::sync::Arc;

use tokio::time::Instant;

use super::clock::deadline;
use super::core::{Core, Reservation, CANCEL_TIMEOUT};
use super::errors::panicked;
use super::hooks::{catch_panic, configure};
use super::manage::{ConnState, Manage};
use super::stats::{add_us, bump};
use crate::error::{Error, Result};

/// The grower: until the pool closes, starts a connect for every reservation growth is
/// granted.
pub(crate) async fn grow<M: Manage>(core: Arc<Core<M>>) {
    loop {
        let wanted = core.growth().notified();
        tokio::pin!(wanted);
        wanted.as_mut().enable();
        if core.is_closed() {
            return;
        }
        while let Some(reservation) = core.try_reserve() {
            core.spawn(connect_task(reservation));
        }
        wanted.await;
    }
}

/// One background connect, retried with backoff while wanted. Every attempt, the first of a
/// fresh task included, waits for the pool-wide backoff, so neither a task that gave up nor a
/// waiter's demand can restart the attempts early.
async fn connect_task<M: Manage>(mut reservation: Reservation<M>) {
    let core = Arc::clone(reservation.core());
    let mut first_failure: Option<Instant> = None;
    loop {
        if let Some(until) = core.backoff().until() {
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = core.closed_signal() => return,
            }
            if first_failure.is_none() && !core.still_wanted() {
                return; // the demand that spawned this task is gone
            }
        }
        let started = Instant::now();
        bump(&core.counters().here().connections_num);
        let result = tokio::select! {
            r = open_one(&core) => r,
            () = core.closed_signal() => return,
        };
        add_us(&core.counters().here().connections_us, started.elapsed());
        match result {
            Ok(conn) => {
                tracing::debug!(pool = %core.name(), "new connection");
                core.connect_succeeded();
                core.backoff().reset();
                // Drop the reservation (connecting - 1) only after the push, so `wants_growth`
                // never sees the connection as neither coming nor idle.
                reservation.land(conn).into_idle();
                drop(reservation);
                core.events().notify_waiters();
                core.request_growth();
                return;
            }
            Err(e) => {
                bump(&core.counters().here().connections_errors);
                tracing::warn!(pool = %core.name(), error = %e.report(), "connection attempt failed");
                let wait = core.backoff().failed(core.jitter());
                core.connect_failed(e);
                if !core.still_wanted() {
                    return;
                }
                let since = *first_failure.get_or_insert(started);
                if since.elapsed() + wait > core.settings().reconnect_timeout {
                    tracing::warn!(pool = %core.name(), "reconnection attempts failed for reconnect_timeout; giving up");
                    if let Some(cb) = &core.settings().reconnect_failed {
                        cb(core.name());
                    }
                    core.backoff().give_up();
                    reservation.abandon();
                    return;
                }
            }
        }
    }
}

/// Connects and runs the `configure` hook, both within `connect_timeout` (a hung attempt would
/// otherwise count as "on its way" in `wants_growth` forever).
async fn open_one<M: Manage>(core: &Core<M>) -> Result<M::Connection> {
    let deadline = deadline(Instant::now(), core.settings().connect_timeout);
    match tokio::time::timeout_at(deadline, connect_and_configure(core)).await {
        Ok(result) => result,
        Err(_) => Err(Error::connect_timeout()),
    }
}

/// A panic in `Manage::connect` or in the hook is a failed attempt like an `Err` (same backoff),
/// not an unwinding task whose reservation would restart it at once.
async fn connect_and_configure<M: Manage>(core: &Core<M>) -> Result<M::Connection> {
    let manager = core.manager();
    let mut conn = catch_panic(manager.connect())
        .await
        .map_err(|()| panicked("`Manage::connect`"))??;
    if let Err(e) = configure(manager, core.settings(), &mut conn).await {
        if manager.state(&conn) == ConnState::Busy {
            let _ = tokio::time::timeout(CANCEL_TIMEOUT, manager.cancel(&conn)).await;
        }
        manager.close(conn).await;
        return Err(e);
    }
    Ok(conn)
}
