//! Pool semantics with in-memory connections and paused time: bounds, FIFO, timeouts, growth,
//! the return path's decisions, getconn/putconn, close.

mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::logs::Captured;
use support::pool_mock::{
    builder, mock_error, open_ready, settle, settle_for, Gate, Mock, MockConn,
};
use tokio::time::Instant;
use wirepool::pool::{ConnHook, ConnState, Eviction};

#[tokio::test(start_paused = true)]
async fn checkout_and_return_keep_counts() {
    let mock = Mock::new();
    let pool = builder(&mock).min_size(2).open().await.unwrap();
    pool.wait(Duration::from_secs(5)).await.unwrap();
    let s = pool.stats();
    assert_eq!(
        (s.pool_min, s.pool_max, s.pool_size, s.pool_available),
        (2, 2, 2, 2)
    );
    {
        let c = pool.connection().await.unwrap();
        assert_eq!(c.state, ConnState::Idle);
        assert_eq!(pool.stats().pool_available, 1);
        assert_eq!(pool.stats().permits_available, 1);
    }
    let s = pool.stats();
    assert_eq!(
        (s.pool_size, s.pool_available, s.permits_available),
        (2, 2, 2)
    );
    let c = pool.getconn().await.unwrap();
    pool.putconn(c).unwrap();
    let s = pool.stats();
    assert_eq!((s.pool_size, s.pool_available, s.requests_num), (2, 2, 2));
    assert_eq!(mock.shared.live(), 2);
}

/// `{:?}` of a pool shows its name, whether it is closed and the same counters as `stats()`.
#[tokio::test(start_paused = true)]
async fn a_pools_debug_shows_its_live_counters() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).name("shown").min_size(2)).await;
    for _ in 0..3 {
        drop(pool.connection().await.unwrap());
    }
    let held = pool.connection().await.unwrap();
    let s = pool.stats();
    assert_eq!((s.requests_num, s.pool_size, s.pool_available), (4, 2, 1));
    let shown = format!("{pool:?}");
    for part in [
        "name: \"shown\"",
        "closed: false",
        "requests_num: 4",
        "pool_size: 2",
        "pool_available: 1",
    ] {
        assert!(shown.contains(part), "{shown} lacks {part}");
    }
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn putconn_rejects_a_foreign_connection_and_returns_it_home() {
    let mock = Mock::new();
    let a = builder(&mock).min_size(1).open().await.unwrap();
    let b = builder(&mock).min_size(1).open().await.unwrap();
    let c = a.getconn().await.unwrap();
    let e = b.putconn(c).unwrap_err();
    assert!(e.is_foreign_connection(), "{e}");
    assert_eq!(a.stats().pool_available, 1, "returned to its own pool");
    assert_eq!(a.stats().permits_available, 1);
}

#[tokio::test(start_paused = true)]
async fn never_more_than_max_size_live_under_random_load() {
    let mock = Mock::new();
    mock.shared
        .set(|s| s.connect_delay = Duration::from_millis(30));
    let pool = builder(&mock)
        .min_size(1)
        .max_size(5)
        .max_connecting(3)
        .open()
        .await
        .unwrap();
    let mut seed = 0x1234_5678_u64;
    let mut tasks = Vec::new();
    for _ in 0..200 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let (start, hold) = (seed % 500, (seed >> 20) % 40);
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(start)).await;
            let c = pool.connection().await.unwrap();
            tokio::time::sleep(Duration::from_millis(hold)).await;
            drop(c);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    settle().await;
    assert!(
        mock.shared.max_live.load(SeqCst) <= 5,
        "max live {}",
        mock.shared.max_live.load(SeqCst)
    );
    let s = pool.stats();
    assert_eq!(s.pool_size, s.pool_available);
    assert_eq!(s.permits_available, 5);
    assert_eq!(mock.shared.live(), s.pool_size);
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_fifo_and_a_returner_does_not_barge() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).min_size(1)).await;
    let held = pool.connection().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (pool, order) = (pool.clone(), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let c = pool.connection().await.unwrap();
            order.lock().unwrap().push(i);
            tokio::time::sleep(Duration::from_millis(1)).await;
            drop(c);
        }));
        tokio::task::yield_now().await; // queue in spawn order
    }
    assert_eq!(pool.stats().requests_waiting, 5);
    // The holder returns and asks again at once: it must queue behind the five.
    drop(held);
    let again = pool.connection().await.unwrap();
    order.lock().unwrap().push(99);
    drop(again);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4, 99]);
}

#[tokio::test(start_paused = true)]
async fn timeout_is_one_deadline_with_a_snapshot() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).min_size(1).timeout(Duration::from_secs(2))).await;
    let _held = pool.connection().await.unwrap();
    let start = Instant::now();
    let e = pool.getconn().await.unwrap_err();
    assert!(e.is_pool_timeout(), "{e}");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    let info = e.pool_timeout_info().unwrap();
    assert_eq!(
        (info.pool.as_str(), info.size, info.idle, info.waiting),
        ("test", 1, 0, 1)
    );
    assert_eq!(info.waited, Duration::from_secs(2));
    assert!(info.last_connect_error.is_none());
    let s = pool.stats();
    assert_eq!(
        (s.requests_errors, s.requests_queued, s.requests_waiting),
        (1, 1, 0)
    );
    assert_eq!(s.requests_wait_ms, 2000);
}

