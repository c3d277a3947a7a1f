//! The crate's one public error type.
//!
//! `Error` is opaque: a boxed private [`Kind`] plus an optional source, so it stays one pointer wide
//! on the happy path and can grow variants without breaking users. Callers ask it questions through
//! predicates (`is_timeout()`, `is_auth()`, `code()`, ...) instead of matching on variants, the way
//! tokio-postgres and deadpool expose theirs.
//!
//! # Display or source, never both
//!
//! An error states its cause once, so a chain printer (`anyhow`'s `{:#}`, `eyre`) prints each
//! message once (the Rust API guidelines' rule, C-GOOD-ERR):
//! - an error that *is* its cause (an `io::Error`, the server's [`DbError`], the codec's
//!   [`WireError`], an [`Error::other`]) shows it in `Display`, and `source()` continues with
//!   that cause's own source;
//! - an error that *wraps* a cause (a pool timeout and the last connect error, a failed hook
//!   and the hook's error) shows only itself in `Display`, and `source()` is the cause.
//!
//! [`Error::as_db_error`], [`Error::code`] and [`Error::as_wire_error`] find the server's or the
//! codec's error wherever it sits in that chain.
//!
//! A connect error also says where it happened: the server, port and address of the attempt that
//! failed, after the failures of every earlier attempt (libpq lists them all the same way), so
//! with three hosts each one's reason is visible, not just the last "connection refused".
//!
//! Invariant: no constructor here ever receives a password or a SCRAM key, so neither `Debug` nor
//! `Display` can leak one.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

use crate::wire::{DbError, WireError};

/// `Result` with wirepool's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error wirepool returns: connecting, authenticating, querying, and pool checkout.
///
/// Ask it what happened with the predicates; read the server's error with [`Error::as_db_error`]
/// or [`Error::code`]; walk [`std::error::Error::source`] for the underlying cause.
///
/// ```
/// fn is_retryable(e: &wirepool::Error) -> bool {
///     e.is_timeout() || e.is_closed() || e.code() == Some("57P03")
/// }
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    source: Option<Box<dyn StdError + Send + Sync>>,
    /// For an error from connecting: where, and what failed before.
    attempts: Option<Box<Attempts>>,
}

/// Where a connect error happened, and the failures of the attempts before it.
#[derive(Debug)]
struct Attempts {
    /// `connection to server at "db1" (10.0.0.7), port 5432`, or `... on socket "/tmp/..."`.
    place: String,
    /// Each earlier attempt's whole message, in the order they were made.
    earlier: Vec<String>,
}

