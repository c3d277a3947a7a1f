//! The blocking API (`wirepool::blocking`) against a real server: the psycopg_pool lesson's two
//! cases, OS threads sharing one pool, guards returned from other threads and other runtimes,
//! the refusal inside an async runtime, drops inside one, `close` releasing waiters, `drain`,
//! transactions, and threads waiting for notifications (`next_notification`, `Listener`) on
//! pooled and taken connections.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::activity::{backends, server_count, tagged_conninfo as conninfo};
use wirepool::blocking::{Listener, Pool, PooledConnection};
use wirepool::TransactionStatus;

/// A pool named after (and tagged with) `app`, so `pg_stat_activity` can count its backends.
fn open_pool(app: &str, min: usize, max: usize, timeout: Duration) -> Pool {
    Pool::builder(conninfo(app))
        .name(app)
        .min_size(min)
        .max_size(max)
        .timeout(timeout)
        .open()
        .expect("open")
}

/// Polls `done` every 10 ms, for at most 5 s, where the server's or the pool's state is the
/// only signal there is. Returns whether it got there.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Polls the server until `app` has no backend left (see [`eventually`]).
fn until_no_backends(app: &str) -> bool {
    eventually(|| backends(app) == 0)
}

/// Whether the server still has the backend `pid`.
fn backend_alive(pid: i32) -> bool {
    server_count(&format!("pid = {pid}")) == 1
}

/// A current-thread runtime of the caller's own, unrelated to any pool.
fn foreign_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn seed_case_1_connection_scopes_reuse_one_session() {
    let app = "wp_blocking_case1";
    let pool = open_pool(app, 1, 5, Duration::from_secs(5));
    pool.wait(Duration::from_secs(10)).unwrap();
    pool.check().unwrap();
    let mut pids = HashSet::new();
    for _ in 0..10 {
        // Like Python's `with pool.connection() as conn:`, the guard goes back at scope end.
        let mut conn = pool.connection().unwrap();
        let rows = conn.simple_query("SELECT 1").unwrap();
        assert_eq!(rows[0].get(0), Some("1"));
        pids.insert(conn.backend_pid());
    }
    assert_eq!(
        pids.len(),
        1,
        "each checkout was returned before the next: {pids:?}"
    );
    let stats = pool.stats();
    assert_eq!(stats.requests_num, 10);
    assert_eq!(stats.pool_size, 1);
    pool.close().unwrap();
    assert!(pool.is_closed());
    assert!(until_no_backends(app), "close() closed the idle connection");
}

#[test]
fn seed_case_2_getconn_without_putconn_exhausts_the_pool() {
    let app = "wp_blocking_case2";
    let timeout = Duration::from_secs(1);
    let pool = open_pool(app, 1, 5, timeout);
    pool.wait(Duration::from_secs(10)).unwrap();
    pool.check().unwrap();
    let mut conexiones = Vec::new();
    for _ in 0..5 {
        conexiones.push(pool.getconn().unwrap());
    }
    let pids: HashSet<i32> = conexiones.iter().map(|c| c.backend_pid()).collect();
    assert_eq!(pids.len(), 5, "five distinct server sessions");
    assert_eq!(backends(app), 5);

    let asked = Instant::now();
    let err = pool.getconn().unwrap_err();
    assert!(err.is_pool_timeout(), "{err}");
    assert!(asked.elapsed() >= timeout);
    let info = err.pool_timeout_info().unwrap();
    assert_eq!((info.pool.as_str(), info.size, info.idle), (app, 5, 0));
    assert!(
        info.last_connect_error.is_none(),
        "nothing failed to connect"
    );

    for conn in conexiones {
        pool.putconn(conn).unwrap();
    }
    assert_eq!(pool.stats().pool_available, 5);
    pool.close().unwrap();
    assert!(until_no_backends(app));
}

