//! The [`Pool`] facade: a cheap-to-clone handle with psycopg_pool's `ConnectionPool` API, each
//! method a thin layer over the checkout path (`checkout.rs`), maintenance (`maintenance.rs`)
//! and the accounting core (`core.rs`).

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::builder::PoolBuilder;
use super::checkout::checkout;
use super::clock::deadline;
use super::core::Core;
use super::guard::PooledConnection;
use super::maintenance;
use super::manage::Manage;
use super::postgres::{IntoConfig, PgManager};
use super::settings::check_sizes;
use super::stats::PoolStats;
use crate::error::{Error, Result};

/// A pool of connections, psycopg_pool's `ConnectionPool` in Rust: FIFO waiters, one deadline
/// per checkout, background growth capped by `max_connecting`, background maintenance, zero
/// round trips on a clean checkout and return.
///
/// `Pool` is an `Arc` handle: clone it freely. Dropping the last handle closes the pool
/// (connections still checked out are closed when they come back).
///
/// ```no_run
/// # async fn demo() -> wirepool::Result<()> {
/// use std::time::Duration;
/// let pool = wirepool::Pool::builder("host=127.0.0.1 dbname=test_db user=postgres")
///     .min_size(1).max_size(5).open().await?;
/// pool.wait(Duration::from_secs(10)).await?;
/// {
///     let mut conn = pool.connection().await?;
///     conn.simple_query("SELECT 1").await?;
/// } // returned here
/// let conn = pool.getconn().await?;
/// pool.putconn(conn)?;
/// pool.close().await;
/// # Ok(()) }
/// ```
pub struct Pool<M: Manage = PgManager> {
    core: Arc<Core<M>>,
    owner: Arc<Owner<M>>,
}

/// Shared by the handles only (not by guards or tasks): the last handle's drop closes.
struct Owner<M: Manage>(Arc<Core<M>>);

impl<M: Manage> Drop for Owner<M> {
    fn drop(&mut self) {
        if self.0.mark_closed() {
            self.0.drain_idle();
        }
    }
}

impl<M: Manage> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            core: Arc::clone(&self.core),
            owner: Arc::clone(&self.owner),
        }
    }
}

impl Pool<PgManager> {
    /// A builder for a PostgreSQL pool. `conninfo` is a libpq string or a
    /// [`Config`](crate::Config), checked now (every value, as a connect would: the
    /// environment and `.pgpass` included), so a mistake fails `open` at once rather than each
    /// checkout after its timeout.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let err = wirepool::Pool::builder("host=localhost port=notaport").open().await.unwrap_err();
    /// assert!(err.is_config());
    /// # });
    /// ```
    pub fn builder(conninfo: impl IntoConfig) -> PoolBuilder<PgManager> {
        PoolBuilder::new(conninfo.into_config().and_then(PgManager::checked))
    }
}

impl<M: Manage> Pool<M> {
    /// A builder for a pool of any [`Manage`] implementation (see its example).
    pub fn builder_for(manager: M) -> PoolBuilder<M> {
        PoolBuilder::new(Ok(manager))
    }

    pub(crate) fn from_core(core: Arc<Core<M>>) -> Self {
        Pool {
            owner: Arc::new(Owner(Arc::clone(&core))),
            core,
        }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// Whether [`close`](Pool::close) was called (or every handle dropped).
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// Waits until `min_size` connections are open. As in psycopg_pool, a timeout closes the
    /// pool: a pool that cannot reach its minimum at startup is misconfigured.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping it stops waiting and changes nothing.
    ///
    /// # Errors
    /// `PoolTimeout` (carrying the last connect error, e.g. "password authentication
    /// failed") after `timeout`; `PoolClosed` if the pool is closed.
    pub async fn wait(&self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let deadline = deadline(start, timeout);
        loop {
            let notified = self.core.events().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.core.is_closed() {
                return Err(Error::pool_closed());
            }
            let s = self.core.stats(false);
            if s.pool_size.saturating_sub(s.connecting) >= s.pool_min {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let e = self.core.timeout_error(start);
                self.close().await;
                return Err(e);
            }
        }
    }

    /// Checks a connection out, waiting at most the pool's `timeout`; the guard returns it
    /// when dropped.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future at any point gives up its place in the queue and
    /// loses neither a permit nor a connection (a connect it triggered completes in the
    /// background and the connection goes to the next waiter).
    ///
    /// # Errors
    /// `PoolTimeout` (with the last connect error, if connecting failed), `PoolClosed`, or
    /// `TooManyRequests` when `max_waiting` requests are already waiting.
    ///
    /// The caller's location is the checkout's call site in leak reports
    /// ([`PoolBuilder::leak_detection_threshold`]).
    #[track_caller]
    pub fn connection(&self) -> impl Future<Output = Result<PooledConnection<M>>> + '_ {
        checkout(&self.core, self.core.settings().timeout, Location::caller())
    }

