//! `cargo bench --bench tls`: wirepool over TLS against tokio-postgres over
//! tokio-postgres-rustls (the same rustls, the same `ring` provider), on a throwaway cluster with
//! `ssl = on` and certificates made for the run (tests/support/pki.rs, the `openssl` CLI).
//! Skips with a message if PostgreSQL's binaries or `openssl` are missing.
//!
//! Sections:
//! - `select1`: `SELECT 1` from 16 tasks through a pool of 5, on 1- and 2-worker runtimes:
//!   queries/s and client CPU per query for deadpool-postgres over TLS (the reference), wirepool
//!   over TLS, and both in plaintext (what TLS costs each).
//! - `connect`: connect + SCRAM-SHA-256-PLUS (`channel_binding=require`) + close, one at a
//!   time on a 1-worker runtime: wirepool vs tokio-postgres, connections/s and CPU per
//!   connection.
//! - `memory`: resident memory per idle TLS connection, each pool in a child process of its
//!   own (this executable again): a pool of 10, each used once, then 200 more; the difference
//!   over 200.
//!
//! Both clients verify the server as `verify-full` (the CA as the only root, the host name
//! `localhost`). Knobs: `WIREPOOL_BENCH_ROUNDS` (3), `WIREPOOL_BENCH_MS` (1500),
//! `WIREPOOL_BENCH_QUICK=1`, `WIREPOOL_BENCH_ONLY=select1,connect,memory`.

#[path = "../tests/support/cluster.rs"]
mod cluster;
#[path = "support/harness.rs"]
mod harness;
#[path = "../tests/support/pki.rs"]
mod pki;
#[path = "support/procfs.rs"]
mod procfs;
#[path = "support/stats.rs"]
mod stats;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use harness::Rate;
use stats::{fmt_ratio, median, median_ratio, print_table, rotation};

type BoxFut = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One contender: builds a pool (or nothing) and answers one operation.
struct Contender {
    name: &'static str,
    op: Arc<dyn Fn() -> BoxFut + Send + Sync>,
}

struct Setup {
    cluster: cluster::Cluster,
    _pki: pki::Pki,
    ca: std::path::PathBuf,
}

impl Setup {
    fn start() -> Result<Setup, String> {
        let pki = pki::Pki::new()?;
        let ca = pki.ca("bench-ca", pki::KeyKind::P256)?;
        let cert = pki.server(
            "bench-server",
            &ca,
            pki::KeyKind::P256,
            "localhost",
            "DNS:localhost,IP:127.0.0.1",
        )?;
        let cluster =
            cluster::Cluster::start_with(cluster::Options::tls(cert.cert_pem(), cert.key_pem()))?;
        Ok(Setup {
            cluster,
            ca: ca.cert.clone(),
            _pki: pki,
        })
    }

    /// A conninfo for `user` with `extra`; TLS settings as `verify-full` unless `extra` says
    /// `sslmode=disable`.
    fn conninfo(&self, user: &str, password: Option<&str>, extra: &str) -> String {
        let mut s = format!(
            "host=localhost hostaddr=127.0.0.1 port={} dbname=postgres user={user} \
             sslrootcert={} {extra}",
            self.cluster.port(),
            self.ca.display()
        );
        if let Some(p) = password {
            s.push_str(&format!(" password={p}"));
        }
        s
    }

    fn rustls_config(&self) -> Result<rustls::ClientConfig, String> {
        rustls_config(&self.ca)
    }
}

/// The rustls configuration tokio-postgres gets: the CA as the only root, `ring`.
fn rustls_config(ca: &std::path::Path) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls::pki_types::CertificateDer::from_pem_file(ca).map_err(|e| e.to_string())?;
    roots.add(ca).map_err(|e| e.to_string())?;
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

