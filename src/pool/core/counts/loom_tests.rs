//! loom models of the size accounting: reservations against `max_size`, a return racing the
//! pool's close, and a `resize` racing returns (`shed`), checked against the invariants in
//! `counts.rs` and the core's header. The permit word is modelled too (`permits.rs`); tokio's
//! semaphore and crossbeam's idle queue are outside the model: each of their calls is one step
//! that loom does not look inside (docs/architecture.md, "Model-checked accounting").
//!
//! Run with `RUSTFLAGS="--cfg wirepool_loom" cargo test --release --lib loom`.

use crossbeam_queue::ArrayQueue;
use loom::sync::Arc;
use loom::thread;

use super::*;
use crate::pool::sync::model::check;

/// The counts with the permits and the idle queue around them, driven through the core's
/// calls in the core's order: a return as `returning::return_slot` makes it (closed: discard;
/// reusable: `Core::push_idle`, draining if closed meanwhile and closing one idle connection
/// if shrunk meanwhile; surplus: discard; then the permit),
/// closing as `Core::mark_closed` and `close_idle`, a resize as `Core::resize`. A discard
/// frees its unit of `size` at once (the core's does once `Manage::close` has finished).
struct Pool {
    counts: Counts,
    permits: Permits,
    idle: ArrayQueue<u8>,
}

impl Pool {
    /// `max` permits and `max` connections, all checked out (every permit held).
    fn checked_out(max: usize) -> Arc<Pool> {
        let pool = Pool {
            counts: Counts::new(max),
            permits: Permits::new(max),
            idle: ArrayQueue::new(max.max(1)),
        };
        for _ in 0..max {
            assert!(pool.counts.try_reserve(max));
            pool.counts.end_connect();
            pool.permits.try_acquire().unwrap();
        }
        Arc::new(pool)
    }

    fn give_back(&self, conn: u8) {
        if self.counts.is_closed() {
            self.discard(conn);
        } else if self.counts.within_max() {
            match self.counts.push_idle(&self.idle, conn) {
                Pushed::Idle => {}
                Pushed::Closed => self.drain(),
                Pushed::Surplus => {
                    if let Some(surplus) = self.idle.pop() {
                        self.discard(surplus);
                    }
                }
                Pushed::Full(_) => unreachable!("capacity ≥ max_size"),
            }
        } else {
            self.discard(conn);
        }
        self.counts.release_permit(&self.permits);
    }

    fn discard(&self, _conn: u8) {
        self.counts.release_size();
    }

    fn drain(&self) {
        while let Some(conn) = self.idle.pop() {
            self.discard(conn);
        }
    }

    fn close(&self) {
        if self.counts.close() {
            self.permits.close();
        }
        self.drain();
    }

    fn resize(&self, max: usize) {
        let mut excess = self.counts.resize(&self.permits, max);
        while excess > 0 {
            let Some(conn) = self.idle.pop() else { break };
            self.discard(conn);
            excess -= 1;
        }
    }

    fn size(&self) -> usize {
        self.counts.size.load(SeqCst)
    }
}

/// Both checked-out connections of `pool` come back on threads of their own while this thread
/// runs `act`; returns once all three are done.
fn while_both_return(pool: &Arc<Pool>, act: impl FnOnce(&Pool)) {
    let returns: Vec<_> = (0..2u8)
        .map(|conn| {
            let pool = Arc::clone(pool);
            thread::spawn(move || pool.give_back(conn))
        })
        .collect();
    act(pool);
    for t in returns {
        t.join().unwrap();
    }
}

/// Bounded size: three connects race for two slots, at most two of them at once. Every
/// interleaving grants at most `max_size` reservations, `connecting` never passes
/// `max_connecting`, and `size` is exactly the reservations granted.
#[test]
fn reservations_never_exceed_max_size_or_max_connecting() {
    check("reserve_bounded", || {
        let counts = Arc::new(Counts::new(2));
        let connect = |counts: &Counts| {
            if !counts.try_reserve(2) {
                return 0;
            }
            assert!(counts.connecting.load(SeqCst) <= 2, "max_connecting passed");
            assert!(counts.size.load(SeqCst) <= 2, "max_size passed");
            counts.end_connect();
            1
        };
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let counts = Arc::clone(&counts);
                thread::spawn(move || connect(&counts))
            })
            .collect();
        let mut granted = connect(&counts);
        for t in threads {
            granted += t.join().unwrap();
        }
        assert_eq!(granted, 2, "two slots, three tries: both are granted");
        assert_eq!(counts.size.load(SeqCst), granted);
        assert_eq!(counts.connecting.load(SeqCst), 0);
    });
}

/// Return vs close: two connections come back while the pool closes. Whatever the order
/// (closed before the return looked, between its look and its push, or after the push), no
/// connection is left idle in the closed pool, every unit of `size` is freed, and no permit
/// can be taken afterwards.
#[test]
fn returns_racing_close_leave_nothing_idle_and_size_zero() {
    check("return_vs_close", || {
        let pool = Pool::checked_out(2);
        while_both_return(&pool, Pool::close);
        assert!(
            pool.idle.is_empty(),
            "a connection was left idle in a closed pool"
        );
        assert_eq!(pool.size(), 0, "a unit of size was not freed");
        assert!(pool.permits.try_acquire().is_err(), "a permit after close");
    });
}

/// Shed on resize: the pool shrinks from two to one while both connections come back. The
/// permit owed to `shed` is forgotten by one release whatever the order, so afterwards one
/// permit is free and nothing is owed; every connection is idle or freed; and at most one is
/// alive: a return that reads the new `max_size` closes its connection as surplus, and one
/// that pushed before `resize` looked is closed from the idle queue by `resize` itself.
#[test]
fn a_shrink_racing_returns_sheds_one_permit_and_one_connection() {
    check("shed_on_resize", || {
        let pool = Pool::checked_out(2);
        while_both_return(&pool, |pool| pool.resize(1));
        let shed = pool.counts.shed.load(SeqCst);
        assert!(shed <= 1, "more owed than the shrink asked");
        assert_eq!(
            pool.permits.available() - shed,
            1,
            "free permits less those owed to shed, after shrinking to one"
        );
        assert_eq!(pool.size(), pool.idle.len(), "a unit of size was not freed");
        assert!(
            pool.size() <= 1,
            "{} connections alive with max_size 1",
            pool.size()
        );
    });
}

/// Growing back: a shrink's debt to `shed` is still owed (a permit held) when the pool grows
/// again, racing the holder's return. The grow pays the debt first, so the permits free at
/// the end are the new `max_size`, whoever went first.
#[test]
fn a_grow_pays_shed_before_adding_permits() {
    check("grow_pays_shed", || {
        let pool = Pool::checked_out(2);
        pool.resize(1); // both permits held: one is owed to `shed`
        assert_eq!(pool.counts.shed.load(SeqCst), 1);
        while_both_return(&pool, |pool| pool.resize(2));
        assert_eq!(
            pool.permits.available(),
            2,
            "permits after growing back to two"
        );
        assert_eq!(pool.counts.shed.load(SeqCst), 0, "shed still owed");
        assert_eq!(pool.size(), pool.idle.len(), "a unit of size was not freed");
    });
}
