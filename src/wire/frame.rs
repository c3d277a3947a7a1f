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

/// A cursor over one message body. Every read is bounds-checked and reports the message's tag.
pub(crate) struct Body {
    tag: u8,
    buf: Bytes,
}

impl Body {
    pub(crate) fn new(tag: u8, buf: Bytes) -> Body {
        Body { tag, buf }
    }

    fn end(&self) -> WireError {
        WireError::UnexpectedEnd { tag: self.tag }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        self.buf.try_get_u8().map_err(|_| self.end())
    }

    pub(crate) fn i16(&mut self) -> Result<i16, WireError> {
        self.buf.try_get_i16().map_err(|_| self.end())
    }

    pub(crate) fn i32(&mut self) -> Result<i32, WireError> {
        self.buf.try_get_i32().map_err(|_| self.end())
    }

    /// A non-negative Int16 count (field or column count).
    pub(crate) fn count16(&mut self) -> Result<usize, WireError> {
        usize::try_from(self.i16()?).map_err(|_| WireError::NegativeLength { tag: self.tag })
    }

    /// The next `n` bytes, zero-copy.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, WireError> {
        if n > self.buf.len() {
            return Err(self.end());
        }
        Ok(self.buf.split_to(n))
    }

    /// Everything left, zero-copy.
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// A NUL-terminated string, without its NUL.
    pub(crate) fn cstr(&mut self) -> Result<Bytes, WireError> {
        let nul = self
            .buf
            .iter()
            .position(|b| *b == 0)
            .ok_or(WireError::MissingNul { tag: self.tag })?;
        let s = self.buf.split_to(nul);
        self.buf.advance(1);
        Ok(s)
    }

    /// A NUL-terminated string that must be UTF-8.
    pub(crate) fn str(&mut self) -> Result<String, WireError> {
        let raw = self.cstr()?;
        String::from_utf8(raw.to_vec()).map_err(|_| WireError::InvalidUtf8 { tag: self.tag })
    }

    /// Asserts the whole body was consumed.
    pub(crate) fn finish(self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes { tag: self.tag })
        }
    }
}
