//! Faults in settings and user code the pool must survive without leaking a slot or storming
//! the server: extreme durations, hung and panicking connects and hooks, hooks that leave a
//! connection mid-transaction. In-memory (`pool_support::Mock`), paused time.

mod pool_support;

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use pool_support::{builder, settle_for, Gate, Mock, MockConn};
use wirepool::pool::ConnHook;

/// `max_lifetime(Duration::MAX)` ("never expire") must neither panic in the connect task nor
/// leak the unit of `size` its reservation held (it used to: `now + lifetime` overflowed after
/// `landed` was already set, so nothing freed the slot and a `max_size(1)` pool was dead).
#[tokio::test(start_paused = true)]
async fn max_lifetime_max_means_never_and_leaks_nothing() {
    let mock = Mock::new();
    let pool = builder(&mock)
        .min_size(1)
        .max_size(1)
        .max_lifetime(Duration::MAX)
        .open()
        .await
        .unwrap();
    pool.wait(Duration::from_secs(5)).await.unwrap();
    let conn = pool
        .connection_timeout(Duration::from_secs(1))
        .await
        .unwrap();
    drop(conn);
    settle_for(Duration::from_secs(7200)).await;
    let s = pool.stats();
    assert_eq!((s.pool_size, s.pool_available), (1, 1), "{s:?}");
    assert_eq!(
        mock.shared.connects.load(SeqCst),
        1,
        "never expired, never replaced"
    );
}

/// `Duration::MAX` as a checkout timeout, the pool's `timeout`, or `wait`'s means "wait
/// forever", not an `Instant` overflow panic in the slow path.
#[tokio::test(start_paused = true)]
async fn duration_max_timeouts_wait_instead_of_panicking() {
    let mock = Mock::new();
    let pool = builder(&mock)
        .min_size(1)
        .max_size(1)
        .timeout(Duration::MAX)
        .open()
        .await
        .unwrap();
    pool.wait(Duration::MAX).await.unwrap();
    let held = pool.connection().await.unwrap();
    // Slow path: no permit, so both wait (past the first half hour) until `held` returns.
    let p = pool.clone();
    let a = tokio::spawn(async move { p.connection_timeout(Duration::MAX).await.map(drop) });
    let p = pool.clone();
    let b = tokio::spawn(async move { p.connection().await.map(drop) });
    settle_for(Duration::from_secs(1800)).await;
    assert!(
        !a.is_finished() && !b.is_finished(),
        "still waiting, not failed"
    );
    drop(held);
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
}

/// A connect that never completes (black-holed SYN, a server stuck in auth) used to count as
/// "on its way" forever: no later waiter started another connect, even with the server
/// healthy again. `connect_timeout` (default 30 s) bounds each attempt.
#[tokio::test(start_paused = true)]
async fn one_hung_connect_does_not_block_growth_forever() {
    let mock = Mock::new();
    mock.shared.set(|s| s.connect = Gate::Never);
    let pool = builder(&mock)
        .min_size(0)
        .max_size(4)
        .max_connecting(2)
        .timeout(Duration::from_secs(1))
        .open()
        .await
        .unwrap();
    assert!(pool.connection().await.is_err()); // the server is down: fine
    mock.shared.set(|s| s.connect = Gate::Ok); // the server is back
    settle_for(Duration::from_secs(120)).await;
    let r = pool.connection_timeout(Duration::from_secs(30)).await;
    assert!(
        r.is_ok(),
        "server healthy for 2 min, checkout still fails: {:?} stats {:?}",
        r.err(),
        pool.stats()
    );
}

/// A timed-out attempt (the configure hook included) is a failed attempt: counted, retried
/// with backoff, and reported as the last connect error.
#[tokio::test(start_paused = true)]
async fn connect_timeout_bounds_connect_and_configure_and_is_reported() {
    let mock = Mock::new();
    let hang: ConnHook<MockConn> = Arc::new(|_c| Box::pin(std::future::pending()));
    let pool = builder(&mock)
        .min_size(1)
        .max_size(1)
        .connect_timeout(Duration::from_secs(2))
        .configure(hang)
        .open()
        .await
        .unwrap();
    let e = pool
        .connection_timeout(Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(e.is_pool_timeout(), "{e}");
    let last = e.pool_timeout_info().unwrap().last_connect_error.clone();
    assert_eq!(last.as_deref(), Some("timed out connecting to the server"));
    // 2 s attempt, ~1 s backoff, 2 s, ~2 s backoff, 2 s: three attempts in 10 s, not a storm.
    let s = pool.stats();
    assert_eq!(s.connections_errors, 3, "{s:?}");
    assert_eq!(mock.shared.live(), 0, "timed-out connections are dropped");
}
