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
//! `Manage::connect` or the `configure` hook) are retried on the pool-wide schedule of
//! `backoff.rs` (250 ms, then one probe every ~550 ms while the server stays down), one attempt
//! at a time while failing, and only while someone still wants the connection: every wait ends
//! by checking demand again (a waiter, `min_size`, or the pool known down). They are given up
//! after `reconnect_timeout`, calling `reconnect_failed`; the next round then waits for
//! maintenance's next tick or a waiter's demand, and still for the backoff. A task waiting for
//! its turn holds its reservation, so an outage never turns into a connection storm
//! (deadpool#201); a success lets every waiting task connect at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::backoff::{Attempt, Failure, Turn};
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

/// One background connect, retried on the pool's schedule while wanted.
async fn connect_task<M: Manage>(mut reservation: Reservation<M>) {
    let core = Arc::clone(reservation.core());
    let round = core.backoff().round();
    loop {
        let attempt = match turn(&core, round).await {
            Ok(attempt) => attempt,
            Err(Stop::GaveUp) => return reservation.abandon(),
            Err(Stop::Unwanted) => return,
        };
        let started = Instant::now();
        bump(&core.counters().here().connections_num);
        let in_flight = core.connects().enter();
        let result = tokio::select! {
            r = open_one(&core) => r,
            () = core.closed_signal() => return,
        };
        drop(in_flight);
        let took = started.elapsed();
        add_us(&core.counters().here().connections_us, took);
        core.histograms().connect.record(took);
        match result {
            Ok(conn) => {
                tracing::debug!(pool = %core.name(), "new connection");
                core.connect_succeeded();
                attempt.succeeded();
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
                let retry = attempt.failed(started, Failure::of(&e), core.jitter());
                core.connect_failed(e);
                if !core.still_wanted() {
                    return;
                }
                if retry.failing_for + retry.wait > core.settings().reconnect_timeout {
                    tracing::warn!(pool = %core.name(), "reconnection attempts failed for reconnect_timeout; giving up");
                    if let Some(cb) = &core.settings().reconnect_failed {
                        cb(core.name());
                    }
                    core.backoff().give_up();
                    return reservation.abandon();
                }
            }
        }
    }
}

/// Why a connect task stops without connecting.
enum Stop {
    /// The pool closed, or nobody wants the connection any more.
    Unwanted,
    /// `reconnect_timeout` gave this round of attempts up.
    GaveUp,
}

/// Waits for this task's turn to attempt (`backoff.rs`): at once while connects succeed; after
/// the wait and one at a time while they fail. After every wait it checks again that the
/// connection is still wanted and the round still on.
async fn turn<M: Manage>(core: &Core<M>, round: u64) -> std::result::Result<Attempt<'_>, Stop> {
    let mut waited = false;
    loop {
        // Registered before the checks: an outcome reported in between still wakes this task.
        let event = core.events().notified();
        tokio::pin!(event);
        event.as_mut().enable();
        if core.is_closed() {
            return Err(Stop::Unwanted);
        }
        if waited {
            if core.backoff().round() != round {
                return Err(Stop::GaveUp);
            }
            if !core.still_wanted() {
                return Err(Stop::Unwanted); // the demand that started this task is gone
            }
        }
        match core.backoff().turn() {
            Turn::Go(attempt) => return Ok(attempt),
            Turn::Wait(until) => {
                let until = until.unwrap_or_else(|| deadline(Instant::now(), Duration::MAX));
                tokio::select! {
                    () = tokio::time::sleep_until(until) => {}
                    () = &mut event => {}
                }
                waited = true;
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
