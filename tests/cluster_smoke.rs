//! Smoke tests of the test infrastructure itself: the throwaway cluster is up with the roles,
//! password storage and pg_hba methods other tests rely on, and the fake server round-trips a
//! scripted handshake. If these fail, every live-server test's failure is about the harness.

mod support;

use support::cluster::{self, Cluster};
use support::fake_server::{self as fake, FakeServer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A protocol 3.0 StartupMessage, written out by hand (PostgreSQL's "Message Formats":
/// length, version 196608, name/value pairs, a final NUL).
fn startup_message(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (name, value) in params {
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let len = u32::try_from(body.len() + 4).unwrap();
    [len.to_be_bytes().to_vec(), body].concat()
}

#[test]
fn shared_cluster_answers_select_1() {
    let cluster = Cluster::shared();
    eprintln!(
        "shared cluster on port {} started in {:?}",
        cluster.port(),
        cluster.startup_time()
    );
    assert_eq!(cluster.psql("select 1").unwrap(), "1");
    assert_eq!(cluster.host(), "127.0.0.1");
    assert!(cluster
        .socket_dir()
        .join(format!(".s.PGSQL.{}", cluster.port()))
        .exists());
    assert!(cluster.data_dir().join("PG_VERSION").is_file());
}

#[test]
fn roles_exist_with_the_expected_password_storage() {
    let out = Cluster::shared()
        .psql(
            "select rolname, rolcanlogin, rolpassword from pg_authid \
             where rolname like '%\\_user' order by rolname",
        )
        .unwrap();
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('|').collect()).collect();
    let names: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    let expected = [
        "md5_user",
        "md5scram_user",
        "pass_user",
        "prep_user",
        "scram_user",
    ];
    assert_eq!(names, expected, "{out}");
    for row in &rows {
        assert_eq!(row[1], "t", "{} can log in", row[0]);
        // An MD5 verifier is `md5` + 32 hex digits; a SCRAM one is `SCRAM-SHA-256$iter:salt$...`.
        if row[0] == "md5_user" {
            assert!(
                row[2].starts_with("md5") && row[2].len() == 35,
                "{}",
                row[2]
            );
        } else {
            assert!(
                row[2].starts_with("SCRAM-SHA-256$"),
                "{}: {}",
                row[0],
                row[2]
            );
        }
    }
}

#[test]
fn test_db_exists() {
    let out = Cluster::shared()
        .psql("select datname from pg_database where datname = 'test_db'")
        .unwrap();
    assert_eq!(out, "test_db");
}

#[test]
fn psql_reports_sql_errors() {
    let err = Cluster::shared()
        .psql("select * from no_such_table")
        .unwrap_err();
    assert!(err.contains("no_such_table"), "{err}");
}

#[test]
fn tcp_port_accepts_connections() {
    let cluster = Cluster::shared();
    std::net::TcpStream::connect((cluster.host(), cluster.port())).unwrap();
}

/// Each role gets the authentication request its pg_hba line promises, read with the fake
/// server's reader (which also checks that reader against a real server's bytes).
#[tokio::test]
async fn pg_hba_offers_each_auth_method() {
    let cluster = Cluster::shared();
    let scram_list = [&10i32.to_be_bytes()[..], b"SCRAM-SHA-256\0\0"].concat();
    let cases: [(&str, Vec<u8>); 6] = [
        ("postgres", 0i32.to_be_bytes().to_vec()),
        ("pass_user", 3i32.to_be_bytes().to_vec()),
        ("md5_user", 5i32.to_be_bytes().to_vec()),
        ("md5scram_user", scram_list.clone()),
        ("scram_user", scram_list.clone()),
        ("prep_user", scram_list),
    ];
    for (user, expected) in cases {
        let mut stream = TcpStream::connect((cluster.host(), cluster.port()))
            .await
            .unwrap();
        let startup = startup_message(&[("user", user), ("database", "test_db")]);
        stream.write_all(&startup).await.unwrap();
        let (tag, body) = fake::read_message(&mut stream).await;
        assert_eq!(tag, b'R', "{user}");
        let body = if user == "md5_user" {
            &body[..4]
        } else {
            &body[..]
        };
        assert_eq!(body, expected, "{user}");
    }
}

#[test]
fn private_cluster_starts_and_stop_removes_it() {
    let shared_port = Cluster::shared().port();
    let private = Cluster::start().unwrap();
    assert_ne!(private.port(), shared_port);
    assert_eq!(private.psql("select current_user").unwrap(), "postgres");
    let data_dir = private.data_dir().to_path_buf();
    private.stop();
    let refused = std::net::TcpStream::connect((private.host(), private.port())).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let keep = std::env::var("WIREPOOL_TEST_KEEP").is_ok_and(|v| v == "1");
    assert_eq!(
        data_dir.exists(),
        keep,
        "directory kept iff WIREPOOL_TEST_KEEP=1"
    );
}

/// `Options` reach the server: a setting, a pg_hba row placed before the defaults, a file the
/// server can read, setup SQL; and the server stops and starts again on the same port.
#[test]
fn private_cluster_takes_options_and_restarts() {
    let options = cluster::Options {
        conf: vec!["work_mem = '7MB'".to_owned()],
        hba: vec!["host all refused_user 127.0.0.1/32 reject".to_owned()],
        files: vec![("note.txt".to_owned(), b"server-readable".to_vec(), 0o600)],
        setup_sql: vec!["CREATE ROLE refused_user LOGIN".to_owned()],
    };
    let c = Cluster::start_with(options).expect("cluster with options");
    assert_eq!(c.psql("SHOW work_mem").unwrap(), "7MB");
    assert_eq!(
        c.psql("SELECT pg_read_file(current_setting('data_directory') || '/../note.txt')")
            .unwrap(),
        "server-readable"
    );
    let hba = c
        .psql("SELECT user_name[1] || ':' || auth_method FROM pg_hba_file_rules WHERE line_number = 2")
        .unwrap();
    assert_eq!(hba, "refused_user:reject");
    assert_eq!(
        c.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'refused_user'")
            .unwrap(),
        "1"
    );
    let port = c.port();
    c.stop_server("fast").unwrap();
    assert!(c.psql("SELECT 1").is_err(), "stopped");
    c.start_again().unwrap();
    assert_eq!(c.port(), port);
    assert_eq!(c.psql("SELECT 1").unwrap(), "1");
    c.stop();
}

#[test]
fn conninfo_quotes_values_like_libpq() {
    assert_eq!(
        cluster::conninfo("127.0.0.1", 5432, "scram_user", Some("password")),
        "host=127.0.0.1 port=5432 dbname=postgres user=scram_user password=password"
    );
    assert_eq!(
        cluster::conninfo("127.0.0.1", 1, "a b", Some(r"it's\")),
        r"host=127.0.0.1 port=1 dbname=postgres user='a b' password='it\'s\\'"
    );
    assert_eq!(
        cluster::conninfo("h", 1, "u", Some("")),
        "host=h port=1 dbname=postgres user=u password=''"
    );
    assert_eq!(
        Cluster::shared().conninfo("u", None),
        format!(
            "host=127.0.0.1 port={} dbname=postgres user=u",
            Cluster::shared().port()
        )
    );
}

#[tokio::test]
async fn fake_server_serves_a_scripted_handshake() {
    let server = FakeServer::start(|mut stream| async move {
        let packet = fake::read_startup(&mut stream).await;
        let (version, params) = fake::startup_params(&packet);
        assert_eq!(version, 196_608);
        assert_eq!(params, [("user".to_owned(), "alice".to_owned())]);
        let reply = [fake::auth_ok(), fake::ready_for_query(b'I')].concat();
        stream.write_all(&reply).await.unwrap();
        assert_eq!(fake::read_message(&mut stream).await, (b'X', vec![]));
    });
    assert_eq!(
        server.conninfo("alice", None),
        format!(
            "host=127.0.0.1 port={} dbname=postgres user=alice sslmode=disable",
            server.port()
        )
    );

    let mut client = TcpStream::connect(server.addr()).await.unwrap();
    client
        .write_all(&startup_message(&[("user", "alice")]))
        .await
        .unwrap();
    assert_eq!(
        fake::read_message(&mut client).await,
        (b'R', vec![0, 0, 0, 0])
    );
    assert_eq!(fake::read_message(&mut client).await, (b'Z', vec![b'I']));
    client.write_all(&fake::msg(b'X', &[])).await.unwrap();
    server.join().await;
    assert_eq!(
        fake::try_read_message(&mut client).await.unwrap(),
        None,
        "script ended: closed"
    );
}

#[tokio::test]
async fn fake_server_start_serves_one_connection_accept_many_serves_all() {
    let once = FakeServer::start(|_stream| async {});
    let addr = once.addr();
    TcpStream::connect(addr).await.unwrap();
    once.join().await;
    // The listener is closed after the first connection, so the port refuses. (Once closed,
    // the port is the kernel's to hand out again — another test's listener, or a TCP
    // self-connect from an identical ephemeral port — so a successful connect here would be
    // someone else's socket, not `once` serving twice; that rare case is not a failure.)
    if let Err(e) = TcpStream::connect(addr).await {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    }

    let many = FakeServer::accept_many(|mut stream| async move {
        stream
            .write_all(&fake::error_response(&[(b'S', "FATAL"), (b'C', "53300")]))
            .await
            .unwrap();
    });
    for _ in 0..3 {
        let mut client = TcpStream::connect(many.addr()).await.unwrap();
        let (tag, body) = fake::read_message(&mut client).await;
        assert_eq!((tag, body), (b'E', b"SFATAL\0C53300\0\0".to_vec()));
    }
    assert_eq!(many.accepted(), 3);
    many.join().await;
}

#[tokio::test]
#[should_panic(expected = "script assertion")]
async fn fake_server_join_reraises_script_panics() {
    let server = FakeServer::start(|_stream| async { panic!("script assertion") });
    TcpStream::connect(server.addr()).await.unwrap();
    server.join().await;
}
