//! The chaos harness: a private cluster behind a [`Proxy`] ([`Rig`]), a load of tasks driving
//! a pool through the [`Contender`] trait ([`Load`]), a sampler of the server's backends for the
//! pool ([`Sampler`]), a probe of when the server accepts sessions again ([`until_accepting`]),
//! and the [`Report`](super::report::Report) each scenario prints and its tests assert on.
//!
//! Invariants:
//! - Every wait is bounded: a checkout by the pool's timeout plus [`SLACK`] (past that it is a
//!   *hang*, recorded, and the task moves on), a query by its own abandon time or the scenario.
//! - Figures come from outside the pool where they can: backends from `pg_stat_activity` (psql
//!   over the Unix socket, so neither the pool nor the proxy is in the way), connection attempts
//!   from the proxy's accept log, "the server accepts" from a direct probe.
//! - Chaos tests in one binary run one at a time ([`serial`]): the figures of one scenario must
//!   not include another's restarts.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::cluster::{Cluster, Options};
use super::proxy::Proxy;

/// How far past the pool's timeout a checkout may take before it counts as a hang: timers,
/// scheduling and a loaded 2-core machine, not a second timeout.
pub const SLACK: Duration = Duration::from_millis(1000);

/// The pool's sizes and timeout for a scenario.
#[derive(Debug, Clone, Copy)]
pub struct PoolOpts {
    pub min_size: usize,
    pub max_size: usize,
    pub timeout: Duration,
}

/// Why a request failed, as a short label ("pool timeout, no cause", "server 57P01", ...).
#[derive(Debug, Clone)]
pub struct Failure {
    pub label: String,
    /// The pool gave up waiting (not a server or connection error).
    pub pool_timeout: bool,
    /// For a pool timeout: whether the error names a cause (a connect error, ...).
    pub has_cause: bool,
}

impl Failure {
    /// Any failure but a pool timeout.
    pub fn other(label: impl Into<String>) -> Failure {
        Failure {
            label: label.into(),
            pool_timeout: false,
            has_cause: false,
        }
    }

    /// A pool timeout, with the cause it names, if any.
    pub fn timeout(cause: Option<&str>) -> Failure {
        Failure {
            label: match cause {
                Some(c) => format!("pool timeout, cause: {}", short(c)),
                None => "pool timeout, no cause".to_owned(),
            },
            pool_timeout: true,
            has_cause: cause.is_some(),
        }
    }
}

/// The first line of an error's text, at most 70 characters: a label to count by.
pub fn short(text: &str) -> String {
    text.lines().next().unwrap_or("").chars().take(70).collect()
}

/// A pool under test. `Conn` returns itself to the pool when dropped.
pub trait Contender: Send + Sync + Sized + 'static {
    /// The name printed in the figures.
    const NAME: &'static str;
    /// A checked-out connection.
    type Conn: Send + 'static;
    /// Opens a pool of `opts` for `conninfo`, and waits (10 s at most) for `min_size`.
    fn open(conninfo: &str, opts: PoolOpts) -> impl Future<Output = Result<Self, String>> + Send;
    /// Checks a connection out, waiting at most the pool's timeout.
    fn checkout(&self) -> impl Future<Output = Result<Self::Conn, Failure>> + Send;
    /// Runs `sql` on `conn`; gives it up (as a request timeout does) after `abandon_after`.
    fn query(
        conn: &mut Self::Conn,
        sql: &str,
        abandon_after: Option<Duration>,
    ) -> impl Future<Output = Result<(), Failure>> + Send;
    /// Closes the pool.
    fn close(&self) -> impl Future<Output = ()> + Send;
    /// Live connections as the pool counts them, if it says.
    fn size(&self) -> Option<usize>;
    /// The pool's own account of itself (its stats), for a failure message.
    fn describe(&self) -> String;
}

/// Awaits `query`, or gives it up after `limit` (drops it, as a request timeout does).
///
/// # Errors
/// "abandoned (request timeout)" when it was given up.
pub async fn give_up_after<F: Future>(
    query: F,
    limit: Option<Duration>,
) -> Result<F::Output, Failure> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, query)
            .await
            .map_err(|_| Failure::other("abandoned (request timeout)")),
        None => Ok(query.await),
    }
}

/// Chaos tests of one binary run one at a time; hold the guard for the whole test.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    install_panic_counter();
    LOCK.lock().await
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts every panic on a tokio runtime thread (the pools' background tasks and the load run
/// there; a test's own assertions run on its test thread and are not counted), then reports
/// it as usual.
fn install_panic_counter() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            if thread.name().is_some_and(|n| n.starts_with("tokio-")) {
                PANICS.fetch_add(1, SeqCst);
            }
            default(info);
        }));
    });
}

/// Panics seen on runtime threads so far.
pub fn panics() -> usize {
    PANICS.load(SeqCst)
}

