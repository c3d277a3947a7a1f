//! The blocking [`PoolBuilder`]: the async builder's options, one for one, and an `open` that
//! starts the pool's thread.

use std::fmt;
use std::time::Duration;

use super::pool::Pool;
use super::runtime::Driver;
use crate::error::Result;
use crate::pool::BoxFuture;
use crate::Connection;

/// Configures and opens a blocking [`Pool`]. Every option, default and rule is the async
/// [`crate::PoolBuilder`]'s (psycopg_pool's defaults; see there for each).
///
/// ```no_run
/// use std::time::Duration;
/// let pool = wirepool::blocking::Pool::builder("host=127.0.0.1 dbname=test_db user=postgres")
///     .name("lesson")
///     .min_size(1)
///     .max_size(5)
///     .timeout(Duration::from_secs(5))
///     .open()?;
/// # Ok::<(), wirepool::Error>(())
/// ```
#[must_use = "a builder does nothing until `open` is called"]
pub struct PoolBuilder {
    inner: crate::PoolBuilder,
    /// For the pool thread's name; the async builder keeps its own copy.
    name: Option<String>,
}

impl PoolBuilder {
    pub(crate) fn new(inner: crate::PoolBuilder) -> Self {
        PoolBuilder { inner, name: None }
    }

    fn map(mut self, f: impl FnOnce(crate::PoolBuilder) -> crate::PoolBuilder) -> Self {
        self.inner = f(self.inner);
        self
    }

