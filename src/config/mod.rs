//! Connection settings: libpq keyword/value strings, `postgres://` URIs, PG* environment variables
//! and `.pgpass`, resolved into the concrete parameters a connect attempt needs.
//!
//! STUB: the struct below is the interface; parsing is to be filled in (issue #2).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::Error;
use crate::wire::RequireAuth;

/// A password, kept out of `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(p: impl Into<String>) -> Password {
        Password(p.into())
    }

    /// The password itself. Handle with care: never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// libpq's `sslmode`. Only `disable` and `prefer`/`allow` (which fall back to plaintext) connect
/// today; `require` and stricter fail with a clear "TLS is not built in yet" error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Plaintext first, TLS if the server insists (treated as plaintext: TLS is not built in).
    Allow,
    /// TLS if the server supports it, else plaintext (libpq's default).
    #[default]
    Prefer,
    /// TLS required.
    Require,
    /// TLS required, server certificate verified against a CA.
    VerifyCa,
    /// TLS required, certificate and host name verified.
    VerifyFull,
}

/// Where to connect: a TCP host name or address, or a Unix-domain socket directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name or IP address literal.
    Tcp(String),
    /// A directory holding the server's `.s.PGSQL.<port>` socket (a host starting with `/`).
    Unix(PathBuf),
}

/// Parsed connection settings, exactly as given (no environment applied): printing it with
/// `Display` and parsing the result gives the same `Config`. `Debug` and `Display` hide the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub(crate) host: Option<String>,
    pub(crate) hostaddr: Option<String>,
    pub(crate) port: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<Password>,
    pub(crate) dbname: Option<String>,
    pub(crate) passfile: Option<String>,
    pub(crate) connect_timeout: Option<String>,
    pub(crate) application_name: Option<String>,
    pub(crate) options: Option<String>,
    pub(crate) require_auth: Option<String>,
    pub(crate) sslmode: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config").finish_non_exhaustive()
    }
}

impl FromStr for Config {
    type Err = Error;

    fn from_str(_s: &str) -> Result<Config, Error> {
        Err(Error::config("not implemented yet"))
    }
}

/// TCP keepalive settings (libpq's `keepalives*`); ignored for Unix sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keepalives {
    pub enabled: bool,
    pub idle: Option<Duration>,
    pub interval: Option<Duration>,
    pub count: Option<u32>,
}

/// One host to try, in order, with everything resolved (the password may come from `.pgpass`).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub host: Host,
    /// `hostaddr`: connect to this address instead of resolving `host` (which then only names
    /// the server for `.pgpass`).
    pub hostaddr: Option<IpAddr>,
    pub port: u16,
    pub password: Option<Password>,
}

/// The concrete parameters of a connect attempt: `Config` + environment + defaults + `.pgpass`.
#[derive(Debug, Clone)]
pub(crate) struct ConnectParams {
    pub targets: Vec<Target>,
    pub user: String,
    pub dbname: String,
    pub application_name: Option<String>,
    pub options: Option<String>,
    pub connect_timeout: Option<Duration>,
    pub require_auth: RequireAuth,
    pub keepalives: Keepalives,
    pub sslmode: SslMode,
}
