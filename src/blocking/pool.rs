//! The blocking [`Pool`]: the async [`crate::Pool`] with each waiting call run to completion
//! on the caller's thread (`runtime.rs`); the calls that never wait are the async pool's own.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::builder::PoolBuilder;
use super::guard::PooledConnection;
use super::runtime::Driver;
use crate::error::Result;
use crate::pool::{IntoConfig, PoolStats};

/// A pool of PostgreSQL connections for synchronous code: psycopg_pool's `ConnectionPool`,
/// callable from any thread, with no `async` in sight.
///
/// It is the async [`crate::Pool`] (same settings, same semantics: FIFO waiters, one deadline
/// per checkout, background growth and maintenance, zero round trips on a clean checkout and
/// return) driven by one private thread per pool. `Pool` is an `Arc` handle: clone it freely
/// and share it between threads. Dropping the last handle closes the pool, as
/// [`close`](Pool::close) does, without waiting (the pool thread finishes closing).
///
/// The methods that wait ([`open`](PoolBuilder::open), [`wait`](Pool::wait),
/// [`connection`](Pool::connection), [`getconn`](Pool::getconn), [`check`](Pool::check),
/// [`close`](Pool::close), [`close_timeout`](Pool::close_timeout) and the guard's queries) refuse to run on a thread that is polling
/// async tasks, with [`Error::is_inside_async_runtime`](crate::Error::is_inside_async_runtime):
/// use the async pool there, or `tokio::task::spawn_blocking`. The others never block and
/// work anywhere, and dropping a pool or a guard never panics, whatever the context.
///
/// ```no_run
/// use std::time::Duration;
/// use wirepool::blocking::Pool;
///
/// let pool = Pool::builder("host=127.0.0.1 dbname=test_db user=postgres")
///     .min_size(1)
///     .max_size(5)
///     .timeout(Duration::from_secs(5))
///     .open()?;
/// pool.wait(Duration::from_secs(10))?;
/// {
///     let mut conn = pool.connection()?;
///     conn.simple_query("SELECT 1")?;
/// } // returned here, like leaving Python's `with` block
/// let conn = pool.getconn()?;
/// pool.putconn(conn)?;
/// pool.close()?;
/// # Ok::<(), wirepool::Error>(())
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Shared>,
}

struct Shared {
    // Dropped first: closing the pool starts tasks that keep the pool's thread busy until done.
    pool: crate::Pool,
    driver: Arc<Driver>,
}

impl Pool {
    /// A builder for a pool. `conninfo` is a libpq string or a [`Config`](crate::Config); a
    /// parse error surfaces from [`open`](PoolBuilder::open).
    ///
    /// ```
    /// let pool = wirepool::blocking::Pool::builder("host=/nonexistent dbname=test_db")
    ///     .min_size(0)
    ///     .max_size(2)
    ///     .open()?;
    /// assert_eq!(pool.stats().pool_max, 2);
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn builder(conninfo: impl IntoConfig) -> PoolBuilder {
        PoolBuilder::new(crate::Pool::builder(conninfo))
    }

    pub(crate) fn from_async(pool: crate::Pool, driver: Arc<Driver>) -> Pool {
        Pool {
            inner: Arc::new(Shared { pool, driver }),
        }
    }

    fn pool(&self) -> &crate::Pool {
        &self.inner.pool
    }

    fn driver(&self) -> &Arc<Driver> {
        &self.inner.driver
    }

    /// The pool's name (its thread is `wirepool-NAME` when the builder was given one).
    pub fn name(&self) -> &str {
        self.pool().name()
    }

    /// Whether [`close`](Pool::close) was called (or a [`wait`](Pool::wait) timed out).
    pub fn is_closed(&self) -> bool {
        self.pool().is_closed()
    }

