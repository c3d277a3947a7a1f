//! What can be a query parameter ([`ToParam`]): each value is sent in PostgreSQL's text input
//! format with its type left to the server (a Parse with OID 0, as `psql`'s `\bind` and
//! tokio-postgres's `query_typed` with unknown types do), so the server parses `'42'` as
//! whatever type the statement needs there, and a cast (`$1::int4`) settles an ambiguous one.
//!
//! Invariant: the text never becomes SQL. It travels in Bind as a length-prefixed value, which
//! the server hands to the type's input function; no quoting or escaping happens on either side
//! (libpq's docs on `PQexecParams`: escaping is "neither necessary nor correct" there). A NUL,
//! which the text format cannot carry, is refused before anything is sent.

use std::fmt::{self, Write as _};

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Result};
use crate::wire::{WireError, MAX_FRONTEND_MESSAGE_LEN};

/// Refuses a value that could never fit in a Bind message before it is copied (so a
/// multi-gigabyte value is an error without first being written out).
fn fits(len: usize) -> Result<()> {
    if len > MAX_FRONTEND_MESSAGE_LEN {
        return Err(Error::invalid_input(WireError::OutboundTooLong {
            limit: MAX_FRONTEND_MESSAGE_LEN,
        }));
    }
    Ok(())
}

/// Whether [`ToParam::to_param`] wrote a value or stands for SQL NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsNull {
    /// SQL NULL: nothing was written.
    Yes,
    /// A value was written.
    No,
}

/// Where a parameter writes its text: the outgoing Bind message itself, so a value costs no
/// copy of its own. Implements [`fmt::Write`], so `write!(out, "{x}")` works.
pub struct ParamBuf<'a> {
    buf: &'a mut BytesMut,
}

impl<'a> ParamBuf<'a> {
    pub(crate) fn new(buf: &'a mut BytesMut) -> ParamBuf<'a> {
        ParamBuf { buf }
    }

    /// Appends text.
    pub fn push_str(&mut self, s: &str) {
        self.buf.put_slice(s.as_bytes());
    }
}

impl fmt::Write for ParamBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

impl fmt::Debug for ParamBuf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParamBuf").finish_non_exhaustive()
    }
}

/// A value that can be a query parameter: it writes itself in PostgreSQL's text input format
/// (what `psql` would accept between quotes), or is NULL.
///
/// Implemented for `str`/`String`, the integers, `f32`/`f64`, `bool`, byte slices and vectors
/// (sent as `bytea` hex, `\x...`), `Option<T>` (`None` is NULL) and references to any of these.
/// Implement it for your own types by writing their text:
///
/// ```
/// use std::fmt::Write;
/// use wirepool::conn::{IsNull, ParamBuf, ToParam};
///
/// struct Point(f64, f64);
///
/// impl ToParam for Point {
///     fn to_param(&self, out: &mut ParamBuf<'_>) -> wirepool::Result<IsNull> {
///         write!(out, "({},{})", self.0, self.1).map_err(wirepool::Error::other)?;
///         Ok(IsNull::No)
///     }
/// }
/// ```
pub trait ToParam: Sync {
    /// Writes the value's text to `out` and returns [`IsNull::No`], or writes nothing and
    /// returns [`IsNull::Yes`] for NULL.
    ///
    /// # Errors
    /// If the value cannot be written; the query is then not sent.
    fn to_param(&self, out: &mut ParamBuf<'_>) -> Result<IsNull>;
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self, out: &mut ParamBuf<'_>) -> Result<IsNull> {
        (**self).to_param(out)
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self, out: &mut ParamBuf<'_>) -> Result<IsNull> {
        match self {
            Some(v) => v.to_param(out),
            None => Ok(IsNull::Yes),
        }
    }
}

impl ToParam for str {
    fn to_param(&self, out: &mut ParamBuf<'_>) -> Result<IsNull> {
        fits(self.len())?;
        out.push_str(self);
        Ok(IsNull::No)
    }
}

impl ToParam for String {
    fn to_param(&self, out: &mut ParamBuf<'_>) -> Result<IsNull> {
        self.as_str().to_param(out)
    }
}

impl ToParam for bool {
    fn to_param(&self, out: &mut ParamBuf<'_>) -> Result<IsNull> {
        out.push_str(if *self { "t" } else { "f" });
        Ok(IsNull::No)
    }
}

