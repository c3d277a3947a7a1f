//! A chaos scenario's [`Report`]: its figures, printed one line each as they are taken
//! (`chaos <pool>/<scenario>: <figure>: <value>`), the numbers its tests bound, and the
//! invariants it found broken; plus the helpers that turn a load's [`Event`]s into figures.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::chaos::{leak_check, panics, Contender, Event, Outcome, SLACK, STUCK_AFTER};

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `p50 / p99 / max` of `waits`, or "none".
pub fn spread(mut waits: Vec<Duration>) -> String {
    if waits.is_empty() {
        return "none".to_owned();
    }
    waits.sort();
    let at = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
    format!(
        "p50 {} / p99 {} / max {} (n={})",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0)),
        waits.len()
    )
}

/// A scenario's figures (printed as they are added, one line each) and the invariant checks
/// its tests assert.
pub struct Report {
    pub pool: &'static str,
    pub scenario: &'static str,
    pub figures: Vec<(String, String)>,
    /// Invariants broken, one line each.
    pub violations: Vec<String>,
    /// Figures kept as numbers for the tests that bound them (milliseconds, counts, rates).
    pub numbers: BTreeMap<&'static str, f64>,
}

impl Report {
    pub fn new(pool: &'static str, scenario: &'static str) -> Report {
        Report {
            pool,
            scenario,
            figures: Vec::new(),
            violations: Vec::new(),
            numbers: BTreeMap::new(),
        }
    }

    /// Records and prints one figure.
    pub fn fig(&mut self, name: &str, value: impl std::fmt::Display) {
        let value = value.to_string();
        eprintln!("chaos {}/{}: {name}: {value}", self.pool, self.scenario);
        self.figures.push((name.to_owned(), value));
    }

    /// Records a broken invariant (also printed).
    pub fn violation(&mut self, what: String) {
        eprintln!("chaos {}/{}: VIOLATION: {what}", self.pool, self.scenario);
        self.violations.push(what);
    }

    /// Keeps a figure as a number for a test to bound.
    pub fn num(&mut self, key: &'static str, value: f64) {
        self.numbers.insert(key, value);
    }

    /// A number kept with [`Report::num`].
    ///
    /// # Panics
    /// If the scenario did not record it.
    pub fn number(&self, key: &str) -> f64 {
        *self
            .numbers
            .get(key)
            .unwrap_or_else(|| panic!("{}/{} recorded no {key}", self.pool, self.scenario))
    }

