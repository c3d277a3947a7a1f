//! Server → client messages and the streaming [`Decoder`].
//!
//! The decoder is check-then-parse (mini-redis): it looks at the 5-byte header, checks the tag
//! and the declared length against the current phase's limits, and only when the whole message
//! is buffered splits it off as `Bytes` and parses it. Partial input returns `Ok(None)` and
//! consumes nothing, so a caller may drop a read future at any point and resume later.
//!
//! Phases (limits from libpq, see the `MAX_*` constants in [`crate::wire`]):
//! - *startup* (until the first ReadyForQuery): only `R E N S K v Z` are valid; `R` is capped
//!   at [`MAX_AUTH_MESSAGE_LEN`], the others at [`MAX_STARTUP_MESSAGE_LEN`];
//! - *ready*: `T D d E N` are capped at [`DecoderLimits::max_message_len`], `A` at
//!   [`MAX_NOTIFICATION_LEN`], `t` at [`MAX_PARAMETER_DESCRIPTION_LEN`], every other tag at
//!   [`MAX_SMALL_MESSAGE_LEN`].

use bytes::{Bytes, BytesMut};

use super::frame::{split_frame, Body};
pub use super::rows::{
    CommandTag, DataRow, DataRowColumns, FieldDescription, FieldDescriptions, RowDescription,
};
use super::tag::backend as kind;
use super::{
    DbError, TransactionStatus, WireError, DEFAULT_MAX_MESSAGE_LEN, MAX_AUTH_MESSAGE_LEN,
    MAX_NOTIFICATION_LEN, MAX_PARAMETER_DESCRIPTION_LEN, MAX_SMALL_MESSAGE_LEN,
    MAX_STARTUP_MESSAGE_LEN,
};

/// An Authentication request (`'R'`), by its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// 0: authentication succeeded.
    Ok,
    /// 2: Kerberos V5 (no longer supported by PostgreSQL).
    KerberosV5,
    /// 3: send the password in clear text.
    CleartextPassword,
    /// 5: send the MD5-hashed password with this salt.
    Md5Password {
        /// The 4-byte salt.
        salt: [u8; 4],
    },
    /// 6: SCM credentials (pre-9.1 servers).
    ScmCredential,
    /// 7: start GSSAPI.
    Gss,
    /// 8: GSSAPI or SSPI continuation data.
    GssContinue {
        /// The opaque token.
        data: Bytes,
    },
    /// 9: start SSPI.
    Sspi,
    /// 10: start SASL with one of these mechanisms (in the server's order of preference).
    Sasl {
        /// The mechanism names, e.g. `SCRAM-SHA-256`.
        mechanisms: Vec<String>,
    },
    /// 11: a SASL challenge (SCRAM server-first-message).
    SaslContinue {
        /// The challenge.
        data: Bytes,
    },
    /// 12: SASL outcome data (SCRAM server-final-message).
    SaslFinal {
        /// The outcome data.
        data: Bytes,
    },
}

/// CopyInResponse / CopyOutResponse / CopyBothResponse: the server switched to COPY mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResponse {
    /// 0 textual, 1 binary.
    pub format: u8,
    /// The per-column format codes.
    pub column_formats: Vec<i16>,
}

