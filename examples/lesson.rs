//! A Spanish-language lesson on Python's psycopg_pool (not part of this repository; the Python
//! side is quoted in `docs/lesson.md`), ported to wirepool.
//!
//! The Python lesson builds a `Conexion` class around a `ConnectionPool` of at most five
//! connections and shows two cases:
//!
//! 1. `with pool.connection()` ten times: the connections are given back after each block, so
//!    ten checkouts reuse the same few connections (we log the backend pid to show it);
//! 2. `getconn()` six times without `putconn()`: the pool is exhausted and the sixth request
//!    fails after `timeout`; then every connection is put back and the pool is closed.
//!
//! Run it with `cargo run --example lesson`. With no connection string (first argument,
//! `DATABASE_URL`, or the PG* environment variables) it starts a throwaway PostgreSQL cluster of
//! its own, so it works on a fresh machine with the PostgreSQL binaries installed.

use std::time::Duration;

use tracing::{debug, error, info};
use wirepool::{Pool, PooledConnection};

#[path = "../tests/support/cluster.rs"]
mod cluster;

/// The lesson's `Conexion` class: owns the pool and hands out connections.
struct Conexion {
    pool: Pool,
}

impl Conexion {
    /// `ConnectionPool(conninfo=..., min_size=1, max_size=5, timeout=5)`.
    async fn new(conninfo: &str, name: &str) -> Result<Conexion, wirepool::Error> {
        let pool = Pool::builder(conninfo)
            .name(name)
            .min_size(1)
            .max_size(5)
            .timeout(Duration::from_secs(5))
            .open()
            .await?;
        Ok(Conexion { pool })
    }

    /// `cls._pool.connection()`: a guard that gives the connection back when it goes out of
    /// scope, like Python's `with` block.
    async fn obtener_conexion(&self) -> Result<PooledConnection, wirepool::Error> {
        self.pool.connection().await
    }
}

/// Case 1 (✅): `with` — ten checkouts, the connections are reused.
async fn caso_1(conninfo: &str) -> Result<(), wirepool::Error> {
    let conexion = Conexion::new(conninfo, "caso-1").await?;
    conexion.pool.wait(Duration::from_secs(10)).await?;
    conexion.pool.check().await?;
    debug!("Pool de conexiones verificado correctamente.");

    for i in 1..=10 {
        // The guard is dropped at the end of each iteration: the connection goes back to the
        // pool, like leaving Python's `with` block.
        let mut conn = conexion.obtener_conexion().await?;
        conn.simple_query("SELECT 1").await?;
        debug!(
            "Conexión #{i} abierta y cerrada: backend pid={}",
            conn.backend_pid()
        );
    }

    let stats = conexion.pool.stats();
    info!(
        "10 checkouts served by {} connection(s) (pool_size={}, requests_num={})",
        stats.connections_num, stats.pool_size, stats.requests_num
    );
    conexion.pool.close().await;
    debug!("Pool de conexiones cerrado correctamente.");
    Ok(())
}

/// Case 2 (❌): `getconn()` without `putconn()` — the sixth request fails after `timeout`.
async fn caso_2(conninfo: &str) -> Result<(), wirepool::Error> {
    let conexion = Conexion::new(conninfo, "caso-2").await?;
    conexion.pool.wait(Duration::from_secs(10)).await?;
    conexion.pool.check().await?;
    debug!("Pool de conexiones verificado correctamente.");

    let mut conexiones = Vec::new();
    for i in 1..=6 {
        match conexion.pool.getconn().await {
            Ok(conn) => {
                debug!("Conexión #{i} obtenida: backend pid={}", conn.backend_pid());
                conexiones.push(conn);
            }
            Err(e) => {
                error!("Error al obtener conexión #{i}: {e}");
                break;
            }
        }
    }

    // Give every connection back by hand, as the lesson does with `putconn()`.
    for conn in conexiones {
        conexion.pool.putconn(conn)?;
    }
    conexion.pool.close().await;
    debug!("Pool de conexiones cerrado correctamente.");
    Ok(())
}

/// The connection string: the first argument, `DATABASE_URL`, the PG* variables, or else a
/// throwaway cluster started here (kept alive until the end of `main`).
fn conninfo() -> (String, Option<&'static cluster::Cluster>) {
    if let Some(arg) = std::env::args().nth(1) {
        return (arg, None);
    }
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return (url, None);
    }
    if std::env::var_os("PGHOST").is_some() || std::env::var_os("PGPORT").is_some() {
        // Everything comes from the environment (libpq's rules).
        return (String::new(), None);
    }
    info!("no connection string given: starting a throwaway PostgreSQL cluster");
    let c = cluster::Cluster::shared();
    // The lesson's own string, pointed at the throwaway cluster (trust ignores the password).
    let s = format!(
        "host={} port={} dbname=test_db user=postgres password=admin",
        c.host(),
        c.port()
    );
    (s, Some(c))
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "debug".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_file(true)
        .with_line_number(true)
        .init();

    let (conninfo, _cluster) = conninfo();
    let mut failed = false;
    if let Err(e) = caso_1(&conninfo).await {
        error!("caso 1 falló: {e}");
        failed = true;
    }
    if let Err(e) = caso_2(&conninfo).await {
        error!("caso 2 falló: {e}");
        failed = true;
    }
    if let Some(c) = _cluster {
        c.stop();
    }
    if failed {
        std::process::exit(1);
    }
}