#[tokio::test(start_paused = true)]
async fn timeout_carries_the_last_connect_error() {
    let mock = Mock::new();
    mock.shared.set(|s| s.connect = Gate::Err);
    let pool = builder(&mock).min_size(0).max_size(2).open().await.unwrap();
    // 1 s: the third attempt is due at 250 ms + 500 ms, the fourth 550 ms later, each ± 10%
    // (the jitter's seed depends on how many pools the test binary opened before this one).
    let e = pool
        .connection_timeout(Duration::from_secs(1))
        .await
        .unwrap_err();
    let text = mock_error().to_string();
    assert!(e.is_pool_timeout());
    assert_eq!(
        e.pool_timeout_info().unwrap().last_connect_error.as_deref(),
        Some(text.as_str())
    );
    // The cause is reported once, through `source()`, not folded into the message too.
    let mut chain = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        chain.push_str(": ");
        chain.push_str(&c.to_string());
        cause = c.source();
    }
    assert_eq!(chain.matches(&text).count(), 1, "{chain}");
    assert!(!e.to_string().contains(&text), "{e}");
    // Backoff (250 ms, then 500 ms) while the request waited: three attempts, not a storm.
    assert_eq!(mock.shared.connects.load(SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn wait_times_out_with_the_connect_error_and_closes() {
    let mock = Mock::new();
    mock.shared.set(|s| s.connect = Gate::Err);
    let pool = builder(&mock).min_size(1).open().await.unwrap();
    let e = pool.wait(Duration::from_secs(5)).await.unwrap_err();
    assert!(e.is_pool_timeout());
    assert!(e.pool_timeout_info().unwrap().last_connect_error.is_some());
    assert!(pool.is_closed());
}

#[tokio::test(start_paused = true)]
async fn max_waiting_refuses_at_once() {
    let mock = Mock::new();
    let pool = builder(&mock)
        .min_size(1)
        .max_waiting(1)
        .open()
        .await
        .unwrap();
    let held = pool.connection().await.unwrap();
    let p2 = pool.clone();
    let waiter = tokio::spawn(async move { p2.connection().await.map(drop) });
    tokio::task::yield_now().await;
    let start = Instant::now();
    let e = pool.connection().await.unwrap_err();
    assert!(e.is_too_many_requests(), "{e}");
    assert_eq!(start.elapsed(), Duration::ZERO);
    drop(held);
    waiter.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_waiter_does_not_kill_the_connect() {
    let mock = Mock::new();
    mock.shared
        .set(|s| s.connect_delay = Duration::from_millis(150));
    let pool = builder(&mock).min_size(0).max_size(2).open().await.unwrap();
    let e = pool
        .connection_timeout(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(e.is_pool_timeout());
    settle().await;
    let s = pool.stats();
    assert_eq!(
        (s.pool_size, s.pool_available, s.connections_num),
        (1, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn connects_are_capped_by_max_connecting_and_run_in_background() {
    let mock = Mock::new();
    mock.shared
        .set(|s| s.connect_delay = Duration::from_millis(100));
    let pool = builder(&mock)
        .min_size(0)
        .max_size(10)
        .max_connecting(2)
        .open()
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let c = pool.connection().await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            drop(c);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(mock.shared.max_connecting.load(SeqCst), 2);
    assert_eq!(pool.stats().pool_size, 10);
}

/// HikariCP's "Welcome to the Jungle" spike: connect 150 ms, use 2 ms, min 5, max 50, 50
/// requests at once. Pools that connect inline end with 40–45 connections; HikariCP with 5–6.
#[tokio::test(start_paused = true)]
async fn hikari_spike_ends_with_at_most_8_connections() {
    let mock = Mock::new();
    mock.shared
        .set(|s| s.connect_delay = Duration::from_millis(150));
    let pool = builder(&mock)
        .min_size(5)
        .max_size(50)
        .open()
        .await
        .unwrap();
    pool.wait(Duration::from_secs(5)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let c = pool.connection().await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
            drop(c);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    settle_for(Duration::from_secs(1)).await;
    let size = pool.stats().pool_size;
    assert!(size <= 8, "spike ended with {size} connections");
    assert!(mock.shared.max_live.load(SeqCst) <= 8);
}

#[tokio::test(start_paused = true)]
async fn returned_in_transaction_is_rolled_back_in_background_before_reuse() {
    let mock = Mock::new();
    mock.shared
        .set(|s| s.rollback_delay = Duration::from_millis(100));
    let pool = builder(&mock).min_size(1).open().await.unwrap();
    let mut c = pool.connection().await.unwrap();
    let id = c.id;
    c.state = ConnState::InTransaction;
    let start = Instant::now();
    drop(c); // no I/O here: the rollback runs in a task holding the slot and the permit
    assert_eq!(pool.stats().permits_available, 0);
    let c = pool.connection().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    assert_eq!((c.id, c.state), (id, ConnState::Idle));
    assert_eq!(mock.shared.rollbacks.load(SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn failed_rollback_discards_and_replaces() {
    let mock = Mock::new();
    mock.shared.set(|s| s.rollback = Gate::Err);
    let pool = builder(&mock).min_size(1).open().await.unwrap();
    let mut c = pool.connection().await.unwrap();
    let id = c.id;
    c.state = ConnState::InTransaction;
    drop(c);
    let c = pool.connection().await.unwrap();
    assert_ne!(c.id, id);
    assert_eq!(c.state, ConnState::Idle);
    assert_eq!(mock.shared.closes.load(SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn busy_return_is_cancelled_and_closed_broken_is_replaced() {
    let mock = Mock::new();
    let pool = builder(&mock).min_size(1).open().await.unwrap();
    let mut c = pool.connection().await.unwrap();
    c.state = ConnState::Busy;
    drop(c);
    settle().await;
    assert_eq!(mock.shared.cancels.load(SeqCst), 1);
    assert_eq!(mock.shared.closes.load(SeqCst), 1);
    let mut c = pool.connection().await.unwrap();
    c.state = ConnState::Broken;
    drop(c);
    settle().await;
    let s = pool.stats();
    assert_eq!(
        (
            s.returns_bad,
            s.pool_size,
            s.pool_available,
            s.connections_num
        ),
        (1, 1, 1, 3)
    );
    assert_eq!(mock.shared.live(), 1);
}

#[tokio::test(start_paused = true)]
async fn checkout_skips_connections_the_server_closed() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).min_size(2)).await;
    mock.shared.kill_all();
    let c = pool.connection().await.unwrap();
    assert!(c.id >= 2, "got a fresh connection, not a dead one");
    assert_eq!(pool.stats().connections_lost, 2);
}

#[tokio::test(start_paused = true)]
async fn dropped_getconn_is_returned_not_leaked() {
    let mock = Mock::new();
    let pool = builder(&mock).min_size(1).open().await.unwrap();
    let c = pool.getconn().await.unwrap();
    drop(c); // warns, returns
    let s = pool.stats();
    assert_eq!((s.pool_available, s.permits_available), (1, 1));
}

/// A guard dropped on a thread with no runtime (synchronous code) still gets its rollback: the
/// pool runs background work on the runtime it was opened on.
#[tokio::test(start_paused = true)]
async fn drop_outside_a_runtime_rolls_back_on_the_pools_runtime() {
    let mock = Mock::new();
    let pool = builder(&mock).min_size(1).open().await.unwrap();
    let mut c = pool.connection().await.unwrap();
    c.state = ConnState::InTransaction;
    std::thread::spawn(move || drop(c)).join().unwrap();
    settle_for(Duration::from_millis(100)).await;
    let s = pool.stats();
    assert_eq!(
        (s.pool_size, s.pool_available, s.permits_available),
        (1, 1, 1)
    );
    assert_eq!(mock.shared.rollbacks.load(SeqCst), 1);
    assert_eq!(mock.shared.live(), 1);
}

/// Once the pool's runtime is gone no background work can run: a guard dropped then still
/// releases every count (its connection is dropped, not rolled back).
#[test]
fn drop_after_the_pools_runtime_shut_down_releases_counts() {
    let mock = Mock::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (pool, mut c) = rt.block_on(async {
        let pool = builder(&mock).min_size(1).open().await.unwrap();
        let c = pool.connection().await.unwrap();
        (pool, c)
    });
    drop(rt);
    c.state = ConnState::InTransaction; // would need a rollback task: none can run
    drop(c);
    let s = pool.stats();
    assert_eq!(
        (s.pool_size, s.pool_available, s.permits_available),
        (0, 0, 1)
    );
    assert_eq!(mock.shared.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn expired_connection_is_closed_on_return_and_replaced() {
    let mock = Mock::new();
    let pool = builder(&mock)
        .min_size(1)
        .max_lifetime(Duration::from_secs(10))
        .open()
        .await
        .unwrap();
    let c = pool.connection().await.unwrap();
    let id = c.id;
    tokio::time::sleep(Duration::from_secs(11)).await;
    drop(c);
    settle_for(Duration::from_secs(1)).await;
    let c = pool.connection().await.unwrap();
    assert_ne!(c.id, id);
    assert_eq!(mock.shared.closes.load(SeqCst), 1);
}

/// `close_timeout`: new checkouts fail at once, idle connections are closed, and it returns as
/// soon as the last checked-out connection has come back and been closed; nothing is cancelled.
#[tokio::test(start_paused = true)]
async fn close_timeout_returns_when_the_last_connection_is_back() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).min_size(2)).await;
    let held = pool.connection().await.unwrap();
    let start = Instant::now();
    let worker = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(held);
    });
    let closing = tokio::spawn({
        let pool = pool.clone();
        async move { pool.close_timeout(Duration::from_secs(10)).await }
    });
    tokio::task::yield_now().await;
    let e = pool.connection().await.unwrap_err();
    assert!(e.is_pool_closed(), "{e}");
    assert_eq!(start.elapsed(), Duration::ZERO, "refused at once");
    assert_eq!(closing.await.unwrap(), 0, "nothing cancelled");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "as soon as it came back"
    );
    worker.await.unwrap();
    assert_eq!(mock.shared.closes.load(SeqCst), 2);
    assert_eq!(
        (mock.shared.cancels.load(SeqCst), mock.shared.live()),
        (0, 0)
    );
    assert_eq!(pool.stats().pool_size, 0);
}

/// At the deadline, `close_timeout` cancels the server work of every connection still out (and
/// of none that came back); those are closed when their guards return them.
#[tokio::test(start_paused = true)]
async fn close_timeout_cancels_what_is_still_checked_out_at_the_deadline() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).min_size(3)).await;
    let mut busy = pool.connection().await.unwrap();
    busy.state = ConnState::Busy; // a query running
    let idle_out = pool.connection().await.unwrap(); // held, no query
    let back = pool.connection().await.unwrap();
    drop(back);
    let start = Instant::now();
    assert_eq!(pool.close_timeout(Duration::from_secs(2)).await, 2);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(
        mock.shared.cancels.load(SeqCst),
        2,
        "one per connection still out"
    );
    assert_eq!(mock.shared.closes.load(SeqCst), 1, "the one returned");
    busy.state = ConnState::Broken; // the cancelled query failed
    drop((busy, idle_out));
    settle_for(Duration::from_secs(1)).await;
    assert_eq!(mock.shared.closes.load(SeqCst), 3);
    assert_eq!(mock.shared.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn close_fails_waiters_closes_idle_and_later_returns() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).min_size(3)).await;
    let a = pool.connection().await.unwrap();
    let b = pool.connection().await.unwrap();
    let c = pool.connection().await.unwrap();
    let p2 = pool.clone();
    let waiter = tokio::spawn(async move { p2.connection().await.map(drop) });
    tokio::task::yield_now().await;
    drop(c); // idle again; its permit is handed to the waiter, which has not run yet
    pool.close().await;
    let e = waiter.await.unwrap().unwrap_err();
    assert!(e.is_pool_closed(), "{e}");
    assert_eq!(mock.shared.closes.load(SeqCst), 1, "the idle one is closed");
    drop((a, b));
    settle().await;
    assert_eq!(
        mock.shared.closes.load(SeqCst),
        3,
        "returned ones are closed"
    );
    assert_eq!(mock.shared.live(), 0);
    assert!(pool.getconn().await.unwrap_err().is_pool_closed());
    assert!(pool.check().await.unwrap_err().is_pool_closed());
}

#[tokio::test(start_paused = true)]
async fn check_hook_failure_discards_and_retries_under_one_deadline() {
    let mock = Mock::new();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = Arc::clone(&calls);
    let pool = open_ready(builder(&mock).min_size(1).check(move |_conn| {
        let n = c2.fetch_add(1, SeqCst);
        Box::pin(async move {
            if n == 0 {
                Err(mock_error())
            } else {
                Ok(())
            }
        })
    }))
    .await;
    let c = pool.connection().await.unwrap();
    assert_eq!(c.id, 1, "the first connection failed its check");
    assert_eq!(calls.load(SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn pool_check_pings_and_replaces_broken_idle() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).min_size(3)).await;
    mock.shared.kill_all();
    pool.check().await.unwrap();
    assert_eq!(mock.shared.pings.load(SeqCst), 3);
    assert_eq!(pool.stats().connections_lost, 3);
    pool.wait(Duration::from_secs(5)).await.unwrap();
    assert_eq!(pool.stats().pool_available, 3);
}

#[tokio::test(start_paused = true)]
async fn resize_grows_and_shrinks() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).min_size(2).max_size(2).max_size_limit(6)).await;
    pool.resize(4, 6).unwrap();
    pool.wait(Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        (pool.stats().pool_size, pool.stats().permits_available),
        (4, 6)
    );
    assert!(pool.resize(1, 7).is_err());
    pool.resize(1, 1).unwrap();
    settle().await;
    let s = pool.stats();
    assert_eq!((s.pool_size, s.pool_max, s.permits_available), (1, 1, 1));
    let stats = pool.pop_stats();
    assert_eq!(stats.connections_num, 4);
    assert_eq!(pool.stats().connections_num, 0);
}

