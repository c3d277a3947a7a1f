//! The only place in the crate that does I/O: a socket, its read and write buffers, and the
//! handshake, simple-query and extended-query loops that drive the sans-IO [`crate::wire`]
//! codec.
//!
//! Files: `socket` (TCP/Unix, keepalive, address resolution), `framed` (buffers + decoder),
//! `select` (which host and address, `target_session_attrs`, `load_balance_hosts`), `startup`
//! (one attempt: socket, `sslmode`'s TLS negotiation, handshake driver), `tls` (rustls
//! configuration and verifiers), `scram_cache` (PBKDF2 off the executor, cached), `query`
//! (simple query), `extended` (queries with parameters: Parse/Bind/Execute), `params`
//! ([`ToParam`]), `columns` ([`Row::try_get`], [`FromColumn`]), `statements` (the opt-in
//! statement cache), `transaction` ([`Transaction`]), `cancel` (CancelRequest), `listen`
//! (notifications, [`Listener`]).
//!
//! Each connection has a tracing span (`connection`, with the backend's `pid` and the server's
//! `host` address), entered for the events it logs (server notices, a server closing the
//! session), so a log line says which session it came from; opened inside a pool's task, the
//! span is a child of the pool's.
//!
//! State invariants: `busy` is set when a Query (or an extended query, up to its Sync) is
//! written and cleared only by its ReadyForQuery; `broken` is set by any I/O or protocol error (or by `check_closed` seeing
//! EOF or a FATAL) and is never cleared: every later call fails fast with [`Error::is_closed`].
//! A write cut short (a future dropped inside `flush`, leaving unsent bytes) counts as broken
//! too: the server holds part of a message and would read whatever we sent next as its rest.
//! `cancel_sent` is shared with every [`CancelToken`]; once a token exists or has sent a
//! CancelRequest, the connection must not be handed to another user (the cancel could land on
//! their query).

mod cancel;
mod columns;
mod extended;
mod framed;
mod listen;
mod params;
mod query;
mod scram_cache;
mod select;
mod socket;
mod startup;
mod statements;
mod tls;
mod transaction;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use cancel::CancelToken;
pub use columns::{BoxError, Column, FromColumn, RowIndex, QUOTED_TEXT_MAX};
pub use listen::Listener;
pub use params::{IsNull, ParamBuf, ToParam};
pub use transaction::Transaction;

use crate::config::{Config, Limits, SessionState, TargetSessionAttrs};
use crate::error::{Error, Result};
use crate::wire::{
    frontend, BackendKey, BackendMessage, CommandTag, DbError, Session, TransactionStatus,
};
use framed::Framed;
use listen::Inbox;
use socket::PeerAddr;

/// One data row of a query's result, with every value as text (`None` is SQL NULL); read
/// values as Rust types with [`Row::try_get`].
///
/// Two allocations per row however many columns it has: the values' text back to back, and
/// where each one lies in it. The column descriptions are shared by every row of a result.
#[derive(Clone, PartialEq, Eq)]
pub struct Row {
    /// Every non-NULL value, concatenated.
    text: String,
    /// Per column, its value's byte range in `text`; `None` for NULL.
    spans: Vec<Option<(usize, usize)>>,
    /// The RowDescription, for rows of [`Connection::query`]; `None` for `simple_query`'s.
    columns: Option<Arc<[Column]>>,
}

impl Row {
    /// The value of column `idx` as text; `None` for NULL or an out-of-range index.
    pub fn get(&self, idx: usize) -> Option<&str> {
        let (start, end) = (*self.spans.get(idx)?)?;
        self.text.get(start..end)
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries((0..self.len()).map(|i| self.get(i)))
            .finish()
    }
}

/// A NOTIFY received on a channel this session LISTENs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The notifying backend's process id.
    pub pid: i32,
    /// The channel.
    pub channel: String,
    /// The payload.
    pub payload: String,
}

