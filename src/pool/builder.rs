//! [`PoolBuilder`]: psycopg_pool's options with psycopg_pool's defaults, validated at `open`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use super::core::Core;
use super::manage::{ConnHook, Manage};
use super::permits::MAX_PERMITS;
use super::pool::Pool;
use super::{maintenance, postgres::PgManager};
use crate::config::Config;
use crate::error::{Error, Result};

/// Numbers the auto-generated names `pool-1`, `pool-2`, ... (psycopg's scheme).
static POOL_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Called with the pool's name when reconnecting has failed for `reconnect_timeout`.
pub type ReconnectFailed = Arc<dyn Fn(&str) + Send + Sync>;

/// Something that can become a [`Config`]: a conninfo string or a `Config`. Parse errors
/// surface from [`PoolBuilder::open`].
pub trait IntoConfig {
    /// Converts into a `Config`.
    ///
    /// # Errors
    /// If a conninfo string does not parse.
    fn into_config(self) -> Result<Config>;
}

impl IntoConfig for Config {
    fn into_config(self) -> Result<Config> {
        Ok(self)
    }
}

impl IntoConfig for &Config {
    fn into_config(self) -> Result<Config> {
        Ok(self.clone())
    }
}

impl IntoConfig for &str {
    fn into_config(self) -> Result<Config> {
        self.parse()
    }
}

impl IntoConfig for String {
    fn into_config(self) -> Result<Config> {
        self.parse()
    }
}

/// Settings fixed at `open` (the sizes live in the core: `resize` changes them).
pub(crate) struct Settings<C> {
    pub(crate) name: String,
    pub(crate) capacity: usize,
    pub(crate) timeout: Duration,
    pub(crate) max_waiting: usize,
    /// `None`: no limit (the builder maps `Duration::ZERO` to it).
    pub(crate) max_lifetime: Option<Duration>,
    /// `None`: no limit (the builder maps `Duration::ZERO` to it).
    pub(crate) max_idle: Option<Duration>,
    pub(crate) reconnect_timeout: Duration,
    pub(crate) reconnect_failed: Option<ReconnectFailed>,
    pub(crate) max_connecting: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) return_timeout: Duration,
    pub(crate) configure: Option<ConnHook<C>>,
    pub(crate) check: Option<ConnHook<C>>,
    pub(crate) reset: Option<ConnHook<C>>,
    pub(crate) usage_stats: bool,
    pub(crate) seed: u64,
}

/// Configures and opens a [`Pool`].
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
/// ```no_run
/// # async fn demo() -> wirepool::Result<()> {
/// use std::time::Duration;
/// let pool = wirepool::Pool::builder("host=127.0.0.1 dbname=test_db user=postgres")
///     .name("lesson")
///     .min_size(1)
///     .max_size(5)
///     .timeout(Duration::from_secs(5))
///     .open()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `open` is awaited"]
pub struct PoolBuilder<M: Manage = PgManager> {
    manager: Result<M>,
    min_size: usize,
    max_size: Option<usize>,
    max_size_limit: Option<usize>,
    settings: Settings<M::Connection>,
}

impl<M: Manage> PoolBuilder<M> {
    pub(crate) fn new(manager: Result<M>) -> Self {
        PoolBuilder {
            manager,
            min_size: 4,
            max_size: None,
            max_size_limit: None,
            settings: Settings {
                name: String::new(),
                capacity: 0,
                timeout: Duration::from_secs(30),
                max_waiting: 0,
                max_lifetime: Some(Duration::from_secs(3600)),
                max_idle: Some(Duration::from_secs(600)),
                reconnect_timeout: Duration::from_secs(300),
                reconnect_failed: None,
                max_connecting: 2,
                connect_timeout: Duration::from_secs(30),
                return_timeout: Duration::from_secs(5),
                configure: None,
                check: None,
                reset: None,
                usage_stats: false,
                seed: 0,
            },
        }
    }

