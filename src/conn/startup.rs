//! One connect attempt to one address: open the socket, negotiate TLS as `sslmode` asks, and
//! drive the sans-IO [`Handshake`] over it until ReadyForQuery. Which addresses are tried, in
//! what order, and which server is kept is `select.rs`'s business.
//!
//! - `sslmode` (libpq fe-connect.c, `PQconnectPoll`): `disable` never sends SSLRequest;
//!   `require` and stricter fail when the server answers `N`; `prefer` goes on in plaintext on
//!   the same socket after `N`, and opens a new plaintext connection after a failed TLS
//!   handshake or an ErrorResponse during startup under TLS; `allow` starts in plaintext and
//!   tries TLS on a new connection after an ErrorResponse. Unix sockets never use TLS (libpq:
//!   sslmode is ignored for them).
//! - An ErrorResponse in answer to SSLRequest is not read: the server is not authenticated yet
//!   (CVE-2024-10977).
//! - PBKDF2 for SCRAM runs via [`scram_keys`] (cached, on the blocking pool).

use std::sync::Arc;
use std::time::Duration;

use super::framed::Framed;
use super::scram_cache::scram_keys;
use super::socket::{self, PeerAddr, Stream};
use super::tls::{CancelTls, TlsConnector};
use super::{log_notice, Connection};
use crate::config::{ConnectParams, SslMode, Target};
use crate::error::{Error, Result};
use crate::wire::tls::SslReply;
use crate::wire::{AuthConfig, Handshake, HandshakeError, StartupParams, Step, WireError};

/// Maps a handshake failure onto the crate's error kinds.
pub(crate) fn handshake_error(e: HandshakeError) -> Error {
    match e {
        // The caller's values (a NUL in a setting, an over-long one) cannot be encoded.
        HandshakeError::Protocol(
            w @ (WireError::EmbeddedNul | WireError::OutboundTooLong { .. }),
        ) => Error::invalid_input(w),
        HandshakeError::Protocol(w) => Error::protocol(w),
        HandshakeError::Server(db) => Error::db(*db),
        HandshakeError::Auth(m) => Error::auth(m),
        HandshakeError::Unsupported(m) => Error::unsupported(m),
    }
}

/// One connection to `addr` with `p.sslmode`'s fallbacks; `tls` is `None` for `disable`.
pub(super) async fn connect_addr(
    p: &ConnectParams,
    target: &Target,
    addr: PeerAddr,
    tls: Option<&Arc<TlsConnector>>,
) -> Result<Connection> {
    let tls = match (&addr, tls) {
        (PeerAddr::Tcp(_), Some(tls)) => tls,
        _ => {
            return attempt(p, target, addr, None, Encryption::Off)
                .await
                .map_err(|f| f.error)
        }
    };
    let with_tls = |enc| attempt(p, target, addr.clone(), Some(tls), enc);
    let plain = || attempt(p, target, addr.clone(), None, Encryption::Off);
    let (first, second) = match p.sslmode {
        SslMode::Disable => return plain().await.map_err(|f| f.error),
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            return with_tls(Encryption::Required).await.map_err(|f| f.error)
        }
        SslMode::Prefer => (with_tls(Encryption::Preferred).await, Encryption::Off),
        SslMode::Allow => (plain().await, Encryption::Required),
    };
    match first {
        Ok(conn) => Ok(conn),
        Err(f) if f.retry => {
            tracing::debug!(error = %f.error, sslmode = p.sslmode.as_str(), "retrying with TLS switched");
            let again = match second {
                Encryption::Off => plain().await,
                _ => with_tls(second).await,
            };
            again.map_err(|g| g.error.after(vec![f.error.to_string()]))
        }
        Err(f) => Err(f.error),
    }
}

/// Whether an attempt uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encryption {
    Off,
    /// `prefer`: TLS if the server says `S`, plaintext on the same socket after `N`.
    Preferred,
    Required,
}

/// A failed attempt, and whether `sslmode` allows another with TLS switched on or off.
struct Failed {
    error: Error,
    retry: bool,
}

impl Failed {
    fn fatal(error: Error) -> Failed {
        Failed {
            error,
            retry: false,
        }
    }
}