/// What went wrong. Private so variants can be added freely.
#[derive(Debug)]
pub(crate) enum Kind {
    /// A socket read or write failed; the source is the `io::Error`.
    Io,
    /// The server closed the connection (EOF), or the connection was already marked broken.
    Closed,
    /// `connect_timeout` elapsed while connecting or authenticating.
    ConnectTimeout,
    /// The connection string or a setting is invalid.
    Config(String),
    /// Authentication failed on the client side (no password, `require_auth` refused the
    /// server's request, an unverifiable SCRAM signature, an unsupported method).
    Auth(String),
    /// The server sent an ErrorResponse; the source is the [`DbError`].
    Db,
    /// The server broke the protocol; the source is the [`WireError`].
    Protocol,
    /// A feature the server asked for is not built in (TLS, COPY, ...).
    Unsupported(String),
    /// The server does not match `target_session_attrs`: libpq's reason, and the target.
    TargetMismatch(String),
    /// TLS could not be set up: the settings or files (`permanent`), or the handshake (the
    /// source is rustls' reason, when there is one).
    Tls {
        /// What failed.
        msg: String,
        /// Whether retrying cannot help (a missing root file, a refused certificate).
        permanent: bool,
    },
    /// A value the caller passed cannot be sent (a NUL byte, over a protocol size limit); the
    /// source is the [`WireError`].
    InvalidInput,
    /// A query's parameters cannot be sent as given (their count, a NUL in a text value, a
    /// parameter's own encoder failing): what is wrong; the source, if any, is the cause.
    InvalidParameters(String),
    /// A row's value cannot be read as asked: which column, and why; the source, if any, is
    /// the parse error.
    Column(String),
    /// `query_one` or `query_opt` got another number of rows: how many.
    RowCount(usize),
    /// A transaction did not do what was asked: what happened.
    Transaction(&'static str),
    /// The pool could not hand out a connection before its deadline.
    PoolTimeout(Box<PoolTimeoutInfo>),
    /// The pool is closed.
    PoolClosed,
    /// `max_waiting` requests were already queued.
    TooManyRequests {
        /// The pool's name.
        pool: String,
        /// The configured limit.
        max_waiting: usize,
    },
    /// `putconn` was given a connection that belongs to another pool.
    ForeignConnection,
    /// Connecting is known to fail (an error retrying cannot fix, or `fail_fast_after`
    /// failures in a row): the pool fails checkouts at once until an attempt succeeds; the
    /// source is the last connect error.
    Unavailable {
        /// The pool's name.
        pool: String,
        /// Connect attempts that failed in a row.
        failures: u32,
    },
    /// What held a pool's capacity when a checkout timed out: work waiting on the server (the
    /// source of a `PoolTimeout` that has no connect error to name).
    CapacityHeld {
        /// Connections dropped mid-query whose queries are being cancelled, and the oldest's
        /// wait so far.
        cancelling: usize,
        oldest_cancel: Duration,
        /// Connect attempts in flight, and the oldest's wait so far.
        connecting: usize,
        oldest_connect: Duration,
    },
    /// A user hook (`configure`, `check`, `reset`) failed; the source is its error.
    Hook(&'static str),
    /// User code (a `Manage` method or a hook) panicked; the pool caught it.
    Panicked(&'static str),
    /// An error from outside wirepool ([`Error::other`]); the source is it.
    Other,
    /// A call of the blocking API (`wirepool::blocking`) that would block came from a thread
    /// that is polling async tasks.
    InsideAsyncRuntime,
    /// A server message is longer than a limit the user can raise (the setting is named); the
    /// source is the [`WireError`].
    LimitExceeded(&'static str),
    /// NOTIFYs arrived while the connection's notification buffer was full, and were dropped.
    NotificationsLost {
        /// How many, in a row.
        missed: u64,
        /// The buffer's limit (`Config::max_pending_notifications`).
        limit: usize,
    },
}

impl Kind {
    /// Whether the source is this error's whole content (shown in `Display`, skipped by
    /// `source()`), rather than a cause it wraps.
    fn is_leaf(&self) -> bool {
        matches!(
            self,
            Kind::Io
                | Kind::Db
                | Kind::Protocol
                | Kind::InvalidInput
                | Kind::Other
                | Kind::LimitExceeded(_)
        )
    }
}

/// What a [`PoolTimeout`](Error::is_pool_timeout) error knows about the pool when it gave up.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolTimeoutInfo {
    /// The pool's name.
    pub pool: String,
    /// How long the request waited.
    pub waited: Duration,
    /// Live connections (idle, in use and being opened) when the request gave up.
    pub size: usize,
    /// Idle connections when the request gave up.
    pub idle: usize,
    /// Requests waiting when the request gave up, this one included.
    pub waiting: usize,
    /// The most recent connection error, if connecting was failing (so a user sees
    /// "password authentication failed", not only "timeout"). Also the error's `source()`.
    pub last_connect_error: Option<String>,
    /// Connections dropped mid-query whose server work was being cancelled when the request
    /// gave up: each holds its slot until the server acknowledges the CancelRequest (bounded
    /// at 5 s), so on an unresponsive server or network they hold the pool's capacity. Without
    /// a connect error, the error's `source()` names them ([`Error::is_capacity_held`]).
    pub cancelling: usize,
    /// Connect attempts in flight when the request gave up (named by `source()` likewise).
    pub connecting: usize,
}

impl Error {
    pub(crate) fn new(kind: Kind) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                source: None,
                attempts: None,
            }),
        }
    }

    pub(crate) fn with_source(
        kind: Kind,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                source: Some(source.into()),
                attempts: None,
            }),
        }
    }

    pub(crate) fn kind(&self) -> &Kind {
        &self.inner.kind
    }

    pub(crate) fn io(e: io::Error) -> Error {
        // An EOF seen as an io::Error is still "the server closed the connection".
        let kind = match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => Kind::Closed,
            _ => Kind::Io,
        };
        Error::with_source(kind, e)
    }

    pub(crate) fn closed() -> Error {
        Error::new(Kind::Closed)
    }

    pub(crate) fn connect_timeout() -> Error {
        Error::new(Kind::ConnectTimeout)
    }

    pub(crate) fn config(msg: impl Into<String>) -> Error {
        Error::new(Kind::Config(msg.into()))
    }

    pub(crate) fn auth(msg: impl Into<String>) -> Error {
        Error::new(Kind::Auth(msg.into()))
    }

    pub(crate) fn db(e: DbError) -> Error {
        Error::with_source(Kind::Db, e)
    }

    pub(crate) fn protocol(e: WireError) -> Error {
        Error::with_source(Kind::Protocol, e)
    }

    pub(crate) fn unsupported(msg: impl Into<String>) -> Error {
        Error::new(Kind::Unsupported(msg.into()))
    }

    /// A TLS handshake failure; `source` says why (rustls' error inside an `io::Error`).
    pub(crate) fn tls(msg: impl Into<String>, source: io::Error) -> Error {
        // A refused certificate stays refused until someone changes a certificate or setting.
        let permanent = source
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            .is_some_and(|e| {
                matches!(
                    e,
                    rustls::Error::InvalidCertificate(_)
                        | rustls::Error::NoCertificatesPresented
                        | rustls::Error::PeerIncompatible(_)
                )
            });
        // The reason goes into the message too: "TLS handshake failed" alone hides whether the
        // certificate was refused or the server hung up.
        Error::with_source(
            Kind::Tls {
                msg: format!("{}: {source}", msg.into()),
                permanent,
            },
            source,
        )
    }

    /// TLS settings or files that cannot work: no root certificates for `verify-full`, a key
    /// that cannot be read.
    pub(crate) fn tls_config(msg: impl Into<String>) -> Error {
        Error::new(Kind::Tls {
            msg: msg.into(),
            permanent: true,
        })
    }

    pub(crate) fn target_mismatch(msg: impl Into<String>) -> Error {
        Error::new(Kind::TargetMismatch(msg.into()))
    }

    /// An outbound encoding error: the caller's value, not the server, is at fault.
    pub(crate) fn invalid_input(e: WireError) -> Error {
        Error::with_source(Kind::InvalidInput, e)
    }

    /// Parameters that cannot be sent as given; nothing was sent.
    pub(crate) fn invalid_parameters(msg: impl Into<String>) -> Error {
        Error::new(Kind::InvalidParameters(msg.into()))
    }

    /// A row's value that cannot be read as asked (`msg` names the column and the text).
    pub(crate) fn column(
        msg: impl Into<String>,
        source: Option<Box<dyn StdError + Send + Sync>>,
    ) -> Error {
        let mut e = Error::new(Kind::Column(msg.into()));
        e.inner.source = source;
        e
    }

    /// `query_one` or `query_opt` got `n` rows.
    pub(crate) fn row_count(n: usize) -> Error {
        Error::new(Kind::RowCount(n))
    }

    /// A transaction that did not do what was asked.
    pub(crate) fn transaction(msg: &'static str) -> Error {
        Error::new(Kind::Transaction(msg))
    }

    /// Marks this error as the failure of a connect attempt at `place`.
    pub(crate) fn at(mut self, place: String) -> Error {
        match &mut self.inner.attempts {
            Some(a) => a.place = place,
            None => {
                self.inner.attempts = Some(Box::new(Attempts {
                    place,
                    earlier: Vec::new(),
                }))
            }
        }
        self
    }

    /// Records the messages of the attempts that failed before this one.
    pub(crate) fn after(mut self, earlier: Vec<String>) -> Error {
        if earlier.is_empty() {
            return self;
        }
        match &mut self.inner.attempts {
            Some(a) => a.earlier = earlier,
            None => {
                self.inner.attempts = Some(Box::new(Attempts {
                    place: "connecting".to_owned(),
                    earlier,
                }))
            }
        }
        self
    }

    pub(crate) fn pool_closed() -> Error {
        Error::new(Kind::PoolClosed)
    }

    pub(crate) fn too_many_requests(pool: &str, max_waiting: usize) -> Error {
        Error::new(Kind::TooManyRequests {
            pool: pool.to_owned(),
            max_waiting,
        })
    }

    pub(crate) fn foreign_connection() -> Error {
        Error::new(Kind::ForeignConnection)
    }

    pub(crate) fn hook(which: &'static str, source: Error) -> Error {
        Error::with_source(Kind::Hook(which), source)
    }

    pub(crate) fn inside_async_runtime() -> Error {
        Error::new(Kind::InsideAsyncRuntime)
    }

    /// A server message over the limit that `setting` raises.
    pub(crate) fn limit_exceeded(setting: &'static str, e: WireError) -> Error {
        Error::with_source(Kind::LimitExceeded(setting), e)
    }

    pub(crate) fn notifications_lost(missed: u64, limit: usize) -> Error {
        Error::new(Kind::NotificationsLost { missed, limit })
    }

    /// An error from outside wirepool: what a [`Manage`](crate::pool::Manage) implementation or
    /// a pool hook returns when its own work fails (deadpool's `Manager::Error`, without a type
    /// parameter on every pool type). It displays as `error` does, and `source()` continues
    /// with `error`'s own source.
    ///
    /// ```
    /// let e = wirepool::Error::other("the cache server refused us");
    /// assert!(e.is_other());
    /// assert_eq!(e.to_string(), "the cache server refused us");
    /// let io = std::io::Error::new(std::io::ErrorKind::Other, "disk full");
    /// let e = wirepool::Error::other(io);
    /// assert!(e.as_other().unwrap().downcast_ref::<std::io::Error>().is_some());
    /// ```
    pub fn other(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Error {
        Error::with_source(Kind::Other, error)
    }

    /// This error and its causes on one line, `": "` between them (what `anyhow` prints for
    /// `{:#}`): for messages that must stand alone, such as a pool timeout's
    /// [`PoolTimeoutInfo::last_connect_error`].
    pub(crate) fn report(&self) -> String {
        let mut line = self.to_string();
        let mut cause = self.source();
        while let Some(e) = cause {
            line.push_str(": ");
            line.push_str(&e.to_string());
            cause = e.source();
        }
        line
    }

    /// The error given to [`Error::other`], if this is one.
    pub fn as_other(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        match self.kind() {
            Kind::Other => self.inner.source.as_deref(),
            _ => None,
        }
    }

    /// Made by [`Error::other`]: a `Manage` implementation's or a hook's own error.
    pub fn is_other(&self) -> bool {
        matches!(self.kind(), Kind::Other)
    }

    /// User code run by the pool (a `Manage` method, a hook) panicked; the pool contained it
    /// and counts it as a failed attempt.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind(), Kind::Panicked(_))
    }

    /// This error, then every error in its `source()` chain, looking inside the shared last
    /// connect error a pool timeout carries.
    fn chain(&self) -> impl Iterator<Item = &(dyn StdError + 'static)> {
        let folded = self
            .inner
            .source
            .as_deref()
            .filter(|_| self.inner.kind.is_leaf())
            .map(|s| s as &(dyn StdError + 'static));
        let first: &(dyn StdError + 'static) = self;
        std::iter::once(first)
            .chain(folded)
            .chain(std::iter::successors(
                self.source(),
                |e: &&(dyn StdError + 'static)| (*e).source(),
            ))
    }

    /// The server's error, if this error is (or was caused by) an ErrorResponse.
    pub fn as_db_error(&self) -> Option<&DbError> {
        self.chain().skip(1).find_map(|e| {
            e.downcast_ref::<DbError>()
                .or_else(|| nested(e).and_then(Error::as_db_error))
        })
    }

    /// The SQLSTATE code of the server's error (`"28P01"`, `"57014"`, ...), if there is one.
    pub fn code(&self) -> Option<&str> {
        self.as_db_error().map(DbError::code)
    }

    /// The codec error, if the server broke the protocol (here or in a cause).
    pub fn as_wire_error(&self) -> Option<WireError> {
        self.chain().skip(1).find_map(|e| {
            e.downcast_ref::<WireError>()
                .copied()
                .or_else(|| nested(e).and_then(Error::as_wire_error))
        })
    }

    /// A timeout: `connect_timeout` while connecting, or the pool's checkout `timeout`.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind(), Kind::ConnectTimeout | Kind::PoolTimeout(_))
    }

    /// The pool could not hand out a connection before its `timeout`.
    pub fn is_pool_timeout(&self) -> bool {
        matches!(self.kind(), Kind::PoolTimeout(_))
    }

    /// What the pool knew when a checkout timed out.
    pub fn pool_timeout_info(&self) -> Option<&PoolTimeoutInfo> {
        match self.kind() {
            Kind::PoolTimeout(info) => Some(info),
            _ => None,
        }
    }

    /// The pool is closed.
    pub fn is_pool_closed(&self) -> bool {
        matches!(self.kind(), Kind::PoolClosed)
    }

    /// The `source()` of a [`PoolTimeout`](Error::is_pool_timeout) that has no connect error to
    /// name: what held the pool's capacity, waiting on the server (connections awaiting the
    /// cancellation of their queries, connects not yet answered), and for how long. During a
    /// network stall this is what says the network, not the load, is the problem.
    pub fn is_capacity_held(&self) -> bool {
        matches!(self.kind(), Kind::CapacityHeld { .. })
    }

    /// The pool refused the request at once because `max_waiting` requests were queued.
    pub fn is_too_many_requests(&self) -> bool {
        matches!(self.kind(), Kind::TooManyRequests { .. })
    }

    /// The connection is gone: the server closed it, or it was reset. The connection must not
    /// be used again.
    pub fn is_closed(&self) -> bool {
        matches!(self.kind(), Kind::Closed)
    }

    /// Authentication failed: on the client side (no password, `require_auth`, a bad SCRAM
    /// signature) or on the server side (SQLSTATE class 28: invalid authorization).
    pub fn is_auth(&self) -> bool {
        match self.kind() {
            Kind::Auth(_) => true,
            Kind::Db => self.code().is_some_and(|c| c.starts_with("28")),
            _ => false,
        }
    }

    /// A connect error that retrying cannot fix without a change elsewhere: a wrong password or
    /// a missing pg_hba entry (SQLSTATE class 28), a database that does not exist (3D000) or
    /// may not be connected to (42501), the client refusing to authenticate (`require_auth`),
    /// an invalid setting, a server that asks for something not built in, or a peer that is not
    /// PostgreSQL at all (an HTTP server on the port). A pool hands such an error to waiting
    /// checkouts at once, and keeps retrying in the background (passwords rotate).
    ///
    /// Refused connections, timeouts, `57P03` (starting up), `53300` (too many connections) and
    /// [`is_target_mismatch`](Error::is_target_mismatch) (no primary for the moment of a
    /// failover) pass: not included.
    ///
    /// ```
    /// let typo = "hots=db.example.com".parse::<wirepool::Config>().unwrap_err();
    /// assert!(typo.is_permanent_connect_error());
    /// assert!(!wirepool::Error::other("a network blip").is_permanent_connect_error());
    /// ```
    pub fn is_permanent_connect_error(&self) -> bool {
        match self.kind() {
            Kind::Auth(_) | Kind::Config(_) | Kind::Unsupported(_) => true,
            Kind::Tls { permanent, .. } => *permanent,
            Kind::Db => self
                .code()
                .is_some_and(|c| c.starts_with("28") || c == "3D000" || c == "42501"),
            Kind::Protocol => matches!(self.as_wire_error(), Some(WireError::NotPostgres { .. })),
            _ => false,
        }
    }

    /// The pool failed the checkout at once because connecting is known to fail (see
    /// `PoolBuilder::fail_fast_after`); [`Error::code`] and `source()` give the last connect
    /// error.
    pub fn is_pool_unavailable(&self) -> bool {
        matches!(self.kind(), Kind::Unavailable { .. })
    }

    /// The server sent an ErrorResponse ([`Error::as_db_error`] has it).
    pub fn is_db(&self) -> bool {
        matches!(self.kind(), Kind::Db)
    }

    /// The server broke the protocol (malformed or unexpected message, a limit exceeded).
    pub fn is_protocol(&self) -> bool {
        matches!(self.kind(), Kind::Protocol)
    }

    /// The connection string or a setting is invalid.
    pub fn is_config(&self) -> bool {
        matches!(self.kind(), Kind::Config(_))
    }

    /// A socket-level I/O error other than the peer closing the connection.
    pub fn is_io(&self) -> bool {
        matches!(self.kind(), Kind::Io)
    }

    /// TLS failed: the settings or certificate files cannot work (`verify-full` without root
    /// certificates, an unreadable key), the server refused TLS where it was required, or the
    /// handshake failed (an untrusted or mismatched certificate: the message and `source()` say
    /// which).
    ///
    /// ```
    /// # async fn demo() {
    /// let config: wirepool::Config = "host=db sslmode=verify-full sslrootcert=/nonexistent"
    ///     .parse()
    ///     .unwrap();
    /// let e = wirepool::Connection::connect(&config).await.unwrap_err();
    /// assert!(e.is_tls());
    /// # }
    /// ```
    pub fn is_tls(&self) -> bool {
        matches!(self.kind(), Kind::Tls { .. })
    }

    /// The server asked for something wirepool does not implement (COPY, GSSAPI, ...).
    pub fn is_unsupported(&self) -> bool {
        matches!(self.kind(), Kind::Unsupported(_))
    }

    /// No server matched `target_session_attrs`: the last one tried was, say, a standby where
    /// `read-write` was asked for. Usually passing: during a failover no server is primary for
    /// a moment. The message lists every host tried and why each was passed over.
    pub fn is_target_mismatch(&self) -> bool {
        matches!(self.kind(), Kind::TargetMismatch(_))
    }

    /// A value passed by the caller cannot be sent as it is: it contains a NUL byte, exceeds a
    /// protocol size limit, or a query was given more or fewer parameters than its text uses.
    /// Nothing was sent; the connection is still usable.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self.kind(), Kind::InvalidInput | Kind::InvalidParameters(_))
    }

    /// A row's value could not be read as the type asked for (`Row::try_get`): no such column,
    /// NULL read as a type without NULL (read it as an `Option`), or text that does not parse
    /// as the type. The message names the column and quotes the text.
    pub fn is_column(&self) -> bool {
        matches!(self.kind(), Kind::Column(_))
    }

    /// `query_one` returned no row or several, or `query_opt` several (the connection is still
    /// usable: every row was read).
    pub fn is_row_count(&self) -> bool {
        matches!(self.kind(), Kind::RowCount(_))
    }

    /// The server sent a message longer than a limit the user sets (a row over
    /// [`Config::max_message_len`](crate::Config::max_message_len)); the message names the
    /// setting. The connection is broken: the rest of the message was never read.
    pub fn is_limit_exceeded(&self) -> bool {
        matches!(self.kind(), Kind::LimitExceeded(_))
    }

    /// NOTIFYs were lost: they arrived (with a query's response) while the connection already
    /// buffered [`Config::max_pending_notifications`](crate::Config::max_pending_notifications)
    /// unread ones. Returned in the place of the lost notifications, after those received
    /// before them and before those received after; the connection stays usable.
    /// [`notifications_missed`](Error::notifications_missed) says how many.
    pub fn is_notifications_lost(&self) -> bool {
        matches!(self.kind(), Kind::NotificationsLost { .. })
    }

    /// For [`is_notifications_lost`](Error::is_notifications_lost), how many notifications
    /// were lost at this point of the stream.
    pub fn notifications_missed(&self) -> Option<u64> {
        match self.kind() {
            Kind::NotificationsLost { missed, .. } => Some(*missed),
            _ => None,
        }
    }

    /// A [`Transaction`](crate::conn::Transaction) did not do what was asked: its `commit` found
    /// the transaction already failed (the server answered `COMMIT` with `ROLLBACK`: none of its
    /// work was saved), or `transaction()` was called on a connection already inside one.
    pub fn is_transaction(&self) -> bool {
        matches!(self.kind(), Kind::Transaction(_))
    }

    /// `putconn` was given a connection from another pool.
    pub fn is_foreign_connection(&self) -> bool {
        matches!(self.kind(), Kind::ForeignConnection)
    }

    /// A blocking call ([`crate::blocking`]) was made from a thread that runs async tasks
    /// (inside `#[tokio::main]`, a spawned task, or `block_on`), where waiting would stall
    /// every task on that thread. Nothing was done: use the async [`Pool`](crate::Pool)
    /// there, or move the blocking call into `tokio::task::spawn_blocking`.
    pub fn is_inside_async_runtime(&self) -> bool {
        matches!(self.kind(), Kind::InsideAsyncRuntime)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(a) = &self.inner.attempts {
            for earlier in &a.earlier {
                write!(f, "{earlier}; ")?;
            }
            write!(f, "{} failed: ", a.place)?;
        }
        match self.kind() {
            Kind::Io => f.write_str("I/O error")?,
            Kind::Closed => f.write_str("connection closed")?,
            Kind::ConnectTimeout => f.write_str("timed out connecting to the server")?,
            Kind::Config(msg) => write!(f, "invalid configuration: {msg}")?,
            Kind::Auth(msg) => write!(f, "authentication failed: {msg}")?,
            Kind::Db => f.write_str("server error")?,
            Kind::Protocol => f.write_str("protocol error")?,
            Kind::Unsupported(msg) => write!(f, "unsupported: {msg}")?,
            Kind::TargetMismatch(msg) => f.write_str(msg)?,
            Kind::Tls { msg, .. } => write!(f, "TLS: {msg}")?,
            Kind::InvalidInput => f.write_str("invalid input")?,
            Kind::InvalidParameters(msg) => write!(f, "invalid input: {msg}")?,
            Kind::Column(msg) => write!(f, "column {msg}")?,
            Kind::RowCount(n) => write!(f, "expected one row, the query returned {n}")?,
            Kind::Transaction(msg) => f.write_str(msg)?,
            Kind::PoolTimeout(i) => write!(
                f,
                "pool '{}': couldn't get a connection after {:.3} s (size {}, idle {}, waiting {})",
                i.pool,
                i.waited.as_secs_f64(),
                i.size,
                i.idle,
                i.waiting
            )?,
            Kind::PoolClosed => f.write_str("the pool is closed")?,
            Kind::TooManyRequests { pool, max_waiting } => write!(
                f,
                "pool '{pool}': too many requests waiting (max_waiting = {max_waiting})"
            )?,
            Kind::ForeignConnection => {
                f.write_str("the connection does not belong to this pool")?
            }
            Kind::Unavailable { pool, failures } => write!(
                f,
                "pool '{pool}': no connection can be opened ({failures} failed attempt(s) in a \
                 row); failing at once until one succeeds"
            )?,
            Kind::CapacityHeld {
                cancelling,
                oldest_cancel,
                connecting,
                oldest_connect,
            } => {
                f.write_str("the pool's capacity was held by ")?;
                if *cancelling > 0 {
                    write!(
                        f,
                        "{cancelling} connection(s) awaiting the cancellation of their queries \
                         (the oldest for {:.3} s)",
                        oldest_cancel.as_secs_f64()
                    )?;
                }
                if *cancelling > 0 && *connecting > 0 {
                    f.write_str(" and ")?;
                }
                if *connecting > 0 {
                    write!(
                        f,
                        "{connecting} connect(s) not yet answered (the oldest for {:.3} s)",
                        oldest_connect.as_secs_f64()
                    )?;
                }
                f.write_str(": the server or the network is slow to answer")?;
            }
            Kind::Hook(which) => write!(f, "the pool's `{which}` hook failed")?,
            Kind::Panicked(what) => write!(f, "{what} panicked")?,
            Kind::Other => {}
            Kind::InsideAsyncRuntime => f.write_str(
                "a blocking wirepool call was made inside an async runtime, where it would \
                 stall the runtime's thread: use the async API (wirepool::Pool) there, or run \
                 the blocking call in tokio::task::spawn_blocking",
            )?,
            Kind::LimitExceeded(setting) => write!(f, "over the limit set by {setting}")?,
            Kind::NotificationsLost { missed, limit } => write!(
                f,
                "{missed} notification(s) lost: they arrived while {limit} unread ones filled \
                 the buffer (Config::max_pending_notifications)"
            )?,
        }
        // A leaf shows its content ("server error: FATAL 28P01 ..."); a wrapper leaves its
        // cause to `source()` (module docs).
        match (&self.inner.source, self.inner.kind.is_leaf()) {
            (Some(src), true) if matches!(self.inner.kind, Kind::Other) => write!(f, "{src}"),
            (Some(src), true) => write!(f, ": {src}"),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        if let Some(src) = &self.inner.source {
            d.field("source", src);
        }
        if let Some(attempts) = &self.inner.attempts {
            d.field("attempts", attempts);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        let source = self.inner.source.as_deref()?;
        if self.inner.kind.is_leaf() {
            source.source()
        } else {
            Some(source)
        }
    }
}

/// `e` as a wirepool [`Error`], directly or shared behind an `Arc` (a pool's last connect
/// error).
fn nested<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a Error> {
    e.downcast_ref::<Error>()
        .or_else(|| e.downcast_ref::<std::sync::Arc<Error>>().map(|a| &**a))
}

impl From<WireError> for Error {
    fn from(e: WireError) -> Error {
        Error::protocol(e)
    }
}