    /// The request figures over `events` (errors by kind, waits), and the hang and panic
    /// checks.
    pub fn requests(&mut self, events: &[Event], timeout: Duration, task_panics: usize) {
        let ok = events
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Ok))
            .count();
        self.fig("requests ok", ok);
        self.fig("errors by kind", errors_by_kind(events.iter()));
        let waits = |f: fn(&Outcome) -> bool| -> Vec<Duration> {
            events
                .iter()
                .filter(|e| f(&e.outcome))
                .map(|e| e.wait)
                .collect()
        };
        self.fig(
            "checkout wait, served",
            spread(waits(|o| matches!(o, Outcome::Ok | Outcome::QueryError(_)))),
        );
        self.fig(
            "checkout wait, failed",
            spread(waits(|o| {
                matches!(o, Outcome::CheckoutError(_) | Outcome::Hang)
            })),
        );
        let abandoned: Vec<Duration> = events
            .iter()
            .filter(|e| match &e.outcome {
                Outcome::QueryError(f) => f.label.starts_with("abandoned"),
                _ => false,
            })
            .map(|e| (e.at - e.started).saturating_sub(e.wait))
            .collect();
        if !abandoned.is_empty() {
            self.fig(
                "abandoned queries returned control after",
                spread(abandoned),
            );
        }
        let hangs = events
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Hang))
            .count();
        if hangs > 0 {
            self.violation(format!(
                "{hangs} checkouts waited past the pool timeout ({}) + {}",
                ms(timeout),
                ms(SLACK)
            ));
        }
        let stuck = events
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Stuck))
            .count();
        if stuck > 0 {
            self.violation(format!(
                "{stuck} requests still running {} after the load stopped",
                ms(STUCK_AFTER)
            ));
        }
        if task_panics > 0 {
            self.violation(format!("{task_panics} load tasks panicked"));
        }
    }

    /// The backend-count figure and check: never more than `max` for the pool.
    pub fn backends(&mut self, samples: &[(Instant, usize)], max: usize) {
        let most = samples.iter().map(|s| s.1).max().unwrap_or(0);
        self.fig(
            "most backends seen",
            format!("{most} (max_size {max}, {} samples)", samples.len()),
        );
        if most > max {
            self.violation(format!("{most} backends for the pool, max_size {max}"));
        }
    }

    /// The panic check over a whole scenario (`before`: [`panics`] at its start).
    pub fn no_panic_since(&mut self, before: usize) {
        let n = panics() - before;
        if n > 0 {
            self.violation(format!("{n} panics during the scenario"));
        }
    }

    /// Runs [`leak_check`] and records its result.
    pub async fn leaks<C: Contender>(&mut self, pool: &C, max_size: usize, timeout: Duration) {
        let started = Instant::now();
        let Err(e) = leak_check(pool, max_size, timeout).await else {
            return self.fig(
                "leak check",
                format!("{max_size} held at once, one more timed out"),
            );
        };
        self.violation(format!("leak check: {e}; pool: {}", pool.describe()));
        // How long the slot stayed lost, if it comes back: a figure for the report.
        for _ in 0..5 {
            if leak_check(pool, max_size, timeout).await.is_ok() {
                let t = ms(started.elapsed());
                return self.fig("leak check passed on a retry after", t);
            }
        }
        self.fig("leak check still failing after", ms(started.elapsed()));
    }

    /// Panics with every violation, for the pool whose invariants these are.
    pub fn assert_clean(&self) {
        assert!(
            self.violations.is_empty(),
            "{}/{}: {}",
            self.pool,
            self.scenario,
            self.violations.join("; ")
        );
    }
}

/// "3 × checkout: pool timeout, no cause; 1 × query: server 57P01", or "none".
pub fn errors_by_kind<'a>(events: impl Iterator<Item = &'a Event>) -> String {
    let mut kinds = BTreeMap::new();
    for e in events {
        let label = match &e.outcome {
            Outcome::Ok => continue,
            Outcome::CheckoutError(f) => format!("checkout: {}", f.label),
            Outcome::Hang => "checkout: HANG".to_owned(),
            Outcome::Stuck => "request: STUCK".to_owned(),
            Outcome::QueryError(f) => format!("query: {}", f.label),
        };
        *kinds.entry(label).or_insert(0usize) += 1;
    }
    let parts: Vec<String> = kinds
        .iter()
        .map(|(label, n)| format!("{n} × {label}"))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join("; ")
    }
}

/// The events that ended in `[from, to)`.
pub fn between(events: &[Event], from: Instant, to: Instant) -> Vec<Event> {
    events
        .iter()
        .filter(|e| e.at >= from && e.at < to)
        .cloned()
        .collect()
}

/// When the first checkout that proved good (its query then succeeded) returned, among the
/// requests that ended at or after `t`. It can precede `t` by a few ms: the probe that sets
/// `t` polls every 10 ms.
pub fn first_ok_after(events: &[Event], t: Instant) -> Option<Instant> {
    events
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Ok) && e.at >= t)
        .map(|e| e.started + e.wait)
        .min()
}

/// `b - a` in milliseconds, signed.
pub fn signed_ms(a: Instant, b: Instant) -> String {
    if b >= a {
        ms(b - a)
    } else {
        format!("-{}", ms(a - b))
    }
}
