//! The checkout path. One deadline covers queueing for a permit, waiting for a connection to
//! land, and running the `check` hook (psycopg#709/#711, HikariCP's hard timeout).
//!
//! Fast path (a permit free, an idle connection, no `check` hook, no leak detection): one
//! `try_acquire`, one `pop`, one `check_closed` peek and a few relaxed atomics; no lock, no
//! allocation, no timer, and no clock read unless a lifetime is near (`clock.rs`). The slow
//! path runs in named stages:
//! [`queue_for_permit`](Core::queue_for_permit) when no permit was free, [`take_connection`]
//! (pop, or the starving stage until one lands), then [`run_check`]. Everything the future owns
//! across an await is a guard (`Permit`, `PooledConnection`, `Waiting`, the starving gauge,
//! tokio's `Acquire` and `Notified`), so it can be dropped anywhere.

use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::backoff::doubling;
use super::clock::{deadline, Nanos};
use super::core::{Core, Landing, Permit, Slot};
use super::errors::left_in;
use super::guard::PooledConnection;
use super::manage::{ConnState, Manage};
use super::stats::{add_us, bump, Counters};
use crate::error::{Error, Result};

/// Checks a connection out, waiting at most `timeout`. `at` is the caller's call site, kept
/// only when leak detection is on.
pub(crate) async fn checkout<M: Manage>(
    core: &Arc<Core<M>>,
    timeout: Duration,
    at: &'static Location<'static>,
) -> Result<PooledConnection<M>> {
    match core.try_permit() {
        Some(permit) => {
            // The fast path only without a `check` hook and without leak detection (both
            // handled by the slow path's stages): one test of one flag.
            if core.plain_checkout() {
                if let Some(slot) = core.pop_live() {
                    bump(&core.counters().here().requests_num);
                    tracing::debug!(pool = %core.name(), "checkout");
                    return Ok(PooledConnection::new(slot, permit, usage_start(core), 0));
                }
            }
            checkout_slow(core, Some(permit), timeout, at).await
        }
        None if core.is_closed() => {
            bump(&core.counters().here().requests_num);
            Err(failed(core, Error::pool_closed()))
        }
        // Straight to the queue: a second `try_acquire` nanoseconds later would only re-read
        // the permit word every worker writes.
        None => checkout_slow(core, None, timeout, at).await,
    }
}

/// The checkout's registration with the leak watch if leak detection is on (`leaks.rs`), else
/// 0. Made as the guard is built, so the guard is never moved to be updated.
#[inline]
fn leak_key<M: Manage>(
    core: &Core<M>,
    at: &'static Location<'static>,
    slot: &Slot<M::Connection>,
) -> u64 {
    match core.leaks() {
        Some(leaks) => leaks.enter(at, slot.info()),
        None => 0,
    }
}

/// The slow path with its accounting: `requests_num`, and the wait time of a request that had
/// to wait.
async fn checkout_slow<M: Manage>(
    core: &Arc<Core<M>>,
    permit: Option<Permit<M>>,
    timeout: Duration,
    at: &'static Location<'static>,
) -> Result<PooledConnection<M>> {
    bump(&core.counters().here().requests_num);
    let start = Instant::now();
    let mut waiting = None;
    let result = wait_for_connection(core, permit, (start, timeout), at, &mut waiting).await;
    if waiting.is_some() {
        let waited = start.elapsed();
        add_us(&core.counters().here().requests_wait_us, waited);
        core.histograms().wait.record(waited);
    }
    drop(waiting);
    result.map_err(|e| failed(core, e))
}

/// The slow path's stages, entered with the permit `checkout` took, or with none (then it
/// queues at once). `waiting` is set (and counted in `requests_waiting`) the first time the
/// request has to wait; it is refused at once if `max_waiting` are already waiting.
async fn wait_for_connection<'a, M: Manage>(
    core: &'a Arc<Core<M>>,
    permit: Option<Permit<M>>,
    (start, timeout): (Instant, Duration),
    at: &'static Location<'static>,
    waiting: &mut Option<Waiting<'a>>,
) -> Result<PooledConnection<M>> {
    let deadline = deadline(start, timeout);
    let mut permit = match permit {
        Some(permit) => permit,
        None => {
            start_waiting(core, waiting)?;
            // `timeout` still counts from `start`: nothing has awaited since.
            core.queue_for_permit(timeout).await?
        }
    };
    let mut failed_checks = 0u32;
    loop {
        let slot = take_connection(core, deadline, start, waiting).await?;
        let key = leak_key(core, at, &slot);
        let conn = PooledConnection::new(slot, permit, usage_start(core), key);
        permit = match run_check(core, conn, deadline, start).await? {
            Checked::Ready(conn) => return Ok(conn),
            Checked::Failed(permit) => permit,
        };
        // psycopg#709: a check that keeps failing must not spin. The first retry is immediate
        // (one dead connection is common); later ones back off like reconnects (1 s, doubling,
        // ±10%), all under the one deadline.
        failed_checks += 1;
        if failed_checks > 1 {
            let wake = Instant::now() + core.jitter().spread(doubling(failed_checks - 2));
            tokio::time::sleep_until(wake.min(deadline)).await;
            if wake >= deadline {
                return Err(core.timeout_error(start));
            }
        }
    }
}

