//! wirepool: a PostgreSQL connection pool that speaks the wire protocol itself.
//!
//! # Layout
//!
//! ```text
//! bytes ──► wire (pure codec + handshake state machine) ──► conn (socket, buffers, timeouts) ──► pool (slots, permits, guards)
//! ```
//!
//! - [`wire`] is sans-IO: encoders append to a caller's buffer, the decoder takes bytes and returns
//!   messages, and startup/authentication is a state machine that is fed messages. No sockets, no
//!   runtime, no clock: it can be fuzzed and read on its own.
//! - `conn` is the only place that touches a socket: [`Connection`] owns the stream and buffers,
//!   drives the handshake and knows the transaction status from the last ReadyForQuery.
//! - `pool` holds idle connections in a lock-free `ArrayQueue`, bounds checkouts with a FIFO
//!   `tokio::sync::Semaphore` (bypassed by one atomic word while nobody waits), and returns
//!   connections from a guard's `Drop` without network I/O.
//! - [`blocking`] sits on top of `pool`: the same pool for synchronous code, driven by one
//!   private thread per pool.
//!
//! # Example
//!
//! A pool of at most 5 connections, each checkout bounded by 5 s; a connection goes back to
//! the pool when its guard is dropped, or explicitly with `putconn`, as in psycopg_pool
//! ([`blocking::Pool`] is the same for threads):
//!
//! ```no_run
//! # async fn demo() -> wirepool::Result<()> {
//! use std::time::Duration;
//!
//! let pool = wirepool::Pool::builder("host=127.0.0.1 dbname=test_db user=postgres")
//!     .max_size(5)
//!     .timeout(Duration::from_secs(5))
//!     .open()
//!     .await?;
//! {
//!     let mut conn = pool.connection().await?;
//!     // Values travel as parameters (the extended query protocol), never inside the SQL text.
//!     let row = conn.query_one("SELECT $1::int8 * 2 AS twice", &[&21i64]).await?;
//!     assert_eq!(row.try_get::<i64, _>("twice")?, 42);
//! } // back in the pool
//! let mut conn = pool.getconn().await?;
//! let rows = conn.simple_query("SELECT 1, NULL").await?;
//! assert_eq!((rows[0].get(0), rows[0].get(1)), (Some("1"), None));
//! pool.putconn(conn)?;
//! pool.close().await;
//! # Ok(()) }
//! ```

pub mod blocking;
pub mod config;
pub mod conn;
mod error;
// The fuzz target bodies: built for cargo-fuzz (which sets `--cfg fuzzing`) and for this crate's
// own unit tests (which replay the committed corpora), never for a user's build.
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzzing;
pub mod pool;
pub mod wire;

pub use config::Config;
pub use conn::{CancelToken, Connection, Listener, Notification, Row, ToParam, Transaction};
pub use error::{Error, PoolTimeoutInfo, Result};
pub use pool::{Pool, PoolBuilder, PoolStats, PooledConnection};
pub use wire::{DbError, TransactionStatus};

/// The README's Rust examples, compiled by `cargo test --doc` so that what a user pastes builds.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