/// A connection to a PostgreSQL server.
#[derive(Debug)]
pub struct Connection {
    // Boxed: a pool moves the connection in and out of its idle queue and guard several times
    // per checkout, and a pointer is cheaper to move than the whole state.
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    io: Framed,
    params: HashMap<String, String>,
    backend_key: Option<BackendKey>,
    status: TransactionStatus,
    broken: bool,
    busy: bool,
    addr: PeerAddr,
    cancel_timeout: Duration,
    /// Set by [`CancelToken::cancel`] before it sends; the `Arc`'s count also tells whether a
    /// token is still alive.
    cancel_sent: Arc<AtomicBool>,
    /// Notifications not yet handed out, at most `Limits::max_pending_notifications`.
    notifications: Inbox,
    /// `connection{pid, host}`: entered for every event this connection logs.
    span: tracing::Span,
    /// When the last query's ReadyForQuery was read: the proof of life `check_closed` trusts
    /// for [`ALIVE_BYPASS`].
    ready_at: Option<Instant>,
    /// The `target_session_attrs` the connection was opened for.
    target: TargetSessionAttrs,
    /// The answers of the target check's queries, for a server that reports neither
    /// `in_hot_standby` nor `default_transaction_read_only` (before PostgreSQL 14).
    probed: SessionState,
    /// A statement failed with 25006 (read_only_sql_transaction) on this session.
    refused_writes: bool,
    /// Set when the session uses TLS: cancel requests go the same way.
    tls: Option<tls::CancelTls>,
    /// The server said it is going away: SQLSTATE class 08, or 57P01/57P02/57P03.
    server_going_away: bool,
    /// The session changed since [`Connection::mark_session_clean`] (or the connect).
    session_changed: bool,
    /// The request in flight is an extended query: a COPY FROM STDIN it starts makes the
    /// server ignore the Sync already sent, so refusing it takes CopyFail and a new Sync.
    extended: bool,
    /// The statement cache, when it is on (`statements.rs`).
    statements: Option<Box<statements::StatementCache>>,
}

/// How long [`Connection::close`] waits for the server to end the session after Terminate. A
/// server ends it at once unless it is still finishing a query (one being cancelled, say) or
/// the network is stalled; then the wait is cut short and the socket closed anyway.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How long a completed round trip vouches for the connection: within it, `check_closed`
/// skips its peek (one `recv` syscall per checkout). The peek only ever narrows a race (the
/// server may close right after it), so HikariCP skips it for 500 ms (`aliveBypassWindowMs`);
/// 1 ms is enough to spare connections cycling back-to-back, where the syscall costs most, and
/// any connection idle longer is peeked.
pub(crate) const ALIVE_BYPASS: Duration = Duration::from_millis(1);

impl Connection {
    fn new(
        mut io: Framed,
        session: Session,
        addr: PeerAddr,
        cancel_timeout: Duration,
        limits: &Limits,
    ) -> Connection {
        io.set_limits(limits.decoder());
        let span = tracing::info_span!(
            "connection",
            pid = session.backend_key.map_or(0, |k| k.pid),
            host = %match &addr {
                PeerAddr::Tcp(a) => a.to_string(),
                PeerAddr::Unix(path) => path.display().to_string(),
            },
        );
        let inner = Inner {
            io,
            params: session.parameters,
            backend_key: session.backend_key,
            status: session.status,
            broken: false,
            busy: false,
            addr,
            cancel_timeout,
            cancel_sent: Arc::new(AtomicBool::new(false)),
            notifications: Inbox::new(limits.max_pending_notifications),
            span,
            ready_at: None,
            target: TargetSessionAttrs::Any,
            probed: SessionState::default(),
            refused_writes: false,
            server_going_away: false,
            session_changed: false,
            tls: None,
            extended: false,
            statements: None,
        };
        Connection {
            inner: Box::new(inner),
        }
    }

    /// Connects and authenticates, trying each host in order (or in a random order with
    /// `load_balance_hosts=random`) until one accepts us and matches `target_session_attrs`
    /// (see the [`Config`] docs).
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future drops the half-open socket.
    ///
    /// # Errors
    /// Connection, authentication or configuration failures. If no host accepted us, the last
    /// failure, whose message lists every attempt (`connection to server at "db1"
    /// (10.0.0.7), port 5432 failed: ...`) and why each failed or was passed over.
    pub async fn connect(config: &Config) -> Result<Connection> {
        let params = config.resolve()?;
        let mut conn = select::connect(&params, select::os_seed()).await?;
        conn.set_statement_cache_capacity(config.get_statement_cache());
        Ok(conn)
    }