/// postgrex#747: a busy connection's slot is freed only once its query is cancelled AND the
/// session closed, in that order, so a replacement cannot open while the server still runs
/// the old session: the server never sees more than `max_size` sessions from the pool.
#[tokio::test(start_paused = true)]
async fn busy_discard_frees_its_slot_only_after_cancel_then_close() {
    let mock = Mock::new();
    mock.shared.set(|s| s.cancel_delay = Duration::from_secs(2));
    let pool = builder(&mock).min_size(1).max_size(1).open().await.unwrap();
    let mut c = pool.connection().await.unwrap();
    c.state = ConnState::Busy;
    drop(c);
    let p = pool.clone();
    let next = tokio::spawn(async move { p.connection().await.map(|c| c.id) });
    settle_for(Duration::from_secs(1)).await;
    // Cancel still in flight: the session is neither closed nor replaced.
    assert_eq!(mock.shared.cancels.load(SeqCst), 0);
    assert_eq!(mock.shared.closes.load(SeqCst), 0);
    assert_eq!(mock.shared.connects.load(SeqCst), 1);
    assert!(!next.is_finished());
    settle_for(Duration::from_secs(2)).await;
    assert_eq!(mock.shared.cancels.load(SeqCst), 1);
    assert_eq!(mock.shared.closes.load(SeqCst), 1);
    assert_eq!(mock.shared.connects.load(SeqCst), 2);
    next.await.unwrap().unwrap();
    assert_eq!(mock.shared.max_live.load(SeqCst), 1);
}

