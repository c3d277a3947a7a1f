//! A scripted fake PostgreSQL server, for faults a real server will not produce on demand:
//! malformed bytes, stalls, drops in the middle of a handshake, odd message orders.
//!
//! Invariants:
//! - Messages are built here by hand from the protocol documentation, never with the crate's own
//!   codec, so a codec bug cannot make its own tests pass.
//! - A script's assertions are not lost: a panic inside a script is re-raised by
//!   [`FakeServer::join`]. Dropping the server aborts the accept loop and every script.
//! - [`FakeServer::start`] serves exactly one connection and then closes its listener, so a client
//!   that reconnects sees "connection refused", as from a server that went away.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// PostgreSQL closes the connection on a startup packet longer than this
/// (`MAX_STARTUP_PACKET_LENGTH`, src/include/libpq/pqcomm.h).
pub const MAX_STARTUP_PACKET_LENGTH: usize = 10_000;
/// A generous cap on what the reader accepts, so a client bug shows as a clear panic rather than
/// a multi-gigabyte allocation.
const MAX_MESSAGE_LENGTH: usize = 1 << 24;

/// A listener on 127.0.0.1 running a script per accepted connection.
pub struct FakeServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// `start`: accepts once, then runs the script itself. `accept_many`: the accept loop.
    accept_task: Option<JoinHandle<()>>,
    scripts: Arc<Mutex<Vec<JoinHandle<()>>>>,
    single: bool,
}

impl FakeServer {
    /// Runs `script` on the first accepted connection; later connections are refused.
    ///
    /// Must be called inside a tokio runtime.
    pub fn start<F, Fut>(script: F) -> FakeServer
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (listener, addr) = bind();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("fake server: accept failed");
            drop(listener);
            counter.fetch_add(1, Ordering::SeqCst);
            script(stream).await;
        });
        FakeServer {
            addr,
            accepted,
            accept_task: Some(task),
            scripts: Arc::default(),
            single: true,
        }
    }

    /// Runs `script` on every accepted connection, each in its own task.
    ///
    /// Must be called inside a tokio runtime.
    pub fn accept_many<F, Fut>(script: F) -> FakeServer
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (listener, addr) = bind();
        let accepted = Arc::new(AtomicUsize::new(0));
        let scripts: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (counter, handles) = (Arc::clone(&accepted), Arc::clone(&scripts));
        let script = Arc::new(script);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let script = Arc::clone(&script);
                let handle = tokio::spawn(async move { script(stream).await });
                handles.lock().unwrap().push(handle);
            }
        });
        FakeServer {
            addr,
            accepted,
            accept_task: Some(task),
            scripts,
            single: false,
        }
    }

    /// The listening address (127.0.0.1 and an ephemeral port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many connections have been accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// A libpq-style connection string to this server (`dbname=postgres`, `sslmode=disable`:
    /// scripts speak plaintext from the first byte, and would read an SSLRequest as a startup
    /// packet; tests/tls_peers.rs scripts TLS negotiation).
    pub fn conninfo(&self, user: &str, password: Option<&str>) -> String {
        let base = super::cluster::conninfo("127.0.0.1", self.port(), user, password);
        format!("{base} sslmode=disable")
    }

    /// Waits for the scripts to finish and re-raises the first panic among them.
    ///
    /// With [`FakeServer::start`] this waits for the one connection and its script; with
    /// [`FakeServer::accept_many`] it stops accepting and waits for the scripts already running.
    pub async fn join(mut self) {
        if let Some(task) = self.accept_task.take() {
            if !self.single {
                task.abort();
            }
            rethrow(task.await);
        }
        let scripts = std::mem::take(&mut *self.scripts.lock().unwrap());
        for script in scripts {
            rethrow(script.await);
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(task) = self.accept_task.take() {
            task.abort();
        }
        if let Ok(scripts) = self.scripts.lock() {
            scripts.iter().for_each(JoinHandle::abort);
        }
    }
}

