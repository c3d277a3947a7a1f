//! Faults in settings and user code the pool must survive without leaking a slot or storming
//! the server: extreme durations, hung and panicking connects and hooks, hooks that leave a
//! connection mid-transaction. In-memory (`support::pool_mock::Mock`), paused time.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use support::pool_mock::{builder, settle_for, Gate, Mock, MockConn};
use wirepool::pool::{ConnHook, ConnState, Manage};

/// `max_lifetime(Duration::MAX)` ("never expire") must neither panic in the connect task nor
/// leak the unit of `size` its reservation held: `now + lifetime` overflows `Instant`, and a
/// panic there after `landed` is set would free nothing, leaving a `max_size(1)` pool dead.
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

/// A connect that never completes (black-holed SYN, a server stuck in auth) must not count as
/// "on its way" forever, or no later waiter would start another connect, even with the server
/// healthy again: `connect_timeout` (default 30 s) bounds each attempt.
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
        .configure(move |c| hang(c))
        .open()
        .await
        .unwrap();
    let e = pool
        .connection_timeout(Duration::from_millis(9500))
        .await
        .unwrap_err();
    assert!(e.is_pool_timeout(), "{e}");
    let last = e.pool_timeout_info().unwrap().last_connect_error.clone();
    assert_eq!(last.as_deref(), Some("timed out connecting to the server"));
    // 2 s attempt, ~250 ms wait, 2 s, ~500 ms, 2 s, ~550 ms, 2 s (each wait ± 10%): four
    // attempts ended by 9.5 s, one at a time, and the fifth not yet started.
    let s = pool.stats();
    assert_eq!(s.connections_errors, 4, "{s:?}");
    assert_eq!(mock.shared.live(), 0, "timed-out connections are dropped");
}

/// The attempts the backoff allows in the first 10 s of an outage: at 0, ~0.25 and ~0.75 s, then
/// one every ~550 ms (±10%): under 2 a second.
const ATTEMPTS_IN_10_S: std::ops::RangeInclusive<usize> = 18..=20;

/// A panicking `configure` hook is a failed attempt with the same backoff as an `Err` (it used
/// to drop the reservation un-landed, whose drop started the next connect at once: hundreds of
/// connects per second), and its last connect error says so.
#[tokio::test(start_paused = true)]
async fn panicking_configure_hook_backs_off_like_an_error() {
    let mock = Mock::new();
    let hook: ConnHook<MockConn> = Arc::new(|_c| Box::pin(async { panic!("configure bug") }));
    let pool = builder(&mock)
        .min_size(1)
        .max_size(1)
        .configure(move |c| hook(c))
        .open()
        .await
        .unwrap();
    let e = pool.wait(Duration::from_secs(10)).await.unwrap_err();
    let connects = mock.shared.connects.load(SeqCst);
    assert!(ATTEMPTS_IN_10_S.contains(&connects), "{connects}");
    assert_eq!(mock.shared.live(), 0);
    let last = e.pool_timeout_info().unwrap().last_connect_error.clone();
    assert_eq!(last.as_deref(), Some("the `configure` hook panicked"));
}

/// The same for a panic inside `Manage::connect`; the pool recovers once it stops panicking.
#[tokio::test(start_paused = true)]
async fn panicking_connect_backs_off_and_recovers() {
    let mock = Mock::new();
    mock.shared.set(|s| s.connect = Gate::Panic);
    let pool = builder(&mock).min_size(1).max_size(1).open().await.unwrap();
    settle_for(Duration::from_secs(10)).await;
    let connects = mock.shared.connects.load(SeqCst);
    assert!(ATTEMPTS_IN_10_S.contains(&connects), "{connects}");
    assert_eq!(pool.stats().connections_errors, connects as u64);
    mock.shared.set(|s| s.connect = Gate::Ok);
    pool.wait(Duration::from_secs(60)).await.unwrap();
    let s = pool.stats();
    assert_eq!(
        (s.pool_size, s.pool_available, s.connecting),
        (1, 1, 0),
        "{s:?}"
    );
}

