//! Bounded FIFO waits for a permit without one tokio timer per waiter.
//!
//! The simple design is `timeout_at(deadline, semaphore.acquire())` (deadpool's
//! `apply_timeout`): read it first; this file optimises exactly that. A tokio timer costs every
//! waiting checkout a runtime-handle `Arc` clone and the time driver's lock twice (register,
//! deregister), and in the pool's queued cells that is a measurable share of the cycle
//! (`docs/performance.md`, "the bounded wait"). Here a waiter only counts itself in a coarse
//! deadline bucket (`grain` wide, an eighth of the pool's timeout) and awaits the semaphore;
//! one watchdog per pool sleeps until one grain before the earliest occupied bucket starts and
//! then *promotes* the FIFO head: it adds one permit and records in `shed` that one permit must
//! be forgotten when next released (as `resize` does when it shrinks). The head wakes holding a
//! permit with no connection behind it, which is the checkout's starving stage
//! (`Core::await_landing`): it waits for the next landed connection (which it would have got
//! anyway as the head) with its own timer, so it fails exactly at its deadline. With the pool's
//! uniform timeout, waiters queue in deadline order, so only the head ever needs promoting and
//! timers are armed only for waits that come within two grains of their deadline.
//!
//! The buckets are a hashed timing wheel (Varghese & Lauck, "Hashed and hierarchical timing
//! wheels", SOSP 1987, scheme 6) that counts waiters instead of listing them, striped by thread
//! like the pool's counters (`stats.rs`).
//!
//! # Invariants
//!
//! - **Counted while queued.** A waiter is counted in a slot from its first `Pending` poll (so
//!   it is queued in the semaphore, or already handed a permit) until its acquire future ends
//!   or is dropped (`Entry`'s drop). A slot's bucket is the *earliest* bucket of its members: a
//!   collision in the ring can only make a promotion early, never late.
//! - **No lost alarm.** A waiter bumps its slot, then reads `target` (both SeqCst); the watchdog
//!   stores `target`, then rescans the slots. One of the two sees the other, so a waiter due
//!   before the watchdog's alarm always wakes it.
//! - **One promotion per due waiter.** While `promoting`, every waiter leaving the queue (and
//!   every one joining a due bucket) wakes the watchdog, which then rescans. It promotes only
//!   while fewer promotions are `outstanding` (issued, and not yet matched by a counted waiter
//!   leaving with a permit) than waiters are counted in due buckets, and no permit sits
//!   unclaimed: a promoted waiter slow to be polled again (its count stays in the slot until
//!   then) must not make it promote again and again, minting permits. A promotion that lands
//!   on a waiter ahead with a later deadline only promotes that one early; it has its own exact
//!   timer in the starving stage. Every acquirer of the semaphore goes through
//!   [`Deadlines::acquire`], or a promotion it took would wake no one. One corner remains: a
//!   waiter with a later per-call deadline, ahead in the queue, promoted and then not polled
//!   for a long time, holds back the promotion of the due waiter behind it until it is polled.
//! - **Permits are conserved.** Each promotion adds one permit and one unit of `shed`, and the
//!   pool forgets one released permit per unit of `shed`, so circulating permits minus `shed`
//!   stays `max_size`.
//! - **Bounded without a watchdog.** Without a running watchdog (not started yet, or its
//!   runtime shut down: its future was dropped) no waiter waits unbounded: the dying watchdog
//!   promotes as many times as waiters are counted, and a waiter that finds no watchdog
//!   promotes itself once, so every queued waiter reaches the starving stage and its own timer.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use tokio::sync::{AcquireError, Notify};
use tokio::time::Instant;

use super::clock::FAR_FUTURE;
use super::permits::Permits;
use super::stats::stripe;
use super::sync;