fn bind() -> (TcpListener, SocketAddr) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("fake server: bind");
    listener
        .set_nonblocking(true)
        .expect("fake server: set_nonblocking");
    let addr = listener.local_addr().expect("fake server: local_addr");
    (
        TcpListener::from_std(listener).expect("fake server: needs a tokio runtime"),
        addr,
    )
}

fn rethrow(result: Result<(), tokio::task::JoinError>) {
    if let Err(e) = result {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

// ---- Backend messages, built by hand (protocol-message-formats) ----

/// A typed message: `tag`, Int32 length (counting itself), `body`.
pub fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let len = i32::try_from(body.len() + 4).expect("fake server: message too long");
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(tag);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn auth(code: i32, extra: &[u8]) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(extra);
    msg(b'R', &body)
}

/// AuthenticationOk (`R`, code 0).
pub fn auth_ok() -> Vec<u8> {
    auth(0, &[])
}

/// AuthenticationCleartextPassword (`R`, code 3).
pub fn auth_cleartext() -> Vec<u8> {
    auth(3, &[])
}

/// AuthenticationMD5Password (`R`, code 5) with its 4-byte salt.
pub fn auth_md5(salt: [u8; 4]) -> Vec<u8> {
    auth(5, &salt)
}

/// AuthenticationSASL (`R`, code 10): mechanism names, each NUL-terminated, then a final NUL.
pub fn auth_sasl(mechanisms: &[&str]) -> Vec<u8> {
    let mut list = Vec::new();
    mechanisms.iter().for_each(|m| cstr(&mut list, m));
    list.push(0);
    auth(10, &list)
}

/// AuthenticationSASLContinue (`R`, code 11): the server-first-message.
pub fn auth_sasl_continue(data: &[u8]) -> Vec<u8> {
    auth(11, data)
}

/// AuthenticationSASLFinal (`R`, code 12): the server-final-message.
pub fn auth_sasl_final(data: &[u8]) -> Vec<u8> {
    auth(12, data)
}

/// ParameterStatus (`S`): name and value.
pub fn parameter_status(name: &str, value: &str) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, name);
    cstr(&mut body, value);
    msg(b'S', &body)
}

/// BackendKeyData (`K`) as protocol 3.0 sends it: Int32 pid, Int32 secret key.
pub fn backend_key_data(pid: i32, key: i32) -> Vec<u8> {
    let mut body = pid.to_be_bytes().to_vec();
    body.extend_from_slice(&key.to_be_bytes());
    msg(b'K', &body)
}

/// ReadyForQuery (`Z`) with the transaction status: `I`dle, in `T`ransaction, or `E` (failed).
pub fn ready_for_query(status: u8) -> Vec<u8> {
    msg(b'Z', &[status])
}