/// A busy connection returned to a closed pool still gets its query cancelled.
#[tokio::test(start_paused = true)]
async fn busy_return_to_a_closed_pool_is_cancelled() {
    let mock = Mock::new();
    let pool = builder(&mock).min_size(1).max_size(1).open().await.unwrap();
    let mut c = pool.connection().await.unwrap();
    c.state = ConnState::Busy;
    pool.close().await;
    drop(c);
    settle().await;
    assert_eq!(mock.shared.cancels.load(SeqCst), 1);
    assert_eq!(mock.shared.closes.load(SeqCst), 1);
    assert_eq!(mock.shared.live(), 0);
}

/// A `reset` hook that leaves the connection busy: cancelled, then discarded, then replaced.
#[tokio::test(start_paused = true)]
async fn reset_hook_leaving_busy_cancels_and_discards() {
    let mock = Mock::new();
    let reset: ConnHook<MockConn> = Arc::new(|c| {
        Box::pin(async move {
            c.state = ConnState::Busy; // e.g. a query future dropped inside the hook
            Ok(())
        })
    });
    let pool = builder(&mock)
        .min_size(1)
        .max_size(1)
        .reset(move |c| reset(c))
        .open()
        .await
        .unwrap();
    drop(pool.connection().await.unwrap());
    settle().await;
    assert_eq!(mock.shared.cancels.load(SeqCst), 1);
    assert_eq!(mock.shared.closes.load(SeqCst), 1);
    let s = pool.stats();
    assert_eq!((s.pool_size, s.pool_available), (1, 1), "{s:?}");
}