/// A private cluster, a proxy in front of it, and the application_name that tags the pool's
/// backends.
pub struct Rig {
    pub cluster: Arc<Cluster>,
    pub proxy: Proxy,
    pub app: String,
}

impl Rig {
    /// Starts a private cluster with `options` and a proxy to it.
    ///
    /// # Panics
    /// If the cluster or the proxy cannot start (the test fails with the reason).
    pub async fn start(app: &str, options: Options) -> Rig {
        let cluster = tokio::task::spawn_blocking(move || Cluster::start_with(options))
            .await
            .expect("cluster start task")
            .unwrap_or_else(|e| panic!("the chaos cluster could not start: {e}"));
        let upstream = format!("{}:{}", cluster.host(), cluster.port());
        let proxy = Proxy::start(upstream.parse().expect("address"))
            .await
            .expect("proxy");
        Rig {
            cluster: Arc::new(cluster),
            proxy,
            app: app.to_owned(),
        }
    }

    /// The pool's conninfo: through the proxy, tagged with the rig's application_name.
    pub fn conninfo(&self, user: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname=postgres user={user} application_name={}",
            self.proxy.port(),
            self.app
        )
    }

    /// Straight to the server, for the probe.
    pub fn direct_conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} dbname=postgres user=postgres \
             application_name=chaos_probe connect_timeout=2",
            self.cluster.port()
        )
    }

    /// Runs `sql` through psql in a blocking task.
    pub async fn psql(&self, sql: &str) -> Result<String, String> {
        let cluster = Arc::clone(&self.cluster);
        let sql = sql.to_owned();
        tokio::task::spawn_blocking(move || cluster.psql(&sql))
            .await
            .map_err(|e| e.to_string())?
    }

    /// Runs `f` on the cluster in a blocking task (stop, start, ...).
    pub async fn with_cluster<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Cluster) -> T + Send + 'static,
    ) -> T {
        let cluster = Arc::clone(&self.cluster);
        tokio::task::spawn_blocking(move || f(&cluster))
            .await
            .expect("cluster task")
    }

    /// PIDs of the pool's backends, as the server lists them.
    pub async fn backend_pids(&self) -> Vec<i32> {
        let sql = format!(
            "select pid from pg_stat_activity where application_name = '{}'",
            self.app
        );
        let out = self.psql(&sql).await.unwrap_or_default();
        out.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// Starts sampling the pool's backends every 100 ms.
    pub fn sampler(&self) -> Sampler {
        Sampler::start(Arc::clone(&self.cluster), self.app.clone())
    }
}

/// Counts the pool's backends in `pg_stat_activity` every 100 ms from a thread of its own,
/// through psql (a fault that stops the server makes samples fail; those are skipped).
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<(Instant, usize)>>>,
}

impl Sampler {
    fn start(cluster: Arc<Cluster>, app: String) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let sql = format!("select count(*) from pg_stat_activity where application_name = '{app}'");
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(SeqCst) {
                if let Ok(n) = cluster.psql(&sql).map(|s| s.parse::<usize>()) {
                    samples.extend(n.ok().map(|n| (Instant::now(), n)));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        });
        Sampler {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the samples taken.
    pub fn finish(mut self) -> Vec<(Instant, usize)> {
        self.stop.store(true, SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
    }
}

/// Connects straight to the server every 10 ms until a session starts (startup completes),
/// counting only a success after at least one refusal if `after_refusal` (so a probe started
/// just before a crash does not take the server's last moment up for its return). Returns when
/// it did, and the errors seen on the way by label (57P03 while recovering, refusals while
/// down); `None` if not within `limit`.
pub async fn until_accepting(
    conninfo: &str,
    limit: Duration,
    after_refusal: bool,
) -> (Option<Instant>, BTreeMap<String, usize>) {
    let config: wirepool::Config = conninfo.parse().expect("probe conninfo");
    let mut seen = BTreeMap::new();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match wirepool::Connection::connect(&config).await {
            Ok(conn) => {
                let at = Instant::now();
                let _ = conn.close().await;
                if !after_refusal || !seen.is_empty() {
                    return (Some(at), seen);
                }
            }
            Err(e) => {
                let label = match e.code() {
                    Some(code) => format!("server {code}"),
                    None => short(&e.to_string()),
                };
                *seen.entry(label).or_insert(0) += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (None, seen)
}

/// What one request did.
#[derive(Debug, Clone)]
pub struct Event {
    /// When the request started.
    pub started: Instant,
    /// When the request ended.
    pub at: Instant,
    /// How long the checkout took (until the connection or the error).
    pub wait: Duration,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Ok,
    /// The checkout failed.
    CheckoutError(Failure),
    /// The checkout did not return within the pool's timeout + [`SLACK`].
    Hang,
    /// Checked out, then the query failed (or was abandoned).
    QueryError(Failure),
    /// Still running [`STUCK_AFTER`] after the load was stopped (a query that never returns).
    Stuck,
}

/// `tasks` tasks, each looping checkout → `sql` → return until stopped; a failed request
/// waits 10 ms before the next, as a client's retry would.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    events: Arc<Mutex<Vec<Event>>>,
}

/// What the load's tasks run.
#[derive(Debug, Clone)]
pub struct Work {
    pub sql: String,
    pub abandon_after: Option<Duration>,
}

impl Load {
    pub fn start<C: Contender>(pool: &Arc<C>, tasks: usize, work: Work, timeout: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..tasks)
            .map(|_| {
                let task = client(
                    Arc::clone(pool),
                    work.clone(),
                    timeout,
                    Arc::clone(&stop),
                    Arc::clone(&events),
                );
                tokio::spawn(task)
            })
            .collect();
        Load {
            stop,
            tasks,
            events,
        }
    }

    /// The events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("events").clone()
    }

    /// Stops the tasks and waits for them (each ends its request first, within
    /// [`STUCK_AFTER`]; one that does not is aborted and recorded as [`Outcome::Stuck`]); the
    /// events and how many tasks panicked.
    pub async fn finish(self) -> (Vec<Event>, usize) {
        self.stop.store(true, SeqCst);
        let stopped = Instant::now();
        let deadline = tokio::time::Instant::now() + STUCK_AFTER;
        let mut panicked = 0;
        for mut t in self.tasks {
            match tokio::time::timeout_at(deadline, &mut t).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => panicked += 1,
                Err(_) => {
                    t.abort();
                    self.events.lock().expect("events").push(Event {
                        started: stopped,
                        at: Instant::now(),
                        wait: Duration::ZERO,
                        outcome: Outcome::Stuck,
                    });
                }
            }
        }
        let events = self.events.lock().expect("events").clone();
        (events, panicked)
    }
}

