//! Transactions and the statement cache against a real PostgreSQL 15: commit, rollback, a
//! commit the server turned into a rollback, an unfinished transaction rolled back by the pool;
//! cached statements prepared once, evicted with Close (seen in `pg_prepared_statements`),
//! prepared again after DDL or a DEALLOCATE outside a transaction and reported inside one, and
//! emptied by the pool's session reset.

mod support;

use support::cluster::Cluster;
use wirepool::pool::PgManager;
use wirepool::{Config, Connection, Pool, TransactionStatus};

fn config() -> Config {
    Cluster::shared()
        .conninfo("postgres", None)
        .parse()
        .unwrap()
}

async fn connect() -> Connection {
    Connection::connect(&config()).await.unwrap()
}

async fn cached(capacity: usize) -> Connection {
    let mut conn = connect().await;
    conn.set_statement_cache_capacity(capacity);
    conn
}

/// A unique table name per test, so tests sharing the cluster never meet.
fn table(test: &str) -> String {
    format!("{test}_{}", std::process::id())
}

/// The server's view of this session's prepared statements, sorted by name.
async fn prepared(conn: &mut Connection) -> Vec<String> {
    conn.simple_query("SELECT name FROM pg_prepared_statements ORDER BY name")
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0).unwrap().to_owned())
        .collect()
}

async fn count(conn: &mut Connection, table: &str) -> i64 {
    let row = conn
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap();
    row.try_get(0).unwrap()
}

