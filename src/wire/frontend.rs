//! Client → server encoders. Each appends one whole message to the caller's `BytesMut`.
//!
//! Invariants: lengths are back-patched from the bytes actually written, with checked
//! arithmetic and `i32::try_from`, and compared with the message's `MAX_*` limit; a string with
//! an embedded NUL is refused (it would end early on the wire and the rest would be parsed as
//! something else). On any error the buffer is restored to its previous length, so a failed
//! encode never leaves half a message behind.
//!
//! ```
//! use bytes::BytesMut;
//! use wirepool::wire::frontend;
//!
//! let mut buf = BytesMut::new();
//! frontend::query("select 1", &mut buf).unwrap();
//! assert_eq!(&buf[..], b"Q\0\0\0\x0dselect 1\0");
//! ```

use bytes::{BufMut, BytesMut};

use super::tag::frontend as kind;
use super::{WireError, MAX_AUTH_RESPONSE_LEN, MAX_FRONTEND_MESSAGE_LEN, MAX_STARTUP_PACKET_LEN};

/// Protocol 3.0 (`major << 16 | minor`). We never ask for 3.2, so a real server never answers
/// with NegotiateProtocolVersion.
pub const PROTOCOL_VERSION_3_0: i32 = 0x0003_0000;

/// The SSLRequest code, `1234 << 16 | 5679`.
pub const SSL_REQUEST_CODE: i32 = 80_877_103;

/// The CancelRequest code, `1234 << 16 | 5678`.
pub const CANCEL_REQUEST_CODE: i32 = 80_877_102;

