//! The blocking [`Connection`]: a session whose calls block, with the async
//! [`crate::Connection`]'s methods. A checked-out
//! [`PooledConnection`](super::PooledConnection) derefs to one, as the async guard derefs to
//! the async connection; [`PooledConnection::take`](super::PooledConnection::take) makes one
//! the caller's own.
//!
//! Invariant: a `Connection` shares the [`Driver`] whose runtime its socket is registered with
//! (its pool's, or the thread a [`Listener::connect`](super::Listener::connect) started),
//! whose I/O driver wakes every call; so a connection taken out of the pool keeps that thread
//! running after the last pool handle is gone.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::guard::CancelToken;
use super::runtime::Driver;
use crate::config::TargetSessionAttrs;
use crate::conn::{Notification, Row, ToParam};
use crate::error::{Error, Result};
use crate::wire::BackendKey;
use crate::TransactionStatus;

/// A connection whose queries block the calling thread until they complete: the deref target
/// of a blocking [`PooledConnection`](super::PooledConnection), or a connection
/// [taken](super::PooledConnection::take) out of the pool. `Send + Sync`.
///
/// ```no_run
/// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
/// use wirepool::blocking::{Connection, PooledConnection};
/// let mut conn: Connection = PooledConnection::take(pool.connection()?);
/// conn.simple_query("SET application_name = 'batch'")?; // no reset: it left the pool
/// conn.close()?;
/// # Ok(()) }
/// ```
pub struct Connection {
    // Dropped first: a task its return starts keeps the pool's thread busy until it is done.
    held: Held,
    driver: Arc<Driver>,
}

enum Held {
    /// Checked out: dropping the guard returns it to the pool.
    Pooled(crate::PooledConnection),
    /// Taken out of the pool: the caller's own; dropped, its socket is closed.
    Taken(crate::Connection),
}

impl Connection {
    pub(crate) fn pooled(conn: crate::PooledConnection, driver: Arc<Driver>) -> Self {
        Connection {
            held: Held::Pooled(conn),
            driver,
        }
    }

    /// The async guard (for `putconn`).
    ///
    /// # Errors
    /// `ForeignConnection` if this connection was taken out of its pool.
    pub(crate) fn into_pooled(self) -> Result<crate::PooledConnection> {
        match self.held {
            Held::Pooled(conn) => Ok(conn),
            Held::Taken(_) => Err(Error::foreign_connection()),
        }
    }

    /// This connection out of its pool for good (see
    /// [`PooledConnection::take`](super::PooledConnection::take)), and the driver that polls
    /// its calls.
    pub(crate) fn into_taken(self) -> (crate::Connection, Arc<Driver>) {
        let conn = match self.held {
            Held::Pooled(conn) => crate::PooledConnection::take(conn),
            Held::Taken(conn) => conn,
        };
        (conn, self.driver)
    }

    pub(crate) fn taken(conn: crate::Connection, driver: Arc<Driver>) -> Self {
        Connection {
            held: Held::Taken(conn),
            driver,
        }
    }

    fn conn(&self) -> &crate::Connection {
        match &self.held {
            Held::Pooled(conn) => conn,
            Held::Taken(conn) => conn,
        }
    }

    /// The connection and the driver that polls its calls, borrowed together.
    pub(crate) fn parts(&mut self) -> (&mut crate::Connection, &Driver) {
        let conn = match &mut self.held {
            Held::Pooled(conn) => &mut **conn,
            Held::Taken(conn) => conn,
        };
        (conn, &self.driver)
    }

    /// Runs a simple query and blocks until it completes; returns every data row of every
    /// statement, in order. See [`Connection::simple_query`](crate::Connection::simple_query).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let mut conn = pool.connection()?;
    /// let rows = conn.simple_query("SELECT 1, NULL")?;
    /// assert_eq!((rows[0].get(0), rows[0].get(1)), (Some("1"), None));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A server error ([`Error::is_db`]; the connection stays usable), an I/O or protocol
    /// error (it is then broken and the pool discards it), or `InsideAsyncRuntime`.
    pub fn simple_query(&mut self, sql: &str) -> Result<Vec<Row>> {
        let (conn, driver) = self.parts();
        driver.block_on(conn.simple_query(sql))?
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
        let (conn, driver) = self.parts();
        driver.block_on(conn.query(sql, params))?
    }

