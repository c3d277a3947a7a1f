//! Client → server encoders of the extended query protocol: Parse, Bind, Describe, Execute,
//! Close, Sync and Flush (protocol-message-formats; the flow is protocol-flow §55.2.3).
//!
//! Invariants, as in [`frontend`](super::frontend): every length is back-patched from the bytes
//! written with checked arithmetic and held to [`MAX_FRONTEND_MESSAGE_LEN`]; names and the SQL
//! text refuse an embedded NUL; a parameter count above [`MAX_PARAMETERS`] is an error, never a
//! count wrapped to 16 bits (the server would read the rest of the message as other fields);
//! on any error the buffer is restored to its previous length.
//!
//! ```
//! use bytes::BytesMut;
//! use wirepool::wire::extended::{self, Target};
//!
//! let mut buf = BytesMut::new();
//! extended::parse("", "select $1::int4", &[], &mut buf).unwrap();
//! extended::bind("", "", 1, |_, buf| {
//!     buf.extend_from_slice(b"42");
//!     Ok::<_, wirepool::wire::WireError>(true)
//! }, &mut buf).unwrap();
//! extended::describe(Target::Portal, "", &mut buf).unwrap();
//! extended::execute("", 0, &mut buf).unwrap();
//! extended::sync(&mut buf);
//! assert_eq!(&buf[..5], b"P\0\0\0\x17");
//! assert_eq!(&buf[buf.len() - 5..], b"S\0\0\0\x04");
//! ```

use bytes::{BufMut, BytesMut};

use super::tag::frontend as kind;
use super::{WireError, MAX_FRONTEND_MESSAGE_LEN};

/// The most parameters one statement can take: Parse and Bind carry the count as an Int16,
/// which the server reads as unsigned (`pq_getmsgint(msg, 2)` in `postgres.c`), so 65,535.
pub const MAX_PARAMETERS: usize = 65_535;

/// What a Describe or Close names: a prepared statement (`'S'`) or a portal (`'P'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `'S'`: a prepared statement.
    Statement,
    /// `'P'`: a portal (a bound statement).
    Portal,
}

impl Target {
    fn byte(self) -> u8 {
        match self {
            Target::Statement => b'S',
            Target::Portal => b'P',
        }
    }
}

