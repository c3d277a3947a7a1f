//! Unit tests of the connect path with hand-built `ConnectParams` (no conninfo parsing), against
//! the throwaway cluster from `tests/support/cluster.rs` (std-only, included by path).

#[path = "../../tests/support/cluster.rs"]
mod cluster;
#[path = "../../tests/support/pki.rs"]
mod pki;

use std::time::Duration;

use socket2::SockRef;

use super::select;
use super::socket::Stream;
use super::Connection;
use crate::config::{
    ConnectParams, Host, Keepalives, Limits, LoadBalanceHosts, Password, SslMode, Target,
    TargetSessionAttrs, TlsParams,
};
use crate::error::Result;
use crate::wire::RequireAuth;

fn params(user: &str, password: Option<&str>, ports: &[u16]) -> ConnectParams {
    ConnectParams {
        targets: ports
            .iter()
            .map(|port| Target {
                host: Host::Tcp("127.0.0.1".into()),
                hostaddr: None,
                port: *port,
                password: password.map(Password::new),
            })
            .collect(),
        user: user.into(),
        dbname: "postgres".into(),
        application_name: Some("wirepool-unit".into()),
        options: None,
        connect_timeout: Some(Duration::from_secs(10)),
        require_auth: RequireAuth::default(),
        keepalives: Keepalives {
            enabled: true,
            idle: Some(Duration::from_secs(60)),
            interval: Some(Duration::from_secs(10)),
            count: Some(3),
            user_timeout: None,
        },
        target_session_attrs: TargetSessionAttrs::Any,
        limits: Limits::default(),
        load_balance_hosts: LoadBalanceHosts::Disable,
        sslmode: SslMode::Prefer,
        tls: TlsParams::default(),
        channel_binding: crate::wire::ChannelBindingMode::Prefer,
    }
}

async fn connect(p: &ConnectParams) -> Result<Connection> {
    select::connect(p, 0).await
}

#[tokio::test]
async fn scram_login_query_and_fallback_from_a_dead_port() {
    let c = cluster::Cluster::shared();
    let mut conn = connect(&params("scram_user", Some("password"), &[1, c.port()]))
        .await
        .unwrap();
    let rows = conn
        .simple_query("select current_user, current_setting('application_name'), null")
        .await
        .unwrap();
    assert_eq!(rows[0].get(0), Some("scram_user"));
    assert_eq!(rows[0].get(1), Some("wirepool-unit"));
    assert_eq!(rows[0].get(2), None);
    assert!(!conn.check_closed());
    conn.close().await.unwrap();
}

#[tokio::test]
async fn wrong_password_stops_at_the_first_host() {
    let c = cluster::Cluster::shared();
    let err = connect(&params("md5_user", Some("nope"), &[c.port(), 1]))
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert_eq!(err.code(), Some("28P01"));
}

/// The read buffer grows for a large result (and a large query grows the write buffer), and
/// both are given back at ReadyForQuery, so an idle connection stays small; small queries
/// after that keep working on the small buffers.
#[tokio::test]
async fn buffers_grow_for_a_large_result_and_shrink_when_idle() {
    let c = cluster::Cluster::shared();
    let conn = connect(&params("postgres", None, &[c.port()]))
        .await
        .unwrap();
    buffers_grow_and_shrink(conn).await;
}

/// The same over TLS: `Framed` sits above the stream, so a TLS connection's buffers are given
/// back at ReadyForQuery too (rustls' own buffers are its business: docs/performance.md § TLS).
#[tokio::test]
async fn buffers_shrink_when_idle_over_tls_too() {
    let pki = pki::Pki::new().unwrap();
    let ca = pki.ca("unit-ca", pki::KeyKind::P256).unwrap();
    let cert = pki
        .server(
            "unit-server",
            &ca,
            pki::KeyKind::P256,
            "localhost",
            "DNS:localhost,IP:127.0.0.1",
        )
        .unwrap();
    let c = cluster::Cluster::start_with(cluster::Options::tls(cert.cert_pem(), cert.key_pem()))
        .unwrap();
    let mut p = params("postgres", None, &[c.port()]);
    p.sslmode = SslMode::Require;
    let conn = connect(&p).await.unwrap();
    assert!(conn.inner.io.stream.is_tls());
    buffers_grow_and_shrink(conn).await;
}

