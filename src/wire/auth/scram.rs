//! The SCRAM-SHA-256 client exchange (RFC 5802, RFC 7677) in the form PostgreSQL speaks it: a
//! state machine that is asked for the client's messages and fed the server's.
//!
//! ```text
//!  ScramClient::new ──client_first_message──► SASLInitialResponse
//!  AuthenticationSASLContinue ──handle_server_first──► KeyRequest { salt, iterations }
//!        (caller runs ScramKeys::derive off the executor, or takes cached keys)
//!  ScramKeys ──client_final_message──► SASLResponse
//!  AuthenticationSASLFinal ──handle_server_final──► Ok(()): only now may AuthenticationOk count
//! ```
//!
//! Invariants:
//! - Total: any bytes, any call order. Peer input gives a typed [`ScramError`]; a call in the wrong
//!   state gives [`ScramError::OutOfOrder`]; nothing panics.
//! - Any error poisons the exchange: every later step returns `OutOfOrder`, so a failed
//!   verification can never be retried into success.
//! - [`ScramClient::is_verified`] is true only after the server proved it knows the password: its
//!   ServerSignature matched ours, compared in constant time.
//! - Secrets (keys, proof, expected signature) never appear in `Debug`.
//!
//! - The gs2 header (RFC 5802 §7) is one of three, chosen by the caller ([`ChannelBinding`]):
//!   `p=tls-server-end-point,,` for SCRAM-SHA-256-PLUS, `y,,` (the client could bind, the server
//!   offered no -PLUS), `n,,` (no binding). client-final's `c=` is the base64 of the same header,
//!   followed by the channel binding data for `p=`: the flag the server sees twice never differs.
//!   PostgreSQL accepts `y` only when it did not offer -PLUS (a downgrade check), so
//!   `wire::startup` sends `y` only then.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::digest::CtOutput;
use hmac::Hmac;
use sha2::Sha256;

mod keys;
mod parse;

pub use keys::{saslprep_or_raw, ScramKeys};

/// The SASL mechanism name of plain SCRAM-SHA-256, as listed in AuthenticationSASL (`R 10`).
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// The SASL mechanism name of SCRAM-SHA-256 with `tls-server-end-point` channel binding. A server
/// offers it only over TLS; offering it on a plain connection smells of TLS stripping (libpq).
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// The default cap on the server's `i=`: a hostile server could ask for 2^31 PBKDF2 iterations
/// to burn the client's CPU. PostgreSQL's default is 4096 (`scram_iterations`, PG16+); OWASP
/// recommends 600 000 for PBKDF2-HMAC-SHA256, so a hardened server may use that; 1 000 000 bounds
/// the cost to well under a second of one core in an optimized build.
pub const DEFAULT_MAX_SCRAM_ITERATIONS: u32 = 1_000_000;

/// What the client says about channel binding in its gs2 header (RFC 5802 §7; no authzid:
/// PostgreSQL rejects one with 0A000).
#[derive(Clone, PartialEq, Eq)]
pub enum ChannelBinding {
    /// `n,,`: the client does not bind (no TLS, or `channel_binding=disable`).
    None,
    /// `y,,`: the client could bind but the server did not offer SCRAM-SHA-256-PLUS.
    NotOffered,
    /// `p=tls-server-end-point,,`: SCRAM-SHA-256-PLUS, with the hash of the server certificate
    /// (RFC 5929 §4.1; see `wire::tls::tls_server_end_point`).
    TlsServerEndPoint(Vec<u8>),
}

impl ChannelBinding {
    fn gs2_header(&self) -> &'static str {
        match self {
            ChannelBinding::None => "n,,",
            ChannelBinding::NotOffered => "y,,",
            ChannelBinding::TlsServerEndPoint(_) => "p=tls-server-end-point,,",
        }
    }

    /// `c=`'s value: base64(gs2 header + channel binding data).
    fn c_attribute(&self) -> String {
        let mut input = self.gs2_header().as_bytes().to_vec();
        if let ChannelBinding::TlsServerEndPoint(data) = self {
            input.extend_from_slice(data);
        }
        STANDARD.encode(input)
    }
}

impl fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.gs2_header())
    }
}

