//! Reading a [`Row`]'s values as Rust types: [`FromColumn`] parses a value's text (every
//! result arrives in text format), [`RowIndex`] finds a column by position or by name, and
//! [`Column`] is what a query's RowDescription said about each column.
//!
//! Invariant: a value that cannot be read as asked is an [`Error::is_column`] naming the
//! column (position and name) and quoting the text (cut to [`QUOTED_TEXT_MAX`] bytes), never a
//! panic and never a silently different value.

use std::error::Error as StdError;
use std::fmt;

use super::Row;
use crate::error::{Error, Result};

/// How much of a value's text an error quotes: enough to see what it was, without copying a
/// megabyte into a log line.
pub const QUOTED_TEXT_MAX: usize = 64;

/// The OID of `bytea` (`pg_type.dat`): such a value's text is `\x` and hex digits.
const BYTEA_OID: u32 = 17;

/// One result column as the server described it (RowDescription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    name: String,
    type_oid: u32,
}

impl Column {
    pub(crate) fn new(name: &str, type_oid: u32) -> Column {
        Column {
            name: name.to_owned(),
            type_oid,
        }
    }

    /// The column's name (`?column?` for an unnamed expression).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The column's type OID (`pg_type.oid`: 23 `int4`, 25 `text`, 17 `bytea`, ...).
    pub fn type_oid(&self) -> u32 {
        self.type_oid
    }
}

/// Why a value's text is not a `T`: the parse error of the type, or one of these.
#[derive(Debug)]
enum ReadError {
    Null,
    NotBool,
    BadBytea,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReadError::Null => "the value is NULL: read it as an Option",
            ReadError::NotBool => "expected t or f",
            ReadError::BadBytea => "not bytea text (\\x and an even number of hex digits)",
        })
    }
}

impl StdError for ReadError {}

/// The boxed cause a [`FromColumn`] implementation reports.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A type a row's value can be read as, from its text (`None` is SQL NULL) and its column's
/// type OID (0 when unknown: a row of `simple_query`).
///
/// Implemented for `String` and `&str` (any column's text), the integers, `f32`/`f64`
/// (PostgreSQL's `NaN`, `Infinity`, `-Infinity` included), `bool` (`t`/`f`), `Vec<u8>` (a
/// `bytea` column decoded from hex; any other column's text as bytes) and `Option<T>` (`None`
/// for NULL). Other types (timestamps, numeric) read as `String` and parse from there.
///
/// ```
/// use wirepool::conn::{BoxError, FromColumn};
///
/// struct Celsius(f64);
///
/// impl<'a> FromColumn<'a> for Celsius {
///     fn from_column(text: Option<&'a str>, type_oid: u32) -> Result<Self, BoxError> {
///         f64::from_column(text, type_oid).map(Celsius)
///     }
/// }
/// ```
pub trait FromColumn<'a>: Sized {
    /// Reads the value.
    ///
    /// # Errors
    /// If the value is NULL and the type has no NULL, or the text is not a valid `Self`.
    fn from_column(text: Option<&'a str>, type_oid: u32) -> Result<Self, BoxError>;
}

fn non_null(text: Option<&str>) -> Result<&str, BoxError> {
    text.ok_or_else(|| ReadError::Null.into())
}

impl<'a, T: FromColumn<'a>> FromColumn<'a> for Option<T> {
    fn from_column(text: Option<&'a str>, type_oid: u32) -> Result<Self, BoxError> {
        match text {
            None => Ok(None),
            Some(_) => T::from_column(text, type_oid).map(Some),
        }
    }
}

impl<'a> FromColumn<'a> for &'a str {
    fn from_column(text: Option<&'a str>, _: u32) -> Result<Self, BoxError> {
        non_null(text)
    }
}

impl FromColumn<'_> for String {
    fn from_column(text: Option<&str>, _: u32) -> Result<Self, BoxError> {
        non_null(text).map(str::to_owned)
    }
}

impl FromColumn<'_> for bool {
    fn from_column(text: Option<&str>, _: u32) -> Result<Self, BoxError> {
        match non_null(text)? {
            "t" | "true" => Ok(true),
            "f" | "false" => Ok(false),
            _ => Err(ReadError::NotBool.into()),
        }
    }
}

macro_rules! parsed_column {
    ($($t:ty),*) => {$(
        impl FromColumn<'_> for $t {
            fn from_column(text: Option<&str>, _: u32) -> Result<Self, BoxError> {
                Ok(non_null(text)?.parse::<$t>()?)
            }
        }
    )*};
}

// Rust's float parser reads PostgreSQL's `NaN`, `Infinity` and `-Infinity` (case-insensitive).
parsed_column!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64);

impl FromColumn<'_> for Vec<u8> {
    fn from_column(text: Option<&str>, type_oid: u32) -> Result<Self, BoxError> {
        let text = non_null(text)?;
        if type_oid != BYTEA_OID {
            return Ok(text.as_bytes().to_vec());
        }
        decode_bytea(text).ok_or_else(|| ReadError::BadBytea.into())
    }
}