    /// Blocks until `min_size` connections are open. As in psycopg_pool, a timeout closes the
    /// pool: a pool that cannot reach its minimum at startup is misconfigured.
    ///
    /// ```
    /// # let pool = wirepool::blocking::Pool::builder("host=/nonexistent").min_size(0).max_size(1).open()?;
    /// use std::time::Duration;
    /// pool.wait(Duration::from_secs(10))?; // min_size 0: at once
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    ///
    /// # Errors
    /// `PoolTimeout` (carrying the last connect error) after `timeout`; `PoolClosed`;
    /// `InsideAsyncRuntime`.
    pub fn wait(&self, timeout: Duration) -> Result<()> {
        self.driver().block_on(self.pool().wait(timeout))?
    }

    /// Checks a connection out, blocking at most the pool's `timeout`; the guard returns it
    /// when dropped (Python's `with pool.connection() as conn:`).
    ///
    /// ```
    /// use std::time::Duration;
    /// // No server there: the checkout gives up after its timeout, saying why.
    /// let pool = wirepool::blocking::Pool::builder("host=/nonexistent")
    ///     .min_size(0)
    ///     .max_size(1)
    ///     .timeout(Duration::from_millis(200))
    ///     .open()?;
    /// let err = pool.connection().unwrap_err();
    /// assert!(err.is_pool_timeout());
    /// assert!(err.pool_timeout_info().unwrap().last_connect_error.is_some());
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    ///
    /// # Errors
    /// `PoolTimeout` (with the last connect error, if connecting failed), `PoolClosed`,
    /// `TooManyRequests` when `max_waiting` requests are already waiting, or
    /// `InsideAsyncRuntime`.
    #[track_caller]
    pub fn connection(&self) -> Result<PooledConnection> {
        let conn = self.driver().block_on(self.pool().connection())??;
        Ok(PooledConnection::new(conn, Arc::clone(self.driver())))
    }

    /// [`connection`](Pool::connection) with its own timeout.
    ///
    /// # Errors
    /// As [`connection`](Pool::connection).
    #[track_caller]
    pub fn connection_timeout(&self, timeout: Duration) -> Result<PooledConnection> {
        let checkout = self.pool().connection_timeout(timeout);
        let conn = self.driver().block_on(checkout)??;
        Ok(PooledConnection::new(conn, Arc::clone(self.driver())))
    }

    /// Checks a connection out for an explicit [`putconn`](Pool::putconn). Dropping it
    /// instead still returns it, with a warning.
    ///
    /// # Errors
    /// As [`connection`](Pool::connection).
    #[track_caller]
    pub fn getconn(&self) -> Result<PooledConnection> {
        let conn = self.driver().block_on(self.pool().getconn())??;
        Ok(PooledConnection::new(conn, Arc::clone(self.driver())))
    }

    /// [`getconn`](Pool::getconn) with its own timeout.
    ///
    /// # Errors
    /// As [`connection`](Pool::connection).
    #[track_caller]
    pub fn getconn_timeout(&self, timeout: Duration) -> Result<PooledConnection> {
        let checkout = self.pool().getconn_timeout(timeout);
        let conn = self.driver().block_on(checkout)??;
        Ok(PooledConnection::new(conn, Arc::clone(self.driver())))
    }

    /// Gives a connection back. Never blocks: anything needing I/O (a rollback, a close) runs
    /// on the pool's thread. Same path as dropping the guard; works in any context.
    ///
    /// # Errors
    /// `ForeignConnection` if `conn` belongs to another pool (it is then returned to its own),
    /// or holds a connection taken out of its pool (it is then closed).
    pub fn putconn(&self, conn: PooledConnection) -> Result<()> {
        self.pool().putconn(conn.into_inner()?)
    }

    /// Pings every idle connection (one round trip each, all within one `timeout`); broken or
    /// expired ones are closed and replaced. Busy connections are left alone.
    ///
    /// # Errors
    /// `PoolClosed`; `InsideAsyncRuntime`.
    pub fn check(&self) -> Result<()> {
        self.driver().block_on(self.pool().check())?
    }