#[tokio::test]
async fn commit_keeps_and_rollback_discards() {
    let t = table("tx_basic");
    let mut conn = connect().await;
    conn.simple_query(&format!("CREATE TABLE {t} (v int)"))
        .await
        .unwrap();
    let mut tx = conn.transaction().await.unwrap();
    assert_eq!(tx.transaction_status(), TransactionStatus::InTransaction);
    tx.execute(&format!("INSERT INTO {t} VALUES ($1)"), &[&1i32])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);

    let mut tx = conn.transaction().await.unwrap();
    tx.execute(&format!("INSERT INTO {t} VALUES ($1)"), &[&2i32])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);

    let mut other = connect().await;
    assert_eq!(count(&mut other, &t).await, 1);
    other
        .simple_query(&format!("DROP TABLE {t}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn commit_of_a_failed_transaction_is_an_error_and_nothing_is_saved() {
    let t = table("tx_failed");
    let mut conn = connect().await;
    conn.simple_query(&format!("CREATE TEMP TABLE {t} (v int)"))
        .await
        .unwrap();
    let mut tx = conn.transaction().await.unwrap();
    tx.execute(&format!("INSERT INTO {t} VALUES ($1)"), &[&1i32])
        .await
        .unwrap();
    let err = tx.query("SELECT 1/0", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some("22012"));
    assert_eq!(tx.transaction_status(), TransactionStatus::Failed);
    let err = tx.commit().await.unwrap_err();
    assert!(err.is_transaction(), "{err:?}");
    assert!(err.to_string().contains("ROLLBACK"), "{err}");
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    assert_eq!(count(&mut conn, &t).await, 0, "the insert was rolled back");
}

#[tokio::test]
async fn a_second_transaction_on_an_open_one_is_refused() {
    let mut conn = connect().await;
    let tx = conn.transaction().await.unwrap();
    drop(tx); // unfinished: no I/O, the transaction stays open
    assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
    let err = conn.transaction().await.unwrap_err();
    assert!(err.is_transaction(), "{err:?}");
    conn.simple_query("ROLLBACK").await.unwrap();
    conn.transaction().await.unwrap().commit().await.unwrap();
}

#[tokio::test]
async fn the_pool_rolls_back_a_transaction_dropped_unfinished() {
    let t = table("tx_pool");
    let mut setup = connect().await;
    setup
        .simple_query(&format!("CREATE TABLE {t} (v int)"))
        .await
        .unwrap();
    let pool = Pool::builder(config()).max_size(1).open().await.unwrap();
    let mut guard = pool.connection().await.unwrap();
    let mut tx = guard.transaction().await.unwrap();
    tx.execute(&format!("INSERT INTO {t} VALUES ($1)"), &[&1i32])
        .await
        .unwrap();
    drop(tx);
    drop(guard);
    let mut guard = pool.connection().await.unwrap();
    assert_eq!(guard.transaction_status(), TransactionStatus::Idle);
    assert_eq!(count(&mut guard, &t).await, 0);
    drop(guard);
    pool.close().await;
    setup
        .simple_query(&format!("DROP TABLE {t}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_cached_statement_is_prepared_once_and_reused() {
    let mut conn = cached(10).await;
    for i in 0..3i32 {
        let row = conn
            .query_one("SELECT $1::int4 * 2 AS twice", &[&i])
            .await
            .unwrap();
        assert_eq!(row.try_get::<i32, _>("twice").unwrap(), i * 2);
    }
    assert_eq!(conn.cached_statements(), 1);
    assert_eq!(prepared(&mut conn).await, ["wirepool_0"]);
    // The statement knows its parameter count: a wrong one is refused locally.
    let err = conn
        .query("SELECT $1::int4 * 2 AS twice", &[&1i32, &2i32])
        .await
        .unwrap_err();
    assert!(err.is_invalid_input(), "{err:?}");
    // A server error on a cached statement leaves it and the connection usable.
    let err = conn
        .query("SELECT $1::int4 * 2 AS twice", &[&"x"])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("22P02"));
    assert_eq!(
        conn.execute("SELECT $1::int4 * 2 AS twice", &[&5i32])
            .await
            .unwrap(),
        1
    );
    assert_eq!(prepared(&mut conn).await, ["wirepool_0"]);
}

#[tokio::test]
async fn eviction_sends_close() {
    let mut conn = cached(2).await;
    for sql in ["SELECT 1", "SELECT 2"] {
        conn.query(sql, &[]).await.unwrap();
    }
    assert_eq!(prepared(&mut conn).await, ["wirepool_0", "wirepool_1"]);
    conn.query("SELECT 1", &[]).await.unwrap(); // "SELECT 2" is now the least recently used
    conn.query("SELECT 3", &[]).await.unwrap();
    assert_eq!(prepared(&mut conn).await, ["wirepool_0", "wirepool_2"]);
    conn.set_statement_cache_capacity(1);
    conn.query("SELECT 3", &[]).await.unwrap();
    assert_eq!(prepared(&mut conn).await, ["wirepool_2"]);
    assert_eq!(conn.cached_statements(), 1);
}

#[tokio::test]
async fn ddl_under_a_cached_statement_is_retried_outside_a_transaction_and_reported_inside() {
    let t = table("cache_ddl");
    let mut conn = cached(10).await;
    conn.simple_query(&format!(
        "CREATE TEMP TABLE {t} (a int); INSERT INTO {t} VALUES (1)"
    ))
    .await
    .unwrap();
    let select = format!("SELECT * FROM {t} WHERE a = $1");
    assert_eq!(conn.query_one(&select, &[&1i32]).await.unwrap().len(), 1);
    conn.simple_query(&format!("ALTER TABLE {t} ADD COLUMN b int"))
        .await
        .unwrap();
    let row = conn.query_one(&select, &[&1i32]).await.unwrap();
    assert_eq!(row.len(), 2, "prepared again: the new column is there");
    assert_eq!(row.columns()[1].name(), "b");
    assert_eq!(
        prepared(&mut conn).await.len(),
        1,
        "the stale one was closed"
    );

    conn.simple_query(&format!("ALTER TABLE {t} ADD COLUMN c int"))
        .await
        .unwrap();
    let mut tx = conn.transaction().await.unwrap();
    let err = tx.query_one(&select, &[&1i32]).await.unwrap_err();
    assert_eq!(err.code(), Some("0A000"), "{err:?}");
    assert_eq!(tx.transaction_status(), TransactionStatus::Failed);
    tx.rollback().await.unwrap();
    assert_eq!(conn.query_one(&select, &[&1i32]).await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_deallocated_statement_is_prepared_again_and_discard_or_deallocate_all_empties_the_cache()
{
    let mut conn = cached(10).await;
    conn.query("SELECT $1::text", &[&"a"]).await.unwrap();
    conn.simple_query("DEALLOCATE wirepool_0").await.unwrap();
    let row = conn.query_one("SELECT $1::text", &[&"b"]).await.unwrap();
    assert_eq!(row.get(0), Some("b"), "26000, then prepared again");
    assert_eq!(prepared(&mut conn).await, ["wirepool_1"]);

    conn.simple_query("DISCARD ALL").await.unwrap();
    assert_eq!(conn.cached_statements(), 0);
    let row = conn.query_one("SELECT $1::text", &[&"c"]).await.unwrap();
    assert_eq!(row.get(0), Some("c"));
    assert_eq!(prepared(&mut conn).await, ["wirepool_2"]);

    conn.simple_query("DEALLOCATE ALL").await.unwrap();
    assert_eq!(conn.cached_statements(), 0);
    let row = conn.query_one("SELECT $1::text", &[&"d"]).await.unwrap();
    assert_eq!(row.get(0), Some("d"));
    assert_eq!(prepared(&mut conn).await, ["wirepool_3"]);
}

#[tokio::test]
async fn the_pools_session_reset_empties_the_cache() {
    let manager = PgManager::new(config()).statement_cache(8);
    let pool = Pool::builder_for(manager).max_size(1).open().await.unwrap();
    let mut guard = pool.connection().await.unwrap();
    assert_eq!(guard.statement_cache_capacity(), 8);
    guard.query("SELECT $1::int4", &[&1i32]).await.unwrap();
    assert_eq!(guard.cached_statements(), 1);
    guard
        .execute("SET application_name = 'dirty'", &[])
        .await
        .unwrap();
    drop(guard); // changed session: reset with DISCARD ALL before the next checkout
    let mut guard = pool.connection().await.unwrap();
    assert_eq!(guard.cached_statements(), 0);
    assert!(prepared(&mut guard).await.is_empty());
    let row = guard.query_one("SELECT $1::int4", &[&2i32]).await.unwrap();
    assert_eq!(row.try_get::<i32, _>(0).unwrap(), 2);
    drop(guard);
    pool.close().await;
}

/// Every outcome of the unnamed path, through the cache too (a miss, then a hit): the same
/// rows, the same server errors, the same local refusals, and the connection usable after each.
#[tokio::test]
async fn the_cached_path_answers_as_the_unnamed_one() {
    let mut plain = connect().await;
    let mut cache = cached(4).await;
    let long = "é'\\".repeat(100_000);
    let bytes: &[u8] = b"\0\xff";
    let cases: Vec<(&str, Vec<&dyn wirepool::conn::ToParam>)> = vec![
        (
            "SELECT $1::text, $2::int8, $3::bool",
            vec![&long, &-7i64, &None::<bool>],
        ),
        ("SELECT $1::bytea", vec![&bytes]),
        ("SELECT 10 / (3 - x) FROM generate_series(1, 5) x", vec![]),
        ("SELECT $1::int4", vec![&"x"]),
        ("SELECT $1::text", vec![&"a\0b"]),
        ("SELECT $1::int4, $2::int4", vec![&1i32]),
        ("SELEC 1", vec![]),
        ("SELECT generate_series(1, $1::int4)", vec![&3i32]),
        ("", vec![]),
    ];
    for (sql, params) in &cases {
        let want = outcome(plain.query(sql, params).await);
        for pass in ["miss", "hit"] {
            let got = outcome(cache.query(sql, params).await);
            assert_eq!(got, want, "{sql} ({pass})");
            assert!(!cache.is_broken() && !cache.is_busy(), "{sql} ({pass})");
        }
    }
    assert!(cache.cached_statements() <= 4);
}

/// Rows as text, or the error's kind and code.
fn outcome(r: wirepool::Result<Vec<wirepool::Row>>) -> Result<Vec<Vec<Option<String>>>, String> {
    match r {
        Ok(rows) => Ok(rows
            .iter()
            .map(|r| (0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            .collect()),
        Err(e) => Err(format!(
            "db {} invalid {} code {:?}",
            e.is_db(),
            e.is_invalid_input(),
            e.code()
        )),
    }
}

#[tokio::test]
async fn the_config_turns_the_cache_on() {
    let mut with_cache = config();
    with_cache.statement_cache(2);
    let mut conn = Connection::connect(&with_cache).await.unwrap();
    assert_eq!(conn.statement_cache_capacity(), 2);
    conn.query("SELECT $1::int4", &[&1i32]).await.unwrap();
    assert_eq!(prepared(&mut conn).await, ["wirepool_0"]);
    assert_eq!(
        with_cache.to_string(),
        config().to_string(),
        "not a conninfo keyword"
    );
}

/// `PoolBuilder::statement_cache` turns the cache on for every connection the pool opens: a
/// repeated query is prepared once on the pooled connection.
#[tokio::test]
async fn the_pool_builder_turns_the_cache_on() {
    let pool = Pool::builder(config())
        .max_size(1)
        .statement_cache(8)
        .open()
        .await
        .unwrap();
    let mut conn = pool.connection().await.unwrap();
    for i in 0..3 {
        let row = conn.query_one("SELECT $1::int4 + 1", &[&i]).await.unwrap();
        assert_eq!(row.try_get::<i32, _>(0).unwrap(), i + 1);
    }
    assert_eq!(prepared(&mut conn).await.len(), 1);
    drop(conn);
    pool.close().await;
}