    /// The pool's name in logs, errors and its thread's name (default `pool-N`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.name = Some(name.clone());
        self.map(|b| b.name(name))
    }

    /// Connections kept open even when unused (default 4).
    pub fn min_size(self, n: usize) -> Self {
        self.map(|b| b.min_size(n))
    }

    /// The most connections open at once (default: `min_size`, a fixed-size pool).
    pub fn max_size(self, n: usize) -> Self {
        self.map(|b| b.max_size(n))
    }

    /// The largest `max_size` a later [`Pool::resize`] may set (default: `max_size`).
    pub fn max_size_limit(self, n: usize) -> Self {
        self.map(|b| b.max_size_limit(n))
    }

    /// How long a checkout may wait, in total (default 30 s).
    pub fn timeout(self, t: Duration) -> Self {
        self.map(|b| b.timeout(t))
    }

    /// Requests allowed to wait at once; more fail at once with `TooManyRequests`
    /// (default 0: unlimited).
    pub fn max_waiting(self, n: usize) -> Self {
        self.map(|b| b.max_waiting(n))
    }

    /// Connections are replaced after this long, less up to 5% jitter (default 1 h;
    /// `Duration::ZERO`: never).
    pub fn max_lifetime(self, t: Duration) -> Self {
        self.map(|b| b.max_lifetime(t))
    }

    /// Idle connections above `min_size` are closed after this long (default 10 min;
    /// `Duration::ZERO`: never).
    pub fn max_idle(self, t: Duration) -> Self {
        self.map(|b| b.max_idle(t))
    }

    /// Times every checkout for `PoolStats::usage_ms` (default off).
    pub fn usage_stats(self, on: bool) -> Self {
        self.map(|b| b.usage_stats(on))
    }

    /// Reports every checkout that holds its connection longer than `threshold` (HikariCP's
    /// `leakDetectionThreshold`; default off): one `warn` log with the pool's name, the time
    /// held and the line that called [`Pool::connection`] or [`Pool::getconn`] (or their
    /// `_timeout` forms), counted in `PoolStats::leaks_detected`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let pool = wirepool::blocking::Pool::builder("host=127.0.0.1 user=postgres")
    ///     .leak_detection_threshold(Duration::from_secs(30))
    ///     .open()?;
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn leak_detection_threshold(self, threshold: Duration) -> Self {
        self.map(|b| b.leak_detection_threshold(threshold))
    }

    /// With `leak_detection_threshold`, also cancels a leaked connection's running query, and
    /// closes the connection when it comes back instead of reusing it (default off; see
    /// [`PoolBuilder::cancel_leaked`](crate::pool::PoolBuilder::cancel_leaked)).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let pool = wirepool::blocking::Pool::builder("host=127.0.0.1 user=postgres")
    ///     .leak_detection_threshold(Duration::from_secs(30))
    ///     .cancel_leaked(true)
    ///     .open()?;
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn cancel_leaked(self, on: bool) -> Self {
        self.map(|b| b.cancel_leaked(on))
    }

    /// Turns on each connection's statement cache, `capacity` statements per connection
    /// (default off): repeated queries skip Parse. Behind PgBouncer in transaction mode, only
    /// with PgBouncer ≥ 1.21 and `max_prepared_statements` set.
    ///
    /// ```no_run
    /// let pool = wirepool::blocking::Pool::builder("host=127.0.0.1 user=postgres")
    ///     .statement_cache(100)
    ///     .open()?;
    /// let mut conn = pool.connection()?;
    /// let row = conn.query_one("SELECT $1::int4 + 1", &[&41])?;
    /// assert_eq!(row.try_get::<i32, _>(0)?, 42);
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn statement_cache(self, capacity: usize) -> Self {
        self.map(|b| b.statement_cache(capacity))
    }

    /// How long to keep retrying a failing connect before calling `reconnect_failed`
    /// (default 5 min).
    pub fn reconnect_timeout(self, t: Duration) -> Self {
        self.map(|b| b.reconnect_timeout(t))
    }

    /// Called (on the pool's thread) with the pool's name when reconnecting failed for
    /// `reconnect_timeout`.
    pub fn reconnect_failed(self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.map(|b| b.reconnect_failed(f))
    }

    /// Connection attempts in flight at once (default 2).
    pub fn max_connecting(self, n: usize) -> Self {
        self.map(|b| b.max_connecting(n))
    }

    /// Fails checkouts at once, with the last connect error, after `n` connect attempts in a
    /// row have failed and nothing is idle, until one succeeds (default 0: off).
    pub fn fail_fast_after(self, n: u32) -> Self {
        self.map(|b| b.fail_fast_after(n))
    }

    /// How long one connection attempt may take, `configure` hook included (default 30 s).
    pub fn connect_timeout(self, t: Duration) -> Self {
        self.map(|b| b.connect_timeout(t))
    }

    /// How long a background rollback or `reset` of a returned connection may take before the
    /// connection is closed instead (default 5 s).
    pub fn return_timeout(self, t: Duration) -> Self {
        self.map(|b| b.return_timeout(t))
    }

    /// Runs on each new connection (psycopg's `configure`); a failure, or leaving the
    /// connection in a transaction, counts as a failed connect. The hook is async, as the
    /// async builder's (it runs on the pool's thread): `|conn| Box::pin(async move { ... })`.
    pub fn configure<F>(self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut Connection) -> BoxFuture<'c, Result<()>> + Send + Sync + 'static,
    {
        self.map(|b| b.configure(hook))
    }

    /// Runs on each checkout before the connection is handed out (psycopg's `check`), on the
    /// checking-out thread; a failure discards the connection and the checkout tries another
    /// under the same deadline.
    pub fn check<F>(self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut Connection) -> BoxFuture<'c, Result<()>> + Send + Sync + 'static,
    {
        self.map(|b| b.check(hook))
    }

    /// Runs on the pool's thread on each returned connection (psycopg's `reset`); it must
    /// leave it idle, or the connection is discarded.
    pub fn reset<F>(self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut Connection) -> BoxFuture<'c, Result<()>> + Send + Sync + 'static,
    {
        self.map(|b| b.reset(hook))
    }

    /// Whether a connection returned with its session changed (a `SET`, `LISTEN`, temporary
    /// table, ...) is reset on the pool's thread before anyone else gets it (default on).
    pub fn reset_dirty_sessions(self, on: bool) -> Self {
        self.map(|b| b.reset_dirty_sessions(on))
    }

    /// Starts the pool's thread and opens the pool: validates the settings, starts
    /// maintenance, and starts filling towards `min_size` in the background (use
    /// [`Pool::wait`] to wait for it).
    ///
    /// ```
    /// let err = wirepool::blocking::Pool::builder("host=/nonexistent")
    ///     .min_size(3)
    ///     .max_size(2)
    ///     .open()
    ///     .unwrap_err();
    /// assert!(err.is_config());
    /// ```
    ///
    /// # Errors
    /// As the async [`open`](crate::PoolBuilder::open) (an unparsable conninfo, invalid
    /// sizes); `Io` if the pool's thread cannot start; `InsideAsyncRuntime`.
    pub fn open(self) -> Result<Pool> {
        let thread = match &self.name {
            Some(name) => format!("wirepool-{name}"),
            None => "wirepool".to_owned(),
        };
        let driver = Driver::start(thread)?;
        let pool = driver.block_on(self.inner.open())??;
        Ok(Pool::from_async(pool, driver))
    }
}

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::PoolBuilder")
            .field(&self.inner)
            .finish()
    }
}
