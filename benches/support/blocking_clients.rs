//! The blocking bench's contenders: `SELECT 1` (simple protocol) from an OS thread, through
//! wirepool::blocking as shipped, r2d2_postgres (with and without its default round trip on
//! every checkout), and two prototypes of the other ways to drive the async pool from threads
//! (a multi-thread runtime, and calls sent to the pool's thread); plus the async pool itself,
//! driven by tasks, as the baseline the blocking layer adds to.
//!
//! Every pool opens all its connections before timing; settings are each pool's defaults but
//! the size.
#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};
use tokio::sync::oneshot;

const SQL: &str = "SELECT 1";
const OPEN_WAIT: Duration = Duration::from_secs(30);

/// A pool driven from OS threads.
pub trait SyncContender: Send + Sync + 'static {
    /// Checks a connection out, runs `SELECT 1`, returns it.
    fn select1(&self) -> Result<(), String>;
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// wirepool::blocking as shipped.
pub struct Blocking(wirepool::blocking::Pool);

impl Blocking {
    pub const NAME: &'static str = "wirepool::blocking";

    pub fn build(conninfo: &str, size: usize) -> Result<Self, String> {
        let pool = wirepool::blocking::Pool::builder(conninfo)
            .min_size(size)
            .max_size(size)
            .open()
            .map_err(text)?;
        pool.wait(OPEN_WAIT).map_err(text)?;
        Ok(Blocking(pool))
    }
}

impl SyncContender for Blocking {
    fn select1(&self) -> Result<(), String> {
        let mut conn = self.0.connection().map_err(text)?;
        std::hint::black_box(conn.simple_query(SQL).map_err(text)?);
        Ok(())
    }
}

/// r2d2 0.8 over r2d2_postgres 0.18 (the sync `postgres` client: one current-thread runtime per
/// connection, `block_on` per call).
pub struct R2d2<const TEST_ON_CHECK_OUT: bool>(
    r2d2::Pool<r2d2_postgres::PostgresConnectionManager<r2d2_postgres::postgres::NoTls>>,
);

impl<const TEST_ON_CHECK_OUT: bool> R2d2<TEST_ON_CHECK_OUT> {
    pub const NAME: &'static str = if TEST_ON_CHECK_OUT {
        "r2d2_postgres (default: test_on_check_out)"
    } else {
        "r2d2_postgres (test_on_check_out off)"
    };

    pub fn build(conninfo: &str, size: usize) -> Result<Self, String> {
        let config: r2d2_postgres::postgres::Config = conninfo.parse().map_err(text)?;
        let manager =
            r2d2_postgres::PostgresConnectionManager::new(config, r2d2_postgres::postgres::NoTls);
        let size = u32::try_from(size).map_err(text)?;
        // `build` returns once `min_idle` connections are open.
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(size))
            .test_on_check_out(TEST_ON_CHECK_OUT)
            .build(manager)
            .map_err(text)?;
        Ok(R2d2(pool))
    }
}

impl<const TEST_ON_CHECK_OUT: bool> SyncContender for R2d2<TEST_ON_CHECK_OUT> {
    fn select1(&self) -> Result<(), String> {
        let mut conn = self.0.get().map_err(text)?;
        std::hint::black_box(conn.simple_query(SQL).map_err(text)?);
        Ok(())
    }
}

/// An async pool of `size` on `rt`, with every connection open.
fn open_async(rt: &Handle, conninfo: &str, size: usize) -> Result<wirepool::Pool, String> {
    let _entered = rt.enter();
    park_on(async {
        let pool = wirepool::Pool::builder(conninfo)
            .min_size(size)
            .max_size(size)
            .open()
            .await
            .map_err(text)?;
        pool.wait(OPEN_WAIT).await.map_err(text)?;
        Ok(pool)
    })
}

/// A multi-thread runtime of one worker and an async pool of `size` on it.
fn on_one_worker(conninfo: &str, size: usize) -> Result<(Runtime, wirepool::Pool), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(text)?;
    let pool = open_async(rt.handle(), conninfo, size)?;
    Ok((rt, pool))
}

/// Prototype: the shipped design (the caller polls its own future) on a multi-thread runtime
/// with one worker driving the I/O, instead of a current-thread runtime on a pool thread.
pub struct CallerPolledMultiThread {
    pool: Option<wirepool::Pool>,
    rt: Option<Runtime>,
}

impl CallerPolledMultiThread {
    pub const NAME: &'static str = "caller-polled, multi-thread runtime (prototype)";

