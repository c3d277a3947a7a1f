//! Connect errors that say where and what: every host's failure with its host, port and address;
//! the Unix socket path; a peer that is not PostgreSQL; a NUL in a query as the caller's error;
//! and the `target_session_attrs` check against a server that reports neither `in_hot_standby`
//! nor `default_transaction_read_only` (before PostgreSQL 14), scripted by a fake server; and
//! settings no connect could satisfy, refused by `open()` itself.

mod support;

use support::cluster::Cluster;
use support::fake_server::{self as fake, FakeServer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wirepool::config::TargetSessionAttrs;
use wirepool::wire::WireError;
use wirepool::{Config, Connection, Error, Pool};

async fn connect(conninfo: &str) -> Result<Connection, Error> {
    let config: Config = conninfo.parse().unwrap();
    Connection::connect(&config).await
}

/// A port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Answers the StartupMessage the way an HTTP server answers anything.
fn http_server() -> FakeServer {
    FakeServer::start(|mut s| async move {
        fake::read_startup(&mut s).await;
        s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
    })
}

#[tokio::test]
async fn with_three_hosts_each_failure_is_named_with_its_place() {
    let cluster = Cluster::shared();
    let http = http_server();
    let refused = closed_port();
    let conninfo = format!(
        "host=localhost,127.0.0.1,127.0.0.1 port={refused},{},{} user=postgres \
         dbname=no_such_db",
        http.port(),
        cluster.port()
    );
    let e = connect(&conninfo).await.unwrap_err();
    let text = e.to_string();
    let expected = [
        format!("connection to server at \"localhost\" (127.0.0.1), port {refused} failed: "),
        format!(
            "connection to server at \"127.0.0.1\", port {} failed: protocol error: the server \
             is not PostgreSQL",
            http.port()
        ),
        format!(
            "connection to server at \"127.0.0.1\", port {} failed: server error: FATAL",
            cluster.port()
        ),
    ];
    let mut from = 0;
    for part in &expected {
        let at = text[from..]
            .find(part.as_str())
            .unwrap_or_else(|| panic!("{part:?} missing (or out of order) in {text}"));
        from += at + part.len();
    }
    assert!(text.contains("refused"), "{text}");
    assert!(text.contains("no_such_db"), "{text}");
    // The error itself is the last attempt's: the server's 3D000.
    assert_eq!(e.code(), Some("3D000"));
    assert!(
        e.is_permanent_connect_error(),
        "no such database: retrying cannot help"
    );
    http.join().await;
}

#[tokio::test]
async fn a_missing_unix_socket_is_named_by_its_path() {
    // An empty host means the default socket directories, whatever PGHOST says.
    let port = closed_port();
    let e = connect(&format!("host='' port={port} user=postgres"))
        .await
        .unwrap_err();
    let text = e.to_string();
    for dir in ["/var/run/postgresql", "/tmp"] {
        let socket = format!("connection to server on socket \"{dir}/.s.PGSQL.{port}\" failed: ");
        assert!(text.contains(&socket), "{text}");
    }
    let e = connect(&format!("host=/nonexistent/dir port={port}"))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("\"/nonexistent/dir/.s.PGSQL.{port}\" failed: ")),
        "{e}"
    );
    assert!(
        !e.is_permanent_connect_error(),
        "a server may yet start there"
    );
}

#[tokio::test]
async fn an_http_server_is_not_postgresql() {
    let http = http_server();
    let e = connect(&http.conninfo("u", None)).await.unwrap_err();
    assert_eq!(
        e.as_wire_error(),
        Some(WireError::NotPostgres { first_byte: b'H' })
    );
    let text = e.to_string();
    assert!(
        text.contains(&format!("\"127.0.0.1\", port {} failed", http.port()))
            && text.contains("is not PostgreSQL")
            && text.contains("HTTP"),
        "{text}"
    );
    assert!(!text.contains("unexpected message"), "{text}");
    assert!(e.is_permanent_connect_error());
    http.join().await;
}