/// Holding a permit: an idle connection now, or the next one to land before `deadline`.
async fn take_connection<'a, M: Manage>(
    core: &'a Arc<Core<M>>,
    deadline: Instant,
    start: Instant,
    waiting: &mut Option<Waiting<'a>>,
) -> Result<Slot<M::Connection>> {
    loop {
        if core.is_closed() {
            return Err(Error::pool_closed());
        }
        if let Some(slot) = core.pop_live() {
            return Ok(slot);
        }
        start_waiting(core, waiting)?;
        match core.await_landing(deadline).await {
            Landing::Slot(slot) => return Ok(slot),
            Landing::Woken => {}
            Landing::TimedOut => return Err(core.timeout_error(start)),
            Landing::Closed => return Err(Error::pool_closed()),
            Landing::Down(e) => return Err(e),
        }
    }
}

/// What the `check` hook decided.
enum Checked<M: Manage> {
    /// Hand it out.
    Ready(PooledConnection<M>),
    /// It failed and was discarded; the permit is kept for another try.
    Failed(Permit<M>),
}

/// Runs the `check` hook, if any, within the deadline. Dropping `conn` mid-check (deadline or
/// cancel) returns it through the return path, which decides from its state (a query cut short
/// means `Busy`: cancel and close).
async fn run_check<M: Manage>(
    core: &Arc<Core<M>>,
    mut conn: PooledConnection<M>,
    deadline: Instant,
    start: Instant,
) -> Result<Checked<M>> {
    let Some(check) = &core.settings().check else {
        tracing::debug!(pool = %core.name(), "checkout");
        return Ok(Checked::Ready(conn));
    };
    let failure = match tokio::time::timeout_at(deadline, check(&mut conn)).await {
        // A check that "succeeds" but leaves a transaction open or a query running must not
        // hand that state to the caller (psycopg checks the status too).
        Ok(Ok(())) => match core.manager().state(&conn) {
            ConnState::Idle | ConnState::Dirty => {
                tracing::debug!(pool = %core.name(), "checkout");
                return Ok(Checked::Ready(conn));
            }
            state => left_in(state, "check"),
        },
        Ok(Err(e)) => Error::hook("check", e),
        Err(_) => return Err(core.timeout_error(start)),
    };
    tracing::warn!(pool = %core.name(), error = %failure, "check failed; discarding connection");
    bump(&core.counters().here().connections_lost);
    let Some((slot, permit)) = conn.into_parts() else {
        return Err(failure);
    };
    core.discard(slot);
    Ok(Checked::Failed(permit))
}

/// Counts a request in `requests_waiting` for as long as it lives, on the striped counters, so
/// a waiter writes no line shared with the other workers.
struct Waiting<'a>(&'a Counters);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        bump(&self.0.here().waits_ended);
    }
}

/// Counts this request as waiting (once), enforcing `max_waiting` (psycopg: refuse when
/// `max_waiting` requests are already waiting).
fn start_waiting<'a, M: Manage>(
    core: &'a Core<M>,
    waiting: &mut Option<Waiting<'a>>,
) -> Result<()> {
    if waiting.is_some() {
        return Ok(());
    }
    let counters = core.counters();
    bump(&counters.here().waits_begun);
    let gauge = Waiting(counters);
    let max_waiting = core.settings().max_waiting;
    if max_waiting > 0 && counters.waiting() > max_waiting {
        return Err(Error::too_many_requests(core.name(), max_waiting));
    }
    bump(&counters.here().requests_queued);
    *waiting = Some(gauge);
    Ok(())
}

/// The guard's start time for `usage_ms`; no clock read unless `usage_stats` is on.
fn usage_start<M: Manage>(core: &Core<M>) -> Nanos {
    if core.settings().usage_stats {
        core.clock().now()
    } else {
        Nanos::NEVER
    }
}

