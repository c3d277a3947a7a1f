//! `Connection` against a real throwaway PostgreSQL 15: every authentication method, simple
//! queries, errors, server-side termination, cancel, and multi-host fallback.

mod support;

use std::time::{Duration, Instant};

use support::cluster::Cluster;
use wirepool::{Config, Connection, Error, TransactionStatus};

async fn connect_as(user: &str, password: Option<&str>) -> Result<Connection, Error> {
    let config: Config = Cluster::shared().conninfo(user, password).parse().unwrap();
    Connection::connect(&config).await
}

async fn one(conn: &mut Connection, sql: &str) -> Option<String> {
    let rows = conn.simple_query(sql).await.unwrap();
    rows[0].get(0).map(str::to_owned)
}

#[tokio::test]
async fn every_auth_method_logs_in() {
    for (user, password) in [
        ("postgres", None),
        ("pass_user", Some("password")),
        ("md5_user", Some("password")),
        ("md5scram_user", Some("password")),
        ("scram_user", Some("password")),
        ("prep_user", Some("IX")),
    ] {
        let mut conn = connect_as(user, password)
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        assert_eq!(
            one(&mut conn, "select current_user").await.as_deref(),
            Some(user)
        );
        conn.close().await.unwrap();
    }
}

#[tokio::test]
async fn wrong_and_missing_passwords() {
    for user in ["pass_user", "md5_user", "scram_user"] {
        let err = connect_as(user, Some("wrong")).await.unwrap_err();
        assert!(err.is_auth(), "{user}: {err:?}");
        assert_eq!(err.code(), Some("28P01"), "{user}");
        let err = connect_as(user, None).await.unwrap_err();
        assert!(err.is_auth(), "{user}: {err:?}");
        assert_eq!(err.code(), None, "{user}: client-side refusal");
        assert!(err.to_string().contains("no password supplied"), "{err}");
    }
}

#[tokio::test]
async fn multi_statement_rows_in_order_with_nulls() {
    let mut conn = connect_as("postgres", None).await.unwrap();
    let rows = conn
        .simple_query("select 1 as a, null::text as b; select 'x'; ; select")
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        (rows[0].get(0), rows[0].get(1), rows[0].len()),
        (Some("1"), None, 2)
    );
    assert_eq!(rows[1].get(0), Some("x"));
    assert!(rows[2].is_empty());
    assert!(conn.simple_query("").await.unwrap().is_empty());
}

/// A row keeps its values back to back in one string: each value must come back with exactly
/// its own bytes, empty strings and NULLs included, and nothing past the last column.
#[tokio::test]
async fn row_values_keep_their_boundaries() {
    let mut conn = connect_as("postgres", None).await.unwrap();
    let rows = conn
        .simple_query("select 'a', null::text, '', 'é', 'bc'")
        .await
        .unwrap();
    let row = &rows[0];
    let values: Vec<Option<&str>> = (0..=row.len()).map(|i| row.get(i)).collect();
    assert_eq!(
        values,
        [Some("a"), None, Some(""), Some("é"), Some("bc"), None]
    );
    assert_eq!(
        format!("{row:?}"),
        r#"[Some("a"), None, Some(""), Some("é"), Some("bc")]"#
    );
}

#[tokio::test]
async fn sql_error_leaves_connection_usable() {
    let mut conn = connect_as("postgres", None).await.unwrap();
    let err = conn.simple_query("select 1/0").await.unwrap_err();
    assert!(err.is_db());
    assert_eq!(err.code(), Some("22012"));
    assert!(!conn.is_broken());
    assert_eq!(one(&mut conn, "select 2").await.as_deref(), Some("2"));

    let err = conn.simple_query("BEGIN; SELECT 1/0").await.unwrap_err();
    assert_eq!(err.code(), Some("22012"));
    assert_eq!(conn.transaction_status(), TransactionStatus::Failed);
    conn.simple_query("ROLLBACK").await.unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    conn.simple_query("BEGIN").await.unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
}

#[tokio::test]
async fn copy_is_refused_and_connection_survives() {
    let mut conn = connect_as("postgres", None).await.unwrap();
    let err = conn
        .simple_query("create temp table t(a int); copy t from stdin")
        .await
        .unwrap_err();
    assert!(err.is_unsupported(), "{err:?}");
    let err = conn
        .simple_query("copy (select 1) to stdout")
        .await
        .unwrap_err();
    assert!(err.is_unsupported(), "{err:?}");
    assert_eq!(one(&mut conn, "select 3").await.as_deref(), Some("3"));
}

#[tokio::test]
async fn pid_and_parameters() {
    let mut conn = connect_as("postgres", None).await.unwrap();
    let pid = one(&mut conn, "select pg_backend_pid()").await.unwrap();
    assert_eq!(conn.backend_pid().to_string(), pid);
    assert!(conn.parameter("server_version").unwrap().starts_with("15"));
    assert!(conn.server_version_num().unwrap() >= 150_000);
    assert!(!conn.check_closed(), "a healthy idle connection is open");
}

/// Two connections; the first one's backend is terminated through the second. Returns
/// (victim, admin, victim's pid).
async fn terminate_one() -> (Connection, Connection, i32) {
    let victim = connect_as("postgres", None).await.unwrap();
    let mut admin = connect_as("postgres", None).await.unwrap();
    let pid = victim.backend_pid();
    admin
        .simple_query(&format!("select pg_terminate_backend({pid})"))
        .await
        .unwrap();
    (victim, admin, pid)
}