#[test]
fn threads_32_share_a_pool_of_5_and_the_server_never_sees_more_than_5() {
    let app = "wp_blocking_threads";
    const THREADS: usize = 32;
    const EACH: usize = 100;
    let pool = open_pool(app, 1, 5, Duration::from_secs(30));
    let most = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (pool, most) = (pool.clone(), Arc::clone(&most));
            thread::spawn(move || {
                for _ in 0..EACH {
                    let mut conn = pool.connection().unwrap();
                    // The server's own count of this pool's sessions, taken while one is held.
                    let rows = conn
                        .simple_query(&format!(
                            "select count(*) from pg_stat_activity \
                             where application_name = '{app}'"
                        ))
                        .unwrap();
                    let live: usize = rows[0].get(0).unwrap().parse().unwrap();
                    most.fetch_max(live, Ordering::Relaxed);
                    assert!(live <= 5, "the server saw {live} sessions for a pool of 5");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a worker thread panicked");
    }
    let stats = pool.stats();
    assert_eq!(stats.requests_num, (THREADS * EACH) as u64);
    assert_eq!(stats.requests_errors, 0);
    assert!(stats.pool_size <= 5);
    assert!(most.load(Ordering::Relaxed) <= 5);
    assert!(backends(app) <= 5);
    drop(pool);
    assert!(
        until_no_backends(app),
        "dropping the last handle closed the pool"
    );
}

/// Checks out the pool's one connection, opens a transaction on it and returns the guard.
fn in_transaction(pool: &Pool) -> (PooledConnection, i32) {
    let mut conn = pool.connection().unwrap();
    conn.simple_query("BEGIN; SELECT 1").unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
    let pid = conn.backend_pid();
    (conn, pid)
}

#[test]
fn a_guard_dropped_on_another_thread_is_rolled_back_and_reused() {
    let pool = open_pool("wp_blocking_other_thread", 1, 1, Duration::from_secs(10));
    let (conn, pid) = in_transaction(&pool);
    thread::spawn(move || drop(conn)).join().unwrap();
    // The rollback runs on the pool's thread and holds the one permit until it is done.
    let conn = pool.connection().unwrap();
    assert_eq!(
        conn.backend_pid(),
        pid,
        "the same session, not a replacement"
    );
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
}

#[test]
fn a_guard_dropped_inside_a_foreign_runtime_is_rolled_back_on_the_pools_own() {
    let pool = open_pool("wp_blocking_foreign_rt", 1, 1, Duration::from_secs(10));
    let (conn, pid) = in_transaction(&pool);
    // Had the rollback been spawned on the caller's runtime, dropping that runtime right away
    // would cancel it and the connection would be discarded (a new pid next time).
    let rt = foreign_runtime();
    rt.block_on(async move { drop(conn) });
    drop(rt);
    let conn = pool.connection().unwrap();
    assert_eq!(conn.backend_pid(), pid);
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
}

#[test]
fn inside_an_async_runtime_blocking_calls_are_refused_and_spawn_blocking_works() {
    let pool = open_pool("wp_blocking_in_rt", 1, 2, Duration::from_secs(10));
    pool.wait(Duration::from_secs(10)).unwrap();
    let mut held = pool.getconn().unwrap();
    let token = held.cancel_token();
    let refused = |r: Result<(), wirepool::Error>| {
        let e = r.unwrap_err();
        assert!(e.is_inside_async_runtime(), "{e}");
        assert!(e.to_string().contains("spawn_blocking"), "{e}");
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        refused(
            Pool::builder(conninfo("wp_blocking_in_rt"))
                .open()
                .map(drop),
        );
        let config = conninfo("wp_blocking_in_rt").parse().unwrap();
        refused(Listener::connect(&config).map(drop));
        refused(pool.wait(Duration::ZERO));
        refused(pool.connection().map(drop));
        refused(pool.connection_timeout(Duration::ZERO).map(drop));
        refused(pool.getconn().map(drop));
        refused(pool.getconn_timeout(Duration::ZERO).map(drop));
        refused(pool.check());
        refused(held.simple_query("SELECT 1").map(drop));
        refused(held.next_notification(Duration::ZERO).map(drop));
        refused(token.cancel());
        let in_task = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.connection().map(drop) })
        };
        refused(in_task.await.unwrap());
        refused(pool.close());
        // What never blocks works anywhere.
        assert_eq!(pool.stats().requests_errors, 0);
        pool.resize(1, 2).unwrap();
        assert!(!pool.is_closed());
    });
    drop(token);
    pool.putconn(held).unwrap();
    // The advice in the error works: the same calls from spawn_blocking.
    let rows = rt.block_on(async {
        let pool = pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.connection()?;
            conn.simple_query("SELECT 42")
        })
        .await
        .unwrap()
    });
    assert_eq!(rows.unwrap()[0].get(0), Some("42"));
}