/// ParameterDescription (`'t'`): the type OIDs of a prepared statement's parameters, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterDescription {
    /// One OID per parameter (`$1` first).
    pub types: Vec<u32>,
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendMessage {
    /// `'R'`: an authentication request or result.
    Authentication(Authentication),
    /// `'S'`: a run-time parameter's current value.
    ParameterStatus {
        /// The parameter name, e.g. `server_version`.
        name: String,
        /// Its value.
        value: String,
    },
    /// `'K'`: what a CancelRequest for this session must quote (protocol 3.0: a 4-byte key).
    BackendKeyData {
        /// The backend's process id.
        pid: i32,
        /// The secret key, kept as raw bytes (it is not meaningfully a number).
        key: [u8; 4],
    },
    /// `'Z'`: the server is ready for a new query.
    ReadyForQuery(TransactionStatus),
    /// `'E'`: an error; the current command (or the session, for FATAL) is over.
    ErrorResponse(DbError),
    /// `'N'`: a notice or warning.
    NoticeResponse(DbError),
    /// `'T'`: the shape of the rows that follow.
    RowDescription(RowDescription),
    /// `'D'`: one row.
    DataRow(DataRow),
    /// `'C'`: a command finished; the tag, e.g. `SELECT 1`, `INSERT 0 5`.
    CommandComplete(CommandTag),
    /// `'I'`: the query string was empty.
    EmptyQueryResponse,
    /// `'A'`: a NOTIFY on a channel this session LISTENs to.
    NotificationResponse {
        /// The notifying backend's process id.
        pid: i32,
        /// The channel name.
        channel: String,
        /// The payload.
        payload: String,
    },
    /// `'v'`: the server does not support the requested minor version or some `_pq_` options.
    NegotiateProtocolVersion {
        /// The newest protocol version the server supports (the full version integer).
        version: i32,
        /// The options it did not recognise.
        options: Vec<String>,
    },
    /// `'G'`: the server waits for COPY data from the client.
    CopyInResponse(CopyResponse),
    /// `'H'`: the server is about to send COPY data.
    CopyOutResponse(CopyResponse),
    /// `'W'`: both directions (replication).
    CopyBothResponse(CopyResponse),
    /// `'d'`: a chunk of COPY data.
    CopyData(Bytes),
    /// `'c'`: the end of COPY data.
    CopyDone,
    /// `'1'`: a Parse succeeded.
    ParseComplete,
    /// `'2'`: a Bind succeeded.
    BindComplete,
    /// `'3'`: a Close succeeded (also when nothing by that name existed).
    CloseComplete,
    /// `'t'`: a Describe of a statement: its parameters' types.
    ParameterDescription(ParameterDescription),
    /// `'n'`: a Describe found a statement or portal that returns no rows.
    NoData,
    /// `'s'`: an Execute reached its row limit before the portal's end.
    PortalSuspended,
}

impl BackendMessage {
    /// The message's type byte.
    pub fn tag(&self) -> u8 {
        match self {
            BackendMessage::Authentication(_) => b'R',
            BackendMessage::ParameterStatus { .. } => b'S',
            BackendMessage::BackendKeyData { .. } => b'K',
            BackendMessage::ReadyForQuery(_) => b'Z',
            BackendMessage::ErrorResponse(_) => b'E',
            BackendMessage::NoticeResponse(_) => b'N',
            BackendMessage::RowDescription(_) => b'T',
            BackendMessage::DataRow(_) => b'D',
            BackendMessage::CommandComplete(_) => b'C',
            BackendMessage::EmptyQueryResponse => b'I',
            BackendMessage::NotificationResponse { .. } => b'A',
            BackendMessage::NegotiateProtocolVersion { .. } => b'v',
            BackendMessage::CopyInResponse(_) => b'G',
            BackendMessage::CopyOutResponse(_) => b'H',
            BackendMessage::CopyBothResponse(_) => b'W',
            BackendMessage::CopyData(_) => b'd',
            BackendMessage::CopyDone => b'c',
            BackendMessage::ParseComplete => b'1',
            BackendMessage::BindComplete => b'2',
            BackendMessage::CloseComplete => b'3',
            BackendMessage::ParameterDescription(_) => b't',
            BackendMessage::NoData => b'n',
            BackendMessage::PortalSuspended => b's',
        }
    }
}

/// Caps on message lengths after startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Largest length-field value for RowDescription, DataRow, CopyData, ErrorResponse and
    /// NoticeResponse. Default [`DEFAULT_MAX_MESSAGE_LEN`].
    pub max_message_len: usize,
}

impl DecoderLimits {
    /// Whether a message with this type byte is bounded by
    /// [`max_message_len`](DecoderLimits::max_message_len) after startup (the other tags have
    /// libpq's fixed limits, see [`crate::wire`]).
    ///
    /// ```
    /// use wirepool::wire::DecoderLimits;
    /// assert!(DecoderLimits::covers(b'D'));
    /// assert!(!DecoderLimits::covers(b'Z'));
    /// ```
    pub fn covers(tag: u8) -> bool {
        matches!(
            tag,
            kind::ROW_DESCRIPTION
                | kind::DATA_ROW
                | kind::COPY_DATA
                | kind::ERROR_RESPONSE
                | kind::NOTICE_RESPONSE
        )
    }
}

impl Default for DecoderLimits {
    fn default() -> DecoderLimits {
        DecoderLimits {
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
        }
    }
}

