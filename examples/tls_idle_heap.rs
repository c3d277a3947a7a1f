//! What an idle pooled connection holds on the heap, over TLS and in plaintext: opens a pool of
//! 10 and then a pool of `N` (200) connections to a throwaway cluster with `ssl = on`, uses each
//! once, prints the resident set between the two and after, and exits without dropping
//! anything, so that a heap profiler lists every idle connection's allocations as alive at exit:
//!
//! ```sh
//! cargo build --release --example tls_idle_heap
//! target/release/examples/tls_idle_heap                        # SSLMODE=disable: plaintext
//! heaptrack target/release/examples/tls_idle_heap
//! heaptrack_print -f heaptrack.tls_idle_heap.*.zst --print-leaks 1 | less
//! ```
//!
//! `N` sets the pool size; `SERVE=1` starts the cluster only and prints `PORT=… CA=…`, which
//! the measured run then takes from its environment (so a profiler follows this process, not
//! the server); `NOUSE=1` skips the checkouts. docs/architecture.md ("What an idle connection holds") has the figures.

#[path = "../tests/support/cluster.rs"]
mod cluster;
#[path = "../tests/support/pki.rs"]
mod pki;
#[path = "../benches/support/procfs.rs"]
mod procfs;

use std::time::Duration;

fn rss_kib() -> u64 {
    procfs::rss_bytes().unwrap_or(0) / 1024
}

fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let sslmode = std::env::var("SSLMODE").unwrap_or_else(|_| "verify-full".into());
    // `SERVE=1` only starts the cluster and prints `PORT=… CA=…` to pass to the measured run,
    // so that a heap profiler follows this process and not the server's.
    let (port, ca, _server) = match (std::env::var("PORT"), std::env::var("CA")) {
        (Ok(port), Ok(ca)) => (port.parse().expect("PORT"), ca.into(), None),
        _ => {
            let (cluster, pki, ca) = start_cluster(n);
            if std::env::var_os("SERVE").is_some() {
                println!("PORT={} CA={}", cluster.port(), ca.display());
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            (cluster.port(), ca, Some((cluster, pki)))
        }
    };
    let ca: std::path::PathBuf = ca;
    let conninfo = format!(
        "host=localhost hostaddr=127.0.0.1 port={port} dbname=postgres user=postgres \
         sslmode={sslmode} sslrootcert={}",
        ca.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // As `cargo bench --bench tls`'s memory section: a first pool of 10 takes the fixed
        // costs (runtime, connector, session cache), the difference after `n` more is theirs.
        let _base = open_and_use(&conninfo, 10).await;
        let before = rss_kib();
        let _all = open_and_use(&conninfo, n).await;
        let after = rss_kib();
        println!(
            "sslmode={sslmode} N={n}: RSS {before} -> {after} KiB, {:.1} KiB per connection",
            (after.saturating_sub(before)) as f64 / n as f64
        );
        std::process::exit(0);
    });
}

/// A pool of `n` connections, each checked out (all held at once) for one `SELECT 1`.
async fn open_and_use(conninfo: &str, n: usize) -> wirepool::Pool {
    let pool = wirepool::Pool::builder(conninfo)
        .min_size(n)
        .max_size(n)
        .open()
        .await
        .expect("pool");
    pool.wait(Duration::from_secs(30)).await.expect("min_size");
    let mut held = Vec::new();
    let uses = if std::env::var_os("NOUSE").is_some() {
        0
    } else {
        n
    };
    for _ in 0..uses {
        let mut conn = pool.connection().await.expect("checkout");
        conn.simple_query("SELECT 1").await.expect("SELECT 1");
        held.push(conn);
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    pool
}

/// A cluster with `ssl = on`, an ECDSA P-256 certificate from a CA made for the run, and room
/// for `n` connections.
fn start_cluster(n: usize) -> (cluster::Cluster, pki::Pki, std::path::PathBuf) {
    let pki = pki::Pki::new().expect("openssl");
    let ca = pki.ca("heap-ca", pki::KeyKind::P256).expect("CA");
    let cert = pki
        .server(
            "heap-server",
            &ca,
            pki::KeyKind::P256,
            "localhost",
            "DNS:localhost,IP:127.0.0.1",
        )
        .expect("server certificate");
    let mut options = cluster::Options::tls(cert.cert_pem(), cert.key_pem());
    options.conf.push(format!("max_connections = {}", n + 20));
    let cluster = cluster::Cluster::start_with(options).expect("cluster");
    (cluster, pki, ca.cert.clone())
}
