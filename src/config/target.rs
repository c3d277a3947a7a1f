//! Which server a connection may settle on: libpq's `target_session_attrs` and
//! `load_balance_hosts`, and the pure rule that decides, from what a server reports about itself,
//! whether it matches (libpq 16, fe-connect.c `CONNECTION_CHECK_TARGET`).
//!
//! Invariants:
//! - The rule reads only [`SessionState`]; it never guesses. A value the server did not report
//!   (before PostgreSQL 14, which reports `in_hot_standby` and `default_transaction_read_only` at
//!   startup) is asked for with a query ([`Probe`]) before any verdict, as libpq does.
//! - `read-write` is not `primary`: a primary with `default_transaction_read_only=on` is read-only
//!   yet still a primary (postgres/postgres@ee28cacf).

use std::fmt;
use std::str::FromStr;

use super::keyword::Keyword;
use super::resolve::invalid_value;
use crate::error::Error;

/// libpq's `target_session_attrs`: what kind of server a connection must land on. A server that
/// does not match is closed politely and the next *host* is tried (not the next address of the
/// same host).
///
/// ```
/// use wirepool::config::TargetSessionAttrs;
/// let t: TargetSessionAttrs = "read-write".parse()?;
/// assert_eq!(t, TargetSessionAttrs::ReadWrite);
/// assert_eq!(t.to_string(), "read-write");
/// # Ok::<(), wirepool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TargetSessionAttrs {
    /// Any server (the default).
    #[default]
    Any,
    /// A session that accepts writes: not in hot standby and `default_transaction_read_only`
    /// off.
    ReadWrite,
    /// A read-only session: in hot standby, or `default_transaction_read_only` on.
    ReadOnly,
    /// A server that is not in hot standby (it may still be read-only).
    Primary,
    /// A server in hot standby.
    Standby,
    /// A standby if any host is one; otherwise, in a second pass over the hosts, any server.
    PreferStandby,
}

impl TargetSessionAttrs {
    const ALL: [TargetSessionAttrs; 6] = [
        TargetSessionAttrs::Any,
        TargetSessionAttrs::ReadWrite,
        TargetSessionAttrs::ReadOnly,
        TargetSessionAttrs::Primary,
        TargetSessionAttrs::Standby,
        TargetSessionAttrs::PreferStandby,
    ];

    /// libpq's spelling: `any`, `read-write`, `read-only`, `primary`, `standby`,
    /// `prefer-standby`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
            TargetSessionAttrs::Primary => "primary",
            TargetSessionAttrs::Standby => "standby",
            TargetSessionAttrs::PreferStandby => "prefer-standby",
        }
    }

    /// Whether this target wants a server that takes writes (`read-write`, `primary`): a pool
    /// with it evicts a connection whose writes were refused as read-only (25006).
    ///
    /// ```
    /// use wirepool::config::TargetSessionAttrs;
    /// assert!(TargetSessionAttrs::ReadWrite.wants_writes());
    /// assert!(!TargetSessionAttrs::Any.wants_writes());
    /// ```
    pub fn wants_writes(self) -> bool {
        matches!(
            self,
            TargetSessionAttrs::ReadWrite | TargetSessionAttrs::Primary
        )
    }

    /// Whether a session in `state` is acceptable for this target, as far as `state` tells.
    ///
    /// `PreferStandby` accepts any server: its preference is a matter of host order, settled
    /// while connecting. A value `state` does not know contradicts nothing.
    pub(crate) fn admits(self, state: &SessionState) -> bool {
        let refused = match self {
            TargetSessionAttrs::Any | TargetSessionAttrs::PreferStandby => None,
            TargetSessionAttrs::ReadWrite => state.read_only(),
            TargetSessionAttrs::ReadOnly => state.read_only().map(|ro| !ro),
            TargetSessionAttrs::Primary => state.in_hot_standby,
            TargetSessionAttrs::Standby => state.in_hot_standby.map(|hs| !hs),
        };
        refused != Some(true)
    }

    /// What connecting does with a fresh session in `state`: accept it, ask the server first, or
    /// reject it with libpq's reason. `PreferStandby` is judged as `Standby`: its second pass
    /// connects with `Any`.
    pub(crate) fn verdict(self, state: &SessionState) -> Verdict {
        let (known, reason) = match self {
            TargetSessionAttrs::Any => return Verdict::Accept,
            TargetSessionAttrs::ReadWrite | TargetSessionAttrs::ReadOnly => match state.read_only()
            {
                None => return Verdict::Probe(Probe::TransactionReadOnly),
                Some(ro) if self == TargetSessionAttrs::ReadWrite => (ro, "session is read-only"),
                Some(ro) => (!ro, "session is not read-only"),
            },
            TargetSessionAttrs::Primary
            | TargetSessionAttrs::Standby
            | TargetSessionAttrs::PreferStandby => match state.in_hot_standby {
                None => return Verdict::Probe(Probe::InRecovery),
                Some(hs) if self == TargetSessionAttrs::Primary => {
                    (hs, "server is in hot standby mode")
                }
                Some(hs) => (!hs, "server is not in hot standby mode"),
            },
        };
        if known {
            Verdict::Reject(reason)
        } else {
            Verdict::Accept
        }
    }
}

