//! wirepool through a real PgBouncer: SCRAM between the pool and PgBouncer, transaction pooling
//! between PgBouncer and PostgreSQL, many tasks sharing few server connections.
//!
//! `.ci/run` installs PgBouncer. Without it these tests fail and say what to install; with
//! `WIREPOOL_SKIP_PGBOUNCER=1` they print that they were skipped and pass.

mod support;

use std::time::Duration;

use support::cluster::Cluster;
use support::pgbouncer::{PgBouncer, PoolMode};
use wirepool::{Pool, TransactionStatus};

/// Starts PgBouncer, or `None` when the user asked to skip these tests.
fn bouncer(mode: PoolMode, server_pool_size: usize) -> Option<PgBouncer> {
    bouncer_for("scram_user", mode, server_pool_size)
}

/// [`bouncer`] serving `user`: tests that count a role's server connections give the other
/// tests, which run at the same time, another role.
fn bouncer_for(user: &str, mode: PoolMode, server_pool_size: usize) -> Option<PgBouncer> {
    match PgBouncer::start(Cluster::shared(), mode, server_pool_size, &[user]) {
        Ok(b) => Some(b),
        Err(e) if std::env::var("WIREPOOL_SKIP_PGBOUNCER").is_ok_and(|v| v == "1") => {
            eprintln!("skipped (WIREPOOL_SKIP_PGBOUNCER=1): {e}");
            None
        }
        Err(e) => panic!("{e}\n(set WIREPOOL_SKIP_PGBOUNCER=1 to skip the PgBouncer tests)"),
    }
}

/// 32 tasks through a pool of 8 client connections, which PgBouncer multiplexes over 2 server
/// connections. Each task runs transactions split over several round trips (`BEGIN`, then an
/// `INSERT`, then a check that the transaction is still the same, then `COMMIT`): transaction
/// pooling keeps a server connection for a client until its transaction ends, so every
/// transaction sees itself and every row lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_two_server_connections_under_transaction_pooling() {
    let Some(bouncer) = bouncer(PoolMode::Transaction, 2) else {
        return;
    };
    Cluster::shared()
        .psql(
            "\\c test_db\n\
             DROP TABLE IF EXISTS wp_bouncer;\n\
             CREATE TABLE wp_bouncer (task int, i int, xid bigint);\n\
             GRANT ALL ON wp_bouncer TO scram_user;",
        )
        .unwrap();
    let pool = Pool::builder(bouncer.conninfo("scram_user").as_str())
        .name("wp_bouncer")
        .min_size(2)
        .max_size(8)
        .timeout(Duration::from_secs(20))
        .open()
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for task in 0..32 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let mut conn = pool.connection().await.unwrap();
                conn.simple_query("BEGIN").await.unwrap();
                assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
                conn.simple_query(&format!(
                    "INSERT INTO wp_bouncer VALUES ({task}, {i}, txid_current())"
                ))
                .await
                .unwrap();
                let same = conn
                    .simple_query(&format!(
                        "SELECT count(*) FROM wp_bouncer \
                         WHERE task = {task} AND i = {i} AND xid = txid_current()"
                    ))
                    .await
                    .unwrap();
                assert_eq!(same[0].get(0), Some("1"), "the transaction moved");
                conn.simple_query("COMMIT").await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    let mut conn = pool.connection().await.unwrap();
    let rows = conn
        .simple_query("SELECT count(*), count(DISTINCT (task, i)) FROM wp_bouncer")
        .await
        .unwrap();
    assert_eq!((rows[0].get(0), rows[0].get(1)), (Some("800"), Some("800")));
    drop(conn);
    let servers = Cluster::shared()
        .psql(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE usename = 'scram_user' AND datname = 'test_db'",
        )
        .unwrap();
    let servers: usize = servers.parse().unwrap();
    assert!(
        servers <= 2,
        "{servers} server connections behind PgBouncer"
    );
    let stats = pool.stats();
    assert_eq!(stats.returns_bad, 0, "{stats}");
    assert!(stats.pool_size <= 8, "{stats}");
    pool.close().await;
}

/// A session's changes are reset before the next borrower even through PgBouncer (the reset
/// runs on whichever server connection PgBouncer picks, which is where the change lives under
/// session pooling), and a `DISCARD ALL` through PgBouncer leaves the pool's connection usable.
#[tokio::test]
async fn a_changed_session_is_reset_through_session_pooling() {
    let Some(bouncer) = bouncer(PoolMode::Session, 1) else {
        return;
    };
    let pool = Pool::builder(bouncer.conninfo("scram_user").as_str())
        .name("wp_bouncer_session")
        .max_size(1)
        .timeout(Duration::from_secs(10))
        .open()
        .await
        .unwrap();
    let mut conn = pool.connection().await.unwrap();
    conn.simple_query("SET TimeZone TO 'Asia/Tokyo'")
        .await
        .unwrap();
    drop(conn);
    let mut conn = pool.connection().await.unwrap();
    let zone = conn.simple_query("SHOW TimeZone").await.unwrap();
    assert_ne!(zone[0].get(0), Some("Asia/Tokyo"));
    drop(conn);
    assert_eq!(pool.stats().returns_bad, 0);
    pool.close().await;
}

