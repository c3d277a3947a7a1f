//! The shared watchdog under paused time, driving a model of `Core`'s checkout: the pool's
//! permits (`permits.rs`), an idle queue, `shed`, and the starving stage (a permit holder waits on `landed`
//! with its own timer). Each test names the property it checks; every one ends by checking that
//! permits are conserved and no count is left behind.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, TryAcquireError};
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};

use super::super::permits::Permits;
use super::Deadlines;

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, PartialEq)]
enum Failed {
    Timeout,
    Closed,
}

/// `Core` reduced to what the wait touches; connections are numbers.
struct Model {
    permits: Permits,
    idle: Mutex<VecDeque<usize>>,
    shed: AtomicUsize,
    landed: Notify,
    closed: AtomicBool,
    deadlines: Deadlines,
    max: usize,
}

/// `Core::release_permit`: forget one permit per unit of `shed`.
fn release(m: &Model) {
    if m.shed
        .fetch_update(SeqCst, SeqCst, |s| s.checked_sub(1))
        .is_err()
    {
        m.permits.release(1);
    }
}

struct Guard {
    model: Arc<Model>,
    conn: usize,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Guard({})", self.conn)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Invariant 3 of core.rs: push, wake a starving holder, then release.
        self.model.idle.lock().unwrap().push_back(self.conn);
        self.model.landed.notify_one();
        release(&self.model);
    }
}

/// A forgotten permit; released on drop.
struct Permit(Arc<Model>);

impl Drop for Permit {
    fn drop(&mut self) {
        release(&self.0);
    }
}

impl Model {
    fn new(max: usize) -> Arc<Self> {
        Arc::new(Model {
            permits: Permits::new(max),
            idle: Mutex::new((0..max).collect()),
            shed: AtomicUsize::new(0),
            landed: Notify::new(),
            closed: AtomicBool::new(false),
            deadlines: Deadlines::new(TIMEOUT),
            max,
        })
    }

    fn spawn_watchdog(self: &Arc<Self>) -> JoinHandle<()> {
        let m = Arc::clone(self);
        tokio::spawn(async move { m.deadlines.watch(&m.permits, &m.shed).await })
    }

    fn close(&self) {
        self.closed.store(true, SeqCst);
        self.permits.close();
        self.landed.notify_waiters();
        self.deadlines.close();
    }

    /// `Core::checkout`'s shape: try_acquire, else the counted FIFO wait, then pop or starve
    /// on `landed` with a timer until the deadline.
    async fn get(self: &Arc<Self>, timeout: Duration) -> Result<Guard, Failed> {
        let deadline = Instant::now() + timeout;
        match self.permits.try_acquire() {
            Ok(()) => {}
            Err(TryAcquireError::Closed) => return Err(Failed::Closed),
            Err(TryAcquireError::NoPermits) => self
                .deadlines
                .acquire(&self.permits, &self.shed, timeout)
                .await
                .map_err(|_| Failed::Closed)?,
        }
        let _permit = Permit(Arc::clone(self));
        loop {
            let notified = self.landed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(conn) = self.idle.lock().unwrap().pop_front() {
                std::mem::forget(_permit);
                return Ok(Guard {
                    model: Arc::clone(self),
                    conn,
                });
            }
            if self.closed.load(SeqCst) {
                return Err(Failed::Closed);
            }
            if timeout_at(deadline, notified).await.is_err() {
                return Err(Failed::Timeout);
            }
        }
    }

    /// Once everything is back: every permit is in the semaphore, no `shed` is pending, every
    /// connection is idle and no waiter is counted.
    fn assert_settled(&self) {
        assert_eq!(self.deadlines.counted(), 0, "stale count");
        assert_eq!(self.shed.load(SeqCst), 0, "shed left");
        assert_eq!(self.permits.available(), self.max, "permits");
        assert_eq!(self.idle.lock().unwrap().len(), self.max, "connections");
    }
}

