//! The chaos scenarios, generic over the pool under test ([`Contender`]): each starts a private
//! cluster behind a proxy, puts a pool under load, injects one fault, and returns a [`Report`]
//! of figures and broken invariants (no checkout past the timeout + slack, no panic, no slot
//! leaked afterwards, never more backends than `max_size`). Every phase is bounded in time.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chaos::*;
use super::cluster::Options;
use super::proxy::Kill;
use super::report::*;

/// The pool's timeout in every scenario: short, so a stuck checkout shows in seconds.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// A pool of 5 under 16 tasks (the end-to-end benchmark's first shape).
pub const POOL: PoolOpts = PoolOpts {
    min_size: 5,
    max_size: 5,
    timeout: TIMEOUT,
};
pub const TASKS: usize = 16;
/// How long a scenario waits for the first success after a fault ends: long enough to
/// measure a slow recovery rather than miss it (a reconnect backoff can reach tens of seconds).
pub const RECOVERY_LIMIT: Duration = Duration::from_secs(60);

/// Each request holds its connection ~10 ms: enough for 16 tasks to queue on 5 connections,
/// little enough CPU for a shared 2-core machine.
fn hold() -> Work {
    Work {
        sql: "select pg_sleep(0.01)".to_owned(),
        abandon_after: None,
    }
}

async fn sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

