//! One task checking a connection out and dropping it, `N` times, on a current-thread runtime
//! with an in-memory connection: the pool's fast path alone, for instruction counts
//! (docs/performance.md, "What each design choice buys"):
//!
//! ```sh
//! cargo build --release --example get_drop_cycle
//! for n in 100000 200000; do
//!   N=$n valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/get_drop_cycle 2>&1 | grep Collected
//! done   # (second - first) / 100000 = instructions per get + drop
//! ```
//!
//! `USAGE=1` turns `usage_stats` on, `LEAK=1` leak detection (a threshold of an hour), and
//! `CANCEL=1` with it `cancel_leaked`.

use std::time::Duration;

use wirepool::pool::{ConnState, Manage};

/// A connection that is a number.
struct Counter;

impl Manage for Counter {
    type Connection = u32;
    async fn connect(&self) -> wirepool::Result<u32> {
        Ok(0)
    }
    fn state(&self, _: &u32) -> ConnState {
        ConnState::Idle
    }
    fn check_closed(&self, _: &mut u32) -> bool {
        false
    }
    async fn ping(&self, _: &mut u32) -> wirepool::Result<()> {
        Ok(())
    }
    async fn rollback(&self, _: &mut u32) -> wirepool::Result<()> {
        Ok(())
    }
    // Not an `async fn`: the trait asks for a `'static` future, which one borrowing `self` is not.
    #[allow(clippy::manual_async_fn)]
    fn cancel(&self, _: &u32) -> impl std::future::Future<Output = ()> + Send + 'static {
        async {}
    }
    async fn close(&self, _: u32) {}
}

fn main() -> wirepool::Result<()> {
    let n: u64 = std::env::var("N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(wirepool::Error::other)?;
    runtime.block_on(async {
        let mut builder = wirepool::Pool::builder_for(Counter).max_size(1);
        if std::env::var_os("USAGE").is_some() {
            builder = builder.usage_stats(true);
        }
        if std::env::var_os("LEAK").is_some() {
            builder = builder.leak_detection_threshold(Duration::from_secs(3600));
            if std::env::var_os("CANCEL").is_some() {
                builder = builder.cancel_leaked(true);
            }
        }
        let pool = builder.open().await?;
        pool.wait(Duration::from_secs(1)).await?;
        for _ in 0..n {
            let conn = pool.connection().await?;
            std::hint::black_box(&*conn);
        }
        Ok(())
    })
}
