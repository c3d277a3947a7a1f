//! A real PgBouncer in front of a test cluster, on its own port, for tests of what a pooler
//! between wirepool and PostgreSQL changes.
//!
//! Invariants:
//! - PgBouncer authenticates clients with SCRAM from an `auth_file` that holds the roles' SCRAM
//!   secrets as `pg_authid` stores them, and logs in to the server with the same secrets
//!   (PgBouncer's SCRAM pass-through, 1.14+).
//! - It runs daemonized as the server's OS user (it refuses root), from files in the cluster's
//!   directory; a detached watchdog (`sh`) kills it once the test process is gone, and `Drop`
//!   stops it at once.
//! - Without the binary, [`PgBouncer::start`] fails with a message that names the package:
//!   a test never passes silently for want of it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::cluster::Cluster;

/// The Debian package that provides the binary (`.ci/run` installs it).
const PACKAGE_HINT: &str = "PgBouncer is not installed: `apt-get install -y pgbouncer`";

/// How PgBouncer hands server connections to clients.
#[derive(Clone, Copy, Debug)]
pub enum PoolMode {
    /// A server connection per client transaction (the mode hosted poolers use).
    Transaction,
    /// A server connection per client connection.
    Session,
}

/// A running PgBouncer.
pub struct PgBouncer {
    port: u16,
    pid: u32,
    version: String,
}

impl PgBouncer {
    /// Starts PgBouncer in front of `cluster`'s `test_db`, listening on 127.0.0.1, with
    /// `server_pool_size` server connections per (database, user), serving `users` (roles whose
    /// SCRAM secrets it copies from `pg_authid`).
    ///
    /// # Errors
    /// A missing binary (naming the package), or PgBouncer failing to start (with its log).
    pub fn start(
        cluster: &Cluster,
        mode: PoolMode,
        server_pool_size: usize,
        users: &[&str],
    ) -> Result<PgBouncer, String> {
        let bin = find_pgbouncer().ok_or_else(|| PACKAGE_HINT.to_owned())?;
        let version = version(&bin)?;
        let port = free_port()?;
        let mut userlist = String::new();
        for user in users {
            let secret = cluster.psql(&format!(
                "SELECT rolpassword FROM pg_authid WHERE rolname = '{user}'"
            ))?;
            if !secret.starts_with("SCRAM-SHA-256$") {
                return Err(format!("role {user} has no SCRAM secret: {secret:?}"));
            }
            userlist.push_str(&format!("\"{user}\" \"{secret}\"\n"));
        }
        let dir = cluster.base_dir().display().to_string();
        let auth_file = cluster.write_server_file(
            &format!("pgbouncer-{port}.users"),
            userlist.as_bytes(),
            0o600,
        )?;
        let pidfile = PathBuf::from(format!("{dir}/pgbouncer-{port}.pid"));
        let logfile = format!("{dir}/pgbouncer-{port}.log");
        let mode = match mode {
            PoolMode::Transaction => "transaction",
            PoolMode::Session => "session",
        };
        let ini = format!(
            "[databases]\n\
             test_db = host=127.0.0.1 port={server} dbname=test_db\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = scram-sha-256\n\
             auth_file = {auth}\n\
             pool_mode = {mode}\n\
             default_pool_size = {server_pool_size}\n\
             max_client_conn = 500\n\
             ignore_startup_parameters = extra_float_digits,options\n\
             logfile = {logfile}\n\
             pidfile = {pid}\n",
            server = cluster.port(),
            auth = auth_file.display(),
            pid = pidfile.display(),
        );
        let ini =
            cluster.write_server_file(&format!("pgbouncer-{port}.ini"), ini.as_bytes(), 0o600)?;
        let log = || std::fs::read_to_string(&logfile).unwrap_or_default();
        cluster
            .run_server_side(&[
                bin.display().to_string(),
                "-d".into(),
                ini.display().to_string(),
            ])
            .map_err(|e| format!("{e}\n{}", log()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            let pid = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok());
            let listening = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            match pid {
                Some(pid) if listening => break pid,
                _ if Instant::now() > deadline => {
                    return Err(format!("PgBouncer did not start within 10 s:\n{}", log()))
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        watch(pid)?;
        Ok(PgBouncer { port, pid, version })
    }

    /// The port PgBouncer listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `major.minor` as the binary reports it (`PgBouncer 1.18.0` → `(1, 18)`).
    pub fn version(&self) -> (u32, u32) {
        let mut parts = self.version.split('.').map(|p| p.parse().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }

    /// A conninfo for `user` (password `password`) through PgBouncer to `test_db`.
    pub fn conninfo(&self, user: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} password=password dbname=test_db",
            self.port
        )
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}

fn find_pgbouncer() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/sbin/pgbouncer");
    if fixed.exists() {
        return Some(fixed);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("pgbouncer"))
            .find(|p| p.exists())
    })
}

fn version(bin: &PathBuf) -> Result<String, String> {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("PgBouncer "))
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| format!("unexpected `pgbouncer --version` output: {text:?}"))
}

/// Kills PgBouncer once this process is gone (a killed test binary runs no `Drop`).
fn watch(pid: u32) -> Result<(), String> {
    let script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 0.5; done\nkill {pid} 2>/dev/null\n",
        std::process::id()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| format!("cannot start PgBouncer's watchdog: {e}"))
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot pick a free port on 127.0.0.1: {e}"))
}
