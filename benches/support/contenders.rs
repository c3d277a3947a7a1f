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

use super::bare::{Bare, BareGuard};

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

/// deadpool 0.13, managed (`Manager` trait; the pool deadpool-postgres is built on).
pub struct DeadpoolManaged(deadpool::managed::Pool<DummyManager>);

impl Contender for DeadpoolManaged {
    const NAME: &'static str = "deadpool managed";
    type Guard<'a> = deadpool::managed::Object<DummyManager>;
    async fn build(max: usize) -> Self {
        let pool = deadpool::managed::Pool::builder(DummyManager)
            .max_size(max)
            .build()
            .expect("no runtime-dependent option set");
        // deadpool creates lazily: hold all `max` at once so every one is open before timing.
        let mut held = Vec::with_capacity(max);
        for _ in 0..max {
            held.push(pool.get().await.expect("infallible manager"));
        }
        DeadpoolManaged(pool)
    }
    async fn checkout(&self) -> Self::Guard<'_> {
        self.0.get().await.expect("infallible manager")
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