    /// [`connect`](Connection::connect) with `load_balance_hosts=random`'s choices drawn from
    /// `seed`: the same seed gives the same order of hosts and addresses. Reproducible tests, or
    /// a client pinned to one server of a list (a seed per client).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), wirepool::Error> {
    /// let config: wirepool::Config = "host=replica1,replica2 load_balance_hosts=random".parse()?;
    /// let conn = wirepool::Connection::connect_with_seed(&config, 42).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Cancel safety
    /// As [`connect`](Connection::connect).
    ///
    /// # Errors
    /// As [`connect`](Connection::connect).
    pub async fn connect_with_seed(config: &Config, seed: u64) -> Result<Connection> {
        let params = config.resolve()?;
        let mut conn = select::connect(&params, seed).await?;
        conn.set_statement_cache_capacity(config.get_statement_cache());
        Ok(conn)
    }

    /// The `target_session_attrs` this connection was opened for.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), wirepool::Error> {
    /// use wirepool::config::TargetSessionAttrs;
    /// let config: wirepool::Config = "host=pg1,pg2 target_session_attrs=read-write".parse()?;
    /// let conn = wirepool::Connection::connect(&config).await?;
    /// assert_eq!(conn.target_session_attrs(), TargetSessionAttrs::ReadWrite);
    /// # Ok(()) }
    /// ```
    pub fn target_session_attrs(&self) -> TargetSessionAttrs {
        self.inner.target
    }

    /// Whether the server, as the session last reported it, still fits `target`: `false` once a
    /// ParameterStatus contradicts it (`in_hot_standby` turning `on` on a demoted primary, or
    /// `off` on a promoted standby; `default_transaction_read_only` changing). No round trip:
    /// PostgreSQL 14+ reports both values at startup and on every change. A server that
    /// reports neither is judged by the answers of the checks made when it connected.
    /// `Any` and `PreferStandby` are satisfied by any server.
    ///
    /// A pool can ask `conn.satisfies(conn.target_session_attrs())` when a connection comes
    /// back, and discard it if the server's role flipped under it.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), wirepool::Error> {
    /// use wirepool::config::TargetSessionAttrs;
    /// let config: wirepool::Config = "host=pg1,pg2 target_session_attrs=primary".parse()?;
    /// let mut conn = wirepool::Connection::connect(&config).await?;
    /// conn.simple_query("SELECT 1").await?;
    /// if !conn.satisfies(TargetSessionAttrs::Primary) {
    ///     conn.close().await?; // demoted since: reconnect to find the new primary
    /// }
    /// # Ok(()) }
    /// ```
    pub fn satisfies(&self, target: TargetSessionAttrs) -> bool {
        // `any` and `prefer-standby` admit every session: skip reading its state (the pool asks
        // on every checkout and return).
        matches!(
            target,
            TargetSessionAttrs::Any | TargetSessionAttrs::PreferStandby
        ) || target.admits(&self.session_state())
    }

    /// Runs a simple query; returns every data row of every statement, in order.
    ///
    /// # Cancel safety
    /// Not cancel-safe: dropping it mid-query leaves the connection busy ([`is_busy`]); the pool
    /// cancels and discards such a connection. A later call on it first reads through the
    /// dropped query's response (refusing a COPY FROM STDIN it started). Dropped while the
    /// Query was still being written, the connection is broken ([`is_broken`]).
    ///
    /// # Errors
    /// A server error ([`Error::is_db`]; the connection stays usable), COPY
    /// ([`Error::is_unsupported`]; usable), or an I/O or protocol error (it is then broken).
    ///
    /// [`is_busy`]: Connection::is_busy
    /// [`is_broken`]: Connection::is_broken
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<Row>> {
        if self.is_broken() {
            self.mark_broken();
            return Err(Error::closed());
        }
        if self.inner.busy {
            // A dropped earlier call: its results are still coming. Skip to its ReadyForQuery.
            self.drain().await?;
        }
        let result = self.run_simple_query(sql).await;
        if let Err(e) = &result {
            if let Some(db) = e.as_db_error() {
                self.note_server_error(db);
            }
            if self.inner.busy {
                // The error came before ReadyForQuery: the stream is not at a message boundary
                // we can trust any more.
                self.mark_broken();
            }
        }
        result
    }