/// The role of the extended-query tests: not `scram_user`, whose server connections
/// `many_tasks_share_two_server_connections_under_transaction_pooling` counts while these run.
const EXTENDED_USER: &str = "md5scram_user";

/// Parameters under transaction pooling: every query is one Parse-to-Sync unit on the unnamed
/// statement, so PgBouncer may give each one to a different server connection and none can
/// meet a statement it does not know ("prepared statement ... does not exist") or one that
/// another client left ("... already exists"). 16 tasks, 8 client connections, 2 servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_on_the_unnamed_statement_under_transaction_pooling() {
    let Some(bouncer) = bouncer_for(EXTENDED_USER, PoolMode::Transaction, 2) else {
        return;
    };
    let pool = Pool::builder(bouncer.conninfo(EXTENDED_USER).as_str())
        .name("wp_bouncer_extended")
        .max_size(8)
        .timeout(Duration::from_secs(20))
        .open()
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for task in 0..16i64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..40i64 {
                let mut conn = pool.connection().await.unwrap();
                let text = format!("task {task} '{i}'; --");
                let row = conn
                    .query_one(
                        "SELECT $1::int8 * 1000 + $2::int8, $3::text, $4::text IS NULL",
                        &[&task, &i, &text, &None::<&str>],
                    )
                    .await
                    .unwrap();
                assert_eq!(row.try_get::<i64, _>(0).unwrap(), task * 1000 + i);
                assert_eq!(row.try_get::<&str, _>(1).unwrap(), text);
                assert!(row.try_get::<bool, _>(2).unwrap());
                // A different statement text each time, and an error in between: the unnamed
                // statement never outlives its Sync.
                let n = conn
                    .execute(
                        &format!("SELECT generate_series(1, $1::int4) -- {i}"),
                        &[&3i32],
                    )
                    .await
                    .unwrap();
                assert_eq!(n, 3);
                if i % 10 == 0 {
                    let err = conn.query("SELECT $1::int4", &[&"x"]).await.unwrap_err();
                    assert_eq!(err.code(), Some("22P02"));
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = pool.stats();
    assert_eq!(stats.returns_bad, 0, "{stats}");
    pool.close().await;
}

/// The statement cache behind PgBouncer. Debian's PgBouncer 1.18 predates
/// `max_prepared_statements` (1.21), which a cache needs under transaction pooling, so this
/// covers session pooling, where a client keeps its server connection: many tasks, cached
/// statements reused, evicted with Close, and emptied by the pool's `DISCARD ALL`, without
/// "already exists" or "does not exist".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statement_cache_under_session_pooling() {
    let Some(bouncer) = bouncer_for(EXTENDED_USER, PoolMode::Session, 4) else {
        return;
    };
    let (major, minor) = bouncer.version();
    eprintln!(
        "PgBouncer {major}.{minor}: the statement cache is checked under session pooling{}",
        if (major, minor) >= (1, 21) {
            " (transaction pooling with max_prepared_statements is not configured here)"
        } else {
            " only (max_prepared_statements needs 1.21)"
        }
    );
    let config: wirepool::Config = bouncer.conninfo(EXTENDED_USER).parse().unwrap();
    let manager = wirepool::pool::PgManager::new(config).statement_cache(3);
    let pool = Pool::builder_for(manager)
        .name("wp_bouncer_cache")
        .max_size(4)
        .timeout(Duration::from_secs(20))
        .open()
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for task in 0..8i32 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..30i32 {
                let mut conn = pool.connection().await.unwrap();
                // Five texts over a cache of three: hits, misses and evictions.
                let sql = format!("SELECT $1::int4 + {}", i % 5);
                let row = conn.query_one(&sql, &[&task]).await.unwrap();
                assert_eq!(row.try_get::<i32, _>(0).unwrap(), task + i % 5);
                assert!(conn.cached_statements() <= 3);
                if i % 7 == 0 {
                    // A changed session: the pool resets it with DISCARD ALL.
                    conn.execute("SET application_name = 'wp_cache'", &[])
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = pool.stats();
    assert_eq!(stats.returns_bad, 0, "{stats}");
    pool.close().await;
}
