//! Parameters over the extended query protocol against a real PostgreSQL 15: hostile values
//! round trip unchanged, NULLs, the 65,535-parameter limit, every typed getter and its parse
//! error, server errors mid-statement and at Bind leaving the connection usable, local
//! refusals before anything is sent, and the same calls through the pool's guard.

mod support;

use std::time::Duration;

use support::cluster::Cluster;
use wirepool::conn::ToParam;
use wirepool::{Config, Connection, Pool, TransactionStatus};

async fn connect() -> Connection {
    let config: Config = Cluster::shared()
        .conninfo("postgres", None)
        .parse()
        .unwrap();
    Connection::connect(&config).await.unwrap()
}

/// The connection answers a fresh query correctly (it is idle and in sync).
async fn assert_usable(conn: &mut Connection) {
    assert!(!conn.is_broken() && !conn.is_busy());
    let row = conn
        .query_one("SELECT $1::int4 + 1", &[&41i32])
        .await
        .unwrap();
    assert_eq!(row.try_get::<i32, _>(0).unwrap(), 42);
}

#[tokio::test]
async fn hostile_strings_round_trip_through_insert_and_select() {
    let mut conn = connect().await;
    conn.simple_query("CREATE TEMP TABLE hostile (id int, v text)")
        .await
        .unwrap();
    let megabyte = "x'\\".repeat(350_000);
    let values: Vec<String> = vec![
        "it's".into(),
        "''".into(),
        "\\".into(),
        "\\'; SELECT 1; --".into(),
        "'; DROP TABLE hostile; --".into(),
        "$1".into(),
        "$$ $1 $$".into(),
        "\"quoted\"".into(),
        "naïve café Ωμέγα 日本語 🐘".into(),
        "line\nbreak\ttab\r".into(),
        String::new(),
        megabyte,
    ];
    for (id, v) in values.iter().enumerate() {
        let id = i32::try_from(id).unwrap();
        let n = conn
            .execute("INSERT INTO hostile VALUES ($1, $2)", &[&id, v])
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    let rows = conn
        .query("SELECT id, v FROM hostile ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), values.len(), "the table survived");
    for (row, want) in rows.iter().zip(&values) {
        assert_eq!(row.try_get::<&str, _>("v").unwrap(), want);
    }
    // And as a parameter compared server-side: equal as text, not as SQL.
    for v in &values {
        let row = conn
            .query_one("SELECT $1::text = $2::text, length($1::text)", &[v, v])
            .await
            .unwrap();
        assert!(row.try_get::<bool, _>(0).unwrap());
        assert_eq!(
            row.try_get::<i64, _>(1).unwrap(),
            i64::try_from(v.chars().count()).unwrap()
        );
    }
    assert_usable(&mut conn).await;
}

#[tokio::test]
async fn a_nul_in_text_is_a_local_error_and_bytes_carry_it_as_bytea() {
    let mut conn = connect().await;
    let err = conn.query("SELECT $1::text", &[&"a\0b"]).await.unwrap_err();
    assert!(err.is_invalid_input(), "{err:?}");
    assert!(
        err.to_string().contains("parameter $1 contains a NUL"),
        "{err}"
    );
    assert_usable(&mut conn).await;

    let bytes: &[u8] = b"a\0b\xff\\x";
    let row = conn
        .query_one("SELECT $1::bytea, length($1::bytea)", &[&bytes])
        .await
        .unwrap();
    assert_eq!(row.try_get::<Vec<u8>, _>(0).unwrap(), bytes);
    assert_eq!(row.try_get::<i32, _>(1).unwrap(), 6);
}

#[tokio::test]
async fn nulls_in_and_out() {
    let mut conn = connect().await;
    let none: Option<i64> = None;
    let some: Option<&str> = Some("x");
    let row = conn
        .query_one(
            "SELECT $1::int8, $2::text, $1::int8 IS NULL, NULL::text AS n",
            &[&none, &some],
        )
        .await
        .unwrap();
    assert_eq!(row.try_get::<Option<i64>, _>(0).unwrap(), None);
    assert_eq!(
        row.try_get::<Option<String>, _>(1).unwrap().as_deref(),
        Some("x")
    );
    assert!(row.try_get::<bool, _>(2).unwrap());
    assert_eq!(row.get(3), None);
    let err = row.try_get::<String, _>("n").unwrap_err();
    assert!(err.is_column(), "{err:?}");
    assert!(err.to_string().contains("cannot read NULL"), "{err}");
}

#[tokio::test]
async fn sixty_five_thousand_five_hundred_thirty_five_parameters_and_not_one_more() {
    let mut conn = connect().await;
    let n = 65_535usize;
    let placeholders: Vec<String> = (1..=n).map(|i| format!("${i}::int8")).collect();
    let sql = format!(
        "SELECT sum(x), count(*) FROM unnest(ARRAY[{}]) x",
        placeholders.join(",")
    );
    let values: Vec<i64> = (1..=i64::try_from(n).unwrap()).collect();
    let params: Vec<&dyn ToParam> = values.iter().map(|v| v as &dyn ToParam).collect();
    let row = conn.query_one(&sql, &params).await.unwrap();
    assert_eq!(row.try_get::<i64, _>(0).unwrap(), 65_535 * 65_536 / 2);
    assert_eq!(row.try_get::<i64, _>(1).unwrap(), 65_535);

    let one_more: Vec<&dyn ToParam> = vec![&1i64; n + 1];
    let sql = format!("{sql} WHERE $65536::int8 > 0");
    let err = conn.query(&sql, &one_more).await.unwrap_err();
    assert!(err.is_invalid_input(), "{err:?}");
    assert!(err.to_string().contains("65536 parameters exceed"), "{err}");
    assert_usable(&mut conn).await;
}

#[tokio::test]
async fn every_getter_reads_its_type_and_names_the_column_when_it_cannot() {
    let mut conn = connect().await;
    let row = conn
        .query_one(
            "SELECT 7::int2 AS i2, -8::int4 AS i4, 9000000000::int8 AS i8, 1.5::float4 AS f4,
                    'NaN'::float8 AS f8, '-Infinity'::float8 AS ninf, true AS b, 'txt' AS t,
                    '2024-02-29 12:34:56.789'::timestamp AS ts, '\\x00ff'::bytea AS by,
                    12.50::numeric AS num, 4000000000::oid AS o",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.try_get::<i16, _>("i2").unwrap(), 7);
    assert_eq!(row.try_get::<i32, _>("i4").unwrap(), -8);
    assert_eq!(row.try_get::<i64, _>("i8").unwrap(), 9_000_000_000);
    assert_eq!(row.try_get::<f32, _>("f4").unwrap(), 1.5);
    assert!(row.try_get::<f64, _>("f8").unwrap().is_nan());
    assert_eq!(row.try_get::<f64, _>("ninf").unwrap(), f64::NEG_INFINITY);
    assert!(row.try_get::<bool, _>("b").unwrap());
    assert_eq!(row.try_get::<String, _>("t").unwrap(), "txt");
    assert_eq!(
        row.try_get::<&str, _>("ts").unwrap(),
        "2024-02-29 12:34:56.789"
    );
    assert_eq!(row.try_get::<Vec<u8>, _>("by").unwrap(), [0, 0xff]);
    assert_eq!(row.try_get::<String, _>("num").unwrap(), "12.50");
    assert_eq!(row.try_get::<u32, _>("o").unwrap(), 4_000_000_000);
    assert_eq!(row.columns()[3].name(), "f4");
    assert_eq!(row.columns()[3].type_oid(), 700);

    // Each getter's parse error says which column and what text.
    let cases: Vec<(wirepool::Error, &str)> = vec![
        (row.try_get::<i16, _>("i8").unwrap_err(), "9000000000"),
        (row.try_get::<i32, _>("t").unwrap_err(), "\"txt\""),
        (row.try_get::<i64, _>("f4").unwrap_err(), "\"1.5\""),
        (row.try_get::<f64, _>("ts").unwrap_err(), "2024-02-29"),
        (row.try_get::<bool, _>("i4").unwrap_err(), "\"-8\""),
        (row.try_get::<u32, _>("i4").unwrap_err(), "\"-8\""),
        (row.try_get::<i8, _>("by").unwrap_err(), "(\"by\")"),
    ];
    for (err, text) in cases {
        assert!(err.is_column(), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(text), "{msg}");
        assert!(msg.contains("cannot read"), "{msg}");
    }
    let err = row.try_get::<i16, _>("i8").unwrap_err();
    assert_eq!(
        err.to_string(),
        "column 2 (\"i8\"): cannot read \"9000000000\" as i16"
    );
    assert!(std::error::Error::source(&err).is_some(), "the parse error");
    let missing = row.try_get::<i32, _>("nope").unwrap_err();
    assert!(
        missing.is_column() && missing.to_string().contains("nope"),
        "{missing}"
    );
    let past = row.try_get::<i32, _>(99).unwrap_err();
    assert!(past.is_column(), "{past}");
    // A simple query's rows read the same way by position; they carry no names.
    let simple = conn.simple_query("SELECT 5 AS five").await.unwrap();
    assert_eq!(simple[0].try_get::<i32, _>(0).unwrap(), 5);
    let unnamed = simple[0].try_get::<i32, _>("five").unwrap_err();
    assert!(unnamed.to_string().contains("no column names"), "{unnamed}");
}

#[tokio::test]
async fn server_errors_mid_statement_and_at_bind_leave_the_connection_usable() {
    let mut conn = connect().await;
    // Rows were already sent when row 3 divides by zero.
    let err = conn
        .query("SELECT 10 / (3 - x) FROM generate_series(1, 5) x", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("22012"), "{err:?}");
    assert_usable(&mut conn).await;

    // Bind fails: the text is not an int4.
    let err = conn
        .query("SELECT $1::int4", &[&"forty-two"])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("22P02"), "{err:?}");
    assert_usable(&mut conn).await;

    // Parse fails: a syntax error, and two statements in one.
    let err = conn.query("SELEC 1", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some("42601"), "{err:?}");
    let err = conn.query("SELECT 1; SELECT 2", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some("42601"), "{err:?}");
    assert_usable(&mut conn).await;

    // A type the server cannot infer.
    let err = conn
        .query("SELECT pg_typeof($1)", &[&1i32])
        .await
        .unwrap_err();
    assert!(err.is_db(), "{err:?}");
    assert_usable(&mut conn).await;
    assert!(!conn.server_going_away());
}

#[tokio::test]
async fn a_wrong_parameter_count_is_refused_before_sending() {
    let mut conn = connect().await;
    for (sql, params) in [
        ("SELECT $1::int4, $2::int4", vec![&1i32 as &dyn ToParam]),
        ("SELECT 1", vec![&1i32 as &dyn ToParam]),
        ("SELECT $1::int4", vec![&1i32 as &dyn ToParam, &2i32]),
    ] {
        let err = conn.query(sql, &params).await.unwrap_err();
        assert!(err.is_invalid_input(), "{sql}: {err:?}");
        assert_eq!(err.code(), None, "{sql}: refused locally");
    }
    let err = conn
        .query("SELECT $1::int4, $2::int4", &[&1i32])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input: the query uses $1 to $2, but 1 parameter were given"
    );
    // Placeholders in literals, identifiers and comments are not parameters.
    let row = conn
        .query_one(
            "SELECT '$2' AS \"$3\", $$ $4 $$ /* $5 */, $1::int4 -- $6",
            &[&5i32],
        )
        .await
        .unwrap();
    assert_eq!(row.get(0), Some("$2"));
    assert_eq!(row.try_get::<i32, _>(2).unwrap(), 5);
    assert!(!conn.server_going_away());
    assert_usable(&mut conn).await;
}

#[tokio::test]
async fn execute_counts_rows_and_one_opt_check_them() {
    let mut conn = connect().await;
    conn.simple_query("CREATE TEMP TABLE counted (v int)")
        .await
        .unwrap();
    let created = conn.execute("CREATE TEMP TABLE other (v int)", &[]).await;
    assert_eq!(created.unwrap(), 0);
    let n = conn
        .execute(
            "INSERT INTO counted SELECT generate_series(1, $1::int4)",
            &[&3i32],
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    let n = conn
        .execute("UPDATE counted SET v = v + 1 WHERE v > $1", &[&1i32])
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(conn.execute("SELECT * FROM counted", &[]).await.unwrap(), 3);
    assert_eq!(conn.execute("DELETE FROM counted", &[]).await.unwrap(), 3);

    assert!(conn.query("", &[]).await.unwrap().is_empty());
    let none = conn
        .query_opt("SELECT 1 WHERE $1::bool", &[&false])
        .await
        .unwrap();
    assert!(none.is_none());
    let err = conn
        .query_one("SELECT 1 WHERE $1::bool", &[&false])
        .await
        .unwrap_err();
    assert!(err.is_row_count(), "{err:?}");
    let err = conn
        .query_opt("SELECT generate_series(1, 2)", &[])
        .await
        .unwrap_err();
    assert!(err.is_row_count(), "{err:?}");
    assert_usable(&mut conn).await;
}

#[tokio::test]
async fn transaction_status_follows_ready_for_query() {
    let mut conn = connect().await;
    conn.execute("BEGIN", &[]).await.unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
    let err = conn.query("SELECT 1/0", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some("22012"));
    assert_eq!(conn.transaction_status(), TransactionStatus::Failed);
    conn.execute("ROLLBACK", &[]).await.unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
}

#[tokio::test]
async fn a_dropped_query_leaves_the_connection_busy_and_the_next_call_drains_it() {
    let mut conn = connect().await;
    let dropped = tokio::time::timeout(
        Duration::from_millis(50),
        conn.query("SELECT pg_sleep($1::float8)", &[&0.3f64]),
    )
    .await;
    assert!(dropped.is_err(), "the query outlived the timeout");
    assert!(conn.is_busy() && !conn.is_broken());
    let row = conn.query_one("SELECT $1::int4", &[&7i32]).await.unwrap();
    assert_eq!(row.try_get::<i32, _>(0).unwrap(), 7);
    assert!(!conn.is_busy() && !conn.is_broken());
}

#[tokio::test]
async fn through_the_pool_guard() {
    let pool = Pool::builder(Cluster::shared().conninfo("postgres", None).as_str())
        .max_size(2)
        .open()
        .await
        .unwrap();
    let mut conn = pool.connection().await.unwrap();
    let row = conn
        .query_one("SELECT $1::text || $2::text", &[&"pool", &"ed"])
        .await
        .unwrap();
    assert_eq!(row.try_get::<&str, _>(0).unwrap(), "pooled");
    let err = conn.query("SELECT $1::int4", &[&"x"]).await.unwrap_err();
    assert_eq!(err.code(), Some("22P02"));
    drop(conn);
    let mut conn = pool.connection().await.unwrap();
    assert_usable(&mut conn).await;
    drop(conn);
    let stats = pool.stats();
    assert_eq!(
        stats.returns_bad, 0,
        "returned idle after the error: {stats:?}"
    );
    pool.close().await;
}

#[tokio::test]
async fn a_session_change_through_the_extended_path_is_seen() {
    let mut conn = connect().await;
    conn.query("SELECT $1::int4", &[&1i32]).await.unwrap();
    assert!(!conn.session_changed());
    conn.execute("SET application_name = 'x'", &[])
        .await
        .unwrap();
    assert!(conn.session_changed(), "the SET tag");
    conn.mark_session_clean();
    conn.query("SELECT set_config('DateStyle', 'German', false)", &[])
        .await
        .unwrap();
    assert!(conn.session_changed(), "the reported parameter");
}

#[tokio::test]
async fn copy_through_the_extended_path_is_refused_and_the_connection_stays_usable() {
    let mut conn = connect().await;
    conn.simple_query("CREATE TEMP TABLE copied (v int)")
        .await
        .unwrap();
    // COPY FROM STDIN: the server ignores the Sync sent with the query while it waits for
    // data, so the refusal must bring its own Sync, or this would hang.
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        conn.query("COPY copied FROM STDIN", &[]),
    )
    .await
    .expect("no hang")
    .unwrap_err();
    assert!(err.is_unsupported(), "{err:?}");
    assert_usable(&mut conn).await;
    let err = conn
        .execute("COPY (SELECT generate_series(1, 3)) TO STDOUT", &[])
        .await
        .unwrap_err();
    assert!(err.is_unsupported(), "{err:?}");
    assert_usable(&mut conn).await;
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
}