/// Waiters arriving one after another cannot restart attempts early: a connect task that
/// stopped (no demand left) and a fresh one a waiter's `maybe_grow` spawns share one backoff.
#[tokio::test(start_paused = true)]
async fn waiters_cannot_bypass_the_connect_backoff() {
    let mock = Mock::new();
    mock.shared.set(|s| s.connect = Gate::Err);
    let pool = builder(&mock)
        .min_size(0)
        .max_size(4)
        .max_connecting(2)
        .open()
        .await
        .unwrap();
    // A short-lived waiter every 500 ms for 10 s: demand comes and goes.
    for _ in 0..20 {
        let e = pool
            .connection_timeout(Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(e.is_pool_timeout(), "{e}");
        settle_for(Duration::from_millis(400)).await;
    }
    let connects = mock.shared.connects.load(SeqCst);
    assert!(
        connects <= *ATTEMPTS_IN_10_S.end(),
        "{connects} connects in 10 s"
    );
}

/// psycopg: "connection left in status ... by configure function". A `configure` hook that
/// leaves a transaction open is a failed attempt (the connection is closed), not an idle
/// connection handed to the first user inside someone else's transaction.
#[tokio::test(start_paused = true)]
async fn configure_leaving_a_transaction_fails_the_attempt() {
    let mock = Mock::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = Arc::clone(&calls);
    let hook: ConnHook<MockConn> = Arc::new(move |c| {
        let first = c2.fetch_add(1, SeqCst) == 0;
        Box::pin(async move {
            if first {
                c.state = ConnState::InTransaction; // e.g. simple_query("BEGIN")
            }
            Ok(())
        })
    });
    let pool = builder(&mock)
        .min_size(1)
        .max_size(1)
        .configure(move |c| hook(c))
        .open()
        .await
        .unwrap();
    pool.wait(Duration::from_secs(5)).await.unwrap();
    let conn = pool.connection().await.unwrap();
    assert_eq!(mock.state(&conn), ConnState::Idle);
    assert_eq!(
        conn.id, 1,
        "the first connection was closed, not handed out"
    );
    assert_eq!(mock.shared.closes.load(SeqCst), 1);
    assert_eq!(pool.stats().connections_errors, 1);
}

/// The error a configure hook leaving a transaction reports as the last connect error.
#[tokio::test(start_paused = true)]
async fn configure_leaving_a_transaction_is_reported() {
    let mock = Mock::new();
    let hook: ConnHook<MockConn> = Arc::new(|c| {
        Box::pin(async move {
            c.state = ConnState::InTransaction;
            Ok(())
        })
    });
    let pool = builder(&mock)
        .min_size(1)
        .max_size(1)
        .configure(move |c| hook(c))
        .open()
        .await
        .unwrap();
    let e = pool
        .connection_timeout(Duration::from_millis(500))
        .await
        .unwrap_err();
    let last = e.pool_timeout_info().unwrap().last_connect_error.clone();
    assert_eq!(
        last.as_deref(),
        Some("the pool's `configure` hook failed: connection left in status InTransaction by configure function")
    );
    assert_eq!(mock.shared.live(), 0);
}

/// A `check` hook that returns `Ok` but leaves the connection not idle: that connection is
/// discarded (a Busy one cancelled first) and the checkout takes another.
#[tokio::test(start_paused = true)]
async fn check_leaving_a_connection_not_idle_discards_it() {
    for left in [ConnState::InTransaction, ConnState::Busy] {
        let mock = Mock::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let c2 = Arc::clone(&calls);
        let check: ConnHook<MockConn> = Arc::new(move |c| {
            let first = c2.fetch_add(1, SeqCst) == 0;
            Box::pin(async move {
                if first {
                    c.state = left;
                }
                Ok(())
            })
        });
        let pool = builder(&mock)
            .min_size(2)
            .max_size(2)
            .check(move |c| check(c))
            .open()
            .await
            .unwrap();
        pool.wait(Duration::from_secs(5)).await.unwrap();
        let conn = pool.connection().await.unwrap();
        assert_eq!(mock.state(&conn), ConnState::Idle, "{left:?}");
        assert_eq!(conn.id, 1, "{left:?}: the first one was discarded");
        drop(conn);
        settle_for(Duration::from_secs(1)).await;
        assert_eq!(mock.shared.closes.load(SeqCst), 1, "{left:?}");
        let cancels = usize::from(left == ConnState::Busy);
        assert_eq!(mock.shared.cancels.load(SeqCst), cancels, "{left:?}");
        let s = pool.stats();
        assert_eq!((s.pool_size, s.pool_available), (2, 2), "{left:?} {s:?}");
    }
}

/// An error retrying cannot fix (a wrong password, a missing database) reaches a waiting
/// checkout at once instead of after its timeout; the pool keeps retrying in the background,
/// and once a connect succeeds checkouts work again.
#[tokio::test(start_paused = true)]
async fn a_permanent_connect_error_fails_waiters_at_once_and_the_pool_recovers() {
    let mock = Mock::new();
    mock.shared.set(|s| s.connect = Gate::Refuse);
    let pool = builder(&mock)
        .min_size(0)
        .max_size(2)
        .timeout(Duration::from_secs(30))
        .open()
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    let e = pool.connection().await.unwrap_err();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "at once, not after 30 s: {e}"
    );
    assert!(e.is_pool_unavailable(), "{e}");
    let cause = std::error::Error::source(&e).expect("the connect error");
    assert!(cause.to_string().contains("no_such_option"), "{cause}");
    // While down, another checkout fails at once too, and a probe keeps trying in the
    // background with backoff (1 s, 2 s, ...), nobody waiting.
    assert!(pool.connection().await.unwrap_err().is_pool_unavailable());
    let attempts = mock.shared.connects.load(SeqCst);
    settle_for(Duration::from_millis(3100)).await;
    let probes = mock.shared.connects.load(SeqCst) - attempts;
    assert!(
        (1..=2).contains(&probes),
        "{probes} background attempts in 3 s"
    );
    // The password is fixed: the next probe succeeds and checkouts work again.
    mock.shared.set(|s| s.connect = Gate::Ok);
    settle_for(Duration::from_secs(5)).await;
    let c = pool
        .connection_timeout(Duration::from_secs(1))
        .await
        .unwrap();
    drop(c);
    assert_eq!(pool.stats().requests_errors, 2);
}

