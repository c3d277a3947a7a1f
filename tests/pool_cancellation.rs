//! Cancel safety by brute force (deadpool's `managed_cancellation`, tokio's "poll once then
//! drop"): a checkout future is polled N times, N = 0, 1, 2, ..., then dropped, under every
//! combination of scripted outcomes; afterwards every count must be exact. Then a seeded stress
//! run of 1,000 tasks with random timeouts and aborts.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use support::pool_mock::{builder, mock_error, settle, Gate, Mock};
use wirepool::pool::{ConnHook, ConnState};

struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(Noop));
    Pin::new(f).poll(&mut Context::from_waker(&waker))
}

#[derive(Debug, Clone, Copy)]
enum Check {
    None,
    Ok,
    Err,
    Never,
}

fn check_hook(kind: Check) -> Option<ConnHook<support::pool_mock::MockConn>> {
    let gate = match kind {
        Check::None => return None,
        Check::Ok => Gate::Ok,
        Check::Err => Gate::Err,
        Check::Never => Gate::Never,
    };
    Some(Arc::new(move |conn| {
        Box::pin(async move {
            // A check is a query: cut short, it leaves the connection busy.
            conn.state = ConnState::Busy;
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            match gate {
                Gate::Ok => {
                    conn.state = ConnState::Idle;
                    Ok(())
                }
                Gate::Err => {
                    conn.state = ConnState::Idle;
                    Err(mock_error())
                }
                Gate::Never => std::future::pending().await,
                Gate::Panic | Gate::Refuse => unreachable!("check_hook never scripts these"),
            }
        })
    }))
}

/// Asserts the pool's accounting is exact with nothing checked out, then closes it and
/// asserts nothing is left.
async fn assert_settled(pool: &wirepool::Pool<Mock>, mock: &Mock, max: usize, what: &str) {
    settle().await;
    let s = pool.stats();
    assert_eq!(s.permits_available, max, "permits: {what}: {s:?}");
    assert_eq!(
        s.pool_size,
        s.pool_available + s.connecting,
        "size: {what}: {s:?}"
    );
    assert_eq!(mock.shared.live(), s.pool_available, "live: {what}: {s:?}");
    assert_eq!(s.requests_waiting, 0, "waiting: {what}");
    assert!(mock.shared.max_live.load(SeqCst) <= max, "max live: {what}");
    pool.close().await;
    settle().await;
    let s = pool.stats();
    assert_eq!(
        (s.pool_size, s.connecting, mock.shared.live()),
        (0, 0, 0),
        "after close: {what}: {s:?}"
    );
}

/// One configuration of the sweep: how connecting, the `check` hook and a rollback behave,
/// and whether the pool starts with a connection.
#[derive(Debug, Clone, Copy)]
struct Case {
    connect: Gate,
    check: Check,
    warm: bool,
    rollback: Option<Gate>,
}

/// The most polls the sweep tries for a checkout that cannot complete without time passing
/// (it waits on a timer: a backoff, a timeout).
const MAX_POLLS: usize = 14;

/// A pool set up for `case`, with a returned connection left to roll back if `case.rollback`.
async fn setup(case: Case) -> (Mock, wirepool::Pool<Mock>) {
    let mock = Mock::new();
    mock.shared.set(|s| s.yields = 2);
    let mut b = builder(&mock).min_size(usize::from(case.warm)).max_size(2);
    if let Some(hook) = check_hook(case.check) {
        b = b.check(move |c| hook(c));
    }
    let pool = b.timeout(Duration::from_secs(3)).open().await.unwrap();
    if case.warm {
        pool.wait(Duration::from_secs(1)).await.unwrap();
    }
    mock.shared.set(|s| s.connect = case.connect);
    if let Some(gate) = case.rollback {
        mock.shared.set(|s| s.rollback = gate);
        // (With a check that never ends there is no clean checkout to dirty.)
        if let Ok(mut dirty) = pool.connection_timeout(Duration::from_secs(1)).await {
            dirty.state = ConnState::InTransaction;
        }
    }
    (mock, pool)
}

/// Polls a checkout up to `polls` times (a scheduler yield between), then drops it; the number
/// of polls it took if it completed.
async fn checkout_polled(pool: &wirepool::Pool<Mock>, polls: usize) -> Option<usize> {
    let mut fut = Box::pin(pool.getconn());
    for n in 1..=polls {
        if let Poll::Ready(r) = poll_once(&mut fut) {
            if let Ok(conn) = r {
                pool.putconn(conn).unwrap();
            }
            return Some(n);
        }
        tokio::task::yield_now().await;
    }
    None
}

