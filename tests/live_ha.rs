//! Connect-time server selection against a real primary and a streaming standby: every
//! `target_session_attrs` value over several host orders, `read-write` against `primary` on a
//! read-only primary, `prefer-standby` falling back when the standby is stopped, a promotion seen
//! by a live session, and `load_balance_hosts=random` spreading connections.

mod support;

use support::standby::{Pair, READ_ONLY_USER};
use wirepool::config::TargetSessionAttrs;
use wirepool::{Config, Connection, Error};

/// A port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn config(ports: &[u16], target: &str) -> Config {
    let hosts = vec!["127.0.0.1"; ports.len()].join(",");
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    format!(
        "host={hosts} port={} user=postgres dbname=postgres connect_timeout=10 \
         target_session_attrs={target}",
        ports.join(",")
    )
    .parse()
    .unwrap()
}

async fn one(conn: &mut Connection, sql: &str) -> String {
    let rows = conn.simple_query(sql).await.unwrap();
    rows[0].get(0).unwrap().to_owned()
}

/// Where a session landed: the server's port, after checking that the `in_hot_standby` the
/// session reported at startup agrees with the server's own answer.
async fn landed_on(conn: &mut Connection) -> u16 {
    let reported = conn.parameter("in_hot_standby").map(str::to_owned);
    let in_recovery = one(conn, "SELECT pg_is_in_recovery()").await;
    let expected = if in_recovery == "t" { "on" } else { "off" };
    assert_eq!(
        reported.as_deref(),
        Some(expected),
        "in_hot_standby as reported at startup"
    );
    one(conn, "SHOW port").await.parse().unwrap()
}

/// libpq 16's choices for every target and host order: `P` the primary, `S` the standby, `D` a
/// port nothing listens on; `Some(server)` where the session must land, `None` for an error.
#[tokio::test]
async fn every_target_over_every_host_order() {
    let pair = Pair::shared();
    let (p, s, d) = (pair.primary.port(), pair.standby.port(), closed_port());
    let orders: [(&str, Vec<u16>); 5] = [
        ("primary first", vec![p, s]),
        ("standby first", vec![s, p]),
        ("standby only", vec![s]),
        ("primary only", vec![p]),
        ("one host down", vec![d, s, p]),
    ];
    let (pp, ss) = (Some(p), Some(s));
    let table = [
        ("any", [pp, ss, ss, pp, ss]),
        ("read-write", [pp, pp, None, pp, pp]),
        ("read-only", [ss, ss, ss, None, ss]),
        ("primary", [pp, pp, None, pp, pp]),
        ("standby", [ss, ss, ss, None, ss]),
        ("prefer-standby", [ss, ss, ss, pp, ss]),
    ];
    for (target, expected) in table {
        for ((order, ports), want) in orders.iter().zip(expected) {
            let case = format!("{target} over {order}");
            match (Connection::connect(&config(ports, target)).await, want) {
                (Ok(mut conn), Some(port)) => {
                    assert_eq!(landed_on(&mut conn).await, port, "{case}");
                    assert_eq!(conn.target_session_attrs().as_str(), target, "{case}");
                    let t: TargetSessionAttrs = target.parse().unwrap();
                    assert!(conn.satisfies(t), "{case}");
                    conn.close().await.unwrap();
                }
                (Err(e), None) => {
                    assert!(e.is_target_mismatch(), "{case}: {e}");
                    let why = match target {
                        "read-write" => "session is read-only",
                        "read-only" => "session is not read-only",
                        "primary" => "server is in hot standby mode",
                        _ => "server is not in hot standby mode",
                    };
                    let at = format!("\"127.0.0.1\", port {}", ports[0]);
                    assert!(
                        e.to_string().contains(&format!("{at} failed: {why}")),
                        "{case}: {e}"
                    );
                    assert!(
                        !e.is_permanent_connect_error(),
                        "{case}: a failover can fix it"
                    );
                }
                (Ok(mut conn), None) => {
                    panic!(
                        "{case}: expected an error, landed on {}",
                        landed_on(&mut conn).await
                    )
                }
                (Err(e), Some(_)) => panic!("{case}: {e}"),
            }
        }
    }
}

/// A rejected server is passed over as a host: the error lists each host tried and why.
#[tokio::test]
async fn the_error_names_every_host_tried_and_why() {
    let pair = Pair::shared();
    let (s, d) = (pair.standby.port(), closed_port());
    let e = Connection::connect(&config(&[d, s], "read-write"))
        .await
        .unwrap_err();
    let text = e.to_string();
    let refused = format!("connection to server at \"127.0.0.1\", port {d} failed: ");
    let rejected = format!(
        "connection to server at \"127.0.0.1\", port {s} failed: session is read-only \
         (target_session_attrs=read-write)"
    );
    assert!(
        text.contains(&refused) && text.contains(&rejected),
        "{text}"
    );
    assert!(
        text.find(&refused) < text.find(&rejected),
        "in the order tried: {text}"
    );
}

