//! CancelRequest: a new connection to the *same* address the session uses, 16 bytes, then wait
//! for the server to close the socket (it never replies: PostgreSQL's protocol documentation,
//! "Canceling Requests in Progress").
//!
//! Waiting for EOF matters: it is the only sign the server has processed the request, and a
//! pool must not reuse the connection before then (a late cancel would hit the next query,
//! pgbouncer#245, npgsql#1636). The whole exchange is bounded by a timeout.
//!
//! A connection that uses TLS sends its cancel requests over TLS too, with the same settings
//! (libpq 17's `PQcancelCreate` does so): the key is never sent in plaintext for it.
//!
//! Even EOF is not enough for a pool: the request may be delayed, retried or simply not yet
//! started when the connection is returned. So every token shares a flag with its
//! [`Connection`](super::Connection): `cancel` sets it before sending anything, and the
//! connection reports [`cancel_requested`](super::Connection::cancel_requested) while the flag
//! is set or any token is still alive; the pool then discards it instead of reusing it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::socket::{self, PeerAddr, Stream};
use super::tls::CancelTls;
use crate::config::Keepalives;
use crate::error::{Error, Result};
use crate::wire::{frontend, BackendKey};

/// Sends a CancelRequest for whatever the connection's backend is running. `Send + Clone`.
///
/// ```no_run
/// # async fn demo(conn: &wirepool::Connection) -> Result<(), wirepool::Error> {
/// let token = conn.cancel_token();
/// tokio::spawn(async move { token.cancel().await });
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CancelToken {
    pub(crate) addr: PeerAddr,
    pub(crate) key: Option<BackendKey>,
    pub(crate) timeout: Duration,
    /// Shared with the connection: "a CancelRequest was (or is being) sent".
    pub(crate) sent: Arc<AtomicBool>,
    /// Set when the connection uses TLS.
    pub(crate) tls: Option<CancelTls>,
}

impl CancelToken {
    /// Opens a new connection to the same server address and asks it to cancel the running
    /// query, then waits until the server closes that connection. The server gives no answer;
    /// the original connection sees `57014 query_canceled` if a query was interrupted.
    ///
    /// From the moment it is first polled, the connection reports
    /// [`cancel_requested`](super::Connection::cancel_requested), so a pool discards it.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping it before it finishes may or may not deliver the request.
    ///
    /// # Errors
    /// If the server cannot be reached or does not close the socket within the connection's
    /// `connect_timeout` (10 s if unset); [`Error::is_unsupported`] if the server never sent
    /// BackendKeyData.
    pub async fn cancel(&self) -> Result<()> {
        let key = self.key.ok_or_else(|| {
            Error::unsupported("the server sent no BackendKeyData to cancel with")
        })?;
        // Before the first byte: from here on the request may reach the server at any time.
        self.sent.store(true, Ordering::Release);
        tokio::time::timeout(
            self.timeout,
            send_cancel(&self.addr, key, self.tls.as_ref()),
        )
        .await
        .unwrap_or_else(|_| Err(Error::connect_timeout()))
    }
}

async fn send_cancel(addr: &PeerAddr, key: BackendKey, tls: Option<&CancelTls>) -> Result<()> {
    let no_keepalive = Keepalives {
        enabled: false,
        idle: None,
        interval: None,
        count: None,
        user_timeout: None,
    };
    let mut stream = match (socket::connect(addr, &no_keepalive).await?, tls) {
        (Stream::Tcp(tcp), Some(tls)) => Stream::Tls(Box::new(tls.open(tcp).await?)),
        (stream, _) => stream,
    };
    let mut buf = BytesMut::new();
    frontend::cancel_request(key.pid, key.key, &mut buf);
    stream.write_all(&buf).await.map_err(Error::io)?;
    let mut sink = [0u8; 64];
    loop {
        match stream.read(&mut sink).await {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            // A reset after the request went out still means the server is done with it; so
            // does a TLS connection closed without close_notify.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(Error::io(e)),
        }
    }
}
