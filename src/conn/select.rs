//! Choosing the server: libpq 16's host loop (fe-connect.c, `PQconnectPoll`) over the targets of a
//! [`ConnectParams`], each attempt made by `startup::connect_addr`.
//!
//! - Order: the hosts as given; with `load_balance_hosts=random`, the hosts shuffled, then each
//!   host's addresses (two levels of random choice, as in libpq). The random draws come from a
//!   seed, so an order can be reproduced ([`Connection::connect_with_seed`]).
//! - A failed address moves on to the next address of the same host, then to the next host.
//!   An authentication failure (SQLSTATE class 28, or the client refusing to authenticate)
//!   stops everything: retrying elsewhere with the same credentials would only repeat it, and
//!   could hand the password to a host the user listed as a fallback.
//! - `target_session_attrs`: a session is judged from the `in_hot_standby` and
//!   `default_transaction_read_only` it reports at startup (PostgreSQL 14+), else from
//!   `SHOW transaction_read_only` / `pg_is_in_recovery()`. One that does not match is closed
//!   politely (Terminate) and the next *host* is tried, not the next address of the same host
//!   (`CONNECTION_CHECK_TARGET`). `prefer-standby` goes over every host again in `any` mode
//!   when the first pass found no standby (`SERVER_TYPE_PREFER_STANDBY_PASS2`).
//! - `connect_timeout` bounds each address's attempt (TCP connect, handshake and the target
//!   check) and, separately, the host name's resolution: a resolver that never answers (libpq's
//!   blocking `getaddrinfo` has the same gap) must not make `connect` wait forever.
//! - Every failure is kept with its place (`connection to server at "db1" (10.0.0.7), port
//!   5432`): the error returned is the last one, and its message lists all of them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::socket::{self, PeerAddr};
use super::startup::connect_addr;
use super::tls::TlsConnector;
use super::Connection;
use crate::config::{
    ConnectParams, Host, LoadBalanceHosts, SessionState, Target, TargetSessionAttrs, Verdict,
};
use crate::error::{Error, Result};

/// Connects to the first server, in the order `p` asks for, that accepts us and matches
/// `p.target_session_attrs`. `seed` drives `load_balance_hosts=random`.
pub(crate) async fn connect(p: &ConnectParams, seed: u64) -> Result<Connection> {
    // Once per connect, before any socket: a `verify-full` without root certificates fails here.
    let tls = TlsConnector::for_params(p.sslmode, &p.tls)?;
    let mut order = Order::new(p.load_balance_hosts, seed);
    let mut hosts: Vec<&Target> = p.targets.iter().collect();
    order.shuffle(&mut hosts);
    let passes = match p.target_session_attrs {
        TargetSessionAttrs::PreferStandby => {
            [TargetSessionAttrs::PreferStandby, TargetSessionAttrs::Any].as_slice()
        }
        _ => std::slice::from_ref(&p.target_session_attrs),
    };
    let mut trail = Trail::default();
    for &mode in passes {
        for target in &hosts {
            if let Some(mut conn) =
                try_host(p, tls.as_ref(), target, mode, &mut order, &mut trail).await?
            {
                conn.inner.target = p.target_session_attrs;
                return Ok(conn);
            }
        }
    }
    Err(trail.into_error())
}

/// Each address of `target` in turn until a session is accepted (`Some`), the host is passed
/// over (`None`: its failures are in `trail`), or authentication fails (`Err`).
async fn try_host(
    p: &ConnectParams,
    tls: Option<&Arc<TlsConnector>>,
    target: &Target,
    mode: TargetSessionAttrs,
    order: &mut Order,
    trail: &mut Trail,
) -> Result<Option<Connection>> {
    let mut addrs = match within(p.connect_timeout, socket::resolve(target)).await {
        Ok(addrs) => addrs,
        Err(e) => {
            trail.push(e.at(place(target, None)));
            return Ok(None);
        }
    };
    order.shuffle(&mut addrs);
    for addr in addrs {
        let here = place(target, Some(&addr));
        match within(p.connect_timeout, open_matching(p, tls, target, addr, mode)).await {
            Ok(Ok(conn)) => return Ok(Some(conn)),
            // Not the kind of server asked for: its other addresses are the same server.
            Ok(Err(rejected)) => {
                trail.push(rejected.at(here));
                return Ok(None);
            }
            Err(e) if e.is_auth() => {
                trail.push(e.at(here));
                return Err(std::mem::take(trail).into_error());
            }
            Err(e) => trail.push(e.at(here)),
        }
    }
    Ok(None)
}

/// Opens a session at `addr` and checks it against `mode`: `Ok(Ok(conn))` to keep, `Ok(Err(e))`
/// when the server is not what `mode` asks for (the session is closed), `Err` when the
/// attempt itself failed.
async fn open_matching(
    p: &ConnectParams,
    tls: Option<&Arc<TlsConnector>>,
    target: &Target,
    addr: PeerAddr,
    mode: TargetSessionAttrs,
) -> Result<Result<Connection>> {
    let mut conn = connect_addr(p, target, addr, tls).await?;
    let mut state = conn.reported_state();
    loop {
        let rejection = match mode.verdict(&state) {
            Verdict::Accept => {
                conn.inner.probed = state;
                return Ok(Ok(conn));
            }
            Verdict::Probe(probe) => match conn.simple_query(probe.sql()).await {
                Ok(rows) => match rows.first().and_then(|row| row.get(0)) {
                    Some(answer) if rows.len() == 1 => {
                        state.record(probe, answer);
                        continue;
                    }
                    _ => Error::target_mismatch(format!(
                        "\"{}\" failed: it returned no single value",
                        probe.sql()
                    )),
                },
                // libpq moves to the next host when the check cannot be made.
                Err(e) => Error::target_mismatch(format!("\"{}\" failed: {e}", probe.sql())),
            },
            Verdict::Reject(reason) => Error::target_mismatch(format!(
                "{reason} (target_session_attrs={})",
                p.target_session_attrs
            )),
        };
        // Politely: Terminate, so the server logs no "unexpected EOF". Best effort.
        if let Err(e) = conn.close().await {
            tracing::debug!(error = %e, "closing a rejected session failed");
        }
        return Ok(Err(rejection));
    }
}