macro_rules! display_param {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn to_param(&self, out: &mut ParamBuf<'_>) -> Result<IsNull> {
                // Writing to a `ParamBuf` cannot fail.
                let _ = write!(out, "{self}");
                Ok(IsNull::No)
            }
        }
    )*};
}

display_param!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

macro_rules! float_param {
    ($($t:ty),*) => {$(
        /// `NaN`, `Infinity` and `-Infinity` as PostgreSQL spells them (`float8in`); finite
        /// values in Rust's shortest round-trip form.
        impl ToParam for $t {
            fn to_param(&self, out: &mut ParamBuf<'_>) -> Result<IsNull> {
                if self.is_nan() {
                    out.push_str("NaN");
                } else if self.is_infinite() {
                    out.push_str(if *self > 0.0 { "Infinity" } else { "-Infinity" });
                } else {
                    let _ = write!(out, "{self:?}");
                }
                Ok(IsNull::No)
            }
        }
    )*};
}

float_param!(f32, f64);

/// `bytea` in its hex input format (`\x` and two hex digits per byte), so any byte, NUL
/// included, travels as text. The parameter's type must be `bytea` where it is used (a
/// `bytea` column, or `$1::bytea`); as `text` the server would keep the `\x...` spelling.
impl ToParam for [u8] {
    fn to_param(&self, out: &mut ParamBuf<'_>) -> Result<IsNull> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.buf
            .reserve(self.len().saturating_mul(2).saturating_add(2));
        out.buf.put_slice(b"\\x");
        for b in self {
            out.buf.put_u8(HEX[usize::from(b >> 4)]);
            out.buf.put_u8(HEX[usize::from(b & 0xf)]);
        }
        Ok(IsNull::No)
    }
}

impl ToParam for Vec<u8> {
    fn to_param(&self, out: &mut ParamBuf<'_>) -> Result<IsNull> {
        self.as_slice().to_param(out)
    }
}

impl<const N: usize> ToParam for [u8; N] {
    fn to_param(&self, out: &mut ParamBuf<'_>) -> Result<IsNull> {
        self.as_slice().to_param(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(p: &dyn ToParam) -> Option<String> {
        let mut buf = BytesMut::new();
        match p.to_param(&mut ParamBuf::new(&mut buf)).unwrap() {
            IsNull::Yes => {
                assert!(buf.is_empty());
                None
            }
            IsNull::No => Some(String::from_utf8(buf.to_vec()).unwrap()),
        }
    }

    #[test]
    fn a_value_that_cannot_fit_in_bind_is_refused_before_copying() {
        assert!(fits(MAX_FRONTEND_MESSAGE_LEN).is_ok());
        let err = fits(MAX_FRONTEND_MESSAGE_LEN + 1).unwrap_err();
        assert!(err.is_invalid_input(), "{err:?}");
    }

    #[test]
    fn values_in_postgres_text_input_format() {
        assert_eq!(text(&"a'b\\c").as_deref(), Some("a'b\\c"));
        assert_eq!(text(&String::from("é")).as_deref(), Some("é"));
        assert_eq!(text(&-42i64).as_deref(), Some("-42"));
        assert_eq!(text(&u64::MAX).as_deref(), Some("18446744073709551615"));
        assert_eq!(text(&true).as_deref(), Some("t"));
        assert_eq!(text(&false).as_deref(), Some("f"));
        assert_eq!(text(&1.5f64).as_deref(), Some("1.5"));
        assert_eq!(text(&1e300f64).as_deref(), Some("1e300"));
        assert_eq!(text(&0.1f32).as_deref(), Some("0.1"));
        assert_eq!(text(&f64::NAN).as_deref(), Some("NaN"));
        assert_eq!(text(&f64::INFINITY).as_deref(), Some("Infinity"));
        assert_eq!(text(&f32::NEG_INFINITY).as_deref(), Some("-Infinity"));
        assert_eq!(text(&&b"\0\xff"[..]).as_deref(), Some("\\x00ff"));
        assert_eq!(text(&vec![0xabu8]).as_deref(), Some("\\xab"));
        assert_eq!(text(&None::<i32>), None);
        assert_eq!(text(&Some("x")).as_deref(), Some("x"));
    }
}
