//! The sans-IO PostgreSQL v3 codec: bytes in, messages out. No sockets, no runtime, no clock.
//!
//! - [`frontend`] appends client messages to a caller's `BytesMut`, back-patching lengths with
//!   checked arithmetic and refusing embedded NULs and over-long values (never truncating).
//! - [`backend`] is a streaming [`Decoder`]: it returns `Ok(None)` until a whole message is
//!   buffered, never consumes a partial message (so the I/O layer above is cancel-safe), and
//!   checks each declared length against a per-phase limit *before* reserving memory for it.
//! - [`extended`] encodes the extended query protocol's messages (Parse, Bind, Describe,
//!   Execute, Close, Sync, Flush); the decoder reads their replies.
//! - [`startup`] is the [`Handshake`] state machine: it is fed decoded messages and asked for
//!   bytes to send, so a recorded transcript can drive a whole login with no runtime.
//!
//! # Lengths
//! Every `MAX_*_LEN` below bounds the value of a message's Int32 length field, which counts
//! itself (4 bytes) but not the type byte, exactly as libpq's checks do.
//!
//! # Invariants
//! Peer input never panics: this module denies `unwrap`, `expect`, `panic!`, slice indexing and
//! unchecked arithmetic; every decoded message consumes exactly `1 + len` bytes; bytes left over
//! inside a message are an error.
// Unit tests (which may unwrap) are exempt; the library code is not.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

pub mod auth;
pub mod backend;
mod error_response;
pub mod extended;
mod frame;
pub mod frontend;
mod placeholders;
mod require_auth;
mod rows;
pub mod startup;
pub mod tag;
pub mod tls;

pub use backend::{
    Authentication, BackendMessage, CommandTag, CopyResponse, DataRow, DataRowColumns, Decoder,
    DecoderLimits, FieldDescription, FieldDescriptions, ParameterDescription, RowDescription,
};
pub use error_response::DbError;
pub(crate) use placeholders::parameter_count;
pub use require_auth::RequireAuth;
pub use startup::{
    AuthConfig, BackendKey, ChannelBindingMode, Handshake, HandshakeError, Session, StartupParams,
    Step,
};

use auth::ScramError;

/// Largest Authentication (`'R'`) message accepted during startup. libpq `fe-connect.c`
/// (`CONNECTION_AWAITING_RESPONSE`) rejects an `'R'` whose length is above 2000; this also
/// bounds the SASL data (SCRAM server-first / server-final) a server can make us buffer.
pub const MAX_AUTH_MESSAGE_LEN: usize = 2000;

/// Largest ErrorResponse, NoticeResponse, ParameterStatus, BackendKeyData,
/// NegotiateProtocolVersion or ReadyForQuery accepted during startup: libpq `fe-connect.c`
/// treats an `'E'` longer than 30000 as garbage (a pre-protocol text error misread as a length).
pub const MAX_STARTUP_MESSAGE_LEN: usize = 30_000;

/// Largest NotificationResponse (`'A'`) accepted: a pid, a channel name shorter than
/// `NAMEDATALEN` (64) and a payload shorter than `NOTIFY_PAYLOAD_MAX_LENGTH` (`BLCKSZ` −
/// `NAMEDATALEN` − 128 in PostgreSQL's `async.c`: 8000 bytes with the default 8 KiB `BLCKSZ`,
/// 32,576 with the largest, 32 KiB), with room to spare. Its own bound, not
/// [`DecoderLimits::max_message_len`]: unread notifications are buffered, so their size bounds a
/// connection's memory.
pub const MAX_NOTIFICATION_LEN: usize = 64 << 10;

/// Largest message accepted after startup for every tag except `T D d E N A`: the bound libpq's
/// `pqParseInput3` (`fe-protocol3.c`) applies before it assumes message-boundary sync was lost.
pub const MAX_SMALL_MESSAGE_LEN: usize = 30_000;

/// Largest ParameterDescription (`'t'`): its exact maximum, `Int32 len, Int16 n, Int32 oid × n`
/// with `n` at most [`extended::MAX_PARAMETERS`]. libpq holds `'t'` to the 30,000 of other
/// small messages (`pqParseInput3`), which a statement of more than 7,498 parameters exceeds.
pub const MAX_PARAMETER_DESCRIPTION_LEN: usize = 4 + 2 + 4 * extended::MAX_PARAMETERS;