/// The streaming decoder for server messages. Starts in the startup phase and switches to the
/// ready phase when it decodes the first ReadyForQuery.
///
/// ```
/// use bytes::BytesMut;
/// use wirepool::wire::{BackendMessage, Decoder, TransactionStatus};
///
/// let mut d = Decoder::new();
/// let mut buf = BytesMut::from(&b"Z\0\0\0\x05"[..]);
/// assert_eq!(d.decode(&mut buf), Ok(None)); // status byte not here yet
/// buf.extend_from_slice(b"I");
/// assert_eq!(
///     d.decode(&mut buf),
///     Ok(Some(BackendMessage::ReadyForQuery(TransactionStatus::Idle)))
/// );
/// assert!(!d.in_startup());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    ready: bool,
    limits: DecoderLimits,
}

impl Decoder {
    /// A decoder in the startup phase with default limits.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// A decoder in the startup phase with these post-startup limits.
    pub fn with_limits(limits: DecoderLimits) -> Decoder {
        Decoder {
            ready: false,
            limits,
        }
    }

    /// Replaces the post-startup limits (they apply from the next message on).
    pub fn set_limits(&mut self, limits: DecoderLimits) {
        self.limits = limits;
    }

    /// Whether the decoder still applies startup-phase rules.
    pub fn in_startup(&self) -> bool {
        !self.ready
    }

    /// Decodes one message from the front of `buf`.
    ///
    /// Returns `Ok(None)` and leaves `buf` untouched (apart from reserving capacity, bounded by
    /// the applicable limit) when the message is incomplete. On success exactly `1 + len`
    /// bytes are consumed.
    ///
    /// # Errors
    /// A [`WireError`] if the bytes cannot be a valid message here. The stream is then out of
    /// sync: the connection must be closed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BackendMessage>, WireError> {
        let Some((tag, body)) = split_frame(buf, |tag| self.limit(tag))? else {
            return Ok(None);
        };
        let msg = parse(tag, body)?;
        if let BackendMessage::ReadyForQuery(_) = msg {
            self.ready = true;
        }
        Ok(Some(msg))
    }

    fn limit(&self, tag: u8) -> Result<usize, WireError> {
        if !self.ready {
            return match tag {
                kind::AUTHENTICATION => Ok(MAX_AUTH_MESSAGE_LEN),
                kind::ERROR_RESPONSE
                | kind::NOTICE_RESPONSE
                | kind::PARAMETER_STATUS
                | kind::BACKEND_KEY_DATA
                | kind::NEGOTIATE_PROTOCOL_VERSION
                | kind::READY_FOR_QUERY => Ok(MAX_STARTUP_MESSAGE_LEN),
                _ if is_backend_tag(tag) => Err(WireError::UnexpectedMessage { tag }),
                _ => Err(WireError::UnknownMessage { tag }),
            };
        }
        match tag {
            _ if DecoderLimits::covers(tag) => Ok(self.limits.max_message_len),
            kind::NOTIFICATION_RESPONSE => Ok(MAX_NOTIFICATION_LEN),
            kind::PARAMETER_DESCRIPTION => Ok(MAX_PARAMETER_DESCRIPTION_LEN),
            kind::PARAMETER_STATUS
            | kind::READY_FOR_QUERY
            | kind::COMMAND_COMPLETE
            | kind::EMPTY_QUERY_RESPONSE
            | kind::COPY_IN_RESPONSE
            | kind::COPY_OUT_RESPONSE
            | kind::COPY_BOTH_RESPONSE
            | kind::COPY_DONE
            | kind::PARSE_COMPLETE
            | kind::BIND_COMPLETE
            | kind::CLOSE_COMPLETE
            | kind::NO_DATA
            | kind::PORTAL_SUSPENDED => Ok(MAX_SMALL_MESSAGE_LEN),
            _ if is_backend_tag(tag) => Err(WireError::UnexpectedMessage { tag }),
            _ => Err(WireError::UnknownMessage { tag }),
        }
    }
}

/// Every type byte the server can send in protocol 3.x (protocol-message-formats).
fn is_backend_tag(tag: u8) -> bool {
    kind::ALL.contains(&tag)
}

