//! Randomised delays: the pool-wide reconnect policy, and the jitter it and `max_lifetime`
//! share.
//!
//! The policy serves two bounds at once: notice a server coming back within a fraction of a
//! second, and never storm a server that stays down. While attempts fail, the next one waits
//! [`FIRST_RETRY`] (250 ms), then twice that, capped at [`PROBE_INTERVAL`] (550 ms): about 1.8
//! attempts a second however long the outage, where psycopg_pool's 1 s doubling reaches tens
//! of seconds between attempts (and as long to notice the server is back). While failing, only
//! ONE attempt (the probe) is in flight at a time: the other connect tasks wait for its outcome,
//! and start at once when it succeeds. A server that answers "cannot connect now" (57P03:
//! starting up, in crash recovery) is up and about to accept, so it is asked again after
//! [`QUICK_RETRY`], at most [`QUICK_RETRIES`] times in a row; one that is up but full (53300,
//! too many connections) is asked once a second. An error retrying cannot fix (a
//! wrong password, a missing database:
//! [`Error::is_permanent_connect_error`](crate::Error::is_permanent_connect_error)) keeps
//! psycopg_pool's schedule, 1 s doubling: the server is up and refusing this pool.
//!
//! Invariant: one [`Backoff`] per pool, shared by every connect task and by a waiter asking for
//! growth, so neither a task that gave up nor a new demand can restart the attempts early: an
//! outage never turns into a connection storm (deadpool#201).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;

/// psycopg_pool's first reconnect delay (`AttemptWithBackoff.INITIAL_DELAY`): the schedule
/// for errors retrying cannot fix, and for a `check` hook that keeps failing.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// psycopg_pool's jitter on each delay (`DELAY_JITTER`): ±10%.
const BACKOFF_JITTER: f64 = 0.1;
/// The wait after the first failed attempt of an outage; it doubles up to [`PROBE_INTERVAL`].
pub(crate) const FIRST_RETRY: Duration = Duration::from_millis(250);
/// The wait between probes while the server stays down: with ±10% jitter, 1.8 attempts a
/// second on average and never two within 0.49 s, so under 2 a second over any outage.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(550);
/// The wait after a "cannot connect now" (57P03): the server is up and about to accept.
pub(crate) const QUICK_RETRY: Duration = Duration::from_millis(50);
/// Quick retries in a row before 57P03 is probed like an outage (a standby that stays "not
/// yet accepting connections" for minutes must not be asked 20 times a second).
pub(crate) const QUICK_RETRIES: u32 = 10;

/// A uniform random source for jitter (splitmix64): spreads timings, not security.
#[derive(Debug)]
pub(crate) struct Jitter(AtomicU64);

impl Jitter {
    pub(crate) fn new(seed: u64) -> Self {
        Jitter(AtomicU64::new(seed))
    }

    /// A uniform number in `[0, 1)`.
    pub(crate) fn unit(&self) -> f64 {
        let mut z = self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `d` scaled by a factor in `[1 - 0.1, 1 + 0.1)`: psycopg's jitter on every delay.
    pub(crate) fn spread(&self, d: Duration) -> Duration {
        d.mul_f64(1.0 + BACKOFF_JITTER * (2.0 * self.unit() - 1.0))
    }
}

/// The `n`-th delay of a doubling series from [`INITIAL_BACKOFF`] (1 s, 2 s, 4 s, ...),
/// saturating; `n` counts from 0.
pub(crate) fn doubling(n: u32) -> Duration {
    INITIAL_BACKOFF.saturating_mul(1 << n.min(16))
}

/// What a failed attempt says about the server, which decides the next wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Unreachable, resetting, timing out: probe until it answers.
    Down,
    /// Up, but out of room for this session (SQLSTATE class 53: 53300 too many connections):
    /// a slot frees only when another session ends, so once a second is enough.
    Full,
    /// Up, but not accepting sessions yet (57P03: starting up, in recovery).
    Starting,
    /// Up and refusing this pool for a reason retrying cannot fix.
    Refused,
}