/// `fail_fast_after(n)`: after n connect failures in a row, a checkout that finds nothing idle
/// fails at once with the last connect error; before that, it waits as usual.
#[tokio::test(start_paused = true)]
async fn fail_fast_after_n_failures_sheds_load_until_a_connect_succeeds() {
    let mock = Mock::new();
    mock.shared.set(|s| s.connect = Gate::Err);
    let pool = builder(&mock)
        .min_size(0)
        .max_size(2)
        .fail_fast_after(2)
        .timeout(Duration::from_millis(200))
        .open()
        .await
        .unwrap();
    // One failure: the checkout still waits its whole timeout.
    let e = pool.connection().await.unwrap_err();
    assert!(e.is_pool_timeout(), "{e}");
    assert_eq!(mock.shared.connects.load(SeqCst), 1);
    // A new demand lets the backoff's next attempt (~250 ms after the first) go: the second
    // failure in a row fails the waiting checkout at once, long before its timeout.
    let start = tokio::time::Instant::now();
    let e = pool
        .connection_timeout(Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(e.is_pool_unavailable(), "{e}");
    assert!(start.elapsed() < Duration::from_millis(100), "{e}");
    assert_eq!(mock.shared.connects.load(SeqCst), 2);
    let start = tokio::time::Instant::now();
    let e = pool.connection().await.unwrap_err();
    assert!(e.is_pool_unavailable(), "{e}");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(
        e.to_string().contains("2 failed attempt(s) in a row"),
        "{e}"
    );
    // An idle connection is still handed out while connects fail: fail-fast is for an empty pool.
    mock.shared.set(|s| s.connect = Gate::Ok);
    settle_for(Duration::from_secs(5)).await;
    let c = pool.connection().await.unwrap();
    mock.shared.set(|s| s.connect = Gate::Err);
    drop(c);
    let c = pool.connection().await.unwrap();
    drop(c);
}

/// The reconnect policy's recovery: after a long outage a probe runs every ~550 ms, so the first
/// checkout succeeds within one probe interval of the server coming back, and every connect
/// task waiting for its turn then connects at once (none keeps a slot reserved asleep).
#[tokio::test(start_paused = true)]
async fn after_an_outage_the_pool_refills_within_one_probe_interval() {
    let mock = Mock::new();
    mock.shared.set(|s| s.connect = Gate::Err);
    let pool = builder(&mock).min_size(3).max_size(3).open().await.unwrap();
    settle_for(Duration::from_secs(10)).await;
    let down = mock.shared.connects.load(SeqCst);
    assert!((18..=20).contains(&down), "{down} attempts in 10 s");
    assert_eq!(
        mock.shared.max_connecting.load(SeqCst),
        1,
        "one probe at a time"
    );
    mock.shared.set(|s| s.connect = Gate::Ok);
    let back = tokio::time::Instant::now();
    let conn = pool
        .connection_timeout(Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        back.elapsed() <= Duration::from_millis(605),
        "{:?}",
        back.elapsed()
    );
    settle_for(Duration::from_millis(10)).await;
    let s = pool.stats();
    assert_eq!(
        (s.pool_size, s.pool_available, s.connecting),
        (3, 2, 0),
        "{s:?}"
    );
    drop(conn);
}

/// A connect retried after its backoff first checks that someone still wants it: once the
/// waiter has gone (and `min_size` is met), no further attempt.
#[tokio::test(start_paused = true)]
async fn a_retry_after_its_backoff_rechecks_demand() {
    let mock = Mock::new();
    mock.shared.set(|s| s.connect = Gate::Err);
    let pool = builder(&mock).min_size(0).max_size(2).open().await.unwrap();
    let e = pool
        .connection_timeout(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(e.is_pool_timeout(), "{e}");
    assert_eq!(mock.shared.connects.load(SeqCst), 1);
    // The retry was due ~250 ms after the failure; nobody waits any more.
    settle_for(Duration::from_secs(5)).await;
    assert_eq!(mock.shared.connects.load(SeqCst), 1);
    assert_eq!(pool.stats().connecting, 0);
}

/// A checkout that times out while the capacity is held by work waiting on the server says so:
/// a connection dropped mid-query whose CancelRequest is unanswered, a connect in flight.
#[tokio::test(start_paused = true)]
async fn a_timeout_names_what_holds_the_capacity() {
    let mock = Mock::new();
    mock.shared.set(|s| s.cancel_delay = Duration::from_secs(3));
    let pool = builder(&mock).min_size(1).max_size(1).open().await.unwrap();
    pool.wait(Duration::from_secs(1)).await.unwrap();
    let mut conn = pool.connection().await.unwrap();
    conn.state = ConnState::Busy;
    drop(conn); // cancelled (3 s), then closed: the slot is held meanwhile
    let e = pool
        .connection_timeout(Duration::from_secs(1))
        .await
        .unwrap_err();
    let info = e.pool_timeout_info().expect("a pool timeout");
    assert_eq!((info.cancelling, info.connecting, info.size), (1, 0, 1));
    assert!(info.last_connect_error.is_none());
    let held = std::error::Error::source(&e).expect("a cause");
    let held = held.downcast_ref::<wirepool::Error>().unwrap();
    assert!(held.is_capacity_held(), "{held}");
    assert!(
        held.to_string().contains(
            "1 connection(s) awaiting the cancellation of their queries (the oldest for 1.000 s)"
        ),
        "{held}"
    );
    // Once the cancel is done the slot is freed, and the replacement's connect hangs: the
    // timeout names the connect in flight.
    mock.shared.set(|s| s.connect = Gate::Never);
    settle_for(Duration::from_secs(3)).await;
    let e = pool
        .connection_timeout(Duration::from_secs(1))
        .await
        .unwrap_err();
    let info = e.pool_timeout_info().expect("a pool timeout");
    assert_eq!((info.cancelling, info.connecting), (0, 1));
    let held = std::error::Error::source(&e).expect("a cause").to_string();
    assert!(held.contains("1 connect(s) not yet answered"), "{held}");
}
