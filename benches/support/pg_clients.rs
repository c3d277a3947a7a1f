//! The end-to-end contenders: wirepool, deadpool-postgres and bb8-postgres running `SELECT 1`
//! with the simple-query protocol, and bare connects (wirepool vs tokio-postgres).
//!
//! Each pool opens all its connections before timing. Settings are each pool's defaults except
//! the size, with one exception named in the table: bb8 checks every checkout out with an
//! extra round trip (`test_on_check_out = true`, `simple_query("")`), so it runs twice, with
//! that default and without it. deadpool-postgres's default `RecyclingMethod::Fast` and
//! wirepool's checkout peek cost no round trip.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use tokio_postgres::NoTls;
use wirepool::pool::{ConnState, Manage, PgManager};

/// A pool under test.
pub trait PgContender: Sized + Send + Sync + 'static {
    /// The name printed in the tables.
    const NAME: &'static str;
    /// A pool of `size` open connections.
    fn build(conninfo: &str, size: usize) -> impl Future<Output = Result<Self, String>> + Send;
    /// Checks a connection out, runs `SELECT 1` (simple protocol), returns it.
    fn select1(&self) -> impl Future<Output = Result<(), String>> + Send;
    /// Closes the pool's connections (waits until they are gone where the pool can).
    fn shutdown(self) -> impl Future<Output = ()> + Send;
}

/// The query: `SELECT 1`, or `WIREPOOL_BENCH_SQL` (e.g. a wider row, to price row decoding).
pub fn sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| std::env::var("WIREPOOL_BENCH_SQL").unwrap_or_else(|_| "SELECT 1".into()))
}

/// A manager the wirepool contender can be built over: [`PgManager`], the shipped one, or a
/// prototype variant of it.
pub trait WirepoolManager: Manage<Connection = wirepool::Connection> {
    /// The name printed in the tables.
    const NAME: &'static str;
    /// The manager for `config`.
    fn from_config(config: wirepool::Config) -> Self;
}

impl WirepoolManager for PgManager {
    const NAME: &'static str = "wirepool";
    fn from_config(config: wirepool::Config) -> Self {
        PgManager::new(config)
    }
}

/// A prototype, not a shipped configuration: wirepool with the per-checkout liveness peek
/// (`Manage::is_closed`, one non-blocking `recv` that returns EAGAIN on a healthy connection)
/// skipped, to price that syscall. Everything else delegates to [`PgManager`].
pub struct NoPeek(PgManager);

impl WirepoolManager for NoPeek {
    const NAME: &'static str = "wirepool, no peek (prototype)";
    fn from_config(config: wirepool::Config) -> Self {
        NoPeek(PgManager::new(config))
    }
}

impl Manage for NoPeek {
    type Connection = wirepool::Connection;
    fn connect(&self) -> impl Future<Output = wirepool::Result<Self::Connection>> + Send {
        self.0.connect()
    }
    fn state(&self, conn: &Self::Connection) -> ConnState {
        self.0.state(conn)
    }
    fn check_closed(&self, _: &mut Self::Connection) -> bool {
        false
    }
    fn ping(&self, c: &mut Self::Connection) -> impl Future<Output = wirepool::Result<()>> + Send {
        self.0.ping(c)
    }
    fn rollback(
        &self,
        c: &mut Self::Connection,
    ) -> impl Future<Output = wirepool::Result<()>> + Send {
        self.0.rollback(c)
    }
    fn cancel(&self, c: &Self::Connection) -> impl Future<Output = ()> + Send + 'static {
        self.0.cancel(c)
    }
    fn close(&self, c: Self::Connection) -> impl Future<Output = ()> + Send {
        self.0.close(c)
    }
}

/// wirepool's pool over manager `M`; `Pool::builder(conninfo)` is `builder_for(PgManager)`.
pub struct WirepoolOn<M: WirepoolManager>(wirepool::Pool<M>);
/// wirepool as shipped.
pub type Wirepool = WirepoolOn<PgManager>;
/// wirepool without the liveness peek (prototype).
pub type WirepoolNoPeek = WirepoolOn<NoPeek>;

