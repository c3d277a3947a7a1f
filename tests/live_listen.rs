//! LISTEN/NOTIFY against a real PostgreSQL (and, for a future dropped in the middle of a
//! message, a scripted peer): notifications arrive complete and in order, a full buffer is
//! reported in place, a dropped `recv` loses nothing, channel names are quoted.

mod support;

use std::time::Duration;

use support::cluster::Cluster;
use support::fake_server::{self as fake, FakeServer};
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;
use wirepool::{Config, Connection, Listener, Notification, Pool, PooledConnection};

/// Four channels of the test `tag` (tests run in parallel in one database, where channels are
/// shared), with names that need quoting: case, a space, a double quote.
fn channels(tag: &str) -> [String; 4] {
    ["jobs", "Jobs", "we\"ird chan", "x"].map(|c| format!("{tag} {c}"))
}

fn config() -> Config {
    Cluster::shared()
        .conninfo("postgres", None)
        .parse()
        .unwrap()
}

/// Sends `count` notifications numbered from `first`, round-robin over `channels(tag)`, in one
/// transaction (so in this order).
async fn notify_batch(conn: &mut Connection, tag: &str, first: u32, count: u32) {
    let [a, b, c, d] = channels(tag);
    let sql = format!(
        "SELECT pg_notify((ARRAY['{a}','{b}','{c}','{d}'])[i % 4 + 1], i::text) \
         FROM generate_series({first}, {}) i",
        first + count - 1
    );
    conn.simple_query(&sql).await.unwrap();
}

fn check(n: &Notification, tag: &str, i: u32, sender: i32) {
    assert_eq!(n.payload, i.to_string(), "{n:?}");
    assert_eq!(n.channel, channels(tag)[i as usize % 4], "{n:?}");
    assert_eq!(n.pid, sender, "{n:?}");
}

async fn listener_on_every_channel(tag: &str) -> Listener {
    let mut listener = Listener::connect(&config()).await.unwrap();
    for c in channels(tag) {
        listener.listen(&c).await.unwrap();
    }
    assert_eq!(listener.channels().collect::<Vec<_>>(), channels(tag));
    listener
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_notifications_across_channels_arrive_complete_and_in_order() {
    let tag = "all";
    let mut listener = listener_on_every_channel(tag).await;
    let mut sender = Connection::connect(&config()).await.unwrap();
    let pid = sender.backend_pid();
    // Sent while the listener reads: ten transactions of 1000.
    let sending = tokio::spawn(async move {
        for batch in 0..10 {
            notify_batch(&mut sender, tag, batch * 1000, 1000).await;
        }
        sender
    });
    timeout(Duration::from_secs(30), async {
        for i in 0..10_000 {
            check(&listener.recv().await.unwrap(), tag, i, pid);
        }
    })
    .await
    .expect("10,000 notifications within 30 s");
    sending.await.unwrap().close().await.unwrap();
    // Nothing more, nothing left behind.
    assert!(listener
        .connection()
        .take_notifications()
        .unwrap()
        .is_empty());
    assert!(timeout(Duration::from_millis(50), listener.recv())
        .await
        .is_err());
}

/// 2000 notifications in four batches, read by `recv` futures that are dropped again and
/// again: each batch is sent only after a `recv` was dropped while it waited on the socket (so
/// at least four drops are certain), and within a batch short timeouts drop `recv` at random
/// points, often in the middle of a message. Every notification still arrives, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_recv_future_loses_nothing() {
    let tag = "drop";
    let mut listener = listener_on_every_channel(tag).await;
    let mut sender = Connection::connect(&config()).await.unwrap();
    let pid = sender.backend_pid();
    let (go, mut next_batch) = tokio::sync::mpsc::channel::<u32>(1);
    let sending = tokio::spawn(async move {
        while let Some(batch) = next_batch.recv().await {
            notify_batch(&mut sender, tag, batch * 500, 500).await;
        }
    });
    let (mut received, mut dropped) = (0u32, 0u32);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for batch in 0..4 {
        // Nothing of this batch is sent yet: a zero timeout drops `recv` while it waits.
        assert!(timeout(Duration::ZERO, listener.recv()).await.is_err());
        dropped += 1;
        go.send(batch).await.unwrap();
        while received < (batch + 1) * 500 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "stuck at {received}"
            );
            let wait = Duration::from_micros(u64::from(received % 7) * 20);
            match timeout(wait, listener.recv()).await {
                Ok(n) => {
                    check(&n.unwrap(), tag, received, pid);
                    received += 1;
                }
                Err(_) => dropped += 1,
            }
        }
    }
    drop(go);
    sending.await.unwrap();
    assert!(dropped >= 4, "{dropped} dropped futures");
}

