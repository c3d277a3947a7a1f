//! Sockets: resolving a [`Target`] to addresses, opening TCP (with `TCP_NODELAY`, keepalive and
//! `TCP_USER_TIMEOUT`) or Unix-domain streams, and one `Stream` type that reads and writes any of
//! them or TLS over TCP. An enum, not a trait object: the plaintext path pays one match, no
//! indirection; the TLS state (about 1 KiB plus buffers) is boxed so a plaintext stream stays
//! small.
//!
//! The address a connection actually used is kept ([`PeerAddr`]) so a CancelRequest goes to the
//! same server, not to whatever a multi-host list or DNS would pick next (libpq-cancel).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;

use super::tls::{self, TlsStream};
use crate::config::{Host, Keepalives, Target};
use crate::error::{Error, Result};
use crate::wire::tls::{tls_server_end_point, CertificateError};

/// Where a connection went: a TCP address or a Unix socket file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PeerAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// Every address to try for `target`, in order: `hostaddr` if given (no DNS), the socket file
/// for a Unix directory, or every address DNS returns for the host name.
pub(crate) async fn resolve(target: &Target) -> Result<Vec<PeerAddr>> {
    if let Some(ip) = target.hostaddr {
        return Ok(vec![PeerAddr::Tcp(SocketAddr::new(ip, target.port))]);
    }
    match &target.host {
        // libpq's socket file name: `<dir>/.s.PGSQL.<port>`.
        Host::Unix(dir) => Ok(vec![PeerAddr::Unix(
            dir.join(format!(".s.PGSQL.{}", target.port)),
        )]),
        Host::Tcp(name) => {
            let addrs = tokio::net::lookup_host((name.as_str(), target.port))
                .await
                .map_err(Error::io)?;
            Ok(addrs.map(PeerAddr::Tcp).collect())
        }
    }
}

/// A connected byte stream to the server.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
    Tls(Box<TlsStream>),
}

/// Opens a stream to `addr`. TCP gets `TCP_NODELAY` (the protocol is request/response with small
/// messages; Nagle would add up to 40 ms per round trip) and libpq-style keepalives.
pub(crate) async fn connect(addr: &PeerAddr, keepalives: &Keepalives) -> Result<Stream> {
    match addr {
        PeerAddr::Tcp(sa) => {
            let s = TcpStream::connect(sa).await.map_err(Error::io)?;
            s.set_nodelay(true).map_err(Error::io)?;
            set_dead_peer_detection(SockRef::from(&s), keepalives).map_err(Error::io)?;
            Ok(Stream::Tcp(s))
        }
        #[cfg(unix)]
        PeerAddr::Unix(path) => Ok(Stream::Unix(
            UnixStream::connect(path).await.map_err(Error::io)?,
        )),
        #[cfg(not(unix))]
        PeerAddr::Unix(_) => Err(Error::unsupported("Unix-domain sockets on this platform")),
    }
}

/// libpq's `keepalives*` and `tcp_user_timeout` (fe-connect.c `setKeepalivesIdle`, ...,
/// `setTCPUserTimeout`): what lets a connection to a server that vanished without a FIN or RST
/// (a silent failover) fail instead of hanging. Where the platform lacks an option, it is skipped,
/// as libpq skips it.
fn set_dead_peer_detection(s: SockRef<'_>, keepalives: &Keepalives) -> std::io::Result<()> {
    if keepalives.enabled {
        let mut ka = TcpKeepalive::new();
        if let Some(idle) = keepalives.idle {
            ka = ka.with_time(idle);
        }
        #[cfg(not(any(target_os = "openbsd", target_os = "haiku")))]
        if let Some(interval) = keepalives.interval {
            ka = ka.with_interval(interval);
        }
        #[cfg(not(any(target_os = "openbsd", target_os = "haiku", windows)))]
        if let Some(count) = keepalives.count {
            ka = ka.with_retries(count);
        }
        s.set_tcp_keepalive(&ka)?;
    }
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    if let Some(timeout) = keepalives.user_timeout {
        s.set_tcp_user_timeout(Some(timeout))?;
    }
    Ok(())
}

impl Stream {
    /// A non-blocking read straight from the socket, bypassing the runtime's readiness cache so
    /// the answer reflects what the kernel holds *now* (`WouldBlock` if nothing). Used by
    /// `check_closed`; the runtime copes, since it re-arms on the next edge either way.
    /// Over TLS, the bytes read are decrypted: a close_notify reads as EOF.
    pub(crate) fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::Read;
        match self {
            Stream::Tcp(s) => (&*SockRef::from(&*s)).read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => (&*SockRef::from(&*s)).read(buf),
            Stream::Tls(s) => tls::read_now(s, buf),
        }
    }

    /// Leaves no task's waker registered with the socket's readiness: registers one that does
    /// nothing instead (tokio's `poll_read_ready`/`poll_write_ready`: only the waker of the most
    /// recent call is kept). tokio-rustls reads the socket once more after the handshake (rustls'
    /// `wants_read` holds while no plaintext is buffered), so a new TLS connection's socket
    /// would keep the connecting task's waker, and with it that task's memory (about 9 KiB), for
    /// as long as the connection sits idle. The next read or write registers its own waker.
    pub(crate) fn forget_wakers(&self) {
        struct Nothing;
        impl std::task::Wake for Nothing {
            fn wake(self: std::sync::Arc<Self>) {}
        }
        let waker = std::task::Waker::from(std::sync::Arc::new(Nothing));
        let mut cx = Context::from_waker(&waker);
        let _ = match self {
            Stream::Tcp(s) => (s.poll_read_ready(&mut cx), s.poll_write_ready(&mut cx)),
            Stream::Tls(s) => {
                let tcp = s.get_ref().0;
                (tcp.poll_read_ready(&mut cx), tcp.poll_write_ready(&mut cx))
            }
            #[cfg(unix)]
            Stream::Unix(s) => (s.poll_read_ready(&mut cx), s.poll_write_ready(&mut cx)),
        };
    }

    /// Whether the stream is encrypted.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// `None` in plaintext; over TLS, the `tls-server-end-point` channel binding data of the
    /// server's certificate (RFC 5929), or why there is none.
    pub(crate) fn tls_server_end_point(
        &self,
    ) -> Option<std::result::Result<Vec<u8>, CertificateError>> {
        let Stream::Tls(s) = self else {
            return None;
        };
        let (_, session) = s.get_ref();
        let leaf = session
            .peer_certificates()
            .and_then(<[_]>::first)
            .ok_or(CertificateError::Malformed);
        Some(leaf.and_then(|der| tls_server_end_point(der)))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}
