//! The pool's permits: tokio's FIFO `Semaphore` for checkouts that wait, and one atomic word
//! that holds the permits nobody waits for.
//!
//! Why: tokio's `Semaphore::add_permits` takes the semaphore's waiter-list mutex on every
//! release, even when no one waits, so a checkout + return through the bare semaphore costs
//! four read-modify-writes (`try_acquire`'s CAS; the lock, the permit add and the unlock).
//! Most checkouts in a pool that is not saturated find a permit free, so a permit released
//! while nobody waits is *parked* in [`Permits`]' own word instead, and the next checkout
//! takes it back with one CAS. The semaphore is used only while someone waits: HikariCP's
//! `ConcurrentBag` makes the same split (a `waiters` count; a return hands off through the
//! queue only if it is non-zero).
//!
//! # Invariants
//!
//! - **Conservation.** Every permit is in exactly one place: parked, in the semaphore, or held
//!   (by a checkout's `Permit` guard, or forgotten by `resize`/`shed`). So the pool's
//!   accounting is the same as with the semaphore alone.
//! - **No lost permit.** The waiter count and the parked count share one word, so a release and
//!   a waiter's registration are ordered by that word alone. A release that sees no waiter
//!   parks its permit (one CAS); a waiter registers first, then moves whatever is parked into
//!   the semaphore (`unpark`), then waits there. A release that sees a waiter hands its permit
//!   to the semaphore, whose FIFO queue gives it to the oldest waiter. Either the release comes
//!   first in the word's order (the waiter's registration returns the parked permit, and
//!   unparks it) or the registration does (the release sees the waiter).
//! - **FIFO.** While anyone is registered as waiting, [`Permits::try_acquire`] does not take a
//!   parked permit (it goes through the semaphore's `try_acquire`, which tokio serves only
//!   after queued waiters), and releases go to the semaphore. A checkout can get ahead of a
//!   waiter only in the instant before that waiter is queued in the semaphore: by winning the
//!   parked permit before it registers, or by taking the permit its `unpark` (or a release)
//!   just put in the semaphore before its first `Semaphore::acquire` poll queues it. Both are
//!   the same race as arriving first.
//! - **Closing is final.** Closing sets a bit in the word and closes the semaphore: from then
//!   on `try_acquire` and `acquire` fail with "closed", whatever is parked.

use super::sync::{AtomicU64, Ordering::*};

use tokio::sync::{AcquireError, Semaphore, TryAcquireError};

/// Bit 0 of the word: the permits are closed.
const CLOSED: u64 = 1;
/// One parked permit: bits 1..=31.
const PARKED_ONE: u64 = 1 << 1;
const PARKED_BITS: u64 = ((1 << 31) - 1) << 1;
/// One registered waiter: bits 32..=63.
const WAITER_ONE: u64 = 1 << 32;

/// The most permits a pool may have (`max_size_limit`): parked permits live in 31 bits, and a
/// few promotions of the wait watchdog (`waiting.rs`) may be in flight on top.
pub(crate) const MAX_PERMITS: usize = 1 << 30;

fn parked(word: u64) -> u64 {
    (word & PARKED_BITS) >> 1
}

fn waiters(word: u64) -> u64 {
    word >> 32
}

/// Permits for `max_size` checkouts: parked while nobody waits, in a FIFO semaphore otherwise.
#[derive(Debug)]
pub(crate) struct Permits {
    /// `waiters << 32 | parked << 1 | closed`.
    word: AtomicU64,
    queue: Semaphore,
}

impl Permits {
    /// `n` permits, all parked (`n ≤ MAX_PERMITS`, which the builder checks).
    pub(crate) fn new(n: usize) -> Self {
        Permits {
            word: AtomicU64::new(PARKED_ONE * n as u64),
            queue: Semaphore::new(0),
        }
    }

