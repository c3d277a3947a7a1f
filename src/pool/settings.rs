//! The pool's settings: psycopg_pool's options with psycopg_pool's defaults, and their
//! validation. Fixed at `open`, except the sizes, which live in the core (`resize` changes them).
//!
//! Invariant: a [`Settings`] exists only validated ([`Settings::validated`]): `0 < max_size`,
//! `min_size ≤ max_size ≤ capacity ≤ MAX_PERMITS`, `max_connecting ≥ 1`, a positive
//! `connect_timeout`. Everything above relies on it and checks none of it again.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::manage::ConnHook;
use super::permits::MAX_PERMITS;
use crate::error::{Error, Result};

/// Called with the pool's name when reconnecting has failed for `reconnect_timeout`.
pub type ReconnectFailed = Arc<dyn Fn(&str) + Send + Sync>;

/// psycopg_pool's `min_size` default, lowered to `max_size` when only that is set.
const DEFAULT_MIN_SIZE: usize = 4;

/// The sizes as the user gave them; `None` takes the default.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sizes {
    pub(crate) min: Option<usize>,
    pub(crate) max: Option<usize>,
    pub(crate) limit: Option<usize>,
}

/// Settings fixed at `open` (see the module header for what is guaranteed).
pub(crate) struct Settings<C> {
    pub(crate) name: String,
    pub(crate) min_size: usize,
    pub(crate) max_size: usize,
    /// The largest `max_size` a `resize` may set: the idle queue's capacity.
    pub(crate) capacity: usize,
    pub(crate) timeout: Duration,
    pub(crate) max_waiting: usize,
    /// `None`: no limit (the builder maps `Duration::ZERO` to it).
    pub(crate) max_lifetime: Option<Duration>,
    /// `None`: no limit (the builder maps `Duration::ZERO` to it).
    pub(crate) max_idle: Option<Duration>,
    pub(crate) reconnect_timeout: Duration,
    pub(crate) reconnect_failed: Option<ReconnectFailed>,
    pub(crate) max_connecting: usize,
    /// Fail checkouts at once after this many connect failures in a row (0: only after an
    /// error retrying cannot fix).
    pub(crate) fail_fast_after: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) return_timeout: Duration,
    pub(crate) configure: Option<ConnHook<C>>,
    pub(crate) check: Option<ConnHook<C>>,
    pub(crate) reset: Option<ConnHook<C>>,
    /// Reset `Dirty` connections on return (`Manage::reset`); off: reuse them as they are.
    pub(crate) reset_dirty: bool,
    pub(crate) usage_stats: bool,
    /// Report checkouts held longer than this (`None`: off).
    pub(crate) leak_threshold: Option<Duration>,
    /// Cancel a leaked connection's server work, and close it when it comes back.
    pub(crate) cancel_leaked: bool,
    /// Seeds the pool's jitter (lifetimes, backoff), so pools opened together spread apart.
    pub(crate) seed: u64,
}

impl<C> Default for Settings<C> {
    /// psycopg_pool's defaults (a fixed pool of 4, 30 s timeout, 1 h lifetime, 10 min idle,
    /// 5 min reconnect timeout) and HikariCP's 30 s connection timeout.
    fn default() -> Self {
        Settings {
            name: String::new(),
            min_size: DEFAULT_MIN_SIZE,
            max_size: DEFAULT_MIN_SIZE,
            capacity: DEFAULT_MIN_SIZE,
            timeout: Duration::from_secs(30),
            max_waiting: 0,
            max_lifetime: Some(Duration::from_secs(3600)),
            max_idle: Some(Duration::from_secs(600)),
            reconnect_timeout: Duration::from_secs(300),
            reconnect_failed: None,
            max_connecting: 2,
            fail_fast_after: 0,
            connect_timeout: Duration::from_secs(30),
            return_timeout: Duration::from_secs(5),
            configure: None,
            check: None,
            reset: None,
            reset_dirty: true,
            usage_stats: false,
            leak_threshold: None,
            cancel_leaked: false,
            seed: 0,
        }
    }
}

