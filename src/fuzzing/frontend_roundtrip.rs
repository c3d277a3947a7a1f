//! Fuzz body `frontend_roundtrip`: arbitrary field values through every encoder in
//! [`crate::wire::frontend`], then back through a test decoder written here from the protocol's
//! message formats.
//!
//! Input: `[options] a \n b \n c \n d`. `a` is padded (by repeating it) to a length near a limit
//! when `(options >> 4) % 4` is 1 (`MAX_STARTUP_PACKET_LEN`) or 2 (`MAX_AUTH_RESPONSE_LEN`):
//! exactly that limit minus 16, plus `options % 16`, so the boundary is crossed both ways.
//! `d` is written to the buffer first: an encoder appends, so what was there must survive.
//!
//! Invariants, for each encoder:
//! - `Ok` exactly when no field that goes out NUL-terminated contains a NUL and the length fits
//!   the limit; the error says which (`EmbeddedNul`, `OutboundTooLong`) — never a truncation;
//! - on `Ok` the buffer is what it was plus exactly one message, whose length field counts its
//!   bytes and whose fields decode back to the values given;
//! - on `Err` the buffer is exactly what it was.

use bytes::BytesMut;

use crate::wire::frontend;
use crate::wire::{WireError, MAX_AUTH_RESPONSE_LEN, MAX_STARTUP_PACKET_LEN};

/// See the module header for the input layout and the invariants.
pub fn frontend_roundtrip(data: &[u8]) {
    let (options, [a, b, c, d]) = super::split_parts::<4>(data);
    let a = pad(a, options);
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let (a_text, b_text, c_text) = (text(&a), text(b), text(c));
    let nul = |v: &[u8]| v.contains(&0);

    let pairs = [(b_text.as_str(), a_text.as_str()), ("x", c_text.as_str())];
    let size = 4
        + 4
        + pairs
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>()
        + 1;
    let nuls = pairs
        .iter()
        .any(|(k, v)| nul(k.as_bytes()) || nul(v.as_bytes()));
    check(
        d,
        |buf| frontend::startup_message(pairs, buf),
        expected(0, nuls, size, MAX_STARTUP_PACKET_LEN),
        |msg| {
            let body = untagged(msg);
            let (version, mut rest) = body.split_at(4);
            assert_eq!(version, frontend::PROTOCOL_VERSION_3_0.to_be_bytes());
            for (k, v) in pairs {
                assert_eq!(cstr(&mut rest), k.as_bytes());
                assert_eq!(cstr(&mut rest), v.as_bytes());
            }
            assert_eq!(rest, [0], "the list ends with one 0 byte");
        },
    );

    check(
        d,
        |buf| frontend::password_message(&a, buf),
        expected(a.len(), nul(&a), 4 + a.len() + 1, MAX_AUTH_RESPONSE_LEN),
        |msg| {
            let mut body = tagged(msg, b'p');
            assert_eq!(cstr(&mut body), &a[..]);
            assert!(body.is_empty());
        },
    );

    let size = 4 + b_text.len() + 1 + 4 + a.len();
    check(
        d,
        |buf| frontend::sasl_initial_response(&b_text, &a, buf),
        expected(a.len(), nul(b_text.as_bytes()), size, MAX_AUTH_RESPONSE_LEN),
        |msg| {
            let mut body = tagged(msg, b'p');
            assert_eq!(cstr(&mut body), b_text.as_bytes());
            let (len, data) = body.split_at(4);
            assert_eq!(len, (a.len() as i32).to_be_bytes());
            assert_eq!(data, &a[..]);
        },
    );

    check(
        d,
        |buf| frontend::sasl_response(&a, buf),
        expected(a.len(), false, 4 + a.len(), MAX_AUTH_RESPONSE_LEN),
        |msg| assert_eq!(tagged(msg, b'p'), &a[..]),
    );

    type Encoder = fn(&str, &mut BytesMut) -> Result<(), WireError>;
    for (tag, encode) in [
        (b'Q', frontend::query as Encoder),
        (b'f', frontend::copy_fail),
    ] {
        check(
            d,
            |buf| encode(&a_text, buf),
            // MAX_FRONTEND_MESSAGE_LEN (1 GiB) is out of a fuzzer's reach: `frontend.rs`'s unit
            // tests check the limit logic at a small limit, `tests/wire_codec.rs` the constant.
            expected(0, nul(a_text.as_bytes()), 0, usize::MAX),
            |msg| {
                let mut body = tagged(msg, tag);
                assert_eq!(cstr(&mut body), a_text.as_bytes());
                assert!(body.is_empty());
            },
        );
    }

    let mut key = [0u8; 4];
    key.iter_mut().zip(b).for_each(|(k, b)| *k = *b);
    let pid = i32::from_be_bytes(key) ^ i32::from(options);
    type Fixed = fn(&mut BytesMut, i32, [u8; 4]);
    let fixed: [(&[u8], Fixed); 3] = [
        (b"X\0\0\0\x04", |buf, _, _| frontend::terminate(buf)),
        (b"\0\0\0\x08\x04\xd2\x16\x2f", |buf, _, _| {
            frontend::ssl_request(buf)
        }),
        (b"", |buf, pid, key| frontend::cancel_request(pid, key, buf)),
    ];
    for (bytes, encode) in fixed {
        let mut buf = BytesMut::from(d);
        encode(&mut buf, pid, key);
        let want = match bytes {
            [] => [
                &16i32.to_be_bytes()[..],
                &80_877_102i32.to_be_bytes(),
                &pid.to_be_bytes(),
                &key,
            ]
            .concat(),
            bytes => bytes.to_vec(),
        };
        assert_eq!(buf.get(..d.len()), Some(d));
        assert_eq!(buf.get(d.len()..), Some(&want[..]));
    }
}