/// Every configuration, dropped after every number of polls from 0 until the checkout
/// completes (so every await point it passes is a drop point), or up to `MAX_POLLS` when it
/// waits on a timer. A panicking connect is contained like a failing one.
#[tokio::test(start_paused = true)]
async fn dropping_a_checkout_at_every_await_point_loses_nothing() {
    let (mut runs, mut completed) = (0, 0);
    for connect in [Gate::Ok, Gate::Err, Gate::Never, Gate::Panic] {
        for check in [Check::None, Check::Ok, Check::Err, Check::Never] {
            for warm in [false, true] {
                let rollbacks: &[Option<Gate>] = if warm {
                    &[None, Some(Gate::Ok), Some(Gate::Err), Some(Gate::Never)]
                } else {
                    &[None]
                };
                for &rollback in rollbacks {
                    let case = Case {
                        connect,
                        check,
                        warm,
                        rollback,
                    };
                    // A dry run: how many polls a checkout left alone needs.
                    let (mock, pool) = setup(case).await;
                    let needed = checkout_polled(&pool, MAX_POLLS * 4).await;
                    assert_settled(&pool, &mock, 2, &format!("{case:?} undisturbed")).await;
                    let last = needed.map_or(MAX_POLLS, |n| n - 1);
                    for polls in 0..=last {
                        let what = format!("{case:?} polls={polls}");
                        let (mock, pool) = setup(case).await;
                        let done = checkout_polled(&pool, polls).await;
                        assert_eq!(done, None, "dropped before it completed: {what}");
                        assert_settled(&pool, &mock, 2, &what).await;
                        runs += 1;
                    }
                    completed += usize::from(needed.is_some());
                }
            }
        }
    }
    // Every configuration that can complete without time passing was swept to completion. A
    // checkout completes at once when its check passes (None/Ok) on a connection that exists:
    // with connect Ok, always (2 cold + 2 checks × 4 rollback scripts warm); with any other
    // connect, only on a warm pool whose one connection survives its rollback (2 checks × the
    // rollback scripts None/Ok) — 10 + 3 × 4.
    assert_eq!(completed, 22, "configurations swept to completion");
    assert!(runs > 4 * 4 * 5 * 2, "{runs} runs");
}

/// xorshift64: a seeded PRNG, so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn stress(mock: &Mock, pool: &wirepool::Pool<Mock>, seed: u64, tick: Duration) {
    let mut rng = Rng(seed);
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let pool = pool.clone();
        let (start, timeout, hold, fate) =
            (rng.below(200), rng.below(30), rng.below(10), rng.below(10));
        let task = tokio::spawn(async move {
            tokio::time::sleep(tick * start as u32).await;
            let Ok(mut conn) = pool.getconn_timeout(tick * timeout as u32).await else {
                return;
            };
            tokio::time::sleep(tick * hold as u32).await;
            match fate {
                0 => conn.state = ConnState::InTransaction,
                1 => conn.state = ConnState::Busy,
                2 => conn.state = ConnState::Broken,
                3 => return drop(conn), // dropped without putconn
                _ => {}
            }
            pool.putconn(conn).unwrap();
        });
        let abort_at = (rng.below(4) == 0).then(|| rng.below(220));
        tasks.push((task, abort_at));
    }
    // Abort the chosen tasks at the tick each drew, in time order, from the start of the run.
    let t0 = tokio::time::Instant::now();
    let mut aborts: Vec<_> = tasks
        .iter()
        .filter_map(|(task, at)| at.map(|at| (at, task.abort_handle())))
        .collect();
    aborts.sort_by_key(|(at, _)| *at);
    for (at, task) in aborts {
        tokio::time::sleep_until(t0 + tick * at as u32).await;
        task.abort();
    }
    for (task, _) in tasks {
        let _ = task.await;
    }
    assert!(mock.shared.max_live.load(SeqCst) <= 8);
}

#[tokio::test(start_paused = true)]
async fn thousand_tasks_with_random_timeouts_and_aborts_end_exact() {
    let mock = Mock::new();
    mock.shared.set(|s| {
        s.connect_delay = Duration::from_millis(5);
        s.rollback_delay = Duration::from_millis(3);
        s.yields = 1;
    });
    let pool = builder(&mock).min_size(2).max_size(8).open().await.unwrap();
    stress(
        &mock,
        &pool,
        0x5eed_1234_abcd_0001,
        Duration::from_millis(1),
    )
    .await;
    assert_settled(&pool, &mock, 8, "stress").await;
}

/// The same on a multi-threaded runtime in real time, where the races are real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_tasks_on_two_threads_end_exact() {
    let mock = Mock::new();
    mock.shared.set(|s| s.yields = 1);
    let pool = builder(&mock).min_size(2).max_size(8).open().await.unwrap();
    stress(
        &mock,
        &pool,
        0x5eed_0000_0000_0002,
        Duration::from_micros(100),
    )
    .await;
    // Background returns (rollbacks, closes) finish on their own; wait for quiescence.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = pool.stats();
        let quiet =
            s.permits_available == 8 && s.pool_size == s.pool_available && s.connecting == 0;
        if quiet && mock.shared.live() == s.pool_available {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never settled: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(mock.shared.max_live.load(SeqCst) <= 8);
    pool.close().await;
}