fn failed<M: Manage>(core: &Core<M>, e: Error) -> Error {
    bump(&core.counters().here().requests_errors);
    tracing::debug!(pool = %core.name(), error = %e, "checkout failed");
    e
}

#[cfg(test)]
mod tests {
    //! The bounded wait (`waiting.rs`) through the real checkout path and core, under paused
    //! time. Each test names the property it checks; each ends by checking that permits are
    //! conserved and no count is left behind.

    use std::sync::Mutex;

    use tokio::task::JoinHandle;

    use super::*;
    use crate::pool::testing::{self, Numbered};

    const TIMEOUT: Duration = Duration::from_secs(30);

    type Pool = Arc<Core<Numbered>>;
    type Guard = PooledConnection<Numbered>;

    fn spawn_watchdog(m: &Pool) -> JoinHandle<()> {
        let m = Arc::clone(m);
        tokio::spawn(async move { m.watch_deadlines().await })
    }

    /// Once everything is back: every permit is free, no `shed` is pending, every connection
    /// is idle and no waiter is counted.
    fn assert_settled(m: &Pool) {
        let max = m.settings().max_size;
        assert_eq!(m.counted_waiters(), 0, "stale count");
        assert_eq!(m.shed(), 0, "shed left");
        assert_eq!(m.stats(false).permits_available, max, "permits");
        assert_eq!(m.idle_count(), max, "connections");
    }

    /// Spawns a checkout that reports when it ended and how.
    fn waiter(m: &Pool, timeout: Duration) -> JoinHandle<(Instant, Result<Guard>)> {
        let m = Arc::clone(m);
        tokio::spawn(async move {
            let r = checkout(&m, timeout, Location::caller()).await;
            (Instant::now(), r)
        })
    }