/// After `resize` down, surplus connections are closed as they return on EVERY return path:
/// through a `reset` hook, or a rollback, as on the plain one: the background path never
/// pushes them back idle (that would keep more sessions than `max_size` until `max_idle`).
#[tokio::test(start_paused = true)]
async fn resize_down_closes_surplus_returned_through_reset_or_rollback() {
    for with_reset in [true, false] {
        let mock = Mock::new();
        let mut b = builder(&mock).min_size(4).max_size(4);
        if with_reset {
            let reset: ConnHook<MockConn> = Arc::new(|_c| Box::pin(async { Ok(()) }));
            b = b.reset(move |c| reset(c));
        }
        let pool = b.open().await.unwrap();
        pool.wait(Duration::from_secs(5)).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut c = pool.connection().await.unwrap();
            if !with_reset {
                c.state = ConnState::InTransaction;
            }
            held.push(c);
        }
        pool.resize(1, 1).unwrap();
        drop(held);
        settle().await;
        assert_eq!(
            mock.shared.live(),
            1,
            "reset {with_reset}: {:?}",
            pool.stats()
        );
        let s = pool.stats();
        assert_eq!((s.pool_size, s.pool_available), (1, 1), "{s:?}");
    }
}

/// A checkout never hands out an idle connection past its `max_lifetime`, even between two
/// maintenance sweeps. max_lifetime 100 s ticks maintenance every 25 s; connects take 6 s, so
/// the connection expires in 101..106 s (5% jitter), after the 100 s sweep, before 125 s.
#[tokio::test(start_paused = true)]
async fn checkout_discards_an_expired_idle_connection() {
    let mock = Mock::new();
    mock.shared
        .set(|s| s.connect_delay = Duration::from_secs(6));
    let pool = builder(&mock)
        .min_size(1)
        .max_size(1)
        .max_lifetime(Duration::from_secs(100))
        .open()
        .await
        .unwrap();
    pool.wait(Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep_until(tokio::time::Instant::now() + Duration::from_secs(104)).await;
    assert_eq!(mock.shared.closes.load(SeqCst), 0, "not swept yet");
    let c = pool.connection().await.unwrap();
    assert_eq!(
        c.id, 1,
        "the expired connection was closed, a new one opened"
    );
    assert_eq!(mock.shared.closes.load(SeqCst), 1);
}

/// `Pool::check` pings under a permit per connection (concurrent checkouts see that
/// connection as in use, not as room to open another), and the whole check is bounded by ONE
/// `timeout`, not one per connection.
#[tokio::test(start_paused = true)]
async fn pool_check_holds_a_permit_per_ping_and_one_deadline() {
    let mock = Mock::new();
    let pool = open_ready(
        builder(&mock)
            .min_size(3)
            .max_size(3)
            .timeout(Duration::from_secs(5)),
    )
    .await;
    mock.shared.set(|s| s.ping = Gate::Never);
    let start = Instant::now();
    let p = pool.clone();
    let check = tokio::spawn(async move { p.check().await });
    settle_for(Duration::from_secs(1)).await;
    let s = pool.stats();
    assert_eq!((s.permits_available, s.pool_available), (2, 2), "{s:?}");
    check.await.unwrap().unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(5),
        "one deadline for the whole check"
    );
    assert_eq!(mock.shared.pings.load(SeqCst), 1, "stopped at the deadline");
    settle().await;
    let s = pool.stats();
    assert_eq!(
        (s.pool_size, s.pool_available, s.permits_available),
        (3, 3, 3),
        "{s:?}"
    );
    assert_eq!(
        mock.shared.closes.load(SeqCst),
        1,
        "the connection cut mid-ping is replaced"
    );
}