    /// The pool's name in logs and errors (default `pool-N`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.settings.name = name.into();
        self
    }

    /// Connections kept open even when unused (default 4).
    pub fn min_size(mut self, n: usize) -> Self {
        self.min_size = n;
        self
    }

    /// The most connections open at once (default: `min_size`, a fixed-size pool).
    pub fn max_size(mut self, n: usize) -> Self {
        self.max_size = Some(n);
        self
    }

    /// The largest `max_size` a later [`Pool::resize`] may set (default: `max_size`). The idle
    /// queue is allocated at this size once, so it never reallocates.
    pub fn max_size_limit(mut self, n: usize) -> Self {
        self.max_size_limit = Some(n);
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
    /// Off by default because it costs two clock reads per checkout, about 60 ns on a KVM
    /// guest: as much as the rest of the pool's fast path (docs/performance.md). HikariCP
    /// likewise times usage only when a metrics tracker is installed.
    pub fn usage_stats(mut self, on: bool) -> Self {
        self.settings.usage_stats = on;
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

    /// Runs on each new connection; a failure counts as a failed connect.
    pub fn configure(mut self, hook: ConnHook<M::Connection>) -> Self {
        self.settings.configure = Some(hook);
        self
    }

    /// Runs on each checkout; a failure discards the connection and the checkout tries
    /// another under the same deadline.
    pub fn check(mut self, hook: ConnHook<M::Connection>) -> Self {
        self.settings.check = Some(hook);
        self
    }

    /// Runs in the background on each returned connection; it must leave it idle, or the
    /// connection is discarded.
    pub fn reset(mut self, hook: ConnHook<M::Connection>) -> Self {
        self.settings.reset = Some(hook);
        self
    }

    /// Opens the pool: validates the settings, starts maintenance, and starts filling towards
    /// `min_size` in the background (use [`Pool::wait`] to wait for it).
    ///
    /// # Cancel safety
    /// Cancel-safe: nothing is started until it completes (it does not await).
    ///
    /// # Errors
    /// An unparsable conninfo, no tokio runtime, or invalid sizes (`max_size < min_size`, `max_size == 0`,
    /// `max_connecting == 0`, `max_size_limit < max_size`, `max_size_limit` above 2^30), or a zero
    /// `connect_timeout`.
    pub async fn open(self) -> Result<Pool<M>> {
        let PoolBuilder {
            manager,
            min_size,
            max_size,
            max_size_limit,
            mut settings,
        } = self;
        let manager = manager?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::config(
                "Pool::open must be called inside a tokio runtime",
            ));
        }
        let max_size = max_size.unwrap_or(min_size);
        let capacity = max_size_limit.unwrap_or(max_size);
        if max_size == 0 || max_size < min_size {
            return Err(Error::config(format!(
                "invalid pool sizes: min_size {min_size}, max_size {max_size}"
            )));
        }
        if capacity < max_size {
            return Err(Error::config("max_size_limit is below max_size"));
        }
        if capacity > MAX_PERMITS {
            return Err(Error::config(format!(
                "max_size_limit {capacity} is above the largest supported pool ({MAX_PERMITS})"
            )));
        }
        if settings.max_connecting == 0 {
            return Err(Error::config("max_connecting must be at least 1"));
        }
        if settings.connect_timeout.is_zero() {
            return Err(Error::config("connect_timeout must be positive"));
        }
        let n = POOL_COUNTER.fetch_add(1, Relaxed) + 1;
        if settings.name.is_empty() {
            settings.name = format!("pool-{n}");
        }
        settings.capacity = capacity;
        settings.seed = n.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let core = Arc::new(Core::new(manager, settings, min_size, max_size));
        maintenance::spawn(&core);
        maintenance::spawn_watchdog(&core);
        core.maybe_grow();
        tracing::debug!(pool = %core.name(), min_size, max_size, "pool opened");
        Ok(Pool::from_core(core))
    }
}

impl<M: Manage> fmt::Debug for PoolBuilder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("name", &self.settings.name)
            .field("min_size", &self.min_size)
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
impl<M: Manage> PoolBuilder<M> {
    /// A core with this builder's settings and no background task (unit tests).
    pub(crate) fn into_test_core(self, min: usize, max: usize) -> Arc<Core<M>> {
        let mut settings = self.settings;
        settings.capacity = max;
        let manager = self
            .manager
            .unwrap_or_else(|_| unreachable!("test manager"));
        Arc::new(Core::new(manager, settings, min, max))
    }
}
