//! [`PoolBuilder`]: psycopg_pool's options with psycopg_pool's defaults (`settings.rs`),
//! validated at `open`, which starts the pool's background tasks.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use super::connecting;
use super::core::Core;
use super::facade::Pool;
use super::maintenance;
use super::manage::{BoxFuture, ConnHook, Manage};
use super::postgres::PgManager;
use super::settings::{Settings, Sizes};
use crate::error::{Error, Result};

/// Numbers the auto-generated names `pool-1`, `pool-2`, ... (psycopg's scheme).
static POOL_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Configures and opens a [`Pool`]: [`Pool::builder`] for PostgreSQL, [`Pool::builder_for`] for
/// any [`Manage`] implementation.
///
/// Durations: `max_lifetime` and `max_idle` of `Duration::ZERO` mean no limit (HikariCP's
/// meaning of 0); `Duration::MAX` as any timeout means "wait forever" (a far-future deadline,
/// never an overflow); `connect_timeout` must be positive.
///
/// Lifetime of the pool (psycopg_pool's behaviour): dropping the last [`Pool`] handle closes
/// the pool, as [`Pool::close`] does (checked-out connections are closed when they come
/// back), and a [`Pool::wait`] that times out closes it too, since a pool that cannot reach
/// `min_size` at startup is misconfigured.
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
/// let pool = wirepool::Pool::builder_for(Counter)
///     .name("lesson")
///     .min_size(1)
///     .max_size(5)
///     .timeout(Duration::from_secs(5))
///     .configure(|conn| Box::pin(async move {
///         *conn += 100; // e.g. `conn.simple_query("SET search_path TO app")` for PostgreSQL
///         Ok(())
///     }))
///     .open()
///     .await?;
/// assert_eq!(*pool.connection().await?, 100);
/// # Ok::<(), wirepool::Error>(()) }).unwrap();
/// ```
#[must_use = "a builder does nothing until `open` is awaited"]
pub struct PoolBuilder<M: Manage = PgManager> {
    manager: Result<M>,
    sizes: Sizes,
    settings: Settings<M::Connection>,
}

impl<M: Manage> PoolBuilder<M> {
    /// A builder with psycopg_pool's defaults, for `manager` (or the error that making it
    /// gave, reported by `open`).
    pub(crate) fn new(manager: Result<M>) -> Self {
        PoolBuilder {
            manager,
            sizes: Sizes::default(),
            settings: Settings::default(),
        }
    }

