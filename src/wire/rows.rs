//! Query result bodies: RowDescription (`'T'`), DataRow (`'D'`) and CommandComplete (`'C'`).
//!
//! Each is validated in full when decoded and then kept as its frame (`Bytes`), read on demand:
//! - DataRow: column count, every length ≥ -1, every value inside the body, no trailing bytes;
//! - RowDescription: every name a UTF-8 C string followed by its 18 bytes of attributes, no
//!   trailing bytes;
//! - CommandComplete: one UTF-8 C string, nothing after it.
//!
//! So reading one afterwards cannot fail, and decoding any of the three allocates nothing (a
//! `SELECT 1` reply costs no allocation until `simple_query` builds its rows). The cost of that:
//! a kept message is a view into the connection's read buffer, and keeps that allocation alive
//! while it lives. Copy out what you keep beyond the next query.

use bytes::Bytes;

use super::frame::{take, Body};
use super::tag::backend as kind;
use super::WireError;

/// One column of a RowDescription, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDescription<'a> {
    /// The column name.
    pub name: &'a str,
    /// The table's OID, or 0 if the column is not a table column.
    pub table_oid: u32,
    /// The column's attribute number in that table, or 0.
    pub column_id: i16,
    /// The data type's OID.
    pub type_oid: u32,
    /// The data type's size (`pg_type.typlen`); negative for variable-width types.
    pub type_size: i16,
    /// The type modifier (`pg_attribute.atttypmod`).
    pub type_modifier: i32,
    /// The format code: 0 text, 1 binary.
    pub format: i16,
}

/// The fixed-width part of a field after its name: table OID, column id, type OID, type size,
/// type modifier, format (4 + 2 + 4 + 2 + 4 + 2).
const FIELD_ATTRIBUTES_LEN: usize = 18;

/// RowDescription: the shape of the rows that follow.
///
/// Validated in full when decoded and kept as the frame (module header); a simple query only
/// needs the count. [`RowDescription::fields`] reads the columns on demand.
#[derive(Clone, PartialEq, Eq)]
pub struct RowDescription {
    columns: usize,
    /// The body after the field count: `(String name, Byte18 attributes)*`, already validated.
    fields: Bytes,
}

impl RowDescription {
    pub(crate) fn parse(body: Bytes) -> Result<RowDescription, WireError> {
        let mut body = Body::new(kind::ROW_DESCRIPTION, body);
        let columns = body.count16()?;
        let start = body.position();
        for _ in 0..columns {
            body.utf8_cstr()?;
            body.bytes(FIELD_ATTRIBUTES_LEN)?;
        }
        let fields = body.since(start);
        body.finish()?;
        Ok(RowDescription { columns, fields })
    }

    /// The columns, in order.
    pub fn fields(&self) -> FieldDescriptions<'_> {
        FieldDescriptions {
            rest: &self.fields,
            left: self.columns,
        }
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.columns
    }

    /// Whether the result has no columns.
    pub fn is_empty(&self) -> bool {
        self.columns == 0
    }
}

impl std::fmt::Debug for RowDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.fields()).finish()
    }
}

/// Iterator over a [`RowDescription`]'s columns; yields exactly [`RowDescription::len`] items.
#[derive(Debug, Clone)]
pub struct FieldDescriptions<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for FieldDescriptions<'a> {
    type Item = FieldDescription<'a>;

    fn next(&mut self) -> Option<FieldDescription<'a>> {
        self.left = self.left.checked_sub(1)?;
        // The description was validated when decoded, so none of the `?` below can fire; they
        // stand in for panics rather than trusting that.
        let nul = self.rest.iter().position(|b| *b == 0)?;
        let (name, rest) = self.rest.split_at_checked(nul)?;
        let mut rest = rest.get(1..)?;
        let field = FieldDescription {
            name: std::str::from_utf8(name).ok()?,
            table_oid: u32::from_be_bytes(take(&mut rest)?),
            column_id: i16::from_be_bytes(take(&mut rest)?),
            type_oid: u32::from_be_bytes(take(&mut rest)?),
            type_size: i16::from_be_bytes(take(&mut rest)?),
            type_modifier: i32::from_be_bytes(take(&mut rest)?),
            format: i16::from_be_bytes(take(&mut rest)?),
        };
        self.rest = rest;
        Some(field)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Exact: the message was validated when decoded (module header).
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for FieldDescriptions<'_> {}
impl std::iter::FusedIterator for FieldDescriptions<'_> {}

/// DataRow: one row's values, as raw bytes (`None` is SQL NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRow {
    columns: usize,
    /// The body after the column count: `(Int32 len, Byte[len])*`, already validated.
    values: Bytes,
}

impl DataRow {
    pub(crate) fn parse(body: Bytes) -> Result<DataRow, WireError> {
        let mut body = Body::new(kind::DATA_ROW, body);
        let columns = body.count16()?;
        let start = body.position();
        for _ in 0..columns {
            let len = body.i32()?;
            if len == -1 {
                continue;
            }
            let len = usize::try_from(len).map_err(|_| WireError::NegativeLength {
                tag: kind::DATA_ROW,
            })?;
            body.bytes(len)?;
        }
        let values = body.since(start);
        body.finish()?;
        Ok(DataRow { columns, values })
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.columns
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.columns == 0
    }

