//! Connection settings: libpq keyword/value strings, `postgres://` URIs, PG* environment variables
//! and `.pgpass`, resolved into the concrete parameters a connect attempt needs.
//!
//! Two stages, like libpq's `PQconninfoParse` and then `connectOptions2`:
//! 1. Parsing (`FromStr`, the setters) stores each keyword's value as given, as text. It rejects
//!    bad syntax and unknown keywords, nothing else, so a `Config` printed with
//!    [`Config::to_conninfo_string`] parses back to an equal `Config` (its [`Limits`], which
//!    are not keywords, aside).
//! 2. Resolving (`resolve.rs`) applies the PG* environment, the defaults and `.pgpass`, and
//!    validates every value (ports, hostaddr, timeouts, modes) into a `ConnectParams`.
//!
//! Invariant: the password never appears in `Debug`, `Display`, an error message or a log line;
//! only [`Config::to_conninfo_string`] prints it.

mod access;
mod conninfo;
mod keyword;
mod limits;
mod pgpass;
mod resolve;
mod target;
mod tls;
mod uri;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::Error;
use keyword::Keyword;

pub use limits::{Limits, DEFAULT_MAX_PENDING_NOTIFICATIONS};
#[doc(hidden)]
pub use resolve::{ConnectParams, Keepalives, Target};
pub use target::{LoadBalanceHosts, TargetSessionAttrs};
pub(crate) use target::{SessionState, Verdict};
#[doc(hidden)]
pub use tls::{RootCert, TlsParams, TlsVersion};

/// A password, kept out of `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    ///
    /// ```
    /// let p = wirepool::config::Password::new("s3cret");
    /// assert_eq!(format!("{p:?}"), "Password(<redacted>)");
    /// ```
    pub fn new(p: impl Into<String>) -> Password {
        Password(p.into())
    }

    /// The password itself. Handle with care: never log it.
    ///
    /// ```
    /// assert_eq!(wirepool::config::Password::new("s3cret").expose(), "s3cret");
    /// ```
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// libpq's `sslmode`, with libpq's meanings (libpq-connect "SSL Support"). Whatever the mode, a
/// root certificate file that exists (`sslrootcert`, else `~/.postgresql/root.crt`) makes every
/// TLS connection verify the server's chain, as in libpq; without one, `require` (and `prefer`,
/// `allow`) take any certificate the server proves it holds the key of. Unix-domain sockets never
/// use TLS.
///
/// ```
/// use wirepool::config::SslMode;
/// assert_eq!("verify-full".parse::<SslMode>().unwrap(), SslMode::VerifyFull);
/// assert_eq!(SslMode::Prefer.as_str(), "prefer");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Plaintext first; TLS on a new connection if the server refuses the plaintext one.
    Allow,
    /// TLS if the server supports it; plaintext after a refused SSLRequest, a failed handshake or
    /// a server error under TLS (libpq's default).
    #[default]
    Prefer,
    /// TLS required (the chain verified if a root certificate file exists).
    Require,
    /// TLS required, the server certificate's chain verified against the root certificates.
    VerifyCa,
    /// TLS required, the chain and the host name (a subjectAltName) verified.
    VerifyFull,
}

impl SslMode {
    /// libpq's spelling: `disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl FromStr for SslMode {
    type Err = Error;

    /// # Errors
    /// Anything but libpq's six spellings (case-sensitive, as in libpq).
    fn from_str(s: &str) -> Result<SslMode, Error> {
        [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
        .ok_or_else(|| resolve::invalid_value(Keyword::Sslmode, s))
    }
}

/// Where to connect: a TCP host name or address, or a Unix-domain socket directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name or IP address literal.
    Tcp(String),
    /// A directory holding the server's `.s.PGSQL.<port>` socket (a host starting with `/`).
    Unix(PathBuf),
}

