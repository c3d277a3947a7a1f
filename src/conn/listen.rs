//! LISTEN/NOTIFY: the bounded buffer of received notifications ([`Inbox`]), the awaitable
//! [`Connection::next_notification`], and [`Listener`], a connection held for listening.
//!
//! Invariants:
//! - No notification is dropped silently. The inbox holds at most its limit of notifications;
//!   one that arrives beyond it is counted into a gap, and the gap is handed to the reader as
//!   [`Error::is_notifications_lost`] in the place of the notifications it stands for: after
//!   those received before it, before those received after it.
//! - The inbox fills only when a response must be read through to its ReadyForQuery (a query,
//!   `check_closed`, draining a dropped query). `next_notification` decodes one message at a
//!   time and returns as soon as one notification is there, so while a listener reads, unread
//!   notifications wait in the read buffer, the socket, and the server's queue (PostgreSQL's
//!   `pg_notify` queue, 8 GB by default): never in an unbounded buffer of ours.
//! - `next_notification` is cancel-safe: a message is decoded and buffered with no await in
//!   between, and bytes read stay in the read buffer (`Framed::fill`).

use std::collections::VecDeque;

use super::{Connection, Notification};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::wire::BackendMessage;

/// Received notifications not yet handed out, oldest first, with the gaps where notifications
/// were dropped because the buffer was full.
#[derive(Debug)]
pub(super) struct Inbox {
    items: VecDeque<Item>,
    /// How many `Item::Received` are in `items` (gaps are not counted: there is at most one
    /// after each notification, plus one at the front).
    held: usize,
    limit: usize,
}

#[derive(Debug)]
enum Item {
    Received(Notification),
    /// This many notifications arrived here while the buffer was full.
    Gap(u64),
}

impl Inbox {
    pub(super) fn new(limit: usize) -> Inbox {
        Inbox {
            items: VecDeque::new(),
            held: 0,
            limit,
        }
    }

    /// Forgets every buffered notification and gap (the session they were for has been reset).
    pub(super) fn clear(&mut self) {
        self.items.clear();
        self.held = 0;
    }

    /// Buffers `n`, or counts it into a gap if the buffer is full.
    fn push(&mut self, n: Notification) {
        if self.held < self.limit {
            self.items.push_back(Item::Received(n));
            self.held += 1;
            return;
        }
        match self.items.back_mut() {
            Some(Item::Gap(missed)) => *missed = missed.saturating_add(1),
            _ => {
                tracing::warn!(
                    limit = self.limit,
                    "notification buffer full: dropping notifications until it is read"
                );
                self.items.push_back(Item::Gap(1));
            }
        }
    }

    /// The oldest notification, or the gap before it.
    fn pop(&mut self) -> Option<Result<Notification>> {
        Some(match self.items.pop_front()? {
            Item::Received(n) => {
                self.held -= 1;
                Ok(n)
            }
            Item::Gap(missed) => Err(Error::notifications_lost(missed, self.limit)),
        })
    }

    /// Every notification up to the first gap; the gap itself if it is first.
    fn take(&mut self) -> Result<Vec<Notification>> {
        if let Some(Item::Gap(_)) = self.items.front() {
            return match self.pop() {
                Some(Err(e)) => Err(e),
                _ => Ok(Vec::new()),
            };
        }
        let mut out = Vec::new();
        while let Some(Item::Received(_)) = self.items.front() {
            if let Some(Ok(n)) = self.pop() {
                out.push(n);
            }
        }
        Ok(out)
    }
}

impl Connection {
    pub(super) fn push_notification(&mut self, pid: i32, channel: String, payload: String) {
        let inner = &mut *self.inner;
        inner.span.in_scope(|| {
            tracing::trace!(pid, channel = %channel, "notification received");
            inner.notifications.push(Notification {
                pid,
                channel,
                payload,
            });
        });
    }

    /// The notifications received so far, oldest first, up to the first loss (see
    /// [`next_notification`](Connection::next_notification)); never touches the socket.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), wirepool::Error> {
    /// let config: wirepool::Config = "host=db user=app".parse()?;
    /// let mut conn = wirepool::Connection::connect(&config).await?;
    /// conn.simple_query("LISTEN jobs").await?;
    /// conn.simple_query("SELECT 1").await?; // notifications may arrive with any response
    /// for n in conn.take_notifications()? {
    ///     println!("{}: {}", n.channel, n.payload);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::is_notifications_lost`] if notifications were dropped before the oldest one
    /// still buffered (the buffer was full); the next call returns those after the loss.
    pub fn take_notifications(&mut self) -> Result<Vec<Notification>> {
        self.inner.notifications.take()
    }