/// `bytea`'s hex output format (`bytea_output = hex`, the default since PostgreSQL 9.0), or the
/// escape format (`\\` and `\ooo` octal escapes).
fn decode_bytea(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    if let Some(hex) = text.strip_prefix("\\x") {
        let hex = hex.as_bytes();
        if hex.len() % 2 != 0 {
            return None;
        }
        return hex
            .chunks_exact(2)
            .map(|p| Some(nibble(*p.first()?)? << 4 | nibble(*p.get(1)?)?))
            .collect();
    }
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&c, after)) = rest.split_first() {
        if c != b'\\' {
            out.push(c);
            rest = after;
        } else if let Some((b'\\', after)) = after.split_first() {
            out.push(b'\\');
            rest = after;
        } else {
            let (octal, after) = after.split_first_chunk::<3>()?;
            let mut v = 0u32;
            for d in octal {
                v = v * 8 + char::from(*d).to_digit(8)?;
            }
            out.push(u8::try_from(v).ok()?);
            rest = after;
        }
    }
    Some(out)
}

/// A column position (`usize`, from 0) or name (`&str`, the first column so named) for
/// [`Row::try_get`].
pub trait RowIndex: fmt::Display + private::Sealed {
    /// The position this names in `row`, if any.
    #[doc(hidden)]
    fn position(&self, row: &Row) -> Option<usize>;
}

mod private {
    pub trait Sealed {}
    impl Sealed for usize {}
    impl Sealed for str {}
    impl<T: Sealed + ?Sized> Sealed for &T {}
}

impl RowIndex for usize {
    fn position(&self, row: &Row) -> Option<usize> {
        (*self < row.len()).then_some(*self)
    }
}

impl RowIndex for str {
    fn position(&self, row: &Row) -> Option<usize> {
        row.columns().iter().position(|c| c.name == self)
    }
}

impl<T: RowIndex + ?Sized> RowIndex for &T {
    fn position(&self, row: &Row) -> Option<usize> {
        (**self).position(row)
    }
}

impl Row {
    /// The columns as the server described them; empty for a row of
    /// [`simple_query`](super::Connection::simple_query), which reads values by position only.
    pub fn columns(&self) -> &[Column] {
        self.columns.as_deref().unwrap_or_default()
    }

    /// The value of column `idx` (a position from 0, or a name) read as a `T`. NULL reads as
    /// `None` into an `Option<T>`, and is an error for any other `T`.
    ///
    /// ```no_run
    /// # async fn demo(conn: &mut wirepool::Connection) -> Result<(), wirepool::Error> {
    /// let row = conn.query_one("SELECT 42::int8 AS n, NULL::text AS t", &[]).await?;
    /// let n: i64 = row.try_get("n")?;
    /// let t: Option<String> = row.try_get(1)?;
    /// assert_eq!((n, t), (42, None));
    /// assert!(row.try_get::<bool, _>("n").unwrap_err().is_column());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::is_column`]: no such column, NULL into a type without NULL, or text that is not
    /// a `T`. The message names the column and quotes the text.
    pub fn try_get<'a, T: FromColumn<'a>, I: RowIndex>(&'a self, idx: I) -> Result<T> {
        let Some(pos) = idx.position(self) else {
            let why = if self.columns.is_none() {
                "a row of simple_query has no column names: read it by position, or use query"
            } else {
                "no such column"
            };
            return Err(Error::column(
                format!(
                    "{idx} does not exist ({why}; the row has {} columns)",
                    self.len()
                ),
                None,
            ));
        };
        let column = self.columns().get(pos);
        let text = self.get(pos);
        T::from_column(text, column.map_or(0, Column::type_oid)).map_err(|e| {
            let name = column.map_or(String::new(), |c| format!(" ({:?})", c.name));
            let value = text.map_or_else(|| "NULL".to_owned(), quote);
            let target = std::any::type_name::<T>();
            Error::column(
                format!("{pos}{name}: cannot read {value} as {target}"),
                Some(e),
            )
        })
    }
}

/// The text in double quotes, cut at a character boundary after [`QUOTED_TEXT_MAX`] bytes.
fn quote(text: &str) -> String {
    let mut end = text.len().min(QUOTED_TEXT_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = &text[..end];
    if end < text.len() {
        format!("{cut:?}... ({} bytes)", text.len())
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytea_in_both_output_formats() {
        assert_eq!(decode_bytea("\\x00ff10").unwrap(), vec![0, 0xff, 0x10]);
        assert_eq!(decode_bytea("\\x").unwrap(), Vec::<u8>::new());
        assert_eq!(decode_bytea("\\x0"), None);
        assert_eq!(decode_bytea("\\xzz"), None);
        assert_eq!(decode_bytea("a\\\\b\\000\\377").unwrap(), b"a\\b\0\xff");
        assert_eq!(decode_bytea("\\400"), None);
        assert_eq!(decode_bytea("\\0"), None);
    }

    #[test]
    fn long_text_is_quoted_short() {
        assert_eq!(quote("abc"), "\"abc\"");
        let long = "é".repeat(100);
        let q = quote(&long);
        assert!(q.ends_with("... (200 bytes)"), "{q}");
        assert!(q.len() < 90, "{q}");
    }

    #[test]
    fn readers_parse_postgres_text() {
        assert!(bool::from_column(Some("t"), 16).unwrap());
        assert!(bool::from_column(Some("yes"), 16).is_err());
        assert_eq!(
            f64::from_column(Some("-Infinity"), 701).unwrap(),
            f64::NEG_INFINITY
        );
        assert!(f64::from_column(Some("NaN"), 701).unwrap().is_nan());
        assert_eq!(Option::<i32>::from_column(None, 23).unwrap(), None);
        assert!(i32::from_column(None, 23).is_err());
        assert_eq!(Vec::<u8>::from_column(Some("\\x01"), 25).unwrap(), b"\\x01");
        assert_eq!(Vec::<u8>::from_column(Some("\\x01"), 17).unwrap(), [1]);
    }
}
