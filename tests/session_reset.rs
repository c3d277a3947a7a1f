//! Session state never reaches the next borrower: a connection whose session changed (`SET`,
//! `LISTEN`, a reported parameter with a new value) is reset before it is reused, by default,
//! and a clean one returns with no round trip; opting out reuses sessions as they come back.

mod support;

use std::time::Duration;

use support::activity::tagged_conninfo as conninfo;
use wirepool::{Config, Connection, Pool};

/// What a borrower can see of the session it gets.
#[derive(Debug, PartialEq)]
struct Session {
    pid: i32,
    date_style: String,
    time_zone: String,
    interval_style: String,
    standard_conforming_strings: String,
    listening: String,
}

async fn session(conn: &mut Connection) -> Session {
    let rows = conn
        .simple_query(
            "SELECT current_setting('DateStyle'), current_setting('TimeZone'), \
             current_setting('IntervalStyle'), current_setting('standard_conforming_strings'), \
             (SELECT count(*) FROM pg_listening_channels())",
        )
        .await
        .unwrap();
    let get = |i: usize| rows[0].get(i).unwrap().to_owned();
    Session {
        pid: conn.backend_pid(),
        date_style: get(0),
        time_zone: get(1),
        interval_style: get(2),
        standard_conforming_strings: get(3),
        listening: get(4),
    }
}

/// The changes a careless borrower leaves behind: three `SET`s, a `LISTEN`, and a reported
/// setting changed by `set_config()` (no `SET` tag, only a ParameterStatus).
const CARELESS: &str = "SET DateStyle TO 'German, DMY'; SET TimeZone TO 'Asia/Tokyo'; \
     LISTEN wp_leak; SET standard_conforming_strings TO off; \
     SELECT set_config('IntervalStyle', 'postgres_verbose', false)";