async fn wirepool_pool(conninfo: String, size: usize) -> Result<Contender, String> {
    let pool = wirepool::Pool::builder(conninfo.as_str())
        .min_size(size)
        .max_size(size)
        .open()
        .await
        .map_err(|e| e.to_string())?;
    pool.wait(Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    let pool = Arc::new(pool);
    Ok(Contender {
        name: "",
        op: Arc::new(move || {
            let pool = Arc::clone(&pool);
            Box::pin(async move {
                let mut conn = pool.connection().await.map_err(|e| e.to_string())?;
                let rows = conn
                    .simple_query("SELECT 1")
                    .await
                    .map_err(|e| e.to_string())?;
                std::hint::black_box(rows);
                Ok(())
            })
        }),
    })
}

async fn deadpool_pool<T>(conninfo: &str, size: usize, tls: T) -> Result<Contender, String>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    let config: tokio_postgres::Config = conninfo.parse().map_err(|e| format!("{e}"))?;
    let manager = deadpool_postgres::Manager::new(config, tls);
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| e.to_string())?;
    let mut held = Vec::with_capacity(size);
    for _ in 0..size {
        held.push(pool.get().await.map_err(|e| e.to_string())?);
    }
    drop(held);
    Ok(Contender {
        name: "",
        op: Arc::new(move || {
            let pool = pool.clone();
            Box::pin(async move {
                let client = pool.get().await.map_err(|e| e.to_string())?;
                let rows = client
                    .simple_query("SELECT 1")
                    .await
                    .map_err(|e| e.to_string())?;
                std::hint::black_box(rows);
                Ok(())
            })
        }),
    })
}

const SELECT1: [&str; 4] = [
    "deadpool-postgres, TLS (tokio-postgres-rustls)",
    "wirepool, TLS",
    "deadpool-postgres, plaintext",
    "wirepool, plaintext",
];

async fn select1_contender(setup: &Setup, i: usize, size: usize) -> Result<Contender, String> {
    let tls_info = setup.conninfo("postgres", None, "sslmode=verify-full");
    let plain_info = setup.conninfo("postgres", None, "sslmode=disable");
    let mut c = match i {
        0 => {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(setup.rustls_config()?);
            // tokio-postgres knows only disable/prefer/require; its rustls connector verifies.
            let info = setup.conninfo("postgres", None, "sslmode=require");
            deadpool_pool(&strip_sslrootcert(&info), size, tls).await?
        }
        1 => wirepool_pool(tls_info, size).await?,
        2 => deadpool_pool(&strip_sslrootcert(&plain_info), size, tokio_postgres::NoTls).await?,
        _ => wirepool_pool(plain_info, size).await?,
    };
    c.name = SELECT1[i];
    Ok(c)
}

/// tokio-postgres refuses keywords it does not know, `sslrootcert` among them.
fn strip_sslrootcert(conninfo: &str) -> String {
    conninfo
        .split(' ')
        .filter(|kv| !kv.starts_with("sslrootcert="))
        .collect::<Vec<_>>()
        .join(" ")
}

fn select1(setup: &Setup, rounds: usize, window: Duration) {
    const TASKS: usize = 16;
    const SIZE: usize = 5;
    let workers = [1usize, 2];
    let mut rates: Vec<Vec<Vec<Rate>>> = vec![vec![Vec::new(); SELECT1.len()]; workers.len()];
    for round in 0..rounds {
        for (wi, &w) in workers.iter().enumerate() {
            for i in rotation(SELECT1.len(), round) {
                let rt = runtime(w);
                let run = rt
                    .block_on(select1_contender(setup, i, SIZE))
                    .and_then(|c| {
                        let op = Arc::clone(&c.op);
                        harness::timed_tasks(&rt, TASKS, window, move || op())
                    });
                match run {
                    Ok(r) => rates[wi][i].push(r),
                    Err(e) => eprintln!("{} failed: {e}", SELECT1[i]),
                }
            }
        }
        eprintln!("select1 round {}/{rounds} done", round + 1);
    }
    println!(
        "## SELECT 1 over TLS through the pool: {TASKS} tasks, pool of {SIZE}\n\n(median of \
         {rounds} interleaved rounds, {window:?} windows; ratios to deadpool-postgres over TLS, \
         per round)\n"
    );
    let header = [
        "runtime",
        "client",
        "q/s",
        "q/s ratio",
        "CPU µs/q",
        "CPU ratio",
    ]
    .map(str::to_owned);
    let mut rows = Vec::new();
    for (wi, &w) in workers.iter().enumerate() {
        let reference = &rates[wi][0];
        for (i, name) in SELECT1.iter().enumerate() {
            let runs = &rates[wi][i];
            rows.push(vec![
                format!("{w} worker{}", if w > 1 { "s" } else { "" }),
                (*name).to_owned(),
                format!(
                    "{:.0}",
                    median(&runs.iter().map(|r| r.per_second).collect::<Vec<_>>())
                ),
                fmt_ratio(median_ratio(runs, reference, |r| r.per_second)),
                format!(
                    "{:.1}",
                    median(&runs.iter().map(Rate::cpu_us).collect::<Vec<_>>())
                ),
                fmt_ratio(median_ratio(runs, reference, Rate::cpu_us)),
            ]);
        }
    }
    print_table(&header, &rows);
}

