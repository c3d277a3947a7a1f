//! A throwaway PostgreSQL cluster for tests, examples and benchmarks.
//!
//! Invariants:
//! - Self-contained and std-only: examples and benches include this file by path
//!   (`#[path = "../tests/support/cluster.rs"] mod cluster;`), so it may not use tokio, the crate, or
//!   sibling support files.
//! - Each cluster owns one directory under `std::env::temp_dir()` (data dir, Unix socket, server log)
//!   and one TCP port on 127.0.0.1, so parallel test processes never share state.
//! - The server never outlives the process that started it: statics are never dropped and a test
//!   binary may be killed, so every cluster gets a detached watchdog (`sh`) that polls our pid and,
//!   once it is gone, stops the server (`-m immediate`) and deletes the directory.
//! - `initdb` and `postgres` refuse to run as root, so when we are root every server-side binary runs
//!   as the `postgres` OS user; `psql` runs as us over the socket (`local all all trust`).
//!
//! What the cluster offers (pg_hba.conf, first match wins; every password is `password`):
//!
//! | role            | TCP auth          | stored as            |
//! |-----------------|-------------------|----------------------|
//! | `pass_user`     | `password`        | SCRAM                |
//! | `md5_user`      | `md5`             | MD5                  |
//! | `md5scram_user` | `md5` line        | SCRAM (so SCRAM wins)|
//! | `scram_user`    | `scram-sha-256`   | SCRAM                |
//! | `prep_user`     | `scram-sha-256`   | `E'\u2168'` (SASLprep: log in with "IX") |
//! | anyone else     | `trust`           | —                    |
//!
//! Why not the `pgtemp` crate (evaluated, 0.7.1): it does handle root (it `chown`s the data dir
//! and runs the server as `postgres`), but it finds binaries only on `PATH`, reports failures by
//! panicking (`expect`), and cleans up in `Drop`, which never runs for a cluster shared through a
//! static across a test binary; and we would still have to write the per-role `pg_hba.conf` lines
//! and the MD5-encrypted role ourselves. This file is about as long as that glue, has no
//! dependencies (so the lesson and the benchmarks include it by path), and leaves no server behind.
//!
//! A private cluster ([`Cluster::start_with`]) takes [`Options`]: extra settings, pg_hba rows ahead
//! of the table above, files the server reads (certificates), and setup SQL; its server can be
//! stopped and started again on the same port ([`Cluster::stop_server`], [`Cluster::start_again`]).
//! [`Cluster::standby_of`] starts a streaming standby of a running cluster.
//!
//! Databases: `postgres` and `test_db`. `WIREPOOL_TEST_KEEP=1` keeps the directory after stopping;
//! `WIREPOOL_PG_BIN=/path/to/bin` picks the server binaries.
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The bootstrap superuser (`initdb -U`) and the OS user the server runs as when we are root.
const SUPERUSER: &str = "postgres";
/// Ports are picked by binding :0 and released before the server binds them, so another process
/// can take one in between; a few retries make that race harmless.
const START_ATTEMPTS: u32 = 5;

/// `--no-sync`: no fsync of the new cluster; `--locale=C`: independent of the machine's locales.
const INITDB_FLAGS: &str = "-U postgres --auth=trust -E UTF8 --locale=C --no-sync";

const PG_HBA: &str = "\
local all all                         trust
host  all pass_user     127.0.0.1/32 password
host  all md5_user      127.0.0.1/32 md5
host  all md5scram_user 127.0.0.1/32 md5
host  all scram_user    127.0.0.1/32 scram-sha-256
host  all prep_user     127.0.0.1/32 scram-sha-256
host  all all           127.0.0.1/32 trust
";

/// `password_encryption` must be switched *before* `md5_user` is created: PG14+ defaults to SCRAM
/// and would silently store a SCRAM verifier (npgsql/npgsql#3780 hit the same).
const SETUP_SQL: &str = "\
CREATE ROLE pass_user LOGIN PASSWORD 'password';
SET password_encryption = 'md5';
CREATE ROLE md5_user LOGIN PASSWORD 'password';
SET password_encryption = 'scram-sha-256';
CREATE ROLE md5scram_user LOGIN PASSWORD 'password';
CREATE ROLE scram_user LOGIN PASSWORD 'password';
CREATE ROLE prep_user LOGIN PASSWORD E'\\u2168';
CREATE DATABASE test_db;
";

