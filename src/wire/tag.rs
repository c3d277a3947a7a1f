//! Every message type byte of protocol 3.x, named (postgres-protocol's `DATA_ROW_TAG` and
//! friends; PostgreSQL's `src/include/libpq/protocol.h` names the same bytes `PqMsg_*`). The
//! same byte can mean different messages in each direction (`'D'`: DataRow from the server,
//! Describe from the client), so the two directions are separate modules.

/// Messages the server sends (protocol-message-formats, "Backend").
pub mod backend {
    /// AuthenticationOk and every other authentication request.
    pub const AUTHENTICATION: u8 = b'R';
    /// BackendKeyData: the cancel key.
    pub const BACKEND_KEY_DATA: u8 = b'K';
    /// BindComplete.
    pub const BIND_COMPLETE: u8 = b'2';
    /// CloseComplete.
    pub const CLOSE_COMPLETE: u8 = b'3';
    /// CommandComplete: the command tag.
    pub const COMMAND_COMPLETE: u8 = b'C';
    /// CopyData.
    pub const COPY_DATA: u8 = b'd';
    /// CopyDone.
    pub const COPY_DONE: u8 = b'c';
    /// CopyInResponse.
    pub const COPY_IN_RESPONSE: u8 = b'G';
    /// CopyOutResponse.
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    /// CopyBothResponse (replication).
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    /// DataRow: one row's values.
    pub const DATA_ROW: u8 = b'D';
    /// EmptyQueryResponse.
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    /// ErrorResponse.
    pub const ERROR_RESPONSE: u8 = b'E';
    /// FunctionCallResponse (never asked for by this client).
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
    /// NegotiateProtocolVersion.
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    /// NoData.
    pub const NO_DATA: u8 = b'n';
    /// NoticeResponse.
    pub const NOTICE_RESPONSE: u8 = b'N';
    /// NotificationResponse (`NOTIFY`).
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    /// ParameterDescription.
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    /// ParameterStatus.
    pub const PARAMETER_STATUS: u8 = b'S';
    /// ParseComplete.
    pub const PARSE_COMPLETE: u8 = b'1';
    /// PortalSuspended.
    pub const PORTAL_SUSPENDED: u8 = b's';
    /// ReadyForQuery.
    pub const READY_FOR_QUERY: u8 = b'Z';
    /// RowDescription.
    pub const ROW_DESCRIPTION: u8 = b'T';

    /// Every type byte the server can send.
    pub const ALL: [u8; 24] = [
        AUTHENTICATION,
        BACKEND_KEY_DATA,
        BIND_COMPLETE,
        CLOSE_COMPLETE,
        COMMAND_COMPLETE,
        COPY_DATA,
        COPY_DONE,
        COPY_IN_RESPONSE,
        COPY_OUT_RESPONSE,
        COPY_BOTH_RESPONSE,
        DATA_ROW,
        EMPTY_QUERY_RESPONSE,
        ERROR_RESPONSE,
        FUNCTION_CALL_RESPONSE,
        NEGOTIATE_PROTOCOL_VERSION,
        NO_DATA,
        NOTICE_RESPONSE,
        NOTIFICATION_RESPONSE,
        PARAMETER_DESCRIPTION,
        PARAMETER_STATUS,
        PARSE_COMPLETE,
        PORTAL_SUSPENDED,
        READY_FOR_QUERY,
        ROW_DESCRIPTION,
    ];
}

/// Messages the client sends (protocol-message-formats, "Frontend"). StartupMessage,
/// SSLRequest and CancelRequest have no type byte.
pub mod frontend {
    /// Bind.
    pub const BIND: u8 = b'B';
    /// Close (a statement or a portal).
    pub const CLOSE: u8 = b'C';
    /// CopyFail.
    pub const COPY_FAIL: u8 = b'f';
    /// Describe (a statement or a portal).
    pub const DESCRIBE: u8 = b'D';
    /// Execute.
    pub const EXECUTE: u8 = b'E';
    /// Flush.
    pub const FLUSH: u8 = b'H';
    /// Parse.
    pub const PARSE: u8 = b'P';
    /// PasswordMessage, SASLInitialResponse and SASLResponse share it.
    pub const PASSWORD: u8 = b'p';
    /// Query (the simple query protocol).
    pub const QUERY: u8 = b'Q';
    /// Sync.
    pub const SYNC: u8 = b'S';
    /// Terminate.
    pub const TERMINATE: u8 = b'X';
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_backend_type_byte_is_listed_once() {
        let mut all = super::backend::ALL.to_vec();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), super::backend::ALL.len());
        assert_eq!(all, b"123ACDEGHIKNRSTVWZcdnstv".to_vec());
    }
}
