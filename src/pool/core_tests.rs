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

/// F12: `idle_count` goes down before the queue gives the connection up, so in the window
/// between a checkout's claim and its pop no one sees a phantom idle connection: a starving
/// waiter's `wants_growth` already asks for a connect.
#[tokio::test]
async fn try_pop_claims_the_idle_count_before_popping() {
    let core = PoolBuilder::new(Ok(Nop)).into_test_core(0, 2);
    core.size.store(1, SeqCst);
    core.push_idle(core.new_slot(()));
    assert_eq!(core.idle_count(), 1);
    core.starving.store(1, SeqCst);
    assert!(
        !core.wants_growth(),
        "an idle connection covers the starving waiter"
    );

    // A checkout's pop, stopped between its two steps.
    assert_eq!(core.claim_idle(), Some(1));
    assert_eq!(core.idle_count(), 0);
    assert!(
        core.wants_growth(),
        "the connection being popped is not counted as idle"
    );
    assert!(core.idle.pop().is_some());
    assert_eq!(core.idle_count(), 0);
}

/// A pop that finds the queue empty gives its claim back, and one on a zero count neither
/// underflows nor touches the queue.
#[tokio::test]
async fn try_pop_on_empty_leaves_the_count_exact() {
    let core = PoolBuilder::new(Ok(Nop)).into_test_core(0, 2);
    assert!(core.try_pop().is_none());
    assert_eq!(core.idle_count(), 0);
    // A push in flight: counted, not yet in the queue.
    core.idle_count.fetch_add(1, SeqCst);
    assert!(core.try_pop().is_none());
    assert_eq!(core.idle_count(), 1, "the claim is given back");
}
