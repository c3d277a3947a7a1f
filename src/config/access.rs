//! [`Config`]'s typed setters and getters, for building a configuration in code.
//!
//! Setters follow tokio-postgres: `&mut self` in, `&mut Config` out, so calls chain. Each replaces
//! the keyword's value (as a repeated keyword does in a string), and stores it as text exactly
//! as a parsed string would, so a built `Config` and a parsed one compare equal. Getters return
//! values as given (a comma list stays one string); nothing is validated until connecting.

use std::time::Duration;

use super::keyword::Keyword;
use super::{Config, LoadBalanceHosts, Password, SslMode, TargetSessionAttrs};

impl Config {
    /// Sets `host`: a host name, an IP address, or a Unix socket directory (a path starting with
    /// `/`). A comma-separated list names several servers, tried in order.
    ///
    /// ```
    /// let mut config = wirepool::Config::new();
    /// config.host("db1,db2");
    /// assert_eq!(config.get_host(), Some("db1,db2"));
    /// ```
    pub fn host(&mut self, host: &str) -> &mut Config {
        self.put(Keyword::Host, host.to_owned());
        self
    }

    /// Sets `port`, for every host.
    ///
    /// ```
    /// let mut config = wirepool::Config::new();
    /// config.port(5433);
    /// assert_eq!(config.get_port(), Some("5433"));
    /// ```
    pub fn port(&mut self, port: u16) -> &mut Config {
        self.put(Keyword::Port, port.to_string());
        self
    }

    /// Sets `user`, the database role to log in as.
    ///
    /// ```
    /// let mut config = wirepool::Config::new();
    /// config.user("app");
    /// assert_eq!(config.get_user(), Some("app"));
    /// ```
    pub fn user(&mut self, user: &str) -> &mut Config {
        self.put(Keyword::User, user.to_owned());
        self
    }

    /// Sets `password`. It never appears in `Debug` or `Display`.
    ///
    /// ```
    /// let mut config = wirepool::Config::new();
    /// config.user("app").password("s3cret");
    /// assert_eq!(config.get_password().map(|p| p.expose()), Some("s3cret"));
    /// assert!(!format!("{config} {config:?}").contains("s3cret"));
    /// ```
    pub fn password(&mut self, password: &str) -> &mut Config {
        self.put(Keyword::Password, password.to_owned());
        self
    }

    /// Sets `dbname`, the database to connect to.
    ///
    /// ```
    /// let mut config = wirepool::Config::new();
    /// config.dbname("shop");
    /// assert_eq!(config.get_dbname(), Some("shop"));
    /// ```
    pub fn dbname(&mut self, dbname: &str) -> &mut Config {
        self.put(Keyword::Dbname, dbname.to_owned());
        self
    }

    /// Sets `application_name`, shown in `pg_stat_activity`.
    ///
    /// ```
    /// let mut config = wirepool::Config::new();
    /// config.application_name("billing");
    /// assert_eq!(config.get_application_name(), Some("billing"));
    /// ```
    pub fn application_name(&mut self, name: &str) -> &mut Config {
        self.put(Keyword::ApplicationName, name.to_owned());
        self
    }

    /// Sets `options`: command-line options for the server process, e.g. `-c search_path=app`.
    ///
    /// ```
    /// let mut config = wirepool::Config::new();
    /// config.options("-c search_path=app");
    /// assert_eq!(config.to_string(), "options='-c search_path=app'");
    /// ```
    pub fn options(&mut self, options: &str) -> &mut Config {
        self.put(Keyword::Options, options.to_owned());
        self
    }

    /// Sets `connect_timeout`, the limit on connecting and authenticating to each host. libpq
    /// counts whole seconds, so it is rounded up (a non-zero timeout never becomes "wait
    /// forever"); zero means no limit, and 1 s is raised to 2 s when connecting, as in libpq.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut config = wirepool::Config::new();
    /// config.connect_timeout(Duration::from_millis(2500));
    /// assert_eq!(config.get_connect_timeout(), Some("3"));
    /// ```
    pub fn connect_timeout(&mut self, timeout: Duration) -> &mut Config {
        let secs = timeout
            .as_secs()
            .saturating_add(u64::from(timeout.subsec_nanos() > 0))
            // libpq keeps it in a C int; more than 68 years is "forever" in practice anyway.
            .min(i32::MAX as u64);
        self.put(Keyword::ConnectTimeout, secs.to_string());
        self
    }

