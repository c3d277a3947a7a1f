//! Work in flight that holds a slot while it waits on the server: CancelRequests of connections
//! dropped mid-query, and connect attempts. Each is registered with its start, so a checkout
//! that times out can say what holds the pool's capacity and for how long (during a network
//! stall: connections awaiting cancellation, connects unanswered).
//!
//! Slow paths only (a cancel or a connect is a round trip): a mutex over a short list.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// A set of operations in flight, each with its start.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    next: AtomicU64,
    started: Mutex<Vec<(u64, Instant)>>,
}

/// How many operations are in flight, and how long the oldest has been.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) count: usize,
    pub(crate) oldest: Duration,
}

impl InFlight {
    fn list(&self) -> MutexGuard<'_, Vec<(u64, Instant)>> {
        // Nothing panics while holding it.
        self.started.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers an operation starting now, until the returned guard drops.
    pub(crate) fn enter(&self) -> Entry<'_> {
        let id = self.next.fetch_add(1, Relaxed);
        self.list().push((id, Instant::now()));
        Entry { set: self, id }
    }

    pub(crate) fn summary(&self) -> Summary {
        let list = self.list();
        let oldest = list.iter().map(|&(_, t)| t).min();
        Summary {
            count: list.len(),
            oldest: oldest.map_or(Duration::ZERO, |t| t.elapsed()),
        }
    }
}

/// One operation in flight; dropping it ends it.
pub(crate) struct Entry<'a> {
    set: &'a InFlight,
    id: u64,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        self.set.list().retain(|&(id, _)| id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn counts_what_is_in_flight_and_ages_the_oldest() {
        let set = InFlight::default();
        assert_eq!(set.summary(), Summary::default());
        let first = set.enter();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let second = set.enter();
        let s = set.summary();
        assert_eq!((s.count, s.oldest), (2, Duration::from_secs(2)));
        drop(first);
        let s = set.summary();
        assert_eq!((s.count, s.oldest), (1, Duration::ZERO));
        drop(second);
        assert_eq!(set.summary().count, 0);
    }
}
