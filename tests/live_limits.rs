//! The connection's limits (`Config::limits`) against a real PostgreSQL: the default refuses a
//! row over 64 MiB with an error naming the setting, a raised limit admits it, a lowered SCRAM
//! iteration cap refuses the server's count, and out-of-range values fail validation.

mod support;

use support::cluster::Cluster;
use wirepool::config::Limits;
use wirepool::pool::PgManager;
use wirepool::{Config, Connection, Pool};

fn config(user: &str, password: Option<&str>) -> Config {
    Cluster::shared().conninfo(user, password).parse().unwrap()
}

/// One value just over the default 64 MiB limit (its DataRow adds a few bytes of framing).
const BIG: usize = (64 << 20) + 1024;

fn big_value_sql() -> String {
    format!("SELECT repeat('x', {BIG})")
}

#[tokio::test]
async fn a_raised_message_limit_admits_a_row_the_default_refuses() {
    let mut conn = Connection::connect(&config("postgres", None))
        .await
        .unwrap();
    let e = conn.simple_query(&big_value_sql()).await.unwrap_err();
    assert!(e.is_limit_exceeded() && !e.is_protocol(), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("Config::max_message_len") && text.contains("67108864"),
        "{text}"
    );
    assert!(conn.is_broken(), "the rest of the message was never read");

    let mut raised = config("postgres", None);
    raised.max_message_len(128 << 20);
    let mut conn = Connection::connect(&raised).await.unwrap();
    let rows = conn.simple_query(&big_value_sql()).await.unwrap();
    assert_eq!(rows[0].get(0).map(str::len), Some(BIG));
    assert_eq!(
        conn.simple_query("SELECT 1").await.unwrap()[0].get(0),
        Some("1")
    );
}

#[tokio::test]
async fn a_pool_manager_opens_connections_with_its_limits() {
    let mut limits = Limits::default();
    limits.max_message_len = 1 << 20;
    let manager = PgManager::new(config("postgres", None)).with_limits(limits);
    let pool = Pool::builder_for(manager)
        .min_size(0)
        .max_size(1)
        .open()
        .await
        .unwrap();
    let mut conn = pool.connection().await.unwrap();
    let e = conn
        .simple_query("SELECT repeat('x', 2 << 20)")
        .await
        .unwrap_err();
    assert!(
        e.is_limit_exceeded() && e.to_string().contains("1048576"),
        "{e}"
    );
}

#[tokio::test]
async fn a_scram_iteration_cap_below_the_servers_count_refuses_to_log_in() {
    let mut capped = config("scram_user", Some("password"));
    capped.max_scram_iterations(100); // PostgreSQL's default is 4096
    let e = Connection::connect(&capped).await.unwrap_err();
    assert!(e.is_auth(), "{e:?}");
    assert!(e.to_string().contains("max_scram_iterations"), "{e}");
}

#[test]
fn out_of_range_limits_fail_validation() {
    let mut c = config("postgres", None);
    c.max_message_len(100);
    let e = c.validate().unwrap_err();
    assert!(
        e.is_config() && e.to_string().contains("max_message_len"),
        "{e}"
    );
    let mut c = config("postgres", None);
    c.max_pending_notifications(0);
    assert!(c.validate().unwrap_err().is_config());
}
