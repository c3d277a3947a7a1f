//! The `params` section of `end_to_end`: `SELECT $1::int4`, and a 10-column row selected by the
//! same parameter, 16 tasks through a pool of 5, on 1- and 2-worker runtimes.
//!
//! Contenders, each over TCP to the same cluster, all connections open before timing:
//! - deadpool-postgres with tokio-postgres's `prepare_cached` (its statement cache: a named
//!   statement per connection, then Bind/Execute/Sync per query): the reference;
//! - deadpool-postgres with `query_typed` (tokio-postgres's one-round-trip unnamed statement,
//!   `Type::INT4` given);
//! - wirepool `query` on the unnamed statement (one write: Parse, Bind, Describe, Execute, Sync);
//! - wirepool `query` with `PgManager::statement_cache(16)` (Bind, Execute, Sync once prepared).

use std::sync::Arc;

use tokio_postgres::types::Type;
use tokio_postgres::NoTls;
use wirepool::pool::PgManager;

use super::stats::{fmt_ratio, median, median_ratio, print_table, rotation};
use super::{cluster, runtime, timed_loop, Rate, Settings};

/// The queries: (label, SQL); the first column is always the parameter, 42.
const QUERIES: [(&str, &str); 2] = [
    ("SELECT $1::int4", "SELECT $1::int4"),
    (
        "a 10-column row",
        "SELECT $1::int4 AS id, 'user_' || $1::int4 AS name, $1::int8 * 1000 AS big, \
         true AS active, 3.25::float8 AS score, '2024-01-01 12:00:00'::timestamp AS created, \
         'x'::text AS a, 'yy'::text AS b, NULL::text AS c, 7::int2 AS d",
    ),
];
const TASKS: usize = 16;
const SIZE: usize = 5;
const WORKERS: [usize; 2] = [1, 2];
const NAMES: [&str; 4] = [
    "deadpool-postgres (prepare_cached + query)",
    "deadpool-postgres (query_typed, unnamed)",
    "wirepool query (unnamed)",
    "wirepool query (statement_cache 16)",
];

async fn deadpool(conninfo: &str) -> Result<deadpool_postgres::Pool, String> {
    let config: tokio_postgres::Config = conninfo.parse().map_err(|e| format!("{e}"))?;
    let manager = deadpool_postgres::Manager::new(config, NoTls);
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(SIZE)
        .build()
        .map_err(|e| e.to_string())?;
    let mut held = Vec::with_capacity(SIZE);
    for _ in 0..SIZE {
        held.push(pool.get().await.map_err(|e| e.to_string())?);
    }
    Ok(pool)
}

async fn wirepool(conninfo: &str, cache: usize) -> Result<wirepool::Pool, String> {
    let config: wirepool::Config = conninfo.parse().map_err(|e| format!("{e}"))?;
    let pool = wirepool::Pool::builder_for(PgManager::new(config).statement_cache(cache))
        .min_size(SIZE)
        .max_size(SIZE)
        .open()
        .await
        .map_err(|e| e.to_string())?;
    pool.wait(std::time::Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())?;
    Ok(pool)
}

fn check(value: i32) -> Result<(), String> {
    if value == 42 {
        Ok(())
    } else {
        Err(format!("got {value}"))
    }
}

fn run(
    i: usize,
    sql: &'static str,
    conninfo: &str,
    workers: usize,
    s: &Settings,
) -> Result<Rate, String> {
    let rt = runtime(workers);
    match i {
        0 | 1 => {
            let pool = Arc::new(rt.block_on(deadpool(conninfo))?);
            let typed = i == 1;
            let rate = timed_loop(&rt, TASKS, s, move || {
                let pool = Arc::clone(&pool);
                async move {
                    let client = pool.get().await.map_err(|e| e.to_string())?;
                    let rows = if typed {
                        client.query_typed(sql, &[(&42i32, Type::INT4)]).await
                    } else {
                        let stmt = client
                            .prepare_cached(sql)
                            .await
                            .map_err(|e| e.to_string())?;
                        client.query(&stmt, &[&42i32]).await
                    }
                    .map_err(|e| e.to_string())?;
                    check(rows[0].get::<_, i32>(0))
                }
            });
            rate
        }
        _ => {
            let cache = if i == 3 { 16 } else { 0 };
            let pool = rt.block_on(wirepool(conninfo, cache))?;
            let p = pool.clone();
            let rate = timed_loop(&rt, TASKS, s, move || {
                let p = p.clone();
                async move {
                    let mut conn = p.connection().await.map_err(|e| e.to_string())?;
                    let row = conn
                        .query_one(sql, &[&42i32])
                        .await
                        .map_err(|e| e.to_string())?;
                    check(row.try_get::<i32, _>(0).map_err(|e| e.to_string())?)
                }
            });
            rt.block_on(pool.close());
            rate
        }
    }
}

/// Runs the section and prints its tables (method in docs/performance.md).
pub fn params(cluster: &cluster::Cluster, s: &Settings) {
    for (label, sql) in QUERIES {
        table(cluster, s, label, sql);
    }
}

fn table(cluster: &cluster::Cluster, s: &Settings, label: &str, sql: &'static str) {
    let conninfo = cluster::conninfo(cluster.host(), cluster.port(), "postgres", None);
    let mut rates: Vec<Vec<Vec<Rate>>> = vec![vec![Vec::new(); NAMES.len()]; WORKERS.len()];
    for round in 0..s.rounds {
        for (w, workers) in WORKERS.iter().enumerate() {
            for i in rotation(NAMES.len(), round).filter(|i| s.runs_pool(*i)) {
                match run(i, sql, &conninfo, *workers, s) {
                    Ok(r) => rates[w][i].push(r),
                    Err(e) => eprintln!("{} failed: {e}", NAMES[i]),
                }
            }
        }
        eprintln!("params ({label}) round {}/{} done", round + 1, s.rounds);
    }
    println!(
        "## {label} with one parameter, {TASKS} tasks / pool of {SIZE}: queries/s and client CPU \
         µs per query, ratios to deadpool-postgres's prepare_cached and to query_typed\n\n\
         (127.0.0.1 TCP; median of {} interleaved rounds, {:?} windows)\n",
        s.rounds, s.window
    );
    let header = [
        "runtime",
        "client",
        "q/s",
        "q/s vs prepare_cached",
        "q/s vs query_typed",
        "CPU µs/q",
        "CPU vs prepare_cached",
        "CPU vs query_typed",
    ]
    .map(str::to_owned);
    let cpu_us = |r: &Rate| r.cpu_per_op.as_secs_f64() * 1e6;
    let qps = |r: &Rate| r.per_second;
    let mut rows = Vec::new();
    for (w, workers) in WORKERS.iter().enumerate() {
        for (i, name) in NAMES.iter().enumerate() {
            let runs = &rates[w][i];
            let vs = |reference: usize, f: &dyn Fn(&Rate) -> f64| {
                fmt_ratio(median_ratio(runs, &rates[w][reference], f))
            };
            rows.push(vec![
                format!("{workers} worker{}", if *workers > 1 { "s" } else { "" }),
                name.to_string(),
                format!("{:.0}", median(&runs.iter().map(qps).collect::<Vec<_>>())),
                vs(0, &qps),
                vs(1, &qps),
                format!(
                    "{:.1}",
                    median(&runs.iter().map(cpu_us).collect::<Vec<_>>())
                ),
                vs(0, &cpu_us),
                vs(1, &cpu_us),
            ]);
        }
    }
    print_table(&header, &rows);
}
