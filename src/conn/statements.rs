//! The opt-in statement cache: named prepared statements per connection, keyed by the SQL
//! text, bounded by a least-recently-used capacity.
//!
//! - A miss sends, in one write: Close for any statement due to go, Parse (a new name unique on
//!   this connection, `wirepool_<n>`), Describe of the statement (its parameter count and row
//!   shape, kept with the entry), Bind, Execute, Sync. A hit sends Bind, Execute, Sync: no
//!   parse, no plan search, no RowDescription. Never a Sync between Parse and Bind.
//! - Eviction uses the protocol's Close message, never SQL `DEALLOCATE`: PgBouncer ≥ 1.21
//!   (`max_prepared_statements`) tracks Close, and Close costs no extra round trip (it rides
//!   with the next query that uses the cache).
//! - A cached statement that fails with 0A000 ("cached plan must not change result type",
//!   after DDL) or 26000 (it does not exist, e.g. a pooler moved us to another server) is
//!   dropped, closed, and the query retried once as a miss, only when the error left the
//!   session outside a transaction block: inside one, the transaction has failed and a retry
//!   could not succeed, so the error is returned.
//! - `DISCARD ALL` and `DEALLOCATE ALL` (a pool's reset) drop every statement on the server:
//!   their command tags empty the cache.
//!
//! Invariant: an entry exists only for a statement the server confirmed (ParseComplete,
//! ParameterDescription and RowDescription/NoData all received), so a name in the cache is
//! never parsed twice ("prepared statement already exists").

use std::collections::HashMap;
use std::sync::Arc;

use super::columns::Column;
use super::extended::{check_parameter_count, encode_bind, Expect, Response};
use super::params::ToParam;
use super::Connection;
use crate::error::{Error, Result};
use crate::wire::extended::{self, Target};
use crate::wire::{CommandTag, TransactionStatus};

/// Close, Parse, Describe (statement), Bind, Execute: a miss.
const MISS: &[Expect] = &[
    Expect::Parse,
    Expect::Parameters,
    Expect::Shape,
    Expect::Bind,
    Expect::Results,
];

/// Bind, Execute: a hit.
const HIT: &[Expect] = &[Expect::Bind, Expect::Results];

#[derive(Debug)]
pub(super) struct StatementCache {
    capacity: usize,
    entries: HashMap<String, Entry>,
    /// Bumped on every use; an entry's `used` is the clock when it was last used.
    clock: u64,
    /// The number in the next statement's name.
    next_id: u64,
    /// Statements to Close with the next write that uses the cache.
    to_close: Vec<String>,
}

#[derive(Debug)]
struct Entry {
    name: String,
    columns: Arc<[Column]>,
    parameters: usize,
    used: u64,
}

impl StatementCache {
    fn new(capacity: usize) -> StatementCache {
        StatementCache {
            capacity,
            entries: HashMap::new(),
            clock: 0,
            next_id: 0,
            to_close: Vec::new(),
        }
    }

    /// Moves least recently used entries to `to_close` until at most `keep` remain.
    fn evict_down_to(&mut self, keep: usize) {
        while self.entries.len() > keep {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(sql, _)| sql.clone())
            else {
                return;
            };
            if let Some(entry) = self.entries.remove(&oldest) {
                self.to_close.push(entry.name);
            }
        }
    }

    /// Drops `sql`'s entry and closes its statement with the next write.
    fn forget(&mut self, sql: &str) {
        if let Some(entry) = self.entries.remove(sql) {
            self.to_close.push(entry.name);
        }
    }
}

/// Whether a cached statement's error means "prepare it again": 0A000 (cached plan must not
/// change result type) or 26000 (invalid_sql_statement_name: it does not exist).
fn stale(e: &Error) -> bool {
    matches!(e.code(), Some("0A000" | "26000"))
}

impl Connection {
    /// Turns the statement cache on with room for `capacity` statements, or off with 0 (off is
    /// the default). With it on, [`query`](Connection::query) and friends prepare each distinct
    /// SQL text once as a named statement and later send only its parameters: one round trip
    /// either way, and no parse or plan search on the server after the first.
    ///
    /// Named statements live in one server session. Behind a pooler in transaction mode, turn
    /// the cache on only with PgBouncer ≥ 1.21 and `max_prepared_statements` set; the default
    /// (off: the unnamed statement) is safe behind any pooler. Lowering the capacity closes the
    /// least recently used statements with the next query that uses the cache; turning it off
    /// leaves the statements already prepared on the server until the session ends or is reset.
    ///
    /// ```no_run
    /// # async fn demo(conn: &mut wirepool::Connection) -> Result<(), wirepool::Error> {
    /// conn.set_statement_cache_capacity(100);
    /// for id in 1..=3i32 {
    ///     conn.query("SELECT $1::int4 * 2", &[&id]).await?; // parsed once
    /// }
    /// # Ok(()) }
    /// ```
    pub fn set_statement_cache_capacity(&mut self, capacity: usize) {
        match (&mut self.inner.statements, capacity) {
            (_, 0) => self.inner.statements = None,
            (Some(cache), n) => {
                cache.capacity = n;
                cache.evict_down_to(n);
            }
            (None, n) => self.inner.statements = Some(Box::new(StatementCache::new(n))),
        }
    }