    /// Sets `require_auth`: the authentication methods the server may ask for, e.g.
    /// `scram-sha-256` or `!password` (libpq 16's syntax; checked when connecting).
    ///
    /// ```
    /// let mut config = wirepool::Config::new();
    /// config.require_auth("scram-sha-256");
    /// assert_eq!(config.get_require_auth(), Some("scram-sha-256"));
    /// ```
    pub fn require_auth(&mut self, methods: &str) -> &mut Config {
        self.put(Keyword::RequireAuth, methods.to_owned());
        self
    }

    /// Sets `sslmode` (see [`SslMode`]).
    ///
    /// ```
    /// use wirepool::config::SslMode;
    /// let mut config = wirepool::Config::new();
    /// config.sslmode(SslMode::VerifyFull);
    /// assert_eq!(config.get_sslmode(), Some("verify-full"));
    /// ```
    pub fn sslmode(&mut self, mode: SslMode) -> &mut Config {
        self.put(Keyword::Sslmode, mode.as_str().to_owned());
        self
    }

    /// Sets `target_session_attrs`: the kind of server to settle on among the hosts.
    ///
    /// ```
    /// use wirepool::config::TargetSessionAttrs;
    /// let mut config = wirepool::Config::new();
    /// config.host("pg1,pg2").target_session_attrs(TargetSessionAttrs::Primary);
    /// assert_eq!(config.get_target_session_attrs(), Some("primary"));
    /// ```
    pub fn target_session_attrs(&mut self, target: TargetSessionAttrs) -> &mut Config {
        self.put(Keyword::TargetSessionAttrs, target.as_str().to_owned());
        self
    }

    /// A copy with `target_session_attrs` set: one conninfo for a cluster, a write pool and a
    /// read pool from it (see [`Config`]'s "One cluster" example).
    ///
    /// ```
    /// use wirepool::config::TargetSessionAttrs;
    /// let cluster: wirepool::Config = "host=pg1,pg2".parse()?;
    /// let writes = cluster.with_target_session_attrs(TargetSessionAttrs::ReadWrite);
    /// assert_eq!(writes.to_string(), "host=pg1,pg2 target_session_attrs=read-write");
    /// assert_eq!(cluster.get_target_session_attrs(), None);
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    #[must_use]
    pub fn with_target_session_attrs(&self, target: TargetSessionAttrs) -> Config {
        let mut config = self.clone();
        config.target_session_attrs(target);
        config
    }

    /// Sets `load_balance_hosts`: whether hosts are tried in a random order.
    ///
    /// ```
    /// use wirepool::config::LoadBalanceHosts;
    /// let mut config = wirepool::Config::new();
    /// config.load_balance_hosts(LoadBalanceHosts::Random);
    /// assert_eq!(config.get_load_balance_hosts(), Some("random"));
    /// ```
    pub fn load_balance_hosts(&mut self, order: LoadBalanceHosts) -> &mut Config {
        self.put(Keyword::LoadBalanceHosts, order.as_str().to_owned());
        self
    }

    /// A copy with `load_balance_hosts` set.
    ///
    /// ```
    /// use wirepool::config::LoadBalanceHosts;
    /// let config = wirepool::Config::new().with_load_balance_hosts(LoadBalanceHosts::Random);
    /// assert_eq!(config.to_string(), "load_balance_hosts=random");
    /// ```
    #[must_use]
    pub fn with_load_balance_hosts(&self, order: LoadBalanceHosts) -> Config {
        let mut config = self.clone();
        config.load_balance_hosts(order);
        config
    }

    /// Sets `tcp_user_timeout`: how long sent data may go unacknowledged before the kernel drops
    /// the connection (`TCP_USER_TIMEOUT`, Linux; ignored elsewhere, as in libpq). With
    /// keepalives it bounds how long a connection to a server that vanished without a word
    /// (a silent failover) looks alive. Kept in milliseconds, rounded up; zero means the
    /// system default.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut config = wirepool::Config::new();
    /// config.tcp_user_timeout(Duration::from_secs(10));
    /// assert_eq!(config.get("tcp_user_timeout"), Some("10000"));
    /// ```
    pub fn tcp_user_timeout(&mut self, timeout: Duration) -> &mut Config {
        let ms = timeout
            .as_millis()
            .saturating_add(u128::from(timeout.subsec_nanos() % 1_000_000 > 0))
            .min(i32::MAX as u128);
        self.put(Keyword::TcpUserTimeout, ms.to_string());
        self
    }

