//! A stream plus its read and write buffers and the sans-IO decoder: the one place bytes move.
//!
//! Reads are check-then-parse: `read_message` first asks the decoder for a complete message
//! already buffered, and only then awaits more bytes with `read_buf` (cancel-safe: bytes read
//! stay in the buffer). Writes encode into `wbuf` and `flush` writes it all with `write_all`;
//! a future dropped during `flush` leaves the stream in an unknown state, which the caller
//! records (`Connection::busy` / `broken`).

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::socket::Stream;
use crate::error::{Error, Result};
use crate::wire::{BackendMessage, Decoder};

/// Read in chunks of at least this much, so small messages don't cost one syscall each.
const READ_CHUNK: usize = 8 * 1024;

#[derive(Debug)]
pub(crate) struct Framed {
    pub(crate) stream: Stream,
    rbuf: BytesMut,
    pub(crate) wbuf: BytesMut,
    decoder: Decoder,
}

impl Framed {
    pub(crate) fn new(stream: Stream) -> Framed {
        Framed {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::new(),
            decoder: Decoder::new(),
        }
    }

    /// A message already buffered, if any; never touches the socket.
    pub(crate) fn try_decode(&mut self) -> Result<Option<BackendMessage>> {
        self.decoder.decode(&mut self.rbuf).map_err(Error::protocol)
    }

    /// The next message. EOF is [`Error::closed`].
    ///
    /// Cancel-safe: a partially received message stays buffered for the next call.
    pub(crate) async fn read_message(&mut self) -> Result<BackendMessage> {
        loop {
            if let Some(msg) = self.try_decode()? {
                return Ok(msg);
            }
            // Headroom check; `reserve` is amortised and bounded by the decoder's limits.
            if self.rbuf.capacity().saturating_sub(self.rbuf.len()) < READ_CHUNK / 2 {
                self.rbuf.reserve(READ_CHUNK);
            }
            if self
                .stream
                .read_buf(&mut self.rbuf)
                .await
                .map_err(Error::io)?
                == 0
            {
                return Err(Error::closed());
            }
        }
    }

    /// Reads whatever the kernel holds right now without waiting. `Ok(false)` means EOF.
    /// Reads at most 64 KiB per call: an idle connection has only a few small messages pending,
    /// and a server flooding us must not keep this non-blocking call spinning.
    pub(crate) fn read_available(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 4096];
        for _ in 0..16 {
            match self.stream.read_now(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => self
                    .rbuf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Writes all of `wbuf`.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await.map_err(Error::io)?;
            self.wbuf.clear();
        }
        Ok(())
    }

    pub(crate) async fn shutdown(&mut self) -> Result<()> {
        self.stream.shutdown().await.map_err(Error::io)
    }
}