    /// Takes a permit without waiting: a parked one if nobody waits (one CAS), else the
    /// semaphore's. The caller owns it until it calls [`release`](Self::release).
    #[inline]
    pub(crate) fn try_acquire(&self) -> Result<(), TryAcquireError> {
        let mut word = self.word.load(Relaxed);
        loop {
            if word & CLOSED != 0 {
                return Err(TryAcquireError::Closed);
            }
            if waiters(word) != 0 || parked(word) == 0 {
                break;
            }
            // Acquire: pairs with the release that parked it, which pushed its connection first.
            match self
                .word
                .compare_exchange_weak(word, word - PARKED_ONE, Acquire, Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => word = now,
            }
        }
        self.queue.try_acquire().map(|p| p.forget())
    }

    /// Gives `n` permits back: parked if nobody waits, else to the semaphore's oldest waiters.
    #[inline]
    pub(crate) fn release(&self, n: usize) {
        let mut word = self.word.load(Relaxed);
        loop {
            if waiters(word) != 0 {
                return self.queue.add_permits(n);
            }
            // Release: whoever takes it sees the connection pushed before it.
            match self.word.compare_exchange_weak(
                word,
                word + PARKED_ONE * n as u64,
                Release,
                Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => word = now,
            }
        }
    }

    /// Adds `n` permits straight to the semaphore, for its waiters (the watchdog's promotions).
    pub(crate) fn add_to_queue(&self, n: usize) {
        self.queue.add_permits(n);
    }

    /// Waits for a permit in FIFO order. The caller owns it on `Ok`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropped, it holds no permit and no registration (a permit tokio had
    /// already assigned goes back to the semaphore, to the next waiter).
    ///
    /// # Errors
    ///
    /// `AcquireError` once the permits are closed.
    pub(crate) async fn acquire(&self) -> Result<(), AcquireError> {
        let _waiting = Registered::new(self);
        self.queue.acquire().await.map(|p| p.forget())
    }

    /// Moves every parked permit into the semaphore (a waiter has just registered).
    fn unpark(&self) {
        let taken = self.word.fetch_and(!PARKED_BITS, AcqRel);
        let n = parked(taken);
        if n > 0 {
            self.queue.add_permits(n as usize);
        }
    }

    /// Forgets up to `n` permits that nobody holds (`resize` shrinking): parked ones first.
    /// Returns how many were forgotten.
    pub(crate) fn forget(&self, n: usize) -> usize {
        let mut word = self.word.load(Relaxed);
        let from_parked = loop {
            let take = parked(word).min(n as u64);
            match self
                .word
                .compare_exchange_weak(word, word - PARKED_ONE * take, AcqRel, Relaxed)
            {
                Ok(_) => break take as usize,
                Err(now) => word = now,
            }
        };
        from_parked + self.queue.forget_permits(n - from_parked)
    }

    /// Permits nobody holds: parked or in the semaphore.
    pub(crate) fn available(&self) -> usize {
        parked(self.word.load(Relaxed)) as usize + self.queue.available_permits()
    }

    /// Fails every waiter and every later acquire (closing is final).
    pub(crate) fn close(&self) {
        self.word.fetch_or(CLOSED, SeqCst);
        self.queue.close();
    }
}

/// A waiter's registration in the word, from just before it queues until it leaves.
struct Registered<'a>(&'a Permits);

