//! The chaos scenarios of tests/chaos.rs run against the pools wirepool's users would otherwise
//! pick, for docs/reliability.md: deadpool-postgres (in process) and psycopg_pool's
//! `AsyncConnectionPool` (a Python worker, scripts/chaos/psycopg_pool_worker.py, driven over a
//! pipe). They print figures and the invariants each pool breaks; they assert nothing, and are
//! ignored: `scripts/chaos/peers.sh` runs them (it installs psycopg in a virtualenv).
//!
//! Settings: the same sizes and 2 s timeout as wirepool's scenarios. deadpool has no single
//! checkout deadline: its `wait`, `create` and `recycle` timeouts are each set to 2 s
//! (its default is none), with the default `RecyclingMethod::Fast`.

mod support;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, PoolError, Runtime};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::NoTls;

use support::chaos::{give_up_after, short, Contender, Failure, PoolOpts};
use support::report::Report;
use support::scenarios;

/// deadpool-postgres 0.14 over tokio-postgres.
struct Deadpool(deadpool_postgres::Pool);

fn pg_label(e: &tokio_postgres::Error) -> String {
    match e.code() {
        Some(code) => format!("server {}", code.code()),
        None if e.is_closed() => "connection closed".to_owned(),
        None => short(&e.to_string()),
    }
}

fn deadpool_failure(e: &PoolError) -> Failure {
    match e {
        PoolError::Timeout(which) => Failure {
            label: format!("pool timeout ({which:?}), no cause"),
            pool_timeout: true,
            has_cause: false,
        },
        PoolError::Backend(e) => Failure::other(format!("connect: {}", pg_label(e))),
        PoolError::Closed => Failure::other("pool closed"),
        e => Failure::other(short(&e.to_string())),
    }
}

impl Contender for Deadpool {
    const NAME: &'static str = "deadpool-postgres";
    type Conn = deadpool_postgres::Object;

    async fn open(conninfo: &str, opts: PoolOpts) -> Result<Self, String> {
        let config: tokio_postgres::Config = conninfo.parse().map_err(|e| format!("{e}"))?;
        let pool = deadpool_postgres::Pool::builder(Manager::new(config, NoTls))
            .max_size(opts.max_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(opts.timeout))
            .create_timeout(Some(opts.timeout))
            .recycle_timeout(Some(opts.timeout))
            .build()
            .map_err(|e| e.to_string())?;
        // No min_size in deadpool: open `min_size` by holding them at once.
        let mut held = Vec::new();
        for _ in 0..opts.min_size {
            held.push(pool.get().await.map_err(|e| e.to_string())?);
        }
        Ok(Deadpool(pool))
    }

    async fn checkout(&self) -> Result<Self::Conn, Failure> {
        self.0.get().await.map_err(|e| deadpool_failure(&e))
    }

    async fn query(
        conn: &mut Self::Conn,
        sql: &str,
        abandon_after: Option<Duration>,
    ) -> Result<(), Failure> {
        give_up_after(conn.simple_query(sql), abandon_after)
            .await?
            .map(drop)
            .map_err(|e| Failure::other(pg_label(&e)))
    }

    async fn close(&self) {
        self.0.close();
    }

    fn size(&self) -> Option<usize> {
        Some(self.0.status().size)
    }

    fn describe(&self) -> String {
        format!("{:?}", self.0.status())
    }
}

/// psycopg_pool's `AsyncConnectionPool` in a Python worker process; see the worker's
/// docstring for the protocol. `WIREPOOL_CHAOS_PYTHON` names the interpreter (default
/// `python3`), which needs `psycopg[binary]` and `psycopg_pool`.
struct Psycopg {
    bridge: Arc<Bridge>,
    _child: tokio::process::Child,
}

struct Bridge {
    requests: mpsc::UnboundedSender<String>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Vec<String>>>>,
    next: AtomicU64,
}