#[test]
fn dropping_pools_and_guards_inside_an_async_runtime_does_not_panic() {
    let app = "wp_blocking_drop_in_rt";
    let pool = open_pool(app, 2, 2, Duration::from_secs(10));
    pool.wait(Duration::from_secs(10)).unwrap();
    let guard = pool.connection().unwrap();
    let rt = foreign_runtime();
    // The pool first, then its last guard: the guard's drop lets go of the pool's thread.
    rt.block_on(async move {
        drop(pool);
        drop(guard);
    });
    assert!(
        until_no_backends(app),
        "the pool thread closed every connection"
    );

    let app = "wp_blocking_drop_in_task";
    let pool = open_pool(app, 1, 1, Duration::from_secs(10));
    pool.wait(Duration::from_secs(10)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    rt.block_on(async move { tokio::spawn(async move { drop(pool) }).await.unwrap() });
    assert!(until_no_backends(app));

    // A taken connection and a listener outlive their pool; the last of them lets go of the
    // pool's thread from inside a task, and their sockets close with them.
    let app = "wp_blocking_drop_taken_in_task";
    let pool = open_pool(app, 0, 2, Duration::from_secs(10));
    let taken = PooledConnection::take(pool.connection().unwrap());
    let listener = Listener::new(PooledConnection::take(pool.connection().unwrap()));
    drop(pool);
    rt.block_on(async move {
        tokio::spawn(async move { drop((taken, listener)) })
            .await
            .unwrap()
    });
    assert!(until_no_backends(app));
}

#[test]
fn close_releases_waiting_threads_with_a_closed_error() {
    let app = "wp_blocking_close_waiters";
    let pool = open_pool(app, 1, 1, Duration::from_secs(60));
    let held = pool.connection().unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            thread::spawn(move || {
                let asked = Instant::now();
                (pool.connection().map(drop), asked.elapsed())
            })
        })
        .collect();
    // The pool's own gauge is the signal that all three are queued.
    while pool.stats().requests_waiting < 3 {
        thread::yield_now();
    }
    pool.close().unwrap();
    for w in waiters {
        let (result, waited) = w.join().unwrap();
        let e = result.unwrap_err();
        assert!(e.is_pool_closed(), "{e}");
        assert!(
            waited < Duration::from_secs(30),
            "released by close, not by the timeout"
        );
    }
    drop(held); // closed as it comes back
    assert!(until_no_backends(app));
}

#[test]
fn a_cancel_token_stops_a_query_from_another_thread() {
    let pool = open_pool("wp_blocking_cancel", 1, 1, Duration::from_secs(10));
    let mut conn = pool.connection().unwrap();
    let token = conn.cancel_token();
    let canceller = thread::spawn(move || {
        // Cancel only once the server shows the query running (its own state, polled).
        while server_count("query = 'SELECT pg_sleep(30)' and state = 'active'") != 1 {
            thread::sleep(Duration::from_millis(10));
        }
        token.cancel()
    });
    let err = conn.simple_query("SELECT pg_sleep(30)").unwrap_err();
    assert_eq!(err.code(), Some("57014"), "{err}");
    canceller.join().unwrap().unwrap();
}

