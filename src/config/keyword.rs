//! The table of connection keywords: which libpq keywords wirepool stores, their PG* environment
//! variables, which ones it accepts and drops (`sslcompression`, `sslpassword`), and which it refuses by name.
//!
//! Invariant: every way a value gets into a [`Config`] (keyword/value string, URI, [`Config::set`],
//! the typed setters) goes through [`Config::store`] or [`Config::put`], so the parsers and the
//! builder cannot disagree about what a keyword means.

use super::{Config, Password};
use crate::error::Error;

/// A keyword wirepool stores. The order of [`Keyword::ALL`] is the order `Display` prints them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    Host,
    Hostaddr,
    Port,
    Dbname,
    User,
    Password,
    Passfile,
    ConnectTimeout,
    ClientEncoding,
    Options,
    ApplicationName,
    FallbackApplicationName,
    Keepalives,
    KeepalivesIdle,
    KeepalivesInterval,
    KeepalivesCount,
    TcpUserTimeout,
    Sslmode,
    RequireAuth,
    ChannelBinding,
    TargetSessionAttrs,
    LoadBalanceHosts,
    Sslrootcert,
    Sslcert,
    Sslkey,
    Sslcrl,
    Sslcrldir,
    Sslsni,
    SslMinProtocolVersion,
    SslMaxProtocolVersion,
    Sslnegotiation,
}

/// The number of [`Keyword`]s; the size of [`Config`]'s value table.
pub(crate) const COUNT: usize = 31;

impl Keyword {
    pub(crate) const ALL: [Keyword; COUNT] = [
        Keyword::Host,
        Keyword::Hostaddr,
        Keyword::Port,
        Keyword::Dbname,
        Keyword::User,
        Keyword::Password,
        Keyword::Passfile,
        Keyword::ConnectTimeout,
        Keyword::ClientEncoding,
        Keyword::Options,
        Keyword::ApplicationName,
        Keyword::FallbackApplicationName,
        Keyword::Keepalives,
        Keyword::KeepalivesIdle,
        Keyword::KeepalivesInterval,
        Keyword::KeepalivesCount,
        Keyword::TcpUserTimeout,
        Keyword::Sslmode,
        Keyword::RequireAuth,
        Keyword::ChannelBinding,
        Keyword::TargetSessionAttrs,
        Keyword::LoadBalanceHosts,
        Keyword::Sslrootcert,
        Keyword::Sslcert,
        Keyword::Sslkey,
        Keyword::Sslcrl,
        Keyword::Sslcrldir,
        Keyword::Sslsni,
        Keyword::SslMinProtocolVersion,
        Keyword::SslMaxProtocolVersion,
        Keyword::Sslnegotiation,
    ];

