//! ErrorResponse / NoticeResponse bodies: the server's error fields, parsed.
//!
//! STUB: to be filled in (issue #2).

use std::fmt;

/// An error (or notice) reported by the server in an ErrorResponse / NoticeResponse.
#[derive(Clone, PartialEq, Eq)]
pub struct DbError {
    severity: String,
    code: String,
    message: String,
}

impl DbError {
    /// The severity (`ERROR`, `FATAL`, `PANIC`, or for notices `WARNING`, `NOTICE`, ...).
    pub fn severity(&self) -> &str {
        &self.severity
    }

    /// The SQLSTATE code, e.g. `"28P01"`.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The primary human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbError")
            .field("severity", &self.severity)
            .field("code", &self.code)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.code, self.message)
    }
}

impl std::error::Error for DbError {}