/// What a private cluster adds to the defaults above: settings, pg_hba rows, files the server
/// reads (certificates), and setup SQL. The shared cluster uses `Options::default()`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Lines appended to `postgresql.conf` (`ssl = on`, `ssl_cert_file = '...'`).
    pub conf: Vec<String>,
    /// pg_hba.conf rows placed before the defaults (after the `local` row): first match wins.
    pub hba: Vec<String>,
    /// Files written into the cluster's base directory before the server starts, owned by the
    /// server's OS user, with the given mode (a server key must be 0600).
    pub files: Vec<(String, Vec<u8>, u32)>,
    /// SQL run as the superuser after the default roles are created.
    pub setup_sql: Vec<String>,
}

impl Options {
    /// `ssl = on` with a server certificate and key (PEM), written as `server.crt` and
    /// `server.key` next to the data directory.
    pub fn tls(cert_pem: Vec<u8>, key_pem: Vec<u8>) -> Options {
        Options {
            conf: vec![
                "ssl = on".into(),
                "ssl_cert_file = '../server.crt'".into(),
                "ssl_key_file = '../server.key'".into(),
            ],
            files: vec![
                ("server.crt".into(), cert_pem, 0o644),
                ("server.key".into(), key_pem, 0o600),
            ],
            ..Options::default()
        }
    }
}

/// A running throwaway PostgreSQL server; see the module docs for its roles and databases.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    psql_bin: PathBuf,
    base: PathBuf,
    data: PathBuf,
    port: u16,
    run_as: RunAs,
    keep: bool,
    startup: Duration,
    stopped: AtomicBool,
    watchdog: Mutex<Option<Child>>,
    options: Options,
}

