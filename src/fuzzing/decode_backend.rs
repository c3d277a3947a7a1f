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
//! - `Ok(None)` consumes nothing, and the buffer never grows past what the largest message the
//!   current limits allow needs (a hostile length cannot make us reserve gigabytes).

use bytes::BytesMut;

use crate::wire::{
    BackendMessage, Decoder, DecoderLimits, WireError, DEFAULT_MAX_MESSAGE_LEN,
    MAX_AUTH_MESSAGE_LEN, MAX_SMALL_MESSAGE_LEN, MAX_STARTUP_MESSAGE_LEN,
};

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
    let largest = limits
        .max_message_len
        .max(MAX_SMALL_MESSAGE_LEN)
        .max(MAX_STARTUP_MESSAGE_LEN)
        .max(MAX_AUTH_MESSAGE_LEN);
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
            let header = buf
                .get(..5)
                .map(|h| (h[0], u32::from_be_bytes([h[1], h[2], h[3], h[4]])));
            match decoder.decode(&mut buf) {
                Ok(Some(msg)) => {
                    let (tag, len) = header.expect("a message needs a header");
                    assert_eq!(msg.tag(), tag);
                    assert_eq!(before - buf.len(), 1 + len as usize, "consumed 1 + len");
                    messages.push(msg);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) consumes nothing");
                    // `reserve` may double a buffer (amortised growth) but must not go past
                    // what one maximal message needs.
                    let bound = capacity.max(largest + 1).saturating_mul(2);
                    assert!(buf.capacity() <= bound, "reserved {} bytes", buf.capacity());
                    break;
                }
                Err(error) => {
                    return Transcript {
                        messages,
                        error: Some(error),
                        tail: 0,
                    }
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
