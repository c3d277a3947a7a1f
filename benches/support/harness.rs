//! What the end-to-end benchmarks (`end_to_end`, `blocking`) share: their throwaway cluster,
//! rounds and window length from the environment, and one timed run of workers that loop an
//! operation (a warm-up, then completed operations and this process's CPU time over the
//! window).
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::procfs;

/// Starts the bench's private cluster, or says why `bench` is skipped.
pub fn start_cluster(bench: &str) -> Option<Cluster> {
    match Cluster::start() {
        Ok(c) => {
            eprintln!(
                "cluster up on port {} in {:.1?}",
                c.port(),
                c.startup_time()
            );
            Some(c)
        }
        Err(e) => {
            println!("{bench}: skipped, no PostgreSQL cluster could start: {e}");
            println!("(install PostgreSQL's server binaries, or point WIREPOOL_PG_BIN at them)");
            None
        }
    }
}

/// The phases workers read: run but do not count, count, stop.
pub const WARMUP: u8 = 0;
pub const MEASURE: u8 = 1;
pub const STOP: u8 = 2;

/// One run: operations per second and client CPU time per operation.
#[derive(Clone, Copy)]
pub struct Rate {
    pub per_second: f64,
    pub cpu_per_op: Duration,
}

impl Rate {
    pub fn cpu_us(&self) -> f64 {
        self.cpu_per_op.as_secs_f64() * 1e6
    }
}

/// `WIREPOOL_BENCH_ROUNDS` (3), `WIREPOOL_BENCH_MS` (window, 1500) and
/// `WIREPOOL_BENCH_QUICK=1` (one round of 300 ms): (rounds, window, quick).
pub fn rounds_and_window() -> (usize, Duration, bool) {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let quick = std::env::var("WIREPOOL_BENCH_QUICK").is_ok_and(|v| v == "1");
    let rounds = env("WIREPOOL_BENCH_ROUNDS").unwrap_or(if quick { 1 } else { 3 });
    let ms = env("WIREPOOL_BENCH_MS").unwrap_or(if quick { 300 } else { 1500 });
    (
        usize::try_from(rounds.max(1)).unwrap_or(3),
        Duration::from_millis(ms.max(50)),
        quick,
    )
}

/// Starts the workers with `start` (given the phase they read) and gets back what joins them
/// (the operations each completed while measuring, summed); then a warm-up of a fifth of
/// `window`, the timed window, and STOP.
pub fn timed<J>(window: Duration, start: impl FnOnce(&Arc<AtomicU8>) -> J) -> Result<Rate, String>
where
    J: FnOnce() -> Result<u64, String>,
{
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let join = start(&phase);
    std::thread::sleep(window / 5);
    let cpu0 = procfs::cpu_times().map(|c| c.0);
    phase.store(MEASURE, Relaxed);
    let began = Instant::now();
    std::thread::sleep(window);
    phase.store(STOP, Relaxed);
    let elapsed = began.elapsed();
    let cpu1 = procfs::cpu_times().map(|c| c.0);
    let done = join()?;
    let cpu = cpu1
        .zip(cpu0)
        .map_or(Duration::ZERO, |(b, a)| b.saturating_sub(a));
    Ok(Rate {
        per_second: done as f64 / elapsed.as_secs_f64(),
        cpu_per_op: cpu / u32::try_from(done.max(1)).unwrap_or(u32::MAX),
    })
}

/// Runs `tasks` copies of `op` in a loop on `rt` through [`timed`].
pub fn timed_tasks<F, Fut>(
    rt: &tokio::runtime::Runtime,
    tasks: usize,
    window: Duration,
    op: F,
) -> Result<Rate, String>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let op = Arc::new(op);
    timed(window, |phase| {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (op, phase) = (Arc::clone(&op), Arc::clone(phase));
                rt.spawn(async move {
                    let mut done = 0u64;
                    loop {
                        match phase.load(Relaxed) {
                            STOP => return Ok::<u64, String>(done),
                            p => {
                                op().await?;
                                done += u64::from(p == MEASURE);
                            }
                        }
                    }
                })
            })
            .collect();
        move || {
            rt.block_on(async {
                let mut total = 0u64;
                for h in handles {
                    total += h.await.map_err(|e| e.to_string())??;
                }
                Ok(total)
            })
        }
    })
}

/// Runs `threads` OS threads each looping `op` through [`timed`].
pub fn timed_threads<F>(threads: usize, window: Duration, op: F) -> Result<Rate, String>
where
    F: Fn() -> Result<(), String> + Send + Sync + 'static,
{
    let op = Arc::new(op);
    timed(window, |phase| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (op, phase) = (Arc::clone(&op), Arc::clone(phase));
                std::thread::spawn(move || {
                    let mut done = 0u64;
                    loop {
                        match phase.load(Relaxed) {
                            STOP => return Ok::<u64, String>(done),
                            p => {
                                op()?;
                                done += u64::from(p == MEASURE);
                            }
                        }
                    }
                })
            })
            .collect();
        move || {
            handles.into_iter().try_fold(0, |total, h| {
                Ok(total + h.join().map_err(|_| "a worker panicked".to_owned())??)
            })
        }
    })
}