impl Failure {
    pub(crate) fn of(e: &Error) -> Self {
        if e.is_permanent_connect_error() {
            Failure::Refused
        } else if e.code() == Some("57P03") {
            Failure::Starting
        } else if e.code().is_some_and(|c| c.starts_with("53")) {
            Failure::Full
        } else {
            Failure::Down
        }
    }

    /// The wait before the next attempt after `n` failures of this kind in a row (`n ≥ 1`),
    /// before jitter.
    fn delay(self, n: u32) -> Duration {
        let doubled = |first: Duration| first.saturating_mul(1 << n.saturating_sub(1).min(16));
        match self {
            Failure::Down => doubled(FIRST_RETRY).min(PROBE_INTERVAL),
            Failure::Starting if n <= QUICK_RETRIES => QUICK_RETRY,
            Failure::Starting => PROBE_INTERVAL,
            Failure::Full => INITIAL_BACKOFF,
            Failure::Refused => doubled(INITIAL_BACKOFF),
        }
    }
}

#[derive(Debug)]
struct State {
    /// No attempt starts before this.
    not_before: Option<Instant>,
    /// The last attempt failed: attempts go one at a time (the probe).
    failing: bool,
    /// A probe is in flight.
    probing: bool,
    /// The kind of the last failures and how many came in a row.
    streak: (Failure, u32),
    /// When the first failed attempt of this round started (for `reconnect_timeout`).
    failing_since: Option<Instant>,
    /// Bumped when `reconnect_timeout` gives a round up.
    round: u64,
}

/// When the next connect attempt may start, and who makes it (see the module header).
#[derive(Debug)]
pub(crate) struct Backoff(Mutex<State>);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Mutex::new(State {
            not_before: None,
            failing: false,
            probing: false,
            streak: (Failure::Down, 0),
            failing_since: None,
            round: 0,
        }))
    }
}

/// Whether a connect task may attempt now.
pub(crate) enum Turn<'a> {
    /// Go: report the outcome through the [`Attempt`].
    Go(Attempt<'a>),
    /// Not before this instant (`None`: when the probe in flight ends).
    Wait(Option<Instant>),
}

/// After a failed attempt: when to try again, and for how long attempts have been failing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retry {
    pub(crate) wait: Duration,
    pub(crate) failing_for: Duration,
}

impl Backoff {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it, and every state it can hold is valid.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether an attempt may start now. While attempts fail, one at a time: the first caller
    /// past the wait becomes the probe; the others wait until it ends.
    pub(crate) fn turn(&self) -> Turn<'_> {
        let mut s = self.state();
        if let Some(until) = s.not_before.filter(|&t| t > Instant::now()) {
            return Turn::Wait(Some(until));
        }
        if !s.failing {
            return Turn::Go(Attempt::new(self, false));
        }
        if s.probing {
            return Turn::Wait(None);
        }
        s.probing = true;
        Turn::Go(Attempt::new(self, true))
    }

    /// The current round of attempts; it changes when `reconnect_timeout` gives one up.
    pub(crate) fn round(&self) -> u64 {
        self.state().round
    }

    /// After `reconnect_timeout`: the next round of attempts starts from the first delay again
    /// (still not before the wait already scheduled), and tasks of this round stop.
    pub(crate) fn give_up(&self) {
        let mut s = self.state();
        s.streak.1 = 0;
        s.failing_since = None;
        s.round = s.round.wrapping_add(1);
    }
}

/// One connect attempt's permission; its outcome is reported through it. Dropped unreported
/// (the attempt was cancelled), a probe lets the next one go.
pub(crate) struct Attempt<'a> {
    backoff: &'a Backoff,
    probe: bool,
}

impl<'a> Attempt<'a> {
    fn new(backoff: &'a Backoff, probe: bool) -> Self {
        Attempt { backoff, probe }
    }

    /// The attempt, started at `started`, failed with `failure`: the next one waits the
    /// schedule's delay (spread by `jitter`).
    pub(crate) fn failed(self, started: Instant, failure: Failure, jitter: &Jitter) -> Retry {
        let now = Instant::now();
        let mut s = self.backoff.state();
        s.failing = true;
        let n = if s.streak.0 == failure {
            s.streak.1.saturating_add(1)
        } else {
            1
        };
        s.streak = (failure, n);
        let wait = jitter.spread(failure.delay(n));
        s.not_before = now.checked_add(wait);
        let since = *s.failing_since.get_or_insert(started);
        Retry {
            wait,
            failing_for: now.saturating_duration_since(since),
        }
    }