    /// [`query`](Connection::query) for exactly one row; blocks until it completes. See
    /// [`Connection::query_one`](crate::Connection::query_one).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let row = pool.connection()?.query_one("SELECT $1::text", &[&"x"])?;
    /// assert_eq!(row.try_get::<&str, _>(0)?, "x");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Connection::query_one`](crate::Connection::query_one), or `InsideAsyncRuntime`.
    pub fn query_one(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Row> {
        let (conn, driver) = self.parts();
        driver.block_on(conn.query_one(sql, params))?
    }

    /// [`query`](Connection::query) for at most one row; blocks until it completes. See
    /// [`Connection::query_opt`](crate::Connection::query_opt).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let none = pool.connection()?.query_opt("SELECT 1 WHERE $1::bool", &[&false])?;
    /// assert!(none.is_none());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Connection::query_opt`](crate::Connection::query_opt), or `InsideAsyncRuntime`.
    pub fn query_opt(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Option<Row>> {
        let (conn, driver) = self.parts();
        driver.block_on(conn.query_opt(sql, params))?
    }

    /// Runs `sql` with `params`, blocks until it completes, and returns the number of rows it
    /// affected. See [`Connection::execute`](crate::Connection::execute).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let n = pool.connection()?.execute("SELECT generate_series(1, $1::int4)", &[&3])?;
    /// assert_eq!(n, 3);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Connection::execute`](crate::Connection::execute), or `InsideAsyncRuntime`.
    pub fn execute(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<u64> {
        let (conn, driver) = self.parts();
        driver.block_on(conn.execute(sql, params))?
    }

    /// The next notification, blocking the thread until one arrives or `timeout` has passed
    /// (`Ok(None)`): a buffered one first, else the next the server sends, read from the
    /// socket while the connection is idle. The session must have run `LISTEN` for its
    /// channels. `Duration::ZERO` only looks at what has already arrived. See
    /// [`Connection::next_notification`](crate::Connection::next_notification); a timeout
    /// loses nothing.
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// use std::time::Duration;
    /// let mut conn = pool.connection()?;
    /// conn.simple_query("LISTEN jobs")?;
    /// while let Some(n) = conn.next_notification(Duration::from_secs(5))? {
    ///     println!("job {}", n.payload);
    /// } // five seconds without one
    /// # Ok(()) }
    /// ```
    ///
    /// Inside a transaction block it waits out the timeout: PostgreSQL delivers notifications
    /// only between transactions.
    ///
    /// # Errors
    /// [`Error::is_notifications_lost`] in the place of notifications dropped because the
    /// buffer was full (the connection stays usable); the server closing the session, an I/O
    /// or protocol error (the connection is then broken); `InsideAsyncRuntime`.
    pub fn next_notification(&mut self, timeout: Duration) -> Result<Option<Notification>> {
        let (conn, driver) = self.parts();
        driver
            .block_on_timeout(conn.next_notification(), timeout)?
            .transpose()
    }

    /// Notifications received so far, oldest first, up to the first loss; never blocks. See
    /// [`Connection::take_notifications`](crate::Connection::take_notifications).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let mut conn = pool.connection()?;
    /// conn.simple_query("LISTEN jobs; NOTIFY jobs, 'one'")?;
    /// assert_eq!(conn.take_notifications()?[0].payload, "one");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::is_notifications_lost`] if notifications were dropped before the oldest one
    /// still buffered.
    pub fn take_notifications(&mut self) -> Result<Vec<Notification>> {
        self.parts().0.take_notifications()
    }

    /// A token that cancels this connection's running query from another thread. While the
    /// token is alive the pool will not reuse the connection (see
    /// [`cancel_requested`](Connection::cancel_requested)): drop it when the query it guards
    /// is done.
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let conn = pool.connection()?;
    /// let token = conn.cancel_token();
    /// std::thread::spawn(move || token.cancel());
    /// # Ok(()) }
    /// ```
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken::new(self.conn().cancel_token(), Arc::clone(&self.driver))
    }

    /// Restores the session to what a new connection has (`DISCARD ALL`) and blocks until the
    /// server has done it. See
    /// [`Connection::reset_session`](crate::Connection::reset_session).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let mut conn = pool.connection()?;
    /// conn.simple_query("SET TimeZone = 'UTC'")?;
    /// conn.reset_session()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`simple_query`](Connection::simple_query) (inside a transaction block the server
    /// refuses it).
    pub fn reset_session(&mut self) -> Result<()> {
        let (conn, driver) = self.parts();
        driver.block_on(conn.reset_session())?
    }

    /// Sends Terminate and blocks until the server has closed its end (at most a few
    /// seconds). A pooled connection is first [taken](super::PooledConnection::take) out of
    /// its pool.
    /// See [`Connection::close`](crate::Connection::close).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let conn = wirepool::blocking::PooledConnection::take(pool.connection()?);
    /// conn.close()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// If Terminate could not be written; `InsideAsyncRuntime` (the connection is then dropped:
    /// its socket closes without Terminate).
    pub fn close(self) -> Result<()> {
        let (conn, driver) = self.into_taken();
        driver.block_on(conn.close())?
    }
}

/// The async connection's accessors that never block: they read what the server last reported.
impl Connection {
    /// The server backend's process id (0 if the server sent no BackendKeyData).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// assert_ne!(pool.connection()?.backend_pid(), 0);
    /// # Ok(()) }
    /// ```
    pub fn backend_pid(&self) -> i32 {
        self.conn().backend_pid()
    }

    /// BackendKeyData as sent by the server, if it sent one.
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let conn = pool.connection()?;
    /// assert_eq!(conn.backend_key().map(|k| k.pid), Some(conn.backend_pid()));
    /// # Ok(()) }
    /// ```
    pub fn backend_key(&self) -> Option<BackendKey> {
        self.conn().backend_key()
    }

    /// The transaction status from the last ReadyForQuery.
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// use wirepool::TransactionStatus;
    /// let mut conn = pool.connection()?;
    /// conn.simple_query("BEGIN")?;
    /// assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
    /// # Ok(()) }
    /// ```
    pub fn transaction_status(&self) -> TransactionStatus {
        self.conn().transaction_status()
    }

    /// A server parameter reported by ParameterStatus (`server_version`, `TimeZone`, ...).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// println!("{:?}", pool.connection()?.parameter("server_version"));
    /// # Ok(()) }
    /// ```
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.conn().parameter(name)
    }

    /// Every server parameter reported so far.
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// assert!(pool.connection()?.parameters().contains_key("TimeZone"));
    /// # Ok(()) }
    /// ```
    pub fn parameters(&self) -> &HashMap<String, String> {
        self.conn().parameters()
    }

    /// `server_version_num` derived from `server_version` (`"15.20"` → 150020).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let modern = pool.connection()?.server_version_num() >= Some(140000);
    /// # Ok(()) }
    /// ```
    pub fn server_version_num(&self) -> Option<u32> {
        self.conn().server_version_num()
    }

    /// The `target_session_attrs` this connection was opened for. See
    /// [`Connection::target_session_attrs`](crate::Connection::target_session_attrs).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// use wirepool::config::TargetSessionAttrs;
    /// assert_eq!(pool.connection()?.target_session_attrs(), TargetSessionAttrs::Any);
    /// # Ok(()) }
    /// ```
    pub fn target_session_attrs(&self) -> TargetSessionAttrs {
        self.conn().target_session_attrs()
    }

    /// Whether the server, as the session last reported it, still fits `target` (no round
    /// trip). See [`Connection::satisfies`](crate::Connection::satisfies).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// use wirepool::config::TargetSessionAttrs;
    /// let writable = pool.connection()?.satisfies(TargetSessionAttrs::ReadWrite);
    /// # Ok(()) }
    /// ```
    pub fn satisfies(&self, target: TargetSessionAttrs) -> bool {
        self.conn().satisfies(target)
    }

    /// Whether the session changed since it was opened or last marked clean (a `SET`,
    /// `LISTEN`, temporary table, ...): the pool then resets it on return. See
    /// [`Connection::session_changed`](crate::Connection::session_changed).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let mut conn = pool.connection()?;
    /// conn.simple_query("SET search_path = app")?;
    /// assert!(conn.session_changed());
    /// # Ok(()) }
    /// ```
    pub fn session_changed(&self) -> bool {
        self.conn().session_changed()
    }

    /// The session as it is now is the clean state later changes are measured against (the
    /// pool then does not reset it on return). No I/O. See
    /// [`Connection::mark_session_clean`](crate::Connection::mark_session_clean).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let mut conn = pool.connection()?;
    /// conn.simple_query("SET search_path = app")?;
    /// conn.mark_session_clean();
    /// assert!(!conn.session_changed());
    /// # Ok(()) }
    /// ```
    pub fn mark_session_clean(&mut self) {
        self.parts().0.mark_session_clean();
    }

    /// Whether a statement failed with SQLSTATE 25006 (read_only_sql_transaction): the server
    /// is read-only for this session, and the pool does not reuse it. See
    /// [`Connection::refused_writes`](crate::Connection::refused_writes).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// assert!(!pool.connection()?.refused_writes());
    /// # Ok(()) }
    /// ```
    pub fn refused_writes(&self) -> bool {
        self.conn().refused_writes()
    }

    /// Whether the server said it is going away (SQLSTATE class 08, 57P01, 57P02, 57P03).
    /// See [`Connection::server_going_away`](crate::Connection::server_going_away).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// assert!(!pool.connection()?.server_going_away());
    /// # Ok(()) }
    /// ```
    pub fn server_going_away(&self) -> bool {
        self.conn().server_going_away()
    }

    /// Whether an I/O or protocol error has made the connection unusable.
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// assert!(!pool.connection()?.is_broken());
    /// # Ok(()) }
    /// ```
    pub fn is_broken(&self) -> bool {
        self.conn().is_broken()
    }

    /// Whether a CancelRequest was sent for this connection, or a [`CancelToken`] for it is
    /// still alive.
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let conn = pool.connection()?;
    /// let token = conn.cancel_token();
    /// assert!(conn.cancel_requested());
    /// # Ok(()) }
    /// ```
    pub fn cancel_requested(&self) -> bool {
        self.conn().cancel_requested()
    }

    /// The statement cache's capacity (0: off; the pool builder's
    /// [`statement_cache`](super::PoolBuilder::statement_cache) sets it).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// println!("{}", pool.connection()?.statement_cache_capacity());
    /// # Ok(()) }
    /// ```
    pub fn statement_cache_capacity(&self) -> usize {
        self.conn().statement_cache_capacity()
    }

    /// Turns this connection's statement cache on (`capacity` statements), resizes it, or
    /// turns it off (0). No I/O: statements beyond a lowered capacity are closed with the next
    /// query that uses the cache. See
    /// [`Connection::set_statement_cache_capacity`](crate::Connection::set_statement_cache_capacity).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let mut conn = pool.connection()?;
    /// conn.set_statement_cache_capacity(16);
    /// conn.query("SELECT $1::int4", &[&1])?;
    /// assert_eq!(conn.cached_statements(), 1);
    /// # Ok(()) }
    /// ```
    pub fn set_statement_cache_capacity(&mut self, capacity: usize) {
        self.parts().0.set_statement_cache_capacity(capacity);
    }

    /// The number of statements the cache holds prepared on the server.
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// println!("{}", pool.connection()?.cached_statements());
    /// # Ok(()) }
    /// ```
    pub fn cached_statements(&self) -> usize {
        self.conn().cached_statements()
    }

    /// This connection's tracing span (`connection`, with fields `pid` and `host`). See
    /// [`Connection::span`](crate::Connection::span).
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let conn = pool.connection()?;
    /// conn.span().in_scope(|| tracing::info!("checked out")); // logged with pid=... host=...
    /// # Ok(()) }
    /// ```
    pub fn span(&self) -> &tracing::Span {
        self.conn().span()
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut t = f.debug_tuple("blocking::Connection");
        match &self.held {
            Held::Pooled(conn) => t.field(conn),
            Held::Taken(conn) => t.field(conn),
        };
        t.finish()
    }
}
