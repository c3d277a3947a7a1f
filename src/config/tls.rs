//! Resolving the TLS settings (libpq-connect "SSL Support", fe-connect.c `connectOptions2` and
//! `conninfo_add_defaults`, fe-secure-openssl.c `initialize_SSL`) into [`TlsParams`]: which
//! files to read, never the files themselves (connecting reads them, once per connect call).
//!
//! libpq's rules kept here:
//! - `sslrootcert=system` makes `verify-full` the default sslmode, and any other sslmode given
//!   (in the string or `PGSSLMODE`) is an error: anyone can get a publicly trusted certificate
//!   for a host name they control, so only the host name check makes such a root meaningful.
//! - `sslnegotiation=direct` needs `sslmode=require` or stronger: a client that may fall back to
//!   plaintext must not skip the SSLRequest that lets the server say `N`.
//! - The default files are `~/.postgresql/root.crt`, `root.crl`, `postgresql.crt` and
//!   `postgresql.key`; each is used only if it exists.

use std::path::{Path, PathBuf};

use super::keyword::Keyword;
use super::resolve::{invalid_value, Settings};
use super::SslMode;
use crate::error::Error;

/// Where the server certificate's trust anchors come from.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of CA certificates: `sslrootcert`, else `~/.postgresql/root.crt`. Used only
    /// if it exists (a missing file is an error only for `verify-ca`/`verify-full`).
    File(PathBuf),
    /// `sslrootcert=system`: the operating system's trust store.
    System,
    /// No file was named and there is no home directory to find the default in.
    Unset,
}

/// A TLS protocol version bound (`ssl_min_protocol_version`, `ssl_max_protocol_version`).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// `TLSv1`
    V1_0,
    /// `TLSv1.1`
    V1_1,
    /// `TLSv1.2`
    V1_2,
    /// `TLSv1.3`
    V1_3,
}

impl TlsVersion {
    fn parse(k: Keyword, v: &str) -> Result<TlsVersion, Error> {
        // libpq compares case-insensitively (pg_strcasecmp in sslVerifyProtocolVersion).
        match v.to_ascii_lowercase().as_str() {
            "tlsv1" => Ok(TlsVersion::V1_0),
            "tlsv1.1" => Ok(TlsVersion::V1_1),
            "tlsv1.2" => Ok(TlsVersion::V1_2),
            "tlsv1.3" => Ok(TlsVersion::V1_3),
            _ => Err(invalid_value(k, v)),
        }
    }
}

/// The TLS part of a connect attempt's parameters.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    /// The trust anchors for verifying the server.
    pub root: RootCert,
    /// `sslcrl` (explicit, or `~/.postgresql/root.crl`).
    pub crl: Option<PathBuf>,
    /// `sslcrldir`.
    pub crl_dir: Option<PathBuf>,
    /// `sslcert`, else `~/.postgresql/postgresql.crt` (used if it exists).
    pub cert: Option<PathBuf>,
    /// `sslkey`, else `~/.postgresql/postgresql.key`.
    pub key: Option<PathBuf>,
    /// `sslsni`: send the host name in the handshake (never for an IP address).
    pub sni: bool,
    /// `ssl_min_protocol_version` (libpq's default: TLSv1.2).
    pub min_version: TlsVersion,
    /// `ssl_max_protocol_version`; `None`: the newest the library has.
    pub max_version: Option<TlsVersion>,
    /// `sslnegotiation=direct`: the TLS handshake starts at once, without SSLRequest.
    pub direct: bool,
}

impl Default for TlsParams {
    /// No files, SNI on, TLS 1.2 or newer, SSLRequest first.
    fn default() -> TlsParams {
        TlsParams {
            root: RootCert::Unset,
            crl: None,
            crl_dir: None,
            cert: None,
            key: None,
            sni: true,
            min_version: TlsVersion::V1_2,
            max_version: None,
            direct: false,
        }
    }
}

/// Resolves `sslmode` and the TLS settings together (`sslrootcert=system` changes the default
/// mode).
pub(super) fn resolve(s: &Settings, home: Option<&Path>) -> Result<(SslMode, TlsParams), Error> {
    let dot_pg = |file: &str| home.map(|h| h.join(".postgresql").join(file));
    let path = |k: Keyword| s.non_empty(k).map(PathBuf::from);
    let root = match s.non_empty(Keyword::Sslrootcert) {
        Some("system") => RootCert::System,
        Some(file) => RootCert::File(PathBuf::from(file)),
        None => dot_pg("root.crt").map_or(RootCert::Unset, RootCert::File),
    };
    let given = s
        .get(Keyword::Sslmode)
        .map(str::parse::<SslMode>)
        .transpose()?;
    let mode = match (&root, given) {
        (RootCert::System, None) => SslMode::VerifyFull,
        (RootCert::System, Some(m)) if m != SslMode::VerifyFull => {
            return Err(Error::config(format!(
                "weak sslmode \"{}\" may not be used with sslrootcert=system (use \
                 \"verify-full\")",
                m.as_str()
            )))
        }
        (_, m) => m.unwrap_or(SslMode::Prefer),
    };
    let direct = match s.non_empty(Keyword::Sslnegotiation) {
        None | Some("postgres") => false,
        Some("direct") => true,
        Some(v) => return Err(invalid_value(Keyword::Sslnegotiation, v)),
    };
    if direct && matches!(mode, SslMode::Disable | SslMode::Allow | SslMode::Prefer) {
        return Err(Error::config(format!(
            "weak sslmode \"{}\" may not be used with sslnegotiation=direct (use \"require\", \
             \"verify-ca\", or \"verify-full\")",
            mode.as_str()
        )));
    }
    let sni = match s.non_empty(Keyword::Sslsni) {
        None | Some("1") => true,
        Some("0") => false,
        Some(v) => return Err(invalid_value(Keyword::Sslsni, v)),
    };
    let min_version = match s.non_empty(Keyword::SslMinProtocolVersion) {
        Some(v) => TlsVersion::parse(Keyword::SslMinProtocolVersion, v)?,
        None => TlsVersion::V1_2,
    };
    let max_version = s
        .non_empty(Keyword::SslMaxProtocolVersion)
        .map(|v| TlsVersion::parse(Keyword::SslMaxProtocolVersion, v))
        .transpose()?;
    if max_version.is_some_and(|max| max < min_version) {
        return Err(Error::config("invalid SSL protocol version range"));
    }
    let (crl, crl_dir) = match (path(Keyword::Sslcrl), path(Keyword::Sslcrldir)) {
        // libpq falls back to root.crl only when neither is set.
        (None, None) => (dot_pg("root.crl"), None),
        other => other,
    };
    Ok((
        mode,
        TlsParams {
            root,
            crl,
            crl_dir,
            cert: path(Keyword::Sslcert).or_else(|| dot_pg("postgresql.crt")),
            key: path(Keyword::Sslkey).or_else(|| dot_pg("postgresql.key")),
            sni,
            min_version,
            max_version,
            direct,
        },
    ))
}
