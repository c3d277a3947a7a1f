//! The end-to-end bench's other sections: the pgbench ceiling, connect rates, memory per idle
//! connection (each pool measured in its own child process) and the psycopg_pool anchor.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::pg_clients::{self, DeadpoolPostgres, PgContender, Wirepool};
use crate::stats::{fmt_ratio, median, print_table, rotation};
use crate::{procfs, runtime, timed_loop, Rate, Settings};

/// Set (to a pool name) in the child process the memory section starts.
pub const MEMORY_CHILD: &str = "WIREPOOL_BENCH_MEMORY_CHILD";
const CONNINFO: &str = "WIREPOOL_BENCH_CONNINFO";
/// The memory section's pools: a small one first (so one-time costs — code paged in, runtime
/// and allocator arenas — are in the baseline), then the measured one.
const MEMORY_BASE: usize = 10;
const MEMORY_IDLE: usize = 200;

fn pg_program(name: &str) -> String {
    std::env::var("WIREPOOL_PG_BIN")
        .map(|dir| format!("{dir}/{name}"))
        .unwrap_or_else(|_| name.to_owned())
}

/// pgbench `-M simple` running `SELECT 1;` with `clients` connections and as many threads, to
/// `host` (an address, or the socket directory); CPU per query is pgbench's own (this
/// process's waited-for children).
pub fn pgbench(
    cluster: &Cluster,
    host: &str,
    clients: usize,
    s: &Settings,
) -> Result<Rate, String> {
    let script = std::env::temp_dir().join(format!("wirepool-select1-{}.sql", std::process::id()));
    std::fs::write(&script, "SELECT 1;\n").map_err(|e| e.to_string())?;
    let c = clients.to_string();
    let before = procfs::cpu_times().map(|c| c.1);
    let out = Command::new(pg_program("pgbench"))
        .args([
            "-n",
            "-M",
            "simple",
            "-c",
            &c,
            "-j",
            &c,
            "-T",
            &s.pgbench_secs.to_string(),
        ])
        .arg("-f")
        .arg(&script)
        .args([
            "-h",
            host,
            "-p",
            &cluster.port().to_string(),
            "-U",
            "postgres",
            "postgres",
        ])
        .output()
        .map_err(|e| format!("cannot run pgbench: {e}"))?;
    let after = procfs::cpu_times().map(|c| c.1);
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tps: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split(' ').next())
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| {
            format!(
                "no tps in pgbench output: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let queries = tps * s.pgbench_secs as f64;
    let cpu = after
        .zip(before)
        .map_or(Duration::ZERO, |(b, a)| b.saturating_sub(a));
    Ok(Rate {
        per_second: tps,
        cpu_per_op: Duration::from_secs_f64(cpu.as_secs_f64() / queries.max(1.0)),
    })
}

/// Connections per second, opened, authenticated and closed, for each authentication method,
/// one and eight at a time: wirepool's client against tokio-postgres. The last row adds
/// `target_session_attrs=read-write`, which tokio-postgres checks with `SHOW
/// transaction_read_only` on every connect and wirepool from what PostgreSQL 14+ reports at login.
pub fn connect(cluster: &Cluster, s: &Settings) {
    let auths = [
        ("trust", "postgres", ""),
        ("md5", "md5_user", ""),
        ("SCRAM-SHA-256", "scram_user", ""),
        (
            "trust, read-write",
            "postgres",
            " target_session_attrs=read-write",
        ),
    ];
    let rt = runtime(2);
    let mut rows = Vec::new();
    for (auth, user, extra) in auths {
        let conninfo = cluster.conninfo(user, Some("password")) + extra;
        let Ok(wp) = conninfo.parse::<wirepool::Config>().map(Arc::new) else {
            eprintln!("wirepool cannot parse {conninfo}");
            continue;
        };
        let Ok(tp) = conninfo.parse::<tokio_postgres::Config>().map(Arc::new) else {
            eprintln!("tokio-postgres cannot parse {conninfo}");
            continue;
        };
        for conc in [1usize, 8] {
            let (mut tokio_pg, mut ours) = (Vec::new(), Vec::new());
            for round in 0..s.rounds {
                for i in rotation(2, round) {
                    let r = if i == 0 {
                        let tp = Arc::clone(&tp);
                        timed_loop(&rt, conc, s, move || {
                            let tp = Arc::clone(&tp);
                            async move { pg_clients::connect_tokio_postgres(&tp).await }
                        })
                    } else {
                        let wp = Arc::clone(&wp);
                        timed_loop(&rt, conc, s, move || {
                            let wp = Arc::clone(&wp);
                            async move { pg_clients::connect_wirepool(&wp).await }
                        })
                    };
                    match r {
                        Ok(r) if i == 0 => tokio_pg.push(r),
                        Ok(r) => ours.push(r),
                        Err(e) => eprintln!("connect {auth} failed: {e}"),
                    }
                }
            }
            let q = |v: &[Rate]| median(&v.iter().map(|r| r.per_second).collect::<Vec<_>>());
            let cpu = |v: &[Rate]| {
                median(
                    &v.iter()
                        .map(|r| r.cpu_per_op.as_secs_f64() * 1e6)
                        .collect::<Vec<_>>(),
                )
            };
            let ratios: Vec<f64> = ours
                .iter()
                .zip(&tokio_pg)
                .map(|(a, b)| a.per_second / b.per_second)
                .collect();
            rows.push(vec![
                auth.to_owned(),
                conc.to_string(),
                format!("{:.0}", q(&tokio_pg)),
                format!("{:.0}", cpu(&tokio_pg)),
                format!("{:.0} ({}×)", q(&ours), fmt_ratio(median(&ratios))),
                format!("{:.0}", cpu(&ours)),
            ]);
        }
    }
    println!(
        "## Connect: connections/s opened, authenticated and closed (2 workers; median of {} \
         interleaved rounds), client CPU µs per connection\n",
        s.rounds
    );
    let header = [
        "auth",
        "at a time",
        "tokio-postgres /s",
        "CPU µs",
        "wirepool /s (ratio)",
        "CPU µs",
    ];
    print_table(&header.map(str::to_owned), &rows);
}

/// Waits until the server has no client backends left but psql's own (closed connections
/// linger a moment), so pools measured one after another never exceed `max_connections`.
fn wait_for_backends_to_exit(cluster: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend';";
    while Instant::now() < deadline {
        match cluster.psql(sql).map(|n| n.trim().parse::<u32>()) {
            Ok(Ok(n)) if n <= 1 => return,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// RSS per idle connection: each pool in a fresh child process (this executable again).
pub fn memory(cluster: &Cluster) {
    let conninfo = cluster.conninfo("postgres", None);
    let mut rows = Vec::new();
    for name in [Wirepool::NAME, DeadpoolPostgres::NAME] {
        wait_for_backends_to_exit(cluster);
        let out = std::env::current_exe().and_then(|exe| {
            Command::new(exe)
                .env(MEMORY_CHILD, name)
                .env(CONNINFO, &conninfo)
                .output()
        });
        let parsed = out.ok().and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let v: Vec<u64> = text
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            match v[..] {
                [base, full] => Some((base, full)),
                _ => {
                    eprintln!(
                        "memory child {name}: {text} {}",
                        String::from_utf8_lossy(&o.stderr)
                    );
                    None
                }
            }
        });
        let Some((base, full)) = parsed else { continue };
        let per = full.saturating_sub(base) as f64 / MEMORY_IDLE as f64 / 1024.0;
        rows.push(vec![
            name.to_owned(),
            format!("{:.1}", base as f64 / 1048576.0),
            format!("{:.1}", full as f64 / 1048576.0),
            format!("{per:.1}"),
        ]);
    }
    println!(
        "## Memory: RSS of a process holding idle connections (each pool in its own child \
         process; {MEMORY_BASE} connections first, then {MEMORY_IDLE} more, each used once)\n"
    );
    let header = [
        "pool".to_owned(),
        format!("RSS with {MEMORY_BASE} (MiB)"),
        format!("RSS with {} (MiB)", MEMORY_BASE + MEMORY_IDLE),
        "KiB per extra idle connection".to_owned(),
    ];
    print_table(&header, &rows);
}

/// Opens `size` connections in a pool of that size and runs one query on each, all checked
/// out at once so every connection is touched; the pool stays open.
async fn fill<C: PgContender>(conninfo: &str, size: usize) -> Result<Arc<C>, String> {
    let pool = Arc::new(C::build(conninfo, size).await?);
    let mut tasks = Vec::new();
    for _ in 0..size {
        let p = Arc::clone(&pool);
        tasks.push(tokio::spawn(async move {
            // Held across a sleep so the pool must hand out every connection once.
            p.select1().await?;
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(pool)
}

/// RSS with the small pool open, then with both: `(base, full)` in bytes.
async fn measure<C: PgContender>(conninfo: &str) -> Result<(u64, u64), String> {
    let _base = fill::<C>(conninfo, MEMORY_BASE).await?;
    let base = procfs::rss_bytes().unwrap_or(0);
    let _all = fill::<C>(conninfo, MEMORY_IDLE).await?;
    Ok((base, procfs::rss_bytes().unwrap_or(0)))
}

/// The memory child: prints "RSS-with-base RSS-with-all" in bytes.
pub fn memory_child(which: &str) {
    let conninfo = std::env::var(CONNINFO).unwrap_or_default();
    let rt = runtime(2);
    let result = if which == Wirepool::NAME {
        rt.block_on(measure::<Wirepool>(&conninfo))
    } else {
        rt.block_on(measure::<DeadpoolPostgres>(&conninfo))
    };
    match result {
        Ok((base, full)) => println!("{base} {full}"),
        Err(e) => eprintln!("{e}"),
    }
}

/// The psycopg_pool anchor: runs `scripts/bench/psycopg_pool_bench.py` with the Python named by
/// `WIREPOOL_BENCH_PYTHON` (set up by `scripts/bench/end_to_end.sh`) against this cluster.
pub fn python(cluster: &Cluster, s: &Settings) {
    let Ok(python) = std::env::var("WIREPOOL_BENCH_PYTHON") else {
        println!("## psycopg_pool\n\nskipped: run `scripts/bench/end_to_end.sh` (it installs psycopg) to include it\n");
        return;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/bench/psycopg_pool_bench.py"
    );
    let out = Command::new(python)
        .arg(script)
        .args(["--conninfo", &cluster.conninfo("postgres", None)])
        .args(["--seconds", &format!("{:.3}", s.window.as_secs_f64())])
        .args(["--rounds", &s.rounds.to_string()])
        .output();
    match out {
        Ok(o) => {
            print!("{}", String::from_utf8_lossy(&o.stdout));
            if !o.status.success() {
                eprintln!(
                    "psycopg_pool bench failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
        Err(e) => eprintln!("cannot run the psycopg_pool bench: {e}"),
    }
}