/// A connection the worker holds for us; dropping it sends `put`.
struct PsyConn {
    id: u64,
    bridge: Arc<Bridge>,
}

impl Drop for PsyConn {
    fn drop(&mut self) {
        let id = self.bridge.next.fetch_add(1, SeqCst);
        let _ = self
            .bridge
            .requests
            .send(format!("{id}\tput\t{}\n", self.id));
    }
}

impl Bridge {
    /// Sends a request; its id and the reply's fields after `<id>`.
    async fn call(&self, verb: &str, args: &[&str]) -> (u64, Result<Vec<String>, Failure>) {
        let id = self.next.fetch_add(1, SeqCst);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending").insert(id, tx);
        let mut line = format!("{id}\t{verb}");
        for a in args {
            line.push('\t');
            line.push_str(a);
        }
        line.push('\n');
        if self.requests.send(line).is_err() {
            return (id, Err(Failure::other("python worker gone")));
        }
        let Ok(fields) = rx.await else {
            return (id, Err(Failure::other("python worker gone")));
        };
        let result = match fields.first().map(String::as_str) {
            Some("ok") => Ok(fields[1..].to_vec()),
            Some("fail") if fields.len() >= 4 => Err(Failure {
                pool_timeout: fields[1] == "1",
                has_cause: fields[2] == "1",
                label: fields[3].clone(),
            }),
            _ => Err(Failure::other(format!("bad reply {fields:?}"))),
        };
        (id, result)
    }
}

impl Contender for Psycopg {
    const NAME: &'static str = "psycopg_pool";
    type Conn = PsyConn;

    async fn open(conninfo: &str, opts: PoolOpts) -> Result<Self, String> {
        let python = std::env::var("WIREPOOL_CHAOS_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/chaos/psycopg_pool_worker.py"
        );
        let mut child = tokio::process::Command::new(&python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {python}: {e} (set WIREPOOL_CHAOS_PYTHON)"))?;
        let (requests, mut rx) = mpsc::unbounded_channel::<String>();
        let mut stdin = child.stdin.take().expect("stdin");
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        let bridge = Arc::new(Bridge {
            requests,
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let weak = Arc::downgrade(&bridge);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut fields: Vec<String> = line.split('\t').map(str::to_owned).collect();
                let Some(bridge) = weak.upgrade() else { return };
                let Ok(id) = fields.remove(0).parse::<u64>() else {
                    continue;
                };
                let waiting = bridge.pending.lock().expect("pending").remove(&id);
                if let Some(tx) = waiting {
                    let _ = tx.send(fields);
                }
            }
            // The worker is gone: fail whatever still waits for a reply.
            if let Some(bridge) = weak.upgrade() {
                bridge.pending.lock().expect("pending").clear();
            }
        });
        let args = [
            conninfo.to_owned(),
            opts.min_size.to_string(),
            opts.max_size.to_string(),
            opts.timeout.as_secs_f64().to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match bridge.call("open", &args).await.1 {
            Ok(_) => Ok(Psycopg {
                bridge,
                _child: child,
            }),
            Err(f) => Err(format!(
                "the psycopg_pool worker failed to open: {} (does {python} have \
                 `psycopg[binary]` and `psycopg_pool`? scripts/chaos/peers.sh installs them)",
                f.label
            )),
        }
    }

    async fn checkout(&self) -> Result<PsyConn, Failure> {
        let (id, result) = self.bridge.call("get", &[]).await;
        result.map(|_| PsyConn {
            id,
            bridge: Arc::clone(&self.bridge),
        })
    }

    async fn query(
        conn: &mut PsyConn,
        sql: &str,
        abandon_after: Option<Duration>,
    ) -> Result<(), Failure> {
        let abandon = abandon_after.map_or("-".to_owned(), |d| d.as_millis().to_string());
        let id = conn.id.to_string();
        conn.bridge
            .call("query", &[&id, &abandon, sql])
            .await
            .1
            .map(drop)
    }

    async fn close(&self) {
        let _ = self.bridge.call("close", &[]).await;
    }

    fn size(&self) -> Option<usize> {
        None
    }

    fn describe(&self) -> String {
        "(psycopg_pool: see the worker's stderr)".to_owned()
    }
}

/// Prints the invariants a peer broke; asserts nothing (these are figures, not gates).
fn show(r: &Report) {
    if r.violations.is_empty() {
        eprintln!("chaos {}/{}: no invariant broken", r.pool, r.scenario);
    }
}

/// The seven scenarios for one peer.
macro_rules! peer_scenarios {
    ($peer:ident, $pool:ty) => {
        mod $peer {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "a peer's figures for docs/reliability.md: scripts/chaos/peers.sh"]
            async fn restart_under_load() {
                show(&scenarios::restart_under_load::<$pool>(Duration::from_secs(3)).await);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "a peer's figures for docs/reliability.md: scripts/chaos/peers.sh"]
            async fn restart_after_10s_outage() {
                show(&scenarios::restart_under_load::<$pool>(Duration::from_secs(10)).await);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "a peer's figures for docs/reliability.md: scripts/chaos/peers.sh"]
            async fn crash_recovery() {
                show(&scenarios::crash_recovery::<$pool>().await);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "a peer's figures for docs/reliability.md: scripts/chaos/peers.sh"]
            async fn terminate_storm() {
                show(&scenarios::terminate_storm::<$pool>().await);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "a peer's figures for docs/reliability.md: scripts/chaos/peers.sh"]
            async fn stalled_network() {
                show(&scenarios::stalled_network::<$pool>(Duration::from_secs(3)).await);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "a peer's figures for docs/reliability.md: scripts/chaos/peers.sh"]
            async fn role_at_connection_limit() {
                show(&scenarios::role_at_connection_limit::<$pool>().await);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "a peer's figures for docs/reliability.md: scripts/chaos/peers.sh"]
            async fn close_under_load() {
                show(&scenarios::close_under_load::<$pool>().await);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "a peer's figures for docs/reliability.md: scripts/chaos/peers.sh"]
            async fn cancel_storm() {
                show(&scenarios::cancel_storm::<$pool>().await);
            }
        }
    };
}