#[test]
fn parameters_from_a_thread() {
    let pool = open_pool("wp_blocking_params", 1, 1, Duration::from_secs(5));
    let mut conn = pool.connection().unwrap();
    let text = "it's; DROP TABLE x; --";
    let row = conn
        .query_one("SELECT $1::text, $2::int8 * 2", &[&text, &21i64])
        .unwrap();
    assert_eq!(row.try_get::<&str, _>(0).unwrap(), text);
    assert_eq!(row.try_get::<i64, _>(1).unwrap(), 42);
    assert_eq!(
        conn.execute("SELECT generate_series(1, $1::int4)", &[&3i32])
            .unwrap(),
        3
    );
    assert!(conn
        .query_opt("SELECT 1 WHERE $1::bool", &[&false])
        .unwrap()
        .is_none());
    let err = conn.query("SELECT $1::int4", &[&"x"]).unwrap_err();
    assert_eq!(err.code(), Some("22P02"));
    assert_eq!(conn.query("SELECT 1", &[]).unwrap().len(), 1);
    drop(conn);
    pool.close().unwrap();
}

/// `close_timeout` on a real server: a query still running when the grace ends is cancelled
/// (57014 on the thread that ran it), its connection is closed when the guard comes back, and
/// the server is left with no backend of the pool.
#[test]
fn close_timeout_cancels_a_query_still_running_then_closes_its_connection() {
    let app = "wp_blocking_close_timeout";
    let pool = open_pool(app, 1, 2, Duration::from_secs(5));
    pool.wait(Duration::from_secs(10)).unwrap();
    let started = Arc::new(std::sync::Barrier::new(2));
    let worker = thread::spawn({
        let (pool, started) = (pool.clone(), Arc::clone(&started));
        move || {
            let mut conn = pool.connection().unwrap();
            started.wait();
            let r = conn.simple_query("SELECT pg_sleep(30)");
            r.map(drop).unwrap_err()
        }
    });
    started.wait();
    let start = Instant::now();
    assert_eq!(pool.close_timeout(Duration::from_millis(300)).unwrap(), 1);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let e = worker.join().unwrap();
    assert_eq!(e.code(), Some("57014"), "{e}");
    assert!(pool.connection().unwrap_err().is_pool_closed());
    assert!(
        until_no_backends(app),
        "the cancelled connection was closed"
    );
}

/// The blocking builder's `statement_cache` turns the cache on for the pool's connections (a
/// repeated query is prepared once), and `leak_detection_threshold` reports a connection held
/// past it, once.
#[test]
fn the_blocking_builder_sets_the_statement_cache_and_leak_detection() {
    let app = "wp_blocking_cache_leaks";
    let pool = Pool::builder(conninfo(app))
        .name(app)
        .min_size(1)
        .max_size(1)
        .statement_cache(8)
        .leak_detection_threshold(Duration::from_millis(100))
        .open()
        .unwrap();
    let mut conn = pool.connection().unwrap();
    for i in 0..3 {
        let row = conn.query_one("SELECT $1::int4 + 1", &[&i]).unwrap();
        assert_eq!(row.try_get::<i32, _>(0).unwrap(), i + 1);
    }
    let prepared = conn
        .simple_query("SELECT count(*) FROM pg_prepared_statements")
        .unwrap();
    assert_eq!(prepared[0].get(0), Some("1"), "prepared once");
    // Held past the threshold: the pool's stats are the signal.
    eventually(|| pool.stats().leaks_detected > 0);
    assert_eq!(pool.stats().leaks_detected, 1, "{:?}", pool.stats());
    drop(conn);
    pool.close().unwrap();
}

