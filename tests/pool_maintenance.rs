//! The background task, under paused time: min_size kept, idle shrink after max_idle,
//! expiry replacement, reconnect backoff and `reconnect_failed`, and shutdown on drop.

mod pool_support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use pool_support::{builder, settle_for, Gate, Mock};
use wirepool::pool::ConnState;

#[tokio::test(start_paused = true)]
async fn keeps_min_size_after_losses() {
    let mock = Mock::new();
    let pool = builder(&mock).min_size(3).max_size(5).open().await.unwrap();
    pool.wait(Duration::from_secs(1)).await.unwrap();
    let mut a = pool.connection().await.unwrap();
    a.state = ConnState::Broken;
    drop(a);
    mock.shared.kill_all(); // the two idle ones die too; maintenance only notices by expiry,
    pool.check().await.unwrap(); // so check() finds them
    settle_for(Duration::from_secs(2)).await;
    let s = pool.stats();
    assert_eq!((s.pool_size, s.pool_available), (3, 3));
    assert_eq!(mock.shared.live(), 3);
}

#[tokio::test(start_paused = true)]
async fn closes_idle_above_min_after_max_idle() {
    let mock = Mock::new();
    let pool = builder(&mock)
        .min_size(1)
        .max_size(4)
        .max_idle(Duration::from_secs(60))
        .open()
        .await
        .unwrap();
    pool.wait(Duration::from_secs(1)).await.unwrap();
    let held: Vec<_> = futures_join(&pool, 4).await;
    drop(held);
    assert_eq!(pool.stats().pool_available, 4);
    settle_for(Duration::from_secs(30)).await;
    assert_eq!(pool.stats().pool_available, 4, "not yet idle for max_idle");
    settle_for(Duration::from_secs(60)).await;
    let s = pool.stats();
    assert_eq!((s.pool_size, s.pool_available), (1, 1), "{s:?}");
    assert_eq!(mock.shared.closes.load(SeqCst), 3);
}

async fn futures_join(
    pool: &wirepool::Pool<Mock>,
    n: usize,
) -> Vec<wirepool::PooledConnection<Mock>> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(pool.connection().await.unwrap());
    }
    v
}

#[tokio::test(start_paused = true)]
async fn replaces_expired_idle_connections() {
    let mock = Mock::new();
    let pool = builder(&mock)
        .min_size(2)
        .max_lifetime(Duration::from_secs(100))
        .open()
        .await
        .unwrap();
    pool.wait(Duration::from_secs(1)).await.unwrap();
    settle_for(Duration::from_secs(130)).await;
    let s = pool.stats();
    assert_eq!(
        (s.pool_size, s.pool_available, s.connections_num),
        (2, 2, 4),
        "{s:?}"
    );
    assert_eq!(mock.shared.closes.load(SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn reconnects_with_backoff_then_calls_reconnect_failed() {
    let mock = Mock::new();
    mock.shared.set(|s| s.connect = Gate::Err);
    let failed = Arc::new(AtomicUsize::new(0));
    let f2 = Arc::clone(&failed);
    let pool = builder(&mock)
        .min_size(1)
        .max_connecting(1)
        .reconnect_timeout(Duration::from_secs(10))
        .reconnect_failed(move |name| {
            assert_eq!(name, "test");
            f2.fetch_add(1, SeqCst);
        })
        .open()
        .await
        .unwrap();
    // Attempts at 0, ~1, ~3, ~7 s (1 s doubling, ±10%); the next (~15 s) is past 10 s.
    settle_for(Duration::from_millis(500)).await;
    assert_eq!(mock.shared.connects.load(SeqCst), 1);
    settle_for(Duration::from_millis(1000)).await;
    assert_eq!(mock.shared.connects.load(SeqCst), 2);
    settle_for(Duration::from_millis(2000)).await;
    assert_eq!(mock.shared.connects.load(SeqCst), 3);
    settle_for(Duration::from_millis(4000)).await;
    assert_eq!(mock.shared.connects.load(SeqCst), 4);
    assert_eq!(failed.load(SeqCst), 1);
    assert_eq!(pool.stats().connections_errors, 4);
    // The database comes back: the pool recovers on its own.
    mock.shared.set(|s| s.connect = Gate::Ok);
    pool.wait(Duration::from_secs(40)).await.unwrap();
    assert_eq!(pool.stats().pool_available, 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_closes_and_stops_background_work() {
    let mock = Mock::new();
    let pool = builder(&mock)
        .min_size(2)
        .max_lifetime(Duration::from_secs(10))
        .open()
        .await
        .unwrap();
    pool.wait(Duration::from_secs(1)).await.unwrap();
    let conn = pool.connection().await.unwrap();
    let clone = pool.clone();
    drop(pool);
    settle_for(Duration::from_secs(1)).await;
    assert_eq!(
        mock.shared.closes.load(SeqCst),
        0,
        "a handle is still alive"
    );
    drop(clone);
    settle_for(Duration::from_secs(60)).await;
    assert_eq!(mock.shared.closes.load(SeqCst), 1, "the idle one is closed");
    assert_eq!(
        mock.shared.connects.load(SeqCst),
        2,
        "no replacement after close"
    );
    drop(conn);
    settle_for(Duration::from_secs(1)).await;
    assert_eq!(
        (mock.shared.closes.load(SeqCst), mock.shared.live()),
        (2, 0)
    );
}