#[tokio::test]
async fn a_recv_dropped_in_the_middle_of_a_message_loses_nothing() {
    let (half_sent, half_seen) = tokio::sync::oneshot::channel::<()>();
    let (go_on, resume) = tokio::sync::oneshot::channel::<()>();
    let server = FakeServer::start(|mut s| async move {
        fake::read_startup(&mut s).await;
        s.write_all(&fake::trust_handshake()).await.unwrap();
        let mut body = 77i32.to_be_bytes().to_vec();
        body.extend_from_slice(b"chan\0first\0");
        let first = fake::msg(b'A', &body);
        let (head, tail) = first.split_at(7);
        s.write_all(head).await.unwrap();
        half_sent.send(()).unwrap();
        resume.await.unwrap();
        let mut body = 77i32.to_be_bytes().to_vec();
        body.extend_from_slice(b"chan\0second\0");
        s.write_all(&[tail, &fake::msg(b'A', &body)].concat())
            .await
            .unwrap();
        // Keep the socket open until the client is done.
        let _ = fake::try_read_message(&mut s).await;
    });
    let config: Config = server.conninfo("u", None).parse().unwrap();
    let mut conn = Connection::connect(&config).await.unwrap();
    half_seen.await.unwrap();
    // Reads the first half, then is dropped waiting for the rest.
    assert!(timeout(Duration::from_millis(20), conn.next_notification())
        .await
        .is_err());
    go_on.send(()).unwrap();
    for payload in ["first", "second"] {
        let n = conn.next_notification().await.unwrap();
        assert_eq!(
            (n.pid, n.channel.as_str(), n.payload.as_str()),
            (77, "chan", payload)
        );
    }
    conn.close().await.unwrap();
    server.join().await;
}

/// PostgreSQL holds notifications for a session in a transaction block and sends them all just
/// before the ReadyForQuery of the statement that ends it (postgres.c, `ProcessNotifyInterrupt`
/// before `ReadyForQuery`): they arrive with a query's response, where they must be buffered.
#[tokio::test]
async fn a_full_buffer_is_reported_in_place_and_the_listener_goes_on() {
    let mut config = config();
    config.max_pending_notifications(8);
    let mut listener = Listener::connect(&config).await.unwrap();
    listener.listen("gap").await.unwrap();
    let mut sender = Connection::connect(&self::config()).await.unwrap();
    listener.connection().simple_query("BEGIN").await.unwrap();
    sender
        .simple_query("SELECT pg_notify('gap', i::text) FROM generate_series(0, 99) i")
        .await
        .unwrap();
    // The session's own NOTIFY makes the delivery at COMMIT certain (no signal to wait for).
    listener
        .connection()
        .simple_query("SELECT pg_notify('gap', 'own'); COMMIT")
        .await
        .unwrap();
    // The first 8 in order, then the loss of the other 93 (92 + its own), said once, in place.
    let kept = listener.connection().take_notifications().unwrap();
    let payloads: Vec<_> = kept.iter().map(|n| n.payload.as_str()).collect();
    assert_eq!(payloads, ["0", "1", "2", "3", "4", "5", "6", "7"]);
    let lost = listener.recv().await.unwrap_err();
    assert!(lost.is_notifications_lost(), "{lost:?}");
    assert_eq!(lost.notifications_missed(), Some(93));
    assert!(
        lost.to_string().contains("93 notification(s) lost"),
        "{lost}"
    );
    // The connection is fine and later notifications arrive.
    sender.simple_query("NOTIFY gap, 'after'").await.unwrap();
    assert_eq!(listener.recv().await.unwrap().payload, "after");
    assert_eq!(
        listener
            .connection()
            .simple_query("SELECT 1")
            .await
            .unwrap()[0]
            .get(0),
        Some("1")
    );
}

#[tokio::test]
async fn unlisten_stops_a_channel_and_a_nul_in_a_name_is_refused() {
    let tag = "unlisten";
    let [jobs, upper, weird, x] = channels(tag);
    let mut listener = listener_on_every_channel(tag).await;
    let mut sender = Connection::connect(&config()).await.unwrap();
    listener.unlisten(&upper).await.unwrap();
    assert_eq!(listener.channels().collect::<Vec<_>>(), [&jobs, &weird, &x]);
    sender
        .simple_query(&format!(
            "SELECT pg_notify('{upper}', 'dropped'); SELECT pg_notify('{jobs}', 'kept'); \
             SELECT pg_notify('{weird}', 'quoted')"
        ))
        .await
        .unwrap();
    assert_eq!(listener.recv().await.unwrap().payload, "kept");
    assert_eq!(listener.recv().await.unwrap().payload, "quoted");
    let e = listener.listen("bad\0name").await.unwrap_err();
    assert!(e.is_invalid_input(), "{e:?}");
    listener.unlisten_all().await.unwrap();
    assert_eq!(listener.channels().count(), 0);
    let rows = listener
        .connection()
        .simple_query("SELECT count(*) FROM pg_listening_channels()")
        .await
        .unwrap();
    assert_eq!(rows[0].get(0), Some("0"));
}

#[tokio::test]
async fn a_connection_taken_from_the_pool_becomes_a_listener() {
    let pool = Pool::builder(config())
        .min_size(0)
        .max_size(2)
        .open()
        .await
        .unwrap();
    let mut listener = Listener::new(PooledConnection::take(pool.connection().await.unwrap()));
    listener.listen("from_pool").await.unwrap();
    assert_eq!(
        pool.stats().pool_size,
        0,
        "a taken connection leaves the pool"
    );
    let mut other = pool.connection().await.unwrap();
    other
        .simple_query("NOTIFY from_pool, 'hello'")
        .await
        .unwrap();
    let n = listener.recv().await.unwrap();
    assert_eq!(
        (n.channel.as_str(), n.payload.as_str()),
        ("from_pool", "hello")
    );
    assert_eq!(n.pid, other.backend_pid());
}
