//! `cargo bench --bench blocking`: the blocking API against the synchronous pools a program
//! with threads would otherwise use, through one throwaway PostgreSQL cluster. Skips with a
//! message if PostgreSQL's binaries are missing.
//!
//! `SELECT 1` (simple protocol) from T OS threads through a pool of N, T / N = 16 / 5 (the
//! issue's shape) and 1 / 1 (one caller: the round trip plus each layer's handoff):
//! - wirepool::blocking as shipped, and two prototypes of the other designs (a multi-thread
//!   runtime; calls sent to the pool's thread, per call and one per query);
//! - r2d2_postgres, with its default `test_on_check_out` (a round trip on every checkout) and
//!   without;
//! - psycopg_pool's `ConnectionPool` (scripts/bench/psycopg_pool_bench.py, run by the Python
//!   in `WIREPOOL_BENCH_PYTHON`, else the venv `scripts/bench/end_to_end.sh` makes, else
//!   `python3`; skipped, saying so, if none can import psycopg_pool);
//! - the async pool driven by T tasks on one worker: what the blocking layer adds to.
//!
//! Queries/s and client CPU time per query (this process's, all threads; Python's own), the
//! median of interleaved rounds, ratios taken per round against r2d2_postgres (default, and
//! with `test_on_check_out` off).
//! Knobs: `WIREPOOL_BENCH_ROUNDS` (3), `WIREPOOL_BENCH_MS` (window per run, 1500),
//! `WIREPOOL_BENCH_QUICK=1` (one short round), `WIREPOOL_BENCH_POOLS=2,6` (only these
//! contenders, by index; Python only if it lists 7: for profiling).

#[path = "support/blocking_clients.rs"]
mod blocking_clients;
#[path = "../tests/support/cluster.rs"]
mod cluster;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/procfs.rs"]
mod procfs;
#[path = "support/stats.rs"]
mod stats;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use blocking_clients::{
    Async, Blocking, CallerPolledMultiThread, R2d2, SentPerCall, SentPerQuery, SyncContender,
};
use harness::Rate;
use stats::{fmt_ratio, median, median_ratio, print_table, rotation};

/// (threads, pool size).
const SHAPES: [(usize, usize); 2] = [(16, 5), (1, 1)];
const NAMES: [&str; 7] = [
    R2d2::<true>::NAME,
    R2d2::<false>::NAME,
    Blocking::NAME,
    CallerPolledMultiThread::NAME,
    SentPerCall::NAME,
    SentPerQuery::NAME,
    Async::NAME,
];
/// The ratios' denominators: r2d2_postgres as users get it, and without its checkout round
/// trip (like for like: wirepool's checkout has none).
const REFERENCE: usize = 0;
const REFERENCE_NO_TEST: usize = 1;
const BLOCKING: usize = 2;
const ASYNC: usize = 6;
const PSYCOPG: &str = "psycopg_pool ConnectionPool (Python threads)";

struct Settings {
    rounds: usize,
    window: Duration,
    /// `WIREPOOL_BENCH_POOLS`: the contender indices to run (all if unset).
    pools: Option<Vec<usize>>,
}

impl Settings {
    fn from_env() -> Settings {
        let (rounds, window, _) = harness::rounds_and_window();
        Settings {
            rounds,
            window,
            pools: std::env::var("WIREPOOL_BENCH_POOLS")
                .ok()
                .map(|p| p.split(',').filter_map(|x| x.trim().parse().ok()).collect()),
        }
    }

    fn runs(&self, i: usize) -> bool {
        self.pools.as_ref().map_or(true, |p| p.contains(&i))
    }
}

/// `threads` OS threads looping `c.select1()`.
fn on_threads(c: impl SyncContender, threads: usize, s: &Settings) -> Result<Rate, String> {
    harness::timed_threads(threads, s.window, move || c.select1())
}

