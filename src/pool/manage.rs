//! The small trait the pool is generic over, so its semantics can be proven with in-memory
//! connections under `tokio::time::pause()` and benchmarked without a server; the PostgreSQL
//! implementation is [`PgManager`](super::PgManager).
//!
//! Contract the pool relies on:
//! - [`Manage::state`] and [`Manage::check_closed`] never do I/O and never block: the return
//!   path runs inside `Drop` and the checkout fast path calls them on every checkout.
//! - Every future may be dropped at any await point (the pool races them against deadlines and
//!   `close()`); dropping one must not leak anything beyond the connection it was given.
//! - Failures are [`Error`](crate::Error)s: a manager's own error goes in with
//!   [`Error::other`](crate::Error::other).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Result;

/// A boxed, `Send` future: what the pool's hooks return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A hook the pool runs on a connection (`configure`, `check`, `reset`), as the builder stores
/// it. The builder's methods take a closure and wrap it.
pub type ConnHook<C> = Arc<dyn for<'c> Fn(&'c mut C) -> BoxFuture<'c, Result<()>> + Send + Sync>;

/// What a returned connection needs before it can be reused, known from local state alone
/// (for PostgreSQL: the last ReadyForQuery status byte and the socket's health).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Ready for the next user (`'I'`).
    Idle,
    /// Idle, but the session was changed (a `SET`, `LISTEN`, `PREPARE`, a temporary table...):
    /// [`Manage::reset`] restores it before anyone else gets it.
    Dirty,
    /// Inside a transaction block, healthy or failed (`'T'` / `'E'`): needs a `ROLLBACK`.
    InTransaction,
    /// A query is still running (its future was dropped mid-flight): cancel and discard.
    Busy,
    /// Unusable (I/O or protocol error, closed): discard.
    Broken,
    /// Healthy, but no longer what the pool is for: discard, counted by cause.
    Evict(Eviction),
}

/// Why a connection that still works must not be handed out again (a pool that heals itself
/// after a failover; HikariCP#1960, gpustack#6105).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Eviction {
    /// The server is going away or lost its state: it sent SQLSTATE class 08 (connection
    /// exception) or 57P01/57P02/57P03 (admin shutdown, crash shutdown, cannot connect now).
    ServerGone,
    /// A write was refused as read-only (25006) in a pool that wants a writable server: the
    /// server was demoted (a switchover), or is a standby.
    ReadOnly,
    /// The server reported a role change (`in_hot_standby`, `default_transaction_read_only`)
    /// that contradicts what the pool wants (a standby promoted under a standby pool).
    RoleChanged,
}

/// Creates, inspects, resets and closes the pool's connections.
///
/// An in-memory implementation, enough to run a pool with no server (every pool example in
/// these docs uses one like it):
///
/// ```
/// use wirepool::pool::{ConnState, Manage};
/// struct Counter;
/// impl Manage for Counter {
///     type Connection = u32;
///     async fn connect(&self) -> wirepool::Result<u32> { Ok(0) }
///     fn state(&self, _: &u32) -> ConnState { ConnState::Idle }
///     fn check_closed(&self, _: &mut u32) -> bool { false }
///     async fn ping(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
///     async fn rollback(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
///     fn cancel(&self, _: &u32) -> impl std::future::Future<Output = ()> + Send + 'static {
///         async {}
///     }
///     async fn close(&self, _: u32) {}
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let pool = wirepool::Pool::builder_for(Counter).max_size(2).open().await?;
/// let mut conn = pool.connection().await?;
/// *conn += 1;
/// drop(conn);
/// assert_eq!(pool.stats().requests_num, 1);
/// # Ok::<(), wirepool::Error>(()) }).unwrap();
/// ```
pub trait Manage: Send + Sync + 'static {
    /// The connection type the pool hands out.
    type Connection: Send + 'static;

    /// Opens and authenticates a new connection. Runs in a background task; may be dropped at
    /// any point (when the pool closes, or at `connect_timeout`).
    fn connect(&self) -> impl Future<Output = Result<Self::Connection>> + Send;

    /// The connection's state from local knowledge only: no I/O, no blocking.
    fn state(&self, conn: &Self::Connection) -> ConnState;

    /// A non-blocking liveness peek with no round trip: has the server closed it? May consume
    /// what the server sent meanwhile (notices, parameter changes).
    fn check_closed(&self, conn: &mut Self::Connection) -> bool;

    /// A round trip proving the connection works (used by `Pool::check`).
    fn ping(&self, conn: &mut Self::Connection) -> impl Future<Output = Result<()>> + Send;

    /// Ends the open transaction (`ROLLBACK`), leaving the connection idle.
    fn rollback(&self, conn: &mut Self::Connection) -> impl Future<Output = Result<()>> + Send;

    /// Restores a [`ConnState::Dirty`] connection's session to what a new connection has
    /// (PostgreSQL: `DISCARD ALL`). The pool then runs its `configure` hook again and calls
    /// [`mark_clean`](Manage::mark_clean). The default does nothing, for connections that are
    /// never `Dirty`.
    fn reset(&self, conn: &mut Self::Connection) -> impl Future<Output = Result<()>> + Send {
        let _ = conn;
        async { Ok(()) }
    }

    /// The connection's session as it is now is its clean state: what later changes are
    /// measured against. Called after a connect's (and a reset's) `configure` hook. No I/O.
    fn mark_clean(&self, conn: &mut Self::Connection) {
        let _ = conn;
    }

    /// Asks the server to cancel the connection's running query. The future owns what it needs
    /// (it outlives the connection, which is closed meanwhile).
    fn cancel(&self, conn: &Self::Connection) -> impl Future<Output = ()> + Send + 'static;

    /// Closes the connection politely (PostgreSQL: Terminate).
    fn close(&self, conn: Self::Connection) -> impl Future<Output = ()> + Send;

    /// A cancel of the connection's server work, prepared when the connection opens and held
    /// by the pool for as long as it lives; the pool runs it only while the connection is
    /// checked out and will never be reused: in
    /// [`Pool::close_timeout`](super::Pool::close_timeout), once the pool is closed and the
    /// grace has run out, and on a leak with
    /// [`cancel_leaked`](super::PoolBuilder::cancel_leaked) on, where the connection is closed
    /// when it comes back. So a late cancel cannot hit another user's query. Unlike
    /// [`cancel`](Manage::cancel), holding it must not make the connection count as
    /// cancelled. The default prepares none: `close_timeout` then only waits, and
    /// `cancel_leaked` only reports.
    fn prepare_cancel(&self, conn: &Self::Connection) -> Option<BoxFuture<'static, ()>> {
        let _ = conn;
        None
    }
}
