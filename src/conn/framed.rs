//! A stream plus its read and write buffers and the sans-IO decoder: the one place bytes move.
//!
//! Reads are check-then-parse: `read_message` first asks the decoder for a complete message
//! already buffered, and only then awaits more bytes with `fill` (cancel-safe: bytes read
//! stay in the buffer). The simple-query loop calls `try_decode` and `fill` itself, so the
//! messages of one read are handled without an await between them.
//!
//! Writes encode into `wbuf` and `flush` consumes `wbuf` as the kernel accepts bytes, so a
//! future dropped during `flush` leaves exactly the unsent tail behind:
//! outside a `flush`, [`Framed::has_unsent`] means a message was cut (the server holds a
//! prefix of it, or none of it) and the outbound stream is no longer at a message boundary.
//! Such a stream must never be written to again; the caller treats it as broken.
//!
//! Buffer sizes: the read buffer starts at 1 KiB and grows while reads come back full (up to
//! 64 KiB per read) or when the decoder reserves room for a large message; at ReadyForQuery,
//! [`Framed::shrink_idle`] gives back anything above 64 KiB, so an idle pooled connection does
//! not keep its busiest query's buffers.

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::socket::Stream;
use crate::error::{Error, Result};
use crate::wire::{BackendMessage, Decoder, DecoderLimits, WireError};

/// The first and smallest read size. A whole handshake (~600 bytes on PostgreSQL 15) and a
/// small query's response fit, and an idle connection holds only this much: the read buffer is
/// most of what an idle pooled connection costs in memory (mini-redis starts at 4 KiB and says
/// real applications should tune it; a pool holds many idle connections).
const MIN_READ_CHUNK: usize = 1024;
/// The largest read size: each read that fills the buffer doubles the next one up to this, so
/// a big result costs few syscalls. Buffers grown past it are given back when idle.
const MAX_READ_CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Framed {
    pub(crate) stream: Stream,
    rbuf: BytesMut,
    /// How much spare room the next read gets: grows while reads come back full, back to
    /// [`MIN_READ_CHUNK`] when [`Framed::shrink_idle`] drops a large buffer.
    read_chunk: usize,
    /// A buffer has held more than [`MAX_READ_CHUNK`] (a large message in either direction):
    /// [`Framed::shrink_idle`] replaces both. Noted while the bytes are there, because once they
    /// are consumed a `BytesMut`'s visible capacity no longer shows its allocation's size.
    oversized: bool,
    pub(crate) wbuf: BytesMut,
    decoder: Decoder,
}

impl Framed {
    pub(crate) fn new(stream: Stream) -> Framed {
        Framed {
            stream,
            rbuf: BytesMut::with_capacity(MIN_READ_CHUNK),
            read_chunk: MIN_READ_CHUNK,
            oversized: false,
            wbuf: BytesMut::new(),
            decoder: Decoder::new(),
        }
    }

    /// The limits of messages after startup (`Config::max_message_len`).
    pub(crate) fn set_limits(&mut self, limits: DecoderLimits) {
        self.decoder.set_limits(limits);
    }

    /// A message already buffered, if any; never touches the socket. A message over the user's
    /// limit is [`Error::is_limit_exceeded`], any other bad input [`Error::is_protocol`].
    pub(crate) fn try_decode(&mut self) -> Result<Option<BackendMessage>> {
        match self.decoder.decode(&mut self.rbuf) {
            Ok(msg) => Ok(msg),
            Err(w @ WireError::MessageTooLong { tag, .. })
                if !self.decoder.in_startup() && DecoderLimits::covers(tag) =>
            {
                Err(Error::limit_exceeded("Config::max_message_len", w))
            }
            Err(w) => Err(Error::protocol(w)),
        }
    }

    /// The next message. EOF is [`Error::closed`].
    ///
    /// Cancel-safe: a partially received message stays buffered for the next call.
    pub(crate) async fn read_message(&mut self) -> Result<BackendMessage> {
        loop {
            if let Some(msg) = self.try_decode()? {
                return Ok(msg);
            }
            self.fill().await?;
        }
    }