/// `tasks` tasks looping the async pool's `SELECT 1` on its one-worker runtime.
fn on_tasks(a: Async, tasks: usize, s: &Settings) -> Result<Rate, String> {
    let pool = Arc::clone(&a.pool);
    let rate = harness::timed_tasks(&a.rt, tasks, s.window, move || {
        let pool = Arc::clone(&pool);
        async move { Async::select1(&pool).await }
    });
    a.rt.block_on(a.pool.close());
    rate
}

fn run(
    i: usize,
    conninfo: &str,
    (threads, size): (usize, usize),
    s: &Settings,
) -> Result<Rate, String> {
    match i {
        0 => on_threads(R2d2::<true>::build(conninfo, size)?, threads, s),
        1 => on_threads(R2d2::<false>::build(conninfo, size)?, threads, s),
        2 => on_threads(Blocking::build(conninfo, size)?, threads, s),
        3 => on_threads(CallerPolledMultiThread::build(conninfo, size)?, threads, s),
        4 => on_threads(SentPerCall::build(conninfo, size)?, threads, s),
        5 => on_threads(SentPerQuery::build(conninfo, size)?, threads, s),
        _ => on_tasks(Async::build(conninfo, size)?, threads, s),
    }
}

/// The first Python that can import psycopg_pool, or why there is none.
fn find_python() -> Result<String, String> {
    let venv = std::env::temp_dir().join("wirepool-bench-venv/bin/python");
    let candidates = std::env::var("WIREPOOL_BENCH_PYTHON")
        .into_iter()
        .chain([venv.display().to_string(), "python3".to_owned()]);
    for python in candidates {
        let ok = Command::new(&python)
            .args(["-c", "import psycopg_pool"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Ok(python);
        }
    }
    Err(
        "no Python with psycopg_pool found (tried WIREPOOL_BENCH_PYTHON, the bench venv, \
         python3); install it with `pip install \"psycopg[binary]\" psycopg_pool`, or run \
         scripts/bench/end_to_end.sh once"
            .to_owned(),
    )
}

/// One round of psycopg_pool's `ConnectionPool` at every shape: (threads, size) → Rate.
fn psycopg_round(
    python: &str,
    conninfo: &str,
    s: &Settings,
) -> Result<HashMap<(usize, usize), Rate>, String> {
    let shapes: Vec<String> = SHAPES.iter().map(|(t, n)| format!("{t}x{n}")).collect();
    let out = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/bench/psycopg_pool_bench.py"
        ))
        .args(["--conninfo", conninfo, "--shapes", &shapes.join(",")])
        .args(["--seconds", &format!("{:.3}", s.window.as_secs_f64())])
        .args(["--rounds", "1", "--sync-only", "--tsv"])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut rates = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<f64> = line.split('\t').filter_map(|x| x.parse().ok()).collect();
        if let [t, n, qps, cpu_us] = f[..] {
            let rate = Rate {
                per_second: qps,
                cpu_per_op: Duration::from_secs_f64(cpu_us / 1e6),
            };
            rates.insert((t as usize, n as usize), rate);
        }
    }
    Ok(rates)
}

fn main() {
    let s = Settings::from_env();
    let began = Instant::now();
    let Some(cluster) = harness::start_cluster("blocking") else {
        return;
    };
    let conninfo = cluster.conninfo("postgres", None);
    let python = find_python()
        .map_err(|e| eprintln!("psycopg_pool: SKIPPED: {e}"))
        .ok();
    // rates[(shape, contender)]: one Rate per round; psycopg's under index NAMES.len().
    let mut rates: HashMap<(usize, usize), Vec<Rate>> = HashMap::new();
    for round in 0..s.rounds {
        for (si, &shape) in SHAPES.iter().enumerate() {
            for i in rotation(NAMES.len(), round).filter(|&i| s.runs(i)) {
                match run(i, &conninfo, shape, &s) {
                    Ok(r) => rates.entry((si, i)).or_default().push(r),
                    Err(e) => eprintln!("{} failed: {e}", NAMES[i]),
                }
            }
        }
        if let Some(python) = python.as_ref().filter(|_| s.runs(NAMES.len())) {
            match psycopg_round(python, &conninfo, &s) {
                Ok(py) => {
                    for (si, shape) in SHAPES.iter().enumerate() {
                        if let Some(r) = py.get(shape) {
                            rates.entry((si, NAMES.len())).or_default().push(*r);
                        }
                    }
                }
                Err(e) => eprintln!("psycopg_pool bench failed: {e}"),
            }
        }
        eprintln!("round {}/{} done", round + 1, s.rounds);
    }
    report(&rates, &s, python.is_some());
    eprintln!("blocking bench finished in {:.1?}", began.elapsed());
}

