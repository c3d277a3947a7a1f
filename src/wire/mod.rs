//! The sans-IO PostgreSQL v3 codec: bytes in, messages out. No sockets, no runtime, no clock.
//!
//! STUB: to be filled in (issue #2). The items below are the interface the rest of the crate uses.

pub mod auth;
mod error_response;

pub use error_response::DbError;

/// A codec error: the peer's bytes do not make a valid message. Small and `Copy`; never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// A message's declared length is below the 4 bytes the length field itself takes.
    LengthTooShort,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::LengthTooShort => f.write_str("message length is shorter than 4 bytes"),
        }
    }
}

impl std::error::Error for WireError {}

/// The transaction status a ReadyForQuery reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    /// `'I'`: not in a transaction block.
    Idle,
    /// `'T'`: inside a transaction block.
    InTransaction,
    /// `'E'`: inside a failed transaction block; queries are rejected until it ends.
    Failed,
}

/// libpq's `require_auth`: which authentication methods the client accepts from the server.
/// STUB: to be filled in (issue #2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequireAuth {}

impl std::str::FromStr for RequireAuth {
    type Err = String;

    fn from_str(_s: &str) -> Result<RequireAuth, String> {
        Ok(RequireAuth {})
    }
}