    pub fn build(conninfo: &str, size: usize) -> Result<Self, String> {
        let (rt, pool) = on_one_worker(conninfo, size)?;
        Ok(CallerPolledMultiThread {
            pool: Some(pool),
            rt: Some(rt),
        })
    }
}

impl SyncContender for CallerPolledMultiThread {
    fn select1(&self) -> Result<(), String> {
        let (Some(pool), Some(rt)) = (&self.pool, &self.rt) else {
            return Err("dropped".into());
        };
        let _entered = rt.enter();
        park_on(async {
            let mut conn = pool.connection().await.map_err(text)?;
            std::hint::black_box(conn.simple_query(SQL).await.map_err(text)?);
            Ok(())
        })
    }
}

impl Drop for CallerPolledMultiThread {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            let entered = rt.enter();
            drop(self.pool.take());
            drop(entered);
            rt.shutdown_background();
        }
    }
}

/// A current-thread runtime parked in `block_on` on a thread of its own until dropped.
struct PoolThread {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

impl PoolThread {
    fn start() -> Result<PoolThread, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (stop, stopped) = oneshot::channel::<()>();
        thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let _ = tx.send(rt.handle().clone());
            rt.block_on(async move {
                let _ = stopped.await;
            });
        });
        let handle = rx.recv().map_err(text)?;
        Ok(PoolThread {
            handle,
            _stop: stop,
        })
    }

    /// Runs `fut` on the pool thread and blocks until its answer comes back.
    fn call<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = oneshot::channel();
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.blocking_recv().map_err(text)
    }
}

/// Prototype: blocking calls sent to the pool thread as tasks, each answer sent back
/// (reqwest::blocking's design). `PER_CALL`: the checkout is one call and the query another
/// (the guard goes to the pool thread and back), as this API's calls would be; otherwise
/// checkout, query and return go as one task, the fewest handoffs the design can have (an API
/// taking a closure per query).
pub struct Sent<const PER_CALL: bool> {
    pool: wirepool::Pool,
    thread: PoolThread,
}

pub type SentPerCall = Sent<true>;
pub type SentPerQuery = Sent<false>;

impl<const PER_CALL: bool> Sent<PER_CALL> {
    pub const NAME: &'static str = if PER_CALL {
        "calls sent to the pool thread, per call (prototype)"
    } else {
        "calls sent to the pool thread, one per query (prototype)"
    };

    pub fn build(conninfo: &str, size: usize) -> Result<Self, String> {
        let thread = PoolThread::start()?;
        let pool = open_async(&thread.handle, conninfo, size)?;
        Ok(Sent { pool, thread })
    }
}

impl<const PER_CALL: bool> SyncContender for Sent<PER_CALL> {
    fn select1(&self) -> Result<(), String> {
        let pool = self.pool.clone();
        let rows = if PER_CALL {
            let mut conn = self
                .thread
                .call(async move { pool.connection().await })?
                .map_err(text)?;
            let (conn, rows) = self.thread.call(async move {
                let rows = conn.simple_query(SQL).await;
                (conn, rows)
            })?;
            drop(conn);
            rows.map_err(text)?
        } else {
            self.thread.call(async move {
                let mut conn = pool.connection().await.map_err(text)?;
                conn.simple_query(SQL).await.map_err(text)
            })??
        };
        std::hint::black_box(rows);
        Ok(())
    }
}

/// The async pool on a multi-thread runtime of one worker, driven by tasks (not threads).
pub struct Async {
    pub pool: Arc<wirepool::Pool>,
    pub rt: Runtime,
}

impl Async {
    pub const NAME: &'static str = "wirepool async (tasks on 1 worker)";

    pub fn build(conninfo: &str, size: usize) -> Result<Self, String> {
        let (rt, pool) = on_one_worker(conninfo, size)?;
        Ok(Async {
            pool: Arc::new(pool),
            rt,
        })
    }

    pub async fn select1(pool: &wirepool::Pool) -> Result<(), String> {
        let mut conn = pool.connection().await.map_err(text)?;
        std::hint::black_box(conn.simple_query(SQL).await.map_err(text)?);
        Ok(())
    }
}

/// Polls `fut` on this thread, parking between polls (the shipped executor, for the
/// prototypes).
fn park_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    thread_local! {
        static WAKER: Waker = Waker::from(Arc::new(Unpark(thread::current())));
    }
    let waker = WAKER.with(Waker::clone);
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        thread::park();
    }
}