#[tokio::test(start_paused = true)]
async fn usage_ms_adds_up_sub_millisecond_checkouts() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).min_size(1).max_size(1).usage_stats(true)).await;
    // Ten checkouts of 300 µs each: 3 ms in all, though each one alone is under a millisecond.
    for _ in 0..10 {
        let conn = pool.connection().await.unwrap();
        tokio::time::advance(Duration::from_micros(300)).await;
        drop(conn);
    }
    assert_eq!(pool.stats().usage_ms, 3);
}

/// Usage timing costs two clock reads per checkout, so it is opt-in: by default `usage_ms`
/// stays 0 however long connections are held.
#[tokio::test(start_paused = true)]
async fn usage_ms_is_off_by_default() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).min_size(1).max_size(1)).await;
    let conn = pool.connection().await.unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    drop(conn);
    let s = pool.stats();
    assert_eq!((s.requests_num, s.usage_ms), (1, 0), "{s:?}");
}

/// `requests_num` counts every request once, whichever path served it (the fast path counts
/// per connection, the slow path and failures on a shared counter), and `pop_stats` resets it.
#[tokio::test(start_paused = true)]
async fn requests_num_counts_fast_slow_and_failed_requests() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).min_size(1).max_size(1)).await;
    for _ in 0..3 {
        drop(pool.connection().await.unwrap()); // fast path
    }
    let held = pool.connection().await.unwrap(); // fast path
    let p = pool.clone();
    let waiter = tokio::spawn(async move { p.connection().await.map(drop) }); // slow: waits
    settle_for(Duration::from_millis(100)).await;
    drop(held);
    waiter.await.unwrap().unwrap();
    let held = pool.connection().await.unwrap();
    let timeout = pool.connection_timeout(Duration::from_millis(10)).await;
    assert!(timeout.unwrap_err().is_timeout()); // slow, then fails
    drop(held);
    let s = pool.pop_stats();
    assert_eq!(
        (s.requests_num, s.requests_queued, s.requests_errors),
        (7, 2, 1),
        "{s:?}"
    );
    assert_eq!(pool.stats().requests_num, 0, "reset by pop_stats");
    drop(pool.connection().await.unwrap());
    assert_eq!(pool.stats().requests_num, 1);
}

/// The seed's exhausted pool, through the wait watchdog (`waiting.rs`): five queued checkouts
/// with the default 30 s timeout register no timer of their own; the watchdog promotes each
/// near its deadline, and every one still fails exactly at 30 s. Afterwards the promoted
/// permits have all been forgotten: the pool has exactly `max_size` permits again.
#[tokio::test(start_paused = true)]
async fn queued_checkouts_time_out_exactly_and_promotions_leave_no_permit() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).min_size(2).max_size(2)).await;
    let held = [pool.getconn().await.unwrap(), pool.getconn().await.unwrap()];
    let start = Instant::now();
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let p = pool.clone();
            tokio::spawn(async move { (p.connection().await.map(drop), Instant::now()) })
        })
        .collect();
    for w in waiters {
        let (result, at) = w.await.unwrap();
        assert!(result.unwrap_err().is_pool_timeout());
        assert_eq!(
            at - start,
            Duration::from_secs(30),
            "exactly at the deadline"
        );
    }
    for c in held {
        pool.putconn(c).unwrap();
    }
    settle().await;
    let s = pool.stats();
    assert_eq!(
        (s.permits_available, s.pool_available, s.requests_errors),
        (2, 2, 5),
        "{s:?}"
    );
    let both = [
        pool.connection().await.unwrap(),
        pool.connection().await.unwrap(),
    ];
    let third = pool.connection_timeout(Duration::from_secs(1)).await;
    assert!(third.unwrap_err().is_pool_timeout(), "still only two");
    drop(both);
}

