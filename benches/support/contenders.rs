//! The pools `pool_core` compares, each behind one small trait, all holding the same in-memory
//! connection ([`Dummy`]).
//!
//! Every peer runs with its defaults except the size, as a user would pick it: deadpool's
//! managed pool calls `Manager::recycle` on each checkout, bb8 runs `is_valid` on each checkout
//! (`test_on_check_out` defaults to true) and wraps `get` in its 30 s `connection_timeout`.
//! With an in-memory connection those hooks return at once, so what is left is each pool's
//! own machinery.

use std::convert::Infallible;
use std::future::Future;
use std::ops::DerefMut;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bare::{Bare, BareGuard};

/// The checkout timeout used where a contender has one: wirepool's and bb8's default.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The in-memory connection: a counter the benchmark bumps through the guard, so every
/// contender's `DerefMut` is exercised.
#[derive(Debug, Default)]
pub struct Dummy {
    pub uses: u64,
}

/// A pool under test.
pub trait Contender: Send + Sync + Sized + 'static {
    /// The name printed in the tables.
    const NAME: &'static str;
    /// The checked-out guard.
    type Guard<'a>: DerefMut<Target = Dummy> + Send
    where
        Self: 'a;
    /// A pool of `max` connections, every one of them already open.
    fn build(max: usize) -> impl Future<Output = Self> + Send;
    /// One checkout; panics on error (there are none with an in-memory connection).
    fn checkout(&self) -> impl Future<Output = Self::Guard<'_>> + Send;
}

/// The primitives alone (`bare.rs`).
pub struct BareC(Arc<Bare<Dummy>>);

impl Contender for BareC {
    const NAME: &'static str = "bare primitives";
    type Guard<'a> = BareGuard<Dummy>;
    async fn build(max: usize) -> Self {
        BareC(Bare::new(max, Dummy::default))
    }
    async fn checkout(&self) -> BareGuard<Dummy> {
        self.0.get().await
    }
}

/// deadpool's `Manager` for the dummy: create and recycle always succeed at once.
pub struct DummyManager;

impl deadpool::managed::Manager for DummyManager {
    type Type = Dummy;
    type Error = Infallible;
    async fn create(&self) -> Result<Dummy, Infallible> {
        Ok(Dummy::default())
    }
    async fn recycle(
        &self,
        _: &mut Dummy,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

/// Builds a deadpool managed pool and opens all its objects: deadpool creates lazily, so all
/// `max` are held at once before timing starts.
async fn filled(
    builder: deadpool::managed::PoolBuilder<DummyManager>,
) -> deadpool::managed::Pool<DummyManager> {
    let pool = builder.build().expect("valid options");
    let max = pool.status().max_size;
    let mut held = Vec::with_capacity(max);
    for _ in 0..max {
        held.push(pool.get().await.expect("infallible manager"));
    }
    pool
}

/// deadpool 0.13, managed (`Manager` trait; the pool deadpool-postgres is built on).
pub struct DeadpoolManaged(deadpool::managed::Pool<DummyManager>);

impl Contender for DeadpoolManaged {
    const NAME: &'static str = "deadpool managed";
    type Guard<'a> = deadpool::managed::Object<DummyManager>;
    async fn build(max: usize) -> Self {
        let builder = deadpool::managed::Pool::builder(DummyManager).max_size(max);
        DeadpoolManaged(filled(builder).await)
    }
    async fn checkout(&self) -> Self::Guard<'_> {
        self.0.get().await.expect("infallible manager")
    }
}

/// deadpool 0.13, managed, with `timeouts.wait` set (30 s, wirepool's and bb8's default): the
/// like-for-like peer, since a pool that can time out a waiter must arm a timer for it.
pub struct DeadpoolManagedTimeout(deadpool::managed::Pool<DummyManager>);

impl Contender for DeadpoolManagedTimeout {
    const NAME: &'static str = "deadpool managed + wait timeout";
    type Guard<'a> = deadpool::managed::Object<DummyManager>;
    async fn build(max: usize) -> Self {
        let builder = deadpool::managed::Pool::builder(DummyManager)
            .max_size(max)
            .wait_timeout(Some(TIMEOUT))
            .runtime(deadpool::Runtime::Tokio1);
        DeadpoolManagedTimeout(filled(builder).await)
    }
    async fn checkout(&self) -> Self::Guard<'_> {
        self.0
            .get()
            .await
            .expect("no timeout within a benchmark window")
    }
}

