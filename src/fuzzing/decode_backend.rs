//! Fuzz body `decode_backend`: arbitrary bytes into the streaming [`Decoder`], fed whole, one
//! byte at a time, and in pseudo-random chunks.
//!
//! Input: `[options] stream`. `options % 4` picks the post-startup cap
//! ([`DecoderLimits::max_message_len`]): 64, 4096, 1 MiB, or the default 64 MiB; `options / 4`
//! seeds the chunk sizes.
//!
//! Invariants:
//! - no panic; the decoder stops at the first error (the stream is then out of sync);
//! - the same messages, then the same error or the same incomplete tail, whichever way the bytes
//!   are split;
//! - each decoded message consumes exactly `1 + len` bytes of its header, and has the header's tag;
//! - every tag's declared length is held to the limit libpq applies to it in the current phase
//!   (a model of the table in `wire/mod.rs`): a message over it is `MessageTooLong` naming that
//!   limit, one within it decodes or waits;
//! - a decoded RowDescription or DataRow reads back as many columns as it declares, and those
//!   reads cover its body exactly: they are validated when decoded and read on demand, so
//!   reading them can neither come up short nor step wrong; a ParameterDescription's types
//!   cover its body; ParseComplete, BindComplete, CloseComplete, NoData and PortalSuspended
//!   are empty;
//! - `Ok(None)` consumes nothing and reserves at most what the declared message needs (doubling
//!   allowed): a hostile length cannot make us reserve gigabytes.

use bytes::BytesMut;

use crate::wire::{
    BackendMessage, Decoder, DecoderLimits, WireError, DEFAULT_MAX_MESSAGE_LEN,
    MAX_AUTH_MESSAGE_LEN, MAX_NOTIFICATION_LEN, MAX_PARAMETER_DESCRIPTION_LEN,
    MAX_SMALL_MESSAGE_LEN, MAX_STARTUP_MESSAGE_LEN,
};

/// `BytesMut` may give a buffer that was split off a larger one its original allocation size
/// again when it grows (bytes 1.x remembers it up to 64 KiB): allowed, it is not peer-controlled.
const BYTES_MUT_SLACK: usize = 128 << 10;

const CAPS: [usize; 4] = [64, 4096, 1 << 20, DEFAULT_MAX_MESSAGE_LEN];

/// Everything a feed produced: the messages, and how it ended.
#[derive(Debug, PartialEq)]
struct Transcript {
    messages: Vec<BackendMessage>,
    error: Option<WireError>,
    /// Bytes left undecoded (an incomplete message), when it ended without an error.
    tail: usize,
}

/// See the module header for the input layout and the invariants.
pub fn decode_backend(data: &[u8]) {
    let (options, stream) = data.split_first().map_or((0, &[][..]), |(o, s)| (*o, s));
    let limits = DecoderLimits {
        max_message_len: CAPS[usize::from(options % 4)],
    };
    let whole = feed(stream, limits, |_| stream.len());
    let bytewise = feed(stream, limits, |_| 1);
    assert_eq!(whole, bytewise, "fed whole vs one byte at a time");
    let mut seed = u64::from(options / 4) | 0x9e37_79b9_0000_0000;
    let chunked = feed(stream, limits, |left| {
        // xorshift64: deterministic, so a failing input replays.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        1 + (seed % 64) as usize % left.max(1)
    });
    assert_eq!(whole, chunked, "fed whole vs in chunks");
}