    /// The attempt succeeded: the next ones start at once, as many as wanted.
    pub(crate) fn succeeded(self) {
        let mut s = self.backoff.state();
        s.not_before = None;
        s.failing = false;
        s.streak = (Failure::Down, 0);
        s.failing_since = None;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.backoff.state().probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent_and_in_the_unit_interval() {
        let j = Jitter::new(7);
        for _ in 0..10_000 {
            let u = j.unit();
            assert!((0.0..1.0).contains(&u));
            let d = j.spread(Duration::from_secs(10));
            assert!(
                d >= Duration::from_secs(9) && d < Duration::from_secs(11),
                "{d:?}"
            );
        }
    }

    #[test]
    fn the_doubling_series_saturates() {
        assert_eq!(doubling(0), Duration::from_secs(1));
        assert_eq!(doubling(3), Duration::from_secs(8));
        assert_eq!(doubling(40), doubling(16));
    }

    #[test]
    fn each_kind_of_failure_has_its_schedule() {
        let ms = |f: Failure, n| f.delay(n).as_millis();
        assert_eq!(
            [1, 2, 3, 50].map(|n| ms(Failure::Down, n)),
            [250, 500, 550, 550]
        );
        assert_eq!(
            [1, QUICK_RETRIES, QUICK_RETRIES + 1].map(|n| ms(Failure::Starting, n)),
            [50, 50, 550]
        );
        assert_eq!([1, 9].map(|n| ms(Failure::Full, n)), [1000, 1000]);
        assert_eq!(
            [1, 2, 3, 40].map(|n| ms(Failure::Refused, n)),
            [1000, 2000, 4000, 65_536_000]
        );
    }

    fn go(b: &Backoff) -> Attempt<'_> {
        match b.turn() {
            Turn::Go(a) => a,
            Turn::Wait(until) => panic!("waits until {until:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn while_failing_one_probe_goes_at_a_time_and_a_success_opens_the_gate() {
        let (b, j) = (Backoff::default(), Jitter::new(1));
        // Healthy: attempts go side by side.
        let (first, second) = (go(&b), go(&b));
        let retry = first.failed(Instant::now(), Failure::Down, &j);
        assert!(retry.wait >= Duration::from_millis(225) && retry.wait < FIRST_RETRY * 11 / 10);
        assert!(matches!(b.turn(), Turn::Wait(Some(_))), "the wait");
        drop(second); // an attempt started while healthy ends unreported
        tokio::time::sleep(retry.wait).await;
        let probe = go(&b);
        assert!(matches!(b.turn(), Turn::Wait(None)), "one probe at a time");
        drop(probe); // cancelled: the next may probe
        let probe = go(&b);
        probe.succeeded();
        let (_a, _b) = (go(&b), go(&b));
    }

    #[tokio::test(start_paused = true)]
    async fn the_outage_schedule_caps_at_the_probe_interval() {
        let (b, j) = (Backoff::default(), Jitter::new(3));
        let start = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..6 {
            let r = go(&b).failed(Instant::now(), Failure::Down, &j);
            waits.push(r.wait.as_millis());
            tokio::time::sleep(r.wait).await;
        }
        let cap = PROBE_INTERVAL.as_millis();
        assert!(waits.iter().all(|&w| w <= cap * 11 / 10), "{waits:?}");
        assert!(waits[3..].iter().all(|&w| w >= cap * 9 / 10), "{waits:?}");
        let r = go(&b).failed(Instant::now(), Failure::Down, &j);
        assert_eq!(r.failing_for, start.elapsed());
        // A round given up starts again from the first delay.
        let round = b.round();
        b.give_up();
        assert_ne!(b.round(), round);
        tokio::time::sleep(r.wait).await;
        let r = go(&b).failed(Instant::now(), Failure::Down, &j);
        assert!(r.wait < FIRST_RETRY * 11 / 10 && r.failing_for.is_zero());
    }
}