/// `step` bounded by `connect_timeout`, if one is set.
async fn within<T>(limit: Option<Duration>, step: impl Future<Output = Result<T>>) -> Result<T> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, step)
            .await
            .unwrap_or_else(|_| Err(Error::connect_timeout())),
        None => step.await,
    }
}

/// libpq's wording of where an attempt went: `connection to server at "db1" (10.0.0.7), port
/// 5432`, `... at "10.0.0.7", port 5432` when the host is the address, or `connection to server
/// on socket "/tmp/.s.PGSQL.5432"`. `addr` is `None` when the name could not be resolved.
fn place(target: &Target, addr: Option<&PeerAddr>) -> String {
    match (addr, &target.host) {
        (Some(PeerAddr::Unix(path)), _) => {
            format!("connection to server on socket \"{}\"", path.display())
        }
        (None, Host::Unix(dir)) => {
            format!("connection to server on socket in \"{}\"", dir.display())
        }
        (Some(PeerAddr::Tcp(sa)), Host::Tcp(name)) if *name != sa.ip().to_string() => format!(
            "connection to server at \"{name}\" ({}), port {}",
            sa.ip(),
            sa.port()
        ),
        (Some(PeerAddr::Tcp(sa)), _) => {
            format!(
                "connection to server at \"{}\", port {}",
                sa.ip(),
                sa.port()
            )
        }
        (None, Host::Tcp(name)) => {
            format!("connection to server at \"{name}\", port {}", target.port)
        }
    }
}

/// Every failure so far; the last one becomes the error, carrying the others' messages.
#[derive(Default)]
struct Trail {
    earlier: Vec<String>,
    last: Option<Error>,
}

impl Trail {
    fn push(&mut self, e: Error) {
        tracing::debug!(error = %e, "connect attempt failed");
        if let Some(previous) = self.last.replace(e) {
            self.earlier.push(previous.to_string());
        }
    }

    fn into_error(self) -> Error {
        match self.last {
            Some(last) => last.after(self.earlier),
            None => Error::config("no host to connect to"),
        }
    }
}

/// The random choices of `load_balance_hosts=random`; a no-op for `disable`. SplitMix64: the
/// order only spreads load, it guards nothing, so a small seeded generator is enough.
struct Order {
    state: Option<u64>,
}

impl Order {
    fn new(mode: LoadBalanceHosts, seed: u64) -> Order {
        Order {
            state: (mode == LoadBalanceHosts::Random).then_some(seed),
        }
    }

    /// Fisher-Yates, from the end, as libpq's `pg_prng_uint64_range` loop does.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        let Some(state) = &mut self.state else {
            return;
        };
        for i in (1..items.len()).rev() {
            *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            // i + 1 ≤ items.len(): the modulo's bias is below 2^-50 for any real host list.
            let j = usize::try_from(z % (i as u64 + 1)).unwrap_or(0);
            items.swap(i, j);
        }
    }
}

/// A seed from the OS for `load_balance_hosts=random`, or from the clock if that fails (the
/// order only needs to differ between connects, not to be secret).
pub(super) fn os_seed() -> u64 {
    let mut bytes = [0u8; 8];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    }
}

impl Connection {
    /// What the session reported about itself at startup, for the target check.
    fn reported_state(&self) -> SessionState {
        SessionState::reported(|name| self.parameter(name), self.server_version_num())
    }

    /// What the session reports now, completed by the answers of the checks made when it
    /// connected (a server before 14 reports neither value).
    pub(super) fn session_state(&self) -> SessionState {
        let mut state = self.reported_state();
        let probed = &self.inner.probed;
        state.in_hot_standby = state.in_hot_standby.or(probed.in_hot_standby);
        state.transaction_read_only = probed.transaction_read_only;
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_is_a_permutation_fixed_by_the_seed() {
        let shuffled = |seed| {
            let mut v: Vec<u32> = (0..8).collect();
            Order::new(LoadBalanceHosts::Random, seed).shuffle(&mut v);
            v
        };
        assert_eq!(shuffled(7), shuffled(7));
        let mut sorted = shuffled(7);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..8).collect::<Vec<_>>());
        assert!((0..20).any(|seed| shuffled(seed) != shuffled(7)));
        let mut kept: Vec<u32> = (0..8).collect();
        Order::new(LoadBalanceHosts::Disable, 7).shuffle(&mut kept);
        assert_eq!(kept, (0..8).collect::<Vec<_>>());
    }

    /// Each of two hosts comes first about half the time (libpq's point: spread the load).
    #[test]
    fn two_hosts_each_come_first_about_half_the_time() {
        let first_is_a = (0..1000u64)
            .filter(|&seed| {
                let mut v = ["a", "b"];
                Order::new(LoadBalanceHosts::Random, seed).shuffle(&mut v);
                v[0] == "a"
            })
            .count();
        assert!((400..=600).contains(&first_is_a), "{first_is_a}/1000");
    }
}
