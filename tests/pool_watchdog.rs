//! The wait watchdog (`src/pool/waiting.rs`) and the cached clock (`src/pool/clock.rs`) at their
//! edges: an unpolled promoted waiter, a runtime stalled between `block_on` calls, promotions in
//! flight across `resize` and `close`, and extreme durations. In-memory connections; paused time
//! except where a stall must be real.

mod support;

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use support::pool_mock::{builder, open_ready, settle_for, Mock};

/// Polls `f` once; `true` if it is still pending.
async fn poll_once<F: Future + ?Sized>(mut f: Pin<&mut F>) -> bool {
    poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx).is_pending())).await
}

/// One promotion per due waiter: a queued checkout polled once and then not again for a while (held
/// in a `select!` loop, a busy `FuturesUnordered`, or a worker slower than the watchdog's recheck)
/// keeps its count in its deadline slot after its promotion. The watchdog must not promote again
/// for it at every rescan: each promotion adds a permit nobody queued would take, so
/// `permits_available` would grow without bound and later checkouts would skip the queue.
#[tokio::test(start_paused = true)]
async fn an_unpolled_promoted_waiter_does_not_mint_permits() {
    let mock = Mock::new();
    let pool = open_ready(
        builder(&mock)
            .min_size(1)
            .max_size(1)
            .timeout(Duration::from_secs(1)),
    )
    .await;
    let held = pool.getconn().await.unwrap();
    settle_for(Duration::from_millis(100)).await; // the watchdog is running
    let mut stuck = Box::pin(pool.connection());
    assert!(poll_once(stuck.as_mut()).await, "queued behind `held`");
    assert_eq!(pool.stats().permits_available, 0);
    // Its deadline comes and goes without the future being polled again.
    settle_for(Duration::from_secs(3)).await;
    let s = pool.stats();
    assert_eq!(
        s.permits_available, 0,
        "one connection, held; the stuck waiter holds the one promotion: {s:?}"
    );
    drop(stuck);
    drop(held);
}

/// The clock's lag after a stall (`clock.rs`, "the cached reading lags, never leads"): when the
/// runtime has run neither the maintenance task nor any return for more than two ticks (sync code
/// calling `block_on` between long pauses), the coarse clock is stale and a checkout may hand out a
/// connection that expired meanwhile, but only once: its return reads the real clock and closes it
/// (psycopg_pool checks expiry only at return), and the next checkout gets a new one. Real time (a
/// sync caller sleeping), not paused.
#[test]
fn after_a_stalled_runtime_an_expired_connection_is_handed_out_at_most_once() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mock = Mock::new();
    let pool = rt.block_on(async {
        let pool = open_ready(
            builder(&mock)
                .min_size(1)
                .max_size(1)
                .max_lifetime(Duration::from_millis(200)),
        )
        .await;
        let first = pool.connection().await.unwrap();
        assert_eq!(first.id, 0);
        pool
    });
    // The sync caller does something else for three lifetimes.
    std::thread::sleep(Duration::from_millis(600));
    rt.block_on(async {
        drop(pool.connection().await.unwrap()); // may still be connection 0: closed on return
        let conn = pool.connection().await.unwrap();
        assert_ne!(
            conn.id, 0,
            "connection 0 is 600 ms old, past its 200 ms max_lifetime"
        );
    });
}

