//! The pool for synchronous code: [`Pool`], [`PoolBuilder`], [`PooledConnection`] (which
//! derefs to a [`Connection`]), [`Transaction`], [`CancelToken`] and [`Listener`], with the
//! async pool's names and psycopg_pool's `ConnectionPool` behaviour, callable from any thread.
//!
//! ```no_run
//! use std::time::Duration;
//! use wirepool::blocking::Pool;
//!
//! let pool = Pool::builder("host=127.0.0.1 dbname=test_db user=postgres")
//!     .min_size(1)
//!     .max_size(5)
//!     .timeout(Duration::from_secs(5))
//!     .open()?;
//! let mut conn = pool.connection()?; // Python: `with pool.connection() as conn:`
//! let rows = conn.simple_query("SELECT 1")?;
//! assert_eq!(rows[0].get(0), Some("1"));
//! # Ok::<(), wirepool::Error>(())
//! ```
//!
//! # How it runs
//!
//! Each pool owns one OS thread (`wirepool-NAME`) running a current-thread tokio runtime for
//! the pool's whole life, so background growth, maintenance, rollbacks of returned connections
//! and checkout deadlines keep working between calls. A blocking call does not send its work
//! to that thread: it polls the async pool's future on the caller's own thread, with the
//! pool's runtime entered, and parks between polls; the pool thread's I/O driver unparks it
//! when the socket is ready. A pooled `SELECT 1` (checkout, query, return) therefore costs one
//! cross-thread wake-up, the reply's. Sending each call to the pool thread and its answer back
//! (the `reqwest::blocking` design) costs two per call, four for a checkout and a query, and
//! runs every caller's protocol work on that one thread; it measures costlier in client CPU per
//! query. A multi-thread runtime with one worker driving the I/O, in place of the dedicated
//! thread, costs about the same per call; the dedicated thread also owns its runtime, so after
//! the last handle is gone it can finish closing connections and drop the runtime itself.
//! docs/performance.md ("Blocking client") measures the designs side by side, with r2d2_postgres
//! and psycopg_pool.
//!
//! # Inside an async runtime
//!
//! A call that would block, made from a thread that is polling async tasks (inside
//! `#[tokio::main]`, a spawned task, or `block_on`), returns
//! [`Error::is_inside_async_runtime`](crate::Error::is_inside_async_runtime) instead of
//! stalling that thread or panicking ("Cannot start a runtime from within a runtime",
//! rust-postgres#639, #1058): use the async [`crate::Pool`] there, or
//! `tokio::task::spawn_blocking`, where blocking calls work. Calls that never block
//! (`putconn`, `stats`, `resize`, `drain`, `take`, the connection's accessors) and drops work
//! anywhere; dropping a pool, a guard, a connection or a listener never panics ("Cannot drop a
//! runtime in a context where blocking is not allowed", reqwest#1017).
//!
//! ```
//! use std::time::Duration;
//! let pool = wirepool::blocking::Pool::builder("host=/nonexistent").min_size(0).max_size(1).open()?;
//! let rt = tokio::runtime::Runtime::new()?;
//! rt.block_on(async {
//!     let err = pool.wait(Duration::ZERO).unwrap_err();
//!     assert!(err.is_inside_async_runtime());
//!     let pool = pool.clone();
//!     tokio::task::spawn_blocking(move || pool.wait(Duration::ZERO)).await.unwrap()
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod builder;
mod connection;
mod guard;
mod listener;
mod pool;
mod runtime;
mod transaction;

pub use crate::pool::PoolStats;
pub use builder::PoolBuilder;
pub use connection::Connection;
pub use guard::{CancelToken, PooledConnection};
pub use listener::Listener;
pub use pool::Pool;
pub use transaction::Transaction;
