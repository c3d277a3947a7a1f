//! A primary and a streaming standby on this machine (`initdb` → start → `pg_basebackup -R -X
//! stream` → start the standby on its own port), for `target_session_attrs`, load balancing and
//! failover tests.
//!
//! Invariants:
//! - [`Pair::shared`] is never stopped, promoted or reconfigured by a test: tests of one binary
//!   run in parallel on it. A test that stops or promotes a server starts a private [`Pair`].
//! - Both clusters are [`Cluster`]s, so they inherit its cleanup: the watchdog stops them and
//!   deletes their directories when the process exits, even if it is killed.
//! - Roles and databases are the shared cluster's (the standby is a copy of the primary made
//!   after they were created).
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Duration;

use super::cluster::{Cluster, Options};

/// A role whose sessions start with `default_transaction_read_only = on`: on the primary, a
/// read-only session on a server that is not in hot standby (`read-write` is not `primary`).
pub const READ_ONLY_USER: &str = "ro_user";

const READ_ONLY_ROLE: &str = "CREATE ROLE ro_user LOGIN;
ALTER ROLE ro_user SET default_transaction_read_only = on;";

/// A primary and its hot standby, each on its own port of 127.0.0.1.
#[derive(Debug)]
pub struct Pair {
    /// The primary (`in_hot_standby = off`).
    pub primary: Cluster,
    /// A streaming standby of it (`in_hot_standby = on`) until promoted.
    pub standby: Cluster,
}

impl Pair {
    /// The pair shared by every test in this process, started on first use.
    ///
    /// Panics (failing the calling test) with the start error if it cannot start.
    pub fn shared() -> &'static Pair {
        static SHARED: OnceLock<Result<Pair, String>> = OnceLock::new();
        match SHARED.get_or_init(Pair::start) {
            Ok(pair) => pair,
            Err(e) => panic!("the shared primary + standby could not start: {e}"),
        }
    }

    /// Starts a private pair; both servers are stopped and deleted on drop.
    ///
    /// # Errors
    /// The failing step's message (see [`Cluster::start_with`] and [`Cluster::standby_of`]).
    pub fn start() -> Result<Pair, String> {
        let primary = Cluster::start_with(Options {
            // initdb's loopback replication rows are replaced by the cluster's own pg_hba.conf.
            hba: vec!["host replication postgres 127.0.0.1/32 trust".to_owned()],
            setup_sql: vec![READ_ONLY_ROLE.to_owned()],
            ..Options::default()
        })?;
        let standby = Cluster::standby_of(&primary)?;
        let pair = Pair { primary, standby };
        let in_recovery = pair
            .standby
            .psql("SELECT pg_is_in_recovery()")
            .map_err(|e| format!("asking the standby whether it is one: {e}"))?;
        if in_recovery != "t" {
            return Err(format!(
                "the standby is not in recovery (pg_is_in_recovery() = {in_recovery:?})"
            ));
        }
        Ok(pair)
    }

    /// Stops the primary the way a crash would (`-m immediate`) and promotes the standby,
    /// waiting until it accepts writes. Returns how long the promotion took.
    ///
    /// # Errors
    /// pg_ctl's output if stopping or promoting failed.
    pub fn fail_over(&self) -> Result<Duration, String> {
        self.primary.stop_server("immediate")?;
        let begun = std::time::Instant::now();
        self.standby
            .pg_ctl_run(&["promote", "-w", "-t", "60"])
            .map_err(|e| format!("pg_ctl promote failed: {e}"))?;
        Ok(begun.elapsed())
    }
}