/// Random bytes in our nonce. 18 bytes of base64 are exactly 24 characters, all `printable`
/// (the base64 alphabet has no `,`): libpq's choice, 144 bits of entropy.
const NONCE_RANDOM_BYTES: usize = 18;

/// Why a SCRAM exchange failed. Small and `Copy`; the messages never include secrets or the peer's
/// bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScramError {
    /// The server's message is not UTF-8.
    NotUtf8,
    /// The server's message is empty.
    Empty,
    /// The server's message contains a NUL byte (libpq: `inputlen != strlen`).
    EmbeddedNul,
    /// server-first-message does not start with `r=`.
    MissingNonce,
    /// The server's nonce has characters outside RFC 5802 `printable`.
    InvalidNonce,
    /// The server's nonce does not start with ours, or adds nothing to it.
    NonceMismatch,
    /// server-first-message has no `s=` after the nonce.
    MissingSalt,
    /// A salt or signature is not valid base64.
    InvalidBase64,
    /// server-first-message has no `i=` after the salt.
    MissingIterations,
    /// `i=` is not a positive decimal number (0, negative, empty, signed, leading zero, ...).
    InvalidIterationCount,
    /// `i=` is above the caller's cap (see [`DEFAULT_MAX_SCRAM_ITERATIONS`]).
    IterationCountTooHigh,
    /// server-first-message starts with `m=`, a mandatory extension we cannot honour (RFC 5802 §5.1).
    MandatoryExtension,
    /// server-final-message starts with neither `v=` nor `e=`.
    UnexpectedAttribute,
    /// Attributes or bytes after the last expected one (unknown extensions included).
    TrailingData,
    /// server-final-message is `e=...`: the server reports a failed exchange.
    ServerError,
    /// `v=` is not 32 bytes or not the ServerSignature we expect: the server does not know the
    /// password (or a man in the middle answered).
    InvalidServerSignature,
    /// A method was called in the wrong state, or after the exchange had already failed.
    OutOfOrder,
    /// The operating system's random number generator failed while making the nonce.
    NonceGeneration,
}

impl fmt::Display for ScramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScramError::NotUtf8 => "invalid SCRAM message (not UTF-8)",
            ScramError::Empty => "invalid SCRAM message (empty)",
            ScramError::EmbeddedNul => "invalid SCRAM message (embedded NUL byte)",
            ScramError::MissingNonce => "invalid SCRAM response (missing nonce)",
            ScramError::InvalidNonce => "invalid SCRAM response (nonce has unprintable characters)",
            ScramError::NonceMismatch => "invalid SCRAM response (nonce mismatch)",
            ScramError::MissingSalt => "invalid SCRAM response (missing salt)",
            ScramError::InvalidBase64 => "invalid SCRAM response (invalid base64)",
            ScramError::MissingIterations => "invalid SCRAM response (missing iteration count)",
            ScramError::InvalidIterationCount => "invalid SCRAM response (invalid iteration count)",
            ScramError::IterationCountTooHigh => {
                "SCRAM iteration count is above the client's cap (Config::max_scram_iterations)"
            }
            ScramError::MandatoryExtension => "SCRAM server requires an unsupported extension",
            ScramError::UnexpectedAttribute => "invalid SCRAM response (unexpected attribute)",
            ScramError::TrailingData => "invalid SCRAM response (unexpected trailing data)",
            ScramError::ServerError => "error received from server in SCRAM exchange",
            ScramError::InvalidServerSignature => "invalid SCRAM server signature",
            ScramError::OutOfOrder => "SCRAM exchange step out of order",
            ScramError::NonceGeneration => "could not generate a SCRAM nonce",
        })
    }
}

impl std::error::Error for ScramError {}

/// What [`ScramKeys::derive`] needs from server-first-message. Key a cache of [`ScramKeys`] by it
/// (with the password) to skip PBKDF2 on reconnects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRequest {
    /// The decoded `s=`.
    pub salt: Vec<u8>,
    /// The `i=`, already checked to be in `1..=max_iterations`.
    pub iterations: u32,
}

