//! [`PooledConnection`]: a checked-out connection and the permit it holds. Dropping it (or
//! handing it to `Pool::putconn`) takes the one return path, `Core::return_slot`, which does no
//! I/O: the connection goes back idle, or to a background rollback, or is closed.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::clock::Nanos;
use super::core::{Core, Permit, Slot};
use super::manage::Manage;
use super::postgres::PgManager;

/// A connection checked out of a [`Pool`](super::Pool); derefs to the connection and returns it
/// to the pool when dropped.
///
/// A guard from `getconn` is *explicit*: it should go back with `putconn`. Dropping it anyway
/// still returns it (nothing leaks), with a warning, since it usually means a missed `putconn`.
///
/// ```no_run
/// # async fn demo(pool: wirepool::Pool) -> wirepool::Result<()> {
/// let mut conn = pool.connection().await?;
/// conn.simple_query("SELECT 1").await?;
/// drop(conn); // back in the pool, no network I/O in drop
/// # Ok(()) }
/// ```
#[must_use = "dropping the guard returns the connection at once"]
#[clippy::has_significant_drop]
pub struct PooledConnection<M: Manage = PgManager> {
    /// `Some` until dropped or taken apart by the checkout loop.
    inner: Option<(Slot<M::Connection>, Permit<M>)>,
    /// When the checkout got it, if `usage_stats` is on, else `NEVER`. A plain integer: an
    /// `Option<Instant>` here made the guard's moves slow (its niche sits in a 4-byte field, and
    /// copying the guard through `Result`/`Poll` then loads across narrower stores, which the
    /// CPU cannot forward: the hottest loads of the checkout in `perf annotate`).
    since: Nanos,
    /// 1 for a guard from `getconn` (see above), else 0. A whole word, not a `bool`, for the
    /// same reason: a `bool`'s spare values became the niche that holds the tag of every
    /// `Result<PooledConnection, _>` and `Poll` wrapping the guard, so the checkout's layers
    /// wrote that tag as one byte and then copied the guard with wider loads across it. A word
    /// has no niche, the tag gets a word of its own (`Result` grows from 48 to 56 bytes), and
    /// an A/B gave +5–13 % on the uncontended cycle (`WIREPOOL_BENCH_PROFILE=0:1:4:0`).
    explicit: u64,
}

impl<M: Manage> PooledConnection<M> {
    /// `since`: when the checkout got it, for `usage_ms` (`NEVER` unless `usage_stats` is on).
    pub(crate) fn new(slot: Slot<M::Connection>, permit: Permit<M>, since: Nanos) -> Self {
        PooledConnection {
            inner: Some((slot, permit)),
            since,
            explicit: 0,
        }
    }

    pub(crate) fn set_explicit(&mut self, explicit: bool) {
        self.explicit = u64::from(explicit);
    }

    /// Takes the guard apart without returning anything (the checkout loop discards a
    /// connection that failed `check` but keeps the permit).
    pub(crate) fn into_parts(mut self) -> Option<(Slot<M::Connection>, Permit<M>)> {
        self.inner.take()
    }

    /// The pool this connection belongs to (the `putconn` identity check).
    pub(crate) fn core(&self) -> Option<&Arc<Core<M>>> {
        self.inner.as_ref().map(|(_, permit)| &permit.core)
    }

    fn slot(&self) -> &Slot<M::Connection> {
        match &self.inner {
            Some((slot, _)) => slot,
            None => unreachable!("a PooledConnection holds its slot until dropped"),
        }
    }

    fn slot_mut(&mut self) -> &mut Slot<M::Connection> {
        match &mut self.inner {
            Some((slot, _)) => slot,
            None => unreachable!("a PooledConnection holds its slot until dropped"),
        }
    }
}

impl<M: Manage> Deref for PooledConnection<M> {
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        &self.slot().conn
    }
}

impl<M: Manage> DerefMut for PooledConnection<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self.slot_mut().conn
    }
}

impl<M: Manage> Drop for PooledConnection<M> {
    fn drop(&mut self) {
        if let Some((slot, permit)) = self.inner.take() {
            if self.explicit != 0 {
                tracing::warn!(pool = %permit.core.name(), "connection from getconn() dropped without putconn(); returning it");
            }
            Core::return_slot(slot, permit, self.since);
        }
    }
}

impl<M: Manage> fmt::Debug for PooledConnection<M>
where
    M::Connection: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("PooledConnection");
        if let Some((slot, permit)) = &self.inner {
            d.field("pool", &permit.core.name())
                .field("conn", &slot.conn);
        }
        d.field("explicit", &(self.explicit != 0)).finish()
    }
}
