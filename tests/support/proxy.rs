//! An in-test TCP proxy on tokio, between the clients under test and one upstream server: it can
//! pause (stall both directions of every connection without closing any, as a black-holed
//! network does), resume, and kill every connection it holds (RST or FIN), and it records when
//! it accepted each connection, so a test can count connection attempts per second.
//!
//! Invariants:
//! - Paused, nothing moves: bytes already read are held, not written; nothing more is read; a
//!   connection accepted while paused is not forwarded upstream until resume. The kernel still
//!   completes the client's TCP handshake (the listener's backlog), so a connect through a paused
//!   proxy hangs in the startup exchange, not in `connect()`: a userspace proxy cannot drop SYNs.
//! - Resumed, held bytes are delivered in order, as TCP retransmission would once a network heals.
//! - A kill ends every connection the proxy holds at that instant, paused or not: `Reset` sends
//!   an RST to both sides (`SO_LINGER` 0), `Fin` an orderly close. Later connections are
//!   unaffected.
//! - An upstream that refuses the connection (server down) is passed on as an RST to the client,
//!   the nearest a proxy gets to the client's own ECONNREFUSED; the attempt is still counted.
//! - Every task the proxy spawns ends when the proxy is dropped.
#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How [`Proxy::kill_all`] ends connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// An RST to both sides (a firewall's reject, a crashed middlebox).
    Reset,
    /// An orderly close (FIN) to both sides.
    Fin,
}

/// A running proxy; see the module docs.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    paused: watch::Sender<bool>,
    /// Bumped by each kill; connections watch it.
    kills: watch::Sender<(u64, Kill)>,
    accepted: Mutex<Vec<Instant>>,
    open: AtomicUsize,
    /// Stops every connection task when the proxy is dropped.
    shutdown: watch::Sender<bool>,
}

impl Proxy {
    /// Starts a proxy on an ephemeral port of 127.0.0.1 forwarding to `upstream`.
    ///
    /// # Errors
    /// The listener cannot be bound.
    pub async fn start(upstream: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            paused: watch::Sender::new(false),
            kills: watch::Sender::new((0, Kill::Fin)),
            accepted: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
            shutdown: watch::Sender::new(false),
        });
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Proxy {
            addr,
            shared,
            accept_task,
        })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stalls every connection, present and future, without closing any.
    pub fn pause(&self) {
        self.shared.paused.send_replace(true);
    }

    /// Lets held bytes and held connections through again.
    pub fn resume(&self) {
        self.shared.paused.send_replace(false);
    }

    /// Ends every connection the proxy holds now.
    pub fn kill_all(&self, how: Kill) {
        self.shared.kills.send_modify(|(generation, kind)| {
            *generation += 1;
            *kind = how;
        });
    }

    /// Connections accepted since the proxy started.
    pub fn accepted(&self) -> usize {
        self.accepted_times().len()
    }

    /// When each connection was accepted, in order.
    pub fn accepted_times(&self) -> Vec<Instant> {
        self.shared
            .accepted
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }

    /// Connections accepted in `[from, to)`.
    pub fn accepted_between(&self, from: Instant, to: Instant) -> usize {
        let times = self.accepted_times();
        times.iter().filter(|t| **t >= from && **t < to).count()
    }

    /// Connections open through the proxy now (accepted and not yet ended).
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.shared.shutdown.send_replace(true);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if let Ok(mut accepted) = shared.accepted.lock() {
            accepted.push(Instant::now());
        }
        shared.open.fetch_add(1, SeqCst);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            serve(&shared, client).await;
            shared.open.fetch_sub(1, SeqCst);
        });
    }
}

/// Until the proxy is not paused (at once if it is not).
async fn running(paused: &mut watch::Receiver<bool>) {
    // An error means the proxy is gone; the shutdown signal ends the task.
    let _ = paused.wait_for(|p| !*p).await;
}

/// One client connection: connect upstream once not paused, then pump both ways until either
/// side closes, a kill, or the proxy's drop.
async fn serve(shared: &Shared, mut client: TcpStream) {
    let mut kills = shared.kills.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let mut paused = shared.paused.subscribe();
    let connect = async {
        running(&mut paused).await;
        TcpStream::connect(shared.upstream).await
    };
    let mut upstream = tokio::select! {
        r = connect => match r {
            Ok(s) => s,
            Err(_) => return reset(&client),
        },
        _ = kills.changed() => return end(&[&client], kills.borrow().1),
        _ = shutdown.wait_for(|s| *s) => return,
    };
    let how = {
        let (mut cr, mut cw) = client.split();
        let (mut ur, mut uw) = upstream.split();
        let up = pump(&mut cr, &mut uw, shared.paused.subscribe());
        let down = pump(&mut ur, &mut cw, shared.paused.subscribe());
        tokio::select! {
            _ = up => Kill::Fin,
            _ = down => Kill::Fin,
            _ = kills.changed() => kills.borrow().1,
            _ = shutdown.wait_for(|s| *s) => Kill::Fin,
        }
    };
    end(&[&client, &upstream], how);
}

/// Copies `from` to `to`, holding bytes while paused. Ends at EOF or an error.
async fn pump(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    mut paused: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        running(&mut paused).await;
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        running(&mut paused).await;
        to.write_all(&buf[..n]).await?;
    }
}

/// Closes `streams` (they are dropped by the caller right after): with an RST for `Reset`.
fn end(streams: &[&TcpStream], how: Kill) {
    if how == Kill::Reset {
        for s in streams {
            reset(s);
        }
    }
}

/// `SO_LINGER` 0: the close that follows sends an RST instead of a FIN.
fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}