#[tokio::test]
async fn terminated_backend_is_detected() {
    let (mut victim, mut admin, pid) = terminate_one().await;
    // The backend sends FATAL 57P01 and closes before it leaves pg_stat_activity.
    let gone = format!("select count(*) from pg_stat_activity where pid = {pid}");
    let mut left = 200;
    while one(&mut admin, &gone).await.as_deref() != Some("0") {
        left -= 1;
        assert!(left > 0, "backend {pid} never exited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(victim.check_closed());
    assert!(victim.is_broken());
    let err = victim.simple_query("select 1").await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
}

#[tokio::test]
async fn terminated_backend_without_check_gives_a_clear_error() {
    let (mut victim, _admin, _) = terminate_one().await;
    let err = victim.simple_query("select 1").await.unwrap_err();
    assert!(err.is_closed() || err.code() == Some("57P01"), "{err:?}");
}

#[tokio::test]
async fn cancel_stops_a_running_query() {
    let mut conn = connect_as("postgres", None).await.unwrap();
    let token = conn.cancel_token();
    let pid = conn.backend_pid();
    let canceller = tokio::spawn(async move {
        let mut admin = connect_as("postgres", None).await.unwrap();
        let running = format!(
            "select count(*) from pg_stat_activity where pid = {pid} and state = 'active' \
             and query like '%pg_sleep%'"
        );
        let mut left = 500;
        while one(&mut admin, &running).await.as_deref() != Some("1") {
            left -= 1;
            assert!(left > 0, "the query never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        token.cancel().await.unwrap();
        Instant::now()
    });
    let err = conn.simple_query("select pg_sleep(30)").await.unwrap_err();
    let returned = Instant::now();
    let cancelled = canceller.await.unwrap();
    assert_eq!(err.code(), Some("57014"), "{err:?}");
    assert!(returned.saturating_duration_since(cancelled) < Duration::from_secs(1));
    assert_eq!(one(&mut conn, "select 4").await.as_deref(), Some("4"));
}

#[tokio::test]
async fn multi_host_skips_a_dead_first_host() {
    let c = Cluster::shared();
    let conninfo = format!(
        "host=127.0.0.1,127.0.0.1 port=1,{} user=postgres dbname=postgres",
        c.port()
    );
    let config: Config = conninfo.parse().unwrap();
    let mut conn = Connection::connect(&config).await.unwrap();
    assert_eq!(one(&mut conn, "select 5").await.as_deref(), Some("5"));
}

#[tokio::test]
async fn unix_socket_connects() {
    let c = Cluster::shared();
    let conninfo = format!(
        "host={} port={} user=postgres dbname=test_db",
        c.socket_dir().display(),
        c.port()
    );
    let config: Config = conninfo.parse().unwrap();
    let mut conn = Connection::connect(&config).await.unwrap();
    assert_eq!(
        one(&mut conn, "select current_database()").await.as_deref(),
        Some("test_db")
    );
    let token = conn.cancel_token();
    token.cancel().await.unwrap(); // harmless while idle
    assert_eq!(one(&mut conn, "select 6").await.as_deref(), Some("6"));
}

/// A COPY FROM STDIN whose future is dropped after the Query went out leaves the server
/// waiting for CopyData. The next query must end that COPY (CopyFail) while reading through
/// the dropped response, not wait for a ReadyForQuery that only a message from us can produce.
#[tokio::test]
async fn dropped_copy_in_is_failed_on_reuse() {
    let mut conn = connect_as("postgres", None).await.unwrap();
    conn.simple_query("CREATE TEMP TABLE dropped_copy (x int)")
        .await
        .unwrap();
    // One poll: the Query is written, then the future drops before CopyInResponse is read.
    let first_poll = poll_once(conn.simple_query("COPY dropped_copy FROM STDIN")).await;
    assert!(
        first_poll.is_pending(),
        "the server cannot answer within one poll"
    );
    assert!(conn.is_busy());
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        conn.simple_query("SELECT count(*) FROM dropped_copy"),
    )
    .await
    .expect("simple_query after a dropped COPY FROM STDIN hung");
    assert_eq!(next.unwrap()[0].get(0), Some("0"));
    assert!(!conn.is_busy());
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    conn.close().await.unwrap();
}

/// Polls `fut` exactly once and drops it (`timeout(Duration::ZERO, ..)` may poll it again
/// before the timer fires).
async fn poll_once<F: std::future::Future>(fut: F) -> std::task::Poll<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await
}

/// What a session's errors say about its future, kept for a pool to act on: a write refused as
/// read-only (25006) and a server that said it is going away (57P01 from
/// `pg_terminate_backend`, read by the idle peek).
#[tokio::test]
async fn a_session_remembers_read_only_refusals_and_a_server_going_away() {
    let mut conn = connect_as("postgres", None).await.unwrap();
    assert!(!conn.refused_writes() && !conn.server_going_away());
    conn.simple_query("SET default_transaction_read_only = on")
        .await
        .unwrap();
    let e = conn
        .simple_query("CREATE TABLE refused_here (a int)")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("25006"), "{e}");
    assert!(conn.refused_writes());
    assert!(!conn.server_going_away());
    let pid = conn.backend_pid();
    Cluster::shared()
        .psql(&format!("SELECT pg_terminate_backend({pid})"))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !conn.check_closed() {
        assert!(Instant::now() < deadline, "the termination never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(conn.server_going_away(), "57P01 was read while idle");
}