async fn one_connection_pool(app: &str, reset: bool) -> Pool {
    Pool::builder(conninfo(app).as_str())
        .name(app)
        .min_size(1)
        .max_size(1)
        .timeout(Duration::from_secs(10))
        .reset_dirty_sessions(reset)
        .open()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_changed_session_is_reset_before_the_next_borrower() {
    let pool = one_connection_pool("wp_reset_default", true).await;
    let mut conn = pool.connection().await.unwrap();
    let fresh = session(&mut conn).await;
    conn.simple_query(CARELESS).await.unwrap();
    let changed = session(&mut conn).await;
    assert_eq!(changed.date_style, "German, DMY");
    assert_eq!(changed.listening, "1");
    assert!(conn.session_changed());
    drop(conn);

    let mut next = pool.connection().await.unwrap();
    let seen = session(&mut next).await;
    assert_eq!(
        seen, fresh,
        "the same backend, with the session of a new connection"
    );
    assert!(!next.session_changed());
    drop(next);
    assert_eq!(pool.stats().returns_bad, 0);
    pool.close().await;
}

#[tokio::test]
async fn opted_out_sessions_are_reused_as_they_come_back() {
    let pool = one_connection_pool("wp_reset_off", false).await;
    let mut conn = pool.connection().await.unwrap();
    let fresh = session(&mut conn).await;
    conn.simple_query(CARELESS).await.unwrap();
    drop(conn);

    let mut next = pool.connection().await.unwrap();
    let seen = session(&mut next).await;
    assert_eq!(seen.pid, fresh.pid);
    assert_eq!(seen.date_style, "German, DMY");
    assert_eq!(seen.time_zone, "Asia/Tokyo");
    assert_eq!(seen.interval_style, "postgres_verbose");
    assert_eq!(seen.standard_conforming_strings, "off");
    assert_eq!(seen.listening, "1");
    pool.close().await;
}

/// A clean connection goes back to the idle queue inside the guard's `drop`, with no
/// background work: the pool shows it idle before anything else runs. Queries, `SHOW` and a
/// committed transaction leave a session clean.
#[tokio::test]
async fn a_clean_connection_returns_with_no_round_trip() {
    let pool = one_connection_pool("wp_reset_clean", true).await;
    let mut conn = pool.connection().await.unwrap();
    conn.simple_query("SELECT 1; SHOW TimeZone; BEGIN; SELECT 2; COMMIT")
        .await
        .unwrap();
    assert!(!conn.session_changed());
    drop(conn);
    assert_eq!(
        pool.stats().pool_available,
        1,
        "idle at once, no reset task"
    );
    pool.close().await;
}

/// The `configure` hook's settings are the clean state: they survive the reset.
#[tokio::test]
async fn the_configure_hook_runs_again_after_a_reset() {
    let app = "wp_reset_configure";
    let pool = Pool::builder(conninfo(app).as_str())
        .name(app)
        .max_size(1)
        .configure(|conn| {
            Box::pin(async move {
                conn.simple_query("SET TimeZone TO 'America/Lima'")
                    .await
                    .map(drop)
            })
        })
        .open()
        .await
        .unwrap();
    let mut conn = pool.connection().await.unwrap();
    assert!(!conn.session_changed(), "the hook's SET is the baseline");
    conn.simple_query("SET TimeZone TO 'Asia/Tokyo'")
        .await
        .unwrap();
    drop(conn);
    let mut next = pool.connection().await.unwrap();
    assert_eq!(session(&mut next).await.time_zone, "America/Lima");
    drop(next);
    pool.close().await;
}

/// The connection's own account of its session: what changes it and what does not.
#[tokio::test]
async fn a_connection_tracks_what_changes_its_session() {
    let config: Config = conninfo("wp_session_changed").parse().unwrap();
    let mut conn = Connection::connect(&config).await.unwrap();
    for clean in ["SELECT 1", "SHOW DateStyle", "BEGIN; SELECT 2; COMMIT", ""] {
        conn.simple_query(clean).await.unwrap();
        assert!(!conn.session_changed(), "{clean:?} changed the session");
    }
    for changing in [
        "SET DateStyle TO 'SQL, DMY'",
        "RESET DateStyle",
        "LISTEN wp_chan",
        "UNLISTEN *",
        "PREPARE p AS SELECT 1",
        "DEALLOCATE p",
        "CREATE TEMP TABLE wp_temp (a int)",
        "SELECT set_config('TimeZone', 'Europe/Madrid', false)",
        "DISCARD ALL",
    ] {
        conn.simple_query(changing).await.unwrap();
        assert!(conn.session_changed(), "{changing:?} went unnoticed");
        conn.mark_session_clean();
    }
    conn.simple_query("SET TimeZone TO 'Asia/Tokyo'")
        .await
        .unwrap();
    conn.reset_session().await.unwrap();
    conn.mark_session_clean();
    let zone = conn.simple_query("SHOW TimeZone").await.unwrap();
    assert_ne!(zone[0].get(0), Some("Asia/Tokyo"));
    assert!(!conn.session_changed());
}

/// The user's `reset` hook runs before the reset of a changed session, so a hook that changes
/// the session itself (`RESET ALL` undoes the `configure` hook's settings) neither costs the
/// connection nor leaves it without what `configure` set: the same backend comes back,
/// configured.
#[tokio::test]
async fn a_session_changing_reset_hook_keeps_the_connection_and_its_configuration() {
    let app = "wp_reset_hook";
    let pool = Pool::builder(conninfo(app).as_str())
        .name(app)
        .max_size(1)
        .configure(|conn| {
            Box::pin(async move {
                conn.simple_query("SET TimeZone TO 'America/Lima'")
                    .await
                    .map(drop)
            })
        })
        .reset(|conn| Box::pin(async move { conn.simple_query("RESET ALL").await.map(drop) }))
        .open()
        .await
        .unwrap();
    let mut conn = pool.connection().await.unwrap();
    let first = session(&mut conn).await;
    drop(conn);
    for _ in 0..3 {
        let mut conn = pool.connection().await.unwrap();
        assert_eq!(session(&mut conn).await, first);
        assert!(!conn.session_changed());
    }
    let stats = pool.stats();
    assert_eq!(stats.connections_num, 1, "{stats}");
    pool.close().await;
}

/// Notifications for a borrower's `LISTEN` that it never read are not handed to the next one.
#[tokio::test]
async fn unread_notifications_do_not_reach_the_next_borrower() {
    let pool = one_connection_pool("wp_reset_notify", true).await;
    let mut conn = pool.connection().await.unwrap();
    conn.simple_query("LISTEN wp_stale").await.unwrap();
    // Delivered with this query's reply: buffered, never read by this borrower.
    conn.simple_query("NOTIFY wp_stale, 'old'; SELECT 1")
        .await
        .unwrap();
    drop(conn);
    let mut next = pool.connection().await.unwrap();
    assert!(next.take_notifications().unwrap().is_empty());
    pool.close().await;
}