async fn buffers_grow_and_shrink(mut conn: Connection) {
    let (read, _) = conn.inner.io.buffer_capacities();
    assert!(
        read <= 1024,
        "a fresh connection's read buffer is {read} bytes"
    );

    // A 1 MiB value, sent (a 1 MiB Query) and received (a 1 MiB DataRow).
    let big = "x".repeat(1 << 20);
    let rows = conn.simple_query(&format!("select '{big}'")).await.unwrap();
    assert_eq!(rows[0].get(0).map(str::len), Some(1 << 20));
    let (read, write) = conn.inner.io.buffer_capacities();
    assert!(
        read <= 1024,
        "after a 1 MiB row the read buffer kept {read} bytes"
    );
    assert!(
        write <= 1024,
        "after a 1 MiB query the write buffer kept {write} bytes"
    );

    // Many rows: the read size grows while reads come back full; the result is intact.
    let rows = conn
        .simple_query("select repeat('y', 100) from generate_series(1, 5000)")
        .await
        .unwrap();
    assert_eq!(rows.len(), 5000);
    assert!(rows.iter().all(|r| r.get(0).map(str::len) == Some(100)));
    let rows = conn.simple_query("select 1").await.unwrap();
    assert_eq!(rows[0].get(0), Some("1"));
    conn.close().await.unwrap();
}

/// The socket options behind `keepalives*` and `tcp_user_timeout`, read back from the socket of a
/// connection opened from a conninfo string.
fn socket_options(conn: &Connection) -> (bool, Duration, Duration, u32, Option<Duration>) {
    let Stream::Tcp(tcp) = &conn.inner.io.stream else {
        panic!("expected a TCP connection");
    };
    let s = SockRef::from(tcp);
    let user_timeout = if cfg!(target_os = "linux") {
        s.tcp_user_timeout().unwrap()
    } else {
        None
    };
    (
        s.keepalive().unwrap(),
        s.keepalive_time().unwrap(),
        s.keepalive_interval().unwrap(),
        s.keepalive_retries().unwrap(),
        user_timeout,
    )
}

#[tokio::test]
async fn keepalive_and_tcp_user_timeout_settings_reach_the_socket() {
    let c = cluster::Cluster::shared();
    let base = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        c.port()
    );
    let config: crate::Config = format!(
        "{base} keepalives_idle=61 keepalives_interval=7 keepalives_count=4 tcp_user_timeout=9500"
    )
    .parse()
    .unwrap();
    let conn = Connection::connect(&config).await.unwrap();
    let (on, idle, interval, count, user_timeout) = socket_options(&conn);
    assert!(on);
    assert_eq!(
        (idle, interval, count),
        (Duration::from_secs(61), Duration::from_secs(7), 4)
    );
    if cfg!(target_os = "linux") {
        assert_eq!(user_timeout, Some(Duration::from_millis(9500)));
    }
    conn.close().await.unwrap();

    // keepalives=0 turns keepalives off, not the user timeout; tcp_user_timeout=0 is the system
    // default (none set).
    let config: crate::Config = format!("{base} keepalives=0 tcp_user_timeout=250")
        .parse()
        .unwrap();
    let conn = Connection::connect(&config).await.unwrap();
    let (on, .., user_timeout) = socket_options(&conn);
    assert!(!on);
    if cfg!(target_os = "linux") {
        assert_eq!(user_timeout, Some(Duration::from_millis(250)));
    }
    conn.close().await.unwrap();
    let config: crate::Config = format!("{base} tcp_user_timeout=0").parse().unwrap();
    let conn = Connection::connect(&config).await.unwrap();
    assert_eq!(socket_options(&conn).4, None);
    conn.close().await.unwrap();
}

/// The cancel the pool prepares for each connection (`Manage::prepare_cancel`) is held for the
/// connection's whole life, so it holds the token and little more: the request's own state (a
/// TCP connect and, over TLS, a handshake) is allocated when it is sent.
#[tokio::test]
async fn the_prepared_cancel_holds_the_token_not_the_request_state() {
    use crate::pool::{Manage, PgManager};
    let c = cluster::Cluster::shared();
    let conn = connect(&params("postgres", None, &[c.port()]))
        .await
        .unwrap();
    let manager = PgManager::new(c.conninfo("postgres", None).parse().unwrap());
    let cancel = manager.prepare_cancel(&conn).unwrap();
    let held = std::mem::size_of_val(&*cancel);
    let token = std::mem::size_of_val(&conn.cancel_token());
    assert!(
        held <= 2 * token,
        "{held} bytes held for a {token}-byte token"
    );
    conn.close().await.unwrap();
}

#[test]
fn server_version_strings_map_to_server_version_num() {
    use super::version_num;
    assert_eq!(version_num("15.20 (Debian 15.20-0+deb12u1)"), Some(150_020));
    assert_eq!(version_num("9.6.24"), Some(90_624));
    assert_eq!(version_num("17devel"), Some(170_000));
    assert_eq!(version_num("16beta2"), Some(160_000));
    assert_eq!(version_num("10.1"), Some(100_001));
    assert_eq!(version_num("banana"), None);
    assert_eq!(version_num(""), None);
    assert_eq!(version_num("99999999999.1"), None, "no overflow");
}
