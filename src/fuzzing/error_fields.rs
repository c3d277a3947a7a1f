//! Fuzz body `error_fields`: arbitrary ErrorResponse / NoticeResponse bodies through
//! [`DbError::parse`] and through the [`Decoder`], checked against an independent model of
//! protocol-error-fields.
//!
//! Input: `[options] body`; `options % 2` picks the tag (`E` or `N`).
//!
//! Invariants:
//! - the body parses exactly when it is `(code, NUL-terminated value)*` then one `0`, nothing
//!   after; otherwise the error is `MissingNul` (a value or the terminator cut short) or
//!   `TrailingBytes` (bytes after the terminator);
//! - for a repeated code the last value wins; text is decoded lossily; `P`, `p`, `L` are
//!   numbers only when they are plain `u32`s;
//! - the same body framed as a whole message decodes to the same result through the streaming
//!   decoder, consuming the whole frame;
//! - `Display` and `Debug` never panic.

use bytes::{Bytes, BytesMut};

use crate::wire::{BackendMessage, DbError, Decoder, DecoderLimits, WireError};

/// See the module header for the input layout and the invariants.
pub fn error_fields(data: &[u8]) {
    let (options, body) = data.split_first().map_or((0, &[][..]), |(o, b)| (*o, b));
    let tag = if options % 2 == 0 { b'E' } else { b'N' };
    let parsed = DbError::parse(tag, Bytes::copy_from_slice(body));

    match (&parsed, model(body)) {
        (Ok(e), Ok(fields)) => {
            let last = |code: u8| {
                fields
                    .iter()
                    .rev()
                    .find(|(c, _)| *c == code)
                    .map(|(_, v)| v.as_str())
            };
            let number = |code: u8| last(code).and_then(|v| v.parse::<u32>().ok());
            assert_eq!(e.severity(), last(b'S').unwrap_or_default());
            assert_eq!(e.code(), last(b'C').unwrap_or_default());
            assert_eq!(e.message(), last(b'M').unwrap_or_default());
            assert_eq!(e.severity_nonlocalized(), last(b'V'));
            assert_eq!(e.detail(), last(b'D'));
            assert_eq!(e.hint(), last(b'H'));
            assert_eq!(e.where_(), last(b'W'));
            assert_eq!(e.constraint(), last(b'n'));
            assert_eq!(e.routine(), last(b'R'));
            assert_eq!(e.position(), number(b'P'));
            assert_eq!(e.internal_position(), number(b'p'));
            assert_eq!(e.line(), number(b'L'));
            let _ = (e.to_string(), format!("{e:?}"));
        }
        (Err(got), Err(expected)) => assert_eq!(*got, expected(tag), "body {body:?}"),
        (got, model) => panic!("body {body:?}: parsed {got:?}, model ok: {}", model.is_ok()),
    }

    // The same body as a whole message, after startup (where E/N take the configurable cap).
    let Some(len) = body
        .len()
        .checked_add(4)
        .and_then(|l| u32::try_from(l).ok())
    else {
        return;
    };
    let mut decoder = Decoder::with_limits(DecoderLimits {
        max_message_len: usize::MAX,
    });
    let mut stream = BytesMut::from(&b"Z\0\0\0\x05I"[..]);
    assert!(matches!(
        decoder.decode(&mut stream),
        Ok(Some(BackendMessage::ReadyForQuery(_)))
    ));
    stream.extend_from_slice(&[tag]);
    stream.extend_from_slice(&len.to_be_bytes());
    stream.extend_from_slice(body);
    let decoded = decoder.decode(&mut stream);
    let expected = parsed.map(|e| match tag {
        b'E' => Some(BackendMessage::ErrorResponse(e)),
        _ => Some(BackendMessage::NoticeResponse(e)),
    });
    assert_eq!(decoded, expected);
    if decoded.is_ok() {
        assert!(stream.is_empty(), "the frame was consumed exactly");
    }
}

type Fields = Vec<(u8, String)>;

/// The fields, or which error (given the tag) the body must give.
fn model(body: &[u8]) -> Result<Fields, fn(u8) -> WireError> {
    let mut fields = Vec::new();
    let mut rest = body;
    loop {
        let Some((&code, after)) = rest.split_first() else {
            return Err(|tag| WireError::MissingNul { tag });
        };
        if code == 0 {
            return match after {
                [] => Ok(fields),
                _ => Err(|tag| WireError::TrailingBytes { tag }),
            };
        }
        let Some(nul) = after.iter().position(|&b| b == 0) else {
            return Err(|tag| WireError::MissingNul { tag });
        };
        let (value, after) = after.split_at(nul);
        fields.push((code, String::from_utf8_lossy(value).into_owned()));
        rest = &after[1..];
    }
}
