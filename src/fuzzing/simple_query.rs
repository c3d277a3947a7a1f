//! Fuzz body `simple_query`: a scripted server on 127.0.0.1 accepts a real [`Connection`]
//! (trust login), then answers its simple query with the fuzzer's bytes and closes its side.
//!
//! Input: `[options] script`; `options` is unused for now (kept so the layout matches the
//! other targets). The script is written after the client's Query, then the server half-closes
//! and reads whatever the client still sends until it hangs up. The client then runs a second
//! query on the same connection if it is still usable (it reads the rest of the script), after
//! the pool's non-blocking peek (`check_closed`).
//!
//! Invariants:
//! - each query ends with rows, a typed error, or the connection marked broken: afterwards the
//!   connection is broken or idle (never "busy" with an unknown amount left to read);
//! - `Ok(rows)` only if the script holds a ReadyForQuery, no ErrorResponse before it, and
//!   exactly the rows of the DataRows before it (NULLs included); the transaction status is
//!   that ReadyForQuery's;
//! - an error that leaves the connection usable is a server error or an unsupported COPY, and
//!   only after a ReadyForQuery;
//! - `check_closed` answers `true` exactly when it leaves the connection broken;
//! - the client sends only well-formed Query and CopyFail messages after startup;
//! - no panic and no hang (the fuzzer's `-timeout` catches a hang; EOF is always reached).

use std::cell::RefCell;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

use crate::wire::TransactionStatus;
use crate::{Config, Connection, Error, Row};

/// AuthenticationOk, then ReadyForQuery(Idle): the shortest login PostgreSQL can send.
pub(super) const LOGIN: &[u8] = b"R\0\0\0\x08\0\0\0\0Z\0\0\0\x05I";

thread_local! {
    /// One runtime and one listener per thread, reused by every run: a fresh runtime per
    /// input would dominate the cost of an execution.
    static SERVER: RefCell<Option<(Runtime, TcpListener, Config)>> = const { RefCell::new(None) };
}

/// See the module header for the input layout and the invariants.
pub fn simple_query(data: &[u8]) {
    let _ = run(data);
}

fn run(data: &[u8]) -> End {
    let script = data.get(1..).unwrap_or_default();
    SERVER.with(|cell| {
        let mut cell = cell.borrow_mut();
        let (rt, listener, config) = cell.get_or_insert_with(start);
        rt.block_on(exchange(listener, config, script))
    })
}

/// How the first query ended, so the unit tests can check the recorded seeds reach each end.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Rows(usize),
    /// An error after which the connection is still usable.
    UsableError,
    Broken,
}

pub(super) fn start() -> (Runtime, TcpListener, Config) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot start a runtime: {e}"),
    };
    let listener = match rt.block_on(TcpListener::bind("127.0.0.1:0")) {
        Ok(l) => l,
        Err(e) => panic!("cannot listen on 127.0.0.1: {e}"),
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let conninfo = format!("hostaddr=127.0.0.1 port={port} user=fuzz dbname=fuzz sslmode=disable");
    let config = conninfo
        .parse()
        .unwrap_or_else(|e| panic!("{conninfo}: {e}"));
    (rt, listener, config)
}

async fn exchange(listener: &TcpListener, config: &Config, script: &[u8]) -> End {
    let server = async {
        let (mut socket, _) = listener.accept().await.ok()?;
        let len = socket.read_i32().await.ok()?;
        let mut startup = vec![0; usize::try_from(len).ok()?.checked_sub(4)?];
        socket.read_exact(&mut startup).await.ok()?;
        socket.write_all(LOGIN).await.ok()?;
        let mut query = [0u8; 14];
        socket.read_exact(&mut query).await.ok()?;
        assert_eq!(&query, b"Q\0\0\0\x0dselect 1\0", "the Query as sent");
        // The client may hang up early (an error mid-script): write errors are expected.
        let _ = socket.write_all(script).await;
        let _ = socket.shutdown().await;
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest).await;
        Some(rest)
    };
    let client = async {
        let mut conn = match Connection::connect(config).await {
            Ok(conn) => conn,
            Err(e) => panic!("login to the scripted server failed: {e}"),
        };
        let first = conn.simple_query("select 1").await;
        check(&conn, &first, Some(script));
        let end = match &first {
            _ if conn.is_broken() => End::Broken,
            Ok(rows) => End::Rows(rows.len()),
            Err(_) => End::UsableError,
        };
        if !conn.is_broken() {
            // The pool's checkout peek, on whatever of the script is left.
            let closed = conn.check_closed();
            assert_eq!(
                closed,
                conn.is_broken(),
                "check_closed and is_broken disagree"
            );
            assert!(conn.is_broken() || !conn.is_busy());
        }
        if !conn.is_broken() {
            let second = conn.simple_query("select 2").await;
            check(&conn, &second, None);
        }
        end
    };
    let (sent, end) = tokio::join!(server, client);
    let mut sent = &sent.expect("the scripted server saw the login and the Query")[..];
    while let Some((&tag, rest)) = sent.split_first() {
        assert!(matches!(tag, b'Q' | b'f'), "client sent message {tag:?}");
        let len = rest
            .get(..4)
            .map(|l| i32::from_be_bytes([l[0], l[1], l[2], l[3]]));
        let len = len.and_then(|l| usize::try_from(l).ok()).expect("a length");
        assert!(
            len >= 5 && rest.get(len - 1) == Some(&0),
            "a NUL-terminated body"
        );
        sent = &rest[len..];
    }
    end
}