peer_scenarios!(deadpool, Deadpool);
peer_scenarios!(psycopg, Psycopg);

/// deadpool-postgres through the failover and the switchover of tests/live_ha_pool.rs, with
/// tokio-postgres' own `target_session_attrs=read-write` and deadpool's default
/// `RecyclingMethod::Fast`: the figures for docs/reliability.md's HA section.
mod deadpool_ha {
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    use super::*;
    use support::cluster::Cluster;
    use support::standby::Pair;

    const WRITE: &str = "INSERT INTO writes DEFAULT VALUES RETURNING current_setting('port')";

    /// When a write ended, and the port that took it or the error's SQLSTATE.
    type Attempt = (Instant, Result<u16, String>);

    fn pool(ports: &[u16], max_size: usize) -> deadpool_postgres::Pool {
        let hosts = vec!["127.0.0.1"; ports.len()].join(",");
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        let conninfo = format!(
            "host={hosts} port={} user=postgres dbname=postgres connect_timeout=2 \
             target_session_attrs=read-write",
            ports.join(",")
        );
        let config: tokio_postgres::Config = conninfo.parse().unwrap();
        let timeout = Some(Duration::from_secs(3));
        deadpool_postgres::Pool::builder(Manager::new(config, NoTls))
            .max_size(max_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(timeout)
            .build()
            .unwrap()
    }

    /// One write: the port that took it, or the error's SQLSTATE (or "-").
    async fn write(pool: &deadpool_postgres::Pool) -> Result<u16, String> {
        let conn = pool.get().await.map_err(|e| short(&e.to_string()))?;
        let rows = conn
            .simple_query(WRITE)
            .await
            .map_err(|e| e.code().map_or("-".to_owned(), |c| c.code().to_owned()))?;
        Ok(rows
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|p| p.parse().ok()),
                _ => None,
            })
            .unwrap_or(0))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a peer's figures for docs/reliability.md: scripts/chaos/peers.sh"]
    async fn failover_under_load() {
        let pair = Pair::start().expect("a private primary + standby");
        pair.primary
            .psql("CREATE TABLE writes (id bigserial, at timestamptz DEFAULT now())")
            .unwrap();
        let (p, s) = (pair.primary.port(), pair.standby.port());
        let pool = pool(&[p, s], 5);
        let stop = Arc::new(AtomicBool::new(false));
        let log: Arc<Mutex<Vec<Attempt>>> = Arc::default();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (pool, stop, log) = (pool.clone(), Arc::clone(&stop), Arc::clone(&log));
                tokio::spawn(async move {
                    while !stop.load(SeqCst) {
                        let r = write(&pool).await;
                        let failed = r.is_err();
                        log.lock().unwrap().push((Instant::now(), r));
                        if failed {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let down = Instant::now();
        let promotion = tokio::task::block_in_place(|| pair.fail_over()).expect("failover");
        let promoted = Instant::now();
        tokio::time::sleep(Duration::from_secs(5)).await;
        stop.store(true, SeqCst);
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        let log = std::mem::take(&mut *log.lock().unwrap());
        let first = log
            .iter()
            .find(|(at, r)| *at >= promoted && *r == Ok(s))
            .map(|(at, _)| *at - promoted);
        let after: Vec<_> = log.iter().filter(|(at, _)| *at >= promoted).collect();
        let read_only = after
            .iter()
            .filter(|(_, r)| r.as_ref().err().is_some_and(|c| c == "25006"))
            .count();
        let errors = after.iter().filter(|(_, r)| r.is_err()).count();
        // Each failed checkout while no server is writable is a connect attempt (nothing is
        // idle): the rate the pool hits the servers at.
        let during = log
            .iter()
            .filter(|(at, r)| *at >= down && *at < promoted && r.is_err())
            .count();
        eprintln!(
            "chaos deadpool-postgres/failover: promotion {promotion:?}; first write on the new \
             primary {first:?} after it; {during} failed checkouts while no server was writable \
             ({:.0}/s); in the 5 s after: {} writes, {errors} errors ({read_only} read-only)",
            during as f64 / (promoted - down).as_secs_f64(),
            after.len() - errors
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a peer's figures for docs/reliability.md: scripts/chaos/peers.sh"]
    async fn switchover() {
        let old = Cluster::start().expect("a private cluster");
        let new = Cluster::start().expect("a second private cluster");
        for c in [&old, &new] {
            c.psql("CREATE TABLE writes (id bigserial, at timestamptz DEFAULT now())")
                .unwrap();
        }
        let pool = pool(&[old.port(), new.port()], 1);
        assert_eq!(write(&pool).await, Ok(old.port()));
        old.psql("ALTER SYSTEM SET default_transaction_read_only = on")
            .unwrap();
        old.psql("SELECT pg_reload_conf()").unwrap();
        // The old server's sessions take the reload when they next go idle: wait until a
        // new session there sees it, then write 20 times, one after another.
        while old.psql("SHOW default_transaction_read_only").unwrap() != "on" {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (mut refused, mut on_old, mut on_new) = (0, 0, 0);
        for _ in 0..20 {
            match write(&pool).await {
                Ok(port) if port == old.port() => on_old += 1,
                Ok(_) => on_new += 1,
                Err(code) if code == "25006" => refused += 1,
                Err(other) => panic!("{other}"),
            }
        }
        eprintln!(
            "chaos deadpool-postgres/switchover: of 20 writes after the old primary turned \
             read-only, {refused} refused (25006), {on_old} landed on it before its session \
             took the reload, {on_new} on the new primary"
        );
    }
}