/// A blocking transaction: committed work is saved; a failed statement makes `commit` an
/// error with nothing saved; one dropped unfinished is rolled back by the pool on return.
#[test]
fn a_blocking_transaction_commits_reports_a_failed_commit_and_is_rolled_back_when_dropped() {
    let app = "wp_blocking_tx";
    let pool = open_pool(app, 1, 1, Duration::from_secs(5));
    let mut conn = pool.connection().unwrap();
    conn.simple_query("DROP TABLE IF EXISTS wp_blocking_tx; CREATE TABLE wp_blocking_tx (v int4)")
        .unwrap();
    let mut tx = conn.transaction().unwrap();
    assert_eq!(
        tx.execute("INSERT INTO wp_blocking_tx VALUES ($1)", &[&1i32])
            .unwrap(),
        1
    );
    tx.commit().unwrap();

    let mut tx = conn.transaction().unwrap();
    tx.execute("INSERT INTO wp_blocking_tx VALUES ($1)", &[&2i32])
        .unwrap();
    assert!(tx.query_one("SELECT 1/0", &[]).unwrap_err().is_db());
    let e = tx.commit().unwrap_err();
    assert!(e.is_transaction(), "{e}");

    let mut tx = conn.transaction().unwrap();
    tx.execute("INSERT INTO wp_blocking_tx VALUES ($1)", &[&3i32])
        .unwrap();
    drop(tx);
    assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
    let rows = conn
        .simple_query("SELECT count(*) FROM wp_blocking_tx")
        .unwrap();
    assert_eq!(rows[0].get(0), Some("2"), "inside the open transaction");
    drop(conn);

    // Back from the pool, the open transaction was rolled back.
    let mut conn = pool.connection().unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    let rows = conn
        .simple_query("SELECT v FROM wp_blocking_tx ORDER BY v")
        .unwrap();
    let values: Vec<_> = rows.iter().map(|r| r.get(0).unwrap().to_owned()).collect();
    assert_eq!(values, ["1"]);
    drop(conn);
    pool.close().unwrap();
}

/// `rollback` ends a transaction with nothing saved, a failed one included, and leaves the
/// connection idle and usable.
#[test]
fn a_blocking_transaction_rolled_back_leaves_nothing_behind() {
    let pool = open_pool("wp_blocking_rollback", 1, 1, Duration::from_secs(5));
    let mut conn = pool.connection().unwrap();
    conn.simple_query(
        "DROP TABLE IF EXISTS wp_blocking_rollback; CREATE TABLE wp_blocking_rollback (v int4)",
    )
    .unwrap();
    let count = "SELECT count(*)::int4 FROM wp_blocking_rollback";

    let mut tx = conn.transaction().unwrap();
    tx.execute("INSERT INTO wp_blocking_rollback VALUES ($1)", &[&1i32])
        .unwrap();
    let inside = tx.query_one(count, &[]).unwrap();
    assert_eq!(inside.try_get::<i32, _>(0).unwrap(), 1, "seen inside");
    tx.rollback().unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    let after = conn.query_one(count, &[]).unwrap();
    assert_eq!(after.try_get::<i32, _>(0).unwrap(), 0, "the insert is gone");

    let mut tx = conn.transaction().unwrap();
    tx.execute("INSERT INTO wp_blocking_rollback VALUES ($1)", &[&2i32])
        .unwrap();
    assert!(tx.simple_query("SELECT 1/0").unwrap_err().is_db());
    tx.rollback().unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    let after = conn.query_one(count, &[]).unwrap();
    assert_eq!(after.try_get::<i32, _>(0).unwrap(), 0);
    drop(conn);
    pool.close().unwrap();
}

