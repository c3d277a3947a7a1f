//! Queries with parameters over the extended query protocol: [`Connection::query`],
//! [`query_one`](Connection::query_one), [`query_opt`](Connection::query_opt) and
//! [`execute`](Connection::execute).
//!
//! One query is one write and one round trip on the unnamed statement and portal:
//! Parse, Bind, Describe (portal), Execute, Sync. No name survives the query and no Sync
//! separates Parse from Bind, so it is safe behind PgBouncer's and Supavisor's transaction
//! pooling, which may move the next Sync's successor to another server (pgbouncer#1288).
//!
//! Replies are checked against what was asked, in order ([`Expect`]): ParseComplete,
//! BindComplete, RowDescription or NoData, DataRows, then CommandComplete or
//! EmptyQueryResponse, then ReadyForQuery. After an ErrorResponse the server skips every
//! message until the Sync and sends only ReadyForQuery (protocol-flow, "Extended Query"): the
//! loop reads to it, returns the server's error, and the connection stays usable. Anything
//! else out of order is a protocol error and leaves the connection broken.
//!
//! The parameter count is checked before anything is sent, against the highest `$n` of the
//! text (`wire::parameter_count`): a Bind with the wrong count would be answered with 08P01
//! (protocol_violation), a code a pool takes for a server going away.

use std::sync::Arc;

use bytes::BytesMut;

use super::columns::Column;
use super::params::{IsNull, ParamBuf, ToParam};
use super::query::to_row;
use super::{Connection, Row};
use crate::error::{Error, Result};
use crate::wire::extended::{self, Target, MAX_PARAMETERS};
use crate::wire::{parameter_count, tag, BackendMessage, CommandTag, DbError, WireError};

/// One reply the request asked for, in the order the server sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// CloseComplete, for a Close.
    Close,
    /// ParseComplete, for a Parse.
    Parse,
    /// ParameterDescription, for a Describe of a statement.
    Parameters,
    /// RowDescription or NoData, for a Describe.
    Shape,
    /// BindComplete, for a Bind.
    Bind,
    /// DataRows, then CommandComplete or EmptyQueryResponse, for an Execute.
    Results,
}

/// Parse, Bind, Describe (portal), Execute on the unnamed statement.
const UNNAMED: &[Expect] = &[Expect::Parse, Expect::Bind, Expect::Shape, Expect::Results];

/// What a request's replies carried.
#[derive(Debug, Default)]
pub(super) struct Response {
    pub(super) rows: Vec<Row>,
    pub(super) tag: Option<CommandTag>,
    pub(super) columns: Option<Arc<[Column]>>,
    /// From a Describe of the statement.
    pub(super) parameter_types: Option<Vec<u32>>,
}

/// A failure while encoding Bind: the codec's, or a parameter's own.
enum BindFailure {
    Wire(WireError),
    Param(Error),
}

impl From<WireError> for BindFailure {
    fn from(e: WireError) -> BindFailure {
        BindFailure::Wire(e)
    }
}

