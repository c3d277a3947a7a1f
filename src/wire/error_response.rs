//! ErrorResponse / NoticeResponse bodies: the server's error fields, parsed.
//!
//! The body is a sequence of `Byte1 code, String value` ending with a `0` byte (protocol-error-
//! fields). Unknown codes are ignored, as the protocol requires. A repeated code: the last value
//! wins (the server never repeats one; the rule only has to be deterministic). Text is decoded
//! lossily: errors sent during startup are in the *server* encoding, because client_encoding is
//! not applied yet (rust-postgres 263b0068, "Handle non-UTF8 error fields").

use std::fmt;

use bytes::Bytes;

use super::frame::Body;
use super::WireError;

/// An error (or notice) reported by the server in an ErrorResponse / NoticeResponse.
///
/// ```
/// # use wirepool::DbError;
/// fn is_serialization_failure(e: &DbError) -> bool {
///     e.code() == "40001"
/// }
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DbError {
    // Boxed: a `BackendMessage` is as large as its largest variant and is moved several times
    // per message on the query path, so these fields inline would make every message pay for
    // copying an error it almost never carries.
    fields: Box<Fields>,
}

#[derive(Clone, Default, PartialEq, Eq)]
struct Fields {
    severity: String,
    severity_nonlocalized: Option<String>,
    code: String,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
    position: Option<u32>,
    internal_position: Option<u32>,
    internal_query: Option<String>,
    where_: Option<String>,
    schema: Option<String>,
    table: Option<String>,
    column: Option<String>,
    datatype: Option<String>,
    constraint: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    routine: Option<String>,
}

impl DbError {
    /// Parses an ErrorResponse (`tag` `b'E'`) or NoticeResponse (`b'N'`) body.
    ///
    /// # Errors
    /// [`WireError::MissingNul`] if a value or the final terminator is missing;
    /// [`WireError::TrailingBytes`] if anything follows the terminator.
    pub fn parse(tag: u8, body: Bytes) -> Result<DbError, WireError> {
        let mut body = Body::new(tag, body);
        let mut e = Fields::default();
        loop {
            let code = body.u8().map_err(|_| WireError::MissingNul { tag })?;
            if code == 0 {
                break;
            }
            let value = String::from_utf8_lossy(body.cstr()?).into_owned();
            let number = || value.parse::<u32>().ok();
            match code {
                b'S' => e.severity = value,
                b'V' => e.severity_nonlocalized = Some(value),
                b'C' => e.code = value,
                b'M' => e.message = value,
                b'D' => e.detail = Some(value),
                b'H' => e.hint = Some(value),
                b'P' => e.position = number(),
                b'p' => e.internal_position = number(),
                b'q' => e.internal_query = Some(value),
                b'W' => e.where_ = Some(value),
                b's' => e.schema = Some(value),
                b't' => e.table = Some(value),
                b'c' => e.column = Some(value),
                b'd' => e.datatype = Some(value),
                b'n' => e.constraint = Some(value),
                b'F' => e.file = Some(value),
                b'L' => e.line = number(),
                b'R' => e.routine = Some(value),
                // "Frontends should silently ignore fields of unrecognized type."
                _ => {}
            }
        }
        body.finish()?;
        Ok(DbError {
            fields: Box::new(e),
        })
    }

    /// The severity (`ERROR`, `FATAL`, `PANIC`, or for notices `WARNING`, `NOTICE`, ...),
    /// possibly localized (field `S`).
    pub fn severity(&self) -> &str {
        &self.fields.severity
    }

    /// The severity, never localized (field `V`, PostgreSQL 9.6+).
    pub fn severity_nonlocalized(&self) -> Option<&str> {
        self.fields.severity_nonlocalized.as_deref()
    }

    /// The SQLSTATE code, e.g. `"28P01"` (field `C`).
    pub fn code(&self) -> &str {
        &self.fields.code
    }

    /// The primary human-readable message (field `M`).
    pub fn message(&self) -> &str {
        &self.fields.message
    }

    /// An optional secondary message with more detail (field `D`).
    pub fn detail(&self) -> Option<&str> {
        self.fields.detail.as_deref()
    }

    /// An optional suggestion what to do about the problem (field `H`).
    pub fn hint(&self) -> Option<&str> {
        self.fields.hint.as_deref()
    }

    /// The 1-based cursor position in the query string, in characters (field `P`), when it is a
    /// valid number.
    pub fn position(&self) -> Option<u32> {
        self.fields.position
    }

    /// The cursor position in an internally generated command (field `p`).
    pub fn internal_position(&self) -> Option<u32> {
        self.fields.internal_position
    }

    /// The internally generated command that failed (field `q`).
    pub fn internal_query(&self) -> Option<&str> {
        self.fields.internal_query.as_deref()
    }

    /// The context: a call-stack traceback of active procedures (field `W`).
    pub fn where_(&self) -> Option<&str> {
        self.fields.where_.as_deref()
    }

    /// The schema of the object the error is about (field `s`).
    pub fn schema(&self) -> Option<&str> {
        self.fields.schema.as_deref()
    }

    /// The table the error is about (field `t`).
    pub fn table(&self) -> Option<&str> {
        self.fields.table.as_deref()
    }

    /// The column the error is about (field `c`).
    pub fn column(&self) -> Option<&str> {
        self.fields.column.as_deref()
    }

    /// The data type the error is about (field `d`).
    pub fn datatype(&self) -> Option<&str> {
        self.fields.datatype.as_deref()
    }

    /// The constraint the error is about (field `n`).
    pub fn constraint(&self) -> Option<&str> {
        self.fields.constraint.as_deref()
    }

    /// The server source file that reported the error (field `F`).
    pub fn file(&self) -> Option<&str> {
        self.fields.file.as_deref()
    }

    /// The server source line that reported the error (field `L`).
    pub fn line(&self) -> Option<u32> {
        self.fields.line
    }

    /// The server source routine that reported the error (field `R`).
    pub fn routine(&self) -> Option<&str> {
        self.fields.routine.as_deref()
    }
}

impl fmt::Debug for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("DbError");
        d.field("severity", &self.fields.severity)
            .field("code", &self.fields.code)
            .field("message", &self.fields.message);
        let optional = [
            ("detail", &self.fields.detail),
            ("hint", &self.fields.hint),
            ("where", &self.fields.where_),
            ("table", &self.fields.table),
            ("constraint", &self.fields.constraint),
            ("routine", &self.fields.routine),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                d.field(name, v);
            }
        }
        if let Some(p) = self.fields.position {
            d.field("position", &p);
        }
        d.finish_non_exhaustive()
    }
}

/// `ERROR 22012: division by zero`, then `DETAIL: ...` and `HINT: ...` lines when present.
impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.fields.severity, self.fields.code, self.fields.message
        )?;
        if let Some(d) = &self.fields.detail {
            write!(f, "\nDETAIL: {d}")?;
        }
        if let Some(h) = &self.fields.hint {
            write!(f, "\nHINT: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DbError {}