/// Default cap for RowDescription, DataRow, CopyData, ErrorResponse and NoticeResponse after
/// startup ([`DecoderLimits::max_message_len`]).
///
/// The server can send up to `PQ_LARGE_MESSAGE_LIMIT` (MaxAllocSize − 1, about 1 GiB) and libpq
/// accepts that much. We default to 64 MiB instead: a pool serves many connections, and a hostile
/// or buggy server should not be able to make each of them reserve a gigabyte. Rows this large
/// are rare over the text protocol; raise the cap if you need them.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 64 << 20;

/// Largest StartupMessage the client sends: the server's `MAX_STARTUP_PACKET_LENGTH`
/// (`src/include/libpq/pqcomm.h`); a longer packet is dropped without a reply.
pub const MAX_STARTUP_PACKET_LEN: usize = 10_000;

/// Largest PasswordMessage / SASLInitialResponse / SASLResponse the client sends: the server's
/// `PG_MAX_AUTH_TOKEN_LENGTH` (`src/backend/libpq/auth.c`).
pub const MAX_AUTH_RESPONSE_LEN: usize = 65_535;

/// Largest other message (Query, CopyFail) the client sends: the server's
/// `PQ_LARGE_MESSAGE_LIMIT` (MaxAllocSize − 1, `src/include/libpq/libpq.h`). Checked, never
/// truncated: a length wrapped to 32 bits would let the tail be read as extra messages
/// (RUSTSEC-2024-0363, protocol-level query smuggling).
pub const MAX_FRONTEND_MESSAGE_LEN: usize = 0x3FFF_FFFE;