    /// libpq's spelling of the keyword.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Keyword::Host => "host",
            Keyword::Hostaddr => "hostaddr",
            Keyword::Port => "port",
            Keyword::Dbname => "dbname",
            Keyword::User => "user",
            Keyword::Password => "password",
            Keyword::Passfile => "passfile",
            Keyword::ConnectTimeout => "connect_timeout",
            Keyword::ClientEncoding => "client_encoding",
            Keyword::Options => "options",
            Keyword::ApplicationName => "application_name",
            Keyword::FallbackApplicationName => "fallback_application_name",
            Keyword::Keepalives => "keepalives",
            Keyword::KeepalivesIdle => "keepalives_idle",
            Keyword::KeepalivesInterval => "keepalives_interval",
            Keyword::KeepalivesCount => "keepalives_count",
            Keyword::TcpUserTimeout => "tcp_user_timeout",
            Keyword::Sslmode => "sslmode",
            Keyword::RequireAuth => "require_auth",
            Keyword::ChannelBinding => "channel_binding",
            Keyword::TargetSessionAttrs => "target_session_attrs",
            Keyword::LoadBalanceHosts => "load_balance_hosts",
            Keyword::Sslrootcert => "sslrootcert",
            Keyword::Sslcert => "sslcert",
            Keyword::Sslkey => "sslkey",
            Keyword::Sslcrl => "sslcrl",
            Keyword::Sslcrldir => "sslcrldir",
            Keyword::Sslsni => "sslsni",
            Keyword::SslMinProtocolVersion => "ssl_min_protocol_version",
            Keyword::SslMaxProtocolVersion => "ssl_max_protocol_version",
            Keyword::Sslnegotiation => "sslnegotiation",
        }
    }

    /// The environment variable libpq falls back to (libpq-envars); `None` where libpq has none.
    pub(crate) fn env_var(self) -> Option<&'static str> {
        Some(match self {
            Keyword::Host => "PGHOST",
            Keyword::Hostaddr => "PGHOSTADDR",
            Keyword::Port => "PGPORT",
            Keyword::Dbname => "PGDATABASE",
            Keyword::User => "PGUSER",
            Keyword::Password => "PGPASSWORD",
            Keyword::Passfile => "PGPASSFILE",
            Keyword::ConnectTimeout => "PGCONNECT_TIMEOUT",
            Keyword::ClientEncoding => "PGCLIENTENCODING",
            Keyword::Options => "PGOPTIONS",
            Keyword::ApplicationName => "PGAPPNAME",
            Keyword::Sslmode => "PGSSLMODE",
            Keyword::RequireAuth => "PGREQUIREAUTH",
            Keyword::ChannelBinding => "PGCHANNELBINDING",
            Keyword::TargetSessionAttrs => "PGTARGETSESSIONATTRS",
            Keyword::LoadBalanceHosts => "PGLOADBALANCEHOSTS",
            Keyword::Sslrootcert => "PGSSLROOTCERT",
            Keyword::Sslcert => "PGSSLCERT",
            Keyword::Sslkey => "PGSSLKEY",
            Keyword::Sslcrl => "PGSSLCRL",
            Keyword::Sslcrldir => "PGSSLCRLDIR",
            Keyword::Sslsni => "PGSSLSNI",
            Keyword::SslMinProtocolVersion => "PGSSLMINPROTOCOLVERSION",
            Keyword::SslMaxProtocolVersion => "PGSSLMAXPROTOCOLVERSION",
            Keyword::Sslnegotiation => "PGSSLNEGOTIATION",
            Keyword::FallbackApplicationName
            | Keyword::Keepalives
            | Keyword::KeepalivesIdle
            | Keyword::KeepalivesInterval
            | Keyword::KeepalivesCount
            | Keyword::TcpUserTimeout => return None,
        })
    }

    pub(crate) fn from_name(name: &str) -> Option<Keyword> {
        Keyword::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Settings accepted and dropped. `sslcompression`: libpq ignores it too (TLS compression is
/// gone from every TLS library it supports). `sslpassword`: it only decrypts an encrypted
/// private key, and wirepool refuses encrypted keys with an error that says so, whatever the
/// password (an unencrypted key ignores it in libpq as well); dropping it keeps the secret out
/// of the `Config` altogether.
const IGNORED: &[&str] = &["sslcompression", "sslpassword"];

/// libpq keywords for features wirepool lacks. Refused by name rather than ignored: silently
/// ignoring `service` or `gssencmode=require` would connect somewhere else, or less securely, than
/// the string asks.
const UNSUPPORTED: &[&str] = &[
    "service",
    "gssencmode",
    "gsslib",
    "gssdelegation",
    "krbsrvname",
    "requirepeer",
    "replication",
    "sslcertmode",
    "sslkeylogfile",
    "min_protocol_version",
    "max_protocol_version",
    "scram_client_key",
    "scram_server_key",
    "oauth_issuer",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
];

impl Config {
    /// The value of `k` as given, the password included.
    pub(crate) fn raw(&self, k: Keyword) -> Option<&str> {
        match k {
            Keyword::Password => self.password.as_ref().map(Password::expose),
            _ => self.values[k as usize].as_deref(),
        }
    }

    /// Sets `k` to `value`, replacing any earlier value (libpq: the last occurrence wins).
    pub(crate) fn put(&mut self, k: Keyword, value: String) {
        match k {
            Keyword::Password => self.password = Some(Password::new(value)),
            _ => self.values[k as usize] = Some(value),
        }
    }

    /// libpq's `conninfo_storeval`: stores `value` under the keyword spelled `name`.
    ///
    /// `unknown` builds the error for a name libpq does not know either; the keyword/value parser
    /// and the URI parser word it differently, as libpq does.
    pub(crate) fn store(
        &mut self,
        name: &str,
        value: String,
        unknown: impl FnOnce(&str) -> Error,
    ) -> Result<(), Error> {
        // libpq's backward compatibility: the deprecated `requiressl=1` means sslmode=require,
        // any other value sslmode=prefer.
        if name == "requiressl" {
            let mode = if value.starts_with('1') {
                "require"
            } else {
                "prefer"
            };
            self.put(Keyword::Sslmode, mode.to_owned());
            return Ok(());
        }
        if let Some(k) = Keyword::from_name(name) {
            self.put(k, value);
            return Ok(());
        }
        if IGNORED.contains(&name) {
            return Ok(());
        }
        if UNSUPPORTED.contains(&name) {
            return Err(Error::unsupported(format!(
                "connection option \"{name}\" is not supported by wirepool"
            )));
        }
        Err(unknown(name))
    }
}
