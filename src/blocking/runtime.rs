//! The private runtime behind one blocking pool, and how a blocking call waits on it.
//!
//! Invariants:
//! - One OS thread per pool ([`Driver`]) runs a current-thread tokio runtime inside
//!   `block_on` for the pool's whole life, so the runtime's I/O and timer drivers always run:
//!   background connects, maintenance, rollbacks of returned connections and the checkout
//!   deadline make progress between calls, with no caller inside the library.
//! - A blocking call polls its future on the caller's own thread, with the pool's runtime
//!   entered and the thread parked between polls ([`Driver::block_on`]); it never calls tokio's
//!   `block_on`, so it cannot hit "Cannot start a runtime from within a runtime"
//!   (rust-postgres#639, #1058). Called from a thread that is polling async tasks, it refuses
//!   at once with [`Error::is_inside_async_runtime`] (see [`polling_async_task`]).
//! - The async pool is opened inside [`Driver::block_on`], so the background work it starts
//!   later (a rollback after a guard's drop, connects after `resize`) runs on the pool thread's
//!   runtime, whichever thread or runtime the call that starts it comes from.
//! - Nothing here drops a tokio `Runtime` on a caller's thread ("Cannot drop a runtime in a
//!   context where blocking is not allowed", reqwest#1017): dropping the last [`Driver`] only
//!   signals the pool thread, which lets background work finish (bounded by [`DRAIN_LIMIT`])
//!   and then drops the runtime itself, outside any async context.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;
use tokio::task::coop;
use tokio::time::Instant;

use crate::error::{Error, Result};

/// How long the pool thread, once the last handle, guard and token are gone, lets background
/// work finish (closing connections, cancelling a dropped query) before it stops the runtime:
/// the pool's own bounds on that work, a cancel (5 s) then a close (5 s).
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// How often the draining pool thread looks at the runtime's task count.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// The pool thread and a handle to its runtime. Shared by the pool's handles, its guards and
/// its cancel tokens; dropping the last one stops the thread.
pub(crate) struct Driver {
    handle: Handle,
    /// Dropped with the driver: the pool thread's signal to drain and stop.
    _stop: oneshot::Sender<()>,
}

impl Driver {
    /// Starts the pool thread (named `thread_name`) and its runtime.
    ///
    /// # Errors
    /// [`Error::is_inside_async_runtime`] if the caller is polling async tasks (no thread is
    /// started); `Io` if the thread or its runtime cannot start.
    pub(crate) fn start(thread_name: String) -> Result<Arc<Driver>> {
        if in_async_task() {
            return Err(Error::inside_async_runtime());
        }
        let (handle_tx, handle_rx) = mpsc::sync_channel(1);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let rt = match Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => return drop(handle_tx.send(Err(e))),
                };
                let _ = handle_tx.send(Ok(rt.handle().clone()));
                rt.block_on(async move {
                    let _ = stop_rx.await;
                    drain().await;
                });
                // `rt` drops here, on its own thread, outside any async context.
            })
            .map_err(Error::io)?;
        let handle = match handle_rx.recv() {
            Ok(built) => built.map_err(Error::io)?,
            Err(_) => return Err(Error::io(io::Error::other("the pool thread exited"))),
        };
        Ok(Arc::new(Driver {
            handle,
            _stop: stop_tx,
        }))
    }

    /// Runs `fut` to completion on the calling thread, with the pool's runtime entered (for its
    /// timers and the tasks it spawns); the pool thread's I/O driver wakes it.
    ///
    /// # Errors
    /// [`Error::is_inside_async_runtime`] if the caller is polling async tasks; `fut` is then
    /// dropped unpolled.
    pub(crate) fn block_on<F: Future>(&self, fut: F) -> Result<F::Output> {
        match caller() {
            Caller::Plain => {}
            Caller::AsyncTask => return Err(Error::inside_async_runtime()),
            Caller::Exiting => {
                return Err(Error::io(io::Error::other(
                    "a blocking call was made while its thread was exiting",
                )))
            }
        }
        let _entered = self.handle.enter();
        Ok(park_on(fut))
    }

    /// [`block_on`](Driver::block_on) for at most `timeout` (on the pool's timer): `None` once
    /// it has passed, `fut` then dropped. `fut` is polled first, so `Duration::ZERO` still
    /// completes what is ready at once.
    ///
    /// # Errors
    /// As [`block_on`](Driver::block_on).
    pub(crate) fn block_on_timeout<F: Future>(
        &self,
        fut: F,
        timeout: Duration,
    ) -> Result<Option<F::Output>> {
        // The timer is made inside the future: only there is the pool's runtime entered.
        self.block_on(async { tokio::time::timeout(timeout, fut).await.ok() })
    }
}