impl<M: WirepoolManager> PgContender for WirepoolOn<M> {
    const NAME: &'static str = M::NAME;
    async fn build(conninfo: &str, size: usize) -> Result<Self, String> {
        let config: wirepool::Config = conninfo.parse().map_err(|e| format!("{e}"))?;
        let pool = wirepool::Pool::builder_for(M::from_config(config))
            .min_size(size)
            .max_size(size)
            .open()
            .await
            .map_err(|e| e.to_string())?;
        pool.wait(Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
        Ok(WirepoolOn(pool))
    }
    async fn select1(&self) -> Result<(), String> {
        let mut conn = self.0.connection().await.map_err(|e| e.to_string())?;
        let rows = conn.simple_query(sql()).await.map_err(|e| e.to_string())?;
        std::hint::black_box(rows);
        Ok(())
    }
    async fn shutdown(self) {
        self.0.close().await;
    }
}

/// deadpool-postgres 0.14 (deadpool 0.13 over tokio-postgres 0.7).
pub struct DeadpoolPostgres(deadpool_postgres::Pool);

impl PgContender for DeadpoolPostgres {
    const NAME: &'static str = "deadpool-postgres";
    async fn build(conninfo: &str, size: usize) -> Result<Self, String> {
        let config: tokio_postgres::Config = conninfo.parse().map_err(|e| format!("{e}"))?;
        let manager = deadpool_postgres::Manager::new(config, NoTls);
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(size)
            .build()
            .map_err(|e| e.to_string())?;
        // deadpool connects lazily: hold `size` at once so all are open before timing.
        let mut held = Vec::with_capacity(size);
        for _ in 0..size {
            held.push(pool.get().await.map_err(|e| e.to_string())?);
        }
        Ok(DeadpoolPostgres(pool))
    }
    async fn select1(&self) -> Result<(), String> {
        let client = self.0.get().await.map_err(|e| e.to_string())?;
        let rows = client
            .simple_query(sql())
            .await
            .map_err(|e| e.to_string())?;
        std::hint::black_box(rows);
        Ok(())
    }
    async fn shutdown(self) {
        self.0.close();
    }
}

/// bb8-postgres 0.9, with or without its default round trip on every checkout.
pub struct Bb8Postgres<const TEST_ON_CHECK_OUT: bool>(
    bb8::Pool<bb8_postgres::PostgresConnectionManager<NoTls>>,
);

impl<const TEST_ON_CHECK_OUT: bool> PgContender for Bb8Postgres<TEST_ON_CHECK_OUT> {
    const NAME: &'static str = if TEST_ON_CHECK_OUT {
        "bb8-postgres (default: test_on_check_out)"
    } else {
        "bb8-postgres (test_on_check_out off)"
    };
    async fn build(conninfo: &str, size: usize) -> Result<Self, String> {
        let manager = bb8_postgres::PostgresConnectionManager::new_from_stringlike(conninfo, NoTls)
            .map_err(|e| e.to_string())?;
        let size = u32::try_from(size).map_err(|e| e.to_string())?;
        let pool = bb8::Pool::builder()
            .max_size(size)
            .min_idle(Some(size))
            .test_on_check_out(TEST_ON_CHECK_OUT)
            .build(manager)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Bb8Postgres(pool))
    }
    async fn select1(&self) -> Result<(), String> {
        let client = self.0.get().await.map_err(|e| e.to_string())?;
        let rows = client
            .simple_query(sql())
            .await
            .map_err(|e| e.to_string())?;
        std::hint::black_box(rows);
        Ok(())
    }
    async fn shutdown(self) {}
}

/// Opens, authenticates and closes one connection with wirepool's own client.
pub async fn connect_wirepool(config: &wirepool::Config) -> Result<(), String> {
    let conn = wirepool::Connection::connect(config)
        .await
        .map_err(|e| e.to_string())?;
    conn.close().await.map_err(|e| e.to_string())
}

/// The same with tokio-postgres: connect, then drop the client and wait for its connection
/// task to finish (it sends Terminate and closes the socket).
pub async fn connect_tokio_postgres(config: &tokio_postgres::Config) -> Result<(), String> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    let task = tokio::spawn(connection);
    drop(client);
    task.await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}
