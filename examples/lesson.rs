//! The psycopg_pool lesson in Rust, line for line: a `Conexion` type around a pool of at most
//! five connections, and the lesson's two cases, with the same log lines in the same order.
//!
//! 1. `connection()` ten times, each guard dropped at the end of its loop body (Python's
//!    `with` block): the ten checkouts reuse the same connection (the backend pid shows it);
//! 2. `getconn()` six times without `putconn()`: the pool runs out, and the sixth request
//!    fails after `timeout` (5 s). That error is the expected end of case 2; then every
//!    connection is put back and the pool is closed.
//!
//! Run it with `cargo run --example lesson`. With no connection string (first argument,
//! `DATABASE_URL`, or the PG* variables) it starts a throwaway PostgreSQL cluster of its own.
//! `examples/lesson_async.rs` is the same lesson with the async pool.

use std::time::Duration;

use tracing::{debug, error, info};
use wirepool::blocking::{Pool, PooledConnection};
use wirepool::Error;

#[path = "support/lesson_setup.rs"]
mod setup;

/// `class Conexion`: the pool, and the method that hands out its connections.
struct Conexion {
    /// `_pool = ConnectionPool(conninfo=..., min_size=1, max_size=5, timeout=5)`.
    pool: Pool,
    /// Case 2 has `obtener_conexion` call `getconn()` instead of `connection()`: the one line
    /// the lesson changes between its two cases.
    getconn: bool,
}

impl Conexion {
    fn new(conninfo: &str, getconn: bool) -> Result<Conexion, Error> {
        let pool = Pool::builder(conninfo)
            .min_size(1)
            .max_size(5)
            .timeout(Duration::from_secs(5))
            .open()?;
        Ok(Conexion { pool, getconn })
    }

    /// `cls._pool.connection()` (case 1) or `cls._pool.getconn()` (case 2).
    fn obtener_conexion(&self) -> Result<PooledConnection, Error> {
        if self.getconn {
            self.pool.getconn()
        } else {
            self.pool.connection()
        }
    }
}

/// Case 1 ✅: connections reused, like `with`.
fn caso_1(conninfo: &str) -> Result<(), Error> {
    info!("Caso 1: connection() como `with`: 10 conexiones pedidas, cada una vuelve al pool");
    let db = Conexion::new(conninfo, false)?;
    db.pool.check()?;
    debug!("Pool de conexiones verificado correctamente.");

    // Pide 10 conexiones; cada una vuelve al pool al final de su bloque, como con `with`.
    for i in 0..10 {
        let conexion = db.obtener_conexion()?;
        debug!(
            "Conexión #{} abierta y cerrada: backend pid={}",
            i + 1,
            conexion.backend_pid()
        );
    }

    db.pool.close()?;
    debug!("Pool de conexiones cerrado correctamente.");
    Ok(())
}

/// Case 2 ❌: `getconn()` without `putconn()` runs the pool dry.
fn caso_2(conninfo: &str) -> Result<(), Error> {
    info!(
        "Caso 2: getconn() sin putconn(): max_size=5, así que la conexión #6 esperará \
         timeout=5 s y fallará (es lo esperado)"
    );
    let db = Conexion::new(conninfo, true)?;
    db.pool.check()?;
    debug!("Pool de conexiones verificado correctamente.");
    let mut conexiones = Vec::new();
    // Intenta obtener más de 5 sin liberar (Python: `try` / `except Exception as e`).
    for i in 0..6 {
        match db.obtener_conexion() {
            Ok(conexion) => {
                debug!(
                    "Conexión #{} obtenida: backend pid={}",
                    i + 1,
                    conexion.backend_pid()
                );
                conexiones.push(conexion);
            }
            Err(e) => {
                error!("Error al obtener conexión #{}: {e}", i + 1);
                break;
            }
        }
    }

    // Liberar conexiones manualmente.
    for conexion in conexiones {
        db.pool.putconn(conexion)?;
    }

    db.pool.close()?;
    debug!("Pool de conexiones cerrado correctamente.");
    Ok(())
}

fn main() {
    setup::init_logging();
    let (conninfo, cluster) = setup::conninfo();
    let mut failed = false;
    if let Err(e) = caso_1(&conninfo) {
        error!("caso 1 falló: {e}");
        failed = true;
    }
    if let Err(e) = caso_2(&conninfo) {
        error!("caso 2 falló: {e}");
        failed = true;
    }
    if !failed {
        info!(
            "Fin de la lección: el ERROR del caso 2 es el resultado esperado (el pool no \
             presta más de max_size=5 conexiones a la vez)."
        );
    }
    if let Some(c) = cluster {
        c.stop();
    }
    if failed {
        std::process::exit(1);
    }
}
