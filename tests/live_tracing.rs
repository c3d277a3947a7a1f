//! Log attribution against a real PostgreSQL: a server notice is logged inside its connection's
//! span (backend pid and server address), itself inside the pool's span (the pool's name) when a
//! pool opened the connection.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use support::cluster::Cluster;
use wirepool::{Config, Connection, Pool};

/// Everything the `fmt` subscriber writes, for the test to read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Installs a subscriber writing here for this thread (the current-thread runtime of a
    /// `#[tokio::test]` runs the pool's tasks on it too).
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let out = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// The line that mentions `needle`.
    fn line_with(&self, needle: &str) -> String {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
            .to_owned()
    }
}

fn config() -> Config {
    Cluster::shared()
        .conninfo("postgres", None)
        .parse()
        .unwrap()
}

const WARN: &str = "DO $$ BEGIN RAISE WARNING 'attribute me'; END $$";

#[tokio::test]
async fn a_server_notice_is_logged_in_its_connections_span() {
    let captured = Captured::default();
    let _guard = captured.install();
    let mut conn = Connection::connect(&config()).await.unwrap();
    conn.simple_query(WARN).await.unwrap();
    let line = captured.line_with("attribute me");
    let span = format!(
        "connection{{pid={} host=127.0.0.1:{}}}",
        conn.backend_pid(),
        Cluster::shared().port()
    );
    assert!(line.contains(&span), "{span} not in {line}");
    assert!(line.contains("WARN"), "{line}");
}

#[tokio::test]
async fn a_pooled_connections_span_is_inside_its_pools() {
    let captured = Captured::default();
    let _guard = captured.install();
    let pool = Pool::builder(config())
        .name("span_pool")
        .min_size(0)
        .max_size(1)
        .open()
        .await
        .unwrap();
    let mut conn = pool.connection().await.unwrap();
    conn.simple_query(WARN).await.unwrap();
    let line = captured.line_with("attribute me");
    let spans = format!(
        "wirepool{{pool=span_pool}}:connection{{pid={} ",
        conn.backend_pid()
    );
    assert!(line.contains(&spans), "{spans} not in {line}");
}
