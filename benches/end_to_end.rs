//! `cargo bench --bench end_to_end` (or `scripts/bench/end_to_end.sh`, which also installs the
//! Python anchor): wirepool against deadpool-postgres and bb8-postgres through a throwaway
//! PostgreSQL cluster, with pgbench as the ceiling. Skips with a message if PostgreSQL's
//! binaries are missing.
//!
//! Sections (each one's method is in docs/performance.md):
//! - `select1`: `SELECT 1` (simple protocol) from T tasks through a pool of N, on 1- and
//!   2-worker runtimes: queries/s and client CPU time per query; pgbench at the same T.
//! - `params`: `SELECT $1::int4` with a parameter, 16 tasks / pool of 5, 1 and 2 workers:
//!   wirepool unnamed and cached vs deadpool-postgres's `prepare_cached` and `query_typed`.
//! - `connect`: connections/s opened and closed (trust, md5, SCRAM), 1 and 8 at a time.
//! - `memory`: RSS of a process holding 200 idle connections, each pool in its own child.
//! - `python`: psycopg_pool, if `WIREPOOL_BENCH_PYTHON` names a Python that has it.
//!
//! Knobs: `WIREPOOL_BENCH_ROUNDS` (3), `WIREPOOL_BENCH_MS` (window per run, 1500),
//! `WIREPOOL_BENCH_PGBENCH_SECS` (10), `WIREPOOL_BENCH_ONLY=select1,connect,...`,
//! `WIREPOOL_BENCH_POOLS=1` (select1 runs only these contender indices: for profiling),
//! `WIREPOOL_BENCH_QUICK=1` (one short round of everything: a smoke run),
//! `WIREPOOL_BENCH_SQL` (select1 runs this query instead of `SELECT 1`, e.g. a wider row),
//! `WIREPOOL_BENCH_TRANSPORT=unix` (select1 and its pgbench over the cluster's Unix socket
//! instead of 127.0.0.1 TCP, the and the lesson's transport: supplementary, it changes
//! every client's kernel share), `WIREPOOL_BENCH_CHARTS=docs/img` (also draw select1's
//! `end_to_end.svg` there).

#[path = "support/bare.rs"]
mod bare;
#[path = "support/charts.rs"]
mod charts;
#[path = "../tests/support/cluster.rs"]
mod cluster;
#[path = "support/e2e_charts.rs"]
mod e2e_charts;
#[path = "support/e2e_more.rs"]
mod e2e_more;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/params.rs"]
mod params;
#[path = "support/pg_clients.rs"]
mod pg_clients;
#[path = "support/procfs.rs"]
mod procfs;
#[path = "support/raw_wire.rs"]
mod raw_wire;
#[path = "support/stats.rs"]
mod stats;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pg_clients::{Bb8Postgres, DeadpoolPostgres, PgContender, Wirepool, WirepoolNoPeek};
use raw_wire::RawWire;
use stats::{fmt_ratio, median, median_ratio, print_table, rotation};

/// (tasks, pool size): the two shapes of the issue.
const SHAPES: [(usize, usize); 2] = [(16, 5), (64, 16)];
const WORKERS: [usize; 2] = [1, 2];
const NAMES: [&str; 6] = [
    DeadpoolPostgres::NAME,
    Wirepool::NAME,
    Bb8Postgres::<false>::NAME,
    Bb8Postgres::<true>::NAME,
    WirepoolNoPeek::NAME,
    RawWire::NAME,
];
/// The ratio's denominator: deadpool-postgres.
const REFERENCE: usize = 0;

pub(crate) use harness::Rate;

/// Settings shared by every section.
pub(crate) struct Settings {
    pub(crate) rounds: usize,
    pub(crate) window: Duration,
    pub(crate) pgbench_secs: u64,
    only: Option<String>,
    /// select1 over the Unix socket (`WIREPOOL_BENCH_TRANSPORT=unix`) instead of TCP.
    unix: bool,
}

