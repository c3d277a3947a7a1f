//! Resolving a [`Config`] into the [`ConnectParams`] of one connect attempt, in libpq's order
//! (`conninfo_add_defaults`, then `connectOptions2`): a value given in the `Config` wins, even an
//! empty one; else the keyword's PG* environment variable; else the compiled default. Then each
//! host gets its password: the given one, else `$PGPASSWORD`, else `.pgpass`.
//!
//! All validation of values lives here, so a string that parses can still fail to resolve
//! (`port=notaport`), as with libpq. The TLS settings resolve in `tls.rs`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::conninfo::is_space;
use super::keyword::{Keyword, COUNT};
use super::limits::Limits;
use super::pgpass::PassFile;
use super::target::{LoadBalanceHosts, TargetSessionAttrs};
use super::tls::{self, TlsParams};
use super::{Config, Host, Password, SslMode};
use crate::error::Error;
use crate::wire::{ChannelBindingMode, RequireAuth};

/// libpq's `DEF_PGPORT`.
const DEFAULT_PORT: u16 = 5432;

/// Where the server's socket is looked for when no host is given, tried in this order. libpq has
/// one compiled-in `DEFAULT_PGSOCKET_DIR`: `/tmp` upstream, `/var/run/postgresql` in the Debian
/// and Red Hat packages; trying both finds a server built either way.
#[cfg(unix)]
const DEFAULT_SOCKET_DIRS: [&str; 2] = ["/var/run/postgresql", "/tmp"];

/// How a TCP socket notices a peer that vanished without a FIN or RST (a silent failover):
/// libpq's `keepalives*` and `tcp_user_timeout`. Ignored for Unix sockets.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalives {
    /// `keepalives`: on unless set to 0.
    pub enabled: bool,
    /// `keepalives_idle`; `None` (also for ≤ 0) keeps the system default.
    pub idle: Option<Duration>,
    /// `keepalives_interval`; `None` (also for ≤ 0) keeps the system default.
    pub interval: Option<Duration>,
    /// `keepalives_count`; `None` (also for ≤ 0) keeps the system default.
    pub count: Option<u32>,
    /// `tcp_user_timeout` (`TCP_USER_TIMEOUT`: how long sent data may stay unacknowledged before
    /// the kernel drops the connection); `None` (also for ≤ 0) keeps the system default. Set
    /// whether or not keepalives are on; a no-op where the platform lacks the option (libpq).
    pub user_timeout: Option<Duration>,
}

/// One host to try, in order, with everything resolved (the password may come from `.pgpass`).
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The server's name (or address, or socket directory).
    pub host: Host,
    /// `hostaddr`: connect to this address instead of resolving `host` (which then only names
    /// the server for `.pgpass`).
    pub hostaddr: Option<IpAddr>,
    /// The TCP port, or the number in the socket's name `.s.PGSQL.<port>`.
    pub port: u16,
    /// The password for this host, if any.
    pub password: Option<Password>,
}

/// The concrete parameters of a connect attempt: `Config` + environment + defaults + `.pgpass`.
/// Not a public API: public only so that integration tests can check resolution.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectParams {
    /// Hosts to try in order (libpq: the next one only if connecting to this one fails).
    pub targets: Vec<Target>,
    /// The database user name.
    pub user: String,
    /// The database name.
    pub dbname: String,
    /// `application_name`, else `fallback_application_name`; `None` if both are unset or empty.
    pub application_name: Option<String>,
    /// `options` (command-line options for the server), `None` if unset or empty.
    pub options: Option<String>,
    /// Per-host limit on connecting and authenticating; `None` waits forever.
    pub connect_timeout: Option<Duration>,
    /// The authentication methods the server may use.
    pub require_auth: RequireAuth,
    /// TCP keepalive settings and `tcp_user_timeout`.
    pub keepalives: Keepalives,
    /// The kind of server to settle on.
    pub target_session_attrs: TargetSessionAttrs,
    /// Whether to try the hosts (and each host's addresses) in a random order.
    pub load_balance_hosts: LoadBalanceHosts,
    /// `sslmode` (`verify-full` by default with `sslrootcert=system`).
    pub sslmode: SslMode,
    /// Bounds on what the server can make the connection hold.
    pub limits: Limits,
    /// The TLS files and options.
    pub tls: TlsParams,
    /// `channel_binding` (SCRAM-SHA-256-PLUS).
    pub channel_binding: ChannelBindingMode,
}

