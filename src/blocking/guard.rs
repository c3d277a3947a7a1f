//! The blocking [`PooledConnection`] (a checked-out connection whose queries block) and its
//! [`CancelToken`].
//!
//! The guard is the async guard plus a share of the pool's thread: dropping it, on any thread
//! and in any context, takes the async guard's one return path (no network I/O in `Drop`; a
//! rollback it needs runs on the runtime the pool was opened on, the pool's thread).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::runtime::Driver;
use crate::conn::{Notification, Row, ToParam};
use crate::error::Result;
use crate::wire::BackendKey;
use crate::TransactionStatus;

/// A connection checked out of a blocking [`Pool`](super::Pool); it goes back to the pool
/// when dropped (the end of a scope is Python's end of a `with` block).
///
/// `Send`: it may be moved to, used on and dropped on another thread. A guard from
/// [`getconn`](super::Pool::getconn) should go back with [`putconn`](super::Pool::putconn);
/// dropping it still returns it, with a warning.
///
/// ```no_run
/// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
/// let mut conn = pool.connection()?;
/// let rows = conn.simple_query("SELECT 1, NULL")?;
/// assert_eq!(rows[0].get(0), Some("1"));
/// drop(conn); // back in the pool, no network I/O in drop
/// # Ok(()) }
/// ```
#[must_use = "dropping the guard returns the connection at once"]
#[clippy::has_significant_drop]
pub struct PooledConnection {
    // Dropped first: a task its return starts keeps the pool's thread busy until it is done.
    conn: crate::PooledConnection,
    driver: Arc<Driver>,
}

impl PooledConnection {
    pub(crate) fn new(conn: crate::PooledConnection, driver: Arc<Driver>) -> Self {
        PooledConnection { conn, driver }
    }

    /// The async guard (for `putconn`).
    pub(crate) fn into_inner(self) -> crate::PooledConnection {
        self.conn
    }

    /// The connection and the driver that polls its calls, borrowed together.
    pub(crate) fn parts(&mut self) -> (&mut crate::Connection, &Driver) {
        (&mut self.conn, &self.driver)
    }

    /// Runs a simple query and blocks until it completes; returns every data row of every
    /// statement, in order. See [`Connection::simple_query`](crate::Connection::simple_query).
    ///
    /// # Errors
    /// A server error ([`Error::is_db`](crate::Error::is_db); the connection stays usable), an
    /// I/O or protocol error (it is then broken and the pool discards it), or
    /// `InsideAsyncRuntime`.
    pub fn simple_query(&mut self, sql: &str) -> Result<Vec<Row>> {
        self.driver.block_on(self.conn.simple_query(sql))?
    }

    /// Runs `sql` with `params` over the extended protocol and blocks until it completes. See
    /// [`Connection::query`](crate::Connection::query).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let mut conn = pool.connection()?;
    /// let rows = conn.query("SELECT $1::int4 + 1", &[&41])?;
    /// assert_eq!(rows[0].try_get::<i32, _>(0)?, 42);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Connection::query`](crate::Connection::query), or `InsideAsyncRuntime`.
    pub fn query(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Vec<Row>> {
        self.driver.block_on(self.conn.query(sql, params))?
    }

    /// [`query`](PooledConnection::query) for exactly one row. See
    /// [`Connection::query_one`](crate::Connection::query_one).
    ///
    /// # Errors
    /// As [`Connection::query_one`](crate::Connection::query_one), or `InsideAsyncRuntime`.
    pub fn query_one(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Row> {
        self.driver.block_on(self.conn.query_one(sql, params))?
    }

    /// [`query`](PooledConnection::query) for at most one row. See
    /// [`Connection::query_opt`](crate::Connection::query_opt).
    ///
    /// # Errors
    /// As [`Connection::query_opt`](crate::Connection::query_opt), or `InsideAsyncRuntime`.
    pub fn query_opt(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Option<Row>> {
        self.driver.block_on(self.conn.query_opt(sql, params))?
    }

    /// Runs `sql` with `params` and returns the number of rows it affected. See
    /// [`Connection::execute`](crate::Connection::execute).
    ///
    /// # Errors
    /// As [`Connection::execute`](crate::Connection::execute), or `InsideAsyncRuntime`.
    pub fn execute(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<u64> {
        self.driver.block_on(self.conn.execute(sql, params))?
    }

    /// A token that cancels this connection's running query from another thread. While the
    /// token is alive the pool will not reuse the connection (see
    /// [`Connection::cancel_requested`](crate::Connection::cancel_requested)): drop it when
    /// the query it guards is done.
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken {
            token: self.conn.cancel_token(),
            driver: Arc::clone(&self.driver),
        }
    }

    /// The server backend's process id (0 if the server sent no BackendKeyData).
    pub fn backend_pid(&self) -> i32 {
        self.conn.backend_pid()
    }

    /// BackendKeyData as sent by the server, if it sent one.
    pub fn backend_key(&self) -> Option<BackendKey> {
        self.conn.backend_key()
    }

    /// The transaction status from the last ReadyForQuery.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.conn.transaction_status()
    }

    /// A server parameter reported by ParameterStatus (`server_version`, `TimeZone`, ...).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.conn.parameter(name)
    }

    /// Every server parameter reported so far.
    pub fn parameters(&self) -> &HashMap<String, String> {
        self.conn.parameters()
    }

    /// `server_version_num` derived from `server_version` (`"15.20"` → 150020).
    pub fn server_version_num(&self) -> Option<u32> {
        self.conn.server_version_num()
    }

    /// Whether an I/O or protocol error has made the connection unusable.
    pub fn is_broken(&self) -> bool {
        self.conn.is_broken()
    }

    /// Whether a CancelRequest was sent for this connection, or a [`CancelToken`] for it is
    /// still alive.
    pub fn cancel_requested(&self) -> bool {
        self.conn.cancel_requested()
    }

    /// Notifications received so far, oldest first, up to the first loss: see
    /// [`Connection::take_notifications`](crate::Connection::take_notifications).
    ///
    /// # Errors
    /// [`Error::is_notifications_lost`](crate::Error::is_notifications_lost) if notifications
    /// were dropped before the oldest one still buffered.
    pub fn take_notifications(&mut self) -> crate::Result<Vec<Notification>> {
        self.conn.take_notifications()
    }
}

impl fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::PooledConnection")
            .field(&self.conn)
            .finish()
    }
}

/// Cancels the query running on a connection, from any thread: the blocking
/// [`crate::CancelToken`]. `Clone + Send + Sync`.
///
/// ```no_run
/// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
/// let mut conn = pool.connection()?;
/// let token = conn.cancel_token();
/// let canceller = std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_millis(100));
///     token.cancel()
/// });
/// let err = conn.simple_query("SELECT pg_sleep(10)").unwrap_err();
/// assert_eq!(err.code(), Some("57014")); // query_canceled
/// canceller.join().unwrap()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CancelToken {
    token: crate::CancelToken,
    driver: Arc<Driver>,
}

impl CancelToken {
    /// Asks the server to cancel the connection's running query, and blocks until the server
    /// has taken the request (it closes the cancel connection). See
    /// [`crate::CancelToken::cancel`].
    ///
    /// # Errors
    /// If the server cannot be reached in time; `Unsupported` if it sent no BackendKeyData;
    /// `InsideAsyncRuntime`.
    pub fn cancel(&self) -> Result<()> {
        self.driver.block_on(self.token.cancel())?
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::CancelToken")
            .field(&self.token)
            .finish()
    }
}
