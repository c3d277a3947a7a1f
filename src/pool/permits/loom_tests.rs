//! loom models of the permit word: every interleaving of two or three threads taking, waiting
//! for, abandoning, releasing and closing permits, checked against the invariants in
//! `permits.rs`'s header. tokio's semaphore is outside the model: each of its calls is one
//! step that loom does not look inside (docs/architecture.md, "Model-checked accounting").
//!
//! Run with `RUSTFLAGS="--cfg wirepool_loom" cargo test --release --lib loom`.

use loom::sync::atomic::{AtomicBool, AtomicUsize};
use loom::sync::Arc;
use loom::thread;

use super::*;
use crate::pool::sync::model::{block_on, check, poll_once};

/// The word's waiter count, for assertions.
fn registered(p: &Permits) -> u64 {
    waiters(p.word.load(SeqCst))
}

/// Takes a permit: without waiting if one is free, else by queueing (the checkout's order).
fn take(p: &Permits) -> Result<(), AcquireError> {
    match p.try_acquire() {
        Ok(()) => Ok(()),
        Err(_) => block_on(p.acquire()),
    }
}

/// Conservation: three threads share two permits, each taking one (waiting if need be),
/// holding it and giving it back. No more than two are ever held at once (none minted), every
/// wait ends (none lost: a waiter left without one never returns and loom fails the model),
/// and at the end both are free again and nobody is registered.
#[test]
fn permits_are_conserved_across_takes_waits_and_releases() {
    check("permits_conserved", || {
        let p = Arc::new(Permits::new(2));
        let held = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (p, held) = (Arc::clone(&p), Arc::clone(&held));
                thread::spawn(move || {
                    take(&p).expect("open");
                    assert!(held.fetch_add(1, SeqCst) < 2, "a permit was minted");
                    held.fetch_sub(1, SeqCst);
                    p.release(1);
                })
            })
            .collect();
        take(&p).expect("open");
        assert!(held.fetch_add(1, SeqCst) < 2, "a permit was minted");
        held.fetch_sub(1, SeqCst);
        p.release(1);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(p.available(), 2, "a permit was lost or minted");
        assert_eq!(registered(&p), 0, "a registration was left behind");
    });
}

/// No lost permit: the only permit is released while a waiter registers. In every order the
/// waiter gets it (parked before the registration: `unpark` moves it to the semaphore; after:
/// the release sees the waiter and hands it over).
#[test]
fn a_release_racing_a_registration_reaches_the_waiter() {
    check("release_vs_registration", || {
        let p = Arc::new(Permits::new(1));
        p.try_acquire().unwrap();
        let waiter = {
            let p = Arc::clone(&p);
            thread::spawn(move || block_on(p.acquire()))
        };
        p.release(1);
        waiter.join().unwrap().expect("the waiter got the permit");
        assert_eq!(p.available(), 0, "the waiter holds the one permit");
        assert_eq!(registered(&p), 0);
    });
}

/// FIFO: once a waiter is queued in the semaphore (its first poll returned `Pending`), a
/// `try_acquire` racing the release of the only permit does not take it: the permit is not
/// parked while someone is registered, and tokio's `try_acquire` does not pass queued waiters.
/// Before that point a `try_acquire` may win, as a checkout arriving first would.
#[test]
fn a_queued_waiter_is_not_passed_by_try_acquire() {
    check("fifo_try_acquire", || {
        let p = Arc::new(Permits::new(1));
        let queued = Arc::new(AtomicBool::new(false));
        p.try_acquire().unwrap();
        let waiter = {
            let (p, queued) = (Arc::clone(&p), Arc::clone(&queued));
            thread::spawn(move || {
                let mut acquire = std::pin::pin!(p.acquire());
                if let Some(r) = poll_once(acquire.as_mut()) {
                    return r; // the permit was released (parked) before it registered
                }
                queued.store(true, SeqCst);
                block_on(acquire)
            })
        };
        let barger = {
            let (p, queued) = (Arc::clone(&p), Arc::clone(&queued));
            thread::spawn(move || {
                let was_queued = queued.load(SeqCst);
                let got = p.try_acquire().is_ok();
                assert!(!(was_queued && got), "try_acquire passed a queued waiter");
                if got {
                    p.release(1);
                }
            })
        };
        p.release(1);
        barger.join().unwrap();
        waiter.join().unwrap().expect("the waiter got the permit");
        p.release(1);
        assert_eq!(p.available(), 1);
        assert_eq!(registered(&p), 0);
    });
}

/// A wait abandoned after one poll (a timeout, a `select!`) while the only permit is released:
/// whether the permit was parked, handed to the waiter by the semaphore, or neither yet, it is
/// free again afterwards and the registration is gone.
#[test]
fn an_abandoned_wait_racing_a_release_loses_no_permit() {
    check("abandoned_wait_vs_release", || {
        let p = Arc::new(Permits::new(1));
        p.try_acquire().unwrap();
        let waiter = {
            let p = Arc::clone(&p);
            thread::spawn(move || {
                if let Some(r) = poll_once(p.acquire()) {
                    r.expect("open");
                    p.release(1);
                }
            })
        };
        p.release(1);
        waiter.join().unwrap();
        assert_eq!(p.available(), 1, "the permit was lost");
        assert_eq!(registered(&p), 0);
        p.try_acquire().expect("and can be taken again");
    });
}

/// Closing is final: with permits parked, a close races a `try_acquire` and a waiter. Each of
/// them either got a permit before the close or fails with "closed" (the waiter is not left
/// waiting), and after the close nothing succeeds, whatever is parked or released.
#[test]
fn closing_is_final_whatever_is_parked() {
    check("close_is_final", || {
        let p = Arc::new(Permits::new(1));
        let taker = {
            let p = Arc::clone(&p);
            thread::spawn(move || {
                if p.try_acquire().is_ok() {
                    p.release(1); // a connection coming back after the close: harmless
                }
            })
        };
        let waiter = {
            let p = Arc::clone(&p);
            thread::spawn(move || {
                if block_on(p.acquire()).is_ok() {
                    p.release(1);
                }
            })
        };
        p.close();
        assert!(matches!(p.try_acquire(), Err(TryAcquireError::Closed)));
        taker.join().unwrap();
        waiter.join().unwrap();
        assert!(matches!(p.try_acquire(), Err(TryAcquireError::Closed)));
        assert!(block_on(p.acquire()).is_err(), "acquire after close");
        assert_eq!(registered(&p), 0);
    });
}

/// `forget` (a `resize` shrinking) racing a release and a waiter: it never forgets more than
/// nobody holds, and what it did not forget stays in circulation: with the waiter's permit
/// given back, the permits free are the two there were minus the ones forgotten.
#[test]
fn forget_racing_release_and_wait_conserves_the_rest() {
    check("forget_vs_release", || {
        let p = Arc::new(Permits::new(2));
        p.try_acquire().unwrap();
        let waiter = {
            let p = Arc::clone(&p);
            thread::spawn(move || {
                take(&p).expect("open");
                p.release(1);
            })
        };
        let forgotten = {
            let p = Arc::clone(&p);
            thread::spawn(move || p.forget(1))
        };
        p.release(1);
        let forgotten = forgotten.join().unwrap();
        waiter.join().unwrap();
        assert!(forgotten <= 1);
        assert_eq!(p.available(), 2 - forgotten, "a permit was lost or minted");
        assert_eq!(registered(&p), 0);
    });
}