/// `drain` replaces every connection: the idle one is closed at once (its backend leaves the
/// server), the checked-out one when it comes back, and later checkouts get new sessions.
#[test]
fn drain_replaces_idle_connections_now_and_checked_out_ones_on_return() {
    let pool = open_pool("wp_blocking_drain", 2, 2, Duration::from_secs(10));
    pool.wait(Duration::from_secs(10)).unwrap();
    let held = pool.connection().unwrap();
    let idle_pid = pool.connection().unwrap().backend_pid();
    let old = [held.backend_pid(), idle_pid];

    pool.drain();
    assert!(
        eventually(|| !backend_alive(idle_pid)),
        "the idle one closed"
    );
    assert!(backend_alive(old[0]), "the checked-out one is left alone");
    let fresh = pool.connection().unwrap();
    assert!(
        !old.contains(&fresh.backend_pid()),
        "opened after the drain"
    );

    drop(held);
    drop(fresh);
    assert!(eventually(|| pool.stats().connections_drained == 2));
    assert!(eventually(|| !backend_alive(old[0])), "closed on return");
    let (a, b) = (pool.connection().unwrap(), pool.connection().unwrap());
    assert!(!old.contains(&a.backend_pid()) && !old.contains(&b.backend_pid()));
    drop((a, b));
    pool.close().unwrap();
}

/// A thread blocked in `next_notification` is woken by a NOTIFY from another connection, well
/// before its timeout; with nothing to receive, the timeout returns `None` on time.
#[test]
fn a_notify_wakes_a_thread_waiting_in_next_notification_and_a_timeout_returns_none() {
    let pool = open_pool("wp_blocking_notify", 2, 2, Duration::from_secs(10));
    let mut listening = pool.connection().unwrap();
    listening.simple_query("LISTEN wp_blocking_jobs").unwrap();
    assert!(listening.session_changed(), "LISTEN changes the session");
    let ready = Arc::new(std::sync::Barrier::new(2));
    let waiter = thread::spawn({
        let ready = Arc::clone(&ready);
        move || {
            ready.wait();
            let asked = Instant::now();
            let got = listening.next_notification(Duration::from_secs(30));
            (got, asked.elapsed(), listening)
        }
    });
    ready.wait();
    // A delay, not a signal: the wait below must last at least this long.
    let delay = Duration::from_millis(300);
    thread::sleep(delay);
    let mut notifier = pool.connection().unwrap();
    notifier
        .simple_query("NOTIFY wp_blocking_jobs, 'job-1'")
        .unwrap();
    let (got, waited, mut listening) = waiter.join().unwrap();
    let n = got.unwrap().expect("the notification, not the timeout");
    assert_eq!(
        (n.channel.as_str(), n.payload.as_str(), n.pid),
        ("wp_blocking_jobs", "job-1", notifier.backend_pid())
    );
    assert!(
        waited >= delay - Duration::from_millis(50) && waited < Duration::from_secs(5),
        "woken by the NOTIFY: {waited:?}"
    );

    let asked = Instant::now();
    assert!(listening
        .next_notification(Duration::from_millis(200))
        .unwrap()
        .is_none());
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(listening
        .next_notification(Duration::ZERO)
        .unwrap()
        .is_none());
    // One that already arrived (with the NOTIFY's own response) is there at once.
    listening
        .simple_query("NOTIFY wp_blocking_jobs, 'job-2'")
        .unwrap();
    let n = listening.next_notification(Duration::ZERO).unwrap();
    assert_eq!(n.map(|n| n.payload).as_deref(), Some("job-2"));
    drop((listening, notifier));
    pool.close().unwrap();
}