fn fields_body(fields: &[(u8, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (code, value) in fields {
        body.push(*code);
        cstr(&mut body, value);
    }
    body.push(0);
    body
}

/// ErrorResponse (`E`): `(field code, value)` pairs, e.g. `(b'S', "FATAL")`, `(b'C', "28P01")`.
pub fn error_response(fields: &[(u8, &str)]) -> Vec<u8> {
    msg(b'E', &fields_body(fields))
}

/// NoticeResponse (`N`): same layout as ErrorResponse.
pub fn notice_response(fields: &[(u8, &str)]) -> Vec<u8> {
    msg(b'N', &fields_body(fields))
}

/// RowDescription (`T`) for text-format `text` (OID 25) columns with the given names.
pub fn row_description(names: &[&str]) -> Vec<u8> {
    let count = i16::try_from(names.len()).expect("fake server: too many columns");
    let mut body = count.to_be_bytes().to_vec();
    for name in names {
        cstr(&mut body, name);
        body.extend_from_slice(&0i32.to_be_bytes()); // table OID: not a table column
        body.extend_from_slice(&0i16.to_be_bytes()); // column attribute number
        body.extend_from_slice(&25i32.to_be_bytes()); // type OID: text
        body.extend_from_slice(&(-1i16).to_be_bytes()); // type length: variable
        body.extend_from_slice(&(-1i32).to_be_bytes()); // type modifier: none
        body.extend_from_slice(&0i16.to_be_bytes()); // format: text
    }
    msg(b'T', &body)
}

/// DataRow (`D`): each value as Int32 length and bytes, or length -1 for NULL.
pub fn data_row(values: &[Option<&[u8]>]) -> Vec<u8> {
    let count = i16::try_from(values.len()).expect("fake server: too many columns");
    let mut body = count.to_be_bytes().to_vec();
    for value in values {
        match value {
            Some(v) => {
                let len = i32::try_from(v.len()).expect("fake server: value too long");
                body.extend_from_slice(&len.to_be_bytes());
                body.extend_from_slice(v);
            }
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    msg(b'D', &body)
}

/// CommandComplete (`C`) with its tag, e.g. `SELECT 1`.
pub fn command_complete(tag: &str) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, tag);
    msg(b'C', &body)
}

/// What a PG15 server sends after a successful `trust` login: AuthenticationOk, a few
/// ParameterStatus, BackendKeyData (pid 4242, key 0x5eed) and ReadyForQuery idle.
pub fn trust_handshake() -> Vec<u8> {
    [
        auth_ok(),
        parameter_status("server_version", "15.0"),
        parameter_status("server_encoding", "UTF8"),
        parameter_status("client_encoding", "UTF8"),
        parameter_status("integer_datetimes", "on"),
        backend_key_data(4242, 0x5eed),
        ready_for_query(b'I'),
    ]
    .concat()
}

// ---- Reading what the client sends ----

/// Reads one startup-class packet (StartupMessage, SSLRequest, CancelRequest...) and returns it
/// whole, length prefix included, so tests can compare it with reference bytes.
///
/// Panics if the client closes first or sends a length PostgreSQL would reject.
pub async fn read_startup<R: AsyncRead + Unpin>(stream: &mut R) -> Vec<u8> {
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .await
        .expect("fake server: reading startup length");
    let total = u32::from_be_bytes(len) as usize;
    assert!(
        (8..=MAX_STARTUP_PACKET_LENGTH).contains(&total),
        "fake server: startup packet length {total} outside 8..=10000"
    );
    let mut packet = vec![0u8; total];
    packet[..4].copy_from_slice(&len);
    stream
        .read_exact(&mut packet[4..])
        .await
        .expect("fake server: reading startup packet");
    packet
}

/// The protocol version and `(name, value)` parameters of a StartupMessage from [`read_startup`].
pub fn startup_params(packet: &[u8]) -> (u32, Vec<(String, String)>) {
    let version = u32::from_be_bytes(packet[4..8].try_into().unwrap());
    let text = String::from_utf8_lossy(&packet[8..]);
    let parts: Vec<&str> = text.split('\0').collect();
    let pairs = parts.chunks_exact(2).filter(|kv| !kv[0].is_empty());
    (
        version,
        pairs
            .map(|kv| (kv[0].to_owned(), kv[1].to_owned()))
            .collect(),
    )
}

/// Reads one typed message and returns `(tag, body)`, the body without the length field.
///
/// Panics if the client closes or sends a malformed length.
pub async fn read_message<R: AsyncRead + Unpin>(stream: &mut R) -> (u8, Vec<u8>) {
    match try_read_message(stream).await {
        Ok(Some(message)) => message,
        Ok(None) => panic!("fake server: peer closed instead of sending a message"),
        Err(e) => panic!("fake server: reading a message: {e}"),
    }
}

/// Like [`read_message`], but `Ok(None)` when the peer closes cleanly between messages.
///
/// # Errors
/// I/O errors, a close in the middle of a message, or a length outside `4..=16 MiB`.
pub async fn try_read_message<R: AsyncRead + Unpin>(
    stream: &mut R,
) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut tag = [0u8; 1];
    if stream.read(&mut tag).await? == 0 {
        return Ok(None);
    }
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if !(4..=MAX_MESSAGE_LENGTH).contains(&len) {
        let msg = format!("message {:?} has length {len}", tag[0] as char);
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, msg));
    }
    let mut body = vec![0u8; len - 4];
    stream.read_exact(&mut body).await?;
    Ok(Some((tag[0], body)))
}
