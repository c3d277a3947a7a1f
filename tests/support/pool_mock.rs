//! An in-memory [`Manage`] for the pool's tests: connections are plain structs whose state a
//! test sets, connects and round trips take scripted (paused-clock) time, and every count the
//! pool's invariants speak about (live connections, concurrent connects, closes, cancels) is
//! observable.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wirepool::pool::{BoxFuture, ConnState, Eviction, Manage};

/// How a scripted operation behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Completes after `yields` scheduler yields (each is an await point to cancel at).
    Ok,
    /// Fails (after the same yields).
    Err,
    /// Never completes.
    Never,
    /// Panics (a bug in user code the pool must contain).
    Panic,
    /// Fails with an error retrying cannot fix ([`refused_error`]).
    Refuse,
}

#[derive(Debug)]
pub struct Script {
    pub connect: Gate,
    pub ping: Gate,
    pub rollback: Gate,
    pub yields: usize,
    pub connect_delay: Duration,
    pub rollback_delay: Duration,
    /// How long a CancelRequest takes to be acknowledged.
    pub cancel_delay: Duration,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            connect: Gate::Ok,
            ping: Gate::Ok,
            rollback: Gate::Ok,
            yields: 0,
            connect_delay: Duration::ZERO,
            rollback_delay: Duration::ZERO,
            cancel_delay: Duration::ZERO,
        }
    }
}

#[derive(Debug, Default)]
pub struct Shared {
    pub script: Mutex<Script>,
    /// Connections in existence (created, not yet dropped).
    pub live: AtomicUsize,
    pub max_live: AtomicUsize,
    pub connecting: AtomicUsize,
    pub max_connecting: AtomicUsize,
    pub connects: AtomicUsize,
    pub connect_errors: AtomicUsize,
    pub closes: AtomicUsize,
    pub cancels: AtomicUsize,
    pub rollbacks: AtomicUsize,
    /// `Manage::reset` calls (a dirty session restored).
    pub resets: AtomicUsize,
    /// `Manage::mark_clean` calls (after a connect's or a reset's `configure`).
    pub marks: AtomicUsize,
    pub pings: AtomicUsize,
    /// Set by [`Shared::flip_all`]: connections opened before then learn at their next peek
    /// that they must be evicted for this cause (a server's role change, reported to each
    /// session); connections opened later are not affected.
    flip: Mutex<Option<(Eviction, usize)>>,
    next_id: AtomicUsize,
    killers: Mutex<Vec<Arc<AtomicBool>>>,
}

impl Shared {
    pub fn live(&self) -> usize {
        self.live.load(SeqCst)
    }

    /// The server closes every connection (they notice at the next `is_closed` peek).
    pub fn kill_all(&self) {
        for k in self.killers.lock().unwrap().drain(..) {
            k.store(true, SeqCst);
        }
    }

    /// Every connection that exists now must be evicted for `cause` (it learns at its next
    /// peek).
    pub fn flip_all(&self, cause: Eviction) {
        *self.flip.lock().unwrap() = Some((cause, self.next_id.load(SeqCst)));
    }

    pub fn set(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.script.lock().unwrap());
    }
}

/// The error a failing scripted operation returns (tests compare its text).
pub fn mock_error() -> wirepool::Error {
    wirepool::Error::other("scripted failure")
}

/// An error retrying cannot fix (`is_permanent_connect_error`), as a wrong password is: here a
/// settings error, the one such error the public API can make.
pub fn refused_error() -> wirepool::Error {
    let e = "no_such_option=1".parse::<wirepool::Config>().unwrap_err();
    assert!(e.is_permanent_connect_error());
    e
}

#[derive(Debug)]
pub struct MockConn {
    pub id: usize,
    pub state: ConnState,
    /// Set: the connection works but must be evicted for this cause.
    pub evict: Option<Eviction>,
    server_closed: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

impl Drop for MockConn {
    fn drop(&mut self) {
        self.shared.live.fetch_sub(1, SeqCst);
    }
}

#[derive(Debug, Clone, Default)]
pub struct Mock {
    pub shared: Arc<Shared>,
}

impl Mock {
    pub fn new() -> Self {
        Mock::default()
    }
}

async fn pass(gate: Gate, yields: usize) -> wirepool::Result<()> {
    for _ in 0..yields {
        tokio::task::yield_now().await;
    }
    match gate {
        Gate::Ok => Ok(()),
        Gate::Err => Err(mock_error()),
        Gate::Refuse => Err(refused_error()),
        Gate::Never => std::future::pending().await,
        Gate::Panic => panic!("scripted panic"),
    }
}

/// Decrements a gauge on drop (a connect can be dropped midway).
struct Connecting(Arc<Shared>);

impl Drop for Connecting {
    fn drop(&mut self) {
        self.0.connecting.fetch_sub(1, SeqCst);
    }
}

impl Manage for Mock {
    type Connection = MockConn;

