//! The blocking [`Transaction`]: the async [`crate::Transaction`] with every call polled on the
//! caller's thread, as the blocking guard's.
//!
//! Invariant, as the async one's: no I/O in `Drop`. A transaction dropped unfinished stays open
//! on the server, and the pool rolls it back when the connection comes back.

use std::fmt;

use super::connection::Connection;
use super::runtime::Driver;
use crate::conn::{Row, ToParam};
use crate::error::Result;

/// An open transaction on a blocking [`Connection`]: its queries block until they
/// complete. End it with [`commit`](Transaction::commit) or [`rollback`](Transaction::rollback);
/// dropped unfinished, the pool rolls it back when the connection is returned (on a connection
/// taken out of the pool, it stays open until a `ROLLBACK` or the session's end).
///
/// ```no_run
/// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
/// let mut conn = pool.connection()?;
/// let mut tx = conn.transaction()?;
/// tx.execute("UPDATE accounts SET balance = balance - $1 WHERE id = $2", &[&10i64, &1i32])?;
/// tx.execute("UPDATE accounts SET balance = balance + $1 WHERE id = $2", &[&10i64, &2i32])?;
/// tx.commit()?; // an error if any statement had failed: nothing was saved
/// # Ok(()) }
/// ```
#[must_use = "a transaction dropped unfinished stays open until the pool rolls it back"]
pub struct Transaction<'c> {
    tx: crate::Transaction<'c>,
    driver: &'c Driver,
}

impl Connection {
    /// Starts a transaction (`BEGIN`) and blocks until the server has opened it. See
    /// [`Connection::transaction`](crate::Connection::transaction).
    ///
    /// # Errors
    /// As [`Connection::transaction`](crate::Connection::transaction) (one already open is
    /// [`Error::is_transaction`](crate::Error::is_transaction)), or `InsideAsyncRuntime`.
    pub fn transaction(&mut self) -> Result<Transaction<'_>> {
        let (conn, driver) = self.parts();
        let tx = driver.block_on(conn.transaction())??;
        Ok(Transaction { tx, driver })
    }
}

impl Transaction<'_> {
    /// Runs a simple query inside the transaction. See
    /// [`Connection::simple_query`](crate::Connection::simple_query).
    ///
    /// # Errors
    /// As [`Connection::simple_query`](crate::Connection::simple_query), or
    /// `InsideAsyncRuntime`.
    pub fn simple_query(&mut self, sql: &str) -> Result<Vec<Row>> {
        self.driver.block_on(self.tx.simple_query(sql))?
    }

    /// Runs `sql` with `params` inside the transaction. See
    /// [`Connection::query`](crate::Connection::query).
    ///
    /// # Errors
    /// As [`Connection::query`](crate::Connection::query), or `InsideAsyncRuntime`.
    pub fn query(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Vec<Row>> {
        self.driver.block_on(self.tx.query(sql, params))?
    }

    /// [`query`](Transaction::query) for exactly one row.
    ///
    /// # Errors
    /// As [`Connection::query_one`](crate::Connection::query_one), or `InsideAsyncRuntime`.
    pub fn query_one(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Row> {
        self.driver.block_on(self.tx.query_one(sql, params))?
    }

    /// [`query`](Transaction::query) for at most one row.
    ///
    /// # Errors
    /// As [`Connection::query_opt`](crate::Connection::query_opt), or `InsideAsyncRuntime`.
    pub fn query_opt(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Option<Row>> {
        self.driver.block_on(self.tx.query_opt(sql, params))?
    }

    /// Runs `sql` with `params` inside the transaction; returns the rows it affected.
    ///
    /// # Errors
    /// As [`Connection::execute`](crate::Connection::execute), or `InsideAsyncRuntime`.
    pub fn execute(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<u64> {
        self.driver.block_on(self.tx.execute(sql, params))?
    }

    /// Commits (`COMMIT`). See [`crate::Transaction::commit`].
    ///
    /// # Errors
    /// [`Error::is_transaction`](crate::Error::is_transaction) if the transaction had failed
    /// (the server rolled it back: nothing was saved); otherwise as
    /// [`crate::Transaction::commit`], or `InsideAsyncRuntime` (the transaction then stays
    /// open, and the pool rolls it back on return).
    pub fn commit(self) -> Result<()> {
        self.driver.block_on(self.tx.commit())?
    }

    /// Rolls back (`ROLLBACK`) and blocks until the server has done it: nothing the
    /// transaction did is saved.
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let mut conn = pool.connection()?;
    /// let mut tx = conn.transaction()?;
    /// tx.execute("DELETE FROM jobs", &[])?;
    /// tx.rollback()?; // the jobs are still there
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`crate::Transaction::rollback`], or `InsideAsyncRuntime`.
    pub fn rollback(self) -> Result<()> {
        self.driver.block_on(self.tx.rollback())?
    }
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::Transaction")
            .field(&self.tx)
            .finish()
    }
}
