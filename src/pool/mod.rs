//! The pool: idle connections in a lock-free `ArrayQueue`, checkouts bounded by a FIFO
//! `tokio::sync::Semaphore` (whose permits wait in one atomic word while nobody queues), and a guard that returns its connection on drop without network
//! I/O. Behaviour follows psycopg_pool's `ConnectionPool` (sizes, timeouts, hooks, stats,
//! `getconn`/`putconn`), with background growth capped by `max_connecting`.
//!
//! Layout:
//! - `pool.rs`: the [`Pool`] facade; `builder.rs`: [`PoolBuilder`]; `guard.rs`:
//!   [`PooledConnection`]; `stats.rs`: [`PoolStats`].
//! - `core.rs`: the accounting core and its invariants; `checkout.rs`: the checkout loop;
//!   `connecting.rs`: background connects; `returning.rs`: the return path;
//!   `maintenance.rs`: the background tasks; `waiting.rs`: bounded FIFO waits with one shared
//!   watchdog instead of a timer per waiter; `permits.rs`: the semaphore plus the permits parked
//!   while nobody waits; `clock.rs`: slot times and the coarse clock that keeps clock reads off
//!   the fast path.
//! - `manage.rs`: the [`Manage`] trait the pool is generic over; `postgres.rs`: [`PgManager`].

mod builder;
mod checkout;
mod clock;
mod connecting;
mod core;
mod guard;
mod maintenance;
mod manage;
mod permits;
#[allow(clippy::module_inception)]
mod pool;
mod postgres;
mod returning;
mod stats;
mod waiting;

pub use builder::{IntoConfig, PoolBuilder, ReconnectFailed};
pub use guard::PooledConnection;
pub use manage::{BoxFuture, ConnHook, ConnState, Manage};
pub use pool::Pool;
pub use postgres::PgManager;
pub use stats::PoolStats;
