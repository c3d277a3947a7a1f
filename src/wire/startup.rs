//! The startup/authentication state machine: fed decoded server messages, asked for bytes to
//! send. No I/O, so a recorded transcript (or a fuzzer) can drive a whole login.
//!
//! ```text
//! new ──► AwaitingAuth ──R3/R5──► PasswordSent ──R0──┐
//!             │  └──R10──► SaslInitialSent ──R11──► SaslNeedKeys ──keys──► SaslFinalSent
//!             │                                                                │ R12 (verified)
//!             └──R0 (require_auth permitting)──► Authenticated ◄──R0── SaslVerified { bound }
//!                                   S, K, N ──► Authenticated ──Z──► Done(Session)
//! ```
//!
//! Security rules (libpq `fe-auth.c`: `check_expected_areq`, `pg_SASL_continue`; RFC 5802 §9):
//! - `require_auth` is checked on every request *before* any reply, and a password is never
//!   sent unless the server asked for that method and the user allowed it;
//! - a missing password fails with "no password supplied" before anything is sent;
//! - after SCRAM, AuthenticationOk is accepted only once SASLFinal carried the server signature
//!   we expect (ponylang/postgres#204: a server skipping SASLFinal never proved it knows the
//!   password);
//! - SCRAM-SHA-256-PLUS offered on a connection without TLS is refused, as libpq does: it
//!   suggests TLS was stripped by a man in the middle;
//! - `channel_binding` (libpq fe-auth.c `pg_SASL_init`, `check_expected_areq`): over TLS, -PLUS
//!   is chosen whenever the server offers it (unless `disable`); `require` answers SASL requests
//!   only, fails before SASLInitialResponse when -PLUS cannot be used (no TLS, not offered, a
//!   certificate without a digest such as Ed25519), and refuses AuthenticationOk unless a bound
//!   exchange was verified. The gs2 flag is `y` only over TLS when the server offered no -PLUS
//!   (a server that offered it treats `y` as a downgrade), else `n`. Under `prefer`, an Ed25519
//!   certificate means plain SCRAM with `n` (libpq fails there: "could not find digest");
//! - any error leaves the machine failed: every later call errors too.

use std::collections::HashMap;
use std::fmt;

use bytes::BytesMut;

use super::auth::{
    md5_password, ChannelBinding, KeyRequest, ScramClient, ScramError, ScramKeys,
    DEFAULT_MAX_SCRAM_ITERATIONS, SCRAM_SHA_256, SCRAM_SHA_256_PLUS,
};
use super::backend::{Authentication, BackendMessage};
use super::require_auth::AuthMethod;
use super::tag::backend as kind;
use super::tls::CertificateError;
use super::{frontend, DbError, RequireAuth, TransactionStatus, WireError};

/// What goes in the StartupMessage. `client_encoding=UTF8` is always added (the codec decodes
/// text as UTF-8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartupParams {
    /// The role to log in as (required by the server).
    pub user: String,
    /// The database; the server defaults it to the user name.
    pub database: Option<String>,
    /// `application_name`, shown in `pg_stat_activity`.
    pub application_name: Option<String>,
    /// Command-line options for the backend (`-c name=value ...`).
    pub options: Option<String>,
    /// Any other run-time parameters to set for the session.
    pub extra: Vec<(String, String)>,
}

/// How the client may authenticate.
#[derive(Clone)]
pub struct AuthConfig {
    /// The password, if any. Never shown by `Debug`.
    pub password: Option<Vec<u8>>,
    /// Which methods the server may use.
    pub require_auth: RequireAuth,
    /// The largest SCRAM iteration count accepted from the server (RFC 5802 §9: a hostile
    /// server can burn our CPU with a huge count).
    pub max_scram_iterations: u32,
    /// `None` without TLS (a server offering SCRAM-SHA-256-PLUS is then refused: TLS was
    /// probably stripped on the way); over TLS, the `tls-server-end-point` channel binding data
    /// of the server certificate, or why it has none.
    pub tls: Option<Result<Vec<u8>, CertificateError>>,
    /// libpq's `channel_binding`.
    pub channel_binding: ChannelBindingMode,
}

