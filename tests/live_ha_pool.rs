//! The pool through a failover and a switchover, on real servers: writes through a
//! `read-write` pool while the primary dies and the standby is promoted, and a primary turned
//! read-only under a pool whose connections then see 25006. Each scenario prints its figures.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::cluster::Cluster;
use support::logs::Captured;
use support::standby::Pair;
use wirepool::Pool;

const TASKS: usize = 16;
const MAX: usize = 5;
const TIMEOUT: Duration = Duration::from_secs(3);
/// What a checkout may take beyond its timeout before it counts as hung.
const SLACK: Duration = Duration::from_secs(2);

fn conninfo(ports: &[u16], app: &str) -> String {
    let hosts = vec!["127.0.0.1"; ports.len()].join(",");
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    format!(
        "host={hosts} port={} user=postgres dbname=postgres connect_timeout=2 \
         target_session_attrs=read-write application_name={app}",
        ports.join(",")
    )
}

/// Backends a server has for `app`, as it says itself.
fn backends(server: &Cluster, app: &str) -> usize {
    server
        .psql(&format!(
            "select count(*) from pg_stat_activity where application_name = '{app}'"
        ))
        .map_or(0, |n| n.parse().unwrap_or(0))
}

/// What the writers saw, with when.
#[derive(Default)]
struct Log {
    writes: Vec<(Instant, u16)>,
    errors: Vec<(Instant, String, Option<String>)>,
    slowest: Duration,
}

