//! `cargo bench --bench wait_timer`: what bounding a contended FIFO wait costs, one way per
//! row, against the same pool waiting with no bound (the `bare` row).
//!
//! The cell is pool_core's worst case for timers: 2 tokio workers, T=64 tasks on 4 permits,
//! get + yield + drop, so nearly every checkout queues. Every row shares the pool below (the
//! pool's own `Permits` from `src/pool/permits.rs`, i.e. tokio's semaphore plus the word that
//! parks permits while nobody waits; an `ArrayQueue`, `shed`, and the starving stage a promoted
//! waiter needs) and differs only in how the queued wait is bounded. Modes run interleaved, rotated each round; the
//! figure is the median over rounds of the ratio to `bare` in the same round. Beside the rate,
//! on-CPU ns per cycle (all threads, from schedstat), which a busy machine disturbs far less.
//!
//! Knobs: `WAIT_TIMER_ROUNDS` (default 7), `WAIT_TIMER_MS` (window per run, default 100),
//! `WAIT_TIMER_ONLY=<row>` (one mode alone, for callgrind).

#[path = "support/stats.rs"]
mod bench_stats;
// The pool's own files, as `waiting.rs` finds them (`super::clock`, `super::stats`, `super::sync`).
#[allow(dead_code, unused_imports)]
#[path = "../src/pool/clock.rs"]
mod clock;
#[allow(dead_code, unused_imports)]
#[path = "../src/pool/permits.rs"]
mod permits;
#[allow(dead_code, unused_imports)]
#[path = "../src/pool/stats.rs"]
mod stats;
#[allow(unused_imports)]
#[path = "../src/pool/sync.rs"]
mod sync;
#[allow(dead_code)]
#[path = "../src/pool/waiting.rs"]
mod waiting;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use tokio::sync::Notify;
use tokio::time::{sleep_until, timeout_at, Instant, Sleep};

use bench_stats::{fmt_ratio, median, print_table, quantile, rotation};
use permits::Permits;
use waiting::Deadlines;

const TASKS: usize = 64;
const MAX: usize = 4;
/// wirepool's (and psycopg_pool's) default checkout timeout.
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// No bound on the wait: the limit.
    Bare,
    /// No bound, but the clock read every bounded mode makes for its deadline (wirepool's
    /// slow path reads it anyway, for `start`).
    Clock,
    /// `timeout_at(deadline, acquire())`: a tokio timer per waiter (deadpool's `apply_timeout`).
    TimeoutAt,
    /// The `Sleep` made only once `acquire` has returned `Pending` (saves its handle clone
    /// when the first poll succeeds; it registers lazily anyway).
    LazySleep,
    /// One `Sleep` per worker thread, reused: `reset` to a later deadline extends the entry
    /// without the driver lock; leaving never deregisters it.
    RecycledSleep,
    /// Cost floor of a pool-owned registry: (id, deadline, waker) pushed into and removed from
    /// a `Mutex<VecDeque>` per wait. No timer task: it prices the two locks only.
    LockedRegistry,
    /// `src/pool/waiting.rs`: deadline buckets + one watchdog that promotes the head.
    Watchdog,
}

const MODES: [(Mode, &str); 7] = [
    (Mode::Bare, "bare (no timeout)"),
    (Mode::Clock, "bare + deadline clock read"),
    (Mode::TimeoutAt, "timeout_at per waiter"),
    (Mode::LazySleep, "Sleep made after first Pending"),
    (Mode::RecycledSleep, "recycled Sleep per thread (reset)"),
    (Mode::LockedRegistry, "locked registry, 2 locks (floor)"),
    (Mode::Watchdog, "shared watchdog + promotion"),
];

struct Dummy(u64);

struct Pool {
    permits: Permits,
    idle: ArrayQueue<Dummy>,
    shed: AtomicUsize,
    landed: Notify,
    deadlines: Deadlines,
    registry: Mutex<VecDeque<(u64, Instant, Waker)>>,
    ids: AtomicU64,
}

thread_local! {
    static SLEEPS: RefCell<Vec<Pin<Box<Sleep>>>> = const { RefCell::new(Vec::new()) };
}

struct Guard<'a> {
    pool: &'a Pool,
    obj: Option<Dummy>,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            let _ = self.pool.idle.push(obj);
            self.pool.landed.notify_one();
            self.pool.release();
        }
    }
}

impl Pool {
    fn new() -> Self {
        let idle = ArrayQueue::new(MAX);
        for _ in 0..MAX {
            let _ = idle.push(Dummy(0));
        }
        Pool {
            permits: Permits::new(MAX),
            idle,
            shed: AtomicUsize::new(0),
            landed: Notify::new(),
            deadlines: Deadlines::new(TIMEOUT),
            registry: Mutex::new(VecDeque::new()),
            ids: AtomicU64::new(0),
        }
    }

    /// `Core::release_permit`.
    fn release(&self) {
        if self
            .shed
            .fetch_update(Relaxed, Relaxed, |s| s.checked_sub(1))
            .is_err()
        {
            self.permits.release(1);
        }
    }

