//! Reaching connections the pool does not hold: each connection carries a [`Revocable`] (one
//! `Arc`, made when it opens, which also keeps the slot's generation, so the slot stays four
//! words) with its `Manage::prepare_cancel`, and the pool keeps a weak
//! reference to each. When `Pool::close_timeout`'s grace ends, the pool cancels the server work
//! of every connection still checked out without owning any of them (their guards close them
//! when they come back: the pool is closed). The leak watch (`leaks.rs`, with
//! `cancel_leaked` on) cancels one leaked connection the same way, and marks it revoked.
//!
//! Invariant: a connection whose prepared cancel was sent is never reused (the pool is closed,
//! or the connection is revoked and its return closes it), so a cancel that lands late cannot
//! hit another checkout's query.
//!
//! Nothing here runs on a checkout or a return: a handle is made once per connection, the
//! registry is read only by `close_timeout`, and the revoked flag only by a return in a pool
//! with `cancel_leaked` on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use super::manage::BoxFuture;

/// What a connection's slot keeps behind one pointer: the pool's generation when it opened,
/// and its prepared cancel, taken at most once.
pub(crate) struct Revocable {
    generation: u64,
    /// Set when its prepared cancel was taken while the pool stays open: its return closes it.
    revoked: AtomicBool,
    cancel: Mutex<Option<BoxFuture<'static, ()>>>,
}

impl Revocable {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Takes the prepared cancel to send it while the connection is checked out, and marks the
    /// connection revoked: never to be reused. `None` if it has none (or it was taken).
    ///
    /// The caller must know the checkout is still in progress (the leak watch holds the lock
    /// its `leave` takes), so that the return that follows sees the mark.
    pub(crate) fn revoke(&self) -> Option<BoxFuture<'static, ()>> {
        let cancel = self.take()?;
        self.revoked.store(true, Ordering::Release);
        Some(cancel)
    }

    /// Whether [`revoke`](Self::revoke) took its cancel.
    pub(crate) fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }

    fn take(&self) -> Option<BoxFuture<'static, ()>> {
        self.cancel
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Weak references to every live connection's [`Revocable`].
#[derive(Default)]
pub(crate) struct Registry(Mutex<Vec<Weak<Revocable>>>);

impl Registry {
    fn list(&self) -> MutexGuard<'_, Vec<Weak<Revocable>>> {
        // Nothing panics while holding it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The handle of a new connection opened in `generation`, whose prepared cancel is
    /// `cancel` (`Manage::prepare_cancel`); with one, it stays reachable for as long as the
    /// handle lives. Forgets the handles of connections gone since.
    pub(crate) fn register(
        &self,
        generation: u64,
        cancel: Option<BoxFuture<'static, ()>>,
    ) -> Arc<Revocable> {
        let reachable = cancel.is_some();
        let handle = Arc::new(Revocable {
            generation,
            revoked: AtomicBool::new(false),
            cancel: Mutex::new(cancel),
        });
        if reachable {
            let mut list = self.list();
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(&handle));
        }
        handle
    }

    /// The prepared cancels of every connection alive now (each given out once).
    pub(crate) fn take_live(&self) -> Vec<BoxFuture<'static, ()>> {
        let live: Vec<Arc<Revocable>> = self.list().iter().filter_map(Weak::upgrade).collect();
        live.iter().filter_map(|r| r.take()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    #[tokio::test]
    async fn only_live_connections_are_reached_and_each_once() {
        let cancelled = Arc::new(AtomicUsize::new(0));
        let registry = Registry::default();
        let cancel = || -> Option<BoxFuture<'static, ()>> {
            let c = Arc::clone(&cancelled);
            Some(Box::pin(async move {
                c.fetch_add(1, SeqCst);
            }))
        };
        let _none = registry.register(0, None);
        assert!(registry.list().is_empty(), "nothing prepared, nothing held");
        let kept = registry.register(1, cancel());
        assert_eq!(kept.generation(), 1);
        let gone = registry.register(1, cancel());
        drop(gone);
        for fut in registry.take_live() {
            fut.await;
        }
        assert_eq!(cancelled.load(SeqCst), 1);
        assert!(registry.take_live().is_empty(), "given out once");
        let _third = registry.register(1, cancel());
        assert_eq!(registry.list().len(), 2, "the gone one was forgotten");
        drop(kept);
    }

    #[tokio::test]
    async fn a_revoked_connection_gives_its_cancel_once_and_stays_marked() {
        let cancelled = Arc::new(AtomicUsize::new(0));
        let registry = Registry::default();
        let c = Arc::clone(&cancelled);
        let conn = registry.register(
            0,
            Some(Box::pin(async move {
                c.fetch_add(1, SeqCst);
            })),
        );
        assert!(!conn.is_revoked());
        conn.revoke().expect("its prepared cancel").await;
        assert_eq!(cancelled.load(SeqCst), 1);
        assert!(conn.is_revoked());
        assert!(conn.revoke().is_none(), "given out once");
        assert!(
            registry.take_live().is_empty(),
            "close_timeout does not send it again"
        );
        let none = registry.register(0, None);
        assert!(
            none.revoke().is_none() && !none.is_revoked(),
            "nothing to send, not revoked"
        );
    }
}