impl Config {
    /// Resolves against the process environment and `$HOME/.pgpass`.
    pub(crate) fn resolve(&self) -> Result<ConnectParams, Error> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        self.resolve_with(&|name| std::env::var(name).ok(), home.as_deref())
    }

    /// Checks every setting as connecting would, with the PG* environment applied, without
    /// connecting or reading `.pgpass`: a bad port, mode, integer or address, a host list that
    /// does not match its ports, or a value that needs a feature wirepool lacks. A pool can call
    /// it when it is built, so such a mistake fails at once instead of at the first checkout's
    /// timeout. (Unknown and unsupported keywords are already refused by parsing.)
    ///
    /// ```
    /// let ok: wirepool::Config = "host=db1,db2 port=5432 target_session_attrs=read-write".parse()?;
    /// assert!(ok.validate().is_ok());
    /// for bad in ["port=notaport", "port=99999", "sslmode=bogus", "load_balance_hosts=yes"] {
    ///     let config: wirepool::Config = bad.parse()?;
    ///     assert!(config.validate().unwrap_err().is_config(), "{bad}");
    /// }
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    ///
    /// # Errors
    /// The first invalid or unsupported value, naming its keyword, as connecting would report it.
    pub fn validate(&self) -> Result<(), Error> {
        self.resolve_in(&|name| std::env::var(name).ok(), None, false)
            .map(drop)
    }

    /// [`resolve`](Config::resolve) with the environment and home directory passed in, so tests
    /// need not touch the process's. Not a public API.
    ///
    /// # Errors
    /// An invalid or unsupported value, naming the keyword.
    #[doc(hidden)]
    pub fn resolve_with(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<ConnectParams, Error> {
        self.resolve_in(env, home, true)
    }

    fn resolve_in(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
        read_passfile: bool,
    ) -> Result<ConnectParams, Error> {
        let s = Settings::new(self, env)?;
        let user = match s.non_empty(Keyword::User) {
            Some(user) => user.to_owned(),
            None => os_user(env),
        };
        let dbname = s
            .non_empty(Keyword::Dbname)
            .unwrap_or(user.as_str())
            .to_owned();
        let (sslmode, tls) = tls::resolve(&s, home)?;
        let channel_binding = match s.get(Keyword::ChannelBinding) {
            Some(v) => v.parse::<ChannelBindingMode>().map_err(Error::config)?,
            None => ChannelBindingMode::Prefer,
        };
        check_client_encoding(&s)?;
        let require_auth = match s.non_empty(Keyword::RequireAuth) {
            Some(v) => v.parse::<RequireAuth>().map_err(Error::config)?,
            None => RequireAuth::default(),
        };
        // libpq (≤ 16 documents it): a timeout of 1 s is raised to 2 s, because rounding could
        // otherwise fail the connection almost at once; 0 or less means wait forever.
        let connect_timeout = s
            .int(Keyword::ConnectTimeout)?
            .filter(|&t| t > 0)
            .map(|t| secs(t.max(2)));
        let keepalives = Keepalives {
            enabled: s.int(Keyword::Keepalives)? != Some(0),
            idle: s.int(Keyword::KeepalivesIdle)?.filter(|&v| v > 0).map(secs),
            interval: s
                .int(Keyword::KeepalivesInterval)?
                .filter(|&v| v > 0)
                .map(secs),
            count: s
                .int(Keyword::KeepalivesCount)?
                .filter(|&v| v > 0)
                .map(i32::unsigned_abs),
            user_timeout: s
                .int(Keyword::TcpUserTimeout)?
                .filter(|&v| v > 0)
                .map(|ms| Duration::from_millis(u64::from(ms.unsigned_abs()))),
        };
        let target_session_attrs = match s.get(Keyword::TargetSessionAttrs) {
            Some(v) => v.parse()?,
            None => TargetSessionAttrs::Any,
        };
        let load_balance_hosts = match s.get(Keyword::LoadBalanceHosts) {
            Some(v) => v.parse()?,
            None => LoadBalanceHosts::Disable,
        };
        let application_name = s
            .non_empty(Keyword::ApplicationName)
            .or_else(|| s.non_empty(Keyword::FallbackApplicationName))
            .map(str::to_owned);
        Ok(ConnectParams {
            targets: targets(&s, &user, &dbname, home, read_passfile)?,
            application_name,
            options: s.non_empty(Keyword::Options).map(str::to_owned),
            user,
            dbname,
            connect_timeout,
            require_auth,
            keepalives,
            target_session_attrs,
            load_balance_hosts,
            sslmode,
            limits: self.limits.checked()?,
            tls,
            channel_binding,
        })
    }
}

