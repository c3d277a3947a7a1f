//! The pool under real faults, each scenario against a private cluster behind an in-test proxy
//! (`support::scenarios`): a server restart under load, crash recovery, a terminate storm, a
//! stalled network, a role at its connection limit, `close()` under load and a cancel storm;
//! and `fail_fast_after` with the server stopped.
//! Each asserts no checkout past the timeout + slack, no panic, no slot leaked afterwards and
//! never more backends than `max_size`, and prints its figures (`cargo test --test chaos --
//! --nocapture`; docs/reliability.md explains them).
//!
//! The ignored tests are the 10 s outage (slow) and the 250 ms recovery bound, which the pool
//! meets only when its probe happens to fall soon after the server comes back (the figures are
//! in the reason): `cargo test --test chaos -- --ignored --nocapture`.

mod support;

use std::time::{Duration, Instant};

use support::chaos::{eventually, give_up_after, serial, short, Contender, Failure, PoolOpts, Rig};
use support::cluster::Options;
use support::scenarios::{self, TIMEOUT};
use wirepool::{Pool, PooledConnection};

/// wirepool's pool, named after nothing in particular: the conninfo carries the
/// application_name the scenarios count backends by.
struct Wirepool(Pool);

/// The label a scenario counts a wirepool error by.
fn classify(e: &wirepool::Error) -> Failure {
    if e.is_pool_timeout() {
        let info = e.pool_timeout_info();
        let cause = info.and_then(|i| i.last_connect_error.clone());
        let cause = cause.or_else(|| std::error::Error::source(e).map(|s| s.to_string()));
        return Failure::timeout(cause.as_deref());
    }
    Failure::other(if e.is_pool_closed() {
        "pool closed".to_owned()
    } else if let Some(code) = e.code() {
        format!("server {code}")
    } else if e.is_closed() {
        "connection closed".to_owned()
    } else if e.is_io() {
        "i/o error".to_owned()
    } else {
        short(&e.to_string())
    })
}

impl Contender for Wirepool {
    const NAME: &'static str = "wirepool";
    type Conn = PooledConnection;

    async fn open(conninfo: &str, opts: PoolOpts) -> Result<Self, String> {
        let pool = Pool::builder(conninfo)
            .min_size(opts.min_size)
            .max_size(opts.max_size)
            .timeout(opts.timeout)
            .open()
            .await
            .map_err(|e| e.to_string())?;
        pool.wait(Duration::from_secs(10))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Wirepool(pool))
    }

    async fn checkout(&self) -> Result<PooledConnection, Failure> {
        self.0.connection().await.map_err(|e| classify(&e))
    }

    async fn query(
        conn: &mut PooledConnection,
        sql: &str,
        abandon_after: Option<Duration>,
    ) -> Result<(), Failure> {
        give_up_after(conn.simple_query(sql), abandon_after)
            .await?
            .map(drop)
            .map_err(|e| classify(&e))
    }

    async fn close(&self) {
        self.0.close().await;
    }

    fn size(&self) -> Option<usize> {
        Some(self.0.stats().pool_size)
    }

    fn describe(&self) -> String {
        format!("{:?}", self.0.stats())
    }
}

/// Also: the first good checkout within 2 s of the server accepting sessions again, and no
/// spin while it is down: the reconnect backoff (250 ms, then one probe every 550 ms ± 10 %)
/// allows at most 2.5 attempts a second over a 3 s outage; 3 is the bound asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_under_load() {
    restart_recovers(Duration::from_secs(3), 2000.0, Some(3.0)).await;
}