fn parse(tag: u8, body: Bytes) -> Result<BackendMessage, WireError> {
    let msg = match tag {
        kind::ERROR_RESPONSE => {
            return DbError::parse(tag, body).map(BackendMessage::ErrorResponse)
        }
        kind::NOTICE_RESPONSE => {
            return DbError::parse(tag, body).map(BackendMessage::NoticeResponse)
        }
        kind::ROW_DESCRIPTION => {
            return RowDescription::parse(body).map(BackendMessage::RowDescription)
        }
        kind::DATA_ROW => return DataRow::parse(body).map(BackendMessage::DataRow),
        kind::COMMAND_COMPLETE => {
            return CommandTag::parse(body).map(BackendMessage::CommandComplete)
        }
        kind::AUTHENTICATION => {
            return parse_authentication(body).map(BackendMessage::Authentication)
        }
        kind::COPY_DATA => return Ok(BackendMessage::CopyData(body)),
        _ => {
            let mut b = Body::new(tag, body);
            let msg = match tag {
                kind::PARAMETER_STATUS => BackendMessage::ParameterStatus {
                    name: b.str()?,
                    value: b.str()?,
                },
                kind::BACKEND_KEY_DATA => BackendMessage::BackendKeyData {
                    pid: b.i32()?,
                    key: b.i32()?.to_be_bytes(),
                },
                kind::READY_FOR_QUERY => {
                    BackendMessage::ReadyForQuery(TransactionStatus::from_byte(b.u8()?)?)
                }
                kind::EMPTY_QUERY_RESPONSE => BackendMessage::EmptyQueryResponse,
                kind::COPY_DONE => BackendMessage::CopyDone,
                kind::PARSE_COMPLETE => BackendMessage::ParseComplete,
                kind::BIND_COMPLETE => BackendMessage::BindComplete,
                kind::CLOSE_COMPLETE => BackendMessage::CloseComplete,
                kind::NO_DATA => BackendMessage::NoData,
                kind::PORTAL_SUSPENDED => BackendMessage::PortalSuspended,
                kind::PARAMETER_DESCRIPTION => {
                    let n = b.count16_unsigned()?;
                    let mut types = Vec::with_capacity(n);
                    for _ in 0..n {
                        types.push(u32::from_be_bytes(b.i32()?.to_be_bytes()));
                    }
                    BackendMessage::ParameterDescription(ParameterDescription { types })
                }
                kind::NOTIFICATION_RESPONSE => BackendMessage::NotificationResponse {
                    pid: b.i32()?,
                    channel: b.str()?,
                    payload: b.str()?,
                },
                kind::NEGOTIATE_PROTOCOL_VERSION => parse_negotiate(&mut b)?,
                kind::COPY_IN_RESPONSE => {
                    BackendMessage::CopyInResponse(parse_copy_response(&mut b)?)
                }
                kind::COPY_OUT_RESPONSE => {
                    BackendMessage::CopyOutResponse(parse_copy_response(&mut b)?)
                }
                kind::COPY_BOTH_RESPONSE => {
                    BackendMessage::CopyBothResponse(parse_copy_response(&mut b)?)
                }
                // The decoder's limit check already refused every other tag.
                _ => return Err(WireError::UnexpectedMessage { tag }),
            };
            b.finish()?;
            msg
        }
    };
    Ok(msg)
}

fn parse_negotiate(b: &mut Body) -> Result<BackendMessage, WireError> {
    let version = b.i32()?;
    let n = usize::try_from(b.i32()?).map_err(|_| WireError::NegativeLength { tag: b'v' })?;
    let mut options = Vec::new();
    for _ in 0..n {
        options.push(b.str()?);
    }
    Ok(BackendMessage::NegotiateProtocolVersion { version, options })
}

fn parse_copy_response(b: &mut Body) -> Result<CopyResponse, WireError> {
    let format = b.u8()?;
    let n = b.count16()?;
    let mut column_formats = Vec::new();
    for _ in 0..n {
        column_formats.push(b.i16()?);
    }
    Ok(CopyResponse {
        format,
        column_formats,
    })
}

fn parse_authentication(body: Bytes) -> Result<Authentication, WireError> {
    let mut b = Body::new(b'R', body);
    let code = u32::from_be_bytes(b.i32()?.to_be_bytes());
    let auth = match code {
        0 => Authentication::Ok,
        2 => Authentication::KerberosV5,
        3 => Authentication::CleartextPassword,
        5 => Authentication::Md5Password {
            salt: b.i32()?.to_be_bytes(),
        },
        6 => Authentication::ScmCredential,
        7 => Authentication::Gss,
        8 => Authentication::GssContinue { data: b.rest() },
        9 => Authentication::Sspi,
        10 => {
            // `String mech × k, Byte 0`: a list of C strings ended by an empty one.
            let mut mechanisms = Vec::new();
            loop {
                let m = b.str()?;
                if m.is_empty() {
                    break;
                }
                mechanisms.push(m);
            }
            Authentication::Sasl { mechanisms }
        }
        11 => Authentication::SaslContinue { data: b.rest() },
        12 => Authentication::SaslFinal { data: b.rest() },
        other => return Err(WireError::UnknownAuthCode(other)),
    };
    b.finish()?;
    Ok(auth)
}
