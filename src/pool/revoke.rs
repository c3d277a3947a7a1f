//! Reaching connections the pool does not hold: each connection carries a [`Revocable`] (one
//! `Arc`, made when it opens, which also keeps the slot's generation, so the slot stays four
//! words) with its `Manage::prepare_cancel`, and the pool keeps a weak
//! reference to each. When `Pool::close_timeout`'s grace ends, the pool cancels the server work
//! of every connection still checked out without owning any of them (their guards close them
//! when they come back: the pool is closed).
//!
//! Nothing here runs on a checkout or a return: a handle is made once per connection, and the
//! registry is read only by `close_timeout`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use super::manage::BoxFuture;

/// What a connection's slot keeps behind one pointer: the pool's generation when it opened,
/// and its prepared cancel, taken at most once.
pub(crate) struct Revocable {
    generation: u64,
    cancel: Mutex<Option<BoxFuture<'static, ()>>>,
}

impl Revocable {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
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
}