/// libpq's `channel_binding`: whether SCRAM binds to the TLS channel (SCRAM-SHA-256-PLUS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelBindingMode {
    /// Never bind.
    Disable,
    /// Bind when the server offers -PLUS over TLS (libpq's default with TLS support).
    #[default]
    Prefer,
    /// Only a bound SCRAM exchange may authenticate (the server proves it holds the TLS
    /// certificate's key *and* knows the password).
    Require,
}

impl std::str::FromStr for ChannelBindingMode {
    type Err = String;

    /// `disable`, `prefer` or `require`.
    fn from_str(s: &str) -> Result<ChannelBindingMode, String> {
        match s {
            "disable" => Ok(ChannelBindingMode::Disable),
            "prefer" => Ok(ChannelBindingMode::Prefer),
            "require" => Ok(ChannelBindingMode::Require),
            _ => Err(format!("invalid channel_binding value: \"{s}\"")),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            password: None,
            require_auth: RequireAuth::default(),
            max_scram_iterations: DEFAULT_MAX_SCRAM_ITERATIONS,
            tls: None,
            channel_binding: ChannelBindingMode::Prefer,
        }
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("require_auth", &self.require_auth)
            .field("max_scram_iterations", &self.max_scram_iterations)
            .field("tls", &self.tls.is_some())
            .field("channel_binding", &self.channel_binding)
            .finish()
    }
}

/// BackendKeyData: what a CancelRequest must quote.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BackendKey {
    /// The backend's process id.
    pub pid: i32,
    /// The secret key (protocol 3.0: 4 bytes). Not shown by `Debug`.
    pub key: [u8; 4],
}

impl fmt::Debug for BackendKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendKey")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// The result of a successful handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Every ParameterStatus received (`server_version`, `TimeZone`, ...).
    pub parameters: HashMap<String, String>,
    /// BackendKeyData, if the server sent one (PostgreSQL always does; some proxies do not).
    pub backend_key: Option<BackendKey>,
    /// The status from the first ReadyForQuery.
    pub status: TransactionStatus,
}