    /// The next notification: a buffered one, else the next to arrive, reading the socket while
    /// the connection is idle (a connection held for listening; see also [`Listener`]). The
    /// session must have run `LISTEN` for the channels it wants.
    ///
    /// A connection buffers notifications that arrive with a query's response, up to
    /// [`Config::max_pending_notifications`]; when more arrive, they are dropped and this
    /// returns [`Error::is_notifications_lost`] in their place (after the notifications received
    /// before them), with [`Error::notifications_missed`] saying how many. The connection stays
    /// usable, and the next call continues with what came after the loss. While no query runs,
    /// nothing is dropped: unread notifications wait in the socket and in the server's queue.
    ///
    /// If a query's future was dropped ([`is_busy`](Connection::is_busy)), its response is
    /// read through first.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), wirepool::Error> {
    /// let config: wirepool::Config = "host=db user=app".parse()?;
    /// let mut conn = wirepool::Connection::connect(&config).await?;
    /// conn.simple_query("LISTEN jobs").await?;
    /// loop {
    ///     match conn.next_notification().await {
    ///         Ok(n) => println!("job {}", n.payload),
    ///         Err(e) if e.is_notifications_lost() => println!("missed some: rescan the jobs"),
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # }
    /// ```
    ///
    /// Inside a transaction block it waits until the server closes the session: PostgreSQL
    /// delivers notifications only between transactions.
    ///
    /// # Cancel safety
    /// Cancel-safe while the connection is idle: a dropped future loses no notification (each
    /// one is buffered as it is decoded, and bytes read stay buffered), so it can be a branch of
    /// `tokio::select!` or be wrapped in a timeout. While it reads through a dropped query's
    /// response, dropping it is as dropping that query: the connection may be left broken.
    ///
    /// # Errors
    /// [`Error::is_notifications_lost`] as above. The server closing the session (its FATAL
    /// error, [`Error::is_db`], or [`Error::is_closed`]), an I/O or protocol error: the
    /// connection is then broken.
    pub async fn next_notification(&mut self) -> Result<Notification> {
        loop {
            if let Some(next) = self.inner.notifications.pop() {
                return next;
            }
            if self.is_broken() {
                self.mark_broken();
                return Err(Error::closed());
            }
            if self.inner.busy {
                self.drain().await?;
                continue;
            }
            if let Err(e) = self.read_idle_message().await {
                self.mark_broken();
                return Err(e);
            }
        }
    }

    /// Reads and handles one message that arrived while idle.
    async fn read_idle_message(&mut self) -> Result<()> {
        match self.inner.io.read_message().await? {
            // While idle the server sends an ErrorResponse only as it closes the session.
            BackendMessage::ErrorResponse(e) => {
                self.note_server_error(&e);
                Err(Error::db(e))
            }
            msg => self.handle_async(msg),
        }
    }
}

/// A connection held for LISTEN/NOTIFY: it knows which channels it listens to, quotes their
/// names, and hands out notifications in order with [`recv`](Listener::recv), losing none
/// silently (see [`Connection::next_notification`]).
///
/// Make one with [`Listener::connect`], or from any [`Connection`], such as one taken out of a
/// pool ([`PooledConnection::take`](crate::PooledConnection::take)), which no longer counts
/// against the pool:
///
/// ```no_run
/// # async fn demo(pool: wirepool::Pool) -> Result<(), wirepool::Error> {
/// let conn = wirepool::PooledConnection::take(pool.connection().await?);
/// let mut listener = wirepool::Listener::new(conn);
/// listener.listen("jobs").await?;
/// listener.listen("Jobs \"urgent\"").await?; // any name: quoted as an identifier
/// loop {
///     let n = listener.recv().await?;
///     println!("{} on {}: {}", n.pid, n.channel, n.payload);
/// }
/// # }
/// ```
///
/// Queries can run on the same session ([`connection`](Listener::connection)); notifications
/// that arrive with their responses are buffered for `recv`.
#[derive(Debug)]
pub struct Listener {
    conn: Connection,
    channels: Vec<String>,
}

impl Listener {
    /// A listener over `conn`, listening to no channel yet (unless the session already ran
    /// `LISTEN` itself: those notifications are delivered too).
    pub fn new(conn: Connection) -> Listener {
        Listener {
            conn,
            channels: Vec::new(),
        }
    }

    /// Connects (see [`Connection::connect`]) and makes a listener of the connection.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), wirepool::Error> {
    /// let config: wirepool::Config = "host=db user=app".parse()?;
    /// let mut listener = wirepool::Listener::connect(&config).await?;
    /// listener.listen("jobs").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Cancel safety
    /// As [`Connection::connect`].
    ///
    /// # Errors
    /// As [`Connection::connect`].
    pub async fn connect(config: &Config) -> Result<Listener> {
        Ok(Listener::new(Connection::connect(config).await?))
    }

