//! Connecting: try each target and address in order (libpq multi-host semantics), open the
//! socket, and drive the sans-IO [`Handshake`] over it until ReadyForQuery.
//!
//! - `connect_timeout` bounds TCP connect *and* the whole handshake, per address (libpq), and
//!   separately the host name's resolution: a resolver that never answers (libpq's blocking
//!   `getaddrinfo` has the same gap) must not make `connect` wait forever.
//! - A failure moves on to the next address/host, except an authentication failure (SQLSTATE
//!   class 28, or the client refusing to authenticate): retrying elsewhere with the same
//!   credentials would only repeat it, and could hand the password to a host the user listed
//!   as a fallback. The last error is returned.
//! - `sslmode`: TLS is not built in yet, so `prefer` and `allow` connect in plaintext without
//!   sending SSLRequest (the same outcome libpq reaches with a server that answers `N`);
//!   `require` and stricter are refused (config resolution already rejects them).
//! - PBKDF2 for SCRAM runs via [`scram_keys`] (cached, on the blocking pool).

use std::future::Future;
use std::time::Duration;

use super::framed::Framed;
use super::scram_cache::scram_keys;
use super::socket::{self, PeerAddr};
use super::{log_notice, Connection};
use crate::config::{ConnectParams, SslMode, Target};
use crate::error::{Error, Result};
use crate::wire::{AuthConfig, Handshake, HandshakeError, StartupParams, Step};

/// Maps a handshake failure onto the crate's error kinds.
pub(crate) fn handshake_error(e: HandshakeError) -> Error {
    match e {
        HandshakeError::Protocol(w) => Error::protocol(w),
        HandshakeError::Server(db) => Error::db(*db),
        HandshakeError::Auth(m) => Error::auth(m),
        HandshakeError::Unsupported(m) => Error::unsupported(m),
    }
}

/// Connects to the first target that accepts us.
pub(crate) async fn connect(p: &ConnectParams) -> Result<Connection> {
    if matches!(
        p.sslmode,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
    ) {
        return Err(Error::unsupported(
            "TLS (sslmode=require or stricter) is not built in yet",
        ));
    }
    let mut last = None;
    for target in &p.targets {
        let addrs = match within(p.connect_timeout, socket::resolve(target)).await {
            Ok(addrs) => addrs,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        for addr in addrs {
            match within(p.connect_timeout, connect_addr(p, target, addr)).await {
                Ok(conn) => return Ok(conn),
                Err(e) if e.is_auth() => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "connect attempt failed; trying the next address");
                    last = Some(e);
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| Error::config("no host to connect to")))
}

/// `step` bounded by `connect_timeout`, if one is set.
async fn within<T>(limit: Option<Duration>, step: impl Future<Output = Result<T>>) -> Result<T> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, step)
            .await
            .unwrap_or_else(|_| Err(Error::connect_timeout())),
        None => step.await,
    }
}

async fn connect_addr(p: &ConnectParams, target: &Target, addr: PeerAddr) -> Result<Connection> {
    let stream = socket::connect(&addr, &p.keepalives).await?;
    let mut io = Framed::new(stream);
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
        ..AuthConfig::default()
    };
    let mut hs = Handshake::new(&params, auth).map_err(handshake_error)?;
    let session = loop {
        hs.poll_transmit(&mut io.wbuf);
        io.flush().await?;
        let msg = io.read_message().await?;
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
    let cancel_timeout = p.connect_timeout.unwrap_or(Duration::from_secs(10));
    Ok(Connection::new(io, session, addr, cancel_timeout))
}