fn report(rates: &HashMap<(usize, usize), Vec<Rate>>, s: &Settings, python: bool) {
    let get = |si: usize, i: usize| rates.get(&(si, i)).cloned().unwrap_or_default();
    let med = |runs: &[Rate], f: fn(&Rate) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    println!(
        "## SELECT 1 from OS threads: queries/s and client CPU µs per query, ratios to \
         r2d2_postgres (default, and with test_on_check_out off)\n\n(median of {} interleaved rounds, {:?} windows; \
         psycopg_pool {})\n",
        s.rounds,
        s.window,
        if python {
            "measured by its own process"
        } else {
            "skipped: see stderr"
        }
    );
    let header = [
        "T / pool",
        "client",
        "q/s",
        "q/s vs r2d2",
        "q/s vs r2d2 (off)",
        "CPU µs/q",
        "CPU vs r2d2",
        "CPU vs r2d2 (off)",
    ];
    let mut rows = Vec::new();
    for (si, &(threads, size)) in SHAPES.iter().enumerate() {
        let (reference, no_test) = (get(si, REFERENCE), get(si, REFERENCE_NO_TEST));
        for (i, name) in NAMES.iter().chain([&PSYCOPG]).enumerate() {
            let runs = get(si, i);
            if runs.is_empty() {
                continue;
            }
            let ratio = |to: &[Rate], f: fn(&Rate) -> f64| fmt_ratio(median_ratio(&runs, to, f));
            rows.push(vec![
                format!("{threads} / {size}"),
                name.to_string(),
                format!("{:.0}", med(&runs, |r| r.per_second)),
                ratio(&reference, |r| r.per_second),
                ratio(&no_test, |r| r.per_second),
                format!("{:.1}", med(&runs, |r| r.cpu_us())),
                ratio(&reference, |r| r.cpu_us()),
                ratio(&no_test, |r| r.cpu_us()),
            ]);
        }
    }
    print_table(&header.map(str::to_owned), &rows);

    println!(
        "## What the blocking layer adds to the async pool (same run): client CPU µs per query, \
         and wall µs per query per caller (T / q/s)\n"
    );
    let header = [
        "T / pool",
        "async CPU µs/q",
        "blocking CPU µs/q",
        "added CPU µs/q",
        "async µs/q per caller",
        "blocking µs/q per caller",
        "added µs/q",
    ];
    let mut rows = Vec::new();
    for (si, &(threads, size)) in SHAPES.iter().enumerate() {
        let (a, b) = (get(si, ASYNC), get(si, BLOCKING));
        let cpu = |runs: &[Rate]| med(runs, |r| r.cpu_us());
        let wall = |runs: &[Rate]| threads as f64 * 1e6 / med(runs, |r| r.per_second);
        rows.push(vec![
            format!("{threads} / {size}"),
            format!("{:.1}", cpu(&a)),
            format!("{:.1}", cpu(&b)),
            format!("{:.1}", cpu(&b) - cpu(&a)),
            format!("{:.1}", wall(&a)),
            format!("{:.1}", wall(&b)),
            format!("{:.1}", wall(&b) - wall(&a)),
        ]);
    }
    print_table(&header.map(str::to_owned), &rows);
}
