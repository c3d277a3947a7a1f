//! The limit for `select1`: the "bare raw-wire client". `size` sockets, each already
//! past a trust startup, under the bare primitives of `pool_core` (`bare.rs`: a semaphore, an
//! `ArrayQueue`, a guard that pushes back then adds a permit). A query is one pre-encoded
//! `Query` written and the reply scanned for ReadyForQuery by its framing alone: no connection
//! task, no channel, no message decoding, no rows, no liveness check, no statistics, no state.
//!
//! It is not a client anyone should ship (an error or a dropped future leaves the socket
//! mid-reply, and nothing notices a dead server), which is why it is the floor: the client CPU
//! per query any tokio client pays for one send and one receive on this machine. A real pool's
//! distance from it is what the pool and its client add; the distance from it to the goal's
//! 0.7× deadpool-postgres is what no tokio client removes.
#![allow(dead_code)]

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use crate::bare::Bare;
use crate::pg_clients::PgContender;

/// `Query(sql)`: tag, length, the text and its NUL (`SELECT 1`: `Q\0\0\0\x0dSELECT 1\0`).
fn encode_query(sql: &str) -> Vec<u8> {
    let len = u32::try_from(4 + sql.len() + 1).expect("a short query");
    let mut q = vec![b'Q'];
    q.extend_from_slice(&len.to_be_bytes());
    q.extend_from_slice(sql.as_bytes());
    q.push(0);
    q
}

/// A TCP socket, or a Unix one when the host is a directory (libpq's rule).
enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    async fn connect(host: &str, port: u16) -> std::io::Result<Socket> {
        if host.starts_with('/') {
            let path = format!("{host}/.s.PGSQL.{port}");
            return Ok(Socket::Unix(UnixStream::connect(path).await?));
        }
        let tcp = TcpStream::connect((host, port)).await?;
        tcp.set_nodelay(true)?;
        Ok(Socket::Tcp(tcp))
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Socket::Tcp(s) => s.write_all(bytes).await,
            Socket::Unix(s) => s.write_all(bytes).await,
        }
    }

    async fn read_buf(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read_buf(buf).await,
            Socket::Unix(s) => s.read_buf(buf).await,
        }
    }
}

/// One socket past its startup, with its read buffer and the encoded query.
pub struct RawConn {
    stream: Socket,
    buf: BytesMut,
    query: Vec<u8>,
}

impl RawConn {
    /// Connects and runs a trust startup (protocol 3.0, `user`, `database`) to ReadyForQuery.
    async fn connect(host: &str, port: u16, user: &str, database: &str) -> Result<Self, String> {
        let stream = Socket::connect(host, port)
            .await
            .map_err(|e| e.to_string())?;
        let mut body = 196_608u32.to_be_bytes().to_vec();
        for (k, v) in [("user", user), ("database", database)] {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let len = u32::try_from(body.len() + 4).map_err(|e| e.to_string())?;
        let mut startup = len.to_be_bytes().to_vec();
        startup.extend_from_slice(&body);
        let mut conn = RawConn {
            stream,
            buf: BytesMut::with_capacity(4096),
            query: encode_query(crate::pg_clients::sql()),
        };
        conn.stream
            .write_all(&startup)
            .await
            .map_err(|e| e.to_string())?;
        // AuthenticationOk ('R', code 0) is all trust sends; anything else is not supported.
        conn.read_until_ready(|tag, body| match (tag, body) {
            (b'R', [0, 0, 0, 0]) | (b'S' | b'K' | b'Z', _) => Ok(()),
            _ => Err(format!(
                "raw client: unexpected startup message {:?}",
                tag as char
            )),
        })
        .await?;
        Ok(conn)
    }

    /// Sends the query and reads to its ReadyForQuery.
    async fn select1(&mut self) -> Result<(), String> {
        self.stream
            .write_all(&self.query)
            .await
            .map_err(|e| e.to_string())?;
        self.read_until_ready(|tag, _| match tag {
            b'E' => Err("raw client: the server sent an error".to_owned()),
            _ => Ok(()),
        })
        .await
    }

    /// Reads messages by their framing, showing each to `check`, through ReadyForQuery.
    async fn read_until_ready(
        &mut self,
        mut check: impl FnMut(u8, &[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        loop {
            while self.buf.len() >= 5 {
                let tag = self.buf[0];
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
                let total = 1 + usize::try_from(len).map_err(|e| e.to_string())?;
                if self.buf.len() < total {
                    break;
                }
                check(tag, &self.buf[5..total])?;
                self.buf.advance(total);
                if tag == b'Z' {
                    return Ok(());
                }
            }
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("raw client: the server closed the connection".to_owned());
            }
        }
    }
}

/// `size` raw connections under the bare primitives.
pub struct RawWire(Arc<Bare<RawConn>>);

impl PgContender for RawWire {
    const NAME: &'static str = "bare raw-wire client (limit)";
    async fn build(conninfo: &str, size: usize) -> Result<Self, String> {
        let config: wirepool::Config = conninfo.parse().map_err(|e| format!("{e}"))?;
        let get = |k: &str| config.get(k).unwrap_or_default().to_owned();
        let port: u16 = config
            .get("port")
            .unwrap_or("5432")
            .parse()
            .map_err(|e| format!("port: {e}"))?;
        let (host, user, db) = (get("host"), get("user"), get("dbname"));
        let mut conns = Vec::with_capacity(size);
        for _ in 0..size {
            conns.push(RawConn::connect(&host, port, &user, &db).await?);
        }
        Ok(RawWire(Bare::new(size, || conns.pop().expect("one each"))))
    }
    async fn select1(&self) -> Result<(), String> {
        self.0.get().await.select1().await
    }
    async fn shutdown(self) {}
}