    /// The pool's name in logs and errors (default `pool-N`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.settings.name = name.into();
        self
    }

    /// Connections kept open even when unused (default 4, or `max_size` if that is smaller).
    pub fn min_size(mut self, n: usize) -> Self {
        self.sizes.min = Some(n);
        self
    }

    /// The most connections open at once (default: `min_size`, a fixed-size pool).
    pub fn max_size(mut self, n: usize) -> Self {
        self.sizes.max = Some(n);
        self
    }

    /// The largest `max_size` a later [`Pool::resize`] may set (default: `max_size`). The idle
    /// queue is allocated at this size once, so it never reallocates.
    pub fn max_size_limit(mut self, n: usize) -> Self {
        self.sizes.limit = Some(n);
        self
    }

    /// How long a checkout may wait, in total (default 30 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.settings.timeout = t;
        self
    }

    /// Requests allowed to wait at once; more fail at once with `TooManyRequests`
    /// (default 0: unlimited). The count is summed from per-thread stripes without a lock, so
    /// under a burst from several threads at once a few more than `n` may be admitted
    /// (at most one per extra thread racing), never fewer.
    pub fn max_waiting(mut self, n: usize) -> Self {
        self.settings.max_waiting = n;
        self
    }

    /// Connections are replaced after this long, less up to 5% jitter (default 1 h).
    ///
    /// `Duration::ZERO` means no limit (HikariCP's `maxLifetime = 0`), as does a duration too
    /// long to add to the clock (`Duration::MAX`): connections are then never replaced for age.
    pub fn max_lifetime(mut self, t: Duration) -> Self {
        self.settings.max_lifetime = (!t.is_zero()).then_some(t);
        self
    }

    /// Idle connections above `min_size` are closed after this long (default 10 min).
    ///
    /// `Duration::ZERO` means no limit (HikariCP's `idleTimeout = 0`): the pool then never
    /// shrinks for idleness, only through [`Pool::resize`].
    pub fn max_idle(mut self, t: Duration) -> Self {
        self.settings.max_idle = (!t.is_zero()).then_some(t);
        self
    }

    /// Times every checkout for [`PoolStats::usage_ms`](super::PoolStats::usage_ms) (default
    /// off: `usage_ms` stays 0).
    ///
    /// Off by default because it costs two precise clock reads per checkout, as much as the
    /// rest of the pool's fast path (docs/performance.md). HikariCP likewise times usage only
    /// when a metrics tracker is installed.
    pub fn usage_stats(mut self, on: bool) -> Self {
        self.settings.usage_stats = on;
        self
    }

    /// Reports every checkout that holds its connection longer than `threshold` (HikariCP's
    /// `leakDetectionThreshold`; default: off): one `warn` log per checkout with the pool's
    /// name, the time held so far and the checkout's call site (the line that called
    /// [`Pool::connection`], [`Pool::getconn`] or their `_timeout` forms), counted in
    /// [`PoolStats::leaks_detected`](super::PoolStats::leaks_detected). A connection reported
    /// and later returned logs once more, at `info`. A background task looks every quarter of
    /// the threshold (at least every 10 ms), so a report comes 1 to 1.25 thresholds after the
    /// checkout.
    ///
    /// Off, it costs nothing; on, each checkout and return takes a lock on its own thread's
    /// stripe and reads the clock (docs/performance.md). `Duration::ZERO` turns it off.
    pub fn leak_detection_threshold(mut self, threshold: Duration) -> Self {
        self.settings.leak_threshold = (!threshold.is_zero()).then_some(threshold);
        self
    }

    /// With [`leak_detection_threshold`](Self::leak_detection_threshold), also cancels the
    /// server work of a connection reported as leaked (default off): the leak watch sends its
    /// CancelRequest as it reports it, so a query stuck in a forgotten checkout stops holding
    /// locks and server CPU, and the checkout's next query runs normally. The connection is
    /// then never reused: it is closed when it comes back, so a cancel that arrives late
    /// cannot hit someone else's query. A connection with no query running is unaffected
    /// until it comes back. HikariCP only logs a leak.
    ///
    /// Needs a manager that prepares cancels ([`Manage::prepare_cancel`](super::Manage); the
    /// PostgreSQL one does).
    ///
    /// # Errors
    /// `open` fails with a `Config` error if it is on without a leak threshold.
    ///
    /// ```no_run
    /// # async fn demo() -> wirepool::Result<()> {
    /// use std::time::Duration;
    /// let pool = wirepool::Pool::builder("postgresql://app@db/app")
    ///     .leak_detection_threshold(Duration::from_secs(60))
    ///     .cancel_leaked(true)
    ///     .open()
    ///     .await?;
    /// # drop(pool); Ok(()) }
    /// ```
    pub fn cancel_leaked(mut self, on: bool) -> Self {
        self.settings.cancel_leaked = on;
        self
    }

    /// How long to keep retrying a failing connect before calling `reconnect_failed`
    /// (default 5 min).
    pub fn reconnect_timeout(mut self, t: Duration) -> Self {
        self.settings.reconnect_timeout = t;
        self
    }

    /// Called with the pool's name when reconnecting failed for `reconnect_timeout`.
    pub fn reconnect_failed(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.settings.reconnect_failed = Some(Arc::new(f));
        self
    }

    /// Connection attempts in flight at once (default 2; MongoDB CMAP's `maxConnecting`).
    pub fn max_connecting(mut self, n: usize) -> Self {
        self.settings.max_connecting = n;
        self
    }

    /// Fails checkouts at once, with the last connect error, after `n` connect attempts in a
    /// row have failed and nothing is idle, until an attempt succeeds (default 0: off). Without
    /// it each checkout waits its whole `timeout` while the database is down; with it the
    /// service sheds load at once (a circuit breaker; HikariCP declined one, HikariCP#2254).
    /// The pool keeps retrying in the background, with its backoff, even with nobody waiting.
    ///
    /// Independently of this setting, an error retrying cannot fix
    /// ([`Error::is_permanent_connect_error`](crate::Error::is_permanent_connect_error): a
    /// wrong password, a missing database) fails waiting checkouts at once.
    pub fn fail_fast_after(mut self, n: u32) -> Self {
        self.settings.fail_fast_after = n;
        self
    }

    /// How long one connection attempt may take, INCLUDING the `configure` hook (default 30 s,
    /// HikariCP's `connectionTimeout`). A timed-out attempt counts as a failed one: it is
    /// retried with backoff and its error (a timeout) is the one a `PoolTimeout` reports.
    ///
    /// Without this bound one hung connect (a black-holed SYN, a server stuck in
    /// authentication; libpq's own `connect_timeout` defaults to none) would count as "on its
    /// way" forever and block growth. `Duration::MAX` means no bound; zero is rejected by
    /// [`open`](PoolBuilder::open).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.settings.connect_timeout = t;
        self
    }

    /// How long a background rollback or `reset` of a returned connection may take before
    /// the connection is closed instead (default 5 s).
    pub fn return_timeout(mut self, t: Duration) -> Self {
        self.settings.return_timeout = t;
        self
    }

    /// Runs on each new connection (psycopg's `configure`); a failure, or leaving the
    /// connection in a transaction, counts as a failed connect. The closure returns a boxed
    /// future: `|conn| Box::pin(async move { ... })`.
    pub fn configure<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut M::Connection) -> BoxFuture<'c, Result<()>> + Send + Sync + 'static,
    {
        self.settings.configure = Some(Arc::new(hook) as ConnHook<M::Connection>);
        self
    }

    /// Runs on each checkout before the connection is handed out (psycopg's `check`); a
    /// failure discards the connection and the checkout tries another under the same deadline.
    pub fn check<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut M::Connection) -> BoxFuture<'c, Result<()>> + Send + Sync + 'static,
    {
        self.settings.check = Some(Arc::new(hook) as ConnHook<M::Connection>);
        self
    }

    /// Runs in the background on each returned connection (psycopg's `reset`); it must leave
    /// it idle, or the connection is discarded. It runs after the `ROLLBACK` of a connection
    /// returned in a transaction and before the reset of a changed session (see
    /// [`reset_dirty_sessions`](PoolBuilder::reset_dirty_sessions)): if the hook changes the
    /// session (`RESET ALL`, `DISCARD ALL`), that reset follows and runs the `configure` hook
    /// again. A hook that restores sessions itself can turn `reset_dirty_sessions` off to save
    /// that round trip.
    pub fn reset<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut M::Connection) -> BoxFuture<'c, Result<()>> + Send + Sync + 'static,
    {
        self.settings.reset = Some(Arc::new(hook) as ConnHook<M::Connection>);
        self
    }

    /// Whether a connection returned with its session changed (`ConnState::Dirty`: for
    /// PostgreSQL a `SET`, `RESET`, `LISTEN`, `PREPARE`, `DECLARE` or temporary table, or a new
    /// value of a parameter the server reports) is reset in the background
    /// before anyone else gets it (default on), so one borrower's `SET TimeZone` or `LISTEN`
    /// never reaches the next. A clean connection returns with zero round trips either way.
    /// Off: connections are reused as they come back, as psycopg_pool does without a `reset`
    /// hook.
    ///
    /// After the reset (`DISCARD ALL`) the `configure` hook runs again, so what it set survives.
    /// What a PostgreSQL session's replies do not reveal (a `set_config()` of a setting the
    /// server does not report, a temporary table made by `CREATE TABLE ... AS`) is listed at
    /// [`Connection::session_changed`](crate::Connection::session_changed); a
    /// [`reset`](PoolBuilder::reset) hook covers it.
    pub fn reset_dirty_sessions(mut self, on: bool) -> Self {
        self.settings.reset_dirty = on;
        self
    }

    /// Opens the pool: validates the settings, starts its background tasks (growth,
    /// maintenance, the wait watchdog) on the current tokio runtime, and starts filling towards
    /// `min_size` (use [`Pool::wait`] to wait for it).
    ///
    /// # Cancel safety
    /// Cancel-safe: nothing is started until it completes (it does not await).
    ///
    /// # Errors
    /// `Config`: an invalid conninfo (for [`Pool::builder`]), no tokio runtime, or invalid
    /// sizes (`max_size < min_size`, `max_size == 0`, `max_connecting == 0`,
    /// `max_size_limit < max_size`, `max_size_limit` above 2^30), or a zero
    /// `connect_timeout`.
    pub async fn open(self) -> Result<Pool<M>> {
        let PoolBuilder {
            manager,
            sizes,
            settings,
        } = self;
        let manager = manager?;
        let mut settings = settings.validated(sizes)?;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(Error::config(
                "Pool::open must be called inside a tokio runtime",
            ));
        };
        let n = POOL_COUNTER.fetch_add(1, Relaxed) + 1;
        if settings.name.is_empty() {
            settings.name = format!("pool-{n}");
        }
        settings.seed = n.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let (min_size, max_size) = (settings.min_size, settings.max_size);
        let core = Arc::new(Core::new(manager, settings, runtime));
        core.spawn(connecting::grow(Arc::clone(&core)));
        core.spawn(maintenance::run(Arc::downgrade(&core)));
        if core.leaks().is_some() {
            core.spawn(maintenance::watch_leaks(Arc::downgrade(&core)));
        }
        let watchdog = Arc::clone(&core);
        core.spawn(async move { watchdog.watch_deadlines().await });
        core.request_growth();
        tracing::debug!(pool = %core.name(), min_size, max_size, "pool opened");
        Ok(Pool::from_core(core))
    }
}

impl PoolBuilder<PgManager> {
    /// Turns on each connection's statement cache, `capacity` statements per connection
    /// ([`PgManager::statement_cache`], off by default): repeated queries skip Parse. Behind
    /// PgBouncer in transaction mode, only with PgBouncer ≥ 1.21 and `max_prepared_statements`
    /// set; off, every query uses the unnamed statement, which is safe behind any pooler.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), wirepool::Error> {
    /// let pool = wirepool::Pool::builder("host=db user=app")
    ///     .max_size(10)
    ///     .statement_cache(100)
    ///     .open()
    ///     .await?;
    /// let mut conn = pool.connection().await?;
    /// let row = conn.query_one("SELECT $1::int4 + 1", &[&41]).await?;
    /// assert_eq!(row.try_get::<i32, _>(0)?, 42);
    /// # Ok(()) }
    /// ```
    pub fn statement_cache(mut self, capacity: usize) -> Self {
        self.manager = self.manager.map(|m| m.statement_cache(capacity));
        self
    }
}

impl<M: Manage> fmt::Debug for PoolBuilder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("name", &self.settings.name)
            .field("min_size", &self.sizes.min)
            .field("max_size", &self.sizes.max)
            .finish_non_exhaustive()
    }
}
