//! Query result bodies: RowDescription (`'T'`) and DataRow (`'D'`).
//!
//! A DataRow is validated in full when decoded (column count, every length ≥ -1, every value
//! inside the body, no trailing bytes), so iterating its columns afterwards cannot fail. It
//! keeps the frame as `Bytes`: no per-column allocation.

use bytes::Bytes;

use super::frame::Body;
use super::WireError;

const DATA_ROW_TAG: u8 = b'D';
const ROW_DESCRIPTION_TAG: u8 = b'T';

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    /// The column name.
    pub name: String,
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

/// RowDescription: the shape of the rows that follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDescription {
    fields: Vec<FieldDescription>,
}

impl RowDescription {
    pub(crate) fn parse(body: Bytes) -> Result<RowDescription, WireError> {
        let mut body = Body::new(ROW_DESCRIPTION_TAG, body);
        let count = body.count16()?;
        // No `with_capacity(count)`: the count is peer-controlled; the body length (already
        // capped) is what bounds the allocation.
        let mut fields = Vec::new();
        for _ in 0..count {
            fields.push(FieldDescription {
                name: body.str()?,
                // OIDs are unsigned on the wire's Int32.
                table_oid: u32::from_be_bytes(body.i32()?.to_be_bytes()),
                column_id: body.i16()?,
                type_oid: u32::from_be_bytes(body.i32()?.to_be_bytes()),
                type_size: body.i16()?,
                type_modifier: body.i32()?,
                format: body.i16()?,
            });
        }
        body.finish()?;
        Ok(RowDescription { fields })
    }

    /// The columns, in order.
    pub fn fields(&self) -> &[FieldDescription] {
        &self.fields
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the result has no columns.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// DataRow: one row's values, as raw bytes (`None` is SQL NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRow {
    columns: usize,
    /// The body after the column count: `(Int32 len, Byte[len])*`, already validated.
    values: Bytes,
}

impl DataRow {
    pub(crate) fn parse(body: Bytes) -> Result<DataRow, WireError> {
        let mut body = Body::new(DATA_ROW_TAG, body);
        let columns = body.count16()?;
        let values = body.rest();
        let mut check = Body::new(DATA_ROW_TAG, values.clone());
        for _ in 0..columns {
            let len = check.i32()?;
            if len == -1 {
                continue;
            }
            let len = usize::try_from(len)
                .map_err(|_| WireError::NegativeLength { tag: DATA_ROW_TAG })?;
            check.bytes(len)?;
        }
        check.finish()?;
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

/// Iterator over a [`DataRow`]'s values.
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
        (0, Some(self.left))
    }
}
