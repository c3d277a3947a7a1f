//! The core's lock-free counts: `size` against `max_size`, `connecting`, the permits owed to
//! `shed`, and the closed flag that a return's push into the idle queue races with. These
//! are the steps the core's invariants rest on ("bounded size", "a permit per checkout",
//! return vs close), kept apart from the tokio and I/O code around them so that loom can
//! check every interleaving of them (`loom_tests` below; docs/architecture.md).
//!
//! # Invariants
//!
//! - **Bounded size.** Only [`Counts::try_reserve`] raises `size`, with a CAS against
//!   `max_size`, so no interleaving of reservations exceeds it.
//! - **Permits are conserved across a resize.** Shrinking forgets the permits nobody holds and
//!   owes the rest to `shed`; growing pays `shed` first and releases only what is left; a
//!   release pays `shed` before giving its permit back ([`Counts::release_permit`]). So once
//!   every holder has released, the permits nobody holds are exactly `max_size` (plus the
//!   wait watchdog's promotions not yet released, each also owed to `shed`).
//! - **Return vs close.** A return pushes its connection idle, fences, then reads `closed`;
//!   closing swaps `closed`, fences, then drains the queue. One of the two sees the other, so
//!   no connection stays idle in a closed pool ([`Counts::push_idle`]).
//! - **No surplus kept idle.** The same handshake with `resize`: a push that a shrink's pops
//!   missed sees the new `max_size`, and its pusher closes one idle connection, so once the
//!   pushes and the shrink are done at most `max_size` connections are alive (counting the
//!   ones still being closed).

use crossbeam_queue::ArrayQueue;

use super::super::permits::Permits;
use super::super::sync::{fence, AtomicBool, AtomicUsize, Ordering::*};

/// `size`, `connecting`, `max_size`, `shed` and `closed`: see the core's field docs.
pub(crate) struct Counts {
    /// Every live connection, idle or not, including the ones being opened or closed.
    pub(super) size: AtomicUsize,
    /// Connect attempts holding a [`Reservation`](super::Reservation).
    pub(super) connecting: AtomicUsize,
    pub(super) max_size: AtomicUsize,
    /// Permits still to be forgotten as they come back: after `resize` shrank `max_size`, and
    /// one per promotion of the wait watchdog.
    pub(super) shed: AtomicUsize,
    pub(super) closed: AtomicBool,
}

/// Where [`Counts::push_idle`] left a connection.
pub(crate) enum Pushed<T> {
    /// In the queue, and the pool is open.
    Idle,
    /// In the queue, but the pool was closed meanwhile: closing may have drained the queue
    /// before the push, so the pusher drains it.
    Closed,
    /// In the queue, but `resize` shrank `max_size` meanwhile and may have looked for surplus
    /// before the push: the pusher closes one idle connection.
    Surplus,
    /// Not pushed: the queue is full (unreachable while its capacity is at least `max_size`).
    Full(T),
}

impl Counts {
    /// An open pool with no connection and `max_size` permits to circulate.
    pub(crate) fn new(max_size: usize) -> Self {
        Counts {
            size: AtomicUsize::new(0),
            connecting: AtomicUsize::new(0),
            max_size: AtomicUsize::new(max_size),
            shed: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Takes one unit of `connecting` (below `max_connecting`) and one of `size` (below
    /// `max_size`), or neither.
    pub(crate) fn try_reserve(&self, max_connecting: usize) -> bool {
        if self
            .connecting
            .fetch_update(SeqCst, SeqCst, |c| (c < max_connecting).then_some(c + 1))
            .is_err()
        {
            return false;
        }
        let max = self.max_size.load(SeqCst);
        if self
            .size
            .fetch_update(SeqCst, SeqCst, |s| (s < max).then_some(s + 1))
            .is_err()
        {
            self.connecting.fetch_sub(1, SeqCst);
            return false;
        }
        true
    }

    /// A connect attempt ended (its unit of `size` lives on in a connection, or is freed).
    pub(crate) fn end_connect(&self) {
        self.connecting.fetch_sub(1, SeqCst);
    }

    /// One unit of `size` is gone. The caller fences before looking for starving waiters.
    pub(crate) fn release_size(&self) {
        self.size.fetch_sub(1, SeqCst);
    }

    /// Whether the connections alive fit in `max_size` (a returned one is not surplus).
    #[inline]
    pub(crate) fn within_max(&self) -> bool {
        self.size.load(Relaxed) <= self.max_size.load(Relaxed)
    }

    /// Gives a permit back, unless `shed` owes one (`resize` shrank the pool, or the watchdog
    /// promoted a waiter): then it is forgotten instead.
    #[inline]
    pub(crate) fn release_permit(&self, permits: &Permits) {
        if !self.take_shed() {
            permits.release(1);
        }
    }

    /// Takes one unit of `shed` if any is owed.
    #[inline]
    fn take_shed(&self) -> bool {
        self.shed
            .fetch_update(Relaxed, Relaxed, |s| s.checked_sub(1))
            .is_ok()
    }

    /// Sets `max_size` and moves permits to match: growing pays what `shed` owes first, then
    /// releases the rest; shrinking forgets the permits nobody holds and owes the others to
    /// `shed`, forgotten as their holders release them. Returns how many connections are
    /// surplus now (`size` over the new `max_size`), for the caller to close from the idle
    /// queue; the others are closed when they come back (`within_max`).
    pub(crate) fn resize(&self, permits: &Permits, max: usize) -> usize {
        let old = self.max_size.swap(max, SeqCst);
        if max > old {
            let mut add = max - old;
            while add > 0 && self.take_shed() {
                add -= 1;
            }
            permits.release(add);
        } else if max < old {
            let want = old - max;
            let forgotten = permits.forget(want);
            self.shed.fetch_add(want - forgotten, Relaxed);
        }
        // Pairs with `push_idle`'s fence: a push this caller's pops miss sees the new
        // `max_size`.
        fence(SeqCst);
        self.size.load(SeqCst).saturating_sub(max)
    }

    /// Marks the pool closed; `false` if it already was. The caller then drains the queue.
    pub(crate) fn close(&self) -> bool {
        let first = !self.closed.swap(true, SeqCst);
        // Pairs with `push_idle`'s fence, so that the drain that follows sees every push whose
        // pusher read `closed` as false.
        fence(SeqCst);
        first
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    /// Pushes `item` idle, then tells whether the pool was closed or shrunk meanwhile. The
    /// fence pairs with the ones in `close` and `resize`: either the push comes first and
    /// their pops can take it, or they do and the pusher sees `closed` (it drains the queue)
    /// or the new `max_size` (it closes one idle connection). A return checks
    /// [`within_max`](Self::within_max) before pushing, but a shrink can come between that
    /// check and the push, and a connect that reserved before the shrink lands after it.
    #[inline]
    pub(crate) fn push_idle<T>(&self, idle: &ArrayQueue<T>, item: T) -> Pushed<T> {
        if let Err(item) = idle.push(item) {
            return Pushed::Full(item);
        }
        fence(SeqCst);
        if self.closed.load(Relaxed) {
            Pushed::Closed
        } else if !self.within_max() {
            Pushed::Surplus
        } else {
            Pushed::Idle
        }
    }
}

#[cfg(all(test, wirepool_loom))]
mod loom_tests;