/// One scenario's run: the serial guard, a rig, the pool, the backend sampler and the report.
/// [`Run::start`] and [`Run::end`] are the parts every scenario shares.
struct Run<C: Contender> {
    rig: Rig,
    pool: Arc<C>,
    opts: PoolOpts,
    sampler: Option<Sampler>,
    r: Report,
    panics_before: usize,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl<C: Contender> Run<C> {
    /// Starts a rig for `scenario` and opens the pool, logging in as `user`.
    async fn start(scenario: &'static str, options: Options, user: &str, opts: PoolOpts) -> Self {
        let serial = serial().await;
        let panics_before = panics();
        let app = format!("chaos_{}", scenario.split(' ').next().unwrap_or("run"));
        let rig = Rig::start(&app, options).await;
        let pool = C::open(&rig.conninfo(user), opts)
            .await
            .unwrap_or_else(|e| panic!("{}: open: {e}", C::NAME));
        Run {
            sampler: Some(rig.sampler()),
            rig,
            pool: Arc::new(pool),
            opts,
            r: Report::new(C::NAME, scenario),
            panics_before,
            _serial: serial,
        }
    }

    /// Starts the scenario's load: [`TASKS`] tasks running `work`.
    fn load(&self, work: Work) -> Load {
        Load::start(&self.pool, TASKS, work, self.opts.timeout)
    }

    /// Stops the load and the sampler; records the request and backend figures and checks.
    async fn stop(&mut self, load: Load) -> Vec<Event> {
        let (events, task_panics) = load.finish().await;
        let samples = self.sampler.take().map(Sampler::finish).unwrap_or_default();
        self.r.requests(&events, self.opts.timeout, task_panics);
        self.r.backends(&samples, self.opts.max_size);
        events
    }

    /// The end of a scenario whose fault took the server away at `fault` until it accepted
    /// sessions again at `ready`: waits for the first success, a second of steady load, then
    /// records recovery and the errors seen in between (`errors_label`), and ends the run.
    async fn until_recovered(
        mut self,
        load: Load,
        fault: Instant,
        ready: Instant,
        errors_label: &str,
    ) -> Report {
        eventually(RECOVERY_LIMIT, || {
            first_ok_after(&load.events(), ready).is_some()
        })
        .await;
        sleep(Duration::from_secs(1)).await;
        let events = self.stop(load).await;
        let label = "recovery: server accepting -> first good checkout";
        recovery(&mut self.r, &events, ready, label, "recovery ms");
        let between = errors_by_kind(between(&events, fault, ready).iter());
        self.r.fig(errors_label, between);
        self.end(POOL.max_size).await
    }

    /// The leak check (`held` connections at once, then one more), close, the panic check.
    async fn end(mut self, held: usize) -> Report {
        self.r.leaks(&*self.pool, held, self.opts.timeout).await;
        self.pool.close().await;
        self.r.no_panic_since(self.panics_before);
        self.r
    }
}

/// Figures for the time to the first success after `t`: `key` in ms.
fn recovery(r: &mut Report, events: &[Event], from: Instant, label: &str, key: &'static str) {
    match first_ok_after(events, from) {
        Some(t) => {
            r.fig(label, signed_ms(from, t));
            r.num(
                key,
                t.saturating_duration_since(from).as_secs_f64() * 1000.0,
            );
        }
        None => r.violation(format!("{label}: no successful request")),
    }
}

/// The server is stopped (`pg_ctl stop -m fast`: sessions end with 57P01) under load, stays
/// down for `outage`, and starts again. Figures: connection attempts per second while down
/// (the proxy's accept log), and recovery, from the server accepting sessions again (a
/// direct probe every 10 ms) to the first good checkout.
pub async fn restart_under_load<C: Contender>(outage: Duration) -> Report {
    let mut run = Run::<C>::start("restart under load", Options::default(), "postgres", POOL).await;
    let load = run.load(hold());
    sleep(Duration::from_secs(1)).await;

    let stop = Instant::now();
    run.rig
        .with_cluster(|c| c.stop_server("fast"))
        .await
        .expect("pg_ctl stop");
    let down = Instant::now();
    run.r.fig("pg_ctl stop -m fast took", ms(down - stop));
    sleep(outage).await;
    let restart = Instant::now();
    let attempts = run.rig.proxy.accepted_between(down, restart);
    let rate = attempts as f64 / (restart - down).as_secs_f64();
    run.r.fig(
        "connection attempts while down",
        format!("{attempts} in {} ({rate:.2}/s)", ms(restart - down)),
    );
    run.r.num("outage attempts per s", rate);
    let probe = tokio::spawn({
        let conninfo = run.rig.direct_conninfo();
        async move { until_accepting(&conninfo, Duration::from_secs(30), true).await }
    });
    run.rig
        .with_cluster(|c| c.start_again())
        .await
        .expect("pg_ctl start");
    let ready = probe
        .await
        .expect("probe")
        .0
        .expect("the server accepts sessions again");
    run.until_recovered(load, down, ready, "errors while down")
        .await
}

/// One pool backend is killed with SIGKILL: the postmaster ends every backend and restarts
/// them after crash recovery, refusing sessions with 57P03 meanwhile. Figures: how long the
/// server refused sessions, what the probe and the pool saw, recovery.
pub async fn crash_recovery<C: Contender>() -> Report {
    let mut run = Run::<C>::start(
        "crash recovery (kill -9 a backend)",
        Options::default(),
        "postgres",
        POOL,
    )
    .await;
    let load = run.load(hold());
    sleep(Duration::from_secs(1)).await;

    let pid = *run
        .rig
        .backend_pids()
        .await
        .first()
        .expect("a pool backend");
    let probe = tokio::spawn({
        let conninfo = run.rig.direct_conninfo();
        async move { until_accepting(&conninfo, Duration::from_secs(30), true).await }
    });
    let killed = Instant::now();
    // `pg_ctl kill` signals as the server's OS user, as a crash or the OOM killer would.
    let pid = pid.to_string();
    let cluster = std::sync::Arc::clone(&run.rig.cluster);
    tokio::task::spawn_blocking(move || cluster.pg_ctl_run(&["kill", "KILL", &pid]))
        .await
        .expect("pg_ctl kill task")
        .expect("pg_ctl kill KILL");
    let (ready, probe_saw) = probe.await.expect("probe");
    let ready = ready.expect("the server accepts sessions again");
    run.r.fig("server refused sessions for", ms(ready - killed));
    run.r.fig("the probe saw", format!("{probe_saw:?}"));
    run.until_recovered(load, killed, ready, "errors while recovering")
        .await
}

/// Every pool backend is terminated (`pg_terminate_backend`), 10 times, 200 ms apart, under
/// load. Figures: backends terminated, requests that failed, sessions opened again, recovery
/// after the last round.
pub async fn terminate_storm<C: Contender>() -> Report {
    let mut run = Run::<C>::start("terminate storm", Options::default(), "postgres", POOL).await;
    let load = run.load(hold());
    sleep(Duration::from_secs(1)).await;

    let accepted_before = run.rig.proxy.accepted();
    let sql = format!(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity \
         where application_name = '{}'",
        run.rig.app
    );
    let (mut terminated, rounds) = (0usize, 10);
    let storm = Instant::now();
    for _ in 0..rounds {
        let n = run.rig.psql(&sql).await.expect("pg_terminate_backend");
        terminated += n.parse::<usize>().unwrap_or(0);
        sleep(Duration::from_millis(200)).await;
    }
    let last = Instant::now();
    run.r.fig(
        "terminated",
        format!(
            "{terminated} backends in {rounds} rounds over {}",
            ms(last - storm)
        ),
    );
    sleep(Duration::from_secs(1)).await;

    let events = run.stop(load).await;
    let opened = run.rig.proxy.accepted() - accepted_before;
    run.r
        .fig("sessions opened during and after the storm", opened);
    run.r.fig(
        "errors during the storm",
        errors_by_kind(between(&events, storm, last).iter()),
    );
    recovery(
        &mut run.r,
        &events,
        last,
        "last round -> first good checkout",
        "recovery ms",
    );
    run.end(POOL.max_size).await
}

/// The network stalls (the proxy pauses both directions without closing anything) for
/// `stall`, heals, and then every connection is reset. Requests give up their query after
/// 1 s (an application's request timeout). Figures: what checkouts got during the stall
/// (timeouts with and without a cause), recovery after the heal and after the resets.
pub async fn stalled_network<C: Contender>(stall: Duration) -> Report {
    let mut run = Run::<C>::start("stalled network", Options::default(), "postgres", POOL).await;
    let load = run.load(Work {
        abandon_after: Some(Duration::from_secs(1)),
        ..hold()
    });
    sleep(Duration::from_secs(1)).await;

    let paused = Instant::now();
    run.rig.proxy.pause();
    sleep(stall).await;
    run.rig.proxy.resume();
    let resumed = Instant::now();
    eventually(RECOVERY_LIMIT, || {
        first_ok_after(&load.events(), resumed).is_some()
    })
    .await;
    sleep(Duration::from_secs(1)).await;
    run.rig.proxy.kill_all(Kill::Reset);
    let reset = Instant::now();
    eventually(RECOVERY_LIMIT, || {
        first_ok_after(&load.events(), reset).is_some()
    })
    .await;
    sleep(Duration::from_secs(1)).await;

    let events = run.stop(load).await;
    let r = &mut run.r;
    let stalled = between(&events, paused, resumed);
    r.fig("errors during the stall", errors_by_kind(stalled.iter()));
    let timeouts: Vec<&Failure> = stalled
        .iter()
        .filter_map(|e| match &e.outcome {
            Outcome::CheckoutError(f) if f.pool_timeout => Some(f),
            _ => None,
        })
        .collect();
    let without_cause = timeouts.iter().filter(|f| !f.has_cause).count();
    r.fig(
        "checkout timeouts during the stall",
        format!("{} ({without_cause} naming no cause)", timeouts.len()),
    );
    r.num("stall timeouts", timeouts.len() as f64);
    r.num("stall timeouts without a cause", without_cause as f64);
    recovery(
        r,
        &events,
        resumed,
        "heal -> first good checkout",
        "heal recovery ms",
    );
    r.fig(
        "errors after the heal",
        errors_by_kind(between(&events, resumed, reset).iter()),
    );
    recovery(
        r,
        &events,
        reset,
        "reset -> first good checkout",
        "reset recovery ms",
    );
    let after_reset = between(&events, reset, Instant::now());
    r.fig("errors after the reset", errors_by_kind(after_reset.iter()));
    run.end(POOL.max_size).await
}

/// The role the pool logs in as has `CONNECTION LIMIT 2`, the pool `max_size` 4: the third
/// session is refused with 53300. Figures: connection attempts per second, errors, waits.
/// The leak check holds the 2 connections the server allows.
pub async fn role_at_connection_limit<C: Contender>() -> Report {
    let options = Options {
        setup_sql: vec!["CREATE ROLE limited LOGIN CONNECTION LIMIT 2".to_owned()],
        ..Options::default()
    };
    let opts = PoolOpts {
        min_size: 1,
        max_size: 4,
        timeout: TIMEOUT,
    };
    let mut run = Run::<C>::start("role at its connection limit", options, "limited", opts).await;
    let start = Instant::now();
    let accepted_before = run.rig.proxy.accepted();
    let load = run.load(hold());
    sleep(Duration::from_secs(4)).await;
    let elapsed = start.elapsed();

    run.stop(load).await;
    let attempts = run.rig.proxy.accepted() - accepted_before;
    let rate = attempts as f64 / elapsed.as_secs_f64();
    run.r.fig(
        "connection attempts under load",
        format!("{attempts} in {} ({rate:.2}/s)", ms(elapsed)),
    );
    run.r.num("attempts per s", rate);
    run.end(2).await
}

/// `close()` while 16 tasks use the pool. Figures: how long `close()` took, how fast every
/// task was told, how long until the server had no backend for the pool. No checkout that
/// starts after `close()` returned may succeed, and the backends must be gone within the
/// timeout + slack (the leak check does not apply to a closed pool).
pub async fn close_under_load<C: Contender>() -> Report {
    let mut run = Run::<C>::start("close under load", Options::default(), "postgres", POOL).await;
    let load = run.load(hold());
    sleep(Duration::from_secs(1)).await;

    let closing = Instant::now();
    run.pool.close().await;
    let closed = Instant::now();
    run.r.fig("close() took", ms(closed - closing));
    let events = run.stop(load).await;
    run.r.fig("every task stopped after", ms(closing.elapsed()));
    let sql = format!(
        "select count(*) from pg_stat_activity where application_name = '{}'",
        run.rig.app
    );
    let mut gone = None;
    while gone.is_none() && closing.elapsed() < TIMEOUT + SLACK {
        if run.rig.psql(&sql).await.ok().as_deref() == Some("0") {
            gone = Some(closing.elapsed());
        }
        sleep(Duration::from_millis(20)).await;
    }
    let r = &mut run.r;
    match gone {
        Some(t) => r.fig("close() -> no backend left", ms(t)),
        None => r.violation(format!(
            "backends left {} after close()",
            ms(TIMEOUT + SLACK)
        )),
    }
    let after: Vec<Event> = events
        .iter()
        .filter(|e| e.started >= closed)
        .cloned()
        .collect();
    r.fig(
        "requests started after close()",
        errors_by_kind(after.iter()),
    );
    let served = after
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Ok))
        .count();
    if served > 0 {
        r.violation(format!(
            "{served} checkouts started after close() succeeded"
        ));
    }
    if let Some(size) = run.pool.size() {
        r.fig("pool size after close()", size);
    }
    r.no_panic_since(run.panics_before);
    run.r
}