/// Appends one message: `tag` (if any), a length placeholder, the body, then patches the length.
fn write_message(
    buf: &mut BytesMut,
    tag: Option<u8>,
    limit: usize,
    body: impl FnOnce(&mut BytesMut) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let start = buf.len();
    let result = write_unchecked(buf, tag, limit, body);
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

fn write_unchecked(
    buf: &mut BytesMut,
    tag: Option<u8>,
    limit: usize,
    body: impl FnOnce(&mut BytesMut) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let too_long = WireError::OutboundTooLong { limit };
    if let Some(tag) = tag {
        buf.put_u8(tag);
    }
    let len_at = buf.len();
    buf.put_i32(0);
    body(buf)?;
    let len = buf.len().checked_sub(len_at).ok_or(too_long)?;
    if len > limit {
        return Err(too_long);
    }
    let len = i32::try_from(len).map_err(|_| too_long)?;
    let end = len_at.checked_add(4).ok_or(too_long)?;
    buf.get_mut(len_at..end)
        .ok_or(too_long)?
        .copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Appends `s` and a NUL, refusing an embedded NUL.
fn put_cstr(buf: &mut BytesMut, s: &[u8]) -> Result<(), WireError> {
    if s.contains(&0) {
        return Err(WireError::EmbeddedNul);
    }
    buf.put_slice(s);
    buf.put_u8(0);
    Ok(())
}

/// Refuses a value that cannot fit under `limit` before copying it (so a multi-gigabyte string
/// is rejected without first being copied into the buffer).
fn precheck(len: usize, limit: usize) -> Result<(), WireError> {
    if len > limit {
        Err(WireError::OutboundTooLong { limit })
    } else {
        Ok(())
    }
}

/// StartupMessage for protocol 3.0: `Int32 len, Int32 196608, (String name, String value)*,
/// Byte 0`, at most [`MAX_STARTUP_PACKET_LEN`] bytes.
///
/// # Errors
/// [`WireError::EmbeddedNul`] if a name or value contains NUL; [`WireError::OutboundTooLong`]
/// if the packet would exceed the limit.
pub fn startup_message<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    buf: &mut BytesMut,
) -> Result<(), WireError> {
    write_message(buf, None, MAX_STARTUP_PACKET_LEN, |buf| {
        buf.put_i32(PROTOCOL_VERSION_3_0);
        for (name, value) in params {
            put_cstr(buf, name.as_bytes())?;
            put_cstr(buf, value.as_bytes())?;
        }
        buf.put_u8(0);
        Ok(())
    })
}

/// SSLRequest: `00 00 00 08 04 d2 16 2f`.
pub fn ssl_request(buf: &mut BytesMut) {
    buf.put_i32(8);
    buf.put_i32(SSL_REQUEST_CODE);
}

/// CancelRequest for protocol 3.0: 16 bytes, `Int32 16, Int32 80877102, Int32 pid, Byte4 key`.
pub fn cancel_request(pid: i32, key: [u8; 4], buf: &mut BytesMut) {
    buf.put_i32(16);
    buf.put_i32(CANCEL_REQUEST_CODE);
    buf.put_i32(pid);
    buf.put_slice(&key);
}

/// PasswordMessage (`'p'`): the cleartext password or the `md5...` digest, NUL-terminated.
///
/// # Errors
/// [`WireError::EmbeddedNul`]; [`WireError::OutboundTooLong`] above [`MAX_AUTH_RESPONSE_LEN`].
pub fn password_message(password: &[u8], buf: &mut BytesMut) -> Result<(), WireError> {
    precheck(password.len(), MAX_AUTH_RESPONSE_LEN)?;
    write_message(buf, Some(kind::PASSWORD), MAX_AUTH_RESPONSE_LEN, |buf| {
        put_cstr(buf, password)
    })
}

/// SASLInitialResponse (`'p'`): `String mechanism, Int32 len, Byte[len] data`.
///
/// # Errors
/// [`WireError::EmbeddedNul`] in the mechanism; [`WireError::OutboundTooLong`] above
/// [`MAX_AUTH_RESPONSE_LEN`].
pub fn sasl_initial_response(
    mechanism: &str,
    data: &[u8],
    buf: &mut BytesMut,
) -> Result<(), WireError> {
    let limit = MAX_AUTH_RESPONSE_LEN;
    precheck(data.len(), limit)?;
    write_message(buf, Some(kind::PASSWORD), limit, |buf| {
        put_cstr(buf, mechanism.as_bytes())?;
        let len = i32::try_from(data.len()).map_err(|_| WireError::OutboundTooLong { limit })?;
        buf.put_i32(len);
        buf.put_slice(data);
        Ok(())
    })
}

/// SASLResponse (`'p'`): the data, with no terminator.
///
/// # Errors
/// [`WireError::OutboundTooLong`] above [`MAX_AUTH_RESPONSE_LEN`].
pub fn sasl_response(data: &[u8], buf: &mut BytesMut) -> Result<(), WireError> {
    precheck(data.len(), MAX_AUTH_RESPONSE_LEN)?;
    write_message(buf, Some(kind::PASSWORD), MAX_AUTH_RESPONSE_LEN, |buf| {
        buf.put_slice(data);
        Ok(())
    })
}

/// Query (`'Q'`): a simple query string, NUL-terminated, at most
/// [`MAX_FRONTEND_MESSAGE_LEN`] bytes in all.
///
/// # Errors
/// [`WireError::EmbeddedNul`]; [`WireError::OutboundTooLong`].
pub fn query(sql: &str, buf: &mut BytesMut) -> Result<(), WireError> {
    precheck(sql.len(), MAX_FRONTEND_MESSAGE_LEN)?;
    write_message(buf, Some(kind::QUERY), MAX_FRONTEND_MESSAGE_LEN, |buf| {
        put_cstr(buf, sql.as_bytes())
    })
}

/// CopyFail (`'f'`): abort a COPY FROM STDIN with this message.
///
/// # Errors
/// [`WireError::EmbeddedNul`]; [`WireError::OutboundTooLong`].
pub fn copy_fail(message: &str, buf: &mut BytesMut) -> Result<(), WireError> {
    precheck(message.len(), MAX_FRONTEND_MESSAGE_LEN)?;
    write_message(
        buf,
        Some(kind::COPY_FAIL),
        MAX_FRONTEND_MESSAGE_LEN,
        |buf| put_cstr(buf, message.as_bytes()),
    )
}

/// Terminate (`'X'`): `58 00 00 00 04`.
pub fn terminate(buf: &mut BytesMut) {
    buf.put_u8(kind::TERMINATE);
    buf.put_i32(4);
}

#[cfg(test)]
mod tests {
    //! The limit logic every encoder shares, at a small limit: the real ones are too large to
    //! reach cheaply (`tests/wire_codec.rs` checks each encoder against its own constant).

    use super::*;

    const LIMIT: usize = 16;

    /// Appends a tagged message whose length field (itself included) is `len`, under [`LIMIT`].
    fn tagged(buf: &mut BytesMut, len: usize) -> Result<(), WireError> {
        write_message(buf, Some(kind::QUERY), LIMIT, |buf| {
            buf.put_bytes(b'x', len - 4);
            Ok(())
        })
    }

    #[test]
    fn a_message_at_exactly_the_limit_is_written_with_its_length() {
        let mut buf = BytesMut::from(&b"before"[..]);
        tagged(&mut buf, LIMIT).unwrap();
        assert_eq!(&buf[..7], b"beforeQ");
        assert_eq!(&buf[7..11], &16i32.to_be_bytes());
        assert_eq!(buf.len(), 6 + 1 + LIMIT);
    }

    #[test]
    fn one_past_the_limit_is_refused_and_the_buffer_restored() {
        let mut buf = BytesMut::from(&b"before"[..]);
        assert_eq!(
            tagged(&mut buf, LIMIT + 1),
            Err(WireError::OutboundTooLong { limit: LIMIT })
        );
        assert_eq!(&buf[..], b"before");
    }

    #[test]
    fn an_untagged_packet_counts_the_same_way() {
        let packet = |buf: &mut BytesMut, len: usize| {
            write_message(buf, None, LIMIT, |buf| {
                buf.put_bytes(0, len - 4);
                Ok(())
            })
        };
        let mut buf = BytesMut::new();
        packet(&mut buf, LIMIT).unwrap();
        assert_eq!(&buf[..4], &16i32.to_be_bytes());
        assert_eq!(buf.len(), LIMIT);
        assert!(packet(&mut buf, LIMIT + 1).is_err());
        assert_eq!(buf.len(), LIMIT);
    }

    #[test]
    fn the_precheck_refuses_only_what_cannot_fit() {
        assert_eq!(precheck(LIMIT, LIMIT), Ok(()));
        assert_eq!(
            precheck(LIMIT + 1, LIMIT),
            Err(WireError::OutboundTooLong { limit: LIMIT })
        );
    }
}
