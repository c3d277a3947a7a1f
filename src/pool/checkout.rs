//! The checkout path: one deadline covers queueing for a permit, waiting for a connection to
//! land, and running the `check` hook (psycopg#709/#711, HikariCP's hard timeout). Queueing for
//! a permit registers no timer: the pool's one wait watchdog (`waiting.rs`) bounds it.
//!
//! Fast path (uncontended, no `check` hook): one `try_acquire`, one `pop`, one `is_closed` peek,
//! a few relaxed atomics; no lock, no allocation, no clock read (core.rs invariant 9).
//! Everything the future owns across an await is a guard (`Permit`, `PooledConnection`,
//! `Waiting`, `Starving`, tokio's `Acquire` and `Notified`), so it can be dropped anywhere.

use std::error::Error as StdError;
use std::fmt;
use std::sync::atomic::{fence, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::TryAcquireError;
use tokio::time::Instant;

use super::clock::{Nanos, NEVER};
use super::connecting::{BACKOFF_JITTER, INITIAL_BACKOFF};
use super::core::{deadline, Core, Permit};
use super::guard::PooledConnection;
use super::manage::{ConnState, Manage};
use super::stats::{add_us, bump, Counters};
use crate::error::{Error, Kind, PoolTimeoutInfo, Result};

/// The error for a hook that returned `Ok` but left the connection not idle (psycopg:
/// "connection left in status ... by configure function").
pub(crate) fn left_in(state: ConnState, hook: &'static str) -> Error {
    Error::with_source(
        Kind::Hook(hook),
        format!("connection left in status {state:?} by {hook} function"),
    )
}

/// Raises a gauge for as long as it lives.
struct Gauge<'a>(&'a AtomicUsize);

impl<'a> Gauge<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, SeqCst);
        Gauge(counter)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// Counts a request in `requests_waiting` for as long as it lives, on the striped counters
/// (stats.rs), so a waiter writes no line shared with the other workers.
struct Waiting<'a>(&'a Counters);

impl<'a> Waiting<'a> {
    fn begin(counters: &'a Counters) -> Self {
        bump(&counters.here().waits_begun);
        Waiting(counters)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        bump(&self.0.here().waits_ended);
    }
}

impl<M: Manage> Core<M> {
    /// Checks a connection out, waiting at most `timeout`.
    pub(crate) async fn checkout(
        self: &Arc<Self>,
        timeout: Duration,
    ) -> Result<PooledConnection<M>> {
        match self.permits.try_acquire() {
            Ok(()) => {
                let permit = Permit::adopt(Arc::clone(self));
                if self.settings.check.is_none() {
                    if let Some(slot) = self.pop_live() {
                        bump(&self.counters.here().requests_num);
                        tracing::debug!(pool = %self.name(), "checkout");
                        return Ok(PooledConnection::new(slot, permit, self.usage_start()));
                    }
                }
                self.checkout_slow(Some(permit), timeout).await
            }
            Err(TryAcquireError::Closed) => {
                bump(&self.counters.here().requests_num);
                Err(self.failed(Error::pool_closed()))
            }
            // Straight to the queue: a second `try_acquire` nanoseconds later would only
            // re-read the permit word every worker writes.
            Err(TryAcquireError::NoPermits) => self.checkout_slow(None, timeout).await,
        }
    }

    async fn checkout_slow(
        self: &Arc<Self>,
        permit: Option<Permit<M>>,
        timeout: Duration,
    ) -> Result<PooledConnection<M>> {
        bump(&self.counters.here().requests_num);
        let start = Instant::now();
        let mut waiting = None;
        let result = self
            .wait_for_connection(permit, start, timeout, &mut waiting)
            .await;
        if waiting.is_some() {
            add_us(&self.counters.here().requests_wait_us, start.elapsed());
        }
        drop(waiting);
        result.map_err(|e| self.failed(e))
    }

