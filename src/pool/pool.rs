//! The [`Pool`] facade: a cheap-to-clone handle with psycopg_pool's `ConnectionPool` API.
//! Every method is a thin layer over the accounting core (`core.rs`, `checkout.rs`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::TryAcquireError;
use tokio::time::Instant;

use super::builder::{IntoConfig, PoolBuilder};
use super::core::{deadline, Core, Live, Permit};
use super::guard::PooledConnection;
use super::manage::Manage;
use super::postgres::PgManager;
use super::stats::{bump, PoolStats};
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
    /// [`Config`](crate::Config); a parse error surfaces from `open`.
    ///
    /// ```no_run
    /// # async fn demo() -> wirepool::Result<()> {
    /// let pool = wirepool::Pool::builder("host=127.0.0.1 dbname=test_db").open().await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(conninfo: impl IntoConfig) -> PoolBuilder<PgManager> {
        PoolBuilder::new(conninfo.into_config().map(PgManager::new))
    }
}

impl<M: Manage> Pool<M> {
    /// A builder for a pool of any [`Manage`] implementation.
    pub fn with_manager(manager: M) -> PoolBuilder<M> {
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
            let notified = self.core.events.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.core.is_closed() {
                return Err(Error::pool_closed());
            }
            let s = self.core.gauges();
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
    pub async fn connection(&self) -> Result<PooledConnection<M>> {
        self.core.checkout(self.core.settings.timeout).await
    }

    /// [`connection`](Pool::connection) with its own timeout.
    ///
    /// # Cancel safety
    /// As [`connection`](Pool::connection).
    ///
    /// # Errors
    /// As [`connection`](Pool::connection).
    pub async fn connection_timeout(&self, timeout: Duration) -> Result<PooledConnection<M>> {
        self.core.checkout(timeout).await
    }

    /// Checks a connection out for an explicit [`putconn`](Pool::putconn). Dropping it
    /// instead still returns it, with a warning.
    ///
    /// # Cancel safety
    /// As [`connection`](Pool::connection).
    ///
    /// # Errors
    /// As [`connection`](Pool::connection).
    pub async fn getconn(&self) -> Result<PooledConnection<M>> {
        self.getconn_timeout(self.core.settings.timeout).await
    }

    /// [`getconn`](Pool::getconn) with its own timeout.
    ///
    /// # Cancel safety
    /// As [`connection`](Pool::connection).
    ///
    /// # Errors
    /// As [`connection`](Pool::connection).
    pub async fn getconn_timeout(&self, timeout: Duration) -> Result<PooledConnection<M>> {
        let mut conn = self.core.checkout(timeout).await?;
        conn.set_explicit(true);
        Ok(conn)
    }

    /// Gives a connection back. Synchronous and non-blocking: anything needing I/O (rollback,
    /// closing) runs in the background. Same path as dropping the guard.
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
    /// expired ones are closed and replaced.
    ///
    /// Each connection is pinged under a permit, like a checkout, so concurrent checkouts see
    /// it as in use rather than as room to open another. If no permit is free (the pool is
    /// busy), or the `timeout` is reached, the rest are left for later: in use, they are
    /// checked by use.
    ///
    /// # Cancel safety
    /// Cancel-safe: a connection being pinged when the future is dropped is closed (its
    /// state is unknown) and replaced; the others stay idle.
    ///
    /// # Errors
    /// `PoolClosed` if the pool is closed.
    pub async fn check(&self) -> Result<()> {
        let core = &self.core;
        let deadline = deadline(Instant::now(), core.settings.timeout);
        for _ in 0..core.idle_count() {
            let _permit = match core.permits.try_acquire() {
                Ok(()) => Permit::adopt(Arc::clone(core)),
                Err(TryAcquireError::Closed) => return Err(Error::pool_closed()),
                Err(TryAcquireError::NoPermits) => break,
            };
            let Some(slot) = core.try_pop() else { break };
            let mut live = Live::new(Arc::clone(core), slot);
            if live.slot_mut().is_some_and(|s| s.expired(core.clock.now())) {
                continue; // `live` drops: closed, and `min_size` refilled; then the permit
            }
            let ping = core.manager.ping(live.conn_mut());
            match tokio::time::timeout_at(deadline, ping).await {
                Ok(Ok(())) => live.into_idle(), // invariant 3: pushed before `_permit` drops
                Ok(Err(_)) => {
                    bump(&core.counters.here().connections_lost);
                    tracing::warn!(pool = %core.name(), "idle connection failed its check; replacing");
                }
                Err(_) => {
                    tracing::warn!(pool = %core.name(), "check() reached the pool's timeout; closing the connection being pinged");
                    break;
                }
            }
        }
        if core.is_closed() {
            return Err(Error::pool_closed());
        }
        Ok(())
    }

    /// Changes the sizes at run time. `max_size` may go up to the builder's `max_size_limit`.
    /// Shrinking closes surplus idle connections now and surplus busy ones as they return.
    ///
    /// # Errors
    /// `Config` if `max_size < min_size`, `max_size == 0` or `max_size > max_size_limit`.
    pub fn resize(&self, min_size: usize, max_size: usize) -> Result<()> {
        if max_size == 0 || max_size < min_size || max_size > self.core.settings.capacity {
            return Err(Error::config(format!(
                "invalid pool sizes: min_size {min_size}, max_size {max_size} (limit {})",
                self.core.settings.capacity
            )));
        }
        self.core.resize(min_size, max_size);
        Ok(())
    }

    /// The pool's gauges and counters (psycopg's `get_stats`). A close approximation under
    /// load, not an atomic snapshot.
    pub fn stats(&self) -> PoolStats {
        let mut s = self.core.gauges();
        self.core.counters.fill(&mut s, false);
        s
    }

    /// Like [`stats`](Pool::stats), and resets the counters (psycopg's `pop_stats`).
    pub fn pop_stats(&self) -> PoolStats {
        let mut s = self.core.gauges();
        self.core.counters.fill(&mut s, true);
        s
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
        let mut idle = Vec::new();
        while let Some(slot) = self.core.try_pop() {
            idle.push(Live::new(Arc::clone(&self.core), slot));
        }
        // Taken out first, so whatever is left when this future is dropped is still closed,
        // by the `Live` guards' drop.
        for live in idle {
            live.close().await;
        }
    }
}

impl<M: Manage> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name())
            .field("closed", &self.is_closed())
            .field("stats", &self.core.gauges())
            .finish()
    }
}
