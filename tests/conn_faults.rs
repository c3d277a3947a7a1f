//! `Connection` against a scripted fake server: malformed bytes, stalls, drops, SCRAM servers
//! that skip or forge their proof, a downgrade to cleartext, and multi-host stop-on-auth-failure.

mod support;

use std::time::Duration;

use base64::Engine;
use support::fake_server::{self as fake, FakeServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
        "host=127.0.0.1,127.0.0.1 port={},{} user=u password=pw dbname=postgres sslmode=disable",
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

/// A `simple_query` dropped while its Query is only partly written (the server is not reading,
/// so the socket buffers fill) leaves the server holding a prefix of a message. The connection
/// must be broken: reusing it fails at once instead of waiting for a ReadyForQuery that cannot
/// come, and `close` neither re-sends the query nor appends Terminate to its prefix.
#[tokio::test]
async fn query_dropped_mid_write_breaks_the_connection_and_close_sends_nothing_more() {
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (count_tx, count_rx) = tokio::sync::oneshot::channel::<usize>();
    let server = FakeServer::start(|mut s| async move {
        fake::read_startup(&mut s).await;
        send(&mut s, &fake::trust_handshake()).await;
        let _ = go_rx.await; // read nothing while the client writes
        let mut total = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        let _ = count_tx.send(total);
    });
    let mut conn = connect(&server.conninfo("u", None)).await.unwrap();
    // Far more than loopback's socket buffers hold, so one poll writes only a prefix.
    let sql = format!("SELECT '{}'", "x".repeat(16 << 20));
    let query_len = 1 + 4 + sql.len() + 1;
    // One poll: the write fills the buffers and returns Pending, then the future drops.
    let first_poll = poll_once(conn.simple_query(&sql)).await;
    assert!(
        first_poll.is_pending(),
        "16 MiB cannot be written in one poll"
    );
    assert!(conn.is_busy());
    assert!(
        conn.is_broken(),
        "a cut message must make the connection broken"
    );
    assert!(conn.check_closed());
    go_tx.send(()).unwrap();

    let reuse = tokio::time::timeout(Duration::from_secs(5), conn.simple_query("SELECT 1"))
        .await
        .expect("reuse must fail at once, not wait for a ReadyForQuery");
    let err = reuse.unwrap_err();
    assert!(err.is_closed(), "{err:?}");

    conn.close().await.unwrap();
    let total = count_rx.await.unwrap();
    server.join().await;
    assert!(total > 0, "the first poll wrote a prefix");
    assert!(
        total < query_len,
        "the server got {total} bytes: more than the prefix of one {query_len}-byte Query \
         (re-sent or completed after the drop)"
    );
}

/// Drives a query the fake server answers with `response` (after which it answers one
/// `select 1`), drops it after its first poll, and returns the connection once the server has
/// written the response.
async fn busy_connection_with_pending(response: Vec<u8>) -> (Connection, FakeServer) {
    let (respond_tx, respond_rx) = tokio::sync::oneshot::channel::<()>();
    let (written_tx, written_rx) = tokio::sync::oneshot::channel::<()>();
    let server = FakeServer::start(|mut s| async move {
        fake::read_startup(&mut s).await;
        send(&mut s, &fake::trust_handshake()).await;
        let (tag, _) = fake::read_message(&mut s).await;
        assert_eq!(tag, b'Q');
        respond_rx.await.unwrap(); // only once the query's future is gone
        send(&mut s, &response).await;
        written_tx.send(()).unwrap();
        if let Ok(Some((b'Q', _))) = fake::try_read_message(&mut s).await {
            let answer = [
                fake::row_description(&["?column?"]),
                fake::data_row(&[Some(b"1")]),
                fake::command_complete("SELECT 1"),
                fake::ready_for_query(b'I'),
            ]
            .concat();
            send(&mut s, &answer).await;
        }
    });
    let mut conn = connect(&server.conninfo("u", None)).await.unwrap();
    let first_poll = poll_once(conn.simple_query("SELECT pg_sleep(10)")).await;
    assert!(
        first_poll.is_pending(),
        "the server answers only when told to"
    );
    assert!(conn.is_busy());
    respond_tx.send(()).unwrap();
    written_rx.await.unwrap();
    (conn, server)
}

/// Calls `check_closed` until the response of the dropped query has been consumed (busy
/// cleared) or it reports closed; bounded, since bytes written on loopback arrive at once.
async fn check_closed_until_idle(conn: &mut Connection) -> bool {
    for _ in 0..1000 {
        if conn.check_closed() {
            return true;
        }
        if !conn.is_busy() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the dropped query's ReadyForQuery never arrived");
}

/// On a busy connection (a dropped query), an ordinary ERROR such as 57014 is that query's
/// response, not the server closing: `check_closed` reads through it to ReadyForQuery and the
/// connection stays usable.
#[tokio::test]
async fn check_closed_on_busy_connection_reads_through_an_ordinary_error() {
    let cancelled = fake::error_response(&[
        (b'S', "ERROR"),
        (b'V', "ERROR"),
        (b'C', "57014"),
        (b'M', "canceling statement due to user request"),
    ]);
    let response = [cancelled, fake::ready_for_query(b'I')].concat();
    let (mut conn, server) = busy_connection_with_pending(response).await;
    assert!(
        !check_closed_until_idle(&mut conn).await,
        "a healthy connection reported closed (57014 ERROR, then ReadyForQuery)"
    );
    assert!(!conn.is_broken());
    assert_eq!(conn.transaction_status(), wirepool::TransactionStatus::Idle);
    let rows = conn.simple_query("select 1").await.unwrap();
    assert_eq!(rows[0].get(0), Some("1"));
    server.join().await;
}

/// A FATAL on a busy connection still means the server is closing it.
#[tokio::test]
async fn check_closed_on_busy_connection_reports_a_fatal() {
    let fatal = fake::error_response(&[
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "57P01"),
        (b'M', "terminating connection due to administrator command"),
    ]);
    let (mut conn, server) = busy_connection_with_pending(fatal).await;
    assert!(check_closed_until_idle(&mut conn).await);
    assert!(conn.is_broken());
    drop(conn);
    server.join().await;
}

/// Polls `fut` exactly once and drops it (`timeout(Duration::ZERO, ..)` may poll it again
/// before the timer fires).
async fn poll_once<F: std::future::Future>(fut: F) -> std::task::Poll<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await
}