    async fn get(&self, mode: Mode) -> Guard<'_> {
        if self.permits.try_acquire().is_err() {
            self.wait(mode).await;
        }
        let obj = match self.idle.pop() {
            Some(obj) => obj,
            None => self.starve().await, // only after a promotion
        };
        Guard {
            pool: self,
            obj: Some(obj),
        }
    }

    #[cold]
    async fn starve(&self) -> Dummy {
        loop {
            let mut n = pin!(self.landed.notified());
            n.as_mut().enable();
            if let Some(obj) = self.idle.pop() {
                return obj;
            }
            n.await;
        }
    }

    async fn wait(&self, mode: Mode) {
        let never = "no timeout or close within a benchmark window";
        match mode {
            Mode::Bare => self.permits.acquire().await.expect(never),
            Mode::Clock => {
                std::hint::black_box(Instant::now() + TIMEOUT);
                self.permits.acquire().await.expect(never)
            }
            Mode::TimeoutAt => timeout_at(Instant::now() + TIMEOUT, self.permits.acquire())
                .await
                .expect(never)
                .expect(never),
            Mode::LazySleep => {
                let deadline = Instant::now() + TIMEOUT;
                let mut acquire = pin!(self.permits.acquire());
                let mut sleep = pin!(None::<Sleep>);
                poll_fn(|cx| {
                    if let Poll::Ready(r) = acquire.as_mut().poll(cx) {
                        r.expect(never);
                        return Poll::Ready(());
                    }
                    if sleep.is_none() {
                        sleep.set(Some(sleep_until(deadline)));
                    }
                    if let Some(s) = sleep.as_mut().as_pin_mut() {
                        assert!(s.poll(cx).is_pending(), "{never}");
                    }
                    Poll::Pending
                })
                .await
            }
            Mode::RecycledSleep => {
                let deadline = Instant::now() + TIMEOUT;
                let mut sleep = match SLEEPS.with(|s| s.borrow_mut().pop()) {
                    Some(mut s) => {
                        s.as_mut().reset(deadline);
                        s
                    }
                    None => Box::pin(sleep_until(deadline)),
                };
                let mut acquire = pin!(self.permits.acquire());
                let p = poll_fn(|cx| {
                    if let Poll::Ready(r) = acquire.as_mut().poll(cx) {
                        r.expect(never);
                        return Poll::Ready(());
                    }
                    assert!(sleep.as_mut().poll(cx).is_pending(), "{never}");
                    Poll::Pending
                })
                .await;
                SLEEPS.with(|s| s.borrow_mut().push(sleep));
                p
            }
            Mode::LockedRegistry => {
                let deadline = Instant::now() + TIMEOUT;
                let mut acquire = pin!(self.permits.acquire());
                let mut id = None;
                let p = poll_fn(|cx| {
                    if let Poll::Ready(r) = acquire.as_mut().poll(cx) {
                        r.expect(never);
                        return Poll::Ready(());
                    }
                    if id.is_none() {
                        let me = self.ids.fetch_add(1, Relaxed);
                        let mut reg = self.registry.lock().expect("not poisoned");
                        reg.push_back((me, deadline, cx.waker().clone()));
                        id = Some(me);
                    }
                    Poll::Pending
                })
                .await;
                if let Some(me) = id {
                    let mut reg = self.registry.lock().expect("not poisoned");
                    if let Some(i) = reg.iter().position(|e| e.0 == me) {
                        reg.remove(i);
                    }
                }
                p
            }
            Mode::Watchdog => {
                // The clock read the other modes make for their deadline; wirepool makes it
                // anyway (`start`), and the watchdog itself needs none.
                std::hint::black_box(Instant::now());
                self.deadlines
                    .acquire(&self.permits, &self.shed, TIMEOUT)
                    .await
                    .expect(never)
            }
        }
    }
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// On-CPU time of every thread of this process so far, in ns (`/proc/self/task/*/schedstat`,
/// Linux): unlike a rate, CPU time per cycle hardly moves when other processes take the cores.
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// One run's outcome.
struct Run {
    rate: f64,
    cpu_ns_per_cycle: f64,
    cycles: u64,
    /// Sorted checkout latencies in ns, if asked for.
    latencies: Vec<u32>,
}