/// Where the exchange is. Each state holds exactly what the next step needs.
enum State {
    AwaitingServerFirst,
    /// Parsed server-first: AuthMessage's middle part and the combined nonce to echo.
    ServerFirstReceived {
        server_first: String,
        nonce: String,
    },
    /// client-final sent; the ServerSignature the server must prove.
    AwaitingServerFinal {
        expected: [u8; 32],
    },
    Verified,
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::AwaitingServerFirst => "AwaitingServerFirst",
            State::ServerFirstReceived { .. } => "ServerFirstReceived",
            State::AwaitingServerFinal { .. } => "AwaitingServerFinal",
            State::Verified => "Verified",
            State::Failed => "Failed",
        }
    }
}

/// One SCRAM-SHA-256 exchange, PostgreSQL form: gs2 header `n,,` and an empty username `n=` (the
/// server uses the startup `user` and ignores this one).
///
/// Replaying the psql exchange recorded in rust-postgres' test suite:
///
/// ```
/// use wirepool::wire::auth::{ScramClient, ScramKeys, DEFAULT_MAX_SCRAM_ITERATIONS};
///
/// let mut scram = ScramClient::with_nonce("9IZ2O01zb9IgiIZ1WJ/zgpJB");
/// assert_eq!(scram.client_first_message(), b"n,,n=,r=9IZ2O01zb9IgiIZ1WJ/zgpJB");
///
/// let server_first = b"r=9IZ2O01zb9IgiIZ1WJ/zgpJBjx/oIRLs02gGSHcw1KEty3eY,s=fs3IXBy7U7+IvVjZ,i=4096";
/// let request = scram.handle_server_first(server_first, DEFAULT_MAX_SCRAM_ITERATIONS)?;
/// let keys = ScramKeys::derive(b"foobar", &request.salt, request.iterations);
///
/// let client_final = scram.client_final_message(&keys)?;
/// assert!(client_final.starts_with(b"c=biws,r=9IZ2O01zb9IgiIZ1WJ/zgpJBjx/oIRLs02gGSHcw1KEty3eY,p="));
///
/// scram.handle_server_final(b"v=U+ppxD5XUKtradnv8e2MkeupiA8FU87Sg8CXzXHDAzw=")?;
/// assert!(scram.is_verified());
/// # Ok::<(), wirepool::wire::auth::ScramError>(())
/// ```
pub struct ScramClient {
    /// `n,,n=,r=<nonce>`: sent as is, and (without the gs2 header) the start of AuthMessage.
    client_first: String,
    client_first_bare: String,
    client_nonce: String,
    binding: ChannelBinding,
    state: State,
}

impl ScramClient {
    /// Starts an exchange with a fresh 24-character nonce from the OS CSPRNG (18 random bytes in
    /// base64, as libpq does).
    ///
    /// # Errors
    ///
    /// [`ScramError::NonceGeneration`] if the operating system's random source fails.
    pub fn new() -> Result<ScramClient, ScramError> {
        let mut random = [0u8; NONCE_RANDOM_BYTES];
        getrandom::getrandom(&mut random).map_err(|_| ScramError::NonceGeneration)?;
        Ok(ScramClient::with_nonce(&STANDARD.encode(random)))
    }

    /// Starts an exchange with an injected nonce, to replay a recorded transcript byte for byte, in
    /// tests and in fuzzing. Never use a predictable nonce against a real server.
    ///
    /// The nonce should be RFC 5802 `printable` (visible ASCII except `,`); it is sent as given, and
    /// a server echoing anything else is rejected with [`ScramError::InvalidNonce`].
    pub fn with_nonce(nonce: &str) -> ScramClient {
        ScramClient::with_nonce_and_user("", nonce)
    }

    /// Like [`with_nonce`](Self::with_nonce) with a SCRAM username (`n=`), escaped per RFC 5802
    /// (`,` → `=2C`, `=` → `=3D`). PostgreSQL ignores it; this exists to reproduce RFC 7677 §3,
    /// whose vector uses `n=user`.
    #[doc(hidden)]
    pub fn with_nonce_and_user(user: &str, nonce: &str) -> ScramClient {
        let mut client_first_bare = String::from("n=");
        for c in user.chars() {
            match c {
                ',' => client_first_bare.push_str("=2C"),
                '=' => client_first_bare.push_str("=3D"),
                c => client_first_bare.push(c),
            }
        }
        client_first_bare.push_str(",r=");
        client_first_bare.push_str(nonce);
        ScramClient {
            client_first: format!("n,,{client_first_bare}"),
            client_first_bare,
            client_nonce: nonce.to_owned(),
            binding: ChannelBinding::None,
            state: State::AwaitingServerFirst,
        }
    }