impl Cluster {
    /// The cluster shared by every test in this process, started on first use.
    ///
    /// It is stopped and its directory deleted by the watchdog once the process exits.
    /// Panics (failing the calling test) with the start error if the cluster cannot start.
    pub fn shared() -> &'static Cluster {
        // The Result is cached so a broken setup fails every test fast instead of retrying each time.
        static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
        match SHARED.get_or_init(Cluster::start) {
            Ok(cluster) => cluster,
            Err(e) => panic!("the shared test cluster could not start: {e}"),
        }
    }

    /// Starts a fresh private cluster; it is stopped and deleted on [`Cluster::stop`] or drop.
    ///
    /// # Errors
    /// A message naming the failing step: binaries not found, `initdb` or `pg_ctl start` failing
    /// (with the server log tail), or the role setup SQL failing.
    pub fn start() -> Result<Cluster, String> {
        Cluster::start_with(Options::default())
    }

    /// Starts a fresh private cluster with `options` added to the defaults.
    ///
    /// # Errors
    /// As [`Cluster::start`], or a file of `options` that cannot be written.
    pub fn start_with(options: Options) -> Result<Cluster, String> {
        let begun = Instant::now();
        let bin = find_bin_dir()?;
        let psql_bin = Some(bin.join("psql"))
            .filter(|p| p.is_file())
            .or_else(|| find_program("psql"))
            .ok_or_else(|| format!("psql not found in {} nor on PATH", bin.display()))?;
        let mut cluster = Cluster::prepare(bin, psql_bin, options)?;
        cluster.initdb()?;
        cluster.start_server()?;
        cluster
            .psql(SETUP_SQL)
            .map_err(|e| format!("creating the test roles failed: {e}"))?;
        for sql in &cluster.options.setup_sql {
            cluster
                .psql(sql)
                .map_err(|e| format!("the cluster's setup SQL failed: {e}"))?;
        }
        cluster.startup = begun.elapsed();
        Ok(cluster)
    }

    /// Starts a streaming standby of `primary` on its own port: `pg_basebackup -R -X stream` from
    /// the primary into a directory of its own, then `pg_ctl start`. The primary's pg_hba.conf
    /// must let the superuser in for replication from 127.0.0.1 (an [`Options::hba`] row
    /// `host replication postgres 127.0.0.1/32 trust`). Promote it with
    /// `pg_ctl_run(&["promote", "-w"])`.
    ///
    /// # Errors
    /// A message naming the failing step, as [`Cluster::start`].
    pub fn standby_of(primary: &Cluster) -> Result<Cluster, String> {
        let begun = Instant::now();
        let mut cluster = Cluster::prepare(
            primary.bin.clone(),
            primary.psql_bin.clone(),
            primary.options.clone(),
        )?;
        let backup = [
            cluster.bin.join("pg_basebackup").display().to_string(),
            "-h".to_owned(),
            primary.host().to_owned(),
            "-p".to_owned(),
            primary.port.to_string(),
            "-U".to_owned(),
            SUPERUSER.to_owned(),
            "-D".to_owned(),
            cluster.data.display().to_string(),
            "-R".to_owned(),
            "-X".to_owned(),
            "stream".to_owned(),
            // The default, a spread checkpoint, waits up to checkpoint_completion_target ×
            // checkpoint_timeout (minutes) before the copy starts.
            "-c".to_owned(),
            "fast".to_owned(),
        ];
        cluster
            .run_server_side(&backup)
            .map_err(|e| format!("pg_basebackup failed: {e}"))?;
        // The copied postgresql.conf names the primary's socket directory; the last line wins.
        let socket_dir = cluster.base.display().to_string().replace('\'', "''");
        std::fs::OpenOptions::new()
            .append(true)
            .open(cluster.data.join("postgresql.conf"))
            .and_then(|mut f| writeln!(f, "unix_socket_directories = '{socket_dir}'"))
            .map_err(|e| format!("writing the standby's postgresql.conf: {e}"))?;
        cluster.start_server()?;
        cluster.startup = begun.elapsed();
        Ok(cluster)
    }

    /// A cluster value owning a fresh base directory (owned by the server's OS user when we are
    /// root) and its watchdog, with no data directory yet.
    fn prepare(bin: PathBuf, psql_bin: PathBuf, options: Options) -> Result<Cluster, String> {
        let base = make_base_dir()?;
        let is_root = std::fs::metadata(&base).map_err(|e| e.to_string())?.uid() == 0;
        let mut cluster = Cluster {
            data: base.join("data"),
            bin,
            psql_bin,
            base,
            port: 0,
            run_as: RunAs::Me,
            keep: std::env::var("WIREPOOL_TEST_KEEP").is_ok_and(|v| v == "1"),
            startup: Duration::ZERO,
            stopped: AtomicBool::new(false),
            watchdog: Mutex::new(None),
            options,
        };
        // From here on, an early return drops `cluster`, which stops and deletes whatever exists.
        if is_root {
            cluster.run_as = RunAs::postgres_user()?;
            chown_to_postgres(&cluster.base)?;
        }
        cluster.spawn_watchdog()?;
        Ok(cluster)
    }

    /// Always `127.0.0.1`: the server listens on loopback only.
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The server's TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the server's Unix socket (`.s.PGSQL.<port>`).
    pub fn socket_dir(&self) -> &Path {
        &self.base
    }

    /// The data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// How long [`Cluster::start`] took, from binary lookup to roles created.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// A libpq-style connection string for `dbname=postgres` over TCP.
    pub fn conninfo(&self, user: &str, password: Option<&str>) -> String {
        conninfo(self.host(), self.port, user, password)
    }

    /// Runs `sql` (any number of statements) as the superuser via psql over the Unix socket.
    ///
    /// # Errors
    /// psql's stderr if it could not run or any statement failed (`ON_ERROR_STOP`).
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        let mut cmd = Command::new(&self.psql_bin);
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.base)
            .args(["-p", &self.port.to_string(), "-U", SUPERUSER])
            .args(["-d", "postgres", "-f", "-"]);
        // Statements go through stdin, not `-c`, so each runs on its own: `-c` sends one
        // multi-statement query, an implicit transaction in which CREATE DATABASE is refused.
        let mut child = scrub_env(&mut cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.psql_bin.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(sql.as_bytes()).map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!(
                "psql {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Stops the server (fast shutdown) and deletes the directory; idempotent.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        // Ignored on purpose: the server may never have started, and there is nobody to report to.
        let _ = self.run_server_side(&self.pg_ctl(&["-m", "fast", "-w", "-t", "60", "stop"]));
        if self.keep {
            eprintln!("WIREPOOL_TEST_KEEP=1: kept {}", self.base.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.base);
        }
        let watchdog = self.watchdog.lock().map(|mut w| w.take()).unwrap_or(None);
        if let Some(mut watchdog) = watchdog {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }

    fn initdb(&self) -> Result<(), String> {
        let mut argv = vec![
            self.bin.join("initdb").display().to_string(),
            "-D".to_owned(),
        ];
        argv.push(self.data.display().to_string());
        argv.extend(INITDB_FLAGS.split(' ').map(str::to_owned));
        self.run_server_side(&argv)
            .map_err(|e| format!("initdb failed: {e}"))?;
        // Durability is worthless for a cluster deleted at exit; these make DDL and commits cheap.
        let socket_dir = self.base.display().to_string().replace('\'', "''");
        let conf = format!(
            "\n# wirepool test cluster\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{socket_dir}'\n\
             max_connections = 300\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             log_min_messages = warning\n"
        );
        let conf = self
            .options
            .conf
            .iter()
            .fold(conf, |conf, line| conf + line + "\n");
        let (local, rest) = PG_HBA.split_once('\n').unwrap_or((PG_HBA, ""));
        let hba = std::iter::once(local)
            .chain(self.options.hba.iter().map(String::as_str))
            .chain(std::iter::once(rest))
            .collect::<Vec<_>>()
            .join("\n");
        let write = |name: &str, text: &str, append: bool| {
            let mut options = std::fs::OpenOptions::new();
            let file = options
                .write(true)
                .append(append)
                .truncate(!append)
                .open(self.data.join(name));
            file.and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|e| format!("writing {name}: {e}"))
        };
        write("postgresql.conf", &conf, true)?;
        write("pg_hba.conf", &hba, false)?;
        for (name, bytes, mode) in &self.options.files {
            self.write_server_file(name, bytes, *mode)?;
        }
        Ok(())
    }

    /// Writes `bytes` to `name` in the base directory, readable by the server: owned by its OS
    /// user (when we are root) with `mode`.
    ///
    /// # Errors
    /// The file cannot be written, chowned or chmod-ed.
    pub fn write_server_file(
        &self,
        name: &str,
        bytes: &[u8],
        mode: u32,
    ) -> Result<PathBuf, String> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.base.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
        if !matches!(self.run_as, RunAs::Me) {
            chown_to_postgres(&path)?;
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
        Ok(path)
    }

    /// The base directory: the socket, the server log, and the files of [`Options::files`].
    pub fn base_dir(&self) -> &Path {
        &self.base
    }

    /// The directory of the server binaries (`initdb`, `pg_ctl`, `pg_basebackup`, ...).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// Runs `pg_ctl -D <data> <args>` as the server's OS user; its stdout.
    ///
    /// # Errors
    /// pg_ctl's output if it failed.
    pub fn pg_ctl_run(&self, args: &[&str]) -> Result<String, String> {
        self.run_server_side(&self.pg_ctl(args))
    }

    /// Stops the server with `mode` (`fast`, `immediate`), keeping the data directory and the
    /// port for [`Cluster::start_again`].
    ///
    /// # Errors
    /// pg_ctl's output if it failed.
    pub fn stop_server(&self, mode: &str) -> Result<(), String> {
        self.pg_ctl_run(&["-m", mode, "-w", "-t", "60", "stop"])
            .map(drop)
    }

    /// Starts the server again on its port after [`Cluster::stop_server`].
    ///
    /// # Errors
    /// pg_ctl's output and the server log's tail if it failed.
    pub fn start_again(&self) -> Result<(), String> {
        let port_opt = format!("-p {}", self.port);
        let log = self.log_path().display().to_string();
        self.pg_ctl_run(&["-l", &log, "-o", &port_opt, "-w", "-t", "60", "start"])
            .map(drop)
            .map_err(|e| format!("{e}\n--- {log} (tail) ---\n{}", self.log_tail()))
    }

    fn start_server(&mut self) -> Result<(), String> {
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port()?;
            let port_opt = format!("-p {port}");
            let log = self.log_path().display().to_string();
            let argv = self.pg_ctl(&["-l", &log, "-o", &port_opt, "-w", "-t", "60", "start"]);
            let Err(e) = self.run_server_side(&argv) else {
                self.port = port;
                return Ok(());
            };
            let tail = self.log_tail();
            let lost_port_race = tail.contains("could not bind") || tail.contains("in use");
            if !lost_port_race || attempt == START_ATTEMPTS {
                return Err(format!(
                    "pg_ctl start failed on port {port}: {e}\n--- {log} (tail) ---\n{tail}"
                ));
            }
        }
        unreachable!("the last attempt returns")
    }

    fn spawn_watchdog(&self) -> Result<(), String> {
        let stop = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
        let mut script = format!(
            "while kill -0 {} 2>/dev/null; do sleep 0.5; done\n{} >/dev/null 2>&1\n",
            std::process::id(),
            shell_join(&self.run_as.wrap(&stop))
        );
        if !self.keep {
            script.push_str(&format!(
                "rm -rf {}\n",
                shell_quote(&self.base.display().to_string())
            ));
        }
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so Ctrl-C aimed at the test run does not kill the cleanup.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot spawn the cleanup watchdog (sh): {e}"))?;
        *self.watchdog.lock().map_err(|e| e.to_string())? = Some(child);
        Ok(())
    }

    fn pg_ctl(&self, args: &[&str]) -> Vec<String> {
        let mut argv = vec![self.bin.join("pg_ctl").display().to_string()];
        argv.extend(["-D".to_owned(), self.data.display().to_string()]);
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        argv
    }

    /// Runs a server-side binary (as `postgres` when we are root), returning its stdout.
    ///
    /// # Errors
    /// The command line, its exit status and its output if it failed.
    pub fn run_server_side<S: AsRef<str>>(&self, argv: &[S]) -> Result<String, String> {
        let argv = self.run_as.wrap(argv);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            // The server user may not be able to enter our working directory (e.g. /root).
            .current_dir(&self.base)
            .stdin(Stdio::null());
        let out = scrub_env(&mut cmd)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "`{}` {}: {} {stdout}",
            shell_join(&argv),
            out.status,
            stderr.trim()
        ))
    }

    fn log_path(&self) -> PathBuf {
        self.base.join("server.log")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read(self.log_path()).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A libpq-style connection string, quoting values as libpq's `conninfo_parse` expects.
pub fn conninfo(host: &str, port: u16, user: &str, password: Option<&str>) -> String {
    let mut s = format!(
        "host={} port={port} dbname=postgres user={}",
        quote(host),
        quote(user)
    );
    if let Some(password) = password {
        s.push_str(" password=");
        s.push_str(&quote(password));
    }
    s
}

/// libpq ends an unquoted value at whitespace and treats `\` as an escape, so anything unusual
/// (or empty) is single-quoted with `\'` and `\\`.
fn quote(value: &str) -> String {
    let plain = |c: char| !c.is_whitespace() && c != '\'' && c != '\\';
    if !value.is_empty() && value.chars().all(plain) {
        return value.to_owned();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// How server-side binaries are run: as ourselves, or as `postgres` through whichever of
/// runuser/setpriv/su the machine has (all three ship with util-linux or shadow on Debian).
#[derive(Debug)]
enum RunAs {
    Me,
    Runuser(PathBuf),
    Setpriv(PathBuf),
    Su(PathBuf),
}

impl RunAs {
    fn postgres_user() -> Result<RunAs, String> {
        let exists = Command::new("id").arg(SUPERUSER).output();
        if !exists.is_ok_and(|o| o.status.success()) {
            return Err(format!(
                "running as root, but there is no `{SUPERUSER}` OS user to run the server as \
                 (initdb refuses root): create one (`useradd -r {SUPERUSER}`) or run as non-root"
            ));
        }
        let found = find_program("runuser")
            .map(RunAs::Runuser)
            .or_else(|| find_program("setpriv").map(RunAs::Setpriv))
            .or_else(|| find_program("su").map(RunAs::Su));
        found.ok_or_else(|| "running as root, but none of runuser, setpriv, su found".to_owned())
    }

    fn wrap<S: AsRef<str>>(&self, argv: &[S]) -> Vec<String> {
        let argv: Vec<String> = argv.iter().map(|a| a.as_ref().to_owned()).collect();
        let prefix: Vec<String> = match self {
            RunAs::Me => return argv,
            RunAs::Runuser(p) => vec![p.display().to_string(), "-u".into(), SUPERUSER.into()],
            RunAs::Setpriv(p) => vec![
                p.display().to_string(),
                format!("--reuid={SUPERUSER}"),
                format!("--regid={SUPERUSER}"),
                "--init-groups".into(),
            ],
            RunAs::Su(p) => {
                let su = p.display().to_string();
                return vec![
                    su,
                    "-s".into(),
                    "/bin/sh".into(),
                    SUPERUSER.into(),
                    "-c".into(),
                    shell_join(&argv),
                ];
            }
        };
        prefix
            .into_iter()
            .chain(["--".to_owned()])
            .chain(argv)
            .collect()
    }
}

fn chown_to_postgres(dir: &Path) -> Result<(), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, SUPERUSER])
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim()
            .parse()
            .map_err(|_| format!("`id {flag} {SUPERUSER}` printed {text:?}"))
    };
    std::os::unix::fs::chown(dir, Some(id("-u")?), Some(id("-g")?))
        .map_err(|e| format!("chown {} to {SUPERUSER}: {e}", dir.display()))
}

