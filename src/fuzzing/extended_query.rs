//! Fuzz body `extended_query`: a scripted server on 127.0.0.1 accepts a real [`Connection`]
//! (trust login), reads its extended query (Parse, Bind, Describe, Execute, Sync in one write),
//! answers with the fuzzer's bytes and closes its side.
//!
//! Input: `[options] script`. `options & 1` turns the statement cache on (capacity 4), so the
//! first query is a miss (Parse, Describe statement, Bind, Execute, Sync) and the replies it
//! needs include ParameterDescription. The client then runs a second query on the same
//! connection if it is still usable (it reads the rest of the script).
//!
//! Invariants:
//! - each query ends with rows, a typed error, or the connection marked broken: afterwards the
//!   connection is broken or idle, never busy;
//! - `Ok(rows)` only if the script, up to its first ReadyForQuery, is exactly the replies the
//!   query asked for, in order (ParseComplete, [ParameterDescription, RowDescription or
//!   NoData,] BindComplete, [RowDescription or NoData,] DataRows, CommandComplete or
//!   EmptyQueryResponse), with only ParameterStatus, NoticeResponse and NotificationResponse
//!   between them, no ErrorResponse, and the rows are those DataRows: a missing BindComplete, a
//!   PortalSuspended, a DataRow before its RowDescription is never a result;
//! - an error that leaves the connection usable is a server error or an unsupported COPY, and
//!   only after a ReadyForQuery;
//! - the client sends only well-formed Parse, Bind, Describe, Execute, Close, Sync and CopyFail
//!   messages after startup;
//! - no panic and no hang (EOF is always reached).

use std::cell::RefCell;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

use super::simple_query::{row, start, LOGIN};
use crate::{Config, Connection, Error, Row};

thread_local! {
    /// One runtime and one listener per thread, reused by every run.
    static SERVER: RefCell<Option<(Runtime, TcpListener, Config)>> = const { RefCell::new(None) };
}

/// The query both runs send: one parameter, one column.
const SQL: &str = "select $1::int4";

/// See the module header for the input layout and the invariants.
pub fn extended_query(data: &[u8]) {
    let _ = run(data);
}

/// How the first query ended (for the unit tests).
#[derive(Debug, PartialEq, Eq)]
enum End {
    Rows(usize),
    UsableError,
    Broken,
}

fn run(data: &[u8]) -> End {
    let cache = data.first().is_some_and(|o| o & 1 == 1);
    let script = data.get(1..).unwrap_or_default();
    SERVER.with(|cell| {
        let mut cell = cell.borrow_mut();
        let (rt, listener, config) = cell.get_or_insert_with(start);
        rt.block_on(exchange(listener, config, script, cache))
    })
}

async fn exchange(listener: &TcpListener, config: &Config, script: &[u8], cache: bool) -> End {
    let server = async {
        let (mut socket, _) = listener.accept().await.ok()?;
        let len = socket.read_i32().await.ok()?;
        let mut startup = vec![0; usize::try_from(len).ok()?.checked_sub(4)?];
        socket.read_exact(&mut startup).await.ok()?;
        socket.write_all(LOGIN).await.ok()?;
        // The query's messages, up to and including its Sync.
        let mut sent = Vec::new();
        loop {
            let tag = socket.read_u8().await.ok()?;
            let len = socket.read_i32().await.ok()?;
            let mut body = vec![0; usize::try_from(len).ok()?.checked_sub(4)?];
            socket.read_exact(&mut body).await.ok()?;
            sent.push(tag);
            sent.extend_from_slice(&len.to_be_bytes());
            sent.extend_from_slice(&body);
            if tag == b'S' {
                break;
            }
        }
        let _ = socket.write_all(script).await;
        let _ = socket.shutdown().await;
        let _ = socket.read_to_end(&mut sent).await;
        Some(sent)
    };
    let client = async {
        let mut conn = match Connection::connect(config).await {
            Ok(conn) => conn,
            Err(e) => panic!("login to the scripted server failed: {e}"),
        };
        if cache {
            conn.set_statement_cache_capacity(4);
        }
        let first = conn.query(SQL, &[&1i32]).await;
        check(&conn, &first, Some((script, cache)));
        let end = match &first {
            _ if conn.is_broken() => End::Broken,
            Ok(rows) => End::Rows(rows.len()),
            Err(_) => End::UsableError,
        };
        if !conn.is_broken() {
            let second = conn.query(SQL, &[&2i32]).await;
            check(&conn, &second, None);
        }
        end
    };
    let (sent, end) = tokio::join!(server, client);
    let mut sent = &sent.expect("the scripted server saw the login and the query")[..];
    while let Some((&tag, rest)) = sent.split_first() {
        assert!(
            matches!(tag, b'P' | b'B' | b'D' | b'E' | b'C' | b'S' | b'f'),
            "client sent message {tag:?}"
        );
        let len = rest
            .get(..4)
            .map(|l| i32::from_be_bytes([l[0], l[1], l[2], l[3]]));
        let len = len.and_then(|l| usize::try_from(l).ok()).expect("a length");
        assert!(len >= 4 && rest.len() >= len, "a whole message");
        sent = &rest[len..];
    }
    end
}

