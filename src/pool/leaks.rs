//! Leak detection (HikariCP's `leakDetectionThreshold`): with a threshold set, each checkout
//! registers when and where (`#[track_caller]`) it took its connection, and the watch task
//! (`maintenance::watch_leaks`) reports, once, every connection held longer than the threshold,
//! with that call site. With `cancel_leaked` on, it also sends the connection's prepared
//! cancel (`revoke.rs`) while still holding the lock the checkout's return must take to leave,
//! so that return sees the connection revoked and closes it instead of reusing it.
//!
//! Off (the default) none of this exists: a checkout tests one `Option` and moves on. On, a
//! checkout and its return each take a mutex on their own thread's stripe (`stats::stripe`), so
//! threads do not contend for one lock.

use std::panic::Location;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use tokio::time::Instant;

use super::manage::BoxFuture;
use super::revoke::Revocable;
use super::stats::{stripe, STRIPES};

/// A checkout being watched.
struct Held {
    since: Instant,
    at: &'static Location<'static>,
    reported: bool,
    /// The connection's handle, kept only with `cancel_leaked` on.
    conn: Option<Arc<Revocable>>,
}

#[derive(Default)]
struct Stripe {
    held: Vec<Option<Held>>,
    free: Vec<u32>,
}

/// A connection found held past the threshold.
pub(crate) struct Leaked {
    pub(crate) at: &'static Location<'static>,
    pub(crate) held: Duration,
    /// Its prepared cancel, to send now (`cancel_leaked` on, and the manager prepared one):
    /// the connection is already revoked.
    pub(crate) cancel: Option<BoxFuture<'static, ()>>,
}

/// The checkouts in progress, striped by thread.
pub(crate) struct Leaks {
    threshold: Duration,
    /// Revoke a leaked connection and hand out its cancel (`cancel_leaked`).
    cancel: bool,
    stripes: [CachePadded<Mutex<Stripe>>; STRIPES],
}

impl Leaks {
    pub(crate) fn new(threshold: Duration, cancel: bool) -> Self {
        Leaks {
            threshold,
            cancel,
            stripes: Default::default(),
        }
    }

    pub(crate) fn threshold(&self) -> Duration {
        self.threshold
    }

    fn stripe(&self, i: usize) -> MutexGuard<'_, Stripe> {
        // Nothing panics while holding it.
        self.stripes[i % STRIPES]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a checkout made at `at`, now, of the connection whose handle is `conn`. The
    /// key is never 0.
    pub(crate) fn enter(&self, at: &'static Location<'static>, conn: &Arc<Revocable>) -> u64 {
        let i = stripe();
        let held = Held {
            since: Instant::now(),
            at,
            reported: false,
            conn: self.cancel.then(|| Arc::clone(conn)),
        };
        let mut s = self.stripe(i);
        let index = match s.free.pop() {
            Some(index) => {
                s.held[index as usize] = Some(held);
                index
            }
            None => {
                s.held.push(Some(held));
                u32::try_from(s.held.len() - 1).unwrap_or(u32::MAX)
            }
        };
        (((i as u64) << 32) | u64::from(index)) + 1
    }

    /// The checkout with `key` returned its connection. Returns how long it was held if it had
    /// been reported as a leak.
    pub(crate) fn leave(&self, key: u64) -> Option<Duration> {
        let key = key.checked_sub(1)?;
        let index = key as u32;
        let mut s = self.stripe((key >> 32) as usize);
        let held = s.held.get_mut(index as usize)?.take()?;
        s.free.push(index);
        held.reported.then(|| held.since.elapsed())
    }

    /// Every checkout held past the threshold and not reported yet; each is reported once, and
    /// with `cancel` on, its connection revoked (under the stripe's lock, which `leave` takes
    /// before the connection's return looks at the mark).
    pub(crate) fn scan(&self) -> Vec<Leaked> {
        let mut leaked = Vec::new();
        for i in 0..STRIPES {
            let mut s = self.stripe(i);
            for held in s.held.iter_mut().flatten() {
                let age = held.since.elapsed();
                if !held.reported && age >= self.threshold {
                    held.reported = true;
                    leaked.push(Leaked {
                        at: held.at,
                        held: age,
                        cancel: held.conn.take().and_then(|conn| conn.revoke()),
                    });
                }
            }
        }
        leaked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::revoke::Registry;

    #[tokio::test(start_paused = true)]
    async fn a_checkout_held_past_the_threshold_is_reported_once() {
        let leaks = Leaks::new(Duration::from_secs(1), false);
        let here = Location::caller();
        let conn = Registry::default().register(0, Some(Box::pin(async {})));
        let long = leaks.enter(here, &conn);
        let short = leaks.enter(here, &conn);
        assert_ne!(long, short);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(leaks.scan().is_empty());
        assert_eq!(leaks.leave(short), None, "returned in time");
        tokio::time::sleep(Duration::from_millis(600)).await;
        let found = leaks.scan();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].held, Duration::from_millis(1100));
        assert_eq!(found[0].at.line(), here.line());
        assert!(
            found[0].cancel.is_none() && !conn.is_revoked(),
            "cancel_leaked off"
        );
        assert!(leaks.scan().is_empty(), "once");
        assert_eq!(leaks.leave(long), Some(Duration::from_millis(1100)));
        assert_eq!(leaks.leave(long), None, "a key leaves once");
        let reused = leaks.enter(here, &conn);
        assert!(reused == long || reused == short, "slots are reused");
    }

    #[tokio::test(start_paused = true)]
    async fn with_cancel_on_only_a_leaked_checkout_is_revoked_and_given_its_cancel() {
        let leaks = Leaks::new(Duration::from_secs(1), true);
        let here = Location::caller();
        let registry = Registry::default();
        let leaked = registry.register(0, Some(Box::pin(async {})));
        let returned = registry.register(0, Some(Box::pin(async {})));
        let _long = leaks.enter(here, &leaked);
        let short = leaks.enter(here, &returned);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(leaks.leave(short), None);
        tokio::time::sleep(Duration::from_millis(600)).await;
        let mut found = leaks.scan();
        assert_eq!(found.len(), 1);
        assert!(found[0].cancel.take().is_some(), "its cancel, to send");
        assert!(leaked.is_revoked(), "never reused");
        assert!(!returned.is_revoked(), "returned in time: untouched");
    }
}
