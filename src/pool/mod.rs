//! The pool: idle connections in a lock-free `ArrayQueue`, checkouts bounded by a FIFO
//! `tokio::sync::Semaphore` (whose permits wait in one atomic word while nobody queues), and a
//! guard that returns its connection on drop without network I/O. Behaviour follows
//! psycopg_pool's `ConnectionPool` (sizes, timeouts, hooks, stats, `getconn`/`putconn`), with
//! background growth capped by `max_connecting`.
//!
//! The pool is generic over [`Manage`], so its semantics are tested and benchmarked with
//! in-memory connections; [`PgManager`] is the PostgreSQL implementation, and the only place
//! the pool knows PostgreSQL.
// Layers (each file imports only from the ones above it in this list; docs/architecture.md has
// the picture):
// - leaves: `sync` (std's atomics, or loom's for the model-checked tests), `manage` (the trait),
//   `settings`, `clock`, `backoff`, `stats`, `permits`, `errors`, `hooks` (running user code),
//   `inflight` (work waiting on the server), `revoke` (reaching checked-out connections),
//   `leaks` (checkouts held too long);
// - `waiting`: bounded FIFO waits without a timer per waiter (over `permits`);
// - `core`: the accounting core, its invariants, and every method and guard that changes a count;
// - `returning` (the return path), `guard` (`PooledConnection`, over `returning`), `checkout`
//   (over `guard`), `connecting` (the grower and connect tasks), `maintenance`;
// - the facade: `facade` (`Pool`) and `builder` (`PoolBuilder`), which refer to each other, and
//   `metrics` (feature `metrics`: `Pool::export_metrics`);
// - `postgres`: `PgManager`, over `manage` and the `conn` module.

mod backoff;
mod builder;
mod checkout;
mod clock;
mod connecting;
mod core;
mod errors;
mod facade;
mod guard;
mod hooks;
mod inflight;
mod leaks;
mod maintenance;
mod manage;
#[cfg(feature = "metrics")]
mod metrics;
mod permits;
mod postgres;
mod returning;
mod revoke;
mod settings;
mod stats;
mod sync;
#[cfg(test)]
mod testing;
mod waiting;

pub use builder::PoolBuilder;
pub use facade::Pool;
pub use guard::PooledConnection;
pub use manage::{BoxFuture, ConnHook, ConnState, Eviction, Manage};
pub use postgres::{IntoConfig, PgManager};
pub use settings::ReconnectFailed;
pub use stats::{Percentiles, PoolStats};