/// How long a load task may take to end its request once the load is stopped.
pub const STUCK_AFTER: Duration = Duration::from_secs(10);

/// One load task: requests until stopped or told the pool is closed.
async fn client<C: Contender>(
    pool: Arc<C>,
    work: Work,
    timeout: Duration,
    stop: Arc<AtomicBool>,
    events: Arc<Mutex<Vec<Event>>>,
) {
    while !stop.load(SeqCst) {
        let event = request(&*pool, &work, timeout).await;
        let failed = !matches!(event.outcome, Outcome::Ok);
        let closed =
            matches!(&event.outcome, Outcome::CheckoutError(f) if f.label == "pool closed");
        events.lock().expect("events").push(event);
        if closed {
            return;
        }
        if failed {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn request<C: Contender>(pool: &C, work: &Work, timeout: Duration) -> Event {
    let started = Instant::now();
    let checkout = tokio::time::timeout(timeout + SLACK, pool.checkout()).await;
    let wait = started.elapsed();
    let outcome = match checkout {
        Err(_) => Outcome::Hang,
        Ok(Err(f)) => Outcome::CheckoutError(f),
        Ok(Ok(mut conn)) => match C::query(&mut conn, &work.sql, work.abandon_after).await {
            Ok(()) => Outcome::Ok,
            Err(f) => Outcome::QueryError(f),
        },
    };
    Event {
        started,
        at: Instant::now(),
        wait,
        outcome,
    }
}

/// The leak check: `max_size` checkouts held at once all succeed and run a query, and one more
/// then times out. Each step is bounded by the pool's timeout + [`SLACK`] (`timeout`).
pub async fn leak_check<C: Contender>(
    pool: &C,
    max_size: usize,
    timeout: Duration,
) -> Result<(), String> {
    let bound = timeout + SLACK;
    let checkout = || async {
        tokio::time::timeout(bound, pool.checkout())
            .await
            .unwrap_or_else(|_| Err(Failure::other(format!("HANG past {bound:?}"))))
    };
    let mut held = Vec::new();
    for i in 0..max_size {
        let conn = checkout()
            .await
            .map_err(|f| format!("checkout {} of {max_size} failed: {}", i + 1, f.label))?;
        held.push(conn);
    }
    for conn in &mut held {
        C::query(conn, "select 1", Some(bound))
            .await
            .map_err(|f| format!("a held connection failed select 1: {}", f.label))?;
    }
    match checkout().await {
        Ok(_) => Err(format!("checkout {} of {max_size} succeeded", max_size + 1)),
        Err(f) if f.pool_timeout => Ok(()),
        Err(f) => Err(format!(
            "checkout {} failed with {}, not a timeout",
            max_size + 1,
            f.label
        )),
    }
}

/// Polls `cond` every 10 ms for at most `limit`; whether it held.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
