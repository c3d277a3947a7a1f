//! The blocking [`PooledConnection`] (a checked-out connection whose queries block) and its
//! [`CancelToken`].
//!
//! The guard is the async guard plus a share of the pool's thread, held as a blocking
//! [`Connection`] it derefs to: dropping it, on any thread and in any context, takes the async
//! guard's one return path (no network I/O in `Drop`; a rollback it needs runs on the runtime
//! the pool was opened on, the pool's thread).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::connection::Connection;
use super::runtime::Driver;
use crate::error::Result;

/// A connection checked out of a blocking [`Pool`](super::Pool); it goes back to the pool
/// when dropped (the end of a scope is Python's end of a `with` block). It derefs to a blocking
/// [`Connection`], whose methods run the queries.
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
    conn: Connection,
}

impl PooledConnection {
    pub(crate) fn new(conn: crate::PooledConnection, driver: Arc<Driver>) -> Self {
        PooledConnection {
            conn: Connection::pooled(conn, driver),
        }
    }

    /// The async guard (for `putconn`).
    ///
    /// # Errors
    /// `ForeignConnection` if the guard holds a connection taken out of its pool (swapped in
    /// through `DerefMut`).
    pub(crate) fn into_inner(self) -> Result<crate::PooledConnection> {
        self.conn.into_pooled()
    }

    /// Detaches the connection from the pool for good, as the async
    /// [`PooledConnection::take`](crate::PooledConnection::take): the pool forgets it and frees
    /// its place (it may open a replacement), and the caller owns the session, `LISTEN`s and
    /// settings included. Never blocks. The connection keeps the pool's thread running until
    /// it is closed or dropped, even after the pool is.
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// use wirepool::blocking::PooledConnection;
    /// let mut own = PooledConnection::take(pool.connection()?);
    /// own.simple_query("SET work_mem = '1GB'")?; // no reset: it never goes back
    /// let other = pool.connection()?; // the pool may open a replacement
    /// own.close()?;
    /// # drop(other);
    /// # Ok(()) }
    /// ```
    pub fn take(this: Self) -> Connection {
        let (conn, driver) = this.conn.into_taken();
        Connection::taken(conn, driver)
    }
}

impl Deref for PooledConnection {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
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
    pub(crate) fn new(token: crate::CancelToken, driver: Arc<Driver>) -> Self {
        CancelToken { token, driver }
    }

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