    /// `LISTEN` to `channel`, taken literally: it is quoted as an identifier, so case, spaces
    /// and quotes are kept (as `pg_notify('Jobs', ...)` names it; an unquoted `NOTIFY Jobs`
    /// names `jobs`). PostgreSQL truncates names to 63 bytes.
    ///
    /// # Cancel safety
    /// Not cancel-safe, as [`Connection::simple_query`]: dropped, the channel may or may not be
    /// listened to, and [`channels`](Listener::channels) does not list it.
    ///
    /// # Errors
    /// A NUL in the name ([`Error::is_invalid_input`]), or as
    /// [`Connection::simple_query`].
    pub async fn listen(&mut self, channel: &str) -> Result<()> {
        self.conn
            .simple_query(&format!("LISTEN {}", quote_ident(channel)))
            .await?;
        if !self.channels.iter().any(|c| c == channel) {
            self.channels.push(channel.to_owned());
        }
        Ok(())
    }

    /// `UNLISTEN` `channel` (quoted as in [`listen`](Listener::listen)). Notifications of the
    /// channel received before the server ran it are still handed out.
    ///
    /// # Cancel safety
    /// Not cancel-safe, as [`Connection::simple_query`].
    ///
    /// # Errors
    /// As [`listen`](Listener::listen).
    pub async fn unlisten(&mut self, channel: &str) -> Result<()> {
        self.conn
            .simple_query(&format!("UNLISTEN {}", quote_ident(channel)))
            .await?;
        self.channels.retain(|c| c != channel);
        Ok(())
    }

    /// `UNLISTEN *`: stops listening to every channel.
    ///
    /// # Cancel safety
    /// Not cancel-safe, as [`Connection::simple_query`].
    ///
    /// # Errors
    /// As [`Connection::simple_query`].
    pub async fn unlisten_all(&mut self) -> Result<()> {
        self.conn.simple_query("UNLISTEN *").await?;
        self.channels.clear();
        Ok(())
    }

    /// The channels this listener has subscribed to, in the order of their first `listen`.
    pub fn channels(&self) -> impl Iterator<Item = &str> {
        self.channels.iter().map(String::as_str)
    }

    /// The next notification, in the order the server sent them; see
    /// [`Connection::next_notification`].
    ///
    /// # Cancel safety
    /// Cancel-safe: a dropped future loses nothing (a `tokio::select!` branch, a timeout).
    ///
    /// # Errors
    /// As [`Connection::next_notification`]: [`Error::is_notifications_lost`] in the place of
    /// notifications dropped because the buffer was full (the listener stays usable), or the
    /// connection's end.
    pub async fn recv(&mut self) -> Result<Notification> {
        self.conn.next_notification().await
    }

    /// The session, to run queries on it.
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The connection back (still listening to its channels).
    pub fn into_connection(self) -> Connection {
        self.conn
    }
}

impl From<Connection> for Listener {
    fn from(conn: Connection) -> Listener {
        Listener::new(conn)
    }
}

/// `name` as a quoted SQL identifier (`quote_ident`): in double quotes, each `"` doubled.
fn quote_ident(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for c in name.chars() {
        if c == '"' {
            quoted.push('"');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(i: u32) -> Notification {
        Notification {
            pid: 1,
            channel: "c".into(),
            payload: i.to_string(),
        }
    }

    fn drain(inbox: &mut Inbox) -> Vec<std::result::Result<String, u64>> {
        std::iter::from_fn(|| inbox.pop())
            .map(|r| match r {
                Ok(n) => Ok(n.payload),
                Err(e) => Err(e.notifications_missed().unwrap()),
            })
            .collect()
    }

    #[test]
    fn a_full_inbox_records_each_run_of_drops_as_one_gap_in_place() {
        let mut inbox = Inbox::new(2);
        (0..5).for_each(|i| inbox.push(note(i)));
        assert_eq!(inbox.pop().unwrap().unwrap().payload, "0");
        (5..7).for_each(|i| inbox.push(note(i)));
        assert_eq!(
            drain(&mut inbox),
            [Ok("1".into()), Err(3), Ok("5".into()), Err(1)]
        );
        assert_eq!(inbox.held, 0);
    }

    #[test]
    fn take_stops_at_a_gap_and_reports_it_on_the_next_call() {
        let mut inbox = Inbox::new(2);
        (0..4).for_each(|i| inbox.push(note(i)));
        let first: Vec<_> = inbox
            .take()
            .unwrap()
            .into_iter()
            .map(|n| n.payload)
            .collect();
        assert_eq!(first, ["0", "1"]);
        let e = inbox.take().unwrap_err();
        assert!(e.is_notifications_lost() && e.notifications_missed() == Some(2));
        assert!(e.to_string().contains("2 notification(s) lost"), "{e}");
        assert!(inbox.take().unwrap().is_empty());
    }

    #[test]
    fn identifiers_are_quoted_with_inner_quotes_doubled() {
        assert_eq!(quote_ident("jobs"), "\"jobs\"");
        assert_eq!(quote_ident("Jobs \"x\""), "\"Jobs \"\"x\"\"\"");
    }
}
