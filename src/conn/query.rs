//! The simple-query loop: send `Query`, read until ReadyForQuery, always.
//!
//! The loop never returns early on a server error: the protocol guarantees exactly one
//! ReadyForQuery per Query, and reading through it is what keeps the connection usable. The
//! first ErrorResponse is kept and returned after it. COPY is not supported: COPY FROM STDIN is
//! refused with CopyFail (the server then reports 57014 and sends ReadyForQuery), COPY TO STDOUT
//! is drained; both return an "unsupported" error. CopyBoth (replication) cannot be left
//! cleanly, so the connection is marked broken.
//!
//! `drain` reads through the response of a query whose future was dropped, answering COPY the
//! same way: it must never wait for a ReadyForQuery that only a message from us would produce.
//! CopyFail is always encoded in the same poll that read CopyInResponse, so a drop between the
//! two cannot happen; a drop during its flush leaves unsent bytes, which makes the connection
//! broken.

use tokio::time::Instant;

use super::{log_notice, Connection, Row};
use crate::error::{Error, Result};
use crate::wire::{frontend, tag, BackendMessage, DataRow, TransactionStatus, WireError};

/// What a simple query ended with, besides its rows.
enum Outcome {
    Ok,
    Db(Error),
    Copy(&'static str),
    BadText,
}

impl Connection {
    /// A query's ReadyForQuery: idle again, large buffers given back, and proof of life for
    /// `check_closed` (`ALIVE_BYPASS`).
    pub(super) fn ready(&mut self, status: TransactionStatus) {
        self.inner.status = status;
        self.inner.busy = false;
        self.inner.io.shrink_idle();
        self.inner.ready_at = Some(Instant::now());
    }

    pub(super) async fn run_simple_query(&mut self, sql: &str) -> Result<Vec<Row>> {
        // A NUL in the text, or a query over the protocol's size limit: the caller's mistake,
        // and nothing was written, so the connection stays usable.
        frontend::query(sql, &mut self.inner.io.wbuf).map_err(Error::invalid_input)?;
        self.inner.busy = true;
        self.inner.extended = false;
        self.inner.io.flush().await?;
        let mut rows = Vec::new();
        let mut columns: Option<usize> = None;
        let mut outcome = Outcome::Ok;
        loop {
            // Every message already buffered is handled without an await; the socket is read
            // only when none is left (a `SELECT 1` reply arrives in one read).
            let msg = match self.inner.io.try_decode()? {
                Some(msg) => msg,
                None => match self.inner.io.fill().await {
                    Ok(()) => continue,
                    // A FATAL (57P01 terminated, 57P05 idle timeout...) then EOF: report the
                    // server's reason, not just "closed". The caller marks the connection broken.
                    Err(e) if e.is_closed() => match outcome {
                        Outcome::Db(db) => return Err(db),
                        _ => return Err(e),
                    },
                    Err(e) => return Err(e),
                },
            };
            match msg {
                BackendMessage::RowDescription(rd) => columns = Some(rd.len()),
                BackendMessage::DataRow(row) => {
                    if columns != Some(row.len()) {
                        return Err(Error::protocol(WireError::ColumnCountMismatch));
                    }
                    match to_row(&row) {
                        Some(r) => rows.push(r),
                        None => outcome = keep_first(outcome, Outcome::BadText),
                    }
                }
                BackendMessage::CommandComplete(tag) => {
                    self.note_command(&tag);
                    columns = None;
                }
                BackendMessage::EmptyQueryResponse => columns = None,
                BackendMessage::ErrorResponse(e) => {
                    outcome = keep_first(outcome, Outcome::Db(Error::db(e)));
                }
                BackendMessage::CopyInResponse(_) => {
                    self.refuse_copy_in().await?;
                    outcome = Outcome::Copy("COPY FROM STDIN");
                }
                BackendMessage::CopyOutResponse(_) => {
                    outcome = keep_first(outcome, Outcome::Copy("COPY TO STDOUT"));
                }
                BackendMessage::CopyData(_) | BackendMessage::CopyDone => {}
                BackendMessage::CopyBothResponse(_) => return Err(self.refuse_copy_both()),
                BackendMessage::ReadyForQuery(status) => {
                    self.ready(status);
                    break;
                }
                other => self.handle_async(other)?,
            }
        }
        match outcome {
            Outcome::Ok => Ok(rows),
            Outcome::Db(e) => Err(e),
            Outcome::Copy(what) => Err(Error::unsupported(format!("{what} is not supported"))),
            // The framing is intact, but text that is not UTF-8 means the session's encoding
            // is not what we asked for (e.g. `SET client_encoding = 'LATIN1'`): every later
            // query would fail the same way, so a pool must not keep it (the `simple_query`
            // fuzz target's regression `non_utf8_value_marks_the_connection_broken`).
            Outcome::BadText => {
                self.mark_broken();
                Err(Error::protocol(WireError::InvalidUtf8 {
                    tag: tag::backend::DATA_ROW,
                }))
            }
        }
    }