/// Connection settings, as given: parsed from a libpq keyword/value string or a `postgres://`
/// URI, or built with the setters. Nothing is looked up or validated until connecting, when
/// the PG* environment variables, the defaults and `.pgpass` fill the gaps, as in libpq.
///
/// ```
/// use wirepool::Config;
///
/// let a: Config = "host=db1,db2 port=5433 user=app dbname=shop connect_timeout=5".parse()?;
/// let b: Config = "postgresql://app@db1:5433,db2:5433/shop?connect_timeout=5".parse()?;
/// assert_eq!(a.get_host(), Some("db1,db2"));
/// assert_eq!(b.get_port(), Some("5433,5433"));
///
/// let mut c = Config::new();
/// c.host("db1").port(5433).user("app").dbname("shop");
/// assert_eq!(c.to_string(), "host=db1 port=5433 dbname=shop user=app");
/// # Ok::<(), wirepool::Error>(())
/// ```
///
/// # Keywords
///
/// | keyword | environment | default when connecting |
/// |---|---|---|
/// | `host` | `PGHOST` | Unix sockets in `/var/run/postgresql`, then `/tmp` |
/// | `hostaddr` | `PGHOSTADDR` | — (an IP address: skips name resolution) |
/// | `port` | `PGPORT` | 5432 |
/// | `dbname` | `PGDATABASE` | the user name |
/// | `user` | `PGUSER` | `$USER`, else `$LOGNAME`, else `postgres` |
/// | `password` | `PGPASSWORD` | from `passfile` |
/// | `passfile` | `PGPASSFILE` | `$HOME/.pgpass` |
/// | `connect_timeout` | `PGCONNECT_TIMEOUT` | none (whole seconds, per host; 1 means 2) |
/// | `client_encoding` | `PGCLIENTENCODING` | UTF8 (the only one accepted, with `auto`) |
/// | `options` | `PGOPTIONS` | — |
/// | `application_name` | `PGAPPNAME` | `fallback_application_name` |
/// | `keepalives`, `keepalives_idle`, `_interval`, `_count` | — | on, system defaults |
/// | `tcp_user_timeout` | — | system default (milliseconds; Linux, ignored elsewhere) |
/// | `sslmode` | `PGSSLMODE` | `prefer`; `verify-full` with `sslrootcert=system` (see [`SslMode`]) |
/// | `sslrootcert` | `PGSSLROOTCERT` | `~/.postgresql/root.crt` if it exists; `system`: the OS trust store |
/// | `sslcert`, `sslkey` | `PGSSLCERT`, `PGSSLKEY` | `~/.postgresql/postgresql.crt`, `.key` (PEM; the key unencrypted, mode 0600) |
/// | `sslcrl`, `sslcrldir` | `PGSSLCRL`, `PGSSLCRLDIR` | `~/.postgresql/root.crl` if it exists |
/// | `sslsni` | `PGSSLSNI` | `1` (never for an IP address) |
/// | `ssl_min_protocol_version`, `ssl_max_protocol_version` | `PGSSLMINPROTOCOLVERSION`, `PGSSLMAXPROTOCOLVERSION` | `TLSv1.2`, none |
/// | `sslnegotiation` | `PGSSLNEGOTIATION` | `postgres` (`direct`: PostgreSQL 17's TLS without SSLRequest; `require` or stronger only) |
/// | `require_auth` | `PGREQUIREAUTH` | any method |
/// | `channel_binding` | `PGCHANNELBINDING` | `prefer` (`require`: only SCRAM-SHA-256-PLUS over TLS may authenticate) |
/// | `target_session_attrs` | `PGTARGETSESSIONATTRS` | `any` (see [`TargetSessionAttrs`]) |
/// | `load_balance_hosts` | `PGLOADBALANCEHOSTS` | `disable` (see [`LoadBalanceHosts`]) |
///
/// The deprecated `requiressl` is read as libpq reads it (`1` → `sslmode=require`).
/// `sslcompression` (ignored by libpq too) and `sslpassword` are accepted and dropped: wirepool
/// refuses encrypted private keys with an error saying so. Other libpq keywords (`service`,
/// `gssencmode`, `replication`, ...) are refused by name.
///
/// Bounds on what the server can make a connection hold (the longest row, the SCRAM iteration
/// count, unread notifications) are Rust-side settings, not keywords: see [`Limits`] and
/// [`Config::max_message_len`].
///
/// # One cluster, a write pool and a read pool
///
/// A conninfo listing every server of an HA cluster serves both kinds of pool; only the target
/// differs ([`Config::with_target_session_attrs`]):
///
/// ```
/// use wirepool::config::TargetSessionAttrs;
/// let cluster: wirepool::Config = "host=pg1,pg2,pg3 dbname=shop user=app connect_timeout=5".parse()?;
/// let writes = cluster.with_target_session_attrs(TargetSessionAttrs::ReadWrite);
/// let reads = cluster
///     .with_target_session_attrs(TargetSessionAttrs::PreferStandby)
///     .with_load_balance_hosts(wirepool::config::LoadBalanceHosts::Random);
/// assert_eq!(writes.get_target_session_attrs(), Some("read-write"));
/// assert_eq!(reads.get("load_balance_hosts"), Some("random"));
/// # Ok::<(), wirepool::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Every keyword but `password`, indexed by `Keyword as usize`; `None` = not given.
    values: [Option<String>; keyword::COUNT],
    password: Option<Password>,
    /// Rust-side settings, not keywords (see [`Limits`]).
    limits: Limits,
    /// The statement cache's capacity for each connection (0: off); not a keyword.
    statement_cache: usize,
}