/// `a` stretched to a length near a limit, per the options (see the module header).
fn pad(a: &[u8], options: u8) -> Vec<u8> {
    let limit = match (options >> 4) % 4 {
        1 => MAX_STARTUP_PACKET_LEN,
        2 => MAX_AUTH_RESPONSE_LEN,
        _ => return a.to_vec(),
    };
    let len = limit - 16 + usize::from(options % 16);
    let unit = if a.is_empty() { &b"x"[..] } else { a };
    unit.iter().copied().cycle().take(len).collect()
}

/// The result an encoder must give: a value alone longer than the limit is refused before it
/// is copied; then a NUL (found while writing); then the length-field value `size` against the
/// limit.
fn expected(raw: usize, nul: bool, size: usize, limit: usize) -> Result<(), WireError> {
    if raw > limit {
        Err(WireError::OutboundTooLong { limit })
    } else if nul {
        Err(WireError::EmbeddedNul)
    } else if size > limit {
        Err(WireError::OutboundTooLong { limit })
    } else {
        Ok(())
    }
}

/// Runs `encode` on a buffer holding `prefix`, checks the outcome, and on `Ok` hands the one new
/// message to `decode_back`.
fn check(
    prefix: &[u8],
    encode: impl FnOnce(&mut BytesMut) -> Result<(), WireError>,
    want: Result<(), WireError>,
    decode_back: impl FnOnce(&[u8]),
) {
    let mut buf = BytesMut::from(prefix);
    let got = encode(&mut buf);
    assert_eq!(got, want);
    assert_eq!(buf.get(..prefix.len()), Some(prefix), "the prefix survives");
    match got {
        Ok(()) => decode_back(buf.get(prefix.len()..).unwrap_or_default()),
        Err(_) => assert_eq!(
            buf.len(),
            prefix.len(),
            "a failed encode leaves nothing behind"
        ),
    }
}

/// `Int32 len, body` (startup-class packets): the body, after checking the length.
fn untagged(msg: &[u8]) -> &[u8] {
    let (len, body) = msg.split_at(4);
    let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    assert_eq!(
        usize::try_from(len).ok(),
        Some(msg.len()),
        "length counts the whole packet"
    );
    body
}

/// `Byte1 tag, Int32 len, body`: the body, after checking the tag and the length.
fn tagged(msg: &[u8], tag: u8) -> &[u8] {
    let (got, rest) = msg.split_first().expect("a message has a tag");
    assert_eq!(*got, tag);
    untagged(rest)
}

/// Splits a NUL-terminated string off the front of `rest`.
fn cstr<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let nul = rest.iter().position(|&b| b == 0).expect("a NUL terminator");
    let s = &rest[..nul];
    *rest = &rest[nul + 1..];
    s
}