impl<C> Settings<C> {
    /// These settings with `sizes` resolved and everything checked.
    ///
    /// Sizes: `max_size` defaults to `min_size` (a fixed pool); `min_size` defaults to 4, or to
    /// `max_size` when only a smaller `max_size` is set; `max_size_limit` defaults to `max_size`.
    ///
    /// # Errors
    /// `Config`: `max_size == 0`, `max_size < min_size`, `max_size_limit < max_size`,
    /// `max_size_limit > 2^30`, `max_connecting == 0`, a zero `connect_timeout`, or
    /// `cancel_leaked` without a `leak_detection_threshold`.
    pub(crate) fn validated(mut self, sizes: Sizes) -> Result<Self> {
        let max = sizes.max.unwrap_or(sizes.min.unwrap_or(DEFAULT_MIN_SIZE));
        let min = sizes.min.unwrap_or(DEFAULT_MIN_SIZE.min(max));
        let capacity = sizes.limit.unwrap_or(max);
        check_sizes(min, max, capacity)?;
        if self.max_connecting == 0 {
            return Err(Error::config("max_connecting must be at least 1"));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::config("connect_timeout must be positive"));
        }
        if self.cancel_leaked && self.leak_threshold.is_none() {
            return Err(Error::config(
                "cancel_leaked needs a leak_detection_threshold to say what is leaked",
            ));
        }
        (self.min_size, self.max_size, self.capacity) = (min, max, capacity);
        Ok(self)
    }
}

/// The rule `open` and `resize` share: `0 < max ≤ capacity ≤ MAX_PERMITS` and `min ≤ max`.
///
/// # Errors
/// `Config`, naming the sizes.
pub(crate) fn check_sizes(min: usize, max: usize, capacity: usize) -> Result<()> {
    if max == 0 || max < min {
        return Err(Error::config(format!(
            "invalid pool sizes: min_size {min}, max_size {max}"
        )));
    }
    if capacity < max {
        return Err(Error::config(format!(
            "max_size {max} is above max_size_limit {capacity}"
        )));
    }
    if capacity > MAX_PERMITS {
        return Err(Error::config(format!(
            "max_size_limit {capacity} is above the largest supported pool ({MAX_PERMITS})"
        )));
    }
    Ok(())
}

impl<C> fmt::Debug for Settings<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("name", &self.name)
            .field("min_size", &self.min_size)
            .field("max_size", &self.max_size)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(
        min: Option<usize>,
        max: Option<usize>,
        limit: Option<usize>,
    ) -> Result<(usize, usize, usize)> {
        let s = Settings::<()>::default().validated(Sizes { min, max, limit })?;
        Ok((s.min_size, s.max_size, s.capacity))
    }

    #[test]
    fn defaults_make_a_fixed_pool_and_a_small_max_lowers_the_default_min() {
        assert_eq!(sizes(None, None, None).unwrap(), (4, 4, 4));
        assert_eq!(sizes(Some(2), None, None).unwrap(), (2, 2, 2));
        assert_eq!(
            sizes(None, Some(2), None).unwrap(),
            (2, 2, 2),
            "max_size(2) alone is valid"
        );
        assert_eq!(sizes(None, Some(10), None).unwrap(), (4, 10, 10));
        assert_eq!(sizes(Some(1), Some(5), Some(20)).unwrap(), (1, 5, 20));
    }

    #[test]
    fn invalid_sizes_name_themselves() {
        let msg = |r: Result<(usize, usize, usize)>| r.unwrap_err().to_string();
        assert!(msg(sizes(Some(3), Some(2), None)).contains("min_size 3, max_size 2"));
        assert!(msg(sizes(Some(0), Some(0), None)).contains("max_size 0"));
        assert!(msg(sizes(None, Some(5), Some(4))).contains("above max_size_limit 4"));
        assert!(msg(sizes(None, Some(5), Some(MAX_PERMITS + 1))).contains("largest supported"));
    }

    #[test]
    fn cancel_leaked_needs_a_leak_threshold() {
        let s = Settings::<()> {
            cancel_leaked: true,
            ..Settings::default()
        };
        let e = s.validated(Sizes::default()).unwrap_err();
        assert!(
            e.is_config() && e.to_string().contains("leak_detection_threshold"),
            "{e}"
        );
        let s = Settings::<()> {
            cancel_leaked: true,
            leak_threshold: Some(Duration::from_secs(1)),
            ..Settings::default()
        };
        assert!(s.validated(Sizes::default()).is_ok());
    }

    #[test]
    fn connects_must_be_allowed_and_bounded() {
        let s = Settings::<()> {
            max_connecting: 0,
            ..Settings::default()
        };
        assert!(s.validated(Sizes::default()).unwrap_err().is_config());
        let s = Settings::<()> {
            connect_timeout: Duration::ZERO,
            ..Settings::default()
        };
        assert!(s.validated(Sizes::default()).unwrap_err().is_config());
    }
}