    /// Sets the gs2 header's channel binding (the default is [`ChannelBinding::None`]). Call
    /// before [`client_first_message`](Self::client_first_message): it changes that message.
    ///
    /// ```
    /// use wirepool::wire::auth::{ChannelBinding, ScramClient};
    /// let scram = ScramClient::with_nonce("N").with_binding(ChannelBinding::NotOffered);
    /// assert_eq!(scram.client_first_message(), b"y,,n=,r=N");
    /// ```
    pub fn with_binding(mut self, binding: ChannelBinding) -> ScramClient {
        self.client_first = format!("{}{}", binding.gs2_header(), self.client_first_bare);
        self.binding = binding;
        self
    }

    /// Whether the exchange binds to the TLS channel (SCRAM-SHA-256-PLUS).
    pub fn is_bound(&self) -> bool {
        matches!(self.binding, ChannelBinding::TlsServerEndPoint(_))
    }

    /// client-first-message, e.g. `n,,n=,r=<nonce>`: the data of SASLInitialResponse. Available in
    /// every state (it never changes).
    pub fn client_first_message(&self) -> &[u8] {
        self.client_first.as_bytes()
    }

    /// Parses and validates server-first-message (the data of AuthenticationSASLContinue) and
    /// returns what PBKDF2 needs.
    ///
    /// Checks: non-empty, no NUL, UTF-8; `r=` first (a leading `m=` fails) with a `printable` nonce
    /// that starts with ours and is strictly longer; `s=` valid base64; `i=` a positive number no
    /// greater than `max_iterations`; nothing after `i=`.
    ///
    /// # Errors
    ///
    /// The [`ScramError`] naming the first failed check, or [`ScramError::OutOfOrder`] if this is
    /// not the first server message. Any error ends the exchange.
    pub fn handle_server_first(
        &mut self,
        msg: &[u8],
        max_iterations: u32,
    ) -> Result<KeyRequest, ScramError> {
        if !matches!(self.state, State::AwaitingServerFirst) {
            return self.fail(ScramError::OutOfOrder);
        }
        match parse::server_first(msg, &self.client_nonce, max_iterations) {
            Ok(first) => {
                self.state = State::ServerFirstReceived {
                    server_first: first.text.to_owned(),
                    nonce: first.nonce.to_owned(),
                };
                Ok(KeyRequest {
                    salt: first.salt,
                    iterations: first.iterations,
                })
            }
            Err(e) => self.fail(e),
        }
    }