/// `read-write` is not `primary`: on a primary whose sessions have
/// `default_transaction_read_only=on` (a role setting here), `primary` lands and `read-write`
/// does not.
#[tokio::test]
async fn read_write_is_not_primary() {
    let pair = Pair::shared();
    let (p, s) = (pair.primary.port(), pair.standby.port());
    let as_read_only_user = |target: &str| -> Config {
        let mut c = config(&[p, s], target);
        c.user(READ_ONLY_USER);
        c
    };
    for (target, want) in [
        ("primary", Some(p)),
        ("read-only", Some(p)),
        ("standby", Some(s)),
        ("read-write", None),
    ] {
        match Connection::connect(&as_read_only_user(target)).await {
            Ok(mut conn) => {
                assert_eq!(Some(landed_on(&mut conn).await), want, "{target}");
                assert_eq!(conn.parameter("default_transaction_read_only"), Some("on"));
                assert_eq!(one(&mut conn, "SHOW transaction_read_only").await, "on");
                conn.close().await.unwrap();
            }
            Err(e) => {
                assert!(want.is_none() && e.is_target_mismatch(), "{target}: {e}");
                let text = e.to_string();
                for port in [p, s] {
                    let rejected = format!("port {port} failed: session is read-only");
                    assert!(text.contains(&rejected), "{text}");
                }
            }
        }
    }
}

/// `prefer-standby` lands on the primary while the standby is stopped and on the standby again
/// once it is back; then, after a failover, a session on the promoted server sees
/// `in_hot_standby` turn off and no longer satisfies `standby`.
#[tokio::test]
async fn prefer_standby_falls_back_and_a_promotion_is_seen() {
    let pair = Pair::start().unwrap();
    let (p, s) = (pair.primary.port(), pair.standby.port());
    let prefer = config(&[s, p], "prefer-standby");

    pair.standby.stop_server("fast").unwrap();
    let mut conn = Connection::connect(&prefer).await.unwrap();
    assert_eq!(
        landed_on(&mut conn).await,
        p,
        "no standby: the second pass takes the primary"
    );
    assert!(conn.satisfies(TargetSessionAttrs::PreferStandby));
    conn.close().await.unwrap();
    let e = Connection::connect(&config(&[s, p], "standby"))
        .await
        .unwrap_err();
    assert!(e.is_target_mismatch(), "{e}");

    pair.standby.start_again().unwrap();
    let mut conn = Connection::connect(&prefer).await.unwrap();
    assert_eq!(landed_on(&mut conn).await, s);
    conn.close().await.unwrap();

    let mut on_standby = Connection::connect(&config(&[s], "standby")).await.unwrap();
    assert!(on_standby.satisfies(TargetSessionAttrs::Standby));
    assert!(!on_standby.satisfies(TargetSessionAttrs::ReadWrite));
    let took = pair.fail_over().unwrap();
    eprintln!("promotion took {took:?}");
    // The server reports the change before the next ReadyForQuery; a few round trips at most.
    let mut seen = false;
    for _ in 0..50 {
        on_standby.simple_query("SELECT 1").await.unwrap();
        if on_standby.parameter("in_hot_standby") == Some("off") {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        seen,
        "in_hot_standby never turned off on the promoted server"
    );
    assert!(!on_standby.satisfies(TargetSessionAttrs::Standby));
    assert!(on_standby.satisfies(TargetSessionAttrs::ReadWrite));
    assert!(on_standby.satisfies(TargetSessionAttrs::Primary));
    on_standby.close().await.unwrap();

    let mut conn = Connection::connect(&config(&[p, s], "read-write"))
        .await
        .unwrap();
    assert_eq!(
        landed_on(&mut conn).await,
        s,
        "the promoted standby takes the writes"
    );
    conn.simple_query("CREATE TABLE written_after_failover (x int)")
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// The servers that connections with seeds `seeds` land on, each closed after.
async fn landings(config: &Config, seeds: std::ops::Range<u64>) -> Vec<u16> {
    let mut landed = Vec::new();
    for seed in seeds {
        let mut conn = Connection::connect_with_seed(config, seed).await.unwrap();
        landed.push(landed_on(&mut conn).await);
        conn.close().await.unwrap();
    }
    landed
}

/// `load_balance_hosts=random` spreads connections over both servers; the order is fixed by the
/// seed, and `disable` always starts with the first host.
#[tokio::test]
async fn load_balance_hosts_random_spreads_connections() {
    let pair = Pair::shared();
    let (p, s) = (pair.primary.port(), pair.standby.port());
    let with = |extra: &str| -> Config {
        format!(
            "host=127.0.0.1,127.0.0.1 port={p},{s} user=postgres dbname=postgres \
             connect_timeout=10 {extra}"
        )
        .parse()
        .unwrap()
    };
    let random = with("load_balance_hosts=random");
    let landed = landings(&random, 0..16).await;
    let on_primary = landed.iter().filter(|&&port| port == p).count();
    assert!(
        on_primary > 0 && on_primary < landed.len(),
        "{on_primary} of {} on the primary: {landed:?}",
        landed.len()
    );
    assert_eq!(
        landings(&random, 0..4).await,
        landed[..4],
        "the same seeds again"
    );
    assert_eq!(
        landings(&with("load_balance_hosts=disable"), 0..4).await,
        [p; 4]
    );
    // With a target, the random order still ends on a matching server.
    let standbys = with("load_balance_hosts=random target_session_attrs=standby");
    assert_eq!(landings(&standbys, 0..4).await, [s; 4]);
}

/// Errors from connecting to a real server keep their kind under the added context.
#[tokio::test]
async fn predicates_survive_the_place_in_the_message() {
    let pair = Pair::shared();
    let p = pair.primary.port();
    let wrong: Config =
        format!("host=127.0.0.1 port={p} user=md5_user password=nope dbname=postgres")
            .parse()
            .unwrap();
    let e: Error = Connection::connect(&wrong).await.unwrap_err();
    assert!(e.is_auth() && e.is_permanent_connect_error(), "{e}");
    assert_eq!(e.code(), Some("28P01"));
    assert!(
        e.to_string()
            .contains(&format!("\"127.0.0.1\", port {p} failed: ")),
        "{e}"
    );
}