/// After the stop signal: wait (bounded) until the tasks the closed pool left behind are done,
/// so closing connections still send Terminate rather than vanish with the runtime. Polling a
/// count is the only signal there is: these tasks are the async pool's, spawned detached.
async fn drain() {
    let handle = Handle::current();
    let until = Instant::now() + DRAIN_LIMIT;
    while handle.metrics().num_alive_tasks() > 0 && Instant::now() < until {
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// Who is calling, as far as blocking is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// A thread that may block: no runtime context, or one that allows blocking
    /// (`spawn_blocking`, `block_in_place`, a `Handle::enter` guard).
    Plain,
    /// A thread that is polling async tasks (a runtime worker, or inside `block_on`).
    AsyncTask,
    /// A thread-local destructor at thread exit: no runtime can be entered.
    Exiting,
}

/// Whether a blocking call from this thread must be refused (see [`polling_async_task`]).
fn in_async_task() -> bool {
    caller() == Caller::AsyncTask
}

fn caller() -> Caller {
    match Handle::try_current() {
        Ok(_) if polling_async_task() => Caller::AsyncTask,
        Ok(_) => Caller::Plain,
        Err(e) if e.is_thread_local_destroyed() => Caller::Exiting,
        Err(_) => Caller::Plain,
    }
}

/// Whether the current thread, inside some runtime's context, is polling a task or a
/// `block_on` future (where blocking would stall the runtime) rather than running
/// `spawn_blocking` or `block_in_place` (where blocking is the point).
///
/// tokio has no public question for this (its own check is private and panics), but it gives
/// every poll of a task or `block_on` future a cooperative budget of at most 255 units
/// (128 in tokio 1.54), and runs `spawn_blocking` and `block_in_place` closures with none. So:
/// spend units with `coop::poll_proceed` until one is refused, at most 256 times, then give
/// the budget back exactly as it was (the first unit's guard restores it when dropped; the
/// later ones are marked as progress so their guards leave it). A budget that refuses is
/// a task's. Outside any runtime context this is never called.
///
/// The one miss: code inside `tokio::task::unconstrained` also has no budget, so a blocking
/// call there is allowed and blocks that worker (it still completes: the pool's I/O runs on
/// the pool's own thread).
fn polling_async_task() -> bool {
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let Poll::Ready(first) = coop::poll_proceed(&mut cx) else {
        return true;
    };
    let refused = (0..u8::MAX).any(|_| match coop::poll_proceed(&mut cx) {
        Poll::Ready(unit) => {
            unit.made_progress();
            false
        }
        Poll::Pending => true,
    });
    drop(first);
    refused
}

/// The waker of a budget probe: nothing to wake (a refusal only asks the task to yield).
struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// Polls `fut` on this thread, parking between polls until its waker unparks the thread.
/// A stray unpark (a waker kept from an earlier call) only costs one extra poll.
fn park_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let waker = THREAD_WAKER
        .try_with(Waker::clone)
        .unwrap_or_else(|_| unpark_waker());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        thread::park();
    }
}

thread_local! {
    /// This thread's waker, built once: a blocking call then allocates nothing to wait.
    static THREAD_WAKER: Waker = unpark_waker();
}

fn unpark_waker() -> Waker {
    Waker::from(Arc::new(Unpark(thread::current())))
}

/// Wakes a thread parked in [`park_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_thread_may_block() {
        assert_eq!(caller(), Caller::Plain);
    }

    #[test]
    fn a_task_or_block_on_may_not_and_spawn_blocking_may() {
        let rt = Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        assert_eq!(rt.block_on(async { caller() }), Caller::AsyncTask);
        let task = rt.block_on(async { tokio::spawn(async { caller() }).await });
        assert_eq!(task.expect("task"), Caller::AsyncTask);
        let blocking = rt.block_on(async { tokio::task::spawn_blocking(caller).await });
        assert_eq!(blocking.expect("blocking task"), Caller::Plain);
        let in_place = rt
            .block_on(async { tokio::spawn(async { tokio::task::block_in_place(caller) }).await });
        assert_eq!(in_place.expect("task"), Caller::Plain);
        let entered = {
            let _g = rt.enter();
            caller()
        };
        assert_eq!(entered, Caller::Plain);
    }

    /// Spends budget units until one is refused; returns how many were granted.
    fn units_left(cx: &mut Context<'_>) -> usize {
        let mut n = 0;
        while let Poll::Ready(unit) = coop::poll_proceed(cx) {
            unit.made_progress();
            n += 1;
        }
        n
    }

    #[test]
    fn the_probe_gives_the_budget_back() {
        let rt = Builder::new_current_thread().build().expect("runtime");
        let waker = Waker::from(Arc::new(Noop));
        let left = |probe: bool| {
            rt.block_on(async {
                let mut cx = Context::from_waker(&waker);
                for _ in 0..10 {
                    let Poll::Ready(unit) = coop::poll_proceed(&mut cx) else {
                        panic!("a fresh poll has more than 10 units");
                    };
                    unit.made_progress();
                }
                if probe {
                    assert!(polling_async_task());
                }
                units_left(&mut cx)
            })
        };
        let (without, with) = (left(false), left(true));
        assert!(without > 0);
        assert_eq!(with, without, "the probe spent none of the task's budget");
        rt.block_on(async {
            let mut cx = Context::from_waker(&waker);
            units_left(&mut cx);
            assert!(
                polling_async_task(),
                "an exhausted budget is still a task's"
            );
        });
    }
}