    /// Reads once more into the buffer (at least one byte). EOF is [`Error::closed`].
    ///
    /// Cancel-safe: bytes read stay buffered.
    pub(crate) async fn fill(&mut self) -> Result<()> {
        // Headroom check. Once every message in the buffer is consumed, `reserve` reuses
        // the same allocation from its start; it allocates only to grow, bounded by the
        // decoder's limits (a partial message) or by MAX_READ_CHUNK.
        let spare = self.rbuf.capacity().saturating_sub(self.rbuf.len());
        if spare < self.read_chunk / 2 {
            self.rbuf.reserve(self.read_chunk);
        }
        let room = self.rbuf.capacity().saturating_sub(self.rbuf.len());
        self.oversized |= self.rbuf.capacity() > MAX_READ_CHUNK;
        let n = self
            .stream
            .read_buf(&mut self.rbuf)
            .await
            .map_err(Error::io)?;
        if n == 0 {
            return Err(Error::closed());
        }
        if n >= room {
            // The read filled the buffer: a large result is probably streaming in.
            self.read_chunk = self.read_chunk.saturating_mul(2).min(MAX_READ_CHUNK);
        }
        Ok(())
    }

    /// Gives back buffers a large message or result left behind, so an idle connection holds
    /// [`MIN_READ_CHUNK`], not the high-water mark of its busiest query. Call at a message
    /// boundary (after ReadyForQuery): it keeps buffered bytes, and never drops unsent ones.
    pub(crate) fn shrink_idle(&mut self) {
        if self.oversized && self.rbuf.is_empty() && self.wbuf.is_empty() {
            self.rbuf = BytesMut::with_capacity(MIN_READ_CHUNK);
            self.wbuf = BytesMut::new();
            self.read_chunk = MIN_READ_CHUNK;
            self.oversized = false;
        }
    }

    /// Reads whatever the kernel holds right now without waiting. `Ok(false)` means EOF.
    /// Reads at most 64 KiB per call: an idle connection has only a few small messages pending,
    /// and a server flooding us must not keep this non-blocking call spinning.
    pub(crate) fn read_available(&mut self) -> io::Result<bool> {
        // Small chunks: this runs on every checkout, where the answer is almost always
        // `WouldBlock` at once, so the stack buffer's zeroing is most of its cost.
        let mut chunk = [0u8; 512];
        for _ in 0..128 {
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

    /// Writes all of `wbuf`, advancing it past every byte written (`write_buf`, not
    /// `write_all` over a borrowed slice: that would keep already-sent bytes buffered, and a
    /// later flush would send them twice).
    pub(crate) async fn flush(&mut self) -> Result<()> {
        self.oversized |= self.wbuf.len() > MAX_READ_CHUNK;
        while !self.wbuf.is_empty() {
            let n = self
                .stream
                .write_buf(&mut self.wbuf)
                .await
                .map_err(Error::io)?;
            if n == 0 {
                return Err(Error::io(io::ErrorKind::WriteZero.into()));
            }
        }
        // rustls may hold encrypted records the socket did not take yet; plaintext has none.
        if self.stream.is_tls() {
            self.stream.flush().await.map_err(Error::io)?;
        }
        Ok(())
    }

    /// Capacity of the read and write buffers (for tests of the sizing policy).
    #[cfg(test)]
    pub(crate) fn buffer_capacities(&self) -> (usize, usize) {
        (self.rbuf.capacity(), self.wbuf.capacity())
    }

    /// Bytes read but not yet decoded (asynchronous messages after a response, say).
    pub(crate) fn has_buffered(&self) -> bool {
        !self.rbuf.is_empty()
    }

    /// Whether encoded bytes are still waiting to be written. Encoding and the `flush` that
    /// follows it have no await point between them, so outside a `flush` this is true only if
    /// a `flush` was interrupted (its future dropped).
    pub(crate) fn has_unsent(&self) -> bool {
        !self.wbuf.is_empty()
    }

    /// Forgets unsent bytes: the stream is being abandoned and must not finish the cut message.
    pub(crate) fn discard_unsent(&mut self) {
        self.wbuf.clear();
    }

    pub(crate) async fn shutdown(&mut self) -> Result<()> {
        self.stream.shutdown().await.map_err(Error::io)
    }

    /// Reads and discards until the peer closes its end (EOF) or a read fails. Cancel-safe:
    /// nothing read is kept.
    pub(crate) async fn discard_until_eof(&mut self) {
        let mut scratch = [0u8; 512];
        while let Ok(1..) = self.stream.read(&mut scratch).await {}
    }
}