    /// The statement cache's capacity (0: off).
    pub fn statement_cache_capacity(&self) -> usize {
        self.inner.statements.as_ref().map_or(0, |c| c.capacity)
    }

    /// The number of statements the cache holds prepared on the server.
    pub fn cached_statements(&self) -> usize {
        self.inner
            .statements
            .as_ref()
            .map_or(0, |c| c.entries.len())
    }

    /// Empties the cache when a command dropped every prepared statement of the session.
    pub(super) fn note_statements_dropped(&mut self, tag: &CommandTag) {
        if let Some(cache) = &mut self.inner.statements {
            if matches!(tag.as_str(), "DISCARD ALL" | "DEALLOCATE ALL") {
                cache.entries.clear();
                cache.to_close.clear();
            }
        }
    }

    /// A query through the cache, retried once as a miss when its cached statement went stale
    /// outside a transaction block (module header).
    pub(super) async fn cached_query(
        &mut self,
        sql: &str,
        params: &[&dyn ToParam],
        keep_rows: bool,
    ) -> Result<Response> {
        self.prepare_to_send().await?;
        match self.cached_once(sql, params, keep_rows).await {
            Err((true, e))
                if stale(&e)
                    && !self.is_broken()
                    && self.transaction_status() == TransactionStatus::Idle =>
            {
                tracing::debug!(
                    code = e.code(),
                    "cached statement went stale; preparing again"
                );
                self.cached_once(sql, params, keep_rows)
                    .await
                    .map_err(|(_, e)| e)
            }
            result => result.map_err(|(_, e)| e),
        }
    }

    /// One attempt; an error says whether the statement was a hit (then it was dropped from
    /// the cache if it went stale).
    async fn cached_once(
        &mut self,
        sql: &str,
        params: &[&dyn ToParam],
        keep_rows: bool,
    ) -> std::result::Result<Response, (bool, Error)> {
        let inner = &mut *self.inner;
        let Some(cache) = inner.statements.as_deref_mut() else {
            return Err((false, Error::closed()));
        };
        let buf = &mut inner.io.wbuf;
        let start = buf.len();
        cache.clock = cache.clock.wrapping_add(1);
        let mut response = Response::default();
        let hit = cache.entries.contains_key(sql);
        if !hit {
            let scs = inner
                .params
                .get("standard_conforming_strings")
                .map(String::as_str);
            check_parameter_count(sql, params.len(), scs != Some("off")).map_err(|e| (false, e))?;
            cache.evict_down_to(cache.capacity.saturating_sub(1));
        }
        let closes = std::mem::take(&mut cache.to_close);
        let encoded = (|| {
            for name in &closes {
                extended::close(Target::Statement, name, buf).map_err(Error::invalid_input)?;
            }
            if let Some(entry) = cache.entries.get_mut(sql) {
                if entry.parameters != params.len() {
                    return Err(Error::invalid_parameters(format!(
                        "the statement takes {} parameters, but {} were given",
                        entry.parameters,
                        params.len()
                    )));
                }
                entry.used = cache.clock;
                response.columns = Some(Arc::clone(&entry.columns));
                encode_bind(&entry.name, params, buf)?;
                extended::execute("", 0, buf).map_err(Error::invalid_input)?;
                extended::sync(buf);
                return Ok(None);
            }
            let name = format!("wirepool_{}", cache.next_id);
            cache.next_id = cache.next_id.wrapping_add(1);
            extended::parse(&name, sql, &[], buf).map_err(Error::invalid_input)?;
            extended::describe(Target::Statement, &name, buf).map_err(Error::invalid_input)?;
            encode_bind(&name, params, buf)?;
            extended::execute("", 0, buf).map_err(Error::invalid_input)?;
            extended::sync(buf);
            Ok(Some(name))
        })();
        let new_name = match encoded {
            Ok(name) => name,
            Err(e) => {
                // Nothing was sent: the statements due to go still are.
                buf.truncate(start);
                cache.to_close = closes;
                return Err((false, e));
            }
        };
        let expect = if hit { HIT } else { MISS };
        let result = self
            .send_and_read(closes.len(), expect, keep_rows, &mut response)
            .await;
        if let Some(name) = new_name {
            self.remember(sql, name, &response);
        }
        match result {
            Ok(()) => Ok(response),
            Err(e) => {
                if hit && stale(&e) {
                    if let Some(cache) = &mut self.inner.statements {
                        cache.forget(sql);
                    }
                }
                Err((hit, e))
            }
        }
    }

    /// Caches a statement the server confirmed (module invariant), even if its Bind or
    /// Execute then failed: it exists on the server either way.
    fn remember(&mut self, sql: &str, name: String, response: &Response) {
        let (Some(types), Some(columns)) = (&response.parameter_types, &response.columns) else {
            return;
        };
        if self.is_broken() {
            return;
        }
        if let Some(cache) = &mut self.inner.statements {
            let entry = Entry {
                name,
                columns: Arc::clone(columns),
                parameters: types.len(),
                used: cache.clock,
            };
            cache.entries.insert(sql.to_owned(), entry);
        }
    }
}
