//! The blocking [`Listener`]: the async [`crate::Listener`] on a connection taken out of a
//! pool (or connected on its own), whose [`recv`](Listener::recv) blocks a thread until a
//! notification arrives or its timeout passes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::connection::Connection;
use super::runtime::Driver;
use crate::config::Config;
use crate::conn::Notification;
use crate::error::Result;

/// A connection held by a thread for LISTEN/NOTIFY: it knows which channels it listens to,
/// quotes their names, and hands out notifications in order with [`recv`](Listener::recv),
/// losing none silently. The blocking [`crate::Listener`]. `Send + Sync`.
///
/// Made from a blocking [`Connection`]; a pooled one is
/// [taken](super::PooledConnection::take) out of the pool first, so the listener holds no
/// place in it. It keeps the pool's thread running until it is dropped, even after the pool
/// is. Or [connected](Listener::connect) on its own, with no pool.
///
/// ```no_run
/// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
/// use std::time::Duration;
/// use wirepool::blocking::{Listener, PooledConnection};
///
/// let mut listener = Listener::new(PooledConnection::take(pool.connection()?));
/// listener.listen("jobs")?;
/// let worker = std::thread::spawn(move || -> wirepool::Result<()> {
///     loop {
///         match listener.recv(Duration::from_secs(30))? {
///             Some(n) => println!("{} on {}: {}", n.pid, n.channel, n.payload),
///             None => println!("30 s without a job"),
///         }
///     }
/// });
/// pool.connection()?.simple_query("NOTIFY jobs, 'one'")?;
/// # Ok(()) }
/// ```
pub struct Listener {
    // Dropped first: the socket is registered with the driver's runtime.
    listener: crate::Listener,
    driver: Arc<Driver>,
}

impl Listener {
    /// A listener over `conn`, listening to no channel yet (unless the session already ran
    /// `LISTEN` itself: those notifications are delivered too). Never blocks.
    ///
    /// ```no_run
    /// # fn demo(pool: &wirepool::blocking::Pool) -> wirepool::Result<()> {
    /// let conn = wirepool::blocking::PooledConnection::take(pool.connection()?);
    /// let listener = wirepool::blocking::Listener::new(conn);
    /// assert_eq!(listener.channels().count(), 0);
    /// # Ok(()) }
    /// ```
    pub fn new(conn: Connection) -> Listener {
        let (conn, driver) = conn.into_taken();
        Listener {
            listener: crate::Listener::new(conn),
            driver,
        }
    }

    /// Connects (see [`Connection::connect`](crate::Connection::connect)), blocking until the
    /// session is ready, and makes a listener of the connection, with a thread of its own
    /// (`wirepool-listener`) in the place of a pool's.
    ///
    /// ```no_run
    /// let config: wirepool::Config = "host=db user=app".parse()?;
    /// let mut listener = wirepool::blocking::Listener::connect(&config)?;
    /// listener.listen("jobs")?;
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Connection::connect`](crate::Connection::connect); `Io` if the thread cannot
    /// start; `InsideAsyncRuntime`.
    pub fn connect(config: &Config) -> Result<Listener> {
        let driver = Driver::start("wirepool-listener".to_owned())?;
        let listener = driver.block_on(crate::Listener::connect(config))??;
        Ok(Listener { listener, driver })
    }

    /// `LISTEN` to `channel`, taken literally (quoted as an identifier: case, spaces and quotes
    /// are kept), and blocks until the server has run it. See [`crate::Listener::listen`].
    ///
    /// ```no_run
    /// # fn demo(listener: &mut wirepool::blocking::Listener) -> wirepool::Result<()> {
    /// listener.listen("Jobs \"urgent\"")?; // pg_notify('Jobs "urgent"', ...) reaches it
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A NUL in the name ([`Error::is_invalid_input`](crate::Error::is_invalid_input)), as
    /// [`Connection::simple_query`], or `InsideAsyncRuntime`.
    pub fn listen(&mut self, channel: &str) -> Result<()> {
        self.driver.block_on(self.listener.listen(channel))?
    }

    /// `UNLISTEN` `channel` (quoted as in [`listen`](Listener::listen)), and blocks until the
    /// server has run it. Notifications of the channel received before then are still handed
    /// out.
    ///
    /// ```no_run
    /// # fn demo(listener: &mut wirepool::blocking::Listener) -> wirepool::Result<()> {
    /// listener.unlisten("jobs")?;
    /// assert!(!listener.channels().any(|c| c == "jobs"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`listen`](Listener::listen).
    pub fn unlisten(&mut self, channel: &str) -> Result<()> {
        self.driver.block_on(self.listener.unlisten(channel))?
    }

    /// `UNLISTEN *`: stops listening to every channel; blocks until the server has run it.
    ///
    /// ```no_run
    /// # fn demo(listener: &mut wirepool::blocking::Listener) -> wirepool::Result<()> {
    /// listener.unlisten_all()?;
    /// assert_eq!(listener.channels().count(), 0);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Connection::simple_query`], or `InsideAsyncRuntime`.
    pub fn unlisten_all(&mut self) -> Result<()> {
        self.driver.block_on(self.listener.unlisten_all())?
    }

    /// The channels this listener has subscribed to, in the order of their first `listen`.
    ///
    /// ```no_run
    /// # fn demo(listener: &mut wirepool::blocking::Listener) -> wirepool::Result<()> {
    /// listener.listen("a")?;
    /// listener.listen("b")?;
    /// assert_eq!(listener.channels().collect::<Vec<_>>(), ["a", "b"]);
    /// # Ok(()) }
    /// ```
    pub fn channels(&self) -> impl Iterator<Item = &str> {
        self.listener.channels()
    }

    /// The next notification, in the order the server sent them, blocking the thread until
    /// one arrives or `timeout` has passed (`Ok(None)`; nothing is lost). `Duration::ZERO`
    /// only looks at what has already arrived. See
    /// [`Connection::next_notification`].
    ///
    /// ```no_run
    /// # fn demo(listener: &mut wirepool::blocking::Listener) -> wirepool::Result<()> {
    /// use std::time::Duration;
    /// match listener.recv(Duration::from_secs(1)) {
    ///     Ok(Some(n)) => println!("{}", n.payload),
    ///     Ok(None) => println!("nothing for a second"),
    ///     Err(e) if e.is_notifications_lost() => println!("missed some: rescan"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Connection::next_notification`]:
    /// [`Error::is_notifications_lost`](crate::Error::is_notifications_lost) in the place of
    /// notifications dropped because the buffer was full (the listener stays usable), the
    /// connection's end, or `InsideAsyncRuntime`.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Notification>> {
        self.driver
            .block_on_timeout(self.listener.recv(), timeout)?
            .transpose()
    }

    /// The connection back, still listening to its channels: to run queries on the session,
    /// or close it. Never blocks. A listener made of it again lists no channels, though the
    /// session still listens to them.
    ///
    /// ```no_run
    /// # fn demo(listener: wirepool::blocking::Listener) -> wirepool::Result<()> {
    /// let mut conn = listener.into_connection();
    /// conn.simple_query("SELECT 1")?; // notifications arriving now are kept for later
    /// let listener = wirepool::blocking::Listener::new(conn);
    /// # Ok(()) }
    /// ```
    pub fn into_connection(self) -> Connection {
        Connection::taken(self.listener.into_connection(), self.driver)
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::Listener")
            .field(&self.listener)
            .finish()
    }
}