/// The alive-bypass window: right after a query's ReadyForQuery, `check_closed` trusts that
/// round trip and does not peek, so a close that arrived meanwhile is seen only once the
/// window (1 ms) has passed; then it is seen at once. Paused time: the window is exact.
#[tokio::test(start_paused = true)]
async fn check_closed_trusts_a_round_trip_for_one_millisecond() {
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    let server = FakeServer::start(|mut s| async move {
        fake::read_startup(&mut s).await;
        send(&mut s, &fake::trust_handshake()).await;
        let (tag, _) = fake::read_message(&mut s).await;
        assert_eq!(tag, b'Q');
        let mut reply = fake::command_complete("SELECT 0");
        reply.extend(fake::ready_for_query(b'I'));
        send(&mut s, &reply).await;
        drop(s); // the server goes away right after answering
        let _ = closed_tx.send(());
    });
    let mut conn = connect(&server.conninfo("u", None)).await.unwrap();
    conn.simple_query("select").await.unwrap();
    closed_rx.await.unwrap();
    assert!(
        !conn.check_closed(),
        "within the window: no peek, taken as open"
    );
    tokio::time::advance(Duration::from_micros(999)).await;
    assert!(!conn.check_closed(), "still within the window");
    tokio::time::advance(Duration::from_micros(1)).await;
    assert!(
        conn.check_closed(),
        "past the window: the peek sees the close"
    );
    assert!(conn.is_broken());
    server.join().await;
}

/// A server that closes a session says why just before its EOF (57P01 here); a peek that finds
/// both already arrived still reads the why, so the connection is known to be going away, not
/// only closed.
#[tokio::test]
async fn a_farewell_error_that_arrives_with_the_eof_is_still_read() {
    let server = FakeServer::start(|mut s| async move {
        fake::read_startup(&mut s).await;
        send(&mut s, &fake::trust_handshake()).await;
        let farewell = fake::error_response(&[
            (b'S', "FATAL"),
            (b'V', "FATAL"),
            (b'C', "57P01"),
            (b'M', "terminating connection due to administrator command"),
        ]);
        send(&mut s, &farewell).await;
        drop(s);
    });
    let mut conn = connect(&server.conninfo("u", None)).await.unwrap();
    server.join().await; // the error and the EOF have both been sent
    assert!(conn.check_closed());
    assert!(
        conn.server_going_away(),
        "the 57P01 before the EOF was read"
    );
}

/// A query dropped mid-flight still changed the session if its reply says so: `check_closed`,
/// reading through that reply, notes the `SET` tag and the reported parameter.
#[tokio::test]
async fn check_closed_on_a_busy_connection_notes_what_the_dropped_query_changed() {
    let reply = [
        fake::parameter_status("TimeZone", "Asia/Tokyo"),
        fake::command_complete("SET"),
        fake::ready_for_query(b'I'),
    ]
    .concat();
    let (mut conn, server) = busy_connection_with_pending(reply).await;
    assert!(!conn.session_changed());
    assert!(!check_closed_until_idle(&mut conn).await);
    assert!(conn.session_changed());
    assert_eq!(conn.parameter("TimeZone"), Some("Asia/Tokyo"));
    drop(conn);
    server.join().await;
}
