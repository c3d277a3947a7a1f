//! Framing: split one complete backend message (`Byte1 tag, Int32 len, body`) off a read buffer,
//! and a bounds-checked cursor for reading a message body's fields.
//!
//! Invariants: a frame is split off only when all `1 + len` bytes are buffered; the declared
//! length is checked against the caller's limit *before* any memory is reserved for it; the body
//! is a zero-copy `Bytes` slice of the read buffer.

use bytes::{Buf, Bytes, BytesMut};

use super::WireError;

/// Type byte plus Int32 length.
const HEADER_LEN: usize = 5;

/// Splits one whole message off the front of `buf`, or returns `Ok(None)` (consuming nothing) if
/// it is not all there yet. `limit_for(tag)` gives the largest length-field value allowed for
/// the tag in the current phase, or an error if the tag is not acceptable at all.
pub(crate) fn split_frame(
    buf: &mut BytesMut,
    limit_for: impl FnOnce(u8) -> Result<usize, WireError>,
) -> Result<Option<(u8, Bytes)>, WireError> {
    let Some(&[tag, l0, l1, l2, l3]) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let declared = u32::from_be_bytes([l0, l1, l2, l3]);
    if declared < 4 {
        return Err(WireError::LengthTooShort);
    }
    let limit = limit_for(tag)?;
    let too_long = WireError::MessageTooLong { tag, limit };
    let len = usize::try_from(declared).map_err(|_| too_long)?;
    if len > limit {
        return Err(too_long);
    }
    // `len` ≤ limit ≤ isize::MAX, so adding the tag byte cannot overflow; checked anyway.
    let total = len.checked_add(1).ok_or(too_long)?;
    if let Some(missing) = total.checked_sub(buf.len()).filter(|m| *m > 0) {
        // Safe to reserve: bounded by the limit validated above.
        buf.reserve(missing);
        return Ok(None);
    }
    let mut frame = buf.split_to(total).freeze();
    frame.advance(HEADER_LEN);
    Ok(Some((tag, frame)))
}

/// The first `N` bytes of `rest`, which then starts after them; `None` if it is shorter.
pub(crate) fn take<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
    let (chunk, after) = rest.split_first_chunk::<N>()?;
    *rest = after;
    Some(*chunk)
}

/// A cursor over one message body. Every read is bounds-checked and reports the message's tag.
/// It moves a position instead of splitting the `Bytes`, so reading a field costs no reference
/// count: only [`Body::rest`] and [`Body::since`] hand out a new `Bytes` (one increment each).
pub(crate) struct Body {
    tag: u8,
    buf: Bytes,
    pos: usize,
}

impl Body {
    pub(crate) fn new(tag: u8, buf: Bytes) -> Body {
        Body { tag, buf, pos: 0 }
    }

    fn end(&self) -> WireError {
        WireError::UnexpectedEnd { tag: self.tag }
    }

    /// The next `n` bytes, borrowed.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&[u8], WireError> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.end())?;
        let Some(slice) = self.buf.get(self.pos..end) else {
            return Err(self.end());
        };
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut left = self.buf.get(self.pos..).unwrap_or_default();
        let chunk = take(&mut left).ok_or_else(|| self.end())?;
        // `N` bytes were there, so `pos + N ≤ len`: no overflow.
        self.pos = self.pos.saturating_add(N);
        Ok(chunk)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        self.array().map(u8::from_be_bytes)
    }

    pub(crate) fn i16(&mut self) -> Result<i16, WireError> {
        self.array().map(i16::from_be_bytes)
    }

    pub(crate) fn i32(&mut self) -> Result<i32, WireError> {
        self.array().map(i32::from_be_bytes)
    }

    /// A non-negative Int16 count (field or column count).
    pub(crate) fn count16(&mut self) -> Result<usize, WireError> {
        usize::try_from(self.i16()?).map_err(|_| WireError::NegativeLength { tag: self.tag })
    }

    /// An Int16 count the server writes as unsigned (a ParameterDescription's, up to 65,535).
    pub(crate) fn count16_unsigned(&mut self) -> Result<usize, WireError> {
        self.array().map(u16::from_be_bytes).map(usize::from)
    }

    /// Where the cursor stands, for [`Body::since`].
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The bytes read since `start` (a [`Body::position`]), zero-copy.
    pub(crate) fn since(&self, start: usize) -> Bytes {
        self.buf.slice(start.min(self.pos)..self.pos)
    }

    /// Everything left, zero-copy.
    pub(crate) fn rest(&mut self) -> Bytes {
        let start = self.pos;
        self.pos = self.buf.len();
        self.since(start)
    }

    /// A NUL-terminated string, without its NUL, borrowed.
    pub(crate) fn cstr(&mut self) -> Result<&[u8], WireError> {
        let missing = WireError::MissingNul { tag: self.tag };
        let start = self.pos;
        let left = self.buf.get(start..).unwrap_or_default();
        let nul = left.iter().position(|b| *b == 0).ok_or(missing)?;
        // `nul` < `left.len()`, so neither sum can overflow; checked anyway.
        let end = start.checked_add(nul).ok_or(missing)?;
        self.pos = end.checked_add(1).ok_or(missing)?;
        Ok(self.buf.get(start..end).unwrap_or_default())
    }

    /// A NUL-terminated string that must be UTF-8, as bytes: for a body kept as its frame and
    /// read as text later.
    pub(crate) fn utf8_cstr(&mut self) -> Result<&[u8], WireError> {
        let tag = self.tag;
        let s = self.cstr()?;
        // ASCII first: nearly every name and tag the server sends is ASCII, and on strings this
        // short `is_ascii` costs a fraction of `str::from_utf8`.
        if s.is_ascii() || std::str::from_utf8(s).is_ok() {
            Ok(s)
        } else {
            Err(WireError::InvalidUtf8 { tag })
        }
    }

    /// A NUL-terminated string that must be UTF-8.
    pub(crate) fn str(&mut self) -> Result<String, WireError> {
        let tag = self.tag;
        let s = std::str::from_utf8(self.cstr()?).map_err(|_| WireError::InvalidUtf8 { tag })?;
        Ok(s.to_owned())
    }

    /// Asserts the whole body was consumed.
    pub(crate) fn finish(self) -> Result<(), WireError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes { tag: self.tag })
        }
    }
}