/// The invariants on one query's outcome; `script` is the server's reply (and whether the cache
/// was on) when the model knows it (the first query).
fn check(conn: &Connection, result: &Result<Vec<Row>, Error>, script: Option<(&[u8], bool)>) {
    assert!(
        conn.is_broken() || !conn.is_busy(),
        "neither broken nor idle: {result:?}"
    );
    let model = script.map(|(s, cache)| model(s, cache));
    match result {
        Ok(rows) => {
            assert!(!conn.is_broken() && !conn.is_busy());
            if let Some(m) = model {
                let want = m.expect("rows from replies the query did not ask for");
                let got: Vec<Vec<Option<&str>>> = rows
                    .iter()
                    .map(|r| (0..r.len()).map(|i| r.get(i)).collect())
                    .collect();
                let want: Vec<Vec<Option<&str>>> = want
                    .iter()
                    .map(|r| r.iter().map(Option::as_deref).collect())
                    .collect();
                assert_eq!(got, want);
            }
        }
        Err(e) if !conn.is_broken() => {
            assert!(e.is_db() || e.is_unsupported(), "usable after {e:?}");
        }
        Err(_) => {}
    }
}

/// The rows, if the script up to its first ReadyForQuery is a successful answer to the query
/// (module header); `None` otherwise.
fn model(mut script: &[u8], cache: bool) -> Option<Vec<Vec<Option<String>>>> {
    // The replies in order; `T|n` is one step.
    let steps: &[&[u8]] = if cache {
        &[b"1", b"t", b"Tn", b"2", b"D"]
    } else {
        &[b"1", b"2", b"Tn", b"D"]
    };
    let mut step = 0;
    let mut rows = Vec::new();
    let mut columns = None;
    while let Some((&tag, rest)) = script.split_first() {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let body = rest.get(4..len)?;
        script = &rest[len..];
        match tag {
            b'S' | b'N' | b'A' => continue,
            b'Z' => return (step == steps.len() + 1).then_some(rows),
            b'T' => columns = Some(u16::from_be_bytes(body.get(..2)?.try_into().ok()?)),
            b'n' => columns = Some(0),
            _ => {}
        }
        match (steps.get(step), tag) {
            (Some(s), b'D') if *s == b"D" => {
                let values = row(body);
                if Some(values.len()) != columns.map(usize::from) {
                    return None;
                }
                rows.push(values);
            }
            (Some(s), b'C' | b'I') if *s == b"D" => step += 2,
            (Some(s), t) if s.contains(&t) => step += 1,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> End {
        let path = format!(
            "{}/fuzz/seeds/extended_query/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        run(&std::fs::read(path).unwrap())
    }

    #[test]
    fn recorded_answers_reach_each_end() {
        assert_eq!(seed("select"), End::Rows(1));
        assert_eq!(seed("select_cached"), End::Rows(1));
        assert_eq!(seed("error_at_bind"), End::UsableError);
        assert_eq!(seed("missing_bind_complete"), End::Broken);
        assert_eq!(seed("portal_suspended"), End::Broken);
        assert_eq!(seed("data_row_before_row_description"), End::Broken);
        assert_eq!(seed("cut_before_ready_for_query"), End::Broken);
    }
}