/// What the caller must do after [`Handshake::handle`].
// Short-lived and returned by value once per message: boxing the big variants buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Step {
    /// Send whatever [`Handshake::poll_transmit`] gives, then read the next message.
    Continue,
    /// The server sent a notice; log it and continue.
    Notice(DbError),
    /// Derive (or fetch cached) SCRAM keys for this salt and iteration count, off the async
    /// executor, and pass them to [`Handshake::provide_scram_keys`].
    NeedScramKeys(KeyRequest),
    /// The session is ready.
    Done(Session),
}

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// The server broke the protocol.
    Protocol(WireError),
    /// The server sent an ErrorResponse (e.g. FATAL 28P01).
    Server(Box<DbError>),
    /// The client refused to authenticate (policy, missing password, unverifiable server).
    Auth(String),
    /// The server asked for something not implemented (Kerberos, GSSAPI, ...).
    Unsupported(String),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Protocol(e) => write!(f, "protocol error: {e}"),
            HandshakeError::Server(e) => write!(f, "server error: {e}"),
            HandshakeError::Auth(m) => write!(f, "authentication failed: {m}"),
            HandshakeError::Unsupported(m) => write!(f, "unsupported: {m}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

impl From<WireError> for HandshakeError {
    fn from(e: WireError) -> HandshakeError {
        HandshakeError::Protocol(e)
    }
}

enum State {
    AwaitingAuth,
    PasswordSent,
    SaslInitialSent(ScramClient),
    SaslNeedKeys(ScramClient),
    SaslFinalSent(ScramClient),
    /// SCRAM verified the server; `bound`: with channel binding.
    SaslVerified {
        bound: bool,
    },
    Authenticated,
    Done,
    Failed,
}

/// The client side of startup and authentication.
///
/// ```
/// use bytes::BytesMut;
/// use wirepool::wire::{AuthConfig, BackendMessage, Handshake, StartupParams, Step};
/// use wirepool::wire::{Authentication, TransactionStatus};
///
/// let params = StartupParams { user: "postgres".into(), ..Default::default() };
/// let mut hs = Handshake::new(&params, AuthConfig::default()).unwrap();
/// let mut out = BytesMut::new();
/// hs.poll_transmit(&mut out); // the StartupMessage
/// assert!(!out.is_empty());
/// let ok = BackendMessage::Authentication(Authentication::Ok);
/// assert!(matches!(hs.handle(ok), Ok(Step::Continue)));
/// let z = BackendMessage::ReadyForQuery(TransactionStatus::Idle);
/// assert!(matches!(hs.handle(z), Ok(Step::Done(_))));
/// ```
pub struct Handshake {
    state: State,
    out: BytesMut,
    user: String,
    auth: AuthConfig,
    scram_nonce: Option<String>,
    negotiated: bool,
    /// Whether any server message has been handled: before the first, bytes that do not decode
    /// mean the peer is not PostgreSQL at all.
    replied: bool,
    parameters: HashMap<String, String>,
    backend_key: Option<BackendKey>,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// Starts a handshake; the StartupMessage (protocol 3.0) is queued for
    /// [`poll_transmit`](Handshake::poll_transmit).
    ///
    /// # Errors
    /// [`HandshakeError::Protocol`] with [`WireError::EmbeddedNul`] or
    /// [`WireError::OutboundTooLong`] if the parameters cannot be encoded.
    pub fn new(params: &StartupParams, auth: AuthConfig) -> Result<Handshake, HandshakeError> {
        let mut pairs: Vec<(&str, &str)> = vec![("user", &params.user)];
        let optional = [
            ("database", &params.database),
            ("application_name", &params.application_name),
            ("options", &params.options),
        ];
        pairs.extend(
            optional
                .iter()
                .filter_map(|(k, v)| Some((*k, v.as_deref()?))),
        );
        pairs.push(("client_encoding", "UTF8"));
        pairs.extend(params.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut out = BytesMut::new();
        frontend::startup_message(pairs, &mut out)?;
        Ok(Handshake {
            state: State::AwaitingAuth,
            out,
            user: params.user.clone(),
            auth,
            scram_nonce: None,
            negotiated: false,
            replied: false,
            parameters: HashMap::new(),
            backend_key: None,
        })
    }

    /// Fixes the SCRAM client nonce instead of drawing it from the OS RNG. Only for replaying
    /// recorded exchanges in tests: a predictable nonce lets an attacker replay a login.
    pub fn with_scram_nonce(mut self, nonce: impl Into<String>) -> Handshake {
        self.scram_nonce = Some(nonce.into());
        self
    }

    /// Moves every byte waiting to be sent into `buf`. Call after `new` and after each
    /// [`handle`](Handshake::handle) / [`provide_scram_keys`](Handshake::provide_scram_keys).
    pub fn poll_transmit(&mut self, buf: &mut BytesMut) {
        buf.extend_from_slice(&self.out);
        self.out.clear();
    }

    /// Feeds one server message.
    ///
    /// # Errors
    /// A [`HandshakeError`]; the handshake is then over and the connection must be closed.
    pub fn handle(&mut self, msg: BackendMessage) -> Result<Step, HandshakeError> {
        self.replied = true;
        let state = std::mem::replace(&mut self.state, State::Failed);
        let (next, step) = self.step(state, msg)?;
        self.state = next;
        Ok(step)
    }

    /// Explains an error from decoding the server's reply. Before the first message, a type byte
    /// PostgreSQL never opens with (an HTTP server's `H`, say) means the peer speaks another
    /// protocol, which [`WireError::NotPostgres`] says; libpq's "expected authentication
    /// request from server". Any other error is returned as it is.
    ///
    /// ```
    /// use wirepool::wire::{AuthConfig, Handshake, StartupParams, WireError};
    /// let hs = Handshake::new(&StartupParams::default(), AuthConfig::default()).unwrap();
    /// let http = WireError::UnexpectedMessage { tag: b'H' };
    /// assert_eq!(hs.explain_decode_error(http), WireError::NotPostgres { first_byte: b'H' });
    /// ```
    pub fn explain_decode_error(&self, e: WireError) -> WireError {
        let first_byte = match e {
            WireError::UnexpectedMessage { tag }
            | WireError::UnknownMessage { tag }
            | WireError::MessageTooLong { tag, .. } => tag,
            _ => return e,
        };
        // The three messages a PostgreSQL server may open with (fe-connect.c,
        // CONNECTION_AWAITING_RESPONSE).
        if self.replied
            || matches!(
                first_byte,
                kind::AUTHENTICATION | kind::ERROR_RESPONSE | kind::NEGOTIATE_PROTOCOL_VERSION
            )
        {
            return e;
        }
        WireError::NotPostgres { first_byte }
    }

    /// Supplies the keys asked for by [`Step::NeedScramKeys`]; queues client-final-message.
    ///
    /// # Errors
    /// If no keys were requested, or SCRAM refuses them.
    pub fn provide_scram_keys(&mut self, keys: &ScramKeys) -> Result<(), HandshakeError> {
        let State::SaslNeedKeys(mut client) = std::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(WireError::Scram(ScramError::OutOfOrder).into());
        };
        let message = client.client_final_message(keys).map_err(scram_error)?;
        frontend::sasl_response(&message, &mut self.out)?;
        self.state = State::SaslFinalSent(client);
        Ok(())
    }

    fn step(&mut self, state: State, msg: BackendMessage) -> Result<(State, Step), HandshakeError> {
        let tag = msg.tag();
        let unexpected = HandshakeError::Protocol(WireError::UnexpectedMessage { tag });
        if matches!(state, State::Done | State::Failed) {
            return Err(unexpected);
        }
        match msg {
            BackendMessage::ErrorResponse(e) => Err(HandshakeError::Server(Box::new(e))),
            BackendMessage::NoticeResponse(n) => Ok((state, Step::Notice(n))),
            BackendMessage::NegotiateProtocolVersion { version, options } => {
                self.negotiate(version, &options)?;
                Ok((state, Step::Continue))
            }
            BackendMessage::Authentication(a) => self.authenticate(state, a),
            // Harmless at any point; PostgreSQL sends them between AuthenticationOk and Z.
            BackendMessage::ParameterStatus { name, value } => {
                self.parameters.insert(name, value);
                Ok((state, Step::Continue))
            }
            BackendMessage::BackendKeyData { pid, key }
                if matches!(state, State::Authenticated) =>
            {
                self.backend_key = Some(BackendKey { pid, key });
                Ok((state, Step::Continue))
            }
            BackendMessage::ReadyForQuery(status) if matches!(state, State::Authenticated) => {
                let session = Session {
                    parameters: std::mem::take(&mut self.parameters),
                    backend_key: self.backend_key,
                    status,
                };
                Ok((State::Done, Step::Done(session)))
            }
            _ => Err(unexpected),
        }
    }

    /// NegotiateProtocolVersion: we ask for 3.0 with no `_pq_` options, so the only answer we
    /// can accept is "3.0, nothing unrecognised", once (libpq rejects a duplicate).
    fn negotiate(&mut self, version: i32, options: &[String]) -> Result<(), WireError> {
        if std::mem::replace(&mut self.negotiated, true) {
            return Err(WireError::DuplicateNegotiateProtocolVersion);
        }
        if !options.is_empty() {
            return Err(WireError::UnrequestedProtocolOption);
        }
        if version != frontend::PROTOCOL_VERSION_3_0 {
            return Err(WireError::UnsupportedProtocolVersion(version));
        }
        Ok(())
    }

    fn authenticate(
        &mut self,
        state: State,
        a: Authentication,
    ) -> Result<(State, Step), HandshakeError> {
        let policy = &self.auth.require_auth;
        let check = |m| policy.check_request(m).map_err(HandshakeError::Auth);
        let unsupported = |what: &str| -> Result<(State, Step), HandshakeError> {
            Err(HandshakeError::Unsupported(format!(
                "{what} authentication is not supported"
            )))
        };
        match (state, a) {
            (State::AwaitingAuth, Authentication::Ok) => {
                policy.check_ok(false).map_err(HandshakeError::Auth)?;
                self.check_bound(false)?;
                Ok((State::Authenticated, Step::Continue))
            }
            (State::PasswordSent, Authentication::Ok) => {
                policy.check_ok(true).map_err(HandshakeError::Auth)?;
                self.check_bound(false)?;
                Ok((State::Authenticated, Step::Continue))
            }
            (State::SaslVerified { bound }, Authentication::Ok) => {
                policy.check_ok(true).map_err(HandshakeError::Auth)?;
                self.check_bound(bound)?;
                Ok((State::Authenticated, Step::Continue))
            }
            (State::AwaitingAuth, Authentication::CleartextPassword) => {
                check(AuthMethod::Password)?;
                self.check_not_sasl()?;
                let password = password(&self.auth)?;
                frontend::password_message(password, &mut self.out)?;
                Ok((State::PasswordSent, Step::Continue))
            }
            (State::AwaitingAuth, Authentication::Md5Password { salt }) => {
                check(AuthMethod::Md5)?;
                self.check_not_sasl()?;
                let hashed = md5_password(self.user.as_bytes(), password(&self.auth)?, salt);
                frontend::password_message(hashed.as_bytes(), &mut self.out)?;
                Ok((State::PasswordSent, Step::Continue))
            }
            (State::AwaitingAuth, Authentication::Sasl { mechanisms }) => {
                check(AuthMethod::ScramSha256)?;
                Ok((self.start_sasl(&mechanisms)?, Step::Continue))
            }
            (State::SaslInitialSent(mut client), Authentication::SaslContinue { data }) => {
                let max = self.auth.max_scram_iterations;
                let request = client
                    .handle_server_first(&data, max)
                    .map_err(scram_error)?;
                Ok((State::SaslNeedKeys(client), Step::NeedScramKeys(request)))
            }
            (State::SaslFinalSent(mut client), Authentication::SaslFinal { data }) => {
                client.handle_server_final(&data).map_err(scram_error)?;
                if !client.is_verified() {
                    return Err(scram_error(ScramError::InvalidServerSignature));
                }
                let bound = client.is_bound();
                Ok((State::SaslVerified { bound }, Step::Continue))
            }
            (State::SaslInitialSent(_) | State::SaslFinalSent(_), Authentication::Ok) => {
                Err(HandshakeError::Auth(
                    "server sent AuthenticationOk before completing SCRAM authentication \
                     (it never proved it knows the password)"
                        .into(),
                ))
            }
            (State::AwaitingAuth, Authentication::KerberosV5) => unsupported("Kerberos V5"),
            (State::AwaitingAuth, Authentication::ScmCredential) => unsupported("SCM credential"),
            (State::AwaitingAuth, Authentication::Gss) => {
                check(AuthMethod::Gss)?;
                self.check_not_sasl()?;
                unsupported("GSSAPI")
            }
            (State::AwaitingAuth, Authentication::Sspi) => {
                check(AuthMethod::Sspi)?;
                self.check_not_sasl()?;
                unsupported("SSPI")
            }
            (_, a) => Err(WireError::UnexpectedAuthRequest(auth_code(&a)).into()),
        }
    }

    /// `channel_binding=require` answers nothing but SASL (libpq `check_expected_areq`).
    fn check_not_sasl(&self) -> Result<(), HandshakeError> {
        if self.auth.channel_binding == ChannelBindingMode::Require {
            return Err(HandshakeError::Auth(
                "channel binding required but not supported by server's authentication request"
                    .into(),
            ));
        }
        Ok(())
    }

    /// `channel_binding=require` accepts AuthenticationOk only after a bound, verified exchange.
    fn check_bound(&self, bound: bool) -> Result<(), HandshakeError> {
        if self.auth.channel_binding == ChannelBindingMode::Require && !bound {
            return Err(HandshakeError::Auth(
                "channel binding required, but server authenticated client without channel \
                 binding"
                    .into(),
            ));
        }
        Ok(())
    }

    fn start_sasl(&mut self, mechanisms: &[String]) -> Result<State, HandshakeError> {
        let plus_offered = mechanisms.iter().any(|m| m == SCRAM_SHA_256_PLUS);
        let mode = self.auth.channel_binding;
        let binding =
            match (&self.auth.tls, plus_offered) {
                // libpq fe-auth.c: offering -PLUS where no channel can be bound smells of TLS
                // having been stripped between us and the server.
                (None, true) => return Err(HandshakeError::Auth(
                    "server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection"
                        .into(),
                )),
                (None, false) => ChannelBinding::None,
                (Some(_), _) if mode == ChannelBindingMode::Disable => ChannelBinding::None,
                (Some(Ok(data)), true) => ChannelBinding::TlsServerEndPoint(data.clone()),
                (Some(Err(e)), true) if mode == ChannelBindingMode::Require => {
                    return Err(HandshakeError::Auth(format!(
                        "channel binding is required, but cannot be used: {e}"
                    )))
                }
                // The server offered -PLUS and we cannot bind: `y` would read as a downgrade.
                (Some(Err(_)), true) => ChannelBinding::None,
                (Some(_), false) => ChannelBinding::NotOffered,
            };
        let mechanism = match binding {
            ChannelBinding::TlsServerEndPoint(_) => SCRAM_SHA_256_PLUS,
            _ if mode == ChannelBindingMode::Require => {
                return Err(HandshakeError::Auth(
                    "channel binding is required, but server did not offer an authentication \
                     method that supports channel binding"
                        .into(),
                ))
            }
            _ if mechanisms.iter().any(|m| m == SCRAM_SHA_256) => SCRAM_SHA_256,
            _ => {
                return Err(HandshakeError::Unsupported(format!(
                    "none of the server's SASL authentication mechanisms are supported: {}",
                    mechanisms.join(", ")
                )))
            }
        };
        password(&self.auth)?;
        let client = match &self.scram_nonce {
            Some(nonce) => ScramClient::with_nonce(nonce),
            None => ScramClient::new().map_err(scram_error)?,
        }
        .with_binding(binding);
        frontend::sasl_initial_response(mechanism, client.client_first_message(), &mut self.out)?;
        Ok(State::SaslInitialSent(client))
    }
}

/// The configured password, or libpq's "no password supplied" (before anything is sent).
fn password(auth: &AuthConfig) -> Result<&[u8], HandshakeError> {
    auth.password
        .as_deref()
        .ok_or_else(|| HandshakeError::Auth("no password supplied".into()))
}

/// A malformed SCRAM message is a protocol error; a failed verification, a server-reported
/// failure or an iteration count above our cap is an authentication failure.
fn scram_error(e: ScramError) -> HandshakeError {
    match e {
        ScramError::InvalidServerSignature
        | ScramError::ServerError
        | ScramError::IterationCountTooHigh => HandshakeError::Auth(e.to_string()),
        _ => HandshakeError::Protocol(WireError::Scram(e)),
    }
}

fn auth_code(a: &Authentication) -> u32 {
    match a {
        Authentication::Ok => 0,
        Authentication::KerberosV5 => 2,
        Authentication::CleartextPassword => 3,
        Authentication::Md5Password { .. } => 5,
        Authentication::ScmCredential => 6,
        Authentication::Gss => 7,
        Authentication::GssContinue { .. } => 8,
        Authentication::Sspi => 9,
        Authentication::Sasl { .. } => 10,
        Authentication::SaslContinue { .. } => 11,
        Authentication::SaslFinal { .. } => 12,
    }
}
