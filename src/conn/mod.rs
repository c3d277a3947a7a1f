//! The only place in the crate that does I/O: a socket, its read and write buffers, and the
//! handshake and simple-query loops that drive the sans-IO [`crate::wire`] codec.
//!
//! STUB: to be filled in (issue #2). The signatures below are the interface the pool and users use.

use std::collections::HashMap;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::wire::TransactionStatus;

/// One data row of a simple query's result, with every value as text (`None` is SQL NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    values: Vec<Option<String>>,
}

impl Row {
    /// The value of column `idx` as text; `None` for NULL or an out-of-range index.
    pub fn get(&self, idx: usize) -> Option<&str> {
        self.values.get(idx).and_then(|v| v.as_deref())
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Sends a CancelRequest for whatever the connection's backend is running. `Send + Clone`.
#[derive(Debug, Clone)]
pub struct CancelToken {}

impl CancelToken {
    /// Opens a new connection to the same server and asks it to cancel the running query.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping it before it finishes may or may not deliver the request.
    ///
    /// # Errors
    /// If the server cannot be reached.
    pub async fn cancel(&self) -> Result<()> {
        Err(Error::unsupported("not implemented yet"))
    }
}

/// A connection to a PostgreSQL server.
#[derive(Debug)]
pub struct Connection {
    params: HashMap<String, String>,
}

impl Connection {
    /// Connects and authenticates.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future drops the half-open socket.
    ///
    /// # Errors
    /// Connection, authentication or configuration failures.
    pub async fn connect(_config: &Config) -> Result<Connection> {
        Err(Error::unsupported("not implemented yet"))
    }

    /// Runs a simple query; returns every data row of every statement, in order.
    ///
    /// # Cancel safety
    /// Not cancel-safe: dropping it mid-query leaves the connection busy (the pool cancels and
    /// discards such a connection).
    ///
    /// # Errors
    /// A server error (the connection stays usable), or an I/O or protocol error (it does not).
    pub async fn simple_query(&mut self, _sql: &str) -> Result<Vec<Row>> {
        Err(Error::unsupported("not implemented yet"))
    }

    /// The server backend's process id.
    pub fn backend_pid(&self) -> i32 {
        0
    }

    /// The transaction status from the last ReadyForQuery.
    pub fn transaction_status(&self) -> TransactionStatus {
        TransactionStatus::Idle
    }

    /// A server parameter reported by ParameterStatus (`server_version`, `TimeZone`, ...).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// Whether an I/O or protocol error (or `close`) has made the connection unusable.
    pub fn is_broken(&self) -> bool {
        false
    }

    /// Whether a query was sent and its ReadyForQuery not yet read (a `simple_query` future was
    /// dropped mid-flight). Such a connection cannot be reused without draining it.
    pub fn is_busy(&self) -> bool {
        false
    }

    /// Non-blocking, no round trip: has the server closed the connection (EOF, reset, or a FATAL
    /// such as 57P01 sent while idle)? Harmless asynchronous messages (ParameterStatus, notices)
    /// are consumed. Marks the connection broken when it returns `true`.
    pub fn check_closed(&mut self) -> bool {
        false
    }

    /// A token that cancels this connection's running query from anywhere.
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken {}
    }

    /// Sends Terminate and closes the socket.
    ///
    /// # Cancel safety
    /// Cancel-safe: the socket is closed either way.
    ///
    /// # Errors
    /// If Terminate could not be written.
    pub async fn close(self) -> Result<()> {
        Ok(())
    }
}