/// A promotion in flight while `resize` grows then shrinks the pool,
/// then `close`: every permit is accounted for, the promoted waiter is served by the growth,
/// and a waiter still promoted at close fails at once.
#[tokio::test(start_paused = true)]
async fn resize_and_close_with_promotions_in_flight_conserve_permits() {
    let mock = Mock::new();
    let pool = open_ready(
        builder(&mock)
            .min_size(1)
            .max_size(1)
            .max_size_limit(4)
            .timeout(Duration::from_secs(1)),
    )
    .await;
    let held = pool.getconn().await.unwrap();
    settle_for(Duration::from_millis(10)).await;
    let p = pool.clone();
    let promoted = tokio::spawn(async move { p.connection().await.map(|c| c.id) });
    // 7/8 of the timeout in: promoted, starving on its own timer.
    settle_for(Duration::from_millis(800)).await;
    pool.resize(1, 2).unwrap();
    assert_eq!(promoted.await.unwrap().unwrap(), 1, "served by the growth");
    settle_for(Duration::from_millis(10)).await;
    assert_eq!(pool.stats().permits_available, 1, "{:?}", pool.stats());
    pool.resize(1, 1).unwrap();
    settle_for(Duration::from_millis(10)).await;
    assert_eq!(pool.stats().permits_available, 0, "{:?}", pool.stats());
    let p = pool.clone();
    let late = tokio::spawn(async move { p.connection().await.map(drop) });
    settle_for(Duration::from_millis(900)).await; // promoted by now
    pool.close().await;
    assert!(late.await.unwrap().unwrap_err().is_pool_closed());
    drop(held);
}

/// Extreme settings neither panic (debug overflow checks) nor hang a
/// waiter past its own deadline: `Duration::MAX` everywhere, and per-call timeouts of zero and
/// of `Duration::MAX` queued behind each other on a pool whose own timeout is `Duration::MAX`.
#[tokio::test(start_paused = true)]
async fn extreme_durations_neither_panic_nor_hang() {
    let mock = Mock::new();
    let pool = builder(&mock)
        .min_size(1)
        .max_size(1)
        .timeout(Duration::MAX)
        .max_lifetime(Duration::MAX)
        .max_idle(Duration::MAX)
        .return_timeout(Duration::MAX)
        .open()
        .await
        .unwrap();
    pool.wait(Duration::MAX).await.unwrap();
    let held = pool.getconn().await.unwrap();
    let p = pool.clone();
    let forever = tokio::spawn(async move { p.connection_timeout(Duration::MAX).await.map(drop) });
    settle_for(Duration::from_millis(10)).await;
    let start = tokio::time::Instant::now();
    let zero = pool.connection_timeout(Duration::ZERO).await;
    assert!(zero.unwrap_err().is_pool_timeout());
    assert_eq!(start.elapsed(), Duration::ZERO);
    let short = pool.connection_timeout(Duration::from_millis(3)).await;
    assert!(short.unwrap_err().is_pool_timeout());
    assert_eq!(start.elapsed(), Duration::from_millis(3));
    settle_for(Duration::from_secs(3600)).await;
    assert!(!forever.is_finished());
    drop(held);
    forever.await.unwrap().unwrap();
    let s = pool.stats();
    assert_eq!((s.permits_available, s.pool_available), (1, 1), "{s:?}");
}

/// The clock's lag under tokio's paused clock (`clock.rs`): under it
/// the coarse kernel clock never says the cached reading is stale, so after `advance` past two
/// ticks a checkout loop that does not yield may get an expired connection back, re-pooled at
/// each return, until the maintenance task runs. Once the runtime has run it (any yield that
/// lets background tasks run), the cached reading is fresh and the expired connection is
/// gone: it is never handed out again. (Real time, as in production, is covered by
/// `after_a_stalled_runtime_an_expired_connection_is_handed_out_at_most_once`.)
#[tokio::test(start_paused = true)]
async fn under_paused_time_an_expired_connection_is_gone_once_maintenance_has_run() {
    let mock = Mock::new();
    let pool = open_ready(
        builder(&mock)
            .min_size(1)
            .max_size(1)
            // tick 25 s, slack 50 s
            .max_lifetime(Duration::from_secs(100)),
    )
    .await;
    tokio::time::advance(Duration::from_secs(300)).await; // maintenance woken, not yet run
    drop(pool.connection().await.unwrap()); // may be connection 0 (the documented window)
    settle_for(Duration::from_millis(100)).await; // the maintenance task runs
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(pool.connection().await.unwrap().id);
    }
    assert!(
        !ids.contains(&0),
        "connection 0 is 300 s old, max_lifetime 100 s: {ids:?}"
    );
}