/// `take` frees the connection's place (a pool of one opens another) and leaves the session
/// to the caller; a guard whose connection was swapped for a taken one is refused by `putconn`
/// (the taken one is closed) and the swapped-out pooled one goes back when dropped.
#[test]
fn take_detaches_a_connection_from_the_pool() {
    let app = "wp_blocking_take";
    let pool = open_pool(app, 0, 1, Duration::from_secs(2));
    let mut own = PooledConnection::take(pool.connection().unwrap());
    assert_eq!(pool.stats().pool_size, 0, "{:?}", pool.stats());
    let mut pooled = pool.connection().unwrap();
    let own_pid = own.backend_pid();
    assert_ne!(pooled.backend_pid(), own_pid);
    own.simple_query("SET application_name = 'wp_blocking_taken'")
        .unwrap();
    assert_eq!(backends("wp_blocking_taken"), 1);

    std::mem::swap(&mut *pooled, &mut own);
    let e = pool.putconn(pooled).unwrap_err();
    assert!(e.is_foreign_connection(), "{e}");
    assert!(
        eventually(|| !backend_alive(own_pid)),
        "the taken one closed"
    );
    drop(own);
    assert_eq!(pool.stats().pool_available, 1, "{:?}", pool.stats());

    let own = PooledConnection::take(pool.connection().unwrap());
    let pid = own.backend_pid();
    own.close().unwrap();
    assert!(
        !backend_alive(pid),
        "close waits for the server to end the session"
    );
    pool.close().unwrap();
    assert!(until_no_backends(app));
}

/// A blocking `Listener` over a taken connection: quoted channel names, notifications from
/// another connection, `recv` timing out with `None`, `unlisten`, and it keeps working after
/// its pool is closed and dropped (it holds the pool's thread), until it is closed.
#[test]
fn a_blocking_listener_receives_times_out_and_outlives_its_pool() {
    let app = "wp_blocking_listener";
    let pool = open_pool(app, 0, 1, Duration::from_secs(5));
    let mut listener = Listener::new(PooledConnection::take(pool.connection().unwrap()));
    let quoted = "Wp Jobs \"x\"";
    listener.listen(quoted).unwrap();
    listener.listen("wp_plain").unwrap();
    assert_eq!(
        listener.channels().collect::<Vec<_>>(),
        [quoted, "wp_plain"]
    );

    // The listener holds no place: a pool of one still has one to give.
    let mut other = pool.connection().unwrap();
    other
        .query("SELECT pg_notify($1, $2)", &[&quoted, &"p1"])
        .unwrap();
    let n = listener.recv(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!((n.channel.as_str(), n.payload.as_str()), (quoted, "p1"));
    drop(other);
    pool.close().unwrap();
    drop(pool);

    let notifier = open_pool("wp_blocking_notifier", 1, 1, Duration::from_secs(5));
    let notify = |sql: &str| notifier.connection().unwrap().simple_query(sql).unwrap();
    notify("NOTIFY wp_plain, 'p2'");
    let n = listener.recv(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(n.payload, "p2", "delivered after the pool is gone");

    let asked = Instant::now();
    assert!(listener.recv(Duration::from_millis(200)).unwrap().is_none());
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
        "{waited:?}"
    );

    listener.unlisten("wp_plain").unwrap();
    assert_eq!(listener.channels().collect::<Vec<_>>(), [quoted]);
    notify("NOTIFY wp_plain, 'p3'");
    let mut conn = listener.into_connection();
    // Any notification for wp_plain would have come with this query's response.
    conn.simple_query("SELECT 1").unwrap();
    assert!(conn.take_notifications().unwrap().is_empty());
    conn.close().unwrap();
    assert!(until_no_backends(app));
}

/// `Listener::connect` needs no pool: it has a thread of its own, receives, and closes.
#[test]
fn a_listener_connected_on_its_own_receives_and_closes() {
    let app = "wp_blocking_own_listener";
    let config = conninfo(app).parse().unwrap();
    let mut listener = Listener::connect(&config).unwrap();
    listener.listen("wp_own").unwrap();
    let notifier = open_pool("wp_blocking_own_notifier", 1, 1, Duration::from_secs(5));
    let mut conn = notifier.connection().unwrap();
    conn.simple_query("NOTIFY wp_own, 'hello'").unwrap();
    let n = listener.recv(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!((n.payload.as_str(), n.pid), ("hello", conn.backend_pid()));
    assert_eq!(backends(app), 1);
    listener.into_connection().close().unwrap();
    assert_eq!(
        backends(app),
        0,
        "close waits for the server to end the session"
    );
}