/// Ring slots. With `grain = timeout / 8` the pool's own deadlines span 9 buckets; the rest
/// absorbs longer per-call timeouts (a longer one can only share a slot with an earlier
/// bucket, and be promoted early).
const SLOTS: usize = 16;
/// Rings, one per group of threads: a waiter counts itself in its thread's ring (by the pool's
/// stripe index), so two workers rarely bounce one cache line (one ring of 16 `u64` is exactly
/// one 128-byte `CachePadded` line).
const SHARDS: usize = 4;
/// A slot packs `bucket << COUNT_BITS | count`: 2^24 waiters per slot, 2^40 buckets (348 years
/// at the 10 ms floor of `grain`; later deadlines saturate, which only promotes early).
const COUNT_BITS: u32 = 24;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const BUCKET_MAX: u64 = (1 << (64 - COUNT_BITS)) - 1;
/// The watchdog ticks once per grain (see `epoch`): 10 ms caps that at 100 wake-ups a second
/// for tiny timeouts, whose waiters are then all promoted at once (a timer each).
const MIN_GRAIN: Duration = Duration::from_millis(10);

/// The deadline buckets of the waiters queued on one semaphore, and their watchdog's state.
pub(crate) struct Deadlines {
    base: Instant,
    grain_ns: u64,
    /// The pool's timeout and how many whole grains it spans: a waiter's bucket is
    /// `epoch + span`, with no clock arithmetic on the hot path.
    timeout: Duration,
    span: u64,
    /// The bucket of "now" at the watchdog's last tick (at most one grain stale, and only ever
    /// behind, which makes a bucket early, never late).
    epoch: CachePadded<AtomicU64>,
    rings: [CachePadded<[AtomicU64; SLOTS]>; SHARDS],
    /// The bucket at whose start the watchdog wakes (`u64::MAX`: asleep until told).
    target: CachePadded<AtomicU64>,
    /// Set while the watchdog promotes: waiters leaving the queue wake it (one promotion per due
    /// waiter).
    promoting: AtomicBool,
    /// Promotions issued and not yet matched by a counted waiter leaving with a permit
    /// (one promotion per due waiter).
    outstanding: AtomicUsize,
    /// A watchdog is running (bounded without a watchdog).
    running: AtomicBool,
    closed: AtomicBool,
    wake: Notify,
}

/// Adds `n` permits that the pool forgets on later releases (`Core::release_permit`).
fn promote(permits: &Permits, shed: &sync::AtomicUsize, n: usize) {
    if n > 0 {
        shed.fetch_add(n, SeqCst);
        permits.add_to_queue(n);
    }
}

fn unpack(slot: u64) -> (u64, u64) {
    (slot >> COUNT_BITS, slot & COUNT_MAX)
}