    /// Lets every runnable task run (paused time does not advance while tasks are runnable).
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_fails_exactly_at_its_deadline() {
        let m = testing::filled(1, TIMEOUT);
        let watchdog = spawn_watchdog(&m);
        let held = checkout(&m, TIMEOUT, Location::caller()).await.unwrap();
        let t0 = Instant::now();
        let w = waiter(&m, TIMEOUT);
        settle().await;
        assert_eq!(m.counted_waiters(), 1, "queued and counted, no timer");
        // One grain before the deadline nothing has been promoted yet.
        tokio::time::sleep(TIMEOUT - TIMEOUT / 8 - Duration::from_millis(1)).await;
        assert_eq!(m.shed(), 0);
        // One grain before its bucket starts (here: its deadline), it is promoted to starving.
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!((m.shed(), m.counted_waiters()), (1, 0));
        let (at, r) = w.await.unwrap();
        assert!(r.unwrap_err().is_pool_timeout());
        assert_eq!(at, t0 + TIMEOUT, "not earlier, not later");
        drop(held);
        assert_settled(&m);
        m.mark_closed();
        watchdog.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn short_waits_are_never_promoted() {
        let m = testing::filled(2, TIMEOUT);
        let watchdog = spawn_watchdog(&m);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let m = Arc::clone(&m);
                tokio::spawn(async move {
                    for _ in 0..50 {
                        let g = checkout(&m, TIMEOUT, Location::caller()).await.unwrap();
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        drop(g);
                        // No promotion: the bucket for the earliest waiter is far off.
                        assert_eq!(m.shed(), 0);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_settled(&m);
        m.mark_closed();
        watchdog.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn fifo_order_is_kept_through_a_promotion() {
        let m = testing::filled(1, TIMEOUT);
        let watchdog = spawn_watchdog(&m);
        let held = checkout(&m, TIMEOUT, Location::caller()).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (m, order) = (Arc::clone(&m), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                let g = checkout(&m, TIMEOUT, Location::caller()).await.unwrap();
                order.lock().unwrap().push(i);
                tokio::task::yield_now().await;
                drop(g);
            }));
            settle().await; // queue them in index order
        }
        // Past the head's bucket start: the head has been promoted and is starving.
        tokio::time::sleep(TIMEOUT - Duration::from_secs(1)).await;
        assert!(m.shed() >= 1, "the head was promoted");
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        assert_settled(&m);
        m.mark_closed();
        watchdog.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_leaks_no_permit_and_no_count() {
        let m = testing::filled(1, TIMEOUT);
        let watchdog = spawn_watchdog(&m);
        let held = checkout(&m, TIMEOUT, Location::caller()).await.unwrap();
        // Cancelled while queued.
        let queued = waiter(&m, TIMEOUT);
        settle().await;
        assert_eq!(m.counted_waiters(), 1);
        queued.abort();
        assert!(queued.await.unwrap_err().is_cancelled());
        assert_eq!(m.counted_waiters(), 0);
        // Cancelled after its promotion, while starving.
        let promoted = waiter(&m, TIMEOUT);
        tokio::time::sleep(TIMEOUT - Duration::from_secs(1)).await;
        assert_eq!(m.shed(), 1, "promoted");
        assert_eq!(m.counted_waiters(), 0, "it left the queue");
        promoted.abort();
        assert!(promoted.await.unwrap_err().is_cancelled());
        assert_eq!(m.shed(), 0, "its extra permit was forgotten");
        drop(held);
        assert_settled(&m);
        m.mark_closed();
        watchdog.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn close_wakes_every_waiter_queued_or_promoted() {
        let m = testing::filled(1, TIMEOUT);
        let watchdog = spawn_watchdog(&m);
        let held = checkout(&m, TIMEOUT, Location::caller()).await.unwrap();
        let early = waiter(&m, TIMEOUT);
        tokio::time::sleep(TIMEOUT - Duration::from_secs(1)).await; // `early` promoted
        let late = waiter(&m, TIMEOUT); // still queued
        settle().await;
        let t = Instant::now();
        m.mark_closed();
        for w in [early, late] {
            let (at, r) = w.await.unwrap();
            assert!(r.unwrap_err().is_pool_closed());
            assert_eq!(at, t, "at once");
        }
        watchdog.await.unwrap();
        drop(held);
        assert_eq!(m.counted_waiters(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn mixed_timeouts_each_fail_exactly_at_their_own_deadline() {
        let m = testing::filled(1, TIMEOUT);
        let watchdog = spawn_watchdog(&m);
        let held = checkout(&m, TIMEOUT, Location::caller()).await.unwrap();
        let t0 = Instant::now();
        // Queued in this order; the second's deadline is earlier than the first's, the fourth's is
        // far past the ring (it shares a slot with an earlier bucket and is promoted early).
        let timeouts = [
            TIMEOUT,
            Duration::from_secs(5),
            Duration::from_millis(1),
            Duration::from_secs(3600),
            TIMEOUT * 2,
        ];
        let mut ws = Vec::new();
        for t in timeouts {
            ws.push(waiter(&m, t));
            settle().await;
        }
        for (w, t) in ws.into_iter().zip(timeouts) {
            let (at, r) = w.await.unwrap();
            assert!(r.unwrap_err().is_pool_timeout());
            assert_eq!(at, t0 + t, "timeout {t:?}");
        }
        drop(held);
        assert_settled(&m);
        m.mark_closed();
        watchdog.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_watchdog_waits_stay_bounded() {
        let m = testing::filled(1, TIMEOUT);
        let held = checkout(&m, TIMEOUT, Location::caller()).await.unwrap();
        let t0 = Instant::now();
        // Never started: the waiter promotes itself and times out on its own timer.
        let unwatched = waiter(&m, TIMEOUT);
        // A watchdog whose runtime goes away (here: its task aborted) promotes what it watched.
        let watchdog = spawn_watchdog(&m);
        settle().await;
        let watched = waiter(&m, TIMEOUT * 2);
        settle().await;
        assert_eq!(m.counted_waiters(), 1);
        watchdog.abort();
        let _ = watchdog.await;
        for (w, t) in [(unwatched, TIMEOUT), (watched, TIMEOUT * 2)] {
            let (at, r) = w.await.unwrap();
            assert!(r.unwrap_err().is_pool_timeout());
            assert_eq!(at, t0 + t);
        }
        drop(held);
        assert_settled(&m);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_long_idle_spell_a_waiter_is_not_promoted_early() {
        let m = testing::filled(1, TIMEOUT);
        let watchdog = spawn_watchdog(&m);
        // The watchdog keeps `epoch` current while nobody waits.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let held = checkout(&m, TIMEOUT, Location::caller()).await.unwrap();
        let t0 = Instant::now();
        let w = waiter(&m, TIMEOUT);
        tokio::time::sleep(TIMEOUT - TIMEOUT / 8 - Duration::from_millis(1)).await;
        assert_eq!(m.shed(), 0, "not promoted yet");
        let (at, r) = w.await.unwrap();
        assert!(r.unwrap_err().is_pool_timeout());
        assert_eq!(at, t0 + TIMEOUT);
        drop(held);
        assert_settled(&m);
        m.mark_closed();
        watchdog.await.unwrap();
    }
}
