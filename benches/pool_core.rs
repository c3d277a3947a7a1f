//! `cargo bench --bench pool_core`: the pool's checkout/return machinery with an in-memory
//! connection, wirepool side by side with deadpool (managed and unmanaged), bb8, and the bare
//! primitives (`support/bare.rs`) as the limit. No server; about a minute on 2 cores.
//!
//! Method (docs/performance.md): one 2-worker tokio runtime; for each cell (T tasks × max_size ×
//! variant) each contender gets a fresh pool with every connection open, T tasks loop
//! checkout → bump the connection → [yield while holding it] → drop for a warm-up and then a
//! timed window. Contenders are interleaved (each runs once per cell per round, order rotated
//! each round) and every figure is the median over rounds of the ratio to deadpool-managed in
//! the same round, so slow drift in machine load cancels out.
//!
//! Knobs: `WIREPOOL_BENCH_ROUNDS` (default 5), `WIREPOOL_BENCH_MS` (timed window per run,
//! default 80), `WIREPOOL_BENCH_QUICK=1` (one round, 20 ms: a smoke run),
//! `WIREPOOL_BENCH_CHARTS=docs/img` (also draw `pool_core.svg` there).

#[path = "support/bare.rs"]
mod bare;
#[path = "support/charts.rs"]
mod charts;
#[path = "support/contenders.rs"]
mod contenders;
#[path = "support/pool_core_report.rs"]
mod report;
#[path = "support/stats.rs"]
mod stats;
#[path = "support/wirepool_core.rs"]
mod wirepool_core;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use contenders::{
    BareC, BareClock, BareTimer, Bb8, Contender, DeadpoolManaged, DeadpoolManagedTimeout,
    DeadpoolUnmanaged,
};
use stats::{quantile, rotation};
use wirepool_core::Wirepool;

const TASKS: [usize; 5] = [1, 4, 16, 64, 256];
const MAX_SIZES: [usize; 2] = [4, 16];
/// The contenders, in table order. The first `MAIN` run in every cell; the rest only in the
/// decomposition cells, where they price what a full pool adds to the bare primitives.
const NAMES: [&str; 8] = [
    Wirepool::NAME,
    DeadpoolManaged::NAME,
    DeadpoolManagedTimeout::NAME,
    DeadpoolUnmanaged::NAME,
    Bb8::NAME,
    BareC::NAME,
    BareClock::NAME,
    BareTimer::NAME,
];
const MAIN: usize = 6;
const WIREPOOL: usize = 0;
/// The ratio's denominator: deadpool managed, the pool under deadpool-postgres.
const REFERENCE: usize = 1;
const BARE: usize = 5;
/// The latency cell the issue fixes: T=64 tasks on max_size 4, guard held across a yield.
const LAT_TASKS: usize = 64;
const LAT_MAX: usize = 4;
/// Cells that also run the decomposition contenders: (T, max, hold across yield).
const DECOMPOSE: [(usize, usize, bool); 2] = [(1, 4, false), (64, 4, true)];

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// One cell of the matrix: T tasks on a pool of `max`, holding the guard across a yield or not.
#[derive(Clone, Copy)]
pub(crate) struct Cell {
    tasks: usize,
    max: usize,
    hold_across_yield: bool,
}

/// Rounds and the lengths of the warm-up and the timed window.
pub(crate) struct Settings {
    rounds: usize,
    warmup: Duration,
    window: Duration,
}

/// One run's outcome: checkout+return cycles per second, checkout latencies (ns) if asked, and
/// each task's cycle count in the window (for fairness).
struct Run {
    rate: f64,
    latencies: Vec<u32>,
    per_task: Vec<u64>,
}

impl Run {
    /// Jain's fairness index of the per-task cycle counts: 1 when all tasks got the same share,
    /// 1/n when one task got everything.
    fn jain(&self) -> f64 {
        let (sum, sq) = self.per_task.iter().fold((0.0, 0.0), |(s, q), &x| {
            let x = x as f64;
            (s + x, q + x * x)
        });
        sum * sum / (self.per_task.len() as f64 * sq)
    }

    /// Tasks that completed no checkout in the window.
    fn starved(&self) -> usize {
        self.per_task.iter().filter(|&&n| n == 0).count()
    }
}

async fn worker<C: Contender>(
    pool: Arc<C>,
    phase: Arc<AtomicU8>,
    hold_across_yield: bool,
    timed: bool,
) -> (u64, Vec<u32>) {
    let mut cycles = 0u64;
    let mut latencies = Vec::with_capacity(if timed { 1 << 14 } else { 0 });
    loop {
        let p = phase.load(Relaxed);
        if p == STOP {
            return (cycles, latencies);
        }
        let start = timed.then(Instant::now);
        let mut conn = pool.checkout().await;
        // Every checkout that overlaps the window counts, including one that began before it
        // and is still waiting at its end: a starved task must show up in the tail, not vanish.
        if let Some(start) = start.filter(|_| phase.load(Relaxed) != WARMUP) {
            latencies.push(u32::try_from(start.elapsed().as_nanos()).unwrap_or(u32::MAX));
        }
        conn.uses += 1;
        if hold_across_yield {
            tokio::task::yield_now().await;
        }
        drop(conn);
        if p == MEASURE {
            cycles += 1;
        }
    }
}