impl Config {
    /// An empty configuration: every setting comes from the environment or the defaults.
    ///
    /// ```
    /// assert_eq!(wirepool::Config::new().to_string(), "");
    /// ```
    pub fn new() -> Config {
        Config::default()
    }

    /// Gives each connection opened with this configuration a statement cache of `capacity`
    /// named statements ([`Connection::set_statement_cache_capacity`]); 0, the default, leaves
    /// it off. A Rust-side setting, not a conninfo keyword.
    ///
    /// Behind PgBouncer in transaction mode, only with PgBouncer ≥ 1.21 and
    /// `max_prepared_statements` set; off, every query uses the unnamed statement, which is safe
    /// behind any pooler.
    ///
    /// ```
    /// let mut config: wirepool::Config = "host=db".parse()?;
    /// config.statement_cache(100);
    /// assert_eq!(config.get_statement_cache(), 100);
    /// assert_eq!(config.to_string(), "host=db");
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    ///
    /// [`Connection::set_statement_cache_capacity`]: crate::Connection::set_statement_cache_capacity
    pub fn statement_cache(&mut self, capacity: usize) -> &mut Config {
        self.statement_cache = capacity;
        self
    }

    /// The statement cache's capacity for each connection (0: off).
    pub fn get_statement_cache(&self) -> usize {
        self.statement_cache
    }

    /// The whole configuration as a keyword/value string, **password included**: it contains
    /// the password, so never log it. Parsing the result gives an equal `Config`, but for
    /// [`Limits`], which are not keywords and are left out.
    ///
    /// ```
    /// let config: wirepool::Config = "postgres://app:s3cret@db/shop".parse()?;
    /// let s = config.to_conninfo_string();
    /// assert_eq!(s, "host=db dbname=shop user=app password=s3cret");
    /// assert_eq!(s.parse::<wirepool::Config>()?, config);
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn to_conninfo_string(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = conninfo::write(self, &mut s, true);
        s
    }

    /// Sets any supported keyword from text, exactly as a keyword/value string would.
    ///
    /// ```
    /// let mut config = wirepool::Config::new();
    /// config.set("keepalives_idle", "30")?.set("sslrootcert", "/etc/ssl/db-ca.pem")?;
    /// assert_eq!(config.get("keepalives_idle"), Some("30"));
    /// assert!(config.set("foo", "1").is_err());
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    ///
    /// # Errors
    /// An unknown or unsupported keyword.
    pub fn set(&mut self, keyword: &str, value: &str) -> Result<&mut Config, Error> {
        self.store(keyword, value.to_owned(), |name| {
            Error::config(format!("invalid connection option \"{name}\""))
        })?;
        Ok(self)
    }

    /// The value of any keyword as given; `None` if it was not set, is unknown, or is
    /// `password` (see [`Config::get_password`]).
    ///
    /// ```
    /// let config: wirepool::Config = "keepalives=0".parse()?;
    /// assert_eq!(config.get("keepalives"), Some("0"));
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn get(&self, keyword: &str) -> Option<&str> {
        Keyword::from_name(keyword)
            .filter(|&k| k != Keyword::Password)
            .and_then(|k| self.raw(k))
    }
}

impl FromStr for Config {
    type Err = Error;

    /// Parses a libpq keyword/value string, or a URI if it starts with `postgresql://` or
    /// `postgres://`.
    ///
    /// # Errors
    /// Bad syntax or an unknown keyword, with libpq's wording (`invalid connection option
    /// "foo"`). Values are checked later, when connecting.
    fn from_str(s: &str) -> Result<Config, Error> {
        // libpq sees the end of a C string there and drops the rest; refusing it is safer than
        // silently connecting with half a setting.
        if s.contains('\0') {
            return Err(Error::config(
                "connection info string contains a NUL character",
            ));
        }
        match uri::prefix_len(s) {
            Some(prefix) => uri::parse(s, prefix),
            None => conninfo::parse(s),
        }
    }
}

/// A keyword/value string without the password; use [`Config::to_conninfo_string`] to keep it.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        conninfo::write(self, f, false)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Config");
        for k in Keyword::ALL {
            match k {
                Keyword::Password => self.password.as_ref().map(|p| d.field(k.name(), p)),
                _ => self.raw(k).map(|v| d.field(k.name(), &v)),
            };
        }
        if self.limits != Limits::default() {
            d.field("limits", &self.limits);
        }
        if self.statement_cache != 0 {
            d.field("statement_cache", &self.statement_cache);
        }
        d.finish()
    }
}