    /// The slow path's loop, entered with the permit `checkout` took, or with none if it found
    /// none free (then it queues at once). `waiting` is set (and counted in
    /// `requests_waiting`) the first time the request has to wait; it is refused at once if
    /// `max_waiting` are already waiting.
    async fn wait_for_connection<'a>(
        self: &'a Arc<Self>,
        permit: Option<Permit<M>>,
        start: Instant,
        timeout: Duration,
        waiting: &mut Option<Waiting<'a>>,
    ) -> Result<PooledConnection<M>> {
        let deadline = deadline(start, timeout);
        let mut permit = match permit {
            Some(p) => p,
            // `checkout` has just found no permit free: queue for one.
            None => {
                self.start_waiting(waiting)?;
                // No timer per waiter: the watchdog hands a waiter near its deadline a permit
                // with no connection behind it, and the starving stage below then times it out
                // exactly (waiting.rs). `timeout` still counts from `start`: nothing has
                // awaited since.
                let acquire = self.deadlines.acquire(&self.permits, &self.shed, timeout);
                match acquire.await {
                    Ok(()) => Permit::adopt(Arc::clone(self)),
                    Err(_) => return Err(Error::pool_closed()),
                }
            }
        };
        let mut check_failures = 0u32;
        loop {
            if self.is_closed() {
                return Err(Error::pool_closed());
            }
            let slot = match self.pop_live() {
                Some(slot) => slot,
                None => {
                    self.start_waiting(waiting)?;
                    let _starving = Gauge::enter(&self.starving);
                    let notified = self.landed.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    fence(SeqCst); // core.rs invariant 8
                    match self.pop_live() {
                        Some(slot) => slot,
                        None => {
                            if self.is_closed() {
                                return Err(Error::pool_closed());
                            }
                            self.maybe_grow();
                            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                                return Err(self.timeout_error(start));
                            }
                            continue;
                        }
                    }
                }
            };
            let mut conn = PooledConnection::new(slot, permit, self.usage_start());
            let Some(check) = &self.settings.check else {
                tracing::debug!(pool = %self.name(), "checkout");
                return Ok(conn);
            };
            // Dropping `conn` mid-check (deadline or cancel) returns it through `return_slot`,
            // which decides from its state (a query cut short means Busy: cancel and close).
            let failure = match tokio::time::timeout_at(deadline, check(&mut conn)).await {
                // A check that "succeeds" but leaves a transaction open or a query running
                // must not hand that state to the caller (psycopg checks the status too).
                Ok(Ok(())) => match self.manager.state(&conn) {
                    ConnState::Idle => {
                        tracing::debug!(pool = %self.name(), "checkout");
                        return Ok(conn);
                    }
                    state => left_in(state, "check"),
                },
                Ok(Err(e)) => Error::hook("check", e),
                Err(_) => return Err(self.timeout_error(start)),
            };
            tracing::warn!(pool = %self.name(), error = %failure, "check failed; discarding connection");
            bump(&self.counters.here().connections_lost);
            let Some((slot, p)) = conn.into_parts() else {
                return Err(failure);
            };
            self.discard(slot);
            permit = p;
            // psycopg#709: a check that keeps failing must not spin. The first retry is
            // immediate (one dead connection is common); later ones back off like
            // reconnects (1 s, doubling, ±10%), all under the one deadline.
            check_failures += 1;
            if check_failures > 1 {
                let delay = INITIAL_BACKOFF.saturating_mul(1 << (check_failures - 2).min(16));
                let jitter = 1.0 + BACKOFF_JITTER * (2.0 * self.random() - 1.0);
                let wake = Instant::now() + delay.mul_f64(jitter);
                tokio::time::sleep_until(wake.min(deadline)).await;
                if wake >= deadline {
                    return Err(self.timeout_error(start));
                }
            }
        }
    }

    /// Counts this request as waiting (once), enforcing `max_waiting` (psycopg: refuse when
    /// `max_waiting` requests are already waiting).
    fn start_waiting<'a>(&'a self, waiting: &mut Option<Waiting<'a>>) -> Result<()> {
        if waiting.is_some() {
            return Ok(());
        }
        let max_waiting = self.settings.max_waiting;
        let gauge = Waiting::begin(&self.counters);
        if max_waiting > 0 && self.counters.waiting() > max_waiting {
            return Err(Error::too_many_requests(self.name(), max_waiting));
        }
        bump(&self.counters.here().requests_queued);
        *waiting = Some(gauge);
        Ok(())
    }

    /// The guard's start time for `usage_ms`; no clock read unless `usage_stats` is on.
    fn usage_start(&self) -> Nanos {
        if self.settings.usage_stats {
            self.clock.now()
        } else {
            NEVER
        }
    }

    fn failed(&self, e: Error) -> Error {
        bump(&self.counters.here().requests_errors);
        tracing::debug!(pool = %self.name(), error = %e, "checkout failed");
        e
    }

    /// A `PoolTimeout` carrying a snapshot and, as its source, the last connect error.
    pub(crate) fn timeout_error(&self, start: Instant) -> Error {
        let last = self.last_connect_error();
        let info = PoolTimeoutInfo {
            pool: self.name().to_owned(),
            waited: start.elapsed(),
            size: self.size.load(Relaxed),
            idle: self.idle_count(),
            waiting: self.counters.waiting(),
            last_connect_error: last.as_ref().map(|e| e.to_string()),
        };
        match last {
            Some(last) => Error::with_source(Kind::PoolTimeout(Box::new(info)), SharedError(last)),
            None => Error::pool_timeout(info, None),
        }
    }
}

/// The last connect error, shared by every timeout that reports it (`Error` is not `Clone`).
/// Transparent: it displays as, and has the source chain of, the error it wraps.
struct SharedError(Arc<Error>);

impl fmt::Debug for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl StdError for SharedError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}
