//! One connect attempt to one address: open the socket and drive the sans-IO [`Handshake`] over
//! it until ReadyForQuery. Which addresses are tried, in what order, and which server is kept
//! is `select.rs`'s business.
//!
//! - `sslmode`: TLS is not built in yet, so `prefer` and `allow` connect in plaintext without
//!   sending SSLRequest (the same outcome libpq reaches with a server that answers `N`);
//!   `require` and stricter are refused (config resolution already rejects them).
//! - PBKDF2 for SCRAM runs via [`scram_keys`] (cached, on the blocking pool).

use std::time::Duration;

use super::framed::Framed;
use super::scram_cache::scram_keys;
use super::socket::{self, PeerAddr};
use super::{log_notice, Connection};
use crate::config::{ConnectParams, Target};
use crate::error::{Error, Result};
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

pub(super) async fn connect_addr(
    p: &ConnectParams,
    target: &Target,
    addr: PeerAddr,
) -> Result<Connection> {
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
        max_scram_iterations: p.limits.max_scram_iterations,
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
    let cancel_timeout = p.connect_timeout.unwrap_or(Duration::from_secs(10));
    Ok(Connection::new(
        io,
        session,
        addr,
        cancel_timeout,
        &p.limits,
    ))
}