    /// The columns' values in order; `None` is SQL NULL.
    pub fn columns(&self) -> DataRowColumns<'_> {
        DataRowColumns {
            rest: &self.values,
            left: self.columns,
        }
    }
}

/// Iterator over a [`DataRow`]'s values; yields exactly [`DataRow::len`] items.
#[derive(Debug, Clone)]
pub struct DataRowColumns<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for DataRowColumns<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Option<&'a [u8]>> {
        self.left = self.left.checked_sub(1)?;
        // The row was validated when decoded, so none of the `?` below can fire; they stand
        // in for panics rather than trusting that.
        let (len, rest) = self.rest.split_first_chunk::<4>()?;
        let len = i32::from_be_bytes(*len);
        let Ok(len) = usize::try_from(len) else {
            self.rest = rest;
            return Some(None);
        };
        let (value, rest) = rest.split_at_checked(len)?;
        self.rest = rest;
        Some(Some(value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Exact: the message was validated when decoded (module header).
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for DataRowColumns<'_> {}
impl std::iter::FusedIterator for DataRowColumns<'_> {}

/// CommandComplete's tag, e.g. `SELECT 1` or `INSERT 0 5`: validated as UTF-8 when decoded and
/// kept as the frame (module header).
#[derive(Clone, PartialEq, Eq)]
pub struct CommandTag(Bytes);

impl CommandTag {
    pub(crate) fn parse(body: Bytes) -> Result<CommandTag, WireError> {
        let mut body = Body::new(kind::COMMAND_COMPLETE, body);
        let len = body.utf8_cstr()?.len();
        // The whole body, NUL included (`finish` consumes `body`, so take it first);
        // `truncate` then drops the NUL, and unlike slicing it cannot panic.
        let mut tag = body.since(0);
        body.finish()?;
        tag.truncate(len);
        Ok(CommandTag(tag))
    }

    /// Whether the command that sent this tag may have changed session state that outlives
    /// its transaction and that a new connection would not have: a setting (`SET`, `RESET`,
    /// `SET ROLE`, `SET SESSION AUTHORIZATION`: all tagged `SET`), a `LISTEN`/`UNLISTEN`, a
    /// prepared statement (`PREPARE`, `DEALLOCATE`), a cursor (`DECLARE CURSOR`), a table,
    /// view or sequence that may be temporary (`CREATE TABLE`/`VIEW`/`SEQUENCE`), a `LOAD`ed
    /// library, or a `DISCARD`. Tags name the command, not its object or scope, so this errs
    /// towards `true` (`SET LOCAL` is tagged `SET` too); what no tag reveals (`CREATE TABLE ... AS`, `SELECT ... INTO`, tagged `SELECT`)
    /// is not seen. A byte comparison: it runs on every CommandComplete.
    pub fn changes_session(&self) -> bool {
        let tag: &[u8] = &self.0;
        matches!(
            tag,
            b"SET"
                | b"RESET"
                | b"LISTEN"
                | b"UNLISTEN"
                | b"PREPARE"
                | b"DEALLOCATE"
                | b"DEALLOCATE ALL"
                | b"DECLARE CURSOR"
                | b"CREATE TABLE"
                | b"CREATE VIEW"
                | b"CREATE SEQUENCE"
                | b"LOAD"
        ) || tag.starts_with(b"DISCARD")
    }

    /// The number of rows the command processed, from the tag's last word: `INSERT 0 5` → 5,
    /// `UPDATE 3`, `DELETE 2`, `SELECT 4`, `MERGE 1`, `COPY 7`, `FETCH 1`, `MOVE 1`. `None`
    /// for a command that reports no count (`CREATE TABLE`, `SET`, ...).
    ///
    /// ```
    /// use wirepool::wire::CommandTag;
    /// assert_eq!(CommandTag::from("INSERT 0 5").rows(), Some(5));
    /// assert_eq!(CommandTag::from("SELECT 0").rows(), Some(0));
    /// assert_eq!(CommandTag::from("CREATE TABLE").rows(), None);
    /// ```
    pub fn rows(&self) -> Option<u64> {
        const COUNTED: [&str; 8] = [
            "INSERT", "UPDATE", "DELETE", "SELECT", "MERGE", "COPY", "FETCH", "MOVE",
        ];
        let tag = self.as_str();
        let (command, _) = tag.split_once(' ')?;
        if !COUNTED.contains(&command) {
            return None;
        }
        tag.rsplit(' ').next()?.parse().ok()
    }

    /// The tag's text.
    pub fn as_str(&self) -> &str {
        // Validated in `parse` (or built from a `&str`), so this cannot fall back. It re-checks
        // the bytes on every call: without `unsafe` there is no unchecked conversion.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// A tag built by hand (tests, fake servers). Any `&str` is accepted, including ones no server
/// sends (an interior NUL, say).
impl From<&str> for CommandTag {
    fn from(tag: &str) -> CommandTag {
        CommandTag(Bytes::copy_from_slice(tag.as_bytes()))
    }
}

impl std::fmt::Debug for CommandTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}