    /// Remembers what a server error says about the session's future (see
    /// [`refused_writes`](Connection::refused_writes),
    /// [`server_going_away`](Connection::server_going_away)).
    fn note_server_error(&mut self, e: &DbError) {
        let code = e.code();
        if code == "25006" {
            self.inner.refused_writes = true;
        }
        if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03") {
            self.inner.server_going_away = true;
        }
    }

    /// Remembers a command that changed the session ([`CommandTag::changes_session`]).
    pub(crate) fn note_command(&mut self, tag: &CommandTag) {
        if tag.changes_session() {
            self.inner.session_changed = true;
            self.note_statements_dropped(tag);
        }
    }

    /// Records a ParameterStatus; a new value of a setting the session can change marks it
    /// changed (`set_config('TimeZone', ...)` is seen this way, though no `SET` tag was sent).
    /// The server's own role (`in_hot_standby`, `default_transaction_read_only`) is not a
    /// session change: [`satisfies`](Connection::satisfies) judges it.
    pub(crate) fn note_parameter(&mut self, name: String, value: String) {
        if name != "in_hot_standby" && self.inner.params.get(&name) != Some(&value) {
            self.inner.session_changed = true;
        }
        self.inner.params.insert(name, value);
    }

    /// Whether this session changed since it was opened or last marked clean, as far as the
    /// server's replies tell ([`CommandTag::changes_session`], and a reported parameter with a
    /// new value). Not seen: settings the server does not report changed by `set_config()`
    /// inside a `SELECT`; temporary tables made by `CREATE TABLE ... AS` or `SELECT ... INTO`,
    /// and other objects in `pg_temp` (functions, types); session advisory locks
    /// (`pg_advisory_lock`); a sequence's `currval`. A pool's reset hook covers those. And seen
    /// though it ends with its transaction: `SET LOCAL`, `SET TRANSACTION` and a cursor declared
    /// without `WITH HOLD` share their tags with what outlives it, so they too make the pool
    /// reset the session. A pool resets a changed session
    /// ([`reset_session`](Connection::reset_session)) before another borrower gets it.
    pub fn session_changed(&self) -> bool {
        self.inner.session_changed
    }

    /// The session as it is now is the clean state later changes are measured against (after
    /// the pool's `configure` hook ran its own `SET`s). No I/O.
    pub fn mark_session_clean(&mut self) {
        self.inner.session_changed = false;
    }

    /// Restores the session to what a new connection has: `DISCARD ALL` (settings, prepared
    /// statements, cursors, `LISTEN`s, temporary tables, advisory locks, plans), which
    /// PostgreSQL refuses inside a transaction block; notifications received for the old
    /// `LISTEN`s and not yet read are dropped with them. The session stays marked changed (the
    /// `DISCARD` itself changed it) until [`mark_session_clean`](Connection::mark_session_clean).
    ///
    /// Cancel safety: as [`simple_query`](Connection::simple_query).
    pub async fn reset_session(&mut self) -> Result<()> {
        self.simple_query("DISCARD ALL").await?;
        self.inner.notifications.clear();
        Ok(())
    }

    /// Whether a statement on this session failed with SQLSTATE 25006
    /// (read_only_sql_transaction): the server is read-only (a standby, or a primary demoted by
    /// a switchover) for this session. A pool that wants a writable server must not reuse it:
    /// the same error would meet every later write (gpustack#6105, HikariCP#1960).
    pub fn refused_writes(&self) -> bool {
        self.inner.refused_writes
    }

    /// Whether the server said it is going away: an error of SQLSTATE class 08 (connection
    /// exception) or 57P01/57P02/57P03 (admin shutdown, crash shutdown, cannot connect now),
    /// in a reply or sent while the connection sat idle.
    pub fn server_going_away(&self) -> bool {
        self.inner.server_going_away
    }

    /// The server backend's process id (0 if the server sent no BackendKeyData).
    pub fn backend_pid(&self) -> i32 {
        self.inner.backend_key.map_or(0, |k| k.pid)
    }

    /// BackendKeyData as sent by the server, if it sent one.
    pub fn backend_key(&self) -> Option<BackendKey> {
        self.inner.backend_key
    }

    /// The transaction status from the last ReadyForQuery.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.inner.status
    }

    /// A server parameter reported by ParameterStatus (`server_version`, `TimeZone`, ...).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.inner.params.get(name).map(String::as_str)
    }

    /// Every server parameter reported so far.
    pub fn parameters(&self) -> &HashMap<String, String> {
        &self.inner.params
    }

    /// `server_version_num` derived from `server_version` (`"15.20 (Debian ...)"` → 150020;
    /// `"9.6.24"` → 90624), if it parses.
    pub fn server_version_num(&self) -> Option<u32> {
        version_num(self.parameter("server_version")?)
    }

    /// Whether an I/O or protocol error, a write cut short by a dropped future, or `close` has
    /// made the connection unusable.
    pub fn is_broken(&self) -> bool {
        self.inner.broken || self.inner.io.has_unsent()
    }

    /// Marks the connection unusable for good and forgets any unsent bytes (a cut message must
    /// never be completed or followed by another).
    fn mark_broken(&mut self) {
        self.inner.broken = true;
        self.inner.io.discard_unsent();
    }

    /// Whether a CancelRequest has been sent for this connection, or still could be: a
    /// [`CancelToken`] from [`cancel_token`](Connection::cancel_token) is alive (a spawned
    /// timeout may not even have started). Once true, a pool must not hand this connection to
    /// anyone else: the cancel may land on a later query (pgbouncer#245, npgsql#1636). A server
    /// that sent no BackendKeyData cannot be cancelled, so only a sent request counts there.
    pub fn cancel_requested(&self) -> bool {
        self.inner.cancel_sent.load(Ordering::Acquire)
            || (self.inner.backend_key.is_some() && Arc::strong_count(&self.inner.cancel_sent) > 1)
    }

    /// Idle, nothing buffered, and a query's ReadyForQuery read less than [`ALIVE_BYPASS`] ago.
    fn vouched_for(&self) -> bool {
        !self.inner.busy
            && !self.inner.io.has_buffered()
            && self
                .inner
                .ready_at
                .is_some_and(|at| at.elapsed() < ALIVE_BYPASS)
    }

    /// Whether a query was sent and its ReadyForQuery not yet read (a `simple_query` future was
    /// dropped mid-flight). Such a connection cannot be reused without draining it.
    pub fn is_busy(&self) -> bool {
        self.inner.busy
    }

    /// Non-blocking, no round trip: has the server closed the connection (EOF, reset, or a FATAL
    /// such as 57P01 sent while idle)? Harmless asynchronous messages (ParameterStatus, notices)
    /// are consumed. Marks the connection broken when it returns `true`.
    ///
    /// A connection whose last query ended less than 1 ms ago is taken as open without the
    /// peek (HikariCP's alive-bypass window, much shorter: see `ALIVE_BYPASS`).
    ///
    /// Meant for idle connections (the pool's checkout peek). On a busy one (a dropped query)
    /// the messages read are that query's response: an ERROR there is ordinary (57014 after a
    /// cancel), only FATAL or PANIC means the server is closing, and its ReadyForQuery makes the
    /// connection idle again. A COPY the dropped query started cannot be answered without
    /// writing, so it makes the connection broken.
    pub fn check_closed(&mut self) -> bool {
        if self.is_broken() {
            self.mark_broken();
            return true;
        }
        if self.vouched_for() {
            return false;
        }
        // An error (reset) counts as closed, like EOF. Either way the bytes read before it are
        // decoded first: a server that closes says why in an ErrorResponse (57P01, 57P05, ...)
        // just before its EOF, and both often arrive by the time of the peek.
        let open = self.inner.io.read_available().unwrap_or(false);
        loop {
            match self.inner.io.try_decode() {
                Ok(None) if open => return false,
                Ok(None) => {
                    self.mark_broken();
                    return true;
                }
                // While idle the server sends an ErrorResponse only as it closes (admin shutdown
                // 57P01, idle_session_timeout 57P05, ...), whatever its severity field says.
                Ok(Some(BackendMessage::ErrorResponse(e))) if !self.inner.busy || is_fatal(&e) => {
                    self.inner
                        .span
                        .in_scope(|| tracing::info!(error = %e, "server closed the connection"));
                    self.note_server_error(&e);
                    self.mark_broken();
                    return true;
                }
                Ok(Some(BackendMessage::ReadyForQuery(status))) if self.inner.busy => {
                    self.inner.status = status;
                    self.inner.busy = false;
                }
                Ok(Some(
                    BackendMessage::CopyInResponse(_) | BackendMessage::CopyBothResponse(_),
                )) if self.inner.busy => {
                    self.mark_broken();
                    return true;
                }
                // A dropped query's commands still changed the session.
                Ok(Some(BackendMessage::CommandComplete(tag))) => self.note_command(&tag),
                Ok(Some(
                    msg @ (BackendMessage::ParameterStatus { .. }
                    | BackendMessage::NoticeResponse(_)
                    | BackendMessage::NotificationResponse { .. }),
                )) => {
                    if self.handle_async(msg).is_err() {
                        self.mark_broken();
                        return true;
                    }
                }
                Ok(Some(msg)) if !self.inner.busy => {
                    if self.handle_async(msg).is_err() {
                        self.mark_broken();
                        return true;
                    }
                }
                // A dropped query's rows and errors: nobody is waiting for them.
                Ok(Some(_)) => {}
                Err(_) => {
                    self.mark_broken();
                    return true;
                }
            }
        }
    }

    /// This connection's tracing span (`connection`, with fields `pid` and `host`): the
    /// parent of every event the connection logs. Instrument work about this connection with it
    /// so its events are attributed too.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), wirepool::Error> {
    /// let config: wirepool::Config = "host=db user=app".parse()?;
    /// let conn = wirepool::Connection::connect(&config).await?;
    /// conn.span().in_scope(|| tracing::info!("opened")); // logged with pid=... host=...
    /// # Ok(()) }
    /// ```
    pub fn span(&self) -> &tracing::Span {
        &self.inner.span
    }

    /// A token that cancels this connection's running query from anywhere. It connects to the
    /// same address this connection uses.
    ///
    /// While the token is alive, [`cancel_requested`](Connection::cancel_requested) is true:
    /// drop it as soon as the query it guards is done, or the pool will discard the connection.
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken {
            addr: self.inner.addr.clone(),
            key: self.inner.backend_key,
            timeout: self.inner.cancel_timeout,
            sent: Arc::clone(&self.inner.cancel_sent),
            tls: self.inner.tls.clone(),
        }
    }

    /// Sends Terminate, closes the socket's sending side, and waits (at most
    /// [`CLOSE_WAIT`]) for the server to close its end: the server backend has then left
    /// `pg_stat_activity`, so a pool that counts the session as gone once this returns never
    /// has more sessions on the server than it counts. A broken connection (including one
    /// whose last write was cut short: Terminate would be read as the rest of that message)
    /// gets no Terminate, only the closed sending side and the same bounded wait: its server
    /// backend ends when it reads that EOF (after the query it may still be running).
    ///
    /// # Cancel safety
    /// Cancel-safe: the socket is closed either way (it is dropped with the future).
    ///
    /// # Errors
    /// If Terminate could not be written.
    pub async fn close(mut self) -> Result<()> {
        let broken = self.is_broken();
        self.mark_broken();
        if !broken {
            frontend::terminate(&mut self.inner.io.wbuf);
            self.inner.io.flush().await?;
        }
        let _ = self.inner.io.shutdown().await;
        // A backend unregisters from pg_stat_activity (a `before_shmem_exit` hook) before its
        // socket closes (an `on_proc_exit` one: PostgreSQL's ipc.c runs them in that order),
        // so its EOF is the proof it is gone.
        let _ = tokio::time::timeout(CLOSE_WAIT, self.inner.io.discard_until_eof()).await;
        Ok(())
    }
}