const CONNECT: [&str; 2] = ["tokio-postgres + tokio-postgres-rustls", "wirepool"];

fn connect_contender(setup: &Setup, i: usize) -> Result<Contender, String> {
    match i {
        0 => {
            let info = strip_sslrootcert(&setup.conninfo(
                "scram_user",
                Some("password"),
                "sslmode=require channel_binding=require",
            ));
            let config: tokio_postgres::Config = info.parse().map_err(|e| format!("{e}"))?;
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(setup.rustls_config()?);
            Ok(Contender {
                name: CONNECT[0],
                op: Arc::new(move || {
                    let (config, tls) = (config.clone(), tls.clone());
                    Box::pin(async move {
                        let (client, conn) =
                            config.connect(tls).await.map_err(|e| e.to_string())?;
                        let task = tokio::spawn(conn);
                        drop(client);
                        task.await
                            .map_err(|e| e.to_string())?
                            .map_err(|e| e.to_string())
                    })
                }),
            })
        }
        _ => {
            let config: wirepool::Config = setup
                .conninfo(
                    "scram_user",
                    Some("password"),
                    "sslmode=verify-full channel_binding=require",
                )
                .parse()
                .map_err(|e: wirepool::Error| e.to_string())?;
            Ok(Contender {
                name: CONNECT[1],
                op: Arc::new(move || {
                    let config = config.clone();
                    Box::pin(async move {
                        let conn = wirepool::Connection::connect(&config)
                            .await
                            .map_err(|e| e.to_string())?;
                        conn.close().await.map_err(|e| e.to_string())
                    })
                }),
            })
        }
    }
}

fn connect(setup: &Setup, rounds: usize, window: Duration) {
    let mut rates: Vec<Vec<Rate>> = vec![Vec::new(); CONNECT.len()];
    for round in 0..rounds {
        for i in rotation(CONNECT.len(), round) {
            let rt = runtime(1);
            let run = connect_contender(setup, i).and_then(|c| {
                let op = Arc::clone(&c.op);
                harness::timed_tasks(&rt, 1, window, move || op())
            });
            match run {
                Ok(r) => rates[i].push(r),
                Err(e) => eprintln!("{} failed: {e}", CONNECT[i]),
            }
        }
        eprintln!("connect round {}/{rounds} done", round + 1);
    }
    println!(
        "## Connect + SCRAM-SHA-256-PLUS + close over TLS, one at a time\n\n(median of {rounds} \
         interleaved rounds, {window:?} windows; ratios to tokio-postgres, per round)\n"
    );
    let header = [
        "client",
        "conn/s",
        "conn/s ratio",
        "CPU µs/conn",
        "CPU ratio",
    ]
    .map(str::to_owned);
    let rows = CONNECT
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let runs = &rates[i];
            vec![
                (*name).to_owned(),
                format!(
                    "{:.0}",
                    median(&runs.iter().map(|r| r.per_second).collect::<Vec<_>>())
                ),
                fmt_ratio(median_ratio(runs, &rates[0], |r| r.per_second)),
                format!(
                    "{:.0}",
                    median(&runs.iter().map(Rate::cpu_us).collect::<Vec<_>>())
                ),
                fmt_ratio(median_ratio(runs, &rates[0], Rate::cpu_us)),
            ]
        })
        .collect::<Vec<_>>();
    print_table(&header, &rows);
}

/// The memory child's environment: which pool, and the conninfo / CA file.
const MEMORY_CHILD: &str = "WIREPOOL_TLS_BENCH_MEMORY_CHILD";
const MEMORY_CONNINFO: &str = "WIREPOOL_TLS_BENCH_CONNINFO";
const MEMORY_CA: &str = "WIREPOOL_TLS_BENCH_CA";
const MEMORY_BASE: usize = 10;
const MEMORY_IDLE: usize = 200;
const MEMORY: [&str; 2] = [
    "deadpool-postgres, TLS (tokio-postgres-rustls)",
    "wirepool, TLS",
];