impl fmt::Display for TargetSessionAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TargetSessionAttrs {
    type Err = Error;

    /// # Errors
    /// Anything but libpq's six spellings.
    fn from_str(s: &str) -> Result<TargetSessionAttrs, Error> {
        TargetSessionAttrs::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| invalid_value(Keyword::TargetSessionAttrs, s))
    }
}

/// libpq 16's `load_balance_hosts`: the order hosts are tried in.
///
/// ```
/// use wirepool::config::LoadBalanceHosts;
/// assert_eq!("random".parse::<LoadBalanceHosts>()?, LoadBalanceHosts::Random);
/// # Ok::<(), wirepool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LoadBalanceHosts {
    /// In the order given (the default).
    #[default]
    Disable,
    /// Hosts in a random order, then each host's addresses in a random order: two levels of
    /// random choice, as in libpq, so a host with more addresses is not picked more often.
    Random,
}

impl LoadBalanceHosts {
    /// libpq's spelling: `disable` or `random`.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadBalanceHosts::Disable => "disable",
            LoadBalanceHosts::Random => "random",
        }
    }
}

impl FromStr for LoadBalanceHosts {
    type Err = Error;

    /// # Errors
    /// Anything but `disable` or `random`.
    fn from_str(s: &str) -> Result<LoadBalanceHosts, Error> {
        [LoadBalanceHosts::Disable, LoadBalanceHosts::Random]
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| invalid_value(Keyword::LoadBalanceHosts, s))
    }
}

/// What a session is known to be, for [`TargetSessionAttrs`]. `None` = not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SessionState {
    /// The `in_hot_standby` ParameterStatus, or `pg_is_in_recovery()`.
    pub(crate) in_hot_standby: Option<bool>,
    /// The `default_transaction_read_only` ParameterStatus.
    pub(crate) default_transaction_read_only: Option<bool>,
    /// `SHOW transaction_read_only`, asked only when one of the two above is not reported.
    pub(crate) transaction_read_only: Option<bool>,
}

impl SessionState {
    /// From a session's ParameterStatus values (`on`/`off`, as libpq reads them: anything but
    /// `on` is off) and its server version: before 9.0 there was no hot standby.
    pub(crate) fn reported<'a>(
        param: impl Fn(&'static str) -> Option<&'a str>,
        server_version_num: Option<u32>,
    ) -> SessionState {
        let flag = |name| param(name).map(|v| v == "on");
        let before_hot_standby = server_version_num.is_some_and(|v| v < 90_000);
        SessionState {
            in_hot_standby: flag("in_hot_standby").or(before_hot_standby.then_some(false)),
            default_transaction_read_only: flag("default_transaction_read_only"),
            transaction_read_only: None,
        }
    }

    /// Whether the session is read-only: from the two reported values when both are there (libpq
    /// asks the server unless it has both), else from `SHOW transaction_read_only`.
    fn read_only(&self) -> Option<bool> {
        match (self.default_transaction_read_only, self.in_hot_standby) {
            (Some(ro), Some(hs)) => Some(ro || hs),
            _ => self.transaction_read_only,
        }
    }

    /// Records a probe's answer (the first column of its one row): `on` for
    /// `SHOW transaction_read_only`, `t` for `pg_is_in_recovery()`, as libpq compares them.
    pub(crate) fn record(&mut self, probe: Probe, answer: &str) {
        match probe {
            Probe::TransactionReadOnly => {
                self.transaction_read_only = Some(answer.starts_with("on"));
            }
            Probe::InRecovery => self.in_hot_standby = Some(answer.starts_with('t')),
        }
    }
}

/// The query libpq sends when the server did not report what the target needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// `SHOW transaction_read_only`, for `read-write` and `read-only`.
    TransactionReadOnly,
    /// `SELECT pg_catalog.pg_is_in_recovery()`, for `primary`, `standby`, `prefer-standby`.
    InRecovery,
}