/// `WIREPOOL_PG_BIN`, else `pg_config --bindir`, else the newest Debian `/usr/lib/postgresql/N/bin`,
/// else wherever `initdb` is on PATH.
fn find_bin_dir() -> Result<PathBuf, String> {
    let has_server = |d: &PathBuf| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("WIREPOOL_PG_BIN").map(PathBuf::from) {
        return Some(dir.clone()).filter(has_server).ok_or_else(|| {
            format!(
                "WIREPOOL_PG_BIN={} contains no initdb and pg_ctl",
                dir.display()
            )
        });
    }
    let pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let on_path = find_program("initdb").and_then(|p| p.parent().map(Path::to_path_buf));
    [pg_config, newest_debian_bin_dir(), on_path]
        .into_iter()
        .flatten()
        .find(has_server)
        .ok_or_else(|| {
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in `pg_config --bindir`, \
             /usr/lib/postgresql/*/bin or PATH. Install them (Debian/Ubuntu: `apt-get install \
             postgresql`) or set WIREPOOL_PG_BIN=/path/to/bin."
                .to_owned()
        })
}

fn newest_debian_bin_dir() -> Option<PathBuf> {
    let version =
        |name: &str| -> Option<Vec<u32>> { name.split('.').map(|p| p.parse().ok()).collect() };
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((version(e.file_name().to_str()?)?, e.path().join("bin"))))
        .max()
        .map(|(_, bin)| bin)
}

/// PATH, plus the sbin directories a non-login root shell (or cargo's environment) may lack.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn make_base_dir() -> Result<PathBuf, String> {
    let tmp = std::env::temp_dir();
    for n in 0..1000 {
        let dir = tmp.join(format!("wirepool-pg-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            // A private cluster of this process, or a leftover from an earlier process with our pid.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    Err(format!(
        "no free wirepool-pg-* directory name in {}",
        tmp.display()
    ))
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot pick a free port on 127.0.0.1: {e}"))
}

/// libpq variables in the caller's environment (PGHOST, PGPORT, PGPASSWORD, PGDATA...) would
/// silently redirect psql and pg_ctl.
fn scrub_env(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("PG")) {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn shell_join<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| shell_quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}