fn memory(setup: &Setup) {
    let mut rows = Vec::new();
    for (i, name) in MEMORY.iter().enumerate() {
        wait_for_backends_to_exit(&setup.cluster);
        let out = std::env::current_exe().and_then(|exe| {
            std::process::Command::new(exe)
                .env(MEMORY_CHILD, i.to_string())
                .env(
                    MEMORY_CONNINFO,
                    setup.conninfo("postgres", None, "sslmode=verify-full"),
                )
                .env(MEMORY_CA, &setup.ca)
                .output()
        });
        let text = out
            .as_ref()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let v: Vec<u64> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let [base, full] = v[..] else {
            let err = out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
            eprintln!("memory child {name}: {text} {err:?}");
            continue;
        };
        rows.push(vec![
            (*name).to_owned(),
            format!("{:.1}", base as f64 / 1048576.0),
            format!("{:.1}", full as f64 / 1048576.0),
            format!(
                "{:.1}",
                full.saturating_sub(base) as f64 / MEMORY_IDLE as f64 / 1024.0
            ),
        ]);
    }
    println!(
        "## Memory: RSS per idle TLS connection (each pool in its own child process; \
         {MEMORY_BASE} connections first, then {MEMORY_IDLE} more, each used once)\n"
    );
    let header = [
        "pool".to_owned(),
        format!("RSS with {MEMORY_BASE} (MiB)"),
        format!("RSS with {} (MiB)", MEMORY_BASE + MEMORY_IDLE),
        "KiB per extra idle connection".to_owned(),
    ];
    print_table(&header, &rows);
}

/// Backends of the previous child may linger a moment; the next must not meet
/// `max_connections`.
fn wait_for_backends_to_exit(cluster: &cluster::Cluster) {
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend';";
    for _ in 0..300 {
        match cluster.psql(sql).map(|n| n.trim().parse::<u32>()) {
            Ok(Ok(n)) if n <= 1 => return,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The memory child: opens the pools and prints "RSS-with-base RSS-with-all" in bytes.
fn memory_child(which: &str) {
    let conninfo = std::env::var(MEMORY_CONNINFO).unwrap_or_default();
    let ca = std::path::PathBuf::from(std::env::var_os(MEMORY_CA).unwrap_or_default());
    let rt = runtime(2);
    let result: Result<(u64, u64), String> = rt.block_on(async {
        let open = |size: usize| {
            let conninfo = conninfo.clone();
            let ca = ca.clone();
            let which = which.to_owned();
            async move {
                let pool = if which == "0" {
                    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(rustls_config(&ca)?);
                    let info = conninfo.replace("sslmode=verify-full", "sslmode=require");
                    deadpool_pool(&strip_sslrootcert(&info), size, tls).await?
                } else {
                    wirepool_pool(conninfo, size).await?
                };
                // Every connection checked out at once, so each is touched.
                let op = Arc::clone(&pool.op);
                let tasks: Vec<_> = (0..size)
                    .map(|_| {
                        let op = Arc::clone(&op);
                        tokio::spawn(async move {
                            op().await?;
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            Ok::<(), String>(())
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.map_err(|e| e.to_string())??;
                }
                Ok::<Contender, String>(pool)
            }
        };
        let _base = open(MEMORY_BASE).await?;
        let base = procfs::rss_bytes().unwrap_or(0);
        let _all = open(MEMORY_IDLE).await?;
        Ok((base, procfs::rss_bytes().unwrap_or(0)))
    });
    match result {
        Ok((base, full)) => println!("{base} {full}"),
        Err(e) => eprintln!("{e}"),
    }
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime")
}

fn main() {
    if let Ok(which) = std::env::var(MEMORY_CHILD) {
        return memory_child(&which);
    }
    let (rounds, window, _) = harness::rounds_and_window();
    let only = std::env::var("WIREPOOL_BENCH_ONLY").ok();
    let wants = |s: &str| {
        only.as_deref()
            .map_or(true, |o| o.split(',').any(|x| x.trim() == s))
    };
    let setup = match Setup::start() {
        Ok(s) => s,
        Err(e) => {
            println!("tls: skipped: {e}");
            return;
        }
    };
    if wants("select1") {
        select1(&setup, rounds, window);
    }
    if wants("connect") {
        connect(&setup, rounds, window);
    }
    if wants("memory") {
        memory(&setup);
    }
}