/// A connection returned with its session changed is reset (then configured again) in the
/// background before anyone else gets it; a clean one returns with no reset at all.
#[tokio::test(start_paused = true)]
async fn a_dirty_session_is_reset_before_reuse_and_a_clean_one_is_not() {
    let mock = Mock::new();
    let configured = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&configured);
    let pool = open_ready(builder(&mock).min_size(1).max_size(1).configure(move |_c| {
        count.fetch_add(1, SeqCst);
        Box::pin(async { Ok(()) })
    }))
    .await;
    assert_eq!(
        (configured.load(SeqCst), mock.shared.marks.load(SeqCst)),
        (1, 1)
    );
    let c = pool.connection().await.unwrap();
    let id = c.id;
    drop(c); // clean
    let mut c = pool.connection().await.unwrap();
    assert_eq!(
        mock.shared.resets.load(SeqCst),
        0,
        "a clean return costs nothing"
    );
    c.state = ConnState::Dirty; // e.g. `SET TimeZone`
    drop(c);
    settle_for(Duration::from_millis(100)).await;
    let c = pool.connection().await.unwrap();
    assert_eq!(
        (c.id, c.state),
        (id, ConnState::Idle),
        "the same connection, reset"
    );
    assert_eq!(mock.shared.resets.load(SeqCst), 1);
    assert_eq!(
        (configured.load(SeqCst), mock.shared.marks.load(SeqCst)),
        (2, 2),
        "configure ran again after the reset, and the result is the new baseline"
    );
}

/// `reset_dirty_sessions(false)` keeps psycopg_pool's behaviour: a changed session is reused
/// as it is.
#[tokio::test(start_paused = true)]
async fn dirty_sessions_are_kept_when_resetting_is_off() {
    let mock = Mock::new();
    let pool = open_ready(
        builder(&mock)
            .min_size(1)
            .max_size(1)
            .reset_dirty_sessions(false),
    )
    .await;
    let mut c = pool.connection().await.unwrap();
    let id = c.id;
    c.state = ConnState::Dirty;
    drop(c);
    let c = pool.connection().await.unwrap();
    assert_eq!((c.id, c.state), (id, ConnState::Dirty));
    assert_eq!(mock.shared.resets.load(SeqCst), 0);
}

/// A connection that still works but must not be reused (a 25006 in a read-write pool, a role
/// change, a server shutting down) is discarded on return and at checkout, and counted as lost
/// and by cause; the next checkout gets a new one.
#[tokio::test(start_paused = true)]
async fn evicted_connections_are_discarded_and_counted_by_cause() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).min_size(2).max_size(2)).await;
    let mut c = pool.connection().await.unwrap();
    let first = c.id;
    c.evict = Some(Eviction::ReadOnly);
    drop(c);
    settle_for(Duration::from_millis(100)).await;
    let s = pool.stats();
    assert_eq!((s.connections_lost, s.evicted_read_only), (1, 1), "{s:?}");
    // Both idle connections learn of a role change: each is skipped at checkout.
    mock.shared.flip_all(Eviction::RoleChanged);
    let c = pool
        .connection_timeout(Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        c.id > first + 1,
        "a connection opened after both were evicted: {}",
        c.id
    );
    let s = pool.stats();
    assert_eq!(s.evicted_role_changed, 2, "{s:?}");
    assert_eq!(s.connections_lost, 3);
}

/// `drain()` replaces every connection: idle ones at once, a checked-out one when it returns.
#[tokio::test(start_paused = true)]
async fn drain_replaces_idle_connections_now_and_busy_ones_on_return() {
    let mock = Mock::new();
    let pool = open_ready(builder(&mock).min_size(2).max_size(2)).await;
    let held = pool.connection().await.unwrap();
    pool.drain();
    settle_for(Duration::from_millis(100)).await;
    assert_eq!(pool.stats().connections_drained, 1, "the idle one");
    let fresh = pool.connection().await.unwrap();
    assert!(fresh.id >= 2, "opened after the drain");
    let old = held.id;
    drop(held);
    drop(fresh);
    settle_for(Duration::from_millis(100)).await;
    let s = pool.stats();
    assert_eq!((s.connections_drained, s.pool_size), (2, 2), "{s:?}");
    let a = pool.connection().await.unwrap();
    let b = pool.connection().await.unwrap();
    assert!(
        a.id != old && b.id != old,
        "the connection from before is gone"
    );
}