/// FATAL or PANIC: the server ends the session after sending it.
fn is_fatal(e: &DbError) -> bool {
    matches!(
        e.severity_nonlocalized().unwrap_or(e.severity()),
        "FATAL" | "PANIC"
    )
}

/// Logs a server notice at a level matching its severity.
pub(crate) fn log_notice(n: &DbError) {
    match n.severity_nonlocalized().unwrap_or(n.severity()) {
        "WARNING" => tracing::warn!(code = n.code(), "server: {}", n.message()),
        "NOTICE" | "INFO" => tracing::info!(code = n.code(), "server: {}", n.message()),
        _ => tracing::debug!(code = n.code(), "server: {}", n.message()),
    }
}

#[cfg(test)]
mod tests;

/// `server_version` as `server_version_num` computes it (`"15.20 (Debian ...)"` → 150020,
/// `"9.6.24"` → 90624, `"17devel"` → 170000), from its leading digits and dots, with no
/// allocation (the pool's target check reads it on every checkout with a non-`any` target).
fn version_num(v: &str) -> Option<u32> {
    // `split` always yields a first part.
    let numeric = v
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap_or_default();
    let mut parts = numeric.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    if major >= 10 {
        major.checked_mul(10_000)?.checked_add(minor)
    } else {
        let patch = parts.next().flatten().unwrap_or(0);
        major
            .checked_mul(10_000)?
            .checked_add(minor.checked_mul(100)?)?
            .checked_add(patch)
    }
}