impl<'a> Registered<'a> {
    fn new(permits: &'a Permits) -> Self {
        let before = permits.word.fetch_add(WAITER_ONE, AcqRel);
        if parked(before) > 0 {
            permits.unpark(); // no lost permit
        }
        Registered(permits)
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.word.fetch_sub(WAITER_ONE, Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parked_permits_are_taken_and_given_back_without_the_semaphore() {
        let p = Permits::new(2);
        assert_eq!(p.available(), 2);
        assert!(p.try_acquire().is_ok());
        assert!(p.try_acquire().is_ok());
        assert!(matches!(p.try_acquire(), Err(TryAcquireError::NoPermits)));
        p.release(1);
        assert_eq!(
            p.queue.available_permits(),
            0,
            "parked, not in the semaphore"
        );
        assert_eq!(p.available(), 1);
    }

    #[tokio::test]
    async fn a_release_while_someone_waits_goes_to_the_waiter() {
        let p = std::sync::Arc::new(Permits::new(1));
        p.try_acquire().unwrap();
        let waiter = tokio::spawn({
            let p = p.clone();
            async move { p.acquire().await }
        });
        while waiters(p.word.load(SeqCst)) == 0 {
            tokio::task::yield_now().await;
        }
        p.release(1);
        assert!(
            matches!(p.try_acquire(), Err(TryAcquireError::NoPermits)),
            "no barging"
        );
        waiter.await.unwrap().unwrap();
        assert_eq!(p.available(), 0, "the waiter holds the one permit");
        assert_eq!(
            waiters(p.word.load(SeqCst)),
            0,
            "and is no longer registered"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_takes_a_permit_parked_before_it_registered() {
        let p = Permits::new(1);
        // The "no lost permit" race, in the order where the release comes first: the permit is
        // parked, then a waiter registers; it must not wait for a release that already happened.
        let wait = tokio::time::timeout(std::time::Duration::from_secs(1), p.acquire());
        wait.await
            .expect("the parked permit was not moved to the semaphore")
            .unwrap();
        assert_eq!(p.available(), 0);
        p.release(1);
        assert_eq!(parked(p.word.load(SeqCst)), 1);
    }

    #[tokio::test]
    async fn close_fails_acquirers_even_with_permits_parked() {
        let p = Permits::new(3);
        p.close();
        assert!(matches!(p.try_acquire(), Err(TryAcquireError::Closed)));
        assert!(p.acquire().await.is_err());
        p.release(1); // a connection coming back after close: harmless
        assert!(matches!(p.try_acquire(), Err(TryAcquireError::Closed)));
    }

    /// Conservation and no lost permit under real concurrency: tasks on two workers take permits by
    /// `try_acquire` or by waiting (some waits abandoned midway), hold them across a yield and
    /// give them back. More than `MAX` holders at once would be a minted permit; a lost one
    /// would hang a waiter (the test's timeout) or show in the final count.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn permits_are_conserved_under_contention_and_cancellation() {
        use std::sync::atomic::AtomicUsize;
        use std::sync::Arc;
        const MAX: usize = 3;
        // Miri interprets every step: a few tasks and rounds still race on two threads there.
        let (tasks, rounds) = if cfg!(miri) { (4, 20) } else { (32, 2_000) };
        let p = Arc::new(Permits::new(MAX));
        let held = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..tasks)
            .map(|t| {
                let (p, held) = (Arc::clone(&p), Arc::clone(&held));
                tokio::spawn(async move {
                    for i in 0..rounds {
                        let got = if (t + i) % 3 == 0 {
                            p.try_acquire().is_ok()
                        } else if (t + i) % 7 == 0 {
                            // Abandon the wait after one poll, permit or not.
                            let wait = std::pin::pin!(p.acquire());
                            let r = futures_poll_once(wait).await;
                            matches!(r, Some(Ok(())))
                        } else {
                            p.acquire().await.is_ok()
                        };
                        if got {
                            assert!(held.fetch_add(1, SeqCst) < MAX, "a permit was minted");
                            tokio::task::yield_now().await;
                            held.fetch_sub(1, SeqCst);
                            p.release(1);
                        }
                    }
                })
            })
            .collect();
        let all = async {
            for t in tasks {
                t.await.unwrap();
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), all)
            .await
            .expect("a waiter never got a permit: one was lost");
        assert_eq!(p.available(), MAX);
        assert_eq!(waiters(p.word.load(SeqCst)), 0);
    }

    /// Polls `f` once: its output if it is ready, `None` (dropping it) if not.
    async fn futures_poll_once<F: std::future::Future>(
        mut f: std::pin::Pin<&mut F>,
    ) -> Option<F::Output> {
        std::future::poll_fn(|cx| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
            std::task::Poll::Pending => std::task::Poll::Ready(None),
        })
        .await
    }

    #[test]
    fn forget_takes_parked_permits_first_then_the_semaphores() {
        let p = Permits::new(2);
        p.add_to_queue(2);
        assert_eq!(p.forget(3), 3);
        assert_eq!(p.available(), 1);
        assert_eq!(p.forget(5), 1);
        assert_eq!(p.available(), 0);
    }
}

// The path is spelled out: benches/wait_timer.rs includes this file with `#[path]` too.
#[cfg(all(test, wirepool_loom))]
#[path = "permits/loom_tests.rs"]
mod loom_tests;
