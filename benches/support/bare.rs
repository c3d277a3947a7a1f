//! The limit for `pool_core`: the two primitives wirepool's pool is built on, with nothing else.
//!
//! A FIFO `tokio::sync::Semaphore` bounds checkouts, a `crossbeam_queue::ArrayQueue` holds the
//! idle objects, and the guard's drop pushes the object back *before* it adds the permit, so a
//! task holding a permit always finds an object (the same invariant `src/pool/core.rs` states).
//! No timeouts, no statistics, no health checks, no lifetimes: any real pool does at least this
//! much work per checkout, so its distance from here is its overhead. `try_acquire` comes first,
//! as in wirepool's fast path: it skips building an `Acquire` future and tokio's cooperative
//! budget when a permit is free. The guard owns an `Arc`
//! because every `'static` guard (wirepool's, deadpool's) must reach its pool on drop.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use tokio::sync::Semaphore;

/// Semaphore + queue, pre-filled with `max` objects.
pub struct Bare<T> {
    permits: Semaphore,
    idle: ArrayQueue<T>,
}

impl<T> Bare<T> {
    /// A pool holding the objects `make` returns, one per slot.
    pub fn new(max: usize, mut make: impl FnMut() -> T) -> Arc<Self> {
        let idle = ArrayQueue::new(max);
        for _ in 0..max {
            // Cannot fail: the queue was sized for exactly `max`.
            let _ = idle.push(make());
        }
        Arc::new(Bare {
            permits: Semaphore::new(max),
            idle,
        })
    }

    /// Takes a permit (`try_acquire` first, then a FIFO wait), then pops an object; the permit
    /// guarantees there is one. `try_acquire` cannot overtake queued waiters: tokio hands a
    /// released permit to the head waiter before it becomes available to anyone else.
    pub async fn get(self: &Arc<Self>) -> BareGuard<T> {
        self.get_within(None).await.expect("no deadline")
    }

    /// [`get`](Bare::get), with the wait (only) bounded by a tokio timer as real pools do; for
    /// the decomposition table, which prices that timer. `None` if the deadline passed.
    pub async fn get_within(self: &Arc<Self>, limit: Option<Duration>) -> Option<BareGuard<T>> {
        // The semaphore is never closed here.
        let permit = match (self.permits.try_acquire(), limit) {
            (Ok(permit), _) => permit,
            (Err(_), None) => self.permits.acquire().await.expect("never closed"),
            (Err(_), Some(limit)) => tokio::time::timeout(limit, self.permits.acquire())
                .await
                .ok()?
                .expect("never closed"),
        };
        permit.forget();
        let obj = self.idle.pop().expect("a permit implies an idle object");
        Some(BareGuard {
            pool: Arc::clone(self),
            obj: Some(obj),
        })
    }
}

/// Returns its object on drop: push first, then release the permit.
pub struct BareGuard<T> {
    pool: Arc<Bare<T>>,
    obj: Option<T>,
}

impl<T> Deref for BareGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.obj.as_ref().expect("present until drop")
    }
}

impl<T> DerefMut for BareGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.obj.as_mut().expect("present until drop")
    }
}

impl<T> Drop for BareGuard<T> {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            // Cannot fail: at most `max` objects exist and one slot is free (ours).
            let _ = self.pool.idle.push(obj);
            self.pool.permits.add_permits(1);
        }
    }
}