/// Feeds `stream` in chunks of `next_chunk(bytes left)` and decodes after each chunk until the
/// decoder errors or the input is exhausted.
fn feed(
    stream: &[u8],
    limits: DecoderLimits,
    mut next_chunk: impl FnMut(usize) -> usize,
) -> Transcript {
    let mut decoder = Decoder::with_limits(limits);
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    let mut rest = stream;
    loop {
        let n = next_chunk(rest.len()).max(1).min(rest.len());
        let (chunk, after) = rest.split_at(n);
        buf.extend_from_slice(chunk);
        rest = after;
        loop {
            let before = buf.len();
            let capacity = buf.capacity();
            let startup = decoder.in_startup();
            let header = buf
                .get(..5)
                .map(|h| (h[0], u32::from_be_bytes([h[1], h[2], h[3], h[4]])));
            match decoder.decode(&mut buf) {
                Ok(Some(msg)) => {
                    let (tag, len) = header.expect("a message needs a header");
                    assert_eq!(msg.tag(), tag);
                    assert!(limit_for(startup, tag, limits).is_some_and(|l| len as usize <= l));
                    assert_eq!(before - buf.len(), 1 + len as usize, "consumed 1 + len");
                    check_reads_back(&msg, len);
                    messages.push(msg);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) consumes nothing");
                    // Memory is reserved only for a declared length within the tag's limit;
                    // `reserve` may double a buffer (amortised growth), no more.
                    let needed = match header {
                        Some((tag, len)) => {
                            let limit = limit_for(startup, tag, limits);
                            assert!(limit.is_some_and(|l| len as usize <= l), "{tag} {len}");
                            len as usize + 1
                        }
                        None => 0,
                    };
                    let bound = capacity.max(needed).saturating_mul(2).max(BYTES_MUT_SLACK);
                    assert!(
                        buf.capacity() <= bound,
                        "reserved {} bytes (was {capacity}, header {header:?}, len {before})",
                        buf.capacity()
                    );
                    break;
                }
                Err(error) => {
                    if let WireError::MessageTooLong { tag, limit } = error {
                        assert_eq!(Some(limit), limit_for(startup, tag, limits));
                        let declared = header.map(|(_, len)| len as usize);
                        assert!(declared.is_some_and(|len| len > limit));
                    }
                    return Transcript {
                        messages,
                        error: Some(error),
                        tail: 0,
                    };
                }
            }
        }
        if rest.is_empty() {
            return Transcript {
                messages,
                error: None,
                tail: buf.len(),
            };
        }
    }
}

/// Messages kept as frames and read on demand read back whole (see the module header).
/// The reads must also cover the body exactly: 2 bytes of count, then per field its name, NUL
/// and 18 bytes (RowDescription) or per value 4 bytes of length and the value (DataRow), so an
/// iterator that stepped wrong would not add up.
fn check_reads_back(msg: &BackendMessage, len: u32) {
    let body = len as usize - 4;
    match msg {
        BackendMessage::RowDescription(rd) => {
            assert_eq!(rd.fields().count(), rd.len());
            let read: usize = rd.fields().map(|f| f.name.len() + 1 + 18).sum();
            assert_eq!(2 + read, body, "RowDescription fields cover the body");
        }
        BackendMessage::DataRow(row) => {
            assert_eq!(row.columns().count(), row.len());
            let read: usize = row.columns().map(|v| 4 + v.map_or(0, <[u8]>::len)).sum();
            assert_eq!(2 + read, body, "DataRow values cover the body");
        }
        BackendMessage::ParameterDescription(p) => {
            assert_eq!(
                2 + 4 * p.types.len(),
                body,
                "ParameterDescription covers the body"
            );
        }
        BackendMessage::ParseComplete
        | BackendMessage::BindComplete
        | BackendMessage::CloseComplete
        | BackendMessage::NoData
        | BackendMessage::PortalSuspended => assert_eq!(body, 0, "an empty message"),
        _ => {}
    }
}

/// The largest length-field value each tag may declare, from the libpq limits the wire module
/// documents: `None` for a tag that is refused outright in this phase.
fn limit_for(startup: bool, tag: u8, limits: DecoderLimits) -> Option<usize> {
    match (startup, tag) {
        (true, b'R') => Some(MAX_AUTH_MESSAGE_LEN),
        (true, b'E' | b'N' | b'S' | b'K' | b'v' | b'Z') => Some(MAX_STARTUP_MESSAGE_LEN),
        (false, b'T' | b'D' | b'd' | b'E' | b'N') => Some(limits.max_message_len),
        (false, b'A') => Some(MAX_NOTIFICATION_LEN),
        (false, b't') => Some(MAX_PARAMETER_DESCRIPTION_LEN),
        (false, b'S' | b'Z' | b'C' | b'I' | b'G' | b'H' | b'W' | b'c')
        | (false, b'1' | b'2' | b'3' | b'n' | b's') => Some(MAX_SMALL_MESSAGE_LEN),
        _ => None,
    }
}
