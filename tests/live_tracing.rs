//! Log attribution against a real PostgreSQL: a server notice is logged inside its connection's
//! span (backend pid and server address), itself inside the pool's span (the pool's name) when a
//! pool opened the connection.

mod support;

use support::cluster::Cluster;
use support::logs::Captured;
use wirepool::{Config, Connection, Pool};

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