/// `cancel_leaked`: the leak watch sends a leaked connection's cancel as it reports it (once),
/// leaves a checkout returned in time alone, and the leaked connection is closed when it comes
/// back, never reused; its place is filled by a new connection.
#[tokio::test(start_paused = true)]
async fn with_cancel_leaked_a_leaked_connection_is_cancelled_once_and_closed_on_return() {
    let mock = Mock::new();
    let pool = open_ready(
        builder(&mock)
            .min_size(2)
            .leak_detection_threshold(Duration::from_secs(2))
            .cancel_leaked(true),
    )
    .await;
    let brief = pool.connection().await.unwrap();
    let leaked = pool.getconn().await.unwrap();
    let leaked_id = leaked.id;
    settle_for(Duration::from_secs(1)).await;
    drop(brief); // held 1 s: in time
    settle_for(Duration::from_secs(2)).await;
    assert_eq!(pool.stats().leaks_detected, 1);
    assert_eq!(
        mock.shared.cancels.load(SeqCst),
        1,
        "the leaked one's cancel"
    );
    settle_for(Duration::from_secs(5)).await;
    assert_eq!(mock.shared.cancels.load(SeqCst), 1, "sent once");
    assert_eq!(
        mock.shared.closes.load(SeqCst),
        0,
        "still held: not closed under its holder"
    );
    pool.putconn(leaked).unwrap();
    settle().await;
    assert_eq!(mock.shared.closes.load(SeqCst), 1, "closed on return");
    let a = pool.connection().await.unwrap();
    let b = pool.connection().await.unwrap();
    assert!(a.id != leaked_id && b.id != leaked_id, "never reused");
    assert_eq!(pool.stats().pool_size, 2, "its place refilled");
}

/// `cancel_leaked` without a threshold is a configuration error at `open`.
#[tokio::test(start_paused = true)]
async fn cancel_leaked_without_a_leak_threshold_is_refused() {
    let mock = Mock::new();
    let e = builder(&mock).cancel_leaked(true).open().await.unwrap_err();
    assert!(e.is_config(), "{e}");
}

/// `leak_detection_threshold`: a checkout held past it is logged once at `warn`, with the pool's
/// name, the time held and the line that checked it out, and counted; one returned in time is
/// not; a reported one that comes back is logged again at `info`.
#[tokio::test(start_paused = true)]
async fn a_connection_held_past_the_leak_threshold_is_reported_once_with_its_call_site() {
    let logs = Captured::default();
    let _logging = logs.install();
    let mock = Mock::new();
    let pool = open_ready(
        builder(&mock)
            .name("leaky")
            .min_size(2)
            .leak_detection_threshold(Duration::from_secs(2)),
    )
    .await;
    let brief = pool.connection().await.unwrap();
    let line = line!() + 1;
    let leaked = pool.getconn().await.unwrap();
    settle_for(Duration::from_secs(1)).await;
    drop(brief); // held 1 s: in time
    settle_for(Duration::from_secs(2)).await;
    assert_eq!(pool.stats().leaks_detected, 1);
    settle_for(Duration::from_secs(5)).await;
    assert_eq!(pool.stats().leaks_detected, 1, "reported once");
    let warn = logs.line_with("leak_detection_threshold");
    assert!(
        warn.contains("WARN") && warn.contains("pool=leaky"),
        "{warn}"
    );
    let site = format!("tests/pool_semantics.rs:{line}:");
    assert!(warn.contains(&site), "{warn} should name {site}");
    assert!(warn.contains("held_ms=2"), "{warn}");
    assert_eq!(
        mock.shared.cancels.load(SeqCst),
        0,
        "without cancel_leaked, only reported"
    );
    pool.putconn(leaked).unwrap();
    assert!(logs
        .text()
        .contains("a connection reported as leaked was returned"));
    assert_eq!(pool.stats().pool_available, 2);
}

/// `stats()` carries the checkout wait (of checkouts that waited), hold time (with
/// `usage_stats`) and connect time histograms; `pop_stats` empties them.
#[tokio::test(start_paused = true)]
async fn stats_carry_wait_hold_and_connect_time_percentiles() {
    let mock = Mock::new();
    mock.shared
        .set(|s| s.connect_delay = Duration::from_millis(20));
    let pool = open_ready(builder(&mock).min_size(1).max_size(1).usage_stats(true)).await;
    for hold_ms in [10u64, 10, 10, 300] {
        let held = pool.connection().await.unwrap();
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { drop(pool.connection().await.unwrap()) }
        });
        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
        drop(held);
        waiter.await.unwrap();
    }
    let s = pool.pop_stats();
    let ms = |d: Duration| d.as_millis();
    assert_eq!(s.connect_time.count, 1);
    assert_eq!(ms(s.connect_time.max), 20);
    assert_eq!(s.checkout_wait.count, 4, "only the checkouts that waited");
    assert_eq!(
        (ms(s.checkout_wait.p50), ms(s.checkout_wait.max)),
        (10, 300)
    );
    assert_eq!(s.hold_time.count, 8);
    assert_eq!(ms(s.hold_time.max), 300);
    // Quantiles are bucket tops (10 ms lands in 9.73-10.24 ms), never above the exact max.
    assert!(
        s.to_string()
            .contains("wait p50/p99/max 10.2/300.0/300.0 ms"),
        "{s}"
    );
    assert_eq!(pool.stats().checkout_wait.count, 0, "pop_stats emptied it");
}