/// Each keyword's effective value before defaults: the `Config`'s, else its PG* variable's.
pub(super) struct Settings {
    values: [Option<String>; COUNT],
}

impl Settings {
    fn new(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, Error> {
        let values = Keyword::ALL.map(|k| match config.raw(k) {
            Some(v) => Some(v.to_owned()),
            None => k.env_var().and_then(env),
        });
        let settings = Settings { values };
        // Every value ends up in a C string (startup packet, libpq-compatible files), where a
        // NUL would silently cut it short.
        if let Some(k) = Keyword::ALL
            .into_iter()
            .find(|&k| settings.get(k).is_some_and(|v| v.contains('\0')))
        {
            return Err(Error::config(format!(
                "the value of \"{}\" contains a NUL character",
                k.name()
            )));
        }
        Ok(settings)
    }

    pub(super) fn get(&self, k: Keyword) -> Option<&str> {
        self.values[k as usize].as_deref()
    }

    /// The value, with empty treated as unset (libpq does so for most keywords).
    pub(super) fn non_empty(&self, k: Keyword) -> Option<&str> {
        self.get(k).filter(|v| !v.is_empty())
    }

    /// An integer keyword, read like libpq's `pqParseIntParam` (`strtol`: blanks around, sign).
    fn int(&self, k: Keyword) -> Result<Option<i32>, Error> {
        let Some(v) = self.get(k) else {
            return Ok(None);
        };
        match v.trim_matches(is_space).parse::<i32>() {
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(Error::config(format!(
                "invalid integer value \"{v}\" for connection option \"{}\"",
                k.name()
            ))),
        }
    }
}

fn secs(n: i32) -> Duration {
    Duration::from_secs(u64::from(n.unsigned_abs()))
}

/// libpq asks the OS for the user name (`getpwuid`); without `unsafe` or a dependency the
/// environment is the portable source, with libpq's usual superuser as the last resort.
fn os_user(env: &dyn Fn(&str) -> Option<String>) -> String {
    ["USER", "LOGNAME"]
        .into_iter()
        .find_map(|name| env(name).filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "postgres".to_owned())
}

/// wirepool hands text to the caller as Rust strings, so the session must speak UTF-8. libpq's
/// `auto` (take it from the locale) therefore means UTF-8 too.
fn check_client_encoding(s: &Settings) -> Result<(), Error> {
    let Some(v) = s.non_empty(Keyword::ClientEncoding) else {
        return Ok(());
    };
    // PostgreSQL compares encoding names ignoring case and punctuation (`clean_encoding_name`),
    // so `UTF-8` is `UTF8`; `UNICODE` is its old alias.
    let clean: String = v
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    match clean.as_str() {
        "utf8" | "unicode" | "auto" => Ok(()),
        _ => Err(Error::unsupported(format!(
            "client_encoding={v}: wirepool exchanges text as UTF-8 only; use UTF8 or auto"
        ))),
    }
}

pub(crate) fn invalid_value(k: Keyword, v: &str) -> Error {
    Error::config(format!("invalid {} value: \"{v}\"", k.name()))
}

/// libpq's `connectOptions2`: `hostaddr`, `host` and `port` are comma lists of one item per
/// server; a single port applies to all; an empty item means the default.
fn targets(
    s: &Settings,
    user: &str,
    dbname: &str,
    home: Option<&Path>,
    read_passfile: bool,
) -> Result<Vec<Target>, Error> {
    let list = |k| s.non_empty(k).map(|v| v.split(',').collect::<Vec<_>>());
    let (hostaddrs, hosts) = (list(Keyword::Hostaddr), list(Keyword::Host));
    let n = hostaddrs.as_ref().or(hosts.as_ref()).map_or(1, Vec::len);
    let hosts = match hosts {
        Some(h) if h.len() != n => {
            return Err(Error::config(format!(
                "could not match {} host names to {n} hostaddr values",
                h.len()
            )))
        }
        other => other.unwrap_or_else(|| vec![""; n]),
    };
    let hostaddrs = hostaddrs.unwrap_or_else(|| vec![""; n]);
    let ports = match list(Keyword::Port) {
        None => vec![""; n],
        Some(p) => match p.as_slice() {
            [one] => vec![*one; n],
            _ if p.len() == n => p,
            _ => {
                return Err(Error::config(format!(
                    "could not match {} port numbers to {n} hosts",
                    p.len()
                )))
            }
        },
    };

    let password = s.non_empty(Keyword::Password).map(Password::new);
    let passfile = match password {
        Some(_) => None,
        None if !read_passfile => None,
        None => s
            .non_empty(Keyword::Passfile)
            .map(PathBuf::from)
            .or_else(|| home.map(|h| h.join(".pgpass")))
            .and_then(|path| PassFile::load(&path)),
    };
    let mut targets = Vec::with_capacity(n);
    for ((host, hostaddr), port_text) in hosts.into_iter().zip(hostaddrs).zip(ports) {
        let port = parse_port(port_text)?;
        let addr = match hostaddr {
            "" => None,
            a => Some(a.parse::<IpAddr>().map_err(|_| {
                Error::config(format!(
                    "could not parse network address \"{a}\" (hostaddr must be an IP address)"
                ))
            })?),
        };
        // .pgpass compares the port as text, defaulting like libpq's DEF_PGPORT_STR.
        let pgpass_port = if port_text.is_empty() {
            "5432"
        } else {
            port_text
        };
        for (host, pgpass_host) in hosts_for(host, hostaddr)? {
            let password = password.clone().or_else(|| {
                passfile
                    .as_ref()
                    .and_then(|f| f.lookup(pgpass_host, pgpass_port, dbname, user))
                    .filter(|p| !p.is_empty())
                    .map(Password::new)
            });
            targets.push(Target {
                host,
                hostaddr: addr,
                port,
                password,
            });
        }
    }
    Ok(targets)
}

/// The host(s) one list item stands for, each with the name `.pgpass` knows it by: the host,
/// else the hostaddr, else `localhost` for the default socket directory (libpq).
fn hosts_for<'a>(host: &'a str, hostaddr: &'a str) -> Result<Vec<(Host, &'a str)>, Error> {
    if host.is_empty() && !hostaddr.is_empty() {
        return Ok(vec![(Host::Tcp(hostaddr.to_owned()), hostaddr)]);
    }
    if host.is_empty() {
        return Ok(default_hosts());
    }
    if host.starts_with('@') {
        return Err(Error::unsupported(format!(
            "host={host}: abstract Unix sockets are not supported"
        )));
    }
    if host.starts_with('/') {
        #[cfg(unix)]
        let key = if DEFAULT_SOCKET_DIRS.contains(&host) {
            "localhost"
        } else {
            host
        };
        #[cfg(not(unix))]
        let key = host;
        return Ok(vec![(Host::Unix(PathBuf::from(host)), key)]);
    }
    Ok(vec![(Host::Tcp(host.to_owned()), host)])
}

#[cfg(unix)]
fn default_hosts() -> Vec<(Host, &'static str)> {
    DEFAULT_SOCKET_DIRS
        .iter()
        .map(|dir| (Host::Unix(PathBuf::from(dir)), "localhost"))
        .collect()
}

/// Without Unix sockets libpq's default host is `localhost` (`DefaultHost`).
#[cfg(not(unix))]
fn default_hosts() -> Vec<(Host, &'static str)> {
    vec![(Host::Tcp("localhost".to_owned()), "localhost")]
}

fn parse_port(text: &str) -> Result<u16, Error> {
    if text.is_empty() {
        return Ok(DEFAULT_PORT);
    }
    text.trim_matches(is_space)
        .parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| Error::config(format!("invalid port number: \"{text}\"")))
}
