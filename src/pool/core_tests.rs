//! Unit tests of the core's counters where ordering matters and no integration test can stop
//! another task between two atomic steps.

use std::future::Future;
use std::sync::atomic::Ordering::SeqCst;

use super::super::builder::PoolBuilder;
use super::super::manage::{ConnState, Manage};
use crate::error::Result;

/// Connections are `()`; nothing does I/O.
struct Nop;

impl Manage for Nop {
    type Connection = ();
    async fn connect(&self) -> Result<()> {
        Ok(())
    }
    fn state(&self, _: &()) -> ConnState {
        ConnState::Idle
    }
    fn is_closed(&self, _: &mut ()) -> bool {
        false
    }
    async fn ping(&self, _: &mut ()) -> Result<()> {
        Ok(())
    }
    async fn rollback(&self, _: &mut ()) -> Result<()> {
        Ok(())
    }
    #[allow(clippy::manual_async_fn)] // the trait wants a `'static` future, not one borrowing self
    fn cancel(&self, _: &()) -> impl Future<Output = ()> + Send + 'static {
        async {}
    }
    async fn close(&self, _: ()) {}
}

/// F12: the idle count drops in the same step that gives the connection up (it is the
/// queue's own length), so right after a checkout's pop no one sees a phantom idle connection:
/// a starving waiter's `wants_growth` already asks for a connect.
#[tokio::test]
async fn a_pop_leaves_no_phantom_idle_connection() {
    let core = PoolBuilder::new(Ok(Nop)).into_test_core(0, 2);
    core.size.store(1, SeqCst);
    core.push_idle(core.new_slot(()));
    assert_eq!(core.idle_count(), 1);
    core.starving.store(1, SeqCst);
    assert!(
        !core.wants_growth(),
        "an idle connection covers the starving waiter"
    );
    assert!(core.try_pop().is_some());
    assert_eq!(core.idle_count(), 0);
    assert!(
        core.wants_growth(),
        "the connection just popped is not counted as idle"
    );
    assert!(core.try_pop().is_none());
    assert_eq!(core.idle_count(), 0);
}

/// Invariant 9: a deadline far from the coarse reading is judged without a clock read, and
/// one near it against the real clock, so a checkout never hands out an expired connection
/// while maintenance keeps the coarse reading within a tick.
#[tokio::test(start_paused = true)]
async fn expiry_reads_the_real_clock_near_the_deadline() {
    use std::time::Duration;
    use tokio::time::{advance, Instant};

    use super::super::clock::NEVER;

    let core = PoolBuilder::new(Ok(Nop))
        .max_lifetime(Duration::from_secs(400))
        .max_idle(Duration::ZERO)
        .into_test_core(0, 1);
    let clock = &core.clock;
    assert_eq!(clock.lag(), Duration::from_secs(30), "the longest tick");
    let at = clock.after(Instant::now(), Duration::from_secs(100));
    advance(Duration::from_secs(100)).await;
    assert_eq!(clock.now(), at);
    assert!(
        !clock.passed(at),
        "coarse reading 100 s behind, more than two ticks: judged without reading the clock"
    );
    clock.tick(Instant::now() - Duration::from_secs(30)); // maintenance ran one tick ago
    assert!(
        clock.passed(at),
        "within two ticks: the real clock says passed"
    );
    assert!(!clock.passed(at + 1), "near, but not yet");
    assert!(!clock.passed(NEVER));
    assert_eq!(
        clock.recent(),
        at - 30_000_000_000,
        "never ahead of the real clock"
    );
}