/// A codec error: the peer's bytes do not make a valid message, or an outbound value cannot be
/// encoded. Small and `Copy`; never allocates. Partial input is not an error (`Ok(None)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// A message's declared length is below the 4 bytes the length field itself takes.
    LengthTooShort,
    /// A message's declared length exceeds the limit for its tag in the current phase.
    MessageTooLong {
        /// The message type byte.
        tag: u8,
        /// The limit that applied (a length-field value).
        limit: usize,
    },
    /// A type byte that is valid in the protocol but not in this phase (e.g. DataRow during
    /// startup, Authentication after it).
    UnexpectedMessage {
        /// The message type byte.
        tag: u8,
    },
    /// A type byte the protocol does not define (message-boundary sync was lost).
    UnknownMessage {
        /// The message type byte.
        tag: u8,
    },
    /// A message body is shorter than its fields require.
    UnexpectedEnd {
        /// The message type byte.
        tag: u8,
    },
    /// Bytes were left over after a message's last field.
    TrailingBytes {
        /// The message type byte.
        tag: u8,
    },
    /// A string field has no NUL terminator.
    MissingNul {
        /// The message type byte.
        tag: u8,
    },
    /// A text field that must be UTF-8 is not.
    InvalidUtf8 {
        /// The message type byte.
        tag: u8,
    },
    /// A count or length field is negative (other than a DataRow's `-1` for NULL).
    NegativeLength {
        /// The message type byte.
        tag: u8,
    },
    /// A DataRow has a different number of columns than the RowDescription before it.
    ColumnCountMismatch,
    /// ReadyForQuery carried a status other than `I`, `T` or `E`.
    InvalidTransactionStatus(u8),
    /// An Authentication request code the protocol does not define.
    UnknownAuthCode(u32),
    /// An Authentication request that is valid but not at this point of the handshake
    /// (SASLFinal without SASLContinue, a second SASL, ...).
    UnexpectedAuthRequest(u32),
    /// A second NegotiateProtocolVersion (libpq: "received duplicate protocol negotiation
    /// message").
    DuplicateNegotiateProtocolVersion,
    /// NegotiateProtocolVersion named a version we cannot speak.
    UnsupportedProtocolVersion(i32),
    /// NegotiateProtocolVersion listed an option we never sent (we send none).
    UnrequestedProtocolOption,
    /// The server's first reply does not begin as PostgreSQL's does (an authentication request,
    /// an ErrorResponse or NegotiateProtocolVersion; `S` or `N` to SSLRequest): the peer speaks
    /// another protocol, such as HTTP, whose replies begin with `H`.
    NotPostgres {
        /// The reply's first byte.
        first_byte: u8,
    },
    /// An outbound message would exceed its limit (it is refused, never truncated).
    OutboundTooLong {
        /// The limit that applied (a length-field value).
        limit: usize,
    },
    /// An outbound string contains a NUL byte, which would end it early on the wire.
    EmbeddedNul,
    /// Parse or Bind was asked to carry more than [`extended::MAX_PARAMETERS`] parameters
    /// (the protocol's Int16 count).
    TooManyParameters {
        /// The number of parameters asked for.
        count: usize,
    },
    /// A Bind parameter's encoder reported NULL after writing bytes.
    InvalidParameter {
        /// The parameter's index (0 for `$1`).
        index: usize,
    },
    /// A SCRAM message from the server is malformed (see [`ScramError`]).
    Scram(ScramError),
    /// The server's answer to SSLRequest came with more bytes: injected before the TLS
    /// handshake, they must not be read as protocol (CVE-2021-23222).
    DataAfterSslReply,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = |tag: &u8| char::from(*tag).escape_default().to_string();
        match self {
            WireError::LengthTooShort => f.write_str("message length is shorter than 4 bytes"),
            WireError::MessageTooLong { tag, limit } => {
                write!(
                    f,
                    "message '{}' is longer than its limit of {limit} bytes",
                    t(tag)
                )
            }
            WireError::UnexpectedMessage { tag } => {
                write!(f, "unexpected message '{}' at this point", t(tag))
            }
            WireError::UnknownMessage { tag } => {
                write!(f, "unknown message type '{}' (protocol sync lost)", t(tag))
            }
            WireError::UnexpectedEnd { tag } => {
                write!(f, "message '{}' is shorter than its fields", t(tag))
            }
            WireError::TrailingBytes { tag } => {
                write!(f, "message '{}' has bytes after its last field", t(tag))
            }
            WireError::MissingNul { tag } => {
                write!(f, "string in message '{}' is not NUL-terminated", t(tag))
            }
            WireError::InvalidUtf8 { tag } => {
                write!(f, "text in message '{}' is not UTF-8", t(tag))
            }
            WireError::NegativeLength { tag } => {
                write!(f, "negative count or length in message '{}'", t(tag))
            }
            WireError::ColumnCountMismatch => {
                f.write_str("DataRow column count differs from RowDescription")
            }
            WireError::InvalidTransactionStatus(s) => {
                write!(f, "invalid ReadyForQuery status byte 0x{s:02x}")
            }
            WireError::UnknownAuthCode(c) => write!(f, "unknown authentication request code {c}"),
            WireError::UnexpectedAuthRequest(c) => {
                write!(
                    f,
                    "unexpected authentication request code {c} at this point"
                )
            }
            WireError::DuplicateNegotiateProtocolVersion => {
                f.write_str("received duplicate protocol negotiation message")
            }
            WireError::UnsupportedProtocolVersion(v) => write!(
                f,
                "server requested unsupported protocol version {}.{}",
                v >> 16,
                v & 0xffff
            ),
            WireError::UnrequestedProtocolOption => {
                f.write_str("server rejected a protocol option the client never sent")
            }
            WireError::NotPostgres { first_byte } => {
                write!(
                    f,
                    "the server is not PostgreSQL: its reply begins with '{}' where an \
                     authentication request was expected",
                    t(first_byte)
                )?;
                if *first_byte == b'H' {
                    f.write_str(" (an HTTP server answers like this)")?;
                }
                Ok(())
            }
            WireError::OutboundTooLong { limit } => {
                write!(
                    f,
                    "outgoing message would exceed its limit of {limit} bytes"
                )
            }
            WireError::EmbeddedNul => f.write_str("string contains an embedded NUL byte"),
            WireError::TooManyParameters { count } => write!(
                f,
                "{count} parameters exceed the protocol's limit of {}",
                extended::MAX_PARAMETERS
            ),
            WireError::InvalidParameter { index } => write!(
                f,
                "parameter ${} was reported as NULL after writing bytes",
                index.saturating_add(1)
            ),
            WireError::Scram(e) => write!(f, "SCRAM: {e}"),
            WireError::DataAfterSslReply => f.write_str(
                "received unencrypted data after the server's answer to SSLRequest (a \
                 man-in-the-middle attempt?)",
            ),
        }
    }
}

impl std::error::Error for WireError {}

impl From<ScramError> for WireError {
    fn from(e: ScramError) -> WireError {
        WireError::Scram(e)
    }
}

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

impl TransactionStatus {
    /// Parses ReadyForQuery's status byte.
    ///
    /// # Errors
    /// [`WireError::InvalidTransactionStatus`] for anything but `I`, `T`, `E`.
    pub fn from_byte(b: u8) -> Result<TransactionStatus, WireError> {
        match b {
            b'I' => Ok(TransactionStatus::Idle),
            b'T' => Ok(TransactionStatus::InTransaction),
            b'E' => Ok(TransactionStatus::Failed),
            other => Err(WireError::InvalidTransactionStatus(other)),
        }
    }
}
