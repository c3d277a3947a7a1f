//! [`Limits`]: the bounds a connection puts on what the server can make it hold (a message's
//! length, SCRAM's iteration count, unread notifications), with safe defaults and `Config`
//! setters. Rust-side settings: libpq has no keywords for them, so they are not part of the
//! conninfo string ([`Config::to_conninfo_string`] leaves them out).
//!
//! The startup-phase bounds and the small-message bound ([`crate::wire`]'s `MAX_*` constants)
//! are libpq's fixed values, which no valid server exceeds, so they are not settings.

use super::Config;
use crate::error::Error;
use crate::wire::auth::scram::DEFAULT_MAX_SCRAM_ITERATIONS;
use crate::wire::{
    DecoderLimits, DEFAULT_MAX_MESSAGE_LEN, MAX_FRONTEND_MESSAGE_LEN, MAX_SMALL_MESSAGE_LEN,
};

/// Default for [`Limits::max_pending_notifications`]. Notifications are buffered only when they
/// arrive with a query's response (an idle connection leaves them in the socket, and the server
/// queues them, until read), so the buffer holds what one query's run brings in: 1024 of at most
/// 8000 bytes each (a default-built PostgreSQL's payload limit) is about 8 MiB per connection,
/// and no peer can make it more than 1024 ×
/// [`MAX_NOTIFICATION_LEN`](crate::wire::MAX_NOTIFICATION_LEN) (64 MiB).
pub const DEFAULT_MAX_PENDING_NOTIFICATIONS: usize = 1024;

/// The bounds a connection puts on what the server can make it hold. Every field has a safe
/// default; raise one when a legitimate workload needs it.
///
/// ```
/// use wirepool::config::Limits;
/// let mut limits = Limits::default();
/// limits.max_message_len = 256 << 20; // rows of up to 256 MiB
/// let mut config: wirepool::Config = "host=db user=app".parse()?;
/// config.limits(limits);
/// assert_eq!(config.get_limits().max_message_len, 256 << 20);
/// # Ok::<(), wirepool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Limits {
    /// Largest RowDescription, DataRow, CopyData, ErrorResponse or NoticeResponse accepted after
    /// startup (a length-field value, which counts itself
    /// but not the type byte). Default [`DEFAULT_MAX_MESSAGE_LEN`] (64 MiB); at least
    /// [`MAX_SMALL_MESSAGE_LEN`] and at most [`MAX_FRONTEND_MESSAGE_LEN`] (the server's
    /// `PQ_LARGE_MESSAGE_LIMIT`: it sends nothing longer). A longer message fails the query with
    /// [`Error::is_limit_exceeded`] and breaks the connection.
    pub max_message_len: usize,
    /// Largest SCRAM iteration count the server may ask for: each iteration costs the client
    /// an HMAC, so a hostile server could ask for billions. Default
    /// [`DEFAULT_MAX_SCRAM_ITERATIONS`]; at least 1.
    pub max_scram_iterations: u32,
    /// Largest number of unread notifications a connection buffers (see
    /// [`Connection::next_notification`](crate::Connection::next_notification)). Beyond it,
    /// notifications are dropped and the reader gets [`Error::is_notifications_lost`] in their
    /// place. Default [`DEFAULT_MAX_PENDING_NOTIFICATIONS`]; at least 1.
    pub max_pending_notifications: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            max_scram_iterations: DEFAULT_MAX_SCRAM_ITERATIONS,
            max_pending_notifications: DEFAULT_MAX_PENDING_NOTIFICATIONS,
        }
    }
}

impl Limits {
    /// The values connecting can use, or a configuration error naming the one out of range.
    pub(crate) fn checked(self) -> Result<Limits, Error> {
        let len = self.max_message_len;
        if !(MAX_SMALL_MESSAGE_LEN..=MAX_FRONTEND_MESSAGE_LEN).contains(&len) {
            return Err(Error::config(format!(
                "max_message_len {len} is outside {MAX_SMALL_MESSAGE_LEN}..={MAX_FRONTEND_MESSAGE_LEN}"
            )));
        }
        if self.max_scram_iterations == 0 {
            return Err(Error::config("max_scram_iterations must be at least 1"));
        }
        if self.max_pending_notifications == 0 {
            return Err(Error::config(
                "max_pending_notifications must be at least 1",
            ));
        }
        Ok(self)
    }

    /// The decoder's share.
    pub(crate) fn decoder(self) -> DecoderLimits {
        DecoderLimits {
            max_message_len: self.max_message_len,
        }
    }
}

impl Config {
    /// Sets every limit at once (see [`Limits`]). Checked when connecting (and by
    /// [`Config::validate`]).
    ///
    /// ```
    /// let mut config = wirepool::Config::new();
    /// config.limits(wirepool::config::Limits::default());
    /// assert_eq!(config, wirepool::Config::new());
    /// ```
    pub fn limits(&mut self, limits: Limits) -> &mut Config {
        self.limits = limits;
        self
    }

    /// Sets [`Limits::max_message_len`]: the longest row (or other large message) the server
    /// may send, 64 MiB by default.
    ///
    /// ```
    /// let mut config: wirepool::Config = "host=db".parse()?;
    /// config.max_message_len(256 << 20);
    /// assert_eq!(config.get_limits().max_message_len, 256 << 20);
    /// assert_eq!(config.to_string(), "host=db"); // not a conninfo keyword
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn max_message_len(&mut self, len: usize) -> &mut Config {
        self.limits.max_message_len = len;
        self
    }

    /// Sets [`Limits::max_scram_iterations`].
    ///
    /// ```
    /// let mut config = wirepool::Config::new();
    /// config.max_scram_iterations(4_000_000);
    /// assert_eq!(config.get_limits().max_scram_iterations, 4_000_000);
    /// ```
    pub fn max_scram_iterations(&mut self, iterations: u32) -> &mut Config {
        self.limits.max_scram_iterations = iterations;
        self
    }

    /// Sets [`Limits::max_pending_notifications`].
    ///
    /// ```
    /// let mut config = wirepool::Config::new();
    /// config.max_pending_notifications(100_000);
    /// assert_eq!(config.get_limits().max_pending_notifications, 100_000);
    /// ```
    pub fn max_pending_notifications(&mut self, count: usize) -> &mut Config {
        self.limits.max_pending_notifications = count;
        self
    }

    /// The limits connections are opened with.
    ///
    /// ```
    /// let config = wirepool::Config::new();
    /// assert_eq!(config.get_limits(), wirepool::config::Limits::default());
    /// ```
    pub fn get_limits(&self) -> Limits {
        self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_are_config_errors_naming_the_setting() {
        let d = Limits::default();
        let tiny = Limits {
            max_message_len: 1000,
            ..d
        };
        let huge = Limits {
            max_message_len: usize::MAX,
            ..d
        };
        let scram = Limits {
            max_scram_iterations: 0,
            ..d
        };
        let notes = Limits {
            max_pending_notifications: 0,
            ..d
        };
        for (limits, name) in [
            (tiny, "max_message_len 1000 "),
            (huge, "max_message_len"),
            (scram, "max_scram_iterations"),
            (notes, "max_pending_notifications"),
        ] {
            let e = limits.checked().unwrap_err();
            assert!(e.is_config() && e.to_string().contains(name), "{e}");
        }
        assert!(Limits::default().checked().is_ok());
    }
}