impl Deadlines {
    /// Buckets an eighth of the pool's `timeout` wide (at least 10 ms), so a waiter is
    /// promoted between one and two eighths of its timeout before its deadline.
    pub(crate) fn new(timeout: Duration) -> Self {
        let grain = (timeout / 8).max(MIN_GRAIN);
        let grain_ns = u64::try_from(grain.as_nanos()).unwrap_or(u64::MAX);
        Deadlines {
            base: Instant::now(),
            grain_ns,
            timeout,
            span: Self::grains(timeout, grain_ns),
            epoch: CachePadded::new(AtomicU64::new(0)),
            rings: Default::default(),
            target: CachePadded::new(AtomicU64::new(u64::MAX)),
            promoting: AtomicBool::new(false),
            outstanding: AtomicUsize::new(0),
            running: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// Whole grains in `d` (rounded down, so a bucket computed from it is never late).
    fn grains(d: Duration, grain_ns: u64) -> u64 {
        let ns = d
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(d.subsec_nanos()));
        ns / grain_ns
    }

    fn bucket(&self, at: Instant) -> u64 {
        Self::grains(at.saturating_duration_since(self.base), self.grain_ns).min(BUCKET_MAX)
    }

    fn slots(&self) -> impl Iterator<Item = &AtomicU64> {
        self.rings.iter().flat_map(|r| r.iter())
    }

    /// When `bucket` starts; saturates to about 30 years out (tokio's "far future").
    fn start(&self, bucket: u64) -> Instant {
        let far = u64::try_from(FAR_FUTURE.as_nanos()).unwrap_or(u64::MAX);
        let ns = bucket.saturating_mul(self.grain_ns).min(far);
        self.base + Duration::from_nanos(ns)
    }

    /// The earliest bucket with a waiter in it.
    fn earliest(&self) -> Option<u64> {
        self.slots()
            .map(|s| unpack(s.load(SeqCst)))
            .filter(|&(_, n)| n > 0)
            .map(|(b, _)| b)
            .min()
    }

    /// Waiters counted in buckets up to `due_by`.
    fn due(&self, due_by: u64) -> usize {
        let n: u64 = self
            .slots()
            .map(|s| unpack(s.load(SeqCst)))
            .filter(|&(b, _)| b <= due_by)
            .map(|(_, n)| n)
            .sum();
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// Waiters counted now (the dying watchdog's last promotion).
    pub(crate) fn counted(&self) -> usize {
        let n: u64 = self.slots().map(|s| unpack(s.load(SeqCst)).1).sum();
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// Counts a queued waiter in its deadline's slot. `None` if it must promote itself instead
    /// (no watchdog, or a full slot).
    fn enter(&self, timeout: Duration) -> Option<&AtomicU64> {
        let span = if timeout == self.timeout {
            self.span
        } else {
            Self::grains(timeout, self.grain_ns)
        };
        let bucket = self
            .epoch
            .load(Relaxed)
            .saturating_add(span)
            .min(BUCKET_MAX);
        let ring = &self.rings[stripe() % SHARDS];
        let slot = &ring[(bucket % SLOTS as u64) as usize];
        let mut cur = slot.load(Relaxed);
        let joined = loop {
            let (b, n) = unpack(cur);
            if n == COUNT_MAX {
                return None;
            }
            let b = if n == 0 { bucket } else { b.min(bucket) };
            match slot.compare_exchange_weak(cur, b << COUNT_BITS | (n + 1), SeqCst, Relaxed) {
                Ok(_) => break b,
                Err(now) => cur = now,
            }
        };
        if !self.running.load(SeqCst) {
            slot.fetch_sub(1, SeqCst);
            return None;
        }
        if joined < self.target.load(SeqCst) {
            self.wake.notify_one();
        }
        Some(slot)
    }

    /// `permits.acquire()`, counted in the deadline buckets while it waits. It never times out
    /// by itself: one to two grains before its deadline (`timeout` from the caller's clock
    /// read, made just before with no await between) a waiter still queued is handed a permit
    /// that may have no connection behind it; the caller then waits for one with its own timer
    /// until the deadline (the starving stage).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as `Semaphore::acquire`: dropped, it holds no permit and leaves no count
    /// (a permit already assigned goes back to the semaphore, to the next waiter).
    ///
    /// # Errors
    ///
    /// `AcquireError` if the semaphore is closed.
    pub(crate) async fn acquire(
        &self,
        permits: &Permits,
        shed: &sync::AtomicUsize,
        timeout: Duration,
    ) -> Result<(), AcquireError> {
        let mut acquire = pin!(permits.acquire());
        let mut entry: Option<Entry<'_>> = None;
        let result = poll_fn(|cx| {
            let poll = acquire.as_mut().poll(cx);
            if poll.is_pending() && entry.is_none() {
                let slot = self.enter(timeout);
                if slot.is_none() {
                    promote(permits, shed, 1); // bounded without a watchdog
                }
                entry = Some(Entry {
                    deadlines: self,
                    slot,
                    granted: false,
                });
            }
            poll
        })
        .await;
        if let Some(entry) = entry.as_mut() {
            entry.granted = result.is_ok();
        }
        drop(entry);
        result
    }

    /// Stops the watchdog (the pool is closing; the semaphore's close fails the waiters).
    pub(crate) fn close(&self) {
        self.closed.store(true, SeqCst);
        self.wake.notify_one();
    }

    /// The watchdog: runs until [`close`](Self::close). Run one per semaphore, on a task of
    /// its own or inside the pool's maintenance task.
    ///
    /// # Cancel safety
    ///
    /// Dropping it (runtime shutdown) promotes every counted waiter once (bounded without a
    /// watchdog).
    pub(crate) async fn watch(&self, permits: &Permits, shed: &sync::AtomicUsize) {
        let _last = LastPromotion {
            deadlines: self,
            permits,
            shed,
        };
        self.running.store(true, SeqCst);
        let mut alarm = pin!(tokio::time::sleep_until(self.base));
        loop {
            let mut woken = pin!(self.wake.notified());
            woken.as_mut().enable();
            if self.closed.load(SeqCst) {
                return;
            }
            let now = Instant::now();
            let epoch = self.bucket(now);
            self.epoch.store(epoch, Relaxed);
            // A bucket is due one grain before it starts, so a promoted waiter has between one
            // and two grains left on its own timer: never promoted at (or after) its deadline.
            let due_by = epoch.saturating_add(1);
            let tick = self.start(epoch.saturating_add(1));
            match self.earliest() {
                Some(due) if due <= due_by => {
                    self.promoting.store(true, SeqCst);
                    self.target.store(due_by.saturating_add(1), SeqCst);
                    // One promotion per due waiter, not one per rescan.
                    if permits.available() == 0 && self.outstanding.load(SeqCst) < self.due(due_by)
                    {
                        self.outstanding.fetch_add(1, SeqCst);
                        promote(permits, shed, 1);
                    }
                    // Woken by the next waiter to leave the queue; the alarm is a safety net should
                    // the promotion go to an acquirer that does not report (one promotion per due
                    // waiter).
                    let recheck = now + Duration::from_nanos(self.grain_ns / 8);
                    alarm.as_mut().reset(recheck.min(tick));
                    tokio::select! {
                        _ = alarm.as_mut() => {}
                        _ = woken => {}
                    }
                }
                next => {
                    self.promoting.store(false, SeqCst);
                    if next.is_none() {
                        // Nobody counted: a promotion still outstanding went to an acquirer
                        // that was never counted (it found the permit free), not to a waiter.
                        self.outstanding.store(0, SeqCst);
                    }
                    let at = next.unwrap_or(u64::MAX);
                    self.target.store(at, SeqCst);
                    if self.earliest().is_some_and(|e| e < at) {
                        continue; // no lost alarm: someone joined earlier meanwhile
                    }
                    // Ticks every grain (to keep `epoch` fresh) or earlier if a bucket is due.
                    alarm
                        .as_mut()
                        .reset(self.start(at.saturating_sub(1)).min(tick));
                    tokio::select! {
                        _ = alarm.as_mut() => {}
                        _ = woken => {}
                    }
                }
            }
        }
    }
}

/// A waiter's count in its slot (if any); leaving wakes a promoting watchdog.
struct Entry<'a> {
    deadlines: &'a Deadlines,
    slot: Option<&'a AtomicU64>,
    /// It leaves with a permit (perhaps a promoted one): one outstanding promotion is matched.
    granted: bool,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            // The count first: a rescan between the two steps then sees fewer due waiters
            // with the same promotions outstanding, and holds back, never over-promotes.
            slot.fetch_sub(1, SeqCst);
            if self.granted {
                let _ = self
                    .deadlines
                    .outstanding
                    .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
            }
        }
        if self.deadlines.promoting.load(SeqCst) {
            self.deadlines.wake.notify_one();
        }
    }
}

/// The watchdog's guard: when its future ends or is dropped, the waiters it watched are
/// promoted so each falls back to its own timer (bounded without a watchdog).
struct LastPromotion<'a> {
    deadlines: &'a Deadlines,
    permits: &'a Permits,
    shed: &'a sync::AtomicUsize,
}

impl Drop for LastPromotion<'_> {
    fn drop(&mut self) {
        let d = self.deadlines;
        d.running.store(false, SeqCst);
        d.promoting.store(false, SeqCst);
        if !d.closed.load(SeqCst) {
            promote(self.permits, self.shed, d.counted());
        }
    }
}