impl Settings {
    fn from_env() -> Settings {
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
        let (rounds, window, quick) = harness::rounds_and_window();
        Settings {
            rounds,
            window,
            pgbench_secs: env("WIREPOOL_BENCH_PGBENCH_SECS").unwrap_or(if quick { 2 } else { 10 }),
            only: std::env::var("WIREPOOL_BENCH_ONLY").ok(),
            unix: std::env::var("WIREPOOL_BENCH_TRANSPORT").is_ok_and(|v| v == "unix"),
        }
    }

    /// Whether a section runs (all do unless `WIREPOOL_BENCH_ONLY` lists some).
    pub(crate) fn wants(&self, section: &str) -> bool {
        self.only
            .as_deref()
            .map_or(true, |o| o.split(',').any(|s| s.trim() == section))
    }

    /// Whether select1 runs contender `i` (`WIREPOOL_BENCH_POOLS=0,1` limits it, for profiling).
    fn runs_pool(&self, i: usize) -> bool {
        std::env::var("WIREPOOL_BENCH_POOLS")
            .map_or(true, |p| p.split(',').any(|x| x.trim().parse() == Ok(i)))
    }
}

pub(crate) fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `tasks` copies of `op` in a loop on `rt`: a warm-up, then the timed window, counting
/// completed operations and this process's CPU time over the window.
pub(crate) fn timed_loop<F, Fut>(
    rt: &tokio::runtime::Runtime,
    tasks: usize,
    s: &Settings,
    op: F,
) -> Result<Rate, String>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    harness::timed_tasks(rt, tasks, s.window, op)
}

/// One select1 configuration: runtime workers, tasks, pool size.
#[derive(Clone, Copy)]
struct Shape {
    workers: usize,
    tasks: usize,
    size: usize,
}

fn select1_run<C: PgContender>(conninfo: &str, shape: Shape, s: &Settings) -> Result<Rate, String> {
    let rt = runtime(shape.workers);
    let pool = Arc::new(rt.block_on(C::build(conninfo, shape.size))?);
    let p = Arc::clone(&pool);
    let rate = timed_loop(&rt, shape.tasks, s, move || {
        let p = Arc::clone(&p);
        async move { p.select1().await }
    });
    if let Ok(pool) = Arc::try_unwrap(pool) {
        rt.block_on(pool.shutdown());
    }
    rate
}

fn select1_index(i: usize, conninfo: &str, shape: Shape, s: &Settings) -> Result<Rate, String> {
    match i {
        0 => select1_run::<DeadpoolPostgres>(conninfo, shape, s),
        1 => select1_run::<Wirepool>(conninfo, shape, s),
        2 => select1_run::<Bb8Postgres<false>>(conninfo, shape, s),
        3 => select1_run::<Bb8Postgres<true>>(conninfo, shape, s),
        4 => select1_run::<WirepoolNoPeek>(conninfo, shape, s),
        _ => select1_run::<RawWire>(conninfo, shape, s),
    }
}

fn fmt_rate(r: f64) -> String {
    format!("{:.0}", r)
}

fn fmt_us(d: f64) -> String {
    format!("{d:.1}")
}