    /// Reads through the response of a dropped query, up to its ReadyForQuery. Any error
    /// leaves the connection broken.
    pub(super) async fn drain(&mut self) -> Result<()> {
        let result = self.drain_until_ready().await;
        if result.is_err() {
            self.mark_broken();
        }
        result
    }

    async fn drain_until_ready(&mut self) -> Result<()> {
        loop {
            match self.inner.io.read_message().await? {
                BackendMessage::ReadyForQuery(status) => {
                    self.ready(status);
                    return Ok(());
                }
                // The server waits for CopyData until we end the COPY.
                BackendMessage::CopyInResponse(_) => self.refuse_copy_in().await?,
                BackendMessage::CopyBothResponse(_) => return Err(self.refuse_copy_both()),
                // The dropped query's results and errors: nobody is waiting for them.
                BackendMessage::CommandComplete(tag) => self.note_command(&tag),
                BackendMessage::RowDescription(_)
                | BackendMessage::DataRow(_)
                | BackendMessage::EmptyQueryResponse
                | BackendMessage::ErrorResponse(_)
                | BackendMessage::CopyOutResponse(_)
                | BackendMessage::CopyData(_)
                | BackendMessage::CopyDone
                | BackendMessage::ParseComplete
                | BackendMessage::BindComplete
                | BackendMessage::CloseComplete
                | BackendMessage::ParameterDescription(_)
                | BackendMessage::NoData
                | BackendMessage::PortalSuspended => {}
                other => self.handle_async(other)?,
            }
        }
    }

    /// Ends a COPY FROM STDIN with CopyFail; the server answers with 57014 and ReadyForQuery.
    /// A COPY started by an extended query also needs a Sync: the server ignored the one sent
    /// with the query while in copy-in mode, and after the error skips to the next (protocol
    /// docs, "COPY Operations").
    pub(super) async fn refuse_copy_in(&mut self) -> Result<()> {
        frontend::copy_fail(
            "COPY FROM STDIN is not supported by wirepool",
            &mut self.inner.io.wbuf,
        )
        .map_err(Error::protocol)?;
        if self.inner.extended {
            crate::wire::extended::sync(&mut self.inner.io.wbuf);
        }
        self.inner.io.flush().await
    }

    /// CopyBoth (replication) has no way back to ReadyForQuery short of closing the session.
    pub(super) fn refuse_copy_both(&mut self) -> Error {
        self.mark_broken();
        Error::unsupported("COPY BOTH (replication) is not supported")
    }

    /// Messages that may arrive at any time: ParameterStatus, NoticeResponse,
    /// NotificationResponse. Anything else is a protocol violation.
    pub(super) fn handle_async(&mut self, msg: BackendMessage) -> Result<()> {
        match msg {
            BackendMessage::ParameterStatus { name, value } => self.note_parameter(name, value),
            BackendMessage::NoticeResponse(n) => self.inner.span.in_scope(|| log_notice(&n)),
            BackendMessage::NotificationResponse {
                pid,
                channel,
                payload,
            } => self.push_notification(pid, channel, payload),
            other => {
                return Err(Error::protocol(WireError::UnexpectedMessage {
                    tag: other.tag(),
                }))
            }
        }
        Ok(())
    }
}

/// The first problem wins (later errors are usually consequences of it); COPY-in refusal is
/// set unconditionally by the caller because the server's 57014 that follows is our own doing.
fn keep_first(current: Outcome, new: Outcome) -> Outcome {
    match current {
        Outcome::Ok => new,
        kept => kept,
    }
}

/// The row's values as text, in one `String` (see [`Row`]). `None` if a value is not UTF-8 (we
/// ask for client_encoding UTF8; a session that changed it gets an error rather than silently
/// mangled text).
pub(super) fn to_row(row: &DataRow) -> Option<Row> {
    let size = row.columns().map(|v| v.map_or(0, <[u8]>::len)).sum();
    let mut text = String::with_capacity(size);
    let mut spans = Vec::with_capacity(row.len());
    for col in row.columns() {
        spans.push(match col {
            None => None,
            Some(bytes) => {
                let start = text.len();
                text.push_str(std::str::from_utf8(bytes).ok()?);
                Some((start, text.len()))
            }
        });
    }
    Some(Row {
        text,
        spans,
        columns: None,
    })
}