/// A server restart after `outage` under load: clean, the first good checkout at most
/// `recovery_ms` after the server accepts sessions again, and, with `max_rate`, at most that
/// many connection attempts per second while it was down.
async fn restart_recovers(outage: Duration, recovery_ms: f64, max_rate: Option<f64>) {
    let r = scenarios::restart_under_load::<Wirepool>(outage).await;
    r.assert_clean();
    if let Some(max_rate) = max_rate {
        let rate = r.number("outage attempts per s");
        assert!(
            rate <= max_rate,
            "{rate:.2} connection attempts per second while down"
        );
    }
    let recovery = r.number("recovery ms");
    assert!(
        recovery <= recovery_ms,
        "first success {recovery:.0} ms after the server accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_recovery() {
    scenarios::crash_recovery::<Wirepool>().await.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_storm() {
    scenarios::terminate_storm::<Wirepool>()
        .await
        .assert_clean();
}

/// Also: a checkout that times out during the stall says why (connections awaiting
/// cancellation on an unresponsive server, connects timing out): its `source()` or
/// `last_connect_error` names a cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_network() {
    let r = scenarios::stalled_network::<Wirepool>(Duration::from_secs(3)).await;
    let (all, bare) = (
        r.number("stall timeouts"),
        r.number("stall timeouts without a cause"),
    );
    assert!(all > 0.0, "no checkout timed out: the stall did not bite");
    assert_eq!(bare, 0.0, "{bare} of {all} stall timeouts name no cause");
    r.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_at_connection_limit() {
    scenarios::role_at_connection_limit::<Wirepool>()
        .await
        .assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_under_load() {
    scenarios::close_under_load::<Wirepool>()
        .await
        .assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_storm() {
    scenarios::cancel_storm::<Wirepool>().await.assert_clean();
}

/// The reconnect policy over a 10 s outage: at most 2 connection attempts per second while the
/// server is down (no storm), and the first good checkout within one probe interval (550 ms
/// ± 10 %, plus the connect) of the server accepting sessions again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "reason: slow (a 10 s outage, 25 s in all); passes: 1.80 attempts/s while down, \
            first good checkout -4 ms after the server accepted"]
async fn restart_after_10s_outage_recovers_fast_without_a_storm() {
    restart_recovers(Duration::from_secs(10), 700.0, Some(2.0)).await;
}

/// The first good checkout comes at most 250 ms after the server accepts sessions again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "reason: met in 3 runs of 8: while the server is down the pool probes every 550 ms \
            (± 10 %; 2 attempts/s is the storm bound), so the first good checkout comes 0-0.6 s \
            after the server accepts (-4, 201, 207, 264, 322, 354, 505 ms)"]
async fn restart_recovers_within_250ms_of_the_server_accepting() {
    restart_recovers(Duration::from_secs(3), 250.0, None).await;
}

/// A connect retried after its backoff first checks that someone still wants the
/// connection: once the demand is gone, no further attempt (here it would be refused with
/// 53300 again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_retry_after_its_backoff_rechecks_demand() {
    let _serial = serial().await;
    let options = Options {
        setup_sql: vec!["CREATE ROLE limited LOGIN CONNECTION LIMIT 1".to_owned()],
        ..Options::default()
    };
    let rig = Rig::start("chaos_demand", options).await;
    let pool = Pool::builder(rig.conninfo("limited").as_str())
        .min_size(0)
        .max_size(2)
        .timeout(TIMEOUT)
        .open()
        .await
        .unwrap();
    // Demand for two connections: the first opens, the second is refused (53300).
    let held = pool.connection().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move {
            pool.connection_timeout(Duration::from_secs(10))
                .await
                .map(drop)
        }
    });
    assert!(
        eventually(Duration::from_secs(5), || pool.stats().connections_errors
            >= 1)
        .await,
        "the second connect was not refused: {:?}",
        pool.stats()
    );
    // The demand ends during the wait (1 s ± 10 % for a full server) that follows the refusal.
    waiter.abort();
    drop(held);
    let ended = Instant::now();
    let attempts = pool.stats().connections_num;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = pool.stats().connections_num - attempts;
    let window = ended.elapsed().as_secs_f64();
    eprintln!(
        "chaos wirepool/demand recheck: connect attempts in the {window:.1} s after the \
         demand ended: {later}"
    );
    assert_eq!(later, 0, "{later} connect attempts after the demand ended");
    pool.close().await;
}

/// `fail_fast_after(n)` with the server stopped: once `n` connects in a row have failed and
/// nothing is idle, a checkout fails at once with the last connect error instead of waiting its
/// whole timeout; with the server started again, the pool's background probe connects and
/// checkouts succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fast_while_the_server_is_stopped_then_serves_again() {
    let _serial = serial().await;
    let rig = Rig::start("chaos_fail_fast", Options::default()).await;
    let timeout = Duration::from_secs(20);
    let pool = Pool::builder(rig.conninfo("postgres").as_str())
        .min_size(0)
        .max_size(2)
        .fail_fast_after(2)
        .timeout(timeout)
        .open()
        .await
        .unwrap();
    drop(pool.connection().await.unwrap());
    pool.drain();
    rig.with_cluster(|c| c.stop_server("fast"))
        .await
        .expect("stop the server");

    // The first checkout meets the first two failures (the second 250 ms after the first) and
    // fails when the second lands, long before its timeout.
    let start = Instant::now();
    let e = pool.connection().await.unwrap_err();
    let first = start.elapsed();
    assert!(e.is_pool_unavailable(), "{e}");
    assert!(
        first < timeout / 4,
        "the first checkout failed after {first:?}: {e}"
    );
    assert!(
        e.to_string().contains("failed attempt(s) in a row"),
        "the error does not carry the connect failure: {e}"
    );
    // Every checkout after it fails at once while the server stays down.
    let start = Instant::now();
    for _ in 0..20 {
        let e = pool.connection().await.unwrap_err();
        assert!(e.is_pool_unavailable(), "{e}");
    }
    let twenty = start.elapsed();
    assert!(
        twenty < Duration::from_secs(1),
        "20 checkouts while down took {twenty:?}"
    );
    eprintln!(
        "chaos wirepool/fail fast: first checkout failed after {} ms; 20 more in {} ms",
        first.as_millis(),
        twenty.as_millis()
    );

    rig.with_cluster(|c| c.start_again())
        .await
        .expect("start the server");
    let back = Instant::now();
    let served = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match pool.connection().await {
                Ok(mut c) => break c.simple_query("select 1").await.map(drop),
                Err(e) if e.is_pool_unavailable() => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("a checkout after the restart: {e}"),
            }
        }
    })
    .await;
    assert!(
        matches!(served, Ok(Ok(()))),
        "no checkout succeeded within 10 s of the restart: {served:?}"
    );
    eprintln!(
        "chaos wirepool/fail fast: first good checkout {} ms after the server was started",
        back.elapsed().as_millis()
    );
    pool.close().await;
}