/// The invariants on one query's outcome; `script` is the server's reply when the model knows
/// it (the first query).
fn check(conn: &Connection, result: &Result<Vec<Row>, Error>, script: Option<&[u8]>) {
    assert!(
        conn.is_broken() || !conn.is_busy(),
        "neither broken nor idle: {result:?}"
    );
    let model = script.map(model);
    match result {
        Ok(rows) => {
            assert!(!conn.is_broken() && !conn.is_busy());
            if let Some(Model {
                ready: Some(status),
                rows: want,
                error,
                ..
            }) = model
            {
                assert!(!error, "an ErrorResponse was swallowed");
                assert_eq!(conn.transaction_status(), status);
                let got: Vec<Vec<Option<&str>>> = rows
                    .iter()
                    .map(|r| (0..r.len()).map(|i| r.get(i)).collect())
                    .collect();
                let want: Vec<Vec<Option<&str>>> = want
                    .iter()
                    .map(|r| r.iter().map(Option::as_deref).collect())
                    .collect();
                assert_eq!(got, want);
            } else {
                assert!(model.is_none(), "rows without a ReadyForQuery");
            }
        }
        Err(e) if !conn.is_broken() => {
            assert!(e.is_db() || e.is_unsupported(), "usable after {e:?}");
            if let Some(m) = model {
                assert!(
                    m.ready.is_some(),
                    "usable after {e:?} with no ReadyForQuery"
                );
            }
        }
        Err(_) => {}
    }
}

/// What the script says about the first query, read with a framing parser of its own: the
/// DataRows and whether an ErrorResponse came before the first ReadyForQuery, and its status.
struct Model {
    ready: Option<TransactionStatus>,
    rows: Vec<Vec<Option<String>>>,
    error: bool,
    /// A DataRow value is not UTF-8.
    bad_text: bool,
}

fn model(mut script: &[u8]) -> Model {
    let mut m = Model {
        ready: None,
        rows: Vec::new(),
        error: false,
        bad_text: false,
    };
    while let Some((&tag, rest)) = script.split_first() {
        let Some(len) = rest
            .get(..4)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]))
        else {
            break;
        };
        let Some(body) = rest.get(4..len as usize) else {
            break;
        };
        match tag {
            b'D' => {
                let values = row(body);
                m.bad_text |= values.iter().flatten().any(|v| v.contains('\u{FFFD}'));
                m.rows.push(values);
            }
            b'E' => m.error = true,
            b'Z' => {
                m.ready = TransactionStatus::from_byte(body.first().copied().unwrap_or(0)).ok();
                break;
            }
            _ => {}
        }
        script = &rest[len as usize..];
    }
    m
}

/// A DataRow's values as text, without validation (only consulted when the client accepted it).
pub(super) fn row(body: &[u8]) -> Vec<Option<String>> {
    let mut values = Vec::new();
    let mut rest = body.get(2..).unwrap_or_default();
    while let Some(len) = rest
        .get(..4)
        .map(|l| i32::from_be_bytes([l[0], l[1], l[2], l[3]]))
    {
        rest = &rest[4..];
        match usize::try_from(len) {
            Err(_) => values.push(None),
            Ok(n) => {
                let value = rest.get(..n).unwrap_or_default();
                values.push(Some(String::from_utf8_lossy(value).into_owned()));
                rest = rest.get(n..).unwrap_or_default();
            }
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> End {
        let path = format!(
            "{}/fuzz/seeds/simple_query/recorded_query_{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        run(&std::fs::read(path).unwrap())
    }

    #[test]
    fn recorded_answers_reach_each_end() {
        assert_eq!(seed("select_one_null"), End::Rows(1));
        assert_eq!(seed("series"), End::Rows(5));
        assert_eq!(seed("two_statements"), End::Rows(2));
        assert_eq!(seed("empty"), End::Rows(0));
        assert_eq!(seed("division_by_zero"), End::UsableError);
        assert_eq!(seed("error_after_rows"), End::UsableError);
        assert_eq!(seed("copy_out"), End::UsableError);
        assert_eq!(seed("copy_in"), End::UsableError);
        // A script cut short: the server hangs up before ReadyForQuery.
        let script = std::fs::read(format!(
            "{}/fuzz/seeds/simple_query/recorded_query_series",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert_eq!(run(&script[..script.len() - 6]), End::Broken);
    }

    /// A DataRow value that is not UTF-8 is a protocol error and leaves the connection broken:
    /// the session's encoding is not the UTF8 the client asked for, so every later query would
    /// fail the same way and a pool must not reuse it (`src/conn/query.rs`, `Outcome::BadText`).
    #[test]
    fn a_non_utf8_value_marks_the_connection_broken() {
        let input = std::fs::read(format!(
            "{}/fuzz/regressions/simple_query/non_utf8_value_marks_the_connection_broken",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert_eq!(run(&input), End::Broken);
    }
}
