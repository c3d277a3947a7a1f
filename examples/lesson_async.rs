//! The psycopg_pool lesson with the async pool: `examples/lesson.rs` (the blocking port, line
//! for line) with `.await` on every call that waits, run by `#[tokio::main]`. Same `Conexion`
//! type, same two cases, same log lines in the same order; the sixth `getconn()` of case 2
//! failing after 5 s is its expected end.
//!
//! Run it with `cargo run --example lesson_async`; with no connection string it starts a
//! throwaway PostgreSQL cluster of its own.

use std::time::Duration;

use tracing::{debug, error, info};
use wirepool::{Error, Pool, PooledConnection};

#[path = "support/lesson_setup.rs"]
mod setup;

/// `class Conexion`: the pool, and the method that hands out its connections.
struct Conexion {
    /// `_pool = ConnectionPool(conninfo=..., min_size=1, max_size=5, timeout=5)`.
    pool: Pool,
    /// Case 2 has `obtener_conexion` call `getconn()` instead of `connection()`.
    getconn: bool,
}

impl Conexion {
    async fn new(conninfo: &str, getconn: bool) -> Result<Conexion, Error> {
        let pool = Pool::builder(conninfo)
            .min_size(1)
            .max_size(5)
            .timeout(Duration::from_secs(5))
            .open()
            .await?;
        Ok(Conexion { pool, getconn })
    }

    /// `cls._pool.connection()` (case 1) or `cls._pool.getconn()` (case 2).
    async fn obtener_conexion(&self) -> Result<PooledConnection, Error> {
        if self.getconn {
            self.pool.getconn().await
        } else {
            self.pool.connection().await
        }
    }
}

/// Case 1 ✅: connections reused, like `with`.
async fn caso_1(conninfo: &str) -> Result<(), Error> {
    info!("Caso 1: connection() como `with`: 10 conexiones pedidas, cada una vuelve al pool");
    let db = Conexion::new(conninfo, false).await?;
    db.pool.check().await?;
    debug!("Pool de conexiones verificado correctamente.");

    // Pide 10 conexiones; cada una vuelve al pool al final de su bloque, como con `with`.
    for i in 0..10 {
        let conexion = db.obtener_conexion().await?;
        debug!(
            "Conexión #{} abierta y cerrada: backend pid={}",
            i + 1,
            conexion.backend_pid()
        );
    }

    db.pool.close().await;
    debug!("Pool de conexiones cerrado correctamente.");
    Ok(())
}

/// Case 2 ❌: `getconn()` without `putconn()` runs the pool dry.
async fn caso_2(conninfo: &str) -> Result<(), Error> {
    info!(
        "Caso 2: getconn() sin putconn(): max_size=5, así que la conexión #6 esperará \
         timeout=5 s y fallará (es lo esperado)"
    );
    let db = Conexion::new(conninfo, true).await?;
    db.pool.check().await?;
    debug!("Pool de conexiones verificado correctamente.");
    let mut conexiones = Vec::new();
    // Intenta obtener más de 5 sin liberar (Python: `try` / `except Exception as e`).
    for i in 0..6 {
        match db.obtener_conexion().await {
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

    db.pool.close().await;
    debug!("Pool de conexiones cerrado correctamente.");
    Ok(())
}

#[tokio::main]
async fn main() {
    setup::init_logging();
    let (conninfo, cluster) = setup::conninfo();
    let mut failed = false;
    if let Err(e) = caso_1(&conninfo).await {
        error!("caso 1 falló: {e}");
        failed = true;
    }
    if let Err(e) = caso_2(&conninfo).await {
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