    /// [`connection`](Pool::connection) with its own timeout.
    ///
    /// # Cancel safety
    /// As [`connection`](Pool::connection).
    ///
    /// # Errors
    /// As [`connection`](Pool::connection).
    #[track_caller]
    pub fn connection_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<PooledConnection<M>>> + '_ {
        checkout(&self.core, timeout, Location::caller())
    }

    /// Checks a connection out for an explicit [`putconn`](Pool::putconn). Dropping it
    /// instead still returns it, with a warning.
    ///
    /// # Cancel safety
    /// As [`connection`](Pool::connection).
    ///
    /// # Errors
    /// As [`connection`](Pool::connection).
    #[track_caller]
    pub fn getconn(&self) -> impl Future<Output = Result<PooledConnection<M>>> + '_ {
        self.getconn_timeout(self.core.settings().timeout)
    }

    /// [`getconn`](Pool::getconn) with its own timeout.
    ///
    /// # Cancel safety
    /// As [`connection`](Pool::connection).
    ///
    /// # Errors
    /// As [`connection`](Pool::connection).
    #[track_caller]
    pub fn getconn_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<PooledConnection<M>>> + '_ {
        let checkout = checkout(&self.core, timeout, Location::caller());
        async move {
            let mut conn = checkout.await?;
            conn.set_explicit(true);
            Ok(conn)
        }
    }

    /// Gives a connection back. Synchronous and non-blocking: anything needing I/O (rollback,
    /// closing) runs in the background. Same path as dropping the guard.
    ///
    /// ```
    /// # use wirepool::pool::{ConnState, Manage};
    /// # struct Counter;
    /// # impl Manage for Counter {
    /// #     type Connection = u32;
    /// #     async fn connect(&self) -> wirepool::Result<u32> { Ok(0) }
    /// #     fn state(&self, _: &u32) -> ConnState { ConnState::Idle }
    /// #     fn check_closed(&self, _: &mut u32) -> bool { false }
    /// #     async fn ping(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     async fn rollback(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     fn cancel(&self, _: &u32) -> impl std::future::Future<Output = ()> + Send + 'static {
    /// #         async {}
    /// #     }
    /// #     async fn close(&self, _: u32) {}
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let pool = wirepool::Pool::builder_for(Counter).max_size(1).open().await?;
    /// let other = wirepool::Pool::builder_for(Counter).max_size(1).open().await?;
    /// let conn = pool.getconn().await?;
    /// assert!(other.putconn(conn).unwrap_err().is_foreign_connection());
    /// let conn = pool.getconn().await?; // the foreign put went back to its own pool
    /// pool.putconn(conn)?;
    /// # Ok::<(), wirepool::Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    /// `ForeignConnection` if `conn` belongs to another pool; it is then returned to its own.
    pub fn putconn(&self, mut conn: PooledConnection<M>) -> Result<()> {
        conn.set_explicit(false);
        match conn.core() {
            Some(core) if Arc::ptr_eq(core, &self.core) => {
                drop(conn);
                Ok(())
            }
            _ => Err(Error::foreign_connection()),
        }
    }

    /// Pings every idle connection (one round trip each, all within one `timeout`); broken or
    /// expired ones are closed and replaced (psycopg's `check`).
    ///
    /// Each connection is pinged under a permit, like a checkout, so concurrent checkouts see
    /// it as in use rather than as room to open another. If no permit is free (the pool is
    /// busy), or the `timeout` is reached, the rest are left for later: in use, they are
    /// checked by use.
    ///
    /// ```
    /// # use wirepool::pool::{ConnState, Manage};
    /// # struct Counter;
    /// # impl Manage for Counter {
    /// #     type Connection = u32;
    /// #     async fn connect(&self) -> wirepool::Result<u32> { Ok(0) }
    /// #     fn state(&self, _: &u32) -> ConnState { ConnState::Idle }
    /// #     fn check_closed(&self, _: &mut u32) -> bool { false }
    /// #     async fn ping(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     async fn rollback(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     fn cancel(&self, _: &u32) -> impl std::future::Future<Output = ()> + Send + 'static {
    /// #         async {}
    /// #     }
    /// #     async fn close(&self, _: u32) {}
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let pool = wirepool::Pool::builder_for(Counter).min_size(2).open().await?;
    /// pool.wait(std::time::Duration::from_secs(1)).await?;
    /// pool.check().await?;
    /// assert_eq!(pool.stats().pool_available, 2);
    /// # Ok::<(), wirepool::Error>(()) }).unwrap();
    /// ```
    ///
    /// # Cancel safety
    /// Cancel-safe: a connection being pinged when the future is dropped is closed (its
    /// state is unknown) and replaced; the others stay idle.
    ///
    /// # Errors
    /// `PoolClosed` if the pool is closed.
    pub async fn check(&self) -> Result<()> {
        maintenance::check(&self.core).await
    }

    /// Replaces every connection (psycopg_pool 3.3's `drain`, HikariCP's
    /// `softEvictConnections`): idle ones are closed now and new ones opened in the background
    /// (up to `min_size`, and as checkouts need them); checked-out ones are closed when they
    /// come back. Use it after a failover or a credentials rotation, so no connection from
    /// before stays in use. Nothing waits: the pool keeps serving meanwhile.
    ///
    /// ```
    /// # use wirepool::pool::{ConnState, Manage};
    /// # struct Counter(std::sync::atomic::AtomicU32);
    /// # impl Manage for Counter {
    /// #     type Connection = u32;
    /// #     async fn connect(&self) -> wirepool::Result<u32> {
    /// #         Ok(self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
    /// #     }
    /// #     fn state(&self, _: &u32) -> ConnState { ConnState::Idle }
    /// #     fn check_closed(&self, _: &mut u32) -> bool { false }
    /// #     async fn ping(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     async fn rollback(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     fn cancel(&self, _: &u32) -> impl std::future::Future<Output = ()> + Send + 'static {
    /// #         async {}
    /// #     }
    /// #     async fn close(&self, _: u32) {}
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let pool = wirepool::Pool::builder_for(Counter(0.into())).max_size(1).open().await?;
    /// let before = *pool.connection().await?;
    /// pool.drain();
    /// let after = *pool.connection().await?;
    /// assert_ne!(before, after, "a new connection");
    /// assert_eq!(pool.stats().connections_drained, 1);
    /// # Ok::<(), wirepool::Error>(()) }).unwrap();
    /// ```
    pub fn drain(&self) {
        self.core.drain();
    }

    /// Changes the sizes at run time. `max_size` may go up to the builder's `max_size_limit`.
    /// Shrinking closes surplus idle connections now and surplus busy ones as they return.
    ///
    /// ```
    /// # use wirepool::pool::{ConnState, Manage};
    /// # struct Counter;
    /// # impl Manage for Counter {
    /// #     type Connection = u32;
    /// #     async fn connect(&self) -> wirepool::Result<u32> { Ok(0) }
    /// #     fn state(&self, _: &u32) -> ConnState { ConnState::Idle }
    /// #     fn check_closed(&self, _: &mut u32) -> bool { false }
    /// #     async fn ping(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     async fn rollback(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     fn cancel(&self, _: &u32) -> impl std::future::Future<Output = ()> + Send + 'static {
    /// #         async {}
    /// #     }
    /// #     async fn close(&self, _: u32) {}
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let pool = wirepool::Pool::builder_for(Counter).max_size(2).max_size_limit(8).open().await?;
    /// pool.resize(1, 8)?;
    /// assert_eq!(pool.stats().pool_max, 8);
    /// assert!(pool.resize(1, 9).unwrap_err().is_config(), "above max_size_limit");
    /// # Ok::<(), wirepool::Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    /// `Config` if `max_size < min_size`, `max_size == 0` or `max_size > max_size_limit`.
    pub fn resize(&self, min_size: usize, max_size: usize) -> Result<()> {
        check_sizes(min_size, max_size, self.core.settings().capacity)?;
        self.core.resize(min_size, max_size);
        Ok(())
    }

    /// The pool's gauges and counters (psycopg's `get_stats`). A close approximation under
    /// load, not an atomic snapshot.
    ///
    /// ```
    /// # use wirepool::pool::{ConnState, Manage};
    /// # struct Counter;
    /// # impl Manage for Counter {
    /// #     type Connection = u32;
    /// #     async fn connect(&self) -> wirepool::Result<u32> { Ok(0) }
    /// #     fn state(&self, _: &u32) -> ConnState { ConnState::Idle }
    /// #     fn check_closed(&self, _: &mut u32) -> bool { false }
    /// #     async fn ping(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     async fn rollback(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     fn cancel(&self, _: &u32) -> impl std::future::Future<Output = ()> + Send + 'static {
    /// #         async {}
    /// #     }
    /// #     async fn close(&self, _: u32) {}
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let pool = wirepool::Pool::builder_for(Counter).max_size(2).open().await?;
    /// drop(pool.connection().await?);
    /// let stats = pool.stats();
    /// assert_eq!((stats.pool_max, stats.requests_num), (2, 1));
    /// println!("{stats}"); // size 2/2 (min 2), idle 2, waiting 0, requests 1, ...
    /// # Ok::<(), wirepool::Error>(()) }).unwrap();
    /// ```
    pub fn stats(&self) -> PoolStats {
        self.core.stats(false)
    }

    /// Like [`stats`](Pool::stats), and resets the counters (psycopg's `pop_stats`).
    pub fn pop_stats(&self) -> PoolStats {
        self.core.stats(true)
    }

    /// Closes the pool: waiters get `PoolClosed` at once, idle connections are closed now,
    /// checked-out ones when they come back, background tasks stop. A closed pool cannot be
    /// reopened.
    ///
    /// # Cancel safety
    /// Cancel-safe: the pool is closed at the first poll; connections not yet closed when the
    /// future is dropped are closed in the background.
    pub async fn close(&self) {
        self.core.mark_closed();
        self.core.close_idle().await;
    }

    /// Closes the pool and gives checked-out connections up to `timeout` to come back
    /// (psycopg_pool's `close(timeout)`): new and waiting checkouts fail with `PoolClosed` at
    /// once and idle connections are closed, as [`close`](Pool::close) does; then it waits until
    /// every connection is closed. Connections still checked out when `timeout` runs out have
    /// their server work cancelled (a CancelRequest each, sent side by side, each bounded at
    /// 5 s), so a query the application still runs ends with `57014 query_canceled` and its
    /// guard brings the connection back to be closed. Returns how many connections it
    /// cancelled (0: every connection came back in time).
    ///
    /// ```
    /// # use wirepool::pool::{ConnState, Manage};
    /// # struct Counter;
    /// # impl Manage for Counter {
    /// #     type Connection = u32;
    /// #     async fn connect(&self) -> wirepool::Result<u32> { Ok(0) }
    /// #     fn state(&self, _: &u32) -> ConnState { ConnState::Idle }
    /// #     fn check_closed(&self, _: &mut u32) -> bool { false }
    /// #     async fn ping(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     async fn rollback(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     fn cancel(&self, _: &u32) -> impl std::future::Future<Output = ()> + Send + 'static {
    /// #         async {}
    /// #     }
    /// #     async fn close(&self, _: u32) {}
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// let pool = wirepool::Pool::builder_for(Counter).max_size(2).open().await?;
    /// let held = pool.connection().await?;
    /// let worker = tokio::spawn(async move {
    ///     tokio::time::sleep(Duration::from_millis(10)).await;
    ///     drop(held); // the work ends in time
    /// });
    /// assert_eq!(pool.close_timeout(Duration::from_secs(5)).await, 0, "nothing to cancel");
    /// assert!(pool.connection().await.unwrap_err().is_pool_closed());
    /// # worker.await.unwrap();
    /// # Ok::<(), wirepool::Error>(()) }).unwrap();
    /// ```
    ///
    /// # Cancel safety
    /// Cancel-safe: the pool is closed at the first poll; dropped while waiting, it cancels
    /// nothing; CancelRequests already sent run to their end in the background.
    pub async fn close_timeout(&self, timeout: Duration) -> usize {
        self.core.close_within(timeout).await
    }
}

impl<M: Manage> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name())
            .field("closed", &self.is_closed())
            .field("stats", &self.core.stats(false))
            .finish()
    }
}