    /// Changes the sizes at run time (up to the builder's `max_size_limit`). Never blocks:
    /// surplus idle connections are closed, and new ones opened, on the pool's thread.
    ///
    /// ```
    /// # let pool = wirepool::blocking::Pool::builder("host=/nonexistent").min_size(0).max_size(2).max_size_limit(8).open()?;
    /// pool.resize(0, 8)?;
    /// assert_eq!(pool.stats().pool_max, 8);
    /// assert!(pool.resize(0, 9).unwrap_err().is_config());
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Config` if `max_size < min_size`, `max_size == 0` or `max_size > max_size_limit`.
    pub fn resize(&self, min_size: usize, max_size: usize) -> Result<()> {
        self.pool().resize(min_size, max_size)
    }

    /// Replaces every connection (psycopg_pool 3.3's `drain`): idle ones are closed now and new
    /// ones opened on the pool's thread; checked-out ones are closed when they come back. Use
    /// it after a failover or a credentials rotation. Never blocks.
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let before = pool.connection()?.backend_pid();
    /// pool.drain();
    /// assert_ne!(pool.connection()?.backend_pid(), before, "a new session");
    /// # Ok(()) }
    /// ```
    pub fn drain(&self) {
        self.pool().drain();
    }

    /// The pool's gauges and counters (psycopg's `get_stats`).
    pub fn stats(&self) -> PoolStats {
        self.pool().stats()
    }

    /// Reports the pool's gauges, counters and histogram quantiles through the `metrics`
    /// crate's recorder, labelled `pool` = the pool's name (feature `metrics`). Never blocks.
    /// See [`Pool::export_metrics`](crate::Pool::export_metrics).
    ///
    /// ```
    /// let pool = wirepool::blocking::Pool::builder("host=/nonexistent")
    ///     .name("app")
    ///     .min_size(0)
    ///     .max_size(1)
    ///     .open()?;
    /// // With a recorder installed (metrics-exporter-prometheus, ...), every few seconds:
    /// pool.export_metrics(); // wirepool_pool_size{pool="app"} 0, ...
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    #[cfg(feature = "metrics")]
    pub fn export_metrics(&self) {
        self.pool().export_metrics();
    }

    /// Like [`stats`](Pool::stats), and resets the counters (psycopg's `pop_stats`).
    pub fn pop_stats(&self) -> PoolStats {
        self.pool().pop_stats()
    }

    /// Closes the pool: threads waiting for a connection get `PoolClosed` at once, idle
    /// connections are closed before this returns, checked-out ones when they come back. A
    /// closed pool cannot be reopened.
    ///
    /// ```
    /// # let pool = wirepool::blocking::Pool::builder("host=/nonexistent").min_size(0).max_size(1).open()?;
    /// pool.close()?;
    /// assert!(pool.is_closed());
    /// assert!(pool.connection().unwrap_err().is_pool_closed());
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InsideAsyncRuntime` (the pool is then left open).
    pub fn close(&self) -> Result<()> {
        self.driver().block_on(self.pool().close())
    }

    /// Closes the pool and gives checked-out connections up to `timeout` to come back, then
    /// cancels the server work of those still out: as the async
    /// [`Pool::close_timeout`](crate::Pool::close_timeout). Returns how many it cancelled.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let pool = wirepool::blocking::Pool::builder("host=/nonexistent").min_size(0).max_size(1).open()?;
    /// assert_eq!(pool.close_timeout(Duration::from_secs(1))?, 0);
    /// assert!(pool.connection().unwrap_err().is_pool_closed());
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InsideAsyncRuntime` (the pool is then left open).
    pub fn close_timeout(&self, timeout: Duration) -> Result<usize> {
        self.driver().block_on(self.pool().close_timeout(timeout))
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::Pool").field(self.pool()).finish()
    }
}
