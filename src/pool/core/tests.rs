//! The core's counters where ordering matters and no integration test can stop another task
//! between two atomic steps.

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use crate::pool::testing;

/// The idle count drops in the same step that gives the connection up (it is the queue's own
/// length), so right after a checkout's pop no one sees a phantom idle connection: a starving
/// waiter's `wants_growth` already asks for a connect.
#[tokio::test]
async fn a_pop_leaves_no_phantom_idle_connection() {
    let core = testing::core(0, 2, Duration::from_secs(30));
    core.counts.size.store(1, SeqCst);
    core.push_idle(core.new_slot(0));
    assert_eq!(core.idle_count(), 1);
    core.starving.store(1, SeqCst);
    assert!(
        !core.wants_growth(),
        "an idle connection covers the starving waiter"
    );
    assert!(core.try_pop().is_some());
    assert_eq!(core.idle_count(), 0);
    assert!(
        core.wants_growth(),
        "the connection just popped is not counted as idle"
    );
    assert!(core.try_pop().is_none());
    assert_eq!(core.idle_count(), 0);
}

/// A reservation is granted only while growth is wanted and within `max_size`; landing moves
/// its unit of `size` to the connection, and dropping one that never landed frees it.
#[tokio::test]
async fn reservations_stay_within_max_size_and_free_their_unit() {
    let core = testing::core(2, 2, Duration::from_secs(30));
    let first = core.try_reserve().expect("below min_size");
    let second = core.try_reserve().expect("below min_size");
    assert!(core.try_reserve().is_none(), "max_size reached");
    assert_eq!((core.size(), core.counts.connecting.load(SeqCst)), (2, 2));
    drop(first);
    assert_eq!(
        (core.size(), core.counts.connecting.load(SeqCst)),
        (1, 1),
        "unit freed"
    );
    let mut second = second;
    second.land(7).into_idle();
    drop(second);
    assert_eq!(
        (
            core.size(),
            core.idle_count(),
            core.counts.connecting.load(SeqCst)
        ),
        (1, 1, 0)
    );
}

/// A connect that reserved its slot before a shrink lands after it: the landing finds `size`
/// over the new `max_size` once pushed (`Pushed::Surplus`) and closes an idle connection, so
/// the server is not left with more sessions than `max_size`. Once that close has finished,
/// the next landing fits and stays idle.
#[tokio::test]
async fn a_connection_landing_after_a_shrink_is_closed_as_surplus() {
    let core = testing::core(2, 2, Duration::from_secs(30));
    let mut first = core.try_reserve().expect("below min_size");
    let mut second = core.try_reserve().expect("below min_size");
    core.resize(1, 1);
    assert_eq!(core.idle_count(), 0, "nothing idle for resize to close");
    first.land(0).into_idle();
    drop(first);
    assert_eq!(
        core.idle_count(),
        0,
        "the surplus landing was not kept idle"
    );
    for _ in 0..100 {
        if core.size() == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(core.size(), 1, "its close has finished and freed the slot");
    second.land(1).into_idle();
    drop(second);
    assert_eq!(
        (core.size(), core.idle_count()),
        (1, 1),
        "within max_size: kept"
    );
}