/// Appends one tagged message with a back-patched length, restoring `buf` on error.
fn write<E: From<WireError>>(
    buf: &mut BytesMut,
    tag: u8,
    body: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<(), E> {
    let start = buf.len();
    let result = write_unchecked(buf, tag, body);
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

fn write_unchecked<E: From<WireError>>(
    buf: &mut BytesMut,
    tag: u8,
    body: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<(), E> {
    buf.put_u8(tag);
    let len_at = buf.len();
    buf.put_i32(0);
    body(buf)?;
    let len = buf.len().checked_sub(len_at).ok_or(too_long())?;
    if len > MAX_FRONTEND_MESSAGE_LEN {
        return Err(too_long().into());
    }
    patch_i32(buf, len_at, len)?;
    Ok(())
}

fn too_long() -> WireError {
    WireError::OutboundTooLong {
        limit: MAX_FRONTEND_MESSAGE_LEN,
    }
}

/// Writes `value` as an Int32 over the 4 bytes at `at`.
fn patch_i32(buf: &mut BytesMut, at: usize, value: usize) -> Result<(), WireError> {
    let value = i32::try_from(value).map_err(|_| too_long())?;
    let end = at.checked_add(4).ok_or(too_long())?;
    buf.get_mut(at..end)
        .ok_or(too_long())?
        .copy_from_slice(&value.to_be_bytes());
    Ok(())
}

fn put_cstr(buf: &mut BytesMut, s: &str) -> Result<(), WireError> {
    if s.as_bytes().contains(&0) {
        return Err(WireError::EmbeddedNul);
    }
    if s.len() > MAX_FRONTEND_MESSAGE_LEN {
        return Err(too_long());
    }
    buf.put_slice(s.as_bytes());
    buf.put_u8(0);
    Ok(())
}

/// The Int16 count of a parameter list, refusing more than [`MAX_PARAMETERS`].
fn count16(n: usize) -> Result<u16, WireError> {
    u16::try_from(n).map_err(|_| WireError::TooManyParameters { count: n })
}

/// Parse (`'P'`): `String name, String query, Int16 n, Int32 oid × n`. An empty `name` is the
/// unnamed statement; an OID of 0 leaves that parameter's type to the server.
///
/// # Errors
/// [`WireError::EmbeddedNul`] in the name or the query; [`WireError::TooManyParameters`];
/// [`WireError::OutboundTooLong`].
pub fn parse(
    name: &str,
    query: &str,
    param_types: &[u32],
    buf: &mut BytesMut,
) -> Result<(), WireError> {
    let n = count16(param_types.len())?;
    write(buf, kind::PARSE, |buf| {
        put_cstr(buf, name)?;
        put_cstr(buf, query)?;
        buf.put_u16(n);
        for oid in param_types {
            buf.put_u32(*oid);
        }
        Ok(())
    })
}

/// Bind (`'B'`) of `count` parameters, all in text format, asking for every result column in
/// text format: `String portal, String statement, Int16 0, Int16 count, (Int32 len, Byte[len])
/// × count, Int16 0` (a format-code count of 0 means "all text").
///
/// `write_value(i, buf)` appends parameter `i`'s bytes and returns `Ok(true)`, or appends
/// nothing and returns `Ok(false)` for NULL (length −1); its length is back-patched. The
/// values are written in place, so a parameter costs no copy of its own.
///
/// # Errors
/// [`WireError::EmbeddedNul`] in a name; [`WireError::TooManyParameters`];
/// [`WireError::OutboundTooLong`]; any error of `write_value`, or `NULL` that wrote bytes
/// ([`WireError::InvalidParameter`]).
pub fn bind<E: From<WireError>>(
    portal: &str,
    statement: &str,
    count: usize,
    mut write_value: impl FnMut(usize, &mut BytesMut) -> Result<bool, E>,
    buf: &mut BytesMut,
) -> Result<(), E> {
    let n = count16(count)?;
    write(buf, kind::BIND, |buf| {
        put_cstr(buf, portal)?;
        put_cstr(buf, statement)?;
        buf.put_i16(0);
        buf.put_u16(n);
        for i in 0..count {
            let len_at = buf.len();
            buf.put_i32(0);
            let value_at = buf.len();
            let present = write_value(i, buf)?;
            let len = buf.len().checked_sub(value_at).ok_or(too_long())?;
            if present {
                // The whole message is held to MAX_FRONTEND_MESSAGE_LEN after the loop; this
                // check stops a value from running on for gigabytes before that.
                if len > MAX_FRONTEND_MESSAGE_LEN {
                    return Err(too_long().into());
                }
                patch_i32(buf, len_at, len)?;
            } else {
                if len != 0 {
                    return Err(WireError::InvalidParameter { index: i }.into());
                }
                let end = len_at.checked_add(4).ok_or(too_long())?;
                buf.get_mut(len_at..end)
                    .ok_or(too_long())?
                    .copy_from_slice(&(-1i32).to_be_bytes());
            }
        }
        buf.put_i16(0);
        Ok(())
    })
}

/// Describe (`'D'`): `Byte1 'S'|'P', String name`. A statement is answered with
/// ParameterDescription and RowDescription or NoData (format codes all 0: they are chosen at
/// Bind); a portal with RowDescription (its real formats) or NoData.
///
/// # Errors
/// [`WireError::EmbeddedNul`]; [`WireError::OutboundTooLong`].
pub fn describe(target: Target, name: &str, buf: &mut BytesMut) -> Result<(), WireError> {
    write(buf, kind::DESCRIBE, |buf| {
        buf.put_u8(target.byte());
        put_cstr(buf, name)
    })
}

/// Execute (`'E'`): `String portal, Int32 max_rows`; 0 means every row. A limit ends a batch
/// with PortalSuspended, and a non-zero limit also keeps the planner from using parallel
/// workers (sqlx#3673).
///
/// # Errors
/// [`WireError::EmbeddedNul`]; [`WireError::OutboundTooLong`].
pub fn execute(portal: &str, max_rows: u32, buf: &mut BytesMut) -> Result<(), WireError> {
    let max_rows = i32::try_from(max_rows).unwrap_or(i32::MAX);
    write(buf, kind::EXECUTE, |buf| {
        put_cstr(buf, portal)?;
        buf.put_i32(max_rows);
        Ok(())
    })
}

/// Close (`'C'`): `Byte1 'S'|'P', String name`; answered with CloseComplete, also when no such
/// statement or portal exists. The protocol's way to drop a prepared statement, which poolers
/// track (PgBouncer ≥ 1.21 `max_prepared_statements` sees Close, not SQL `DEALLOCATE`).
///
/// # Errors
/// [`WireError::EmbeddedNul`]; [`WireError::OutboundTooLong`].
pub fn close(target: Target, name: &str, buf: &mut BytesMut) -> Result<(), WireError> {
    write(buf, kind::CLOSE, |buf| {
        buf.put_u8(target.byte());
        put_cstr(buf, name)
    })
}

/// Sync (`'S'`): `53 00 00 00 04`. Ends the extended query: the server commits an implicit
/// transaction, and after an error (which made it skip every message until here) answers
/// with exactly one ReadyForQuery.
pub fn sync(buf: &mut BytesMut) {
    buf.put_u8(kind::SYNC);
    buf.put_i32(4);
}

/// Flush (`'H'`): `48 00 00 00 04`. Asks the server to send what it has produced so far,
/// without ending the extended query.
pub fn flush(buf: &mut BytesMut) {
    buf.put_u8(kind::FLUSH);
    buf.put_i32(4);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_bind_describe_execute_sync_bytes() {
        let mut buf = BytesMut::new();
        parse("s1", "select $1", &[23], &mut buf).unwrap();
        assert_eq!(
            &buf[..],
            b"P\0\0\0\x17s1\0select $1\0\0\x01\0\0\0\x17".as_slice()
        );
        buf.clear();
        let values: [Option<&[u8]>; 2] = [Some(b"ab"), None];
        bind(
            "",
            "s1",
            2,
            |i, buf| {
                Ok::<_, WireError>(match values[i] {
                    Some(v) => {
                        buf.put_slice(v);
                        true
                    }
                    None => false,
                })
            },
            &mut buf,
        )
        .unwrap();
        assert_eq!(
            &buf[..],
            b"B\0\0\0\x18\0s1\0\0\0\0\x02\0\0\0\x02ab\xff\xff\xff\xff\0\0".as_slice()
        );
        buf.clear();
        describe(Target::Portal, "", &mut buf).unwrap();
        execute("", 0, &mut buf).unwrap();
        close(Target::Statement, "s1", &mut buf).unwrap();
        flush(&mut buf);
        sync(&mut buf);
        assert_eq!(
            &buf[..],
            b"D\0\0\0\x06P\0E\0\0\0\x09\0\0\0\0\0C\0\0\0\x08Ss1\0H\0\0\0\x04S\0\0\0\x04".as_slice()
        );
    }

    /// The one write of `conn.query("select $1::int4 as n", &[&42i32])`, as docs/protocol.md
    /// shows it byte by byte.
    #[test]
    fn an_unnamed_query_is_seventy_bytes() {
        let mut buf = BytesMut::new();
        parse("", "select $1::int4 as n", &[], &mut buf).unwrap();
        let value = |_: usize, buf: &mut BytesMut| {
            buf.put_slice(b"42");
            Ok::<_, WireError>(true)
        };
        bind("", "", 1, value, &mut buf).unwrap();
        describe(Target::Portal, "", &mut buf).unwrap();
        execute("", 0, &mut buf).unwrap();
        sync(&mut buf);
        let want: &[u8] = b"P\0\0\0\x1c\0select $1::int4 as n\0\0\0\
            B\0\0\0\x12\0\0\0\0\0\x01\0\0\0\x0242\0\0\
            D\0\0\0\x06P\0\
            E\0\0\0\x09\0\0\0\0\0\
            S\0\0\0\x04";
        assert_eq!(&buf[..], want);
        assert_eq!(buf.len(), 70);
    }

    #[test]
    fn the_parameter_count_is_bounded_at_65535() {
        let mut buf = BytesMut::from(&b"x"[..]);
        let ok = |_: usize, _: &mut BytesMut| Ok::<_, WireError>(false);
        bind("", "", MAX_PARAMETERS, ok, &mut buf).unwrap();
        assert_eq!(&buf[buf.len() - 2..], b"\0\0");
        let mut buf = BytesMut::from(&b"x"[..]);
        assert_eq!(
            bind("", "", MAX_PARAMETERS + 1, ok, &mut buf),
            Err(WireError::TooManyParameters { count: 65_536 })
        );
        assert_eq!(&buf[..], b"x");
        let types = vec![0; MAX_PARAMETERS + 1];
        assert_eq!(
            parse("", "", &types, &mut buf),
            Err(WireError::TooManyParameters { count: 65_536 })
        );
        assert_eq!(&buf[..], b"x");
    }

    #[test]
    fn nul_and_null_misuse_are_refused_and_the_buffer_restored() {
        let mut buf = BytesMut::from(&b"x"[..]);
        assert_eq!(
            parse("", "select 1\0; drop table t", &[], &mut buf),
            Err(WireError::EmbeddedNul)
        );
        assert_eq!(
            describe(Target::Statement, "a\0b", &mut buf),
            Err(WireError::EmbeddedNul)
        );
        let wrote_then_null = |_: usize, buf: &mut BytesMut| {
            buf.put_u8(b'1');
            Ok::<_, WireError>(false)
        };
        assert_eq!(
            bind("", "", 1, wrote_then_null, &mut buf),
            Err(WireError::InvalidParameter { index: 0 })
        );
        let fails = |_: usize, buf: &mut BytesMut| {
            buf.put_u8(b'1');
            Err(WireError::EmbeddedNul)
        };
        assert_eq!(
            bind("", "", 3, fails, &mut buf),
            Err(WireError::EmbeddedNul)
        );
        assert_eq!(&buf[..], b"x");
    }
}