/// A NUL in the caller's SQL is the caller's error, not the server breaking the protocol, and
/// nothing was sent: the connection still works.
#[tokio::test]
async fn a_nul_in_a_query_is_invalid_input() {
    let cluster = Cluster::shared();
    let mut conn = connect(&cluster.conninfo("postgres", None)).await.unwrap();
    let e = conn.simple_query("SELECT 'a\0b'").await.unwrap_err();
    assert!(e.is_invalid_input() && !e.is_protocol(), "{e:?}");
    assert!(e.to_string().contains("NUL"), "{e}");
    assert!(!conn.is_broken());
    let rows = conn.simple_query("SELECT 1").await.unwrap();
    assert_eq!(rows[0].get(0), Some("1"));
    conn.close().await.unwrap();
    let mut config: Config = cluster.conninfo("postgres", None).parse().unwrap();
    config.application_name("a\0b");
    let e = Connection::connect(&config).await.unwrap_err();
    assert!(e.is_config() && !e.is_protocol(), "{e:?}");
}

// ---- target_session_attrs against a server that reports neither value ----

/// What a PostgreSQL 13 server sends after a `trust` login: no `in_hot_standby`, no
/// `default_transaction_read_only`.
fn pg13_handshake() -> Vec<u8> {
    [
        fake::auth_ok(),
        fake::parameter_status("server_version", "13.16"),
        fake::parameter_status("client_encoding", "UTF8"),
        fake::backend_key_data(13, 0x13),
        fake::ready_for_query(b'I'),
    ]
    .concat()
}

/// Logs in, expects `query`, answers it with one value (or an error), then expects Terminate if
/// `rejected`.
async fn pg13(mut s: TcpStream, query: &str, answer: Result<&str, &str>, rejected: bool) {
    fake::read_startup(&mut s).await;
    s.write_all(&pg13_handshake()).await.unwrap();
    let (tag, body) = fake::read_message(&mut s).await;
    assert_eq!((tag, body), (b'Q', format!("{query}\0").into_bytes()));
    let reply = match answer {
        Ok(value) => [
            fake::row_description(&["answer"]),
            fake::data_row(&[Some(value.as_bytes())]),
            fake::command_complete("SELECT 1"),
            fake::ready_for_query(b'I'),
        ]
        .concat(),
        Err(message) => [
            fake::error_response(&[(b'S', "ERROR"), (b'C', "42704"), (b'M', message)]),
            fake::ready_for_query(b'I'),
        ]
        .concat(),
    };
    s.write_all(&reply).await.unwrap();
    if rejected {
        let (tag, _) = fake::read_message(&mut s).await;
        assert_eq!(tag, b'X', "a rejected session is closed with Terminate");
    }
}

const SHOW_READ_ONLY: &str = "SHOW transaction_read_only";
const IN_RECOVERY: &str = "SELECT pg_catalog.pg_is_in_recovery()";

