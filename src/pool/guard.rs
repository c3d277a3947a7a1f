//! [`PooledConnection`]: a checked-out connection and the permit it holds. Dropping it (or
//! handing it to `Pool::putconn`) takes the one return path (`returning.rs`), which does no
//! I/O: the connection goes back idle, or to a background rollback, or is closed.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::clock::Nanos;
use super::core::{Core, Permit, Slot};
use super::manage::Manage;
use super::postgres::PgManager;
use super::returning::return_slot;

/// A connection checked out of a [`Pool`](super::Pool); derefs to the connection and returns it
/// to the pool when dropped.
///
/// A guard from `getconn` is *explicit*: it should go back with `putconn`. Dropping it anyway
/// still returns it (nothing leaks), with a warning, since it usually means a missed `putconn`.
///
/// ```
/// # use wirepool::pool::{ConnState, Manage};
/// # struct Counter;
/// # impl Manage for Counter {
/// #     type Connection = u32;
/// #     async fn connect(&self) -> wirepool::Result<u32> { Ok(0) }
/// #     fn state(&self, _: &u32) -> ConnState { ConnState::Idle }
/// #     fn check_closed(&self, _: &mut u32) -> bool { false }
/// #     async fn ping(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
/// #     async fn rollback(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
/// #     fn cancel(&self, _: &u32) -> impl std::future::Future<Output = ()> + Send + 'static {
/// #         async {}
/// #     }
/// #     async fn close(&self, _: u32) {}
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let pool = wirepool::Pool::builder_for(Counter).max_size(1).open().await?;
/// let mut conn = pool.connection().await?;
/// *conn += 1; // a `Connection`'s methods, through `DerefMut`
/// drop(conn); // back in the pool, no I/O in drop
/// assert_eq!(*pool.connection().await?, 1, "the same connection again");
/// # Ok::<(), wirepool::Error>(()) }).unwrap();
/// ```
#[must_use = "dropping the guard returns the connection at once"]
#[clippy::has_significant_drop]
pub struct PooledConnection<M: Manage = PgManager> {
    /// `Some` until dropped, taken, or taken apart by the checkout loop.
    inner: Option<(Slot<M::Connection>, Permit<M>)>,
    /// When the checkout got it, if `usage_stats` is on, else `Nanos::NEVER`.
    since: Nanos,
    flags: Flags,
}

/// Bit 0: from `getconn` (explicit); bits 1..: the leak watch's key for this checkout (0: not
/// watched). Kept as a whole word: a `bool` has spare values, which the compiler uses as the
/// niche for the tag of every `Result<PooledConnection, _>` and `Poll` around the guard; the
/// tag is then written as one byte and the guard copied with wider loads across it, which the
/// CPU cannot forward from the store. A word has no niche, so the tag gets a word of its own.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Flags(u64);

impl Flags {
    fn explicit(self) -> bool {
        self.0 & 1 != 0
    }

    fn with_explicit(self, on: bool) -> Self {
        Flags((self.0 & !1) | u64::from(on))
    }

    fn leak_key(self) -> u64 {
        self.0 >> 1
    }
}

impl<M: Manage> PooledConnection<M> {
    /// `since`: when the checkout got it, for `usage_ms` (`Nanos::NEVER` unless `usage_stats`).
    /// `leak_key`: its registration with the leak watch (`leaks.rs`), 0 if not watched.
    pub(crate) fn new(
        slot: Slot<M::Connection>,
        permit: Permit<M>,
        since: Nanos,
        leak_key: u64,
    ) -> Self {
        PooledConnection {
            inner: Some((slot, permit)),
            since,
            flags: Flags(leak_key << 1),
        }
    }

    pub(crate) fn set_explicit(&mut self, explicit: bool) {
        self.flags = self.flags.with_explicit(explicit);
    }

    /// Ends the leak watch of this checkout, if any. Out of line: only a pool with leak
    /// detection on gets here with a key.
    #[cold]
    #[inline(never)]
    fn unwatch(&mut self, core: &Core<M>) {
        let key = self.flags.leak_key();
        if key == 0 {
            return;
        }
        self.flags = Flags(self.flags.0 & 1);
        if let Some(held) = core.leaks().and_then(|leaks| leaks.leave(key)) {
            tracing::info!(pool = %core.name(), held_ms = held.as_millis() as u64, "a connection reported as leaked was returned");
        }
    }

    /// Takes the guard apart without returning anything (the checkout loop discards a
    /// connection that failed `check` but keeps the permit).
    pub(crate) fn into_parts(mut self) -> Option<(Slot<M::Connection>, Permit<M>)> {
        let (slot, permit) = self.inner.take()?;
        self.unwatch(permit.core());
        Some((slot, permit))
    }

    /// The pool this connection belongs to (the `putconn` identity check).
    pub(crate) fn core(&self) -> Option<&Arc<Core<M>>> {
        self.inner.as_ref().map(|(_, permit)| permit.core())
    }

    /// Detaches the connection from the pool for good (deadpool's `Object::take`): the pool
    /// forgets it, frees its place (it may open a replacement), and the caller owns it: close
    /// it, or drop it.
    ///
    /// ```
    /// # use wirepool::pool::{ConnState, Manage, PooledConnection};
    /// # struct Counter;
    /// # impl Manage for Counter {
    /// #     type Connection = u32;
    /// #     async fn connect(&self) -> wirepool::Result<u32> { Ok(7) }
    /// #     fn state(&self, _: &u32) -> ConnState { ConnState::Idle }
    /// #     fn check_closed(&self, _: &mut u32) -> bool { false }
    /// #     async fn ping(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     async fn rollback(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     fn cancel(&self, _: &u32) -> impl std::future::Future<Output = ()> + Send + 'static {
    /// #         async {}
    /// #     }
    /// #     async fn close(&self, _: u32) {}
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let pool = wirepool::Pool::builder_for(Counter).max_size(1).open().await?;
    /// let conn: u32 = PooledConnection::take(pool.connection().await?);
    /// assert_eq!(conn, 7);
    /// let again = pool.connection().await?; // a new connection took its place
    /// # drop(again);
    /// # Ok::<(), wirepool::Error>(()) }).unwrap();
    /// ```
    pub fn take(mut this: Self) -> M::Connection {
        let (slot, permit) = this
            .inner
            .take()
            .unwrap_or_else(|| unreachable!("a PooledConnection holds its slot until dropped"));
        tracing::debug!(pool = %permit.core().name(), "connection taken out of the pool");
        this.unwatch(permit.core());
        permit.release_detached();
        slot.conn
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
            if self.flags.0 != 0 {
                if self.flags.explicit() {
                    tracing::warn!(pool = %permit.core().name(), "connection from getconn() dropped without putconn(); returning it");
                }
                self.unwatch(permit.core());
            }
            return_slot(slot, permit, self.since);
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
            d.field("pool", &permit.core().name())
                .field("conn", &slot.conn);
        }
        d.field("explicit", &self.flags.explicit()).finish()
    }
}
