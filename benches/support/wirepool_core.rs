//! wirepool's pool as a `pool_core` contender: `Pool::builder_for` over an in-memory manager
//! whose connection is always idle and never closed, so every return takes the synchronous
//! push-then-release path and every checkout the `try_acquire` + `pop` fast path (or the FIFO
//! wait when all are out).

use std::future::Future;
use std::time::Duration;

use wirepool::pool::{ConnState, Manage, PooledConnection};
use wirepool::Pool;

use super::contenders::{Contender, Dummy};

/// The in-memory [`Manage`] implementation.
pub struct DummyManage;

impl Manage for DummyManage {
    type Connection = Dummy;
    async fn connect(&self) -> wirepool::Result<Dummy> {
        Ok(Dummy::default())
    }
    fn state(&self, _: &Dummy) -> ConnState {
        ConnState::Idle
    }
    fn check_closed(&self, _: &mut Dummy) -> bool {
        false
    }
    async fn ping(&self, _: &mut Dummy) -> wirepool::Result<()> {
        Ok(())
    }
    async fn rollback(&self, _: &mut Dummy) -> wirepool::Result<()> {
        Ok(())
    }
    fn cancel(&self, _: &Dummy) -> impl Future<Output = ()> + Send + 'static {
        std::future::ready(())
    }
    async fn close(&self, _: Dummy) {}
}

/// wirepool, defaults except the sizes (min = max, so every connection is open before timing).
pub struct Wirepool(Pool<DummyManage>);

impl Contender for Wirepool {
    const NAME: &'static str = "wirepool";
    type Guard<'a> = PooledConnection<DummyManage>;
    async fn build(max: usize) -> Self {
        let pool = Pool::builder_for(DummyManage)
            .min_size(max)
            .max_size(max)
            .open()
            .await
            .expect("valid sizes, inside a runtime");
        pool.wait(Duration::from_secs(10))
            .await
            .expect("in-memory connects");
        Wirepool(pool)
    }
    async fn checkout(&self) -> Self::Guard<'_> {
        self.0.connection().await.expect("open pool")
    }
}
