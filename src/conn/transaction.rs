//! [`Transaction`]: `BEGIN` on [`Connection::transaction`], then [`commit`](Transaction::commit)
//! or [`rollback`](Transaction::rollback).
//!
//! Invariants:
//! - no I/O in `Drop`: a transaction dropped unfinished stays open on the server (status `T`,
//!   or `E` after an error); a pool's return path sees that status and rolls it back in the
//!   background before anyone else gets the connection, and a bare connection refuses a new
//!   `transaction()` until it is ended;
//! - `commit` reports what the server did, from COMMIT's command tag: the server answers
//!   `COMMIT` in a failed transaction with the tag `ROLLBACK` and no error, and that is an
//!   error here ([`Error::is_transaction`]), never a silent `Ok` with the work gone.

use std::ops::{Deref, DerefMut};

use super::Connection;
use crate::error::{Error, Result};
use crate::wire::TransactionStatus;

/// An open transaction on a [`Connection`]; derefs to it, so queries run inside it.
///
/// End it with [`commit`](Transaction::commit) or [`rollback`](Transaction::rollback). Dropped
/// unfinished, it stays open on the server (no I/O in `Drop`): a pool rolls it back when the
/// connection comes back; on a bare connection, roll it back yourself
/// (`conn.simple_query("ROLLBACK")`).
///
/// ```no_run
/// # async fn demo(conn: &mut wirepool::Connection) -> Result<(), wirepool::Error> {
/// let mut tx = conn.transaction().await?;
/// tx.execute("UPDATE accounts SET balance = balance - $1 WHERE id = $2", &[&10i64, &1i32])
///     .await?;
/// tx.execute("UPDATE accounts SET balance = balance + $1 WHERE id = $2", &[&10i64, &2i32])
///     .await?;
/// tx.commit().await?; // an error if any statement had failed: nothing was saved
/// # Ok(()) }
/// ```
#[must_use = "a transaction dropped unfinished stays open until it is rolled back"]
#[derive(Debug)]
pub struct Transaction<'c> {
    conn: &'c mut Connection,
}

impl Connection {
    /// Starts a transaction (`BEGIN`).
    ///
    /// # Cancel safety
    /// As [`simple_query`](Connection::simple_query): dropped mid-call, the connection is left
    /// busy and the pool discards it.
    ///
    /// # Errors
    /// [`Error::is_transaction`] if the connection is already inside a transaction block (a
    /// `Transaction` dropped unfinished, or a `BEGIN` of your own): nothing is sent. Otherwise
    /// as [`simple_query`](Connection::simple_query).
    pub async fn transaction(&mut self) -> Result<Transaction<'_>> {
        self.prepare_to_send().await?;
        if self.transaction_status() != TransactionStatus::Idle {
            return Err(Error::transaction(
                "a transaction is already open on this connection: end it first (ROLLBACK)",
            ));
        }
        self.simple_query("BEGIN").await?;
        if self.transaction_status() != TransactionStatus::InTransaction {
            return Err(Error::transaction("BEGIN did not open a transaction block"));
        }
        Ok(Transaction { conn: self })
    }
}

impl Transaction<'_> {
    /// Commits (`COMMIT`).
    ///
    /// # Cancel safety
    /// As [`simple_query`](Connection::simple_query): dropped mid-call, the connection is left
    /// busy, the pool discards it, and whether the commit happened is unknown.
    ///
    /// # Errors
    /// [`Error::is_transaction`] if the transaction had failed (a statement in it returned an
    /// error): the server rolled it back instead, and the connection is idle again. A server
    /// error at commit (a deferred constraint, a serialization failure: [`Error::is_db`]) also
    /// means nothing was saved. Otherwise as [`Connection::execute`].
    pub async fn commit(self) -> Result<()> {
        let response = self.conn.unnamed_query("COMMIT", &[], false).await?;
        match response.tag.as_ref().map(|t| t.as_str()) {
            Some("COMMIT") => Ok(()),
            Some("ROLLBACK") => Err(Error::transaction(
                "COMMIT was answered with ROLLBACK: the transaction had failed, and none of \
                 its work was saved",
            )),
            _ => Err(Error::transaction("COMMIT was not acknowledged")),
        }
    }

    /// Rolls back (`ROLLBACK`).
    ///
    /// # Cancel safety
    /// As [`simple_query`](Connection::simple_query): dropped mid-call, the connection is left
    /// busy and the pool discards it (the server rolls back when the session ends).
    ///
    /// # Errors
    /// As [`Connection::execute`].
    pub async fn rollback(self) -> Result<()> {
        self.conn.unnamed_query("ROLLBACK", &[], false).await?;
        Ok(())
    }
}

impl Deref for Transaction<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl DerefMut for Transaction<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn
    }
}
