//! The atomics of the pool's lock-free accounting: `std`'s, or loom's when the crate's tests
//! are built with `--cfg wirepool_loom` (docs/architecture.md, "Model-checked accounting").
//!
//! The cfg is `wirepool_loom`, not `loom`: tokio and crossbeam switch their own internals on
//! `cfg(loom)`, and they must stay as they are (tokio's semaphore and crossbeam's queue are
//! outside the model). Only the code under test imports from here: the permit word
//! (`permits.rs`) and the size and shed counts with the idle queue's closed flag
//! (`core/counts.rs`), and `waiting.rs`, which shares `shed`.

// loom is a dev-dependency: only the crate's own test build switches (as tokio's does), so the
// library itself still builds, with std's atomics, under the cfg.
#[cfg(not(all(test, wirepool_loom)))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};

#[cfg(all(test, wirepool_loom))]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// What the loom tests share: running a model and counting its interleavings, and driving the
/// permits' futures inside one.
#[cfg(all(test, wirepool_loom))]
pub(crate) mod model {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::Instant;

    /// The preemption bound when `LOOM_MAX_PREEMPTIONS` is not set. loom's own guidance: most
    /// bugs need only two or three preemptions, and each one more multiplies the run time.
    const PREEMPTIONS: usize = 3;

    /// Runs `f` under every interleaving loom explores (within the preemption bound) and
    /// prints how many there were and how long they took (`-- --nocapture` shows it).
    pub(crate) fn check<F: Fn() + Sync + Send + 'static>(name: &str, f: F) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = builder.preemption_bound.or(Some(PREEMPTIONS));
        let start = Instant::now();
        // std's counter: loom's atomics exist only inside an execution.
        let runs = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&runs);
        builder.check(move || {
            counted.fetch_add(1, Relaxed);
            f();
        });
        println!(
            "loom model {name}: {} interleavings in {:.2?} (preemption bound {:?})",
            runs.load(Relaxed),
            start.elapsed(),
            builder.preemption_bound,
        );
    }

    /// A waker that does nothing: the permits' futures are re-polled in a spin loop that
    /// yields to loom. A loom waker would be cloned inside tokio's semaphore while it holds its
    /// (std) waiter-list lock, and every loom operation may switch threads: another loom thread
    /// would then block on that lock forever on the one OS thread loom runs them all on.
    struct Noop;

    impl Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }

    /// Drives `f` to completion, yielding to the other loom threads between polls. A future
    /// that never completes (a permit lost) makes loom fail the model: it runs out of branches.
    pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
        let waker = Waker::from(std::sync::Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let mut f = pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            loom::thread::yield_now();
        }
    }

    /// Polls `f` once and drops it: a wait abandoned midway (a timeout or a `select!`), as
    /// tokio's own `concurrent_cancel` loom model does. `Some` with its output if it was ready.
    pub(crate) fn poll_once<F: Future>(f: F) -> Option<F::Output> {
        let waker = Waker::from(std::sync::Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        match pin!(f).poll(&mut cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }
}