fn run(rt: &tokio::runtime::Runtime, mode: Mode, window: Duration, timed: bool) -> Run {
    let pool = Arc::new(Pool::new());
    let watchdog = (mode == Mode::Watchdog).then(|| {
        let p = Arc::clone(&pool);
        rt.spawn(async move { p.deadlines.watch(&p.permits, &p.shed).await })
    });
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (pool, phase) = (Arc::clone(&pool), Arc::clone(&phase));
            rt.spawn(async move {
                let (mut n, mut lat) = (0u64, Vec::new());
                loop {
                    let p = phase.load(Relaxed);
                    if p == STOP {
                        return (n, lat);
                    }
                    let start = timed.then(std::time::Instant::now);
                    let mut g = pool.get(mode).await;
                    if let Some(s) = start.filter(|_| p == MEASURE) {
                        lat.push(u32::try_from(s.elapsed().as_nanos()).unwrap_or(u32::MAX));
                    }
                    if let Some(obj) = g.obj.as_mut() {
                        obj.0 += 1;
                    }
                    tokio::task::yield_now().await;
                    drop(g);
                    if p == MEASURE {
                        n += 1;
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(window / 4);
    phase.store(MEASURE, Relaxed);
    let (began, cpu) = (std::time::Instant::now(), cpu_ns());
    std::thread::sleep(window);
    phase.store(STOP, Relaxed);
    let (elapsed, cpu) = (began.elapsed(), cpu_ns() - cpu);
    let (cycles, mut lat) = rt.block_on(async {
        let (mut total, mut all) = (0, Vec::new());
        for t in tasks {
            let (n, l) = t.await.expect("worker");
            total += n;
            all.extend(l);
        }
        (total, all)
    });
    if let Some(w) = watchdog {
        pool.deadlines.close();
        rt.block_on(w).expect("watchdog");
        assert_eq!(
            pool.shed.load(Relaxed),
            0,
            "no promotion in a benchmark window"
        );
    }
    lat.sort_unstable();
    Run {
        rate: cycles as f64 / elapsed.as_secs_f64(),
        cpu_ns_per_cycle: cpu as f64 / cycles as f64,
        cycles,
        latencies: lat,
    }
}

/// `n` cycles per task on one thread; prints the total.
fn fixed(mode: Mode, n: u64, name: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let total = rt.block_on(async {
        let pool = Arc::new(Pool::new());
        let p = Arc::clone(&pool);
        let watchdog = tokio::spawn(async move { p.deadlines.watch(&p.permits, &p.shed).await });
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move {
                    for _ in 0..n {
                        let g = pool.get(mode).await;
                        tokio::task::yield_now().await;
                        drop(g);
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.expect("worker");
        }
        pool.deadlines.close();
        watchdog.await.expect("watchdog");
        total
    });
    println!("{name}: {total} cycles");
}

fn main() {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let rounds = usize::try_from(env("WAIT_TIMER_ROUNDS").unwrap_or(7).max(1)).unwrap_or(7);
    let window = Duration::from_millis(env("WAIT_TIMER_MS").unwrap_or(100).max(1));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // `WAIT_TIMER_CYCLES=<n> WAIT_TIMER_ONLY=<row>`: that mode alone on a current-thread
    // runtime, each task doing n cycles: deterministic, so two callgrind runs (two n) give the
    // instructions per cycle exactly.
    if let (Some(n), Some(i)) = (env("WAIT_TIMER_CYCLES"), env("WAIT_TIMER_ONLY")) {
        let (mode, name) = MODES[usize::try_from(i).unwrap_or(0).min(MODES.len() - 1)];
        return fixed(mode, n, name);
    }
    // `WAIT_TIMER_ONLY=<mode index>`: that mode alone, warm-up included in the count (for
    // `valgrind --tool=callgrind`: its instruction total over this count is the cost per cycle).
    if let Some(i) = env("WAIT_TIMER_ONLY").and_then(|i| usize::try_from(i).ok()) {
        let (mode, name) = MODES[i.min(MODES.len() - 1)];
        let r = run(&rt, mode, window, false);
        return println!("{name}: {} cycles in the window", r.cycles);
    }
    let mut rates = vec![Vec::new(); MODES.len()];
    let mut cpu = vec![Vec::new(); MODES.len()];
    let mut spread = vec![Vec::new(); MODES.len()];
    for round in 0..rounds {
        for i in rotation(MODES.len(), round) {
            let r = run(&rt, MODES[i].0, window, false);
            rates[i].push(r.rate);
            cpu[i].push(r.cpu_ns_per_cycle);
        }
        for i in rotation(MODES.len(), round) {
            let lat = run(&rt, MODES[i].0, window / 2, true).latencies;
            spread[i].push(quantile(&lat, 0.99) / quantile(&lat, 0.5));
        }
        eprintln!("round {}/{rounds}", round + 1);
    }
    println!(
        "## wait_timer: get + yield + drop, T={TASKS} tasks, max {MAX}, 2 workers \
         (median of {rounds} interleaved rounds, {window:?} window)\n"
    );
    let header: Vec<String> = [
        "wait bounded by",
        "M cycles/s",
        "rate / bare",
        "CPU ns / cycle",
        "bare's CPU / this CPU",
        "p99 / p50",
    ]
    .iter()
    .map(|h| h.to_string())
    .collect();
    let rows: Vec<Vec<String>> = MODES
        .iter()
        .enumerate()
        .map(|(i, (_, name))| {
            let ratio: Vec<f64> = rates[i].iter().zip(&rates[0]).map(|(a, b)| a / b).collect();
            let cost: Vec<f64> = cpu[0].iter().zip(&cpu[i]).map(|(b, a)| b / a).collect();
            vec![
                name.to_string(),
                format!("{:.2}", median(&rates[i]) / 1e6),
                fmt_ratio(median(&ratio)),
                format!("{:.0}", median(&cpu[i])),
                fmt_ratio(median(&cost)),
                fmt_ratio(median(&spread[i])),
            ]
        })
        .collect();
    print_table(&header, &rows);
}
