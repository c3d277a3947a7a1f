//! The background task, under paused time: min_size kept, idle shrink after max_idle,
//! expiry replacement, reconnect backoff and `reconnect_failed`, and shutdown on drop.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use support::pool_mock::{builder, open_ready, settle_for, Gate, Mock};
use wirepool::pool::ConnState;

#[tokio::test(start_paused = true)]
async fn keeps_min_size_after_losses() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).min_size(3).max_size(5)).await;
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
    let pool = open_ready(
        builder(&mock)
            .min_size(1)
            .max_size(4)
            .max_idle(Duration::from_secs(60)),
    )
    .await;
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
    let pool = open_ready(
        builder(&mock)
            .min_size(2)
            .max_lifetime(Duration::from_secs(100)),
    )
    .await;
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
    // Attempts at 0, ~0.25 and ~0.75 s, then every ~550 ms (±10%), one at a time; the one
    // whose wait would end past 10 s is not made: reconnect_failed instead.
    settle_for(Duration::from_millis(100)).await;
    assert_eq!(mock.shared.connects.load(SeqCst), 1);
    settle_for(Duration::from_millis(400)).await;
    assert_eq!(mock.shared.connects.load(SeqCst), 2);
    settle_for(Duration::from_millis(500)).await;
    assert_eq!(mock.shared.connects.load(SeqCst), 3);
    settle_for(Duration::from_millis(9500)).await;
    let connects = mock.shared.connects.load(SeqCst);
    assert!(
        (17..=20).contains(&connects),
        "{connects} attempts in 10.5 s"
    );
    // Given up: no attempt until maintenance's next tick.
    settle_for(Duration::from_secs(5)).await;
    assert_eq!(mock.shared.connects.load(SeqCst), connects);
    assert_eq!(failed.load(SeqCst), 1);
    assert_eq!(pool.stats().connections_errors, connects as u64);
    // The database comes back: the pool recovers on its own.
    mock.shared.set(|s| s.connect = Gate::Ok);
    pool.wait(Duration::from_secs(40)).await.unwrap();
    assert_eq!(pool.stats().pool_available, 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_closes_and_stops_background_work() {
    let mock = Mock::new();
    let pool = open_ready(
        builder(&mock)
            .min_size(2)
            .max_lifetime(Duration::from_secs(10)),
    )
    .await;
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

/// `max_lifetime(Duration::ZERO)` means no limit (HikariCP's 0): no expiry, and maintenance
/// does not read it as "already expired" and replace every connection at every tick.
#[tokio::test(start_paused = true)]
async fn max_lifetime_zero_means_no_limit_not_churn() {
    let mock = Mock::new();
    let pool = builder(&mock)
        .min_size(4)
        .max_size(4)
        .max_lifetime(Duration::ZERO)
        .open()
        .await
        .unwrap();
    pool.wait(Duration::from_secs(5)).await.unwrap();
    settle_for(Duration::from_secs(2 * 3600)).await;
    assert_eq!(mock.shared.connects.load(SeqCst), 4);
    assert_eq!(mock.shared.closes.load(SeqCst), 0);
    assert_eq!(pool.stats().pool_available, 4);
}

/// `max_idle(Duration::ZERO)` means no limit too: connections above `min_size` stay open.
#[tokio::test(start_paused = true)]
async fn max_idle_zero_means_no_limit() {
    let mock = Mock::new();
    let pool = open_ready(
        builder(&mock)
            .min_size(1)
            .max_size(4)
            .max_idle(Duration::ZERO),
    )
    .await;
    drop(futures_join(&pool, 4).await);
    settle_for(Duration::from_secs(50 * 60)).await; // 5 × the default max_idle, < max_lifetime
    let s = pool.stats();
    assert_eq!((s.pool_size, s.pool_available), (4, 4), "{s:?}");
    assert_eq!(mock.shared.closes.load(SeqCst), 0);
}

/// psycopg's shrink rule: under light steady load the FIFO queue rotates every connection, so none
/// is ever idle for max_idle and the per-connection rule never shrinks. psycopg's rule does: each
/// max_idle period in which the idle queue never ran dry closes one connection, down to what the
/// load needs (here 1, plus at most one spare the period's rule has not reached yet).
#[tokio::test(start_paused = true)]
async fn max_idle_shrinks_under_light_rotating_load() {
    let mock = Mock::new();
    let pool = builder(&mock)
        .min_size(1)
        .max_size(8)
        .max_idle(Duration::from_secs(600))
        .max_lifetime(Duration::ZERO) // no expiry: only max_idle may shrink this pool
        .open()
        .await
        .unwrap();
    pool.wait(Duration::from_secs(5)).await.unwrap();
    let mut spike = Vec::new();
    for _ in 0..8 {
        let p = pool.clone();
        spike.push(tokio::spawn(async move { p.connection().await.unwrap() }));
    }
    let mut held = Vec::new();
    for h in spike {
        held.push(h.await.unwrap());
    }
    assert_eq!(mock.shared.live(), 8);
    drop(held);
    settle_for(Duration::from_secs(10)).await;
    // One request a minute (concurrency 1) for 90 minutes: 9 max_idle periods.
    for _ in 0..90 {
        drop(pool.connection().await.unwrap());
        settle_for(Duration::from_secs(60)).await;
    }
    assert!(
        mock.shared.live() <= 2,
        "{} connections kept for a load of 1",
        mock.shared.live()
    );
    assert!(pool.stats().pool_size >= 1);
    assert_eq!(pool.stats().requests_errors, 0);
}

/// Review 3: a return stamps `idle_since` from the cached clock reading, which under paused
/// time (the coarse kernel clock does not follow it) lags by up to a whole maintenance tick;
/// the idle sweep compares it with `max_idle` exactly, so a connection idle for less than
/// `max_idle` is closed. Here: max_idle 60 s (tick 15 s, ticks at 0, 15, 30, ...), the
/// connection goes idle at 14 s, so at the 60 s sweep it has been idle 46 s.
#[tokio::test(start_paused = true)]
async fn a_connection_idle_for_less_than_max_idle_is_not_closed() {
    let mock = Mock::new();
    let pool = builder(&mock)
        .min_size(0)
        .max_size(1)
        .max_idle(Duration::from_secs(60))
        .open()
        .await
        .unwrap();
    let conn = pool.connection().await.unwrap();
    settle_for(Duration::from_secs(14)).await;
    drop(conn); // idle from t ≈ 14 s
    settle_for(Duration::from_secs(56)).await; // t ≈ 70 s: idle ≈ 56 s < 60 s
    let s = pool.stats();
    assert_eq!(
        (s.pool_size, mock.shared.closes.load(SeqCst)),
        (1, 0),
        "closed after ≈ 46-56 s idle, max_idle is 60 s: {s:?}"
    );
    settle_for(Duration::from_secs(20)).await; // t ≈ 90 s: idle ≈ 76 s
    assert_eq!(pool.stats().pool_size, 0, "closed once idle for max_idle");
}
