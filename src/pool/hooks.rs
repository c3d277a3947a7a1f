//! Running user code the pool calls: the `configure` hook (on a new connection, and again
//! after a reset), with a panic in it contained as an error.

use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::task::Poll;

use super::errors::{left_in, panicked};
use super::manage::{ConnState, Manage};
use super::settings::Settings;
use crate::error::{Error, Result};

/// Runs the `configure` hook, if any, then takes the session as it is as the clean state
/// (`Manage::mark_clean`): what the hook set is the baseline, not a change to reset. Run on each
/// new connection, and after a reset, whose `DISCARD ALL` undid what the hook set.
///
/// # Errors
/// The hook's error, its panic, or a connection it left in a transaction or running a query
/// (psycopg: a `BEGIN` left open would be handed to the first user as if it were theirs).
pub(crate) async fn configure<M: Manage>(
    manager: &M,
    settings: &Settings<M::Connection>,
    conn: &mut M::Connection,
) -> Result<()> {
    if let Some(configure) = &settings.configure {
        match catch_panic(configure(conn)).await {
            Ok(r) => r.map_err(|e| Error::hook("configure", e))?,
            Err(()) => return Err(panicked("the `configure` hook")),
        }
        match manager.state(conn) {
            ConnState::Idle | ConnState::Dirty => {}
            state => return Err(left_in(state, "configure")),
        }
    }
    manager.mark_clean(conn);
    Ok(())
}

/// Polls `fut`, turning a panic inside it into `Err(())`.
pub(crate) async fn catch_panic<F: Future>(fut: F) -> std::result::Result<F::Output, ()> {
    let mut fut = pin!(fut);
    poll_fn(
        move |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll.map(Ok),
            Err(_) => Poll::Ready(Err(())),
        },
    )
    .await
}