/// 16 tasks run `pg_sleep(5)` and give each query up after 150 ms (a request timeout), for
/// 4 s. Figures: queries abandoned, connections the proxy saw (sessions and CancelRequests),
/// whether abandoned queries still run on the server afterwards.
pub async fn cancel_storm<C: Contender>() -> Report {
    let mut run = Run::<C>::start("cancel storm", Options::default(), "postgres", POOL).await;
    let accepted_before = run.rig.proxy.accepted();
    let load = run.load(Work {
        sql: "select pg_sleep(5)".to_owned(),
        abandon_after: Some(Duration::from_millis(150)),
    });
    sleep(Duration::from_secs(4)).await;

    run.stop(load).await;
    let stopped = Instant::now();
    run.r.fig(
        "connections through the proxy (sessions + CancelRequests)",
        run.rig.proxy.accepted() - accepted_before,
    );
    let sql = format!(
        "select count(*) from pg_stat_activity where application_name = '{}' \
         and state = 'active' and query like '%pg_sleep(5)%'",
        run.rig.app
    );
    let mut still = usize::MAX;
    while still > 0 && stopped.elapsed() < TIMEOUT {
        still = run
            .rig
            .psql(&sql)
            .await
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX);
        sleep(Duration::from_millis(20)).await;
    }
    if still == 0 {
        let after = format!("none after {}", ms(stopped.elapsed()));
        run.r
            .fig("abandoned queries still running on the server", after);
    } else {
        run.r.violation(format!(
            "{still} abandoned pg_sleep(5) still running {} after the load stopped",
            ms(TIMEOUT)
        ));
    }
    run.end(POOL.max_size).await
}
