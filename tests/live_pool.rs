//! The pool against a real PostgreSQL server (a throwaway cluster the tests start themselves):
//! the semantics that only a server can show — live connection counts in `pg_stat_activity`,
//! server-closed idle connections, rollback-on-return, and a query dropped mid-flight.

mod support;

use std::time::Duration;

use support::activity::{backends, server_count, tagged_conninfo as conninfo};
use support::cluster::Cluster;
use wirepool::{Pool, TransactionStatus};

/// A pool named after (and tagged with) `app`, so `pg_stat_activity` can count its backends.
async fn open_pool(app: &str, min: usize, max: usize) -> Pool {
    Pool::builder(conninfo(app).as_str())
        .name(app)
        .min_size(min)
        .max_size(max)
        .timeout(Duration::from_secs(30))
        .open()
        .await
        .unwrap()
}

/// Polls the server (its state is the only signal there is) until `cond` matches no backend,
/// for at most 2 s. Returns whether it got there.
async fn until_none(cond: &str) -> bool {
    for _ in 0..200 {
        if server_count(cond) == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_than_max_size_backends_under_200_tasks() {
    let app = "wp_max_size";
    let pool = open_pool(app, 1, 5).await;

    let mut tasks = Vec::new();
    for _ in 0..200 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                let mut conn = pool.connection().await.unwrap();
                // Each use reports how many backends the server has for this pool, as seen by
                // the server itself while the connection is checked out.
                let rows = conn
                    .simple_query(&format!(
                        "select count(*) from pg_stat_activity where application_name = '{app}'"
                    ))
                    .await
                    .unwrap();
                let live: usize = rows[0].get(0).unwrap().parse().unwrap();
                assert!(live <= 5, "server saw {live} backends for a pool of 5");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(pool.stats().pool_size <= 5);
    assert!(backends(app) <= 5);
    pool.close().await;
}

#[tokio::test]
async fn server_closed_idle_connections_are_never_handed_out() {
    let app = "wp_terminated";
    let pool = open_pool(app, 3, 3).await;
    pool.wait(Duration::from_secs(10)).await.unwrap();
    assert_eq!(backends(app), 3);

    // Kill every idle backend of this pool, and wait until the server reports them gone.
    Cluster::shared()
        .psql(&format!(
            "select pg_terminate_backend(pid) from pg_stat_activity where application_name = '{app}'"
        ))
        .unwrap();
    assert!(
        until_none(&format!("application_name = '{app}'")).await,
        "the server did not end the backends"
    );

    for i in 0..20 {
        let mut conn = pool.connection().await.unwrap();
        let rows = conn
            .simple_query("select 1")
            .await
            .unwrap_or_else(|e| panic!("checkout {i} got a dead connection: {e}"));
        assert_eq!(rows[0].get(0), Some("1"));
    }
    pool.close().await;
}

#[tokio::test]
async fn a_connection_returned_in_a_transaction_is_rolled_back() {
    let app = "wp_rollback";
    let pool = open_pool(app, 1, 1).await;
    let pid = {
        let mut conn = pool.connection().await.unwrap();
        conn.simple_query("begin; create temp table abandoned(x int)")
            .await
            .unwrap();
        assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
        conn.backend_pid()
    };
    // max_size 1: the next checkout waits for the background ROLLBACK to give the slot back.
    let mut conn = pool.connection().await.unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    assert_eq!(
        conn.backend_pid(),
        pid,
        "the rolled-back connection is reused"
    );
    let err = conn
        .simple_query("select * from abandoned")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some("42P01"),
        "the temp table must be gone: {err}"
    );
    drop(conn);
    pool.close().await;
}

#[tokio::test]
async fn a_checkout_dropped_mid_query_cancels_it_and_is_discarded() {
    let app = "wp_midquery";
    let pool = open_pool(app, 1, 1).await;
    let mut conn = pool.connection().await.unwrap();
    let pid = conn.backend_pid();
    // Start a long query and drop its future once the server reports it running.
    {
        let query = conn.simple_query("select pg_sleep(30)");
        tokio::pin!(query);
        loop {
            tokio::select! {
                _ = &mut query => panic!("pg_sleep(30) finished"),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            if server_count(&format!("pid = {pid} and state = 'active'")) == 1 {
                break;
            }
        }
    }
    drop(conn);

    // The next checkout is a different, healthy backend and never sees a stray 57014.
    let mut next = pool.connection().await.unwrap();
    assert_ne!(next.backend_pid(), pid);
    for _ in 0..20 {
        next.simple_query("select 1").await.unwrap();
    }
    drop(next);
    // The abandoned backend stops running the query (cancelled, then terminated).
    assert!(
        until_none(&format!("pid = {pid} and state = 'active'")).await,
        "backend {pid} still running pg_sleep after the drop"
    );
    pool.close().await;
}

/// `cancel_leaked`: a checkout held past `leak_detection_threshold` has its running query
/// cancelled by the server (57014 in the holder's hands, the connection still usable by it),
/// and the connection is closed when it comes back: the next checkout is another backend.
#[tokio::test]
async fn a_leaked_checkout_has_its_query_cancelled_and_its_connection_closed_on_return() {
    let app = "wp_cancel_leaked";
    let pool = Pool::builder(conninfo(app).as_str())
        .name(app)
        .min_size(1)
        .max_size(1)
        .leak_detection_threshold(Duration::from_millis(200))
        .cancel_leaked(true)
        .open()
        .await
        .unwrap();
    let mut conn = pool.connection().await.unwrap();
    let pid = conn.backend_pid();
    let started = std::time::Instant::now();
    let e = tokio::time::timeout(
        Duration::from_secs(20),
        conn.simple_query("select pg_sleep(30)"),
    )
    .await
    .expect("the leak watch cancels the query")
    .unwrap_err();
    let took = started.elapsed();
    println!("leaked pg_sleep(30) cancelled after {took:?} (threshold 200 ms)");
    assert_eq!(e.code(), Some("57014"), "{e}");
    assert_eq!(pool.stats().leaks_detected, 1);
    conn.simple_query("select 1").await.unwrap(); // the holder's session goes on
    drop(conn);
    let next = pool.connection().await.unwrap();
    assert_ne!(
        next.backend_pid(),
        pid,
        "a revoked connection is never reused"
    );
    drop(next);
    assert!(
        until_none(&format!("pid = {pid}")).await,
        "backend {pid} still connected after its return"
    );
    pool.close().await;
}

/// A connect error no retry can fix without a change on the server reaches a waiting checkout
/// as soon as the server refuses the login (well under the checkout's timeout), with the
/// server's error (text and SQLSTATE) through the error's source chain: a wrong password
/// (28P01), a database that does not exist (3D000), a role that does not exist (28000).
#[tokio::test]
async fn a_login_no_retry_can_fix_reaches_a_waiting_checkout_at_once() {
    let c = Cluster::shared();
    let cases = [
        // `password` auth: the refusal costs one round trip, no PBKDF2.
        ("28P01", c.conninfo("pass_user", Some("wrong"))),
        (
            "3D000",
            format!("{} dbname=wp_no_such_db", c.conninfo("postgres", None)),
        ),
        ("28000", c.conninfo("wp_no_such_role", None)),
    ];
    for (code, conninfo) in cases {
        let pool = Pool::builder(conninfo.as_str())
            .name(format!("wp_refused_{code}"))
            .min_size(0)
            .max_size(2)
            .timeout(Duration::from_secs(10))
            .open()
            .await
            .unwrap();
        let start = std::time::Instant::now();
        let err = pool.getconn().await.unwrap_err();
        let waited = start.elapsed();
        eprintln!("{code} reached the checkout after {waited:?}");
        assert!(err.is_pool_unavailable(), "{code}: {err}");
        assert_eq!(err.code(), Some(code), "{err:?}");
        assert!(
            waited < Duration::from_millis(100),
            "{code}: the checkout waited {waited:?} for an error no retry can fix"
        );
        pool.close().await;
    }
}

/// A pool whose every connect attempt runs out of its `connect_timeout` (here a server that
/// accepts the TCP connection and never answers) is not known to be down: a checkout waits its
/// whole timeout, and the timeout carries the last connect error.
#[tokio::test]
async fn a_checkout_that_times_out_carries_the_last_connect_error() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let pool = Pool::builder(format!(
        "host=127.0.0.1 port={port} user=nobody sslmode=disable"
    ))
    .name("wp_connect_timeout")
    .min_size(0)
    .max_size(1)
    .connect_timeout(Duration::from_millis(50))
    .timeout(Duration::from_millis(300))
    .open()
    .await
    .unwrap();
    let err = pool.getconn().await.unwrap_err();
    assert!(err.is_pool_timeout(), "{err}");
    let info = err.pool_timeout_info().unwrap();
    assert_eq!(
        info.last_connect_error.as_deref(),
        Some("timed out connecting to the server"),
        "{err}"
    );
    pool.close().await;
    drop(silent);
}

/// A connection returned while a CancelRequest for it may still be on its way (here: a spawned
/// timeout-style cancel that has not run yet) must not go to the next borrower, whose query it
/// would interrupt (pgbouncer#245, npgsql#1636): the pool discards it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_cancel_never_hits_the_next_borrower() {
    let pool = open_pool("wp_late_cancel", 1, 1).await;
    let mut hits = 0;
    let mut cancels = Vec::new();
    for _ in 0..10 {
        let first_pid;
        {
            let mut a = pool.connection().await.unwrap();
            first_pid = a.backend_pid();
            a.simple_query("SELECT 1").await.unwrap();
            // e.g. a request timeout firing just as the query completed
            let token = a.cancel_token();
            cancels.push(tokio::spawn(async move { token.cancel().await }));
        } // returned with a cancel pending
        let mut b = pool.connection().await.unwrap();
        assert_ne!(
            b.backend_pid(),
            first_pid,
            "a connection with a pending cancel was handed out again"
        );
        match b.simple_query("SELECT pg_sleep(0.3)").await {
            Err(e) if e.code() == Some("57014") => hits += 1,
            other => {
                other.unwrap();
            }
        }
    }
    assert_eq!(
        hits, 0,
        "{hits}/10 innocent queries cancelled by the previous borrower's cancel"
    );
    for cancel in cancels {
        cancel.await.unwrap().unwrap();
    }
    pool.close().await;
}

/// The other side of the rule above: a cancel token taken and dropped unused (a timeout that
/// did not fire) costs nothing; the connection is reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_cancel_token_does_not_cost_the_connection() {
    let pool = open_pool("wp_unused_token", 1, 1).await;
    let pid = {
        let mut a = pool.connection().await.unwrap();
        let token = a.cancel_token();
        a.simple_query("SELECT 1").await.unwrap();
        drop(token);
        a.backend_pid()
    };
    let b = pool.connection().await.unwrap();
    assert_eq!(b.backend_pid(), pid);
    drop(b);
    pool.close().await;
}
