//! [`PgManager`]: the pool's [`Manage`] implementation for wirepool's own PostgreSQL
//! [`Connection`]. Every decision the return path needs comes from local state (the last
//! ReadyForQuery status byte and the socket), so returning a connection costs no round trip.

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::config::{Config, Limits};
use crate::conn::{CancelToken, Connection};
use crate::error::Result;
use crate::wire::TransactionStatus;

use super::manage::{BoxFuture, ConnState, Eviction, Manage};

/// Something that can become a [`Config`]: a conninfo string or a `Config`. Parse errors
/// surface from [`PoolBuilder::open`](super::PoolBuilder::open).
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

/// Opens [`Connection`]s from a [`Config`]; what `Pool::builder` uses.
#[derive(Debug, Clone)]
pub struct PgManager {
    config: Config,
}

impl PgManager {
    /// A manager connecting with `config`.
    pub fn new(config: Config) -> Self {
        PgManager { config }
    }

    /// Gives every connection a statement cache of `capacity` named statements
    /// ([`Config::statement_cache`], [`Connection::set_statement_cache_capacity`]); 0, the
    /// default, leaves it off. The pool's session reset (`DISCARD ALL`) empties a connection's
    /// cache with its statements.
    ///
    /// Behind PgBouncer in transaction mode, only with PgBouncer ≥ 1.21 and
    /// `max_prepared_statements` set: a named statement lives in one server session. Off, every
    /// query uses the unnamed statement, which is safe behind any pooler.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), wirepool::Error> {
    /// use wirepool::pool::PgManager;
    /// let manager = PgManager::new("host=db user=app".parse()?).statement_cache(100);
    /// let pool = wirepool::Pool::builder_for(manager).max_size(10).open().await?;
    /// # Ok(()) }
    /// ```
    pub fn statement_cache(mut self, capacity: usize) -> Self {
        self.config.statement_cache(capacity);
        self
    }

    /// A manager for `config` once every value resolves (environment and `.pgpass` included),
    /// so a mistake such as `port=notaport` fails now, not at each connect.
    pub(crate) fn checked(config: Config) -> Result<Self> {
        config.resolve()?;
        Ok(PgManager::new(config))
    }

    /// This manager, its connections opened with `limits` (see [`Limits`]; a pool built from a
    /// [`Config`] takes them from [`Config::limits`]).
    ///
    /// ```
    /// let mut limits = wirepool::config::Limits::default();
    /// limits.max_message_len = 256 << 20;
    /// let manager = wirepool::pool::PgManager::new("host=db".parse()?).with_limits(limits);
    /// assert_eq!(manager.config().get_limits(), limits);
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.config.limits(limits);
        self
    }

    /// The configuration connections are opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl Manage for PgManager {
    type Connection = Connection;

    fn connect(&self) -> impl Future<Output = Result<Connection>> + Send {
        Connection::connect(&self.config)
    }

    /// Broken, busy and transaction states from local knowledge; and the pool heals itself
    /// after a failover (every check reads state the connection already has, no round trip):
    /// a server that said it is going away (class 08, 57P01-03), a write refused as read-only
    /// (25006) when the pool's target wants a writable server, or a role the server reported
    /// (`in_hot_standby`, `default_transaction_read_only`) that contradicts the target, each
    /// evict the connection.
    fn state(&self, conn: &Connection) -> ConnState {
        let target = conn.target_session_attrs();
        if conn.server_going_away() {
            ConnState::Evict(Eviction::ServerGone)
        } else if conn.is_broken() {
            ConnState::Broken
        } else if conn.refused_writes() && target.wants_writes() {
            ConnState::Evict(Eviction::ReadOnly)
        } else if !conn.satisfies(target) {
            ConnState::Evict(Eviction::RoleChanged)
        } else if conn.is_busy() {
            ConnState::Busy
        } else if conn.cancel_requested() {
            // A CancelRequest sent (or still sendable by a live token) could interrupt the
            // next borrower's query: never reuse.
            ConnState::Broken
        } else {
            match conn.transaction_status() {
                TransactionStatus::Idle if conn.session_changed() => ConnState::Dirty,
                TransactionStatus::Idle => ConnState::Idle,
                TransactionStatus::InTransaction | TransactionStatus::Failed => {
                    ConnState::InTransaction
                }
            }
        }
    }

    /// The zero-round-trip peek (`Connection::check_closed`), which also reads what the server
    /// reported meanwhile: a role that no longer satisfies the pool's target counts as closed
    /// (the pool then asks `state` why, and counts it as an eviction).
    fn check_closed(&self, conn: &mut Connection) -> bool {
        conn.check_closed() || !conn.satisfies(conn.target_session_attrs())
    }

    async fn ping(&self, conn: &mut Connection) -> Result<()> {
        // The empty query: one round trip, no parse or plan (psycopg's `check_connection`).
        conn.simple_query("").await.map(drop)
    }

    async fn rollback(&self, conn: &mut Connection) -> Result<()> {
        conn.simple_query("ROLLBACK").await.map(drop)
    }

    /// `DISCARD ALL` ([`Connection::reset_session`]).
    async fn reset(&self, conn: &mut Connection) -> Result<()> {
        conn.reset_session().await
    }

    fn mark_clean(&self, conn: &mut Connection) {
        conn.mark_session_clean();
    }

    fn cancel(&self, conn: &Connection) -> impl Future<Output = ()> + Send + 'static {
        let token = conn.cancel_token();
        let span = conn.span().clone();
        async move {
            if let Err(e) = token.cancel().await {
                span.in_scope(|| tracing::debug!(error = %e, "CancelRequest failed"));
            }
        }
    }

    async fn close(&self, conn: Connection) {
        let _ = conn.close().await;
    }

    fn prepare_cancel(&self, conn: &Connection) -> Option<BoxFuture<'static, ()>> {
        // A token with a flag of its own: a token sharing the connection's would make it
        // report `cancel_requested` (so `Broken`) for its whole life. The pool runs this one
        // only when the connection is never reused after it: the pool is closed, or the
        // connection was revoked as a leak (`revoke.rs`).
        let token = CancelToken {
            sent: Arc::new(AtomicBool::new(false)),
            ..conn.cancel_token()
        };
        // The pool holds this future for the connection's whole life, so it holds only the
        // token; the request's own state (a TCP connect and, over TLS, a handshake: the larger
        // part of the future) is boxed when it runs.
        Some(Box::pin(async move {
            if let Err(e) = Box::pin(token.cancel()).await {
                tracing::debug!(error = %e, "CancelRequest failed");
            }
        }))
    }
}