/// Spawns a checkout that reports when it ended and how.
fn waiter(m: &Arc<Model>, timeout: Duration) -> JoinHandle<(Instant, Result<Guard, Failed>)> {
    let m = Arc::clone(m);
    tokio::spawn(async move {
        let r = m.get(timeout).await;
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
    let m = Model::new(1);
    let watchdog = m.spawn_watchdog();
    let held = m.get(TIMEOUT).await.unwrap();
    let t0 = Instant::now();
    let w = waiter(&m, TIMEOUT);
    settle().await;
    assert_eq!(m.deadlines.counted(), 1, "queued and counted, no timer");
    // One grain before the deadline nothing has been promoted yet.
    tokio::time::sleep(TIMEOUT - TIMEOUT / 8 - Duration::from_millis(1)).await;
    assert_eq!(m.shed.load(SeqCst), 0);
    // One grain before its bucket starts (here: its deadline), it is promoted to starving.
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!((m.shed.load(SeqCst), m.deadlines.counted()), (1, 0));
    let (at, r) = w.await.unwrap();
    assert_eq!(r.err(), Some(Failed::Timeout));
    assert_eq!(at, t0 + TIMEOUT, "not earlier, not later");
    drop(held);
    m.assert_settled();
    m.close();
    watchdog.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn short_waits_are_never_promoted() {
    let m = Model::new(2);
    let watchdog = m.spawn_watchdog();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let m = Arc::clone(&m);
            tokio::spawn(async move {
                for _ in 0..50 {
                    let g = m.get(TIMEOUT).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    drop(g);
                    // No promotion: the bucket for the earliest waiter is far off.
                    assert_eq!(m.shed.load(SeqCst), 0);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    m.assert_settled();
    m.close();
    watchdog.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn fifo_order_is_kept_through_a_promotion() {
    let m = Model::new(1);
    let watchdog = m.spawn_watchdog();
    let held = m.get(TIMEOUT).await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (m, order) = (Arc::clone(&m), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let g = m.get(TIMEOUT).await.unwrap();
            order.lock().unwrap().push(i);
            tokio::task::yield_now().await;
            drop(g);
        }));
        settle().await; // queue them in index order
    }
    // Past the head's bucket start: the head has been promoted and is starving.
    tokio::time::sleep(TIMEOUT - Duration::from_secs(1)).await;
    assert!(m.shed.load(SeqCst) >= 1, "the head was promoted");
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    m.assert_settled();
    m.close();
    watchdog.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_leaks_no_permit_and_no_count() {
    let m = Model::new(1);
    let watchdog = m.spawn_watchdog();
    let held = m.get(TIMEOUT).await.unwrap();
    // Cancelled while queued.
    let queued = waiter(&m, TIMEOUT);
    settle().await;
    assert_eq!(m.deadlines.counted(), 1);
    queued.abort();
    assert!(queued.await.unwrap_err().is_cancelled());
    assert_eq!(m.deadlines.counted(), 0);
    // Cancelled after its promotion, while starving.
    let promoted = waiter(&m, TIMEOUT);
    tokio::time::sleep(TIMEOUT - Duration::from_secs(1)).await;
    assert_eq!(m.shed.load(SeqCst), 1, "promoted");
    assert_eq!(m.deadlines.counted(), 0, "it left the queue");
    promoted.abort();
    assert!(promoted.await.unwrap_err().is_cancelled());
    assert_eq!(m.shed.load(SeqCst), 0, "its extra permit was forgotten");
    drop(held);
    m.assert_settled();
    m.close();
    watchdog.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn close_wakes_every_waiter_queued_or_promoted() {
    let m = Model::new(1);
    let watchdog = m.spawn_watchdog();
    let held = m.get(TIMEOUT).await.unwrap();
    let early = waiter(&m, TIMEOUT);
    tokio::time::sleep(TIMEOUT - Duration::from_secs(1)).await; // `early` promoted
    let late = waiter(&m, TIMEOUT); // still queued
    settle().await;
    let t = Instant::now();
    m.close();
    for w in [early, late] {
        let (at, r) = w.await.unwrap();
        assert_eq!(r.err(), Some(Failed::Closed));
        assert_eq!(at, t, "at once");
    }
    watchdog.await.unwrap();
    drop(held);
    assert_eq!(m.deadlines.counted(), 0);
}

#[tokio::test(start_paused = true)]
async fn mixed_timeouts_each_fail_exactly_at_their_own_deadline() {
    let m = Model::new(1);
    let watchdog = m.spawn_watchdog();
    let held = m.get(TIMEOUT).await.unwrap();
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
        assert_eq!(r.err(), Some(Failed::Timeout));
        assert_eq!(at, t0 + t, "timeout {t:?}");
    }
    drop(held);
    m.assert_settled();
    m.close();
    watchdog.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_a_watchdog_waits_stay_bounded() {
    let m = Model::new(1);
    let held = m.get(TIMEOUT).await.unwrap();
    let t0 = Instant::now();
    // Never started: the waiter promotes itself and times out on its own timer.
    let unwatched = waiter(&m, TIMEOUT);
    // A watchdog whose runtime goes away (here: its task aborted) promotes what it watched.
    let watchdog = m.spawn_watchdog();
    settle().await;
    let watched = waiter(&m, TIMEOUT * 2);
    settle().await;
    assert_eq!(m.deadlines.counted(), 1);
    watchdog.abort();
    let _ = watchdog.await;
    for (w, t) in [(unwatched, TIMEOUT), (watched, TIMEOUT * 2)] {
        let (at, r) = w.await.unwrap();
        assert_eq!(r.err(), Some(Failed::Timeout));
        assert_eq!(at, t0 + t);
    }
    drop(held);
    m.assert_settled();
}

#[tokio::test(start_paused = true)]
async fn after_a_long_idle_spell_a_waiter_is_not_promoted_early() {
    let m = Model::new(1);
    let watchdog = m.spawn_watchdog();
    // The watchdog keeps `epoch` current while nobody waits.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let held = m.get(TIMEOUT).await.unwrap();
    let t0 = Instant::now();
    let w = waiter(&m, TIMEOUT);
    tokio::time::sleep(TIMEOUT - TIMEOUT / 8 - Duration::from_millis(1)).await;
    assert_eq!(m.shed.load(SeqCst), 0, "not promoted yet");
    let (at, r) = w.await.unwrap();
    assert_eq!(r.err(), Some(Failed::Timeout));
    assert_eq!(at, t0 + TIMEOUT);
    drop(held);
    m.assert_settled();
    m.close();
    watchdog.await.unwrap();
}