    /// client-final-message `c=biws,r=<full nonce>,p=<base64 ClientProof>` (`c=` as the channel
    /// binding says: `biws` is base64 of `n,,`): the data of
    /// SASLResponse. Remembers the ServerSignature the server must answer with.
    ///
    /// `keys` must come from [`ScramKeys::derive`] with the password and the [`KeyRequest`]
    /// returned by [`handle_server_first`](Self::handle_server_first); other keys produce a proof
    /// the server rejects (28P01).
    ///
    /// # Errors
    ///
    /// [`ScramError::OutOfOrder`] unless server-first was just accepted.
    pub fn client_final_message(&mut self, keys: &ScramKeys) -> Result<Vec<u8>, ScramError> {
        let State::ServerFirstReceived {
            server_first,
            nonce,
        } = &self.state
        else {
            return self.fail(ScramError::OutOfOrder);
        };
        let without_proof = format!("c={},r={nonce}", self.binding.c_attribute());
        // RFC 5802 §3: AuthMessage = client-first-message-bare "," server-first-message ","
        // client-final-message-without-proof.
        let auth_message: [&[u8]; 5] = [
            self.client_first_bare.as_bytes(),
            b",",
            server_first.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let proof = keys.client_proof(&auth_message);
        let expected = keys.server_signature(&auth_message);
        let message = format!("{without_proof},p={}", STANDARD.encode(proof));
        self.state = State::AwaitingServerFinal { expected };
        Ok(message.into_bytes())
    }

    /// Verifies server-final-message (the data of AuthenticationSASLFinal): `v=<base64>` must be
    /// the ServerSignature we computed, compared in constant time. Only after `Ok(())` may
    /// AuthenticationOk be accepted; an AuthenticationOk before it means the server never proved
    /// it knows the password (ponylang/postgres#204).
    ///
    /// # Errors
    ///
    /// [`ScramError::ServerError`] for `e=...`; [`ScramError::InvalidServerSignature`] for a wrong
    /// or wrong-length signature; a parse error for anything else malformed;
    /// [`ScramError::OutOfOrder`] unless client-final was just produced. Any error ends the
    /// exchange.
    pub fn handle_server_final(&mut self, msg: &[u8]) -> Result<(), ScramError> {
        let State::AwaitingServerFinal { expected } = &self.state else {
            return self.fail(ScramError::OutOfOrder);
        };
        let expected = CtOutput::<Hmac<Sha256>>::new((*expected).into());
        match parse::server_final(msg) {
            // `CtOutput`'s `==` is the constant-time comparison `Mac::verify_slice` uses.
            Ok(received) if CtOutput::new(received.into()) == expected => {
                self.state = State::Verified;
                Ok(())
            }
            Ok(_) => self.fail(ScramError::InvalidServerSignature),
            Err(e) => self.fail(e),
        }
    }

    /// True once [`handle_server_final`](Self::handle_server_final) has verified the server's
    /// signature.
    pub fn is_verified(&self) -> bool {
        matches!(self.state, State::Verified)
    }

    fn fail<T>(&mut self, error: ScramError) -> Result<T, ScramError> {
        self.state = State::Failed;
        Err(error)
    }
}

impl fmt::Debug for ScramClient {
    /// Shows the state only: the nonce is public, but the expected signature is not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_nonce_is_24_printable_chars() {
        let scram = ScramClient::new().unwrap();
        let nonce = scram.client_nonce.as_bytes();
        assert_eq!(nonce.len(), 24);
        assert!(nonce.iter().all(|&b| parse::is_printable(b)));
        assert_ne!(scram.client_nonce, ScramClient::new().unwrap().client_nonce);
    }

    #[test]
    fn the_gs2_flag_is_the_same_in_client_first_and_c() {
        let data = vec![0xab; 32];
        for (binding, header) in [
            (ChannelBinding::None, "n,,"),
            (ChannelBinding::NotOffered, "y,,"),
            (
                ChannelBinding::TlsServerEndPoint(data.clone()),
                "p=tls-server-end-point,,",
            ),
        ] {
            let bound = matches!(binding, ChannelBinding::TlsServerEndPoint(_));
            let mut scram = ScramClient::with_nonce("abc").with_binding(binding);
            assert!(scram.client_first_message().starts_with(header.as_bytes()));
            assert_eq!(scram.is_bound(), bound);
            scram
                .handle_server_first(b"r=abcdef,s=c2FsdA==,i=1", 1)
                .unwrap();
            let keys = ScramKeys::derive(b"pw", b"salt", 1);
            let fin = String::from_utf8(scram.client_final_message(&keys).unwrap()).unwrap();
            let c = fin.strip_prefix("c=").unwrap().split(',').next().unwrap();
            let mut expected = header.as_bytes().to_vec();
            if bound {
                expected.extend(&data);
            }
            assert_eq!(STANDARD.decode(c).unwrap(), expected);
        }
        // A bound exchange's `c=` starts with base64 of the gs2 header `p=tls-server-end-point,,`
        // (RFC 5802 §7, RFC 5929 §4).
        let p = ChannelBinding::TlsServerEndPoint(Vec::new()).c_attribute();
        assert_eq!(p, "cD10bHMtc2VydmVyLWVuZC1wb2ludCws");
    }

    #[test]
    fn username_is_escaped() {
        let scram = ScramClient::with_nonce_and_user("a,b=c", "N");
        assert_eq!(scram.client_first_message(), b"n,,n=a=2Cb=3Dc,r=N");
    }

    #[test]
    fn debug_shows_state_not_secrets() {
        let mut scram = ScramClient::with_nonce("abc");
        scram
            .handle_server_first(b"r=abcdef,s=c2FsdA==,i=1", 1)
            .unwrap();
        let keys = ScramKeys::derive(b"pw", b"salt", 1);
        scram.client_final_message(&keys).unwrap();
        assert_eq!(
            format!("{scram:?}"),
            "ScramClient { state: \"AwaitingServerFinal\", .. }"
        );
    }
}