#[tokio::test]
async fn an_old_server_is_asked_and_a_mismatch_closed_politely() {
    let cases = [
        (
            "read-write",
            SHOW_READ_ONLY,
            Ok("on"),
            Some("session is read-only"),
        ),
        ("read-write", SHOW_READ_ONLY, Ok("off"), None),
        ("read-only", SHOW_READ_ONLY, Ok("on"), None),
        (
            "read-only",
            SHOW_READ_ONLY,
            Ok("off"),
            Some("session is not read-only"),
        ),
        (
            "primary",
            IN_RECOVERY,
            Ok("t"),
            Some("server is in hot standby mode"),
        ),
        ("standby", IN_RECOVERY, Ok("t"), None),
        (
            "standby",
            IN_RECOVERY,
            Ok("f"),
            Some("server is not in hot standby mode"),
        ),
        (
            "read-write",
            SHOW_READ_ONLY,
            Err("no such setting"),
            Some("\"SHOW transaction_read_only\" failed: server error: ERROR 42704"),
        ),
    ];
    for (target, query, answer, rejection) in cases {
        let case = format!("{target}, {query} = {answer:?}");
        let server = FakeServer::start(move |s| pg13(s, query, answer, rejection.is_some()));
        let conninfo = format!(
            "{} target_session_attrs={target}",
            server.conninfo("u", None)
        );
        match (connect(&conninfo).await, rejection) {
            (Ok(conn), None) => {
                // The probe's answer is kept: the opposite target is not satisfied.
                let t: TargetSessionAttrs = target.parse().unwrap();
                let opposite = match t {
                    TargetSessionAttrs::ReadWrite => TargetSessionAttrs::ReadOnly,
                    TargetSessionAttrs::ReadOnly => TargetSessionAttrs::ReadWrite,
                    _ => TargetSessionAttrs::Primary,
                };
                assert!(conn.satisfies(t) && !conn.satisfies(opposite), "{case}");
                drop(conn);
            }
            (Err(e), Some(why)) => {
                assert!(e.is_target_mismatch(), "{case}: {e:?}");
                let at = format!("\"127.0.0.1\", port {} failed: {why}", server.port());
                assert!(e.to_string().contains(&at), "{case}: {e}");
            }
            (Ok(_), Some(why)) => panic!("{case}: accepted, expected {why}"),
            (Err(e), None) => panic!("{case}: {e}"),
        }
        server.join().await;
    }
}

/// `any` asks nothing, and neither does a target the reported values already settle.
#[tokio::test]
async fn nothing_is_asked_when_nothing_needs_asking() {
    let server = FakeServer::start(|mut s| async move {
        fake::read_startup(&mut s).await;
        s.write_all(&pg13_handshake()).await.unwrap();
        assert!(
            fake::try_read_message(&mut s).await.unwrap().is_none(),
            "target any sends no query"
        );
    });
    let conn = connect(&server.conninfo("u", None)).await.unwrap();
    assert_eq!(conn.target_session_attrs(), TargetSessionAttrs::Any);
    drop(conn);
    server.join().await;

    let server = FakeServer::start(|mut s| async move {
        fake::read_startup(&mut s).await;
        let pg16 = [
            fake::auth_ok(),
            fake::parameter_status("server_version", "16.4"),
            fake::parameter_status("in_hot_standby", "off"),
            fake::parameter_status("default_transaction_read_only", "off"),
            fake::ready_for_query(b'I'),
        ];
        s.write_all(&pg16.concat()).await.unwrap();
        assert!(fake::try_read_message(&mut s).await.unwrap().is_none());
    });
    let conninfo = format!(
        "{} target_session_attrs=read-write",
        server.conninfo("u", None)
    );
    let conn = connect(&conninfo).await.unwrap();
    assert!(conn.satisfies(TargetSessionAttrs::Primary));
    drop(conn);
    server.join().await;
}

/// A connection string no connect could satisfy fails `Pool::open` at once, as a configuration
/// error naming the culprit, instead of failing each checkout after its timeout: nothing is
/// listening on the port given, so any attempt to connect would show as a connect error.
#[tokio::test]
async fn bad_settings_fail_open_at_once_naming_the_setting() {
    let port = closed_port();
    for (conninfo, says) in [
        (
            "postgresql://127.0.0.1:notaport/db".to_string(),
            r#"invalid port number: "notaport""#,
        ),
        ("host=127.0.0.1 port=99999".to_string(), "99999"),
        (
            format!("host=127.0.0.1 port={port} sslmode=bogus"),
            r#"invalid sslmode value: "bogus""#,
        ),
        (
            format!("host=127.0.0.1 port={port} password=x foo=1"),
            r#"invalid connection option "foo""#,
        ),
    ] {
        let start = std::time::Instant::now();
        let e = Pool::builder(conninfo.as_str())
            .timeout(std::time::Duration::from_secs(30))
            .open()
            .await
            .unwrap_err();
        let took = start.elapsed();
        assert!(e.is_config(), "{conninfo}: {e:?}");
        assert!(e.to_string().contains(says), "{conninfo}: {e}");
        assert!(
            took < std::time::Duration::from_millis(100),
            "{conninfo}: open took {took:?}"
        );
    }
}