fn run<C: Contender>(rt: &tokio::runtime::Runtime, cell: Cell, timed: bool, s: &Settings) -> Run {
    let pool = Arc::new(rt.block_on(C::build(cell.max)));
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let handles: Vec<_> = (0..cell.tasks)
        .map(|_| {
            let w = worker(
                Arc::clone(&pool),
                Arc::clone(&phase),
                cell.hold_across_yield,
                timed,
            );
            rt.spawn(w)
        })
        .collect();
    // The main thread is not a runtime worker: it only sleeps, so both cores run the tasks.
    std::thread::sleep(s.warmup);
    phase.store(MEASURE, Relaxed);
    let start = Instant::now();
    std::thread::sleep(s.window);
    phase.store(STOP, Relaxed);
    let elapsed = start.elapsed();
    let (per_task, mut latencies) = rt.block_on(async {
        let (mut per_task, mut all) = (Vec::new(), Vec::new());
        for h in handles {
            let (n, lat) = h.await.expect("worker panicked");
            per_task.push(n);
            all.extend(lat);
        }
        (per_task, all)
    });
    latencies.sort_unstable();
    Run {
        rate: per_task.iter().sum::<u64>() as f64 / elapsed.as_secs_f64(),
        latencies,
        per_task,
    }
}

fn run_index(rt: &tokio::runtime::Runtime, i: usize, cell: Cell, timed: bool, s: &Settings) -> Run {
    match i {
        0 => run::<Wirepool>(rt, cell, timed, s),
        1 => run::<DeadpoolManaged>(rt, cell, timed, s),
        2 => run::<DeadpoolManagedTimeout>(rt, cell, timed, s),
        3 => run::<DeadpoolUnmanaged>(rt, cell, timed, s),
        4 => run::<Bb8>(rt, cell, timed, s),
        5 => run::<BareC>(rt, cell, timed, s),
        6 => run::<BareClock>(rt, cell, timed, s),
        _ => run::<BareTimer>(rt, cell, timed, s),
    }
}

impl Cell {
    fn decomposed(&self) -> bool {
        DECOMPOSE.contains(&(self.tasks, self.max, self.hold_across_yield))
    }

    /// How many contenders run in this cell (the first `n` of `NAMES`).
    fn contenders(&self) -> usize {
        if self.decomposed() {
            NAMES.len()
        } else {
            MAIN
        }
    }
}

fn settings() -> Settings {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let quick = std::env::var("WIREPOOL_BENCH_QUICK").is_ok_and(|v| v == "1");
    let rounds = env("WIREPOOL_BENCH_ROUNDS").unwrap_or(if quick { 1 } else { 5 });
    let window = env("WIREPOOL_BENCH_MS").unwrap_or(if quick { 20 } else { 80 });
    Settings {
        rounds: usize::try_from(rounds.max(1)).unwrap_or(5),
        warmup: Duration::from_millis((window / 4).max(5)),
        window: Duration::from_millis(window.max(1)),
    }
}

/// `WIREPOOL_BENCH_PROFILE=<contender index>:<T>:<max>:<yield 0|1>` runs that one cell alone for
/// the window (e.g. under `perf record` or `valgrind --tool=callgrind`) and prints its rate.
fn profile_one(rt: &tokio::runtime::Runtime, spec: &str, s: &Settings) {
    let f: Vec<usize> = spec.split(':').filter_map(|x| x.parse().ok()).collect();
    let [i, tasks, max, hold] = f[..] else {
        eprintln!("WIREPOOL_BENCH_PROFILE wants index:T:max:yield, e.g. 0:64:4:1");
        return;
    };
    let cell = Cell {
        tasks,
        max,
        hold_across_yield: hold == 1,
    };
    // No warm-up, so (nearly) every cycle the process ran is counted: callgrind's totals
    // divided by this count are instructions per cycle.
    let s = Settings {
        rounds: 1,
        warmup: Duration::ZERO,
        window: s.window,
    };
    let r = run_index(rt, i, cell, false, &s);
    println!(
        "{}: {:.3} M cycles/s, {} cycles in the window",
        NAMES[i.min(NAMES.len() - 1)],
        r.rate / 1e6,
        r.per_task.iter().sum::<u64>()
    );
}

fn main() {
    let s = settings();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if let Ok(spec) = std::env::var("WIREPOOL_BENCH_PROFILE") {
        return profile_one(&rt, &spec, &s);
    }
    let began = Instant::now();
    let mut cells = Vec::new();
    for hold_across_yield in [false, true] {
        for max in MAX_SIZES {
            for tasks in TASKS {
                cells.push(Cell {
                    tasks,
                    max,
                    hold_across_yield,
                });
            }
        }
    }
    // rates[(cell index, contender)] = one rate per round.
    let mut rates: HashMap<(usize, usize), Vec<f64>> = HashMap::new();
    // lat[contender] = (p50, p99, p99.9, rate, Jain index, starved tasks) per round.
    let mut lat: HashMap<usize, Vec<[f64; 6]>> = HashMap::new();
    let lat_cell = Cell {
        tasks: LAT_TASKS,
        max: LAT_MAX,
        hold_across_yield: true,
    };
    for round in 0..s.rounds {
        for (ci, cell) in cells.iter().enumerate() {
            for i in rotation(cell.contenders(), round) {
                let r = run_index(&rt, i, *cell, false, &s);
                rates.entry((ci, i)).or_default().push(r.rate);
            }
        }
        for i in rotation(MAIN, round) {
            let r = run_index(&rt, i, lat_cell, true, &s);
            let q = |x| quantile(&r.latencies, x) / 1000.0;
            lat.entry(i).or_default().push([
                q(0.5),
                q(0.99),
                q(0.999),
                r.rate,
                r.jain(),
                r.starved() as f64,
            ]);
        }
        eprintln!(
            "round {}/{} done at {:.0?}",
            round + 1,
            s.rounds,
            began.elapsed()
        );
    }
    report::report(&s, &cells, &rates, &lat);
    eprintln!("pool_core finished in {:.1?}", began.elapsed());
}