/// deadpool 0.13, unmanaged (`add` objects, `get` them).
pub struct DeadpoolUnmanaged(deadpool::unmanaged::Pool<Dummy>);

impl Contender for DeadpoolUnmanaged {
    const NAME: &'static str = "deadpool unmanaged";
    type Guard<'a> = deadpool::unmanaged::Object<Dummy>;
    async fn build(max: usize) -> Self {
        let pool = deadpool::unmanaged::Pool::new(max);
        for _ in 0..max {
            pool.add(Dummy::default())
                .await
                .expect("room for max objects");
        }
        DeadpoolUnmanaged(pool)
    }
    async fn checkout(&self) -> Self::Guard<'_> {
        self.0.get().await.expect("never closed")
    }
}

/// bb8's `ManageConnection` for the dummy.
pub struct DummyBb8;

impl bb8::ManageConnection for DummyBb8 {
    type Connection = Dummy;
    type Error = Infallible;
    async fn connect(&self) -> Result<Dummy, Infallible> {
        Ok(Dummy::default())
    }
    async fn is_valid(&self, _: &mut Dummy) -> Result<(), Infallible> {
        Ok(())
    }
    fn has_broken(&self, _: &mut Dummy) -> bool {
        false
    }
}

/// bb8 0.9.
pub struct Bb8(bb8::Pool<DummyBb8>);

impl Contender for Bb8 {
    const NAME: &'static str = "bb8";
    type Guard<'a> = bb8::PooledConnection<'a, DummyBb8>;
    async fn build(max: usize) -> Self {
        let max = u32::try_from(max).expect("small sizes");
        let pool = bb8::Pool::builder()
            .max_size(max)
            .min_idle(Some(max))
            .build(DummyBb8)
            .await
            .expect("infallible manager");
        Bb8(pool)
    }
    async fn checkout(&self) -> Self::Guard<'_> {
        self.0.get().await.expect("infallible manager")
    }
}

/// Decomposition: the bare primitives plus the two clock reads per cycle a pool with usage
/// statistics makes (checkout stamp, return stamp).
pub struct BareClock(Arc<Bare<Dummy>>);

/// A [`BareGuard`] that reads the clock when made and again when dropped.
pub struct ClockGuard {
    inner: BareGuard<Dummy>,
    since: Instant,
}

impl std::ops::Deref for ClockGuard {
    type Target = Dummy;
    fn deref(&self) -> &Dummy {
        &self.inner
    }
}

impl DerefMut for ClockGuard {
    fn deref_mut(&mut self) -> &mut Dummy {
        &mut self.inner
    }
}

impl Drop for ClockGuard {
    fn drop(&mut self) {
        std::hint::black_box(self.since.elapsed());
    }
}

impl Contender for BareClock {
    const NAME: &'static str = "bare + 2 clock reads";
    type Guard<'a> = ClockGuard;
    async fn build(max: usize) -> Self {
        BareClock(Bare::new(max, Dummy::default))
    }
    async fn checkout(&self) -> ClockGuard {
        let since = Instant::now();
        let inner = self.0.get().await;
        ClockGuard { inner, since }
    }
}

/// Decomposition: the bare primitives with a tokio timer bounding the wait (armed only when
/// `try_acquire` fails), as any pool with a checkout timeout needs.
pub struct BareTimer(Arc<Bare<Dummy>>);

impl Contender for BareTimer {
    const NAME: &'static str = "bare + wait timer";
    type Guard<'a> = BareGuard<Dummy>;
    async fn build(max: usize) -> Self {
        BareTimer(Bare::new(max, Dummy::default))
    }
    async fn checkout(&self) -> BareGuard<Dummy> {
        self.0
            .get_within(Some(TIMEOUT))
            .await
            .expect("no timeout within a benchmark window")
    }
}