impl Connection {
    /// Runs `sql` with `params` (`$1`, `$2`, ... in the text) and returns its rows.
    ///
    /// Each parameter is sent as text with its type left to the server, which infers it from
    /// where the parameter stands; a cast settles an ambiguous one (`$1::int4`; otherwise
    /// "could not determine data type of parameter $1"). A value never becomes SQL: `'; DROP
    /// TABLE t; --` is just a string. One round trip, on the unnamed statement.
    ///
    /// ```no_run
    /// # async fn demo(conn: &mut wirepool::Connection) -> Result<(), wirepool::Error> {
    /// let name = "Robert'); DROP TABLE students; --";
    /// let rows = conn
    ///     .query("SELECT $1::text AS name, $2::int8 + 1 AS next", &[&name, &41i64])
    ///     .await?;
    /// assert_eq!(rows[0].try_get::<&str, _>("name")?, name);
    /// assert_eq!(rows[0].try_get::<i64, _>(1)?, 42);
    /// # Ok(()) }
    /// ```
    ///
    /// # Cancel safety
    /// Not cancel-safe: dropping it mid-query leaves the connection busy
    /// ([`is_busy`](Connection::is_busy)); the pool cancels and discards such a connection, and a
    /// later call on it first reads through the dropped query's replies. Dropped while the
    /// query was still being written, the connection is broken
    /// ([`is_broken`](Connection::is_broken)).
    ///
    /// # Errors
    /// - [`Error::is_invalid_input`] before anything is sent: more than 65,535 parameters, a
    ///   count that differs from the highest `$n` in the text, a NUL in a text value (send
    ///   bytes as `&[u8]`, which travel as `bytea`); the connection stays usable;
    /// - [`Error::is_db`]: the server's error (a syntax error, a value its type rejects, a
    ///   constraint); every reply was read, so the connection stays usable;
    /// - [`Error::is_unsupported`] for COPY (usable), or an I/O or protocol error (broken).
    pub async fn query(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Vec<Row>> {
        Ok(self.extended_query(sql, params, true).await?.rows)
    }

    /// [`query`](Connection::query) for exactly one row.
    ///
    /// ```no_run
    /// # async fn demo(conn: &mut wirepool::Connection) -> Result<(), wirepool::Error> {
    /// let row = conn.query_one("SELECT count(*) FROM pg_class WHERE relkind = $1", &[&"r"]).await?;
    /// let tables: i64 = row.try_get(0)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Cancel safety
    /// As [`query`](Connection::query).
    ///
    /// # Errors
    /// As [`query`](Connection::query), and [`Error::is_row_count`] if the query returned no
    /// row or several (every row was read: the connection stays usable).
    pub async fn query_one(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Row> {
        let mut rows = self.query(sql, params).await?;
        match rows.len() {
            1 => rows.pop().ok_or_else(|| Error::row_count(0)),
            n => Err(Error::row_count(n)),
        }
    }

    /// [`query`](Connection::query) for at most one row.
    ///
    /// ```no_run
    /// # async fn demo(conn: &mut wirepool::Connection) -> Result<(), wirepool::Error> {
    /// let row = conn.query_opt("SELECT rolname FROM pg_roles WHERE oid = $1", &[&10u32]).await?;
    /// let owner: Option<String> = row.map(|r| r.try_get(0)).transpose()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Cancel safety
    /// As [`query`](Connection::query).
    ///
    /// # Errors
    /// As [`query`](Connection::query), and [`Error::is_row_count`] if the query returned
    /// several rows (every row was read: the connection stays usable).
    pub async fn query_opt(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Option<Row>> {
        let mut rows = self.query(sql, params).await?;
        match rows.len() {
            0 | 1 => Ok(rows.pop()),
            n => Err(Error::row_count(n)),
        }
    }

    /// Runs `sql` with `params` like [`query`](Connection::query) and returns the number of
    /// rows it inserted, updated, deleted, selected, merged or copied (from its command tag;
    /// 0 for a command without a count, such as `CREATE TABLE`). Rows it returns are read and
    /// dropped.
    ///
    /// ```no_run
    /// # async fn demo(conn: &mut wirepool::Connection) -> Result<(), wirepool::Error> {
    /// let n = conn
    ///     .execute("UPDATE accounts SET balance = balance + $1 WHERE id = $2", &[&10i64, &7i32])
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Cancel safety
    /// As [`query`](Connection::query).
    ///
    /// # Errors
    /// As [`query`](Connection::query).
    pub async fn execute(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<u64> {
        let response = self.extended_query(sql, params, false).await?;
        Ok(response.tag.and_then(|t| t.rows()).unwrap_or(0))
    }

    /// The shared path: through the statement cache when it is on, else unnamed.
    async fn extended_query(
        &mut self,
        sql: &str,
        params: &[&dyn ToParam],
        keep_rows: bool,
    ) -> Result<Response> {
        if self.inner.statements.is_some() {
            self.cached_query(sql, params, keep_rows).await
        } else {
            self.unnamed_query(sql, params, keep_rows).await
        }
    }

    /// Readiness, local checks, one write on the unnamed statement, the replies.
    pub(super) async fn unnamed_query(
        &mut self,
        sql: &str,
        params: &[&dyn ToParam],
        keep_rows: bool,
    ) -> Result<Response> {
        self.prepare_to_send().await?;
        check_parameter_count(sql, params.len(), self.standard_conforming_strings())?;
        let wbuf = &mut self.inner.io.wbuf;
        let start = wbuf.len();
        if let Err(e) = encode_unnamed(sql, params, wbuf) {
            wbuf.truncate(start);
            return Err(e);
        }
        let mut response = Response::default();
        self.send_and_read(0, UNNAMED, keep_rows, &mut response)
            .await?;
        Ok(response)
    }

    /// A broken connection fails fast; a busy one (a dropped earlier call) is read through to
    /// its ReadyForQuery first.
    pub(super) async fn prepare_to_send(&mut self) -> Result<()> {
        if self.is_broken() {
            self.mark_broken();
            return Err(Error::closed());
        }
        if self.inner.busy {
            self.drain().await?;
        }
        Ok(())
    }

    /// `standard_conforming_strings` as the server last reported it (on unless it said off).
    pub(super) fn standard_conforming_strings(&self) -> bool {
        self.parameter("standard_conforming_strings") != Some("off")
    }

    /// Sends what is encoded in the write buffer and reads the replies: `closes`
    /// CloseCompletes, then those `expect` lists, then ReadyForQuery. What arrived is in
    /// `response` even when an error follows; its `columns` describe the rows when no Describe
    /// was sent.
    pub(super) async fn send_and_read(
        &mut self,
        closes: usize,
        expect: &[Expect],
        keep_rows: bool,
        response: &mut Response,
    ) -> Result<()> {
        self.inner.busy = true;
        self.inner.extended = true;
        let result = match self.inner.io.flush().await {
            Ok(()) => self.read_replies(closes, expect, keep_rows, response).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            if let Some(db) = e.as_db_error() {
                if !is_statement_protocol_error(db) {
                    self.note_server_error(db);
                }
            }
            if self.inner.busy {
                // The error came before ReadyForQuery: the stream is not at a message boundary
                // we can trust any more.
                self.mark_broken();
            }
        }
        result
    }

    async fn read_replies(
        &mut self,
        closes: usize,
        expect: &[Expect],
        keep_rows: bool,
        response: &mut Response,
    ) -> Result<()> {
        let steps = closes.saturating_add(expect.len());
        let mut step = 0usize;
        let mut failure: Option<Error> = None;
        loop {
            let msg = match self.inner.io.try_decode()? {
                Some(msg) => msg,
                None => match self.inner.io.fill().await {
                    Ok(()) => continue,
                    // A FATAL then EOF: report the server's reason, not just "closed".
                    Err(e) if e.is_closed() => return Err(failure.unwrap_or(e)),
                    Err(e) => return Err(e),
                },
            };
            let next = match step.checked_sub(closes) {
                None => Some(Expect::Close),
                Some(i) => expect.get(i).copied(),
            };
            match msg {
                BackendMessage::ReadyForQuery(status) => {
                    if failure.is_none() && next.is_some() {
                        return Err(Error::protocol(WireError::UnexpectedMessage {
                            tag: tag::backend::READY_FOR_QUERY,
                        }));
                    }
                    self.ready(status);
                    break;
                }
                BackendMessage::ParameterStatus { .. }
                | BackendMessage::NoticeResponse(_)
                | BackendMessage::NotificationResponse { .. } => self.handle_async(msg)?,
                // The first problem wins: the 57014 after a refused COPY is our own doing.
                BackendMessage::ErrorResponse(e) => {
                    if failure.is_none() {
                        failure = Some(Error::db(e));
                    }
                }
                BackendMessage::CopyInResponse(_) if next == Some(Expect::Results) => {
                    self.refuse_copy_in().await?;
                    failure = Some(Error::unsupported("COPY FROM STDIN is not supported"));
                }
                BackendMessage::CopyOutResponse(_) if next == Some(Expect::Results) => {
                    failure = Some(Error::unsupported("COPY TO STDOUT is not supported"));
                }
                BackendMessage::CopyData(_) | BackendMessage::CopyDone
                    if failure.as_ref().is_some_and(Error::is_unsupported) => {}
                BackendMessage::CommandComplete(_)
                    if failure.as_ref().is_some_and(Error::is_unsupported) =>
                {
                    step = steps;
                }
                BackendMessage::CopyBothResponse(_) => return Err(self.refuse_copy_both()),
                // After an error the server sends nothing but ReadyForQuery.
                other if failure.is_some() => return Err(unexpected(&other)),
                other => {
                    step = self.on_reply(other, next, step, response, keep_rows)?;
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Handles one reply in its place; returns the next step.
    fn on_reply(
        &mut self,
        msg: BackendMessage,
        next: Option<Expect>,
        step: usize,
        response: &mut Response,
        keep_rows: bool,
    ) -> Result<usize> {
        let advance = step.saturating_add(1);
        match (next, msg) {
            (Some(Expect::Close), BackendMessage::CloseComplete)
            | (Some(Expect::Parse), BackendMessage::ParseComplete)
            | (Some(Expect::Bind), BackendMessage::BindComplete) => Ok(advance),
            (Some(Expect::Parameters), BackendMessage::ParameterDescription(p)) => {
                response.parameter_types = Some(p.types);
                Ok(advance)
            }
            (Some(Expect::Shape), BackendMessage::RowDescription(rd)) => {
                let columns: Arc<[Column]> = rd
                    .fields()
                    .map(|f| Column::new(f.name, f.type_oid))
                    .collect();
                response.columns = Some(columns);
                Ok(advance)
            }
            (Some(Expect::Shape), BackendMessage::NoData) => {
                response.columns = Some(Arc::from(Vec::new()));
                Ok(advance)
            }
            (Some(Expect::Results), BackendMessage::DataRow(row)) => {
                let columns = response.columns.as_ref();
                if columns.map(|c| c.len()) != Some(row.len()) {
                    return Err(Error::protocol(WireError::ColumnCountMismatch));
                }
                if keep_rows {
                    let Some(mut r) = to_row(&row) else {
                        // Text that is not UTF-8: the session's encoding is not what we asked
                        // for, and every later query would fail the same way.
                        self.mark_broken();
                        return Err(Error::protocol(WireError::InvalidUtf8 {
                            tag: tag::backend::DATA_ROW,
                        }));
                    };
                    r.columns = columns.cloned();
                    response.rows.push(r);
                }
                Ok(step)
            }
            (Some(Expect::Results), BackendMessage::CommandComplete(tag)) => {
                self.note_command(&tag);
                response.tag = Some(tag);
                Ok(advance)
            }
            (Some(Expect::Results), BackendMessage::EmptyQueryResponse) => Ok(advance),
            (_, other) => Err(unexpected(&other)),
        }
    }
}

fn unexpected(msg: &BackendMessage) -> Error {
    Error::protocol(WireError::UnexpectedMessage { tag: msg.tag() })
}

/// An ERROR (not FATAL) 08P01 is the server refusing one malformed message of ours (a Bind
/// whose parameter count or format does not match its statement): the session goes on, and
/// it says nothing about the server going away.
fn is_statement_protocol_error(db: &DbError) -> bool {
    db.code() == "08P01" && db.severity_nonlocalized().unwrap_or(db.severity()) == "ERROR"
}

/// Refuses more than [`MAX_PARAMETERS`], and a count other than the text's highest `$n`.
pub(super) fn check_parameter_count(
    sql: &str,
    given: usize,
    standard_conforming_strings: bool,
) -> Result<()> {
    if given > MAX_PARAMETERS {
        return Err(Error::invalid_parameters(format!(
            "{given} parameters exceed the protocol's limit of {MAX_PARAMETERS}"
        )));
    }
    let used = parameter_count(sql, standard_conforming_strings);
    if used != given {
        let what = match used {
            0 => "no parameters".to_owned(),
            1 => "$1".to_owned(),
            n => format!("$1 to ${n}"),
        };
        return Err(Error::invalid_parameters(format!(
            "the query uses {what}, but {given} parameter{} were given",
            if given == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

/// Parse, Bind, Describe (portal), Execute and Sync for the unnamed statement.
fn encode_unnamed(sql: &str, params: &[&dyn ToParam], buf: &mut BytesMut) -> Result<()> {
    extended::parse("", sql, &[], buf).map_err(Error::invalid_input)?;
    encode_bind("", params, buf)?;
    extended::describe(Target::Portal, "", buf).map_err(Error::invalid_input)?;
    extended::execute("", 0, buf).map_err(Error::invalid_input)?;
    extended::sync(buf);
    Ok(())
}

/// Bind of `params` in text format to `statement`, on the unnamed portal. A NUL in a value is
/// refused: the text format cannot carry it.
pub(super) fn encode_bind(
    statement: &str,
    params: &[&dyn ToParam],
    buf: &mut BytesMut,
) -> Result<()> {
    let result = extended::bind(
        "",
        statement,
        params.len(),
        |i, buf| {
            let Some(param) = params.get(i) else {
                return Ok(false);
            };
            let at = buf.len();
            let null = param
                .to_param(&mut ParamBuf::new(buf))
                .map_err(BindFailure::Param)?;
            if buf.get(at..).unwrap_or_default().contains(&0) {
                return Err(BindFailure::Param(Error::invalid_parameters(format!(
                    "parameter ${} contains a NUL byte, which text cannot carry in \
                     PostgreSQL (send bytes as &[u8], a bytea)",
                    i.saturating_add(1)
                ))));
            }
            Ok(null == IsNull::No)
        },
        buf,
    );
    match result {
        Ok(()) => Ok(()),
        Err(BindFailure::Wire(e)) => Err(Error::invalid_input(e)),
        Err(BindFailure::Param(e)) => Err(e),
    }
}