/// 16 tasks inserting through `pool` until `stop`: each write records the port that took it,
/// each failure its text and SQLSTATE, and the slowest checkout is kept.
fn writers(
    pool: &Pool,
    stop: &Arc<AtomicBool>,
    log: &Arc<Mutex<Log>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..TASKS)
        .map(|_| {
            let (pool, stop, log) = (pool.clone(), Arc::clone(stop), Arc::clone(log));
            tokio::spawn(async move {
                while !stop.load(SeqCst) {
                    let asked = Instant::now();
                    let checkout = pool.connection().await;
                    let waited = asked.elapsed();
                    {
                        let mut log = log.lock().unwrap();
                        log.slowest = log.slowest.max(waited);
                    }
                    let result = match checkout {
                        Ok(mut conn) => conn
                            .simple_query("INSERT INTO writes DEFAULT VALUES RETURNING current_setting('port')")
                            .await
                            .map(|rows| rows[0].get(0).unwrap_or("0").parse::<u16>().unwrap_or(0)),
                        Err(e) => Err(e),
                    };
                    let failed = {
                        let mut log = log.lock().unwrap();
                        match result {
                            Ok(port) => {
                                log.writes.push((Instant::now(), port));
                                false
                            }
                            Err(e) => {
                                let code = e.code().map(str::to_owned);
                                log.errors.push((Instant::now(), e.to_string(), code));
                                true
                            }
                        }
                    };
                    if failed {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect()
}

/// Ends the writers, each within the pool's timeout and the slack.
async fn stop_writers(stop: &AtomicBool, tasks: Vec<tokio::task::JoinHandle<()>>) {
    stop.store(true, SeqCst);
    for task in tasks {
        tokio::time::timeout(TIMEOUT + SLACK, task)
            .await
            .expect("a writer hung past the pool's timeout")
            .expect("a writer panicked");
    }
}

/// `MAX` checkouts at once succeed and one more times out: no slot leaked.
async fn assert_no_leak(pool: &Pool) {
    let mut held = Vec::new();
    for _ in 0..MAX {
        held.push(
            pool.connection_timeout(TIMEOUT)
                .await
                .expect("max_size checkouts succeed"),
        );
    }
    let extra = pool.connection_timeout(Duration::from_millis(300)).await;
    assert!(extra.unwrap_err().is_pool_timeout(), "one more times out");
    drop(held);
}

/// The primary dies (`-m immediate`) and the standby is promoted while 16 tasks write through a
/// `read-write` pool over `primary,standby`. No write is ever attempted on a read-only server
/// (no 25006), writes land on the new primary soon after the promotion, no checkout hangs, the
/// pool never holds more than `max_size` sessions, and no slot leaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_under_load_lands_writes_on_the_new_primary() {
    let pair = Pair::start().expect("a private primary + standby");
    pair.primary
        .psql("CREATE TABLE writes (id bigserial, at timestamptz DEFAULT now())")
        .unwrap();
    let (p, s) = (pair.primary.port(), pair.standby.port());
    let app = "wp_failover";
    let pool = Pool::builder(conninfo(&[p, s], app).as_str())
        .name(app)
        .min_size(MAX)
        .max_size(MAX)
        .timeout(TIMEOUT)
        .open()
        .await
        .unwrap();
    pool.wait(Duration::from_secs(10)).await.unwrap();
    let (stop, log) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(Mutex::new(Log::default())),
    );
    let tasks = writers(&pool, &stop, &log);
    // The pool's sessions on the new primary, sampled while it is the only server up.
    let most = AtomicUsize::new(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes_before = log.lock().unwrap().writes.len();
    assert!(writes_before > 0, "the pool writes before the failover");
    let stopped = Instant::now();
    let promotion = tokio::task::block_in_place(|| pair.fail_over()).expect("failover");
    let promoted = Instant::now();
    // Wait for the first write on the new primary (bounded).
    let deadline = promoted + Duration::from_secs(10);
    let first = loop {
        let found = log
            .lock()
            .unwrap()
            .writes
            .iter()
            .find(|(at, port)| *at >= promoted && *port == s)
            .map(|(at, _)| *at);
        if let Some(at) = found {
            break at;
        }
        assert!(
            Instant::now() < deadline,
            "no write on the new primary within 10 s"
        );
        most.fetch_max(backends(&pair.standby, app), SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (recovery, since_stop) = (first - promoted, first - stopped);
    tokio::time::sleep(Duration::from_millis(500)).await;
    most.fetch_max(backends(&pair.standby, app), SeqCst);
    stop_writers(&stop, tasks).await;
    let log = std::mem::take(&mut *log.lock().unwrap());
    let read_only: Vec<_> = log
        .errors
        .iter()
        .filter(|e| e.2.as_deref() == Some("25006"))
        .collect();
    let stats = pool.stats();
    eprintln!(
        "failover: promotion {promotion:?}; first write on the new primary {recovery:?} after it, \
         {since_stop:?} after the primary was stopped; \
         {} writes before, {} in all; {} errors ({} read-only); slowest checkout {:?}; \
         most sessions on the new primary {}; {stats}",
        writes_before,
        log.writes.len(),
        log.errors.len(),
        read_only.len(),
        log.slowest,
        most.load(SeqCst),
    );
    assert!(
        read_only.is_empty(),
        "a write reached a read-only server: {read_only:?}"
    );
    assert!(
        recovery < Duration::from_secs(2),
        "writes resumed {recovery:?} after the promotion"
    );
    assert!(
        log.slowest < TIMEOUT + SLACK,
        "a checkout took {:?}",
        log.slowest
    );
    assert!(most.load(SeqCst) <= MAX, "more than max_size sessions");
    assert_no_leak(&pool).await;
    assert!(backends(&pair.standby, app) <= MAX);
    pool.close().await;
}

/// A switchover leaves the old primary up but read-only: a pooled connection to it sees 25006
/// on its next write (or the role change at its next checkout) and is discarded, with a `warn`
/// naming the pool and the cause, and the next checkout lands on the server that is writable
/// now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sees_25006_is_evicted_and_the_next_lands_on_a_writable_server() {
    // Checkouts and returns run on this thread (the runtime's `block_on`), where the eviction
    // is decided and logged.
    let logs = Captured::default();
    let _logging = logs.install();
    let old = Cluster::start().expect("a private cluster");
    let new = Cluster::start().expect("a second private cluster");
    for c in [&old, &new] {
        c.psql("CREATE TABLE writes (id bigserial, at timestamptz DEFAULT now())")
            .unwrap();
    }
    let app = "wp_switchover";
    let pool = Pool::builder(conninfo(&[old.port(), new.port()], app).as_str())
        .name(app)
        .min_size(1)
        .max_size(1)
        .timeout(TIMEOUT)
        .open()
        .await
        .unwrap();
    pool.wait(Duration::from_secs(10)).await.unwrap();
    let write = "INSERT INTO writes DEFAULT VALUES RETURNING current_setting('port')";
    {
        let mut conn = pool.connection().await.unwrap();
        let rows = conn.simple_query(write).await.unwrap();
        assert_eq!(rows[0].get(0), Some(old.port().to_string().as_str()));
    }
    // The switchover: the old primary turns read-only for every session. `pg_reload_conf`
    // only signals the postmaster; once a new session sees the setting, the postmaster has
    // reloaded and signalled every backend, the pool's among them.
    old.psql("ALTER SYSTEM SET default_transaction_read_only = on")
        .unwrap();
    old.psql("SELECT pg_reload_conf()").unwrap();
    while old.psql("SHOW default_transaction_read_only").unwrap() != "on" {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut refused = 0;
    let mut landed = None;
    for _ in 0..5 {
        let mut conn = pool.connection().await.unwrap();
        match conn.simple_query(write).await {
            Ok(rows) => {
                landed = rows[0].get(0).map(str::to_owned);
                break;
            }
            Err(e) => {
                assert_eq!(e.code(), Some("25006"), "{e}");
                refused += 1;
            }
        }
    }
    let stats = pool.stats();
    eprintln!("switchover: {refused} write(s) refused as read-only before one landed; {stats}");
    assert!(
        refused <= 1,
        "the read-only connection was handed out again"
    );
    assert_eq!(landed.as_deref(), Some(new.port().to_string().as_str()));
    assert_eq!(
        stats.evicted_read_only + stats.evicted_role_changed,
        1,
        "{stats}"
    );
    let warn = logs.line_with("evicted");
    assert!(
        warn.contains("WARN") && warn.contains("pool=wp_switchover") && warn.contains("cause="),
        "{warn}"
    );
    pool.close().await;
}