    /// `host` as given (a comma list for several servers).
    ///
    /// ```
    /// let config: wirepool::Config = "postgres://[::1]:5433,db/shop".parse()?;
    /// assert_eq!(config.get_host(), Some("::1,db"));
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn get_host(&self) -> Option<&str> {
        self.raw(Keyword::Host)
    }

    /// `hostaddr` as given.
    ///
    /// ```
    /// let config: wirepool::Config = "host=db hostaddr=10.0.0.7".parse()?;
    /// assert_eq!(config.get_hostaddr(), Some("10.0.0.7"));
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn get_hostaddr(&self) -> Option<&str> {
        self.raw(Keyword::Hostaddr)
    }

    /// `port` as given: text, since it may be a comma list (and is checked only when connecting).
    ///
    /// ```
    /// let config: wirepool::Config = "postgres://h1:1,h2/db".parse()?;
    /// assert_eq!(config.get_port(), Some("1,"));
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn get_port(&self) -> Option<&str> {
        self.raw(Keyword::Port)
    }

    /// `user` as given.
    ///
    /// ```
    /// let config: wirepool::Config = "user = app".parse()?;
    /// assert_eq!(config.get_user(), Some("app"));
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn get_user(&self) -> Option<&str> {
        self.raw(Keyword::User)
    }

    /// `password` as given, wrapped so that it does not print.
    ///
    /// ```
    /// let config: wirepool::Config = "password='a b'".parse()?;
    /// assert_eq!(config.get_password().map(|p| p.expose()), Some("a b"));
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn get_password(&self) -> Option<&Password> {
        self.password.as_ref()
    }

    /// `dbname` as given.
    ///
    /// ```
    /// let config: wirepool::Config = "postgres://db/a%2Fb".parse()?;
    /// assert_eq!(config.get_dbname(), Some("a/b"));
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn get_dbname(&self) -> Option<&str> {
        self.raw(Keyword::Dbname)
    }

    /// `application_name` as given.
    ///
    /// ```
    /// let config: wirepool::Config = "postgres://db?application_name=x%20y".parse()?;
    /// assert_eq!(config.get_application_name(), Some("x y"));
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn get_application_name(&self) -> Option<&str> {
        self.raw(Keyword::ApplicationName)
    }

    /// `options` as given.
    ///
    /// ```
    /// let config: wirepool::Config = r"options=-c\ geqo=off".parse()?;
    /// assert_eq!(config.get_options(), Some("-c geqo=off"));
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn get_options(&self) -> Option<&str> {
        self.raw(Keyword::Options)
    }

    /// `connect_timeout` as given, in seconds (text: it is checked when connecting).
    ///
    /// ```
    /// let config: wirepool::Config = "connect_timeout=10".parse()?;
    /// assert_eq!(config.get_connect_timeout(), Some("10"));
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn get_connect_timeout(&self) -> Option<&str> {
        self.raw(Keyword::ConnectTimeout)
    }

    /// `require_auth` as given.
    ///
    /// ```
    /// let config: wirepool::Config = "require_auth=!password,!md5".parse()?;
    /// assert_eq!(config.get_require_auth(), Some("!password,!md5"));
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn get_require_auth(&self) -> Option<&str> {
        self.raw(Keyword::RequireAuth)
    }

    /// `target_session_attrs` as given (text: checked by [`Config::validate`] and when
    /// connecting).
    ///
    /// ```
    /// let config: wirepool::Config = "postgres://pg1,pg2/shop?target_session_attrs=standby".parse()?;
    /// assert_eq!(config.get_target_session_attrs(), Some("standby"));
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn get_target_session_attrs(&self) -> Option<&str> {
        self.raw(Keyword::TargetSessionAttrs)
    }

    /// `load_balance_hosts` as given.
    ///
    /// ```
    /// let config: wirepool::Config = "load_balance_hosts=random".parse()?;
    /// assert_eq!(config.get_load_balance_hosts(), Some("random"));
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn get_load_balance_hosts(&self) -> Option<&str> {
        self.raw(Keyword::LoadBalanceHosts)
    }

    /// `sslmode` as given (text: a bad value is reported when connecting, as in libpq).
    ///
    /// ```
    /// let config: wirepool::Config = "postgres://db?ssl=true".parse()?;
    /// assert_eq!(config.get_sslmode(), Some("require"));
    /// # Ok::<(), wirepool::Error>(())
    /// ```
    pub fn get_sslmode(&self) -> Option<&str> {
        self.raw(Keyword::Sslmode)
    }
}