async fn attempt(
    p: &ConnectParams,
    target: &Target,
    addr: PeerAddr,
    tls: Option<&Arc<TlsConnector>>,
    enc: Encryption,
) -> std::result::Result<Connection, Failed> {
    let stream = socket::connect(&addr, &p.keepalives)
        .await
        .map_err(Failed::fatal)?;
    let mut cancel_tls = None;
    let stream = match (stream, tls) {
        (Stream::Tcp(mut tcp), Some(tls)) if enc != Encryption::Off => {
            let name = tls.server_name(target).map_err(Failed::fatal)?;
            let accepted =
                tls.direct()
                    || match TlsConnector::request(&mut tcp)
                        .await
                        .map_err(Failed::fatal)?
                    {
                        SslReply::Accepted => true,
                        SslReply::Refused if enc == Encryption::Preferred => false,
                        SslReply::Refused => {
                            return Err(Failed::fatal(Error::tls_config(
                                "server does not support SSL, but SSL was required",
                            )))
                        }
                        SslReply::Error => return Err(Failed::fatal(Error::tls_config(
                            "the server answered SSLRequest with an error (not shown: the server \
                             is not authenticated yet)",
                        ))),
                    };
            if accepted {
                let tls_stream =
                    tls.handshake(tcp, name.clone())
                        .await
                        .map_err(|error| Failed {
                            error,
                            retry: enc == Encryption::Preferred,
                        })?;
                cancel_tls = Some(CancelTls::new(Arc::clone(tls), name));
                Stream::Tls(Box::new(tls_stream))
            } else {
                Stream::Tcp(tcp)
            }
        }
        (stream, _) => stream,
    };
    let encrypted = stream.is_tls();
    let mut conn = startup(p, target, Framed::new(stream), addr)
        .await
        .map_err(|error| Failed {
            // libpq retries on the server's ErrorResponse only: with TLS switched off under
            // `prefer`, with it switched on under `allow`.
            retry: error.is_db()
                && match enc {
                    Encryption::Preferred => encrypted,
                    Encryption::Off => p.sslmode == SslMode::Allow,
                    Encryption::Required => false,
                },
            error,
        })?;
    conn.inner.tls = cancel_tls;
    Ok(conn)
}

/// StartupMessage, authentication and the session's first ReadyForQuery over `io`.
async fn startup(
    p: &ConnectParams,
    target: &Target,
    mut io: Framed,
    addr: PeerAddr,
) -> Result<Connection> {
    let password = target.password.as_ref().map(|pw| pw.expose().as_bytes());
    let params = StartupParams {
        user: p.user.clone(),
        database: Some(p.dbname.clone()),
        application_name: p.application_name.clone(),
        options: p.options.clone(),
        extra: Vec::new(),
    };
    let auth = AuthConfig {
        password: password.map(<[u8]>::to_vec),
        require_auth: p.require_auth.clone(),
        max_scram_iterations: p.limits.max_scram_iterations,
        tls: io.stream.tls_server_end_point(),
        channel_binding: p.channel_binding,
    };
    let mut hs = Handshake::new(&params, auth).map_err(handshake_error)?;
    let session = loop {
        hs.poll_transmit(&mut io.wbuf);
        io.flush().await?;
        let msg = io
            .read_message()
            .await
            .map_err(|e| match e.as_wire_error() {
                Some(w) => Error::protocol(hs.explain_decode_error(w)),
                None => e,
            })?;
        match hs.handle(msg).map_err(handshake_error)? {
            Step::Continue => {}
            Step::Notice(n) => log_notice(&n),
            Step::NeedScramKeys(req) => {
                let pw = password.ok_or_else(|| Error::auth("no password supplied"))?;
                let keys = scram_keys(pw, req).await?;
                hs.provide_scram_keys(&keys).map_err(handshake_error)?;
            }
            Step::Done(session) => break session,
        }
    };
    // The connection goes idle in a pool next: it must not keep this task alive.
    io.stream.forget_wakers();
    let cancel_timeout = p.connect_timeout.unwrap_or(Duration::from_secs(10));
    Ok(Connection::new(
        io,
        session,
        addr,
        cancel_timeout,
        &p.limits,
    ))
}