impl Probe {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Probe::TransactionReadOnly => "SHOW transaction_read_only",
            Probe::InRecovery => "SELECT pg_catalog.pg_is_in_recovery()",
        }
    }
}

/// The outcome of checking a fresh session against a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Keep it.
    Accept,
    /// Ask the server, record the answer, and decide again.
    Probe(Probe),
    /// Close it politely and try the next host; libpq's wording of why.
    Reject(&'static str),
}

#[cfg(test)]
mod tests {
    use super::TargetSessionAttrs as T;
    use super::*;

    fn state(hs: Option<bool>, ro: Option<bool>) -> SessionState {
        SessionState {
            in_hot_standby: hs,
            default_transaction_read_only: ro,
            transaction_read_only: None,
        }
    }

    /// libpq's CONNECTION_CHECK_TARGET for every target and server kind (PG 14+: both reported).
    #[test]
    fn verdicts_follow_libpq() {
        let primary = state(Some(false), Some(false));
        let read_only_primary = state(Some(false), Some(true));
        let standby = state(Some(true), Some(false));
        let accept = Verdict::Accept;
        let rows = [
            (T::Any, [accept, accept, accept]),
            (
                T::ReadWrite,
                [
                    accept,
                    Verdict::Reject("session is read-only"),
                    Verdict::Reject("session is read-only"),
                ],
            ),
            (
                T::ReadOnly,
                [Verdict::Reject("session is not read-only"), accept, accept],
            ),
            (
                T::Primary,
                [
                    accept,
                    accept,
                    Verdict::Reject("server is in hot standby mode"),
                ],
            ),
            (
                T::Standby,
                [
                    Verdict::Reject("server is not in hot standby mode"),
                    Verdict::Reject("server is not in hot standby mode"),
                    accept,
                ],
            ),
            (
                T::PreferStandby,
                [
                    Verdict::Reject("server is not in hot standby mode"),
                    Verdict::Reject("server is not in hot standby mode"),
                    accept,
                ],
            ),
        ];
        for (target, expected) in rows {
            let got = [&primary, &read_only_primary, &standby].map(|s| target.verdict(s));
            assert_eq!(got, expected, "{target}");
        }
    }

    #[test]
    fn unreported_values_are_asked_for_and_the_answer_decides() {
        let mut old = SessionState::reported(|_| None, Some(130_000));
        assert_eq!(
            T::ReadWrite.verdict(&old),
            Verdict::Probe(Probe::TransactionReadOnly)
        );
        assert_eq!(T::Standby.verdict(&old), Verdict::Probe(Probe::InRecovery));
        old.record(Probe::TransactionReadOnly, "on");
        assert_eq!(
            T::ReadWrite.verdict(&old),
            Verdict::Reject("session is read-only")
        );
        assert_eq!(T::ReadOnly.verdict(&old), Verdict::Accept);
        // The read-only answer says nothing about recovery: that is still asked.
        assert_eq!(T::Primary.verdict(&old), Verdict::Probe(Probe::InRecovery));
        old.record(Probe::InRecovery, "f");
        assert_eq!(T::Primary.verdict(&old), Verdict::Accept);
        // One reported value is not enough for read-write: libpq asks when either is missing.
        let half =
            SessionState::reported(|n| (n == "in_hot_standby").then_some("off"), Some(140_000));
        assert_eq!(
            T::ReadWrite.verdict(&half),
            Verdict::Probe(Probe::TransactionReadOnly)
        );
        // Before 9.0 there is no hot standby, so nothing is asked.
        let ancient = SessionState::reported(|_| None, Some(80_400));
        assert_eq!(T::Primary.verdict(&ancient), Verdict::Accept);
    }

    #[test]
    fn admits_is_false_only_on_a_contradiction() {
        let promoted = state(Some(false), Some(false));
        let demoted = state(Some(true), Some(false));
        assert!(T::ReadWrite.admits(&promoted) && !T::ReadWrite.admits(&demoted));
        assert!(T::Standby.admits(&demoted) && !T::Standby.admits(&promoted));
        assert!(T::PreferStandby.admits(&promoted) && T::Any.admits(&demoted));
        assert!(T::Primary.admits(&SessionState::default()));
    }

    #[test]
    fn spellings_round_trip() {
        for t in T::ALL {
            assert_eq!(t.as_str().parse::<T>().unwrap(), t);
        }
        assert!("master".parse::<T>().unwrap_err().is_config());
        assert!("Random".parse::<LoadBalanceHosts>().is_err());
    }
}
