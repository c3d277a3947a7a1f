//! What both lesson examples (`lesson.rs`, blocking, and `lesson_async.rs`) need besides the
//! lesson itself: the connection string, a throwaway cluster when none is given, and logs
//! shaped like the Python lesson's (`level [file:line] message`).

use tracing::info;

#[path = "../../tests/support/cluster.rs"]
mod cluster;

pub use cluster::Cluster;

/// Logs at debug for the lesson's own lines and info for wirepool's, unless `RUST_LOG` says
/// otherwise (`RUST_LOG=debug` adds the pool's checkout, return and connect events).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,lesson=debug,lesson_async=debug".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_target(false)
        .with_file(true)
        .with_line_number(true)
        .init();
}

/// The connection string: the first argument, `DATABASE_URL`, the PG* variables, or else a
/// throwaway cluster started here (stop it at the end of `main`).
pub fn conninfo() -> (String, Option<&'static Cluster>) {
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
    let c = Cluster::shared();
    // The lesson's own string, pointed at the throwaway cluster (trust ignores the password).
    let s = format!(
        "host={} port={} dbname=test_db user=postgres password=admin",
        c.host(),
        c.port()
    );
    (s, Some(c))
}
