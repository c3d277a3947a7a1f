//! Faults in settings and user code the pool must survive without leaking a slot or storming
//! the server: extreme durations, hung and panicking connects and hooks, hooks that leave a
//! connection mid-transaction. In-memory (`pool_support::Mock`), paused time.

mod pool_support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use pool_support::{builder, Mock};

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
    pool_support::settle_for(Duration::from_secs(7200)).await;
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
    pool_support::settle_for(Duration::from_secs(1800)).await;
    assert!(
        !a.is_finished() && !b.is_finished(),
        "still waiting, not failed"
    );
    drop(held);
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
}