fn select1(cluster: &cluster::Cluster, s: &Settings) {
    let (host, transport) = if s.unix {
        (cluster.socket_dir().display().to_string(), "Unix socket")
    } else {
        (cluster.host().to_owned(), "127.0.0.1 TCP")
    };
    let conninfo = cluster::conninfo(&host, cluster.port(), "postgres", None);
    // rates[(workers, shape, contender)] = one Rate per round.
    let mut rates: HashMap<(usize, usize, usize), Vec<Rate>> = HashMap::new();
    for round in 0..s.rounds {
        for workers in WORKERS {
            for (si, &(tasks, size)) in SHAPES.iter().enumerate() {
                for i in rotation(NAMES.len(), round).filter(|i| s.runs_pool(*i)) {
                    match select1_index(
                        i,
                        &conninfo,
                        Shape {
                            workers,
                            tasks,
                            size,
                        },
                        s,
                    ) {
                        Ok(r) => rates.entry((workers, si, i)).or_default().push(r),
                        Err(e) => eprintln!("{} failed: {e}", NAMES[i]),
                    }
                }
            }
        }
        eprintln!("select1 round {}/{} done", round + 1, s.rounds);
    }
    let pgbench: Vec<Option<Rate>> = SHAPES
        .iter()
        .map(|&(tasks, _)| {
            e2e_more::pgbench(cluster, &host, tasks, s)
                .map_err(|e| eprintln!("pgbench: {e}"))
                .ok()
        })
        .collect();
    println!(
        "## SELECT 1 through the pool (simple protocol): queries/s, ratio to deadpool-postgres, \
         client CPU µs per query\n\n(over {transport}; median of {} interleaved rounds, {:?} \
         windows; pgbench `-M simple -c T -j T -T {}` as the ceiling, its own CPU per query)\n",
        s.rounds, s.window, s.pgbench_secs
    );
    let header = [
        "runtime",
        "T / pool",
        "client",
        "q/s",
        "q/s vs deadpool-postgres",
        "CPU µs/q",
        "CPU vs deadpool-postgres",
    ];
    let mut rows = Vec::new();
    for workers in WORKERS {
        for (si, &(tasks, size)) in SHAPES.iter().enumerate() {
            let runtime = format!("{workers} worker{}", if workers > 1 { "s" } else { "" });
            let get = |i: usize| rates.get(&(workers, si, i)).cloned().unwrap_or_default();
            let cpu_us = |r: &Rate| r.cpu_per_op.as_secs_f64() * 1e6;
            let reference = get(REFERENCE);
            for (i, name) in NAMES.iter().enumerate() {
                let runs = get(i);
                let per_round =
                    |f: &dyn Fn(&Rate) -> f64| fmt_ratio(median_ratio(&runs, &reference, f));
                rows.push(vec![
                    runtime.clone(),
                    format!("{tasks} / {size}"),
                    name.to_string(),
                    fmt_rate(median(
                        &runs.iter().map(|r| r.per_second).collect::<Vec<_>>(),
                    )),
                    per_round(&|r| r.per_second),
                    fmt_us(median(&runs.iter().map(cpu_us).collect::<Vec<_>>())),
                    per_round(&cpu_us),
                ]);
            }
            if let Some(r) = pgbench[si] {
                let reference_q =
                    median(&reference.iter().map(|r| r.per_second).collect::<Vec<_>>());
                let reference_cpu = median(&reference.iter().map(cpu_us).collect::<Vec<_>>());
                rows.push(vec![
                    runtime.clone(),
                    format!("{tasks} / —"),
                    format!("pgbench -c {tasks} -j {tasks} (ceiling)"),
                    fmt_rate(r.per_second),
                    fmt_ratio(r.per_second / reference_q),
                    fmt_us(cpu_us(&r)),
                    fmt_ratio(cpu_us(&r) / reference_cpu),
                ]);
            }
        }
    }
    print_table(&header.map(str::to_owned), &rows);
    if let Some(dir) = charts::dir() {
        e2e_charts::select1(&dir, s, transport, &rates, &pgbench);
    }
}

fn main() {
    if let Ok(which) = std::env::var(e2e_more::MEMORY_CHILD) {
        return e2e_more::memory_child(&which);
    }
    let s = Settings::from_env();
    let began = Instant::now();
    let Some(cluster) = harness::start_cluster("end_to_end") else {
        return;
    };
    if s.wants("select1") {
        select1(&cluster, &s);
    }
    if s.wants("params") {
        params::params(&cluster, &s);
    }
    if s.wants("connect") {
        e2e_more::connect(&cluster, &s);
    }
    if s.wants("memory") {
        e2e_more::memory(&cluster);
    }
    if s.wants("python") {
        e2e_more::python(&cluster, &s);
    }
    eprintln!("end_to_end finished in {:.1?}", began.elapsed());
}