    fn connect(&self) -> impl Future<Output = wirepool::Result<MockConn>> + Send {
        let shared = Arc::clone(&self.shared);
        async move {
            let (gate, yields, delay) = {
                let s = shared.script.lock().unwrap();
                (s.connect, s.yields, s.connect_delay)
            };
            shared.connects.fetch_add(1, SeqCst);
            let n = shared.connecting.fetch_add(1, SeqCst) + 1;
            shared.max_connecting.fetch_max(n, SeqCst);
            let _connecting = Connecting(Arc::clone(&shared));
            tokio::time::sleep(delay).await;
            if let Err(e) = pass(gate, yields).await {
                shared.connect_errors.fetch_add(1, SeqCst);
                return Err(e);
            }
            let live = shared.live.fetch_add(1, SeqCst) + 1;
            shared.max_live.fetch_max(live, SeqCst);
            let killer = Arc::new(AtomicBool::new(false));
            shared.killers.lock().unwrap().push(Arc::clone(&killer));
            Ok(MockConn {
                id: shared.next_id.fetch_add(1, SeqCst),
                state: ConnState::Idle,
                evict: None,
                server_closed: killer,
                shared: Arc::clone(&shared),
            })
        }
    }

    fn state(&self, conn: &MockConn) -> ConnState {
        if conn.server_closed.load(SeqCst) {
            ConnState::Broken
        } else if let Some(cause) = conn.evict {
            ConnState::Evict(cause)
        } else {
            conn.state
        }
    }

    fn check_closed(&self, conn: &mut MockConn) -> bool {
        if let Some((cause, before)) = *self.shared.flip.lock().unwrap() {
            if conn.id < before {
                conn.evict = Some(cause);
            }
        }
        conn.server_closed.load(SeqCst) || conn.evict.is_some()
    }

    fn ping(&self, conn: &mut MockConn) -> impl Future<Output = wirepool::Result<()>> + Send {
        let shared = Arc::clone(&self.shared);
        let dead = conn.server_closed.load(SeqCst);
        async move {
            shared.pings.fetch_add(1, SeqCst);
            let (gate, yields) = {
                let s = shared.script.lock().unwrap();
                (s.ping, s.yields)
            };
            pass(gate, yields).await?;
            if dead {
                return Err(mock_error());
            }
            Ok(())
        }
    }

    fn rollback(&self, conn: &mut MockConn) -> impl Future<Output = wirepool::Result<()>> + Send {
        let shared = Arc::clone(&self.shared);
        async move {
            shared.rollbacks.fetch_add(1, SeqCst);
            let (gate, yields, delay) = {
                let s = shared.script.lock().unwrap();
                (s.rollback, s.yields, s.rollback_delay)
            };
            tokio::time::sleep(delay).await;
            pass(gate, yields).await?;
            conn.state = ConnState::Idle;
            Ok(())
        }
    }

    fn reset(&self, conn: &mut MockConn) -> impl Future<Output = wirepool::Result<()>> + Send {
        self.shared.resets.fetch_add(1, SeqCst);
        if conn.state == ConnState::Dirty {
            conn.state = ConnState::Idle;
        }
        std::future::ready(Ok(()))
    }

    fn mark_clean(&self, _conn: &mut MockConn) {
        self.shared.marks.fetch_add(1, SeqCst);
    }

    fn cancel(&self, _conn: &MockConn) -> impl Future<Output = ()> + Send + 'static {
        let shared = Arc::clone(&self.shared);
        async move {
            let delay = shared.script.lock().unwrap().cancel_delay;
            tokio::time::sleep(delay).await;
            shared.cancels.fetch_add(1, SeqCst);
        }
    }

    fn close(&self, conn: MockConn) -> impl Future<Output = ()> + Send {
        self.shared.closes.fetch_add(1, SeqCst);
        async move { drop(conn) }
    }

    fn prepare_cancel(&self, _conn: &MockConn) -> Option<BoxFuture<'static, ()>> {
        let shared = Arc::clone(&self.shared);
        Some(Box::pin(async move {
            shared.cancels.fetch_add(1, SeqCst);
        }))
    }
}

/// Lets background tasks run for 10 s of paused time (auto-advanced through their sleeps).
pub async fn settle() {
    settle_for(Duration::from_secs(10)).await;
}

/// Lets background tasks run for `d` of paused time.
pub async fn settle_for(d: Duration) {
    for _ in 0..10 {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(d / 10).await;
    }
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// Opens `b` and waits (up to 1 s) until it holds `min_size` connections: the usual start of a
/// test that needs a warm pool.
pub async fn open_ready(b: wirepool::PoolBuilder<Mock>) -> wirepool::Pool<Mock> {
    let pool = b.open().await.unwrap();
    pool.wait(Duration::from_secs(1)).await.unwrap();
    pool
}

/// A pool over `mock` with test-friendly defaults.
pub fn builder(mock: &Mock) -> wirepool::PoolBuilder<Mock> {
    wirepool::Pool::builder_for(mock.clone()).name("test")
}
