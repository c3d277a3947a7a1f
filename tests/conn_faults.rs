//! `Connection` against a scripted fake server: malformed bytes, stalls, drops, SCRAM servers
//! that skip or forge their proof, a downgrade to cleartext, and multi-host stop-on-auth-failure.

mod support;

use std::time::Duration;

use base64::Engine;
use support::fake_server::{self as fake, FakeServer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wirepool::wire::WireError;
use wirepool::{Config, Connection, Error};

async fn connect(conninfo: &str) -> Result<Connection, Error> {
    let config: Config = conninfo.parse().unwrap();
    Connection::connect(&config).await
}

async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
}

#[tokio::test]
async fn garbage_bytes_are_a_protocol_error() {
    let server = FakeServer::start(|mut s| async move {
        fake::read_startup(&mut s).await;
        send(&mut s, b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    });
    let err = connect(&server.conninfo("u", None)).await.unwrap_err();
    assert!(err.is_protocol(), "{err:?}");
    server.join().await;
}

#[tokio::test]
async fn huge_declared_length_is_refused() {
    let server = FakeServer::start(|mut s| async move {
        fake::read_startup(&mut s).await;
        send(&mut s, &[b'R', 0x7f, 0xff, 0xff, 0xff]).await;
    });
    let err = connect(&server.conninfo("u", None)).await.unwrap_err();
    assert!(
        matches!(
            err.as_wire_error(),
            Some(WireError::MessageTooLong { tag: b'R', .. })
        ),
        "{err:?}"
    );
    server.join().await;
}

#[tokio::test]
async fn stalled_server_hits_connect_timeout() {
    let (release, wait) = tokio::sync::oneshot::channel::<()>();
    let server = FakeServer::start(|mut s| async move {
        fake::read_startup(&mut s).await;
        let _ = wait.await; // never answers until the test is done
    });
    let conninfo = format!("{} connect_timeout=2", server.conninfo("u", None));
    let err = connect(&conninfo).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    drop(release);
    server.join().await;
}

#[tokio::test]
async fn drop_mid_handshake_is_closed() {
    let server = FakeServer::start(|mut s| async move {
        fake::read_startup(&mut s).await;
        send(&mut s, &fake::auth_cleartext()).await;
        let (tag, _) = fake::read_message(&mut s).await;
        assert_eq!(tag, b'p');
    });
    let err = connect(&server.conninfo("u", Some("pw")))
        .await
        .unwrap_err();
    assert!(err.is_closed(), "{err:?}");
    server.join().await;
}

#[tokio::test]
async fn cleartext_under_require_scram_never_sends_the_password() {
    let server = FakeServer::start(|mut s| async move {
        fake::read_startup(&mut s).await;
        send(&mut s, &fake::auth_cleartext()).await;
        // The client must hang up without a PasswordMessage.
        match fake::try_read_message(&mut s).await {
            Ok(None) | Err(_) => {}
            Ok(Some((tag, _))) => panic!("client sent {:?} after a refused request", tag as char),
        }
    });
    let conninfo = format!(
        "{} require_auth=scram-sha-256",
        server.conninfo("u", Some("secret"))
    );
    let err = connect(&conninfo).await.unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert!(err.to_string().contains("cleartext"), "{err}");
    server.join().await;
}

/// A SCRAM server that knows nothing about the password: it answers the client's nonce, then
/// `finish` decides how it tries to end the exchange.
async fn fake_scram(s: &mut TcpStream, finish: Vec<u8>) {
    fake::read_startup(s).await;
    send(s, &fake::auth_sasl(&["SCRAM-SHA-256"])).await;
    let (tag, body) = fake::read_message(s).await;
    assert_eq!(tag, b'p');
    let text = String::from_utf8_lossy(&body).into_owned();
    let nonce = text.rsplit("r=").next().unwrap().to_owned();
    let salt = base64::engine::general_purpose::STANDARD.encode(b"0123456789abcdef");
    let first = format!("r={nonce}SERVERNONCE,s={salt},i=4096");
    send(s, &fake::auth_sasl_continue(first.as_bytes())).await;
    let (tag, _) = fake::read_message(s).await;
    assert_eq!(tag, b'p');
    send(s, &finish).await;
    send(s, &fake::trust_handshake()).await;
}

#[tokio::test]
async fn scram_server_skipping_sasl_final_is_refused() {
    let server = FakeServer::start(|mut s| async move {
        fake_scram(&mut s, Vec::new()).await; // straight to AuthenticationOk (in trust_handshake)
    });
    let err = connect(&server.conninfo("u", Some("pw")))
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    server.join().await;
}

#[tokio::test]
async fn scram_server_with_wrong_signature_is_refused() {
    let v = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let forged = fake::auth_sasl_final(format!("v={v}").as_bytes());
    let server = FakeServer::start(move |mut s| async move {
        fake_scram(&mut s, forged).await;
    });
    let err = connect(&server.conninfo("u", Some("pw")))
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert!(err.to_string().contains("signature"), "{err}");
    server.join().await;
}

#[tokio::test]
async fn auth_failure_on_first_host_does_not_try_the_second() {
    let first = FakeServer::start(|mut s| async move {
        fake::read_startup(&mut s).await;
        send(&mut s, &fake::auth_cleartext()).await;
        fake::read_message(&mut s).await;
        let fatal = fake::error_response(&[
            (b'S', "FATAL"),
            (b'C', "28P01"),
            (b'M', "password authentication failed for user \"u\""),
        ]);
        send(&mut s, &fatal).await;
    });
    let second = FakeServer::accept_many(|mut s| async move {
        fake::read_startup(&mut s).await;
        send(&mut s, &fake::trust_handshake()).await;
    });
    let conninfo = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=u password=pw dbname=postgres",
        first.port(),
        second.port()
    );
    let err = connect(&conninfo).await.unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert_eq!(err.code(), Some("28P01"));
    assert_eq!(second.accepted(), 0, "the second host must not be tried");
    first.join().await;
    second.join().await;
}

#[tokio::test]
async fn dropped_query_leaves_connection_busy() {
    let (release, wait) = tokio::sync::oneshot::channel::<()>();
    let server = FakeServer::start(|mut s| async move {
        fake::read_startup(&mut s).await;
        send(&mut s, &fake::trust_handshake()).await;
        let (tag, _) = fake::read_message(&mut s).await;
        assert_eq!(tag, b'Q');
        let _ = wait.await;
    });
    let mut conn = connect(&server.conninfo("u", None)).await.unwrap();
    assert_eq!(conn.backend_pid(), 4242);
    assert!(!conn.is_busy());
    let pending = tokio::time::timeout(Duration::from_millis(100), conn.simple_query("select 1"));
    assert!(pending.await.is_err(), "the fake server never answers");
    assert!(conn.is_busy());
    drop(release);
    server.join().await;
}
