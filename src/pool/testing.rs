//! Unit-test support: an in-memory [`Manage`] whose connections are numbers, and a core built
//! from it with no background task, filled by hand.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use super::core::Core;
use super::manage::{ConnState, Manage};
use super::settings::{Settings, Sizes};
use crate::error::Result;

/// Connections are numbers, handed out in order; nothing does I/O.
#[derive(Default)]
pub(crate) struct Numbered(AtomicUsize);

impl Manage for Numbered {
    type Connection = usize;
    async fn connect(&self) -> Result<usize> {
        Ok(self.0.fetch_add(1, SeqCst))
    }
    fn state(&self, _: &usize) -> ConnState {
        ConnState::Idle
    }
    fn check_closed(&self, _: &mut usize) -> bool {
        false
    }
    async fn ping(&self, _: &mut usize) -> Result<()> {
        Ok(())
    }
    async fn rollback(&self, _: &mut usize) -> Result<()> {
        Ok(())
    }
    #[allow(clippy::manual_async_fn)] // the trait wants a `'static` future, not one borrowing self
    fn cancel(&self, _: &usize) -> impl Future<Output = ()> + Send + 'static {
        async {}
    }
    async fn close(&self, _: usize) {}
}

/// A core of `min..=max` connections and the pool's `timeout`, with no background task (no
/// grower, maintenance or watchdog) and no connection yet. Call inside a tokio runtime.
pub(crate) fn core(min: usize, max: usize, timeout: Duration) -> Arc<Core<Numbered>> {
    let settings = Settings {
        timeout,
        max_lifetime: None,
        max_idle: None,
        ..Settings::default()
    };
    let settings = settings
        .validated(Sizes {
            min: Some(min),
            max: Some(max),
            limit: None,
        })
        .unwrap_or_else(|e| panic!("test sizes: {e}"));
    Arc::new(Core::new(
        Numbered::default(),
        settings,
        tokio::runtime::Handle::current(),
    ))
}

/// [`core`] with `max` connections (numbered `0..max`) idle: opened through the real
/// reservation path, as the grower would, without its task.
pub(crate) fn filled(max: usize, timeout: Duration) -> Arc<Core<Numbered>> {
    let core = core(max, max, timeout);
    for conn in 0..max {
        let mut reservation = core
            .try_reserve()
            .expect("below min_size: growth is wanted");
        reservation.land(conn).into_idle();
    }
    core
}
