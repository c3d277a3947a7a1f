//! Fuzz body `handshake`: a client configuration and an arbitrary stream of server messages
//! through the startup state machine ([`Handshake`]), with an independent model of what the
//! client may send.
//!
//! Input: `[options] [channel binding data] server bytes`, the server bytes decoded by the
//! streaming [`Decoder`] as a connection would.
//! - `options % 8` picks `require_auth` from [`POLICIES`];
//! - `options & 8` set: no password configured (else the password is `password`);
//! - `options & 16` set: the SCRAM iteration cap is 4095 (below PostgreSQL's 4096), else the
//!   default;
//! - `options >> 5` picks the channel from [`CHANNELS`]: plaintext, or TLS whose server
//!   certificate gives channel binding data or has no digest (Ed25519), with a
//!   `channel_binding` mode. For a channel with data, the byte after `options` is its length
//!   `n` and the next `n` bytes are the data (`tls-server-end-point`'s hash of the certificate,
//!   which the server chooses); the server bytes follow.
//!
//! The SCRAM nonce is fixed (the psql vector's), so recorded exchanges replay to the end.
//!
//! Invariants:
//! - a PasswordMessage, SASLInitialResponse or SASLResponse goes out only in direct reply to
//!   AuthenticationCleartextPassword, MD5Password, SASL or SASLContinue, when `require_auth`
//!   allows that method and a password is configured, and it holds exactly what that method
//!   computes; nothing else is ever sent after the StartupMessage. A first authentication
//!   request the policy (or `channel_binding=require`, for a password request) forbids is an
//!   `Auth` error (a later one may be refused as out of place instead);
//! - the SASLInitialResponse names the mechanism and gs2 header [`expected_sasl`] derives from
//!   the channel and the offered mechanisms (libpq fe-auth.c `pg_SASL_init`): SCRAM-SHA-256-PLUS
//!   with `p=tls-server-end-point` whenever TLS gives data and -PLUS is offered (unless
//!   `disable`), `y` only over TLS when -PLUS is not offered, `n` otherwise; -PLUS offered over
//!   plaintext, and anything unbound under `require`, is refused before any reply;
//!   SASLResponse's `c=` is the base64 of that gs2 header and, bound, the data;
//! - AuthenticationSASLFinal is accepted only with the exact ServerSignature computed here over
//!   the AuthMessage with that `c=`, and AuthenticationOk after a started SCRAM exchange only
//!   once it was accepted; AuthenticationOk with no completed exchange only when the policy does
//!   not demand one; under `channel_binding=require`, only after a verified bound exchange, and
//!   no password is ever sent;
//! - the machine ends in `Done` with the session the messages described, or in a typed error
//!   after which every call fails and nothing more is sent.

use std::collections::HashMap;

use ::md5::{Digest, Md5};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::BytesMut;

use super::scram::{known_salted_password, server_signature};
use crate::wire::auth::{ScramKeys, DEFAULT_MAX_SCRAM_ITERATIONS};
use crate::wire::tls::CertificateError;
use crate::wire::{
    AuthConfig, Authentication, BackendMessage, ChannelBindingMode, Decoder, Handshake,
    HandshakeError, StartupParams, Step,
};

const NONCE: &str = "9IZ2O01zb9IgiIZ1WJ/zgpJB";
const USER: &str = "fuzz_user";
const PASSWORD: &[u8] = b"password";

/// `require_auth` settings and what each allows: (spec, password, md5, scram, auth required).
const POLICIES: [(&str, bool, bool, bool, bool); 8] = [
    ("", true, true, true, false),
    ("password", true, false, false, true),
    ("md5", false, true, false, true),
    ("scram-sha-256", false, false, true, true),
    ("none", false, false, false, false),
    ("!password", false, true, true, false),
    ("md5,scram-sha-256,none", false, true, true, false),
    ("!none", true, true, true, true),
];

/// Where the handshake runs: plaintext, or TLS with channel binding data (`Some`, read from the
/// input) or a certificate without a digest (`None`); and `channel_binding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Plain(ChannelBindingMode),
    Tls(ChannelBindingMode, Cert),
}

/// Whether a TLS channel's certificate gives binding data (read from the input) or has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cert {
    Data,
    NoDigest,
}

/// `options >> 5`: 0 is plaintext with the default `prefer`, as inputs written before TLS have.
const CHANNELS: [Channel; 8] = [
    Channel::Plain(ChannelBindingMode::Prefer),
    Channel::Plain(ChannelBindingMode::Require),
    Channel::Tls(ChannelBindingMode::Prefer, Cert::Data),
    Channel::Tls(ChannelBindingMode::Require, Cert::Data),
    Channel::Tls(ChannelBindingMode::Disable, Cert::Data),
    Channel::Tls(ChannelBindingMode::Prefer, Cert::NoDigest),
    Channel::Tls(ChannelBindingMode::Require, Cert::NoDigest),
    Channel::Plain(ChannelBindingMode::Disable),
];

impl Channel {
    fn require(self) -> bool {
        matches!(
            self,
            Channel::Plain(ChannelBindingMode::Require)
                | Channel::Tls(ChannelBindingMode::Require, _)
        )
    }
}

const PLUS: &str = "SCRAM-SHA-256-PLUS";
const PLAIN: &str = "SCRAM-SHA-256";

/// The model of libpq's `pg_SASL_init` (fe-auth.c) with wirepool's one difference (a
/// certificate without a digest under `prefer` goes unbound with `n`): the mechanism and gs2
/// header the client must answer a SASL request with, or `None` when it must refuse it.
fn expected_sasl(channel: Channel, mechanisms: &[String]) -> Option<(&'static str, &'static str)> {
    let plus = mechanisms.iter().any(|m| m == PLUS);
    let plain = mechanisms.iter().any(|m| m == PLAIN);
    let unbound = |gs2| plain.then_some((PLAIN, gs2));
    match channel {
        // -PLUS over plaintext: TLS was stripped on the way.
        Channel::Plain(_) if plus => None,
        Channel::Plain(ChannelBindingMode::Require) => None,
        Channel::Plain(_) | Channel::Tls(ChannelBindingMode::Disable, _) => unbound("n,,"),
        Channel::Tls(_, Cert::Data) if plus => Some((PLUS, "p=tls-server-end-point,,")),
        Channel::Tls(ChannelBindingMode::Require, _) => None,
        Channel::Tls(_, Cert::NoDigest) if plus => unbound("n,,"),
        Channel::Tls(..) => unbound("y,,"),
    }
}

/// What the model knows of the exchange so far.
#[derive(Default)]
struct Model {
    /// server-first, once SCRAM got that far.
    server_first: Option<Vec<u8>>,
    /// client-final's `c=` value: base64 of the gs2 header (and the data, bound).
    c: String,
    bound: bool,
    scram_started: bool,
    scram_verified: bool,
    password_sent: bool,
    /// Some Authentication message was accepted: a later request is out of place, and may be
    /// refused as a protocol error rather than by the policy.
    auth_seen: bool,
    authenticated: bool,
    parameters: HashMap<String, String>,
    over: bool,
}

/// See the module header for the input layout and the invariants.
pub fn handshake(data: &[u8]) {
    let _ = run(data);
}

/// How a run ended, so the unit tests can check the recorded seeds reach the end they should.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Done,
    Failed,
    /// The input ran out (or stopped decoding) before either.
    Unfinished,
}

fn run(data: &[u8]) -> End {
    let (options, stream) = data.split_first().map_or((0, &[][..]), |(o, s)| (*o, s));
    let (spec, allow_password, allow_md5, allow_scram, auth_required) =
        POLICIES[usize::from(options % 8)];
    let password = (options & 8 == 0).then_some(PASSWORD);
    let channel = CHANNELS[usize::from(options >> 5)];
    let (tls, mode, stream) = match channel {
        Channel::Plain(mode) => (None, mode, stream),
        Channel::Tls(mode, Cert::NoDigest) => (Some(Err(CertificateError::NoDigest)), mode, stream),
        Channel::Tls(mode, Cert::Data) => {
            let (n, rest) = stream.split_first().map_or((0, &[][..]), |(n, r)| (*n, r));
            let (data, rest) = rest.split_at(usize::from(n).min(rest.len()));
            (Some(Ok(data.to_vec())), mode, rest)
        }
    };
    let binding_data = match &tls {
        Some(Ok(data)) => data.clone(),
        _ => Vec::new(),
    };
    let auth = AuthConfig {
        password: password.map(<[u8]>::to_vec),
        require_auth: spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}")),
        max_scram_iterations: if options & 16 == 0 {
            DEFAULT_MAX_SCRAM_ITERATIONS
        } else {
            4095
        },
        tls,
        channel_binding: mode,
    };
    let params = StartupParams {
        user: USER.into(),
        database: Some("postgres".into()),
        ..StartupParams::default()
    };
    let mut hs = match Handshake::new(&params, auth) {
        Ok(hs) => hs.with_scram_nonce(NONCE),
        Err(e) => panic!("the StartupMessage of fixed parameters fails: {e}"),
    };
    let mut sent = BytesMut::new();
    hs.poll_transmit(&mut sent);
    assert_eq!(
        sent.get(4..8),
        Some(&[0, 3, 0, 0][..]),
        "a protocol 3.0 StartupMessage"
    );

    let mut decoder = Decoder::new();
    let mut buf = BytesMut::from(stream);
    let mut model = Model::default();
    let mut end = End::Unfinished;
    // A decode error or the end of the input ends the connection; either is a clean end.
    while let Ok(Some(msg)) = decoder.decode(&mut buf) {
        let request = msg.clone();
        let mut result = hs.handle(msg);
        if let Ok(Step::NeedScramKeys(req)) = &result {
            let salted = known_salted_password(&req.salt, req.iterations)
                .unwrap_or_else(|| sha256_pair(&req.salt, &req.iterations.to_be_bytes()));
            result = hs
                .provide_scram_keys(&ScramKeys::from_salted_password(&salted))
                .map(|()| Step::Continue);
        }
        sent.clear();
        hs.poll_transmit(&mut sent);
        if model.over {
            assert!(result.is_err(), "a call after the end succeeded");
            assert!(sent.is_empty(), "bytes sent after the end");
            continue;
        }
        let Ok(step) = result else {
            assert!(sent.is_empty(), "bytes queued by a failed step");
            if let BackendMessage::Authentication(a) = &request {
                let forbidden = match a {
                    Authentication::CleartextPassword => !allow_password || channel.require(),
                    Authentication::Md5Password { .. } => !allow_md5 || channel.require(),
                    Authentication::Sasl { .. } => !allow_scram,
                    _ => false,
                };
                if forbidden && !model.auth_seen {
                    assert!(matches!(result, Err(HandshakeError::Auth(_))), "{result:?}");
                }
            }
            model.over = true;
            end = End::Failed;
            continue;
        };
        let password = password.unwrap_or_default();
        model.auth_seen |= matches!(request, BackendMessage::Authentication(_));
        match (&request, sent.is_empty()) {
            (BackendMessage::Authentication(Authentication::CleartextPassword), false) => {
                assert!(
                    allow_password,
                    "cleartext password sent against require_auth={spec}"
                );
                assert!(
                    !channel.require(),
                    "password sent under channel_binding=require"
                );
                assert_eq!(body(&sent), [password, b"\0"].concat());
                model.password_sent = true;
            }
            (BackendMessage::Authentication(Authentication::Md5Password { salt }), false) => {
                assert!(allow_md5, "md5 password sent against require_auth={spec}");
                assert!(!channel.require(), "md5 sent under channel_binding=require");
                let inner = hex(&Md5::digest([password, USER.as_bytes()].concat()));
                let outer = hex(&Md5::digest([inner.as_bytes(), salt].concat()));
                assert_eq!(body(&sent), format!("md5{outer}\0").as_bytes());
                model.password_sent = true;
            }
            (BackendMessage::Authentication(Authentication::Sasl { mechanisms }), false) => {
                assert!(allow_scram, "SCRAM started against require_auth={spec}");
                let Some((mechanism, gs2)) = expected_sasl(channel, mechanisms) else {
                    panic!("SCRAM started over {channel:?} offering {mechanisms:?}");
                };
                let first = format!("{gs2}n=,r={NONCE}");
                let want = [
                    mechanism.as_bytes(),
                    b"\0",
                    &(first.len() as i32).to_be_bytes()[..],
                ]
                .concat();
                assert_eq!(body(&sent), [&want[..], first.as_bytes()].concat());
                model.bound = mechanism == PLUS;
                let bound_data = if model.bound { &binding_data[..] } else { &[] };
                model.c = STANDARD.encode([gs2.as_bytes(), bound_data].concat());
                model.scram_started = true;
            }
            (BackendMessage::Authentication(Authentication::SaslContinue { data }), false) => {
                assert!(model.scram_started && model.server_first.is_none());
                let c = &model.c;
                assert!(body(&sent).starts_with(format!("c={c},r={NONCE}").as_bytes()));
                model.server_first = Some(data.to_vec());
            }
            (BackendMessage::Authentication(Authentication::SaslFinal { data }), true) => {
                assert!(!model.scram_verified, "a second SASLFinal accepted");
                let server_first = model
                    .server_first
                    .take()
                    .expect("SASLFinal before SASLContinue");
                let salted = salted_for(&server_first);
                let nonce = server_first
                    .split(|&b| b == b',')
                    .next()
                    .unwrap_or_default();
                let auth_message = [
                    format!("n=,r={NONCE},").as_bytes(),
                    &server_first,
                    format!(",c={},", model.c).as_bytes(),
                    nonce,
                ]
                .concat();
                let genuine = format!(
                    "v={}",
                    STANDARD.encode(server_signature(&salted, &auth_message))
                );
                assert_eq!(
                    &data[..],
                    genuine.as_bytes(),
                    "SASLFinal accepted without the signature"
                );
                model.scram_verified = true;
            }
            (BackendMessage::Authentication(Authentication::Ok), true) => {
                assert!(!model.authenticated, "a second AuthenticationOk accepted");
                assert!(
                    !model.scram_started || model.scram_verified,
                    "Ok before SCRAM was verified"
                );
                let completed = model.password_sent || model.scram_verified;
                assert!(
                    completed || !auth_required,
                    "Ok without the required authentication"
                );
                assert!(
                    !channel.require() || (model.bound && model.scram_verified),
                    "Ok without a verified bound exchange under channel_binding=require"
                );
                model.authenticated = true;
            }
            (BackendMessage::ParameterStatus { name, value }, true) => {
                model.parameters.insert(name.clone(), value.clone());
            }
            (BackendMessage::ReadyForQuery(status), true) => {
                let Step::Done(session) = step else {
                    panic!("ReadyForQuery accepted without ending the handshake: {step:?}");
                };
                assert!(model.authenticated, "Done without AuthenticationOk");
                assert_eq!(session.status, *status);
                assert_eq!(session.parameters, model.parameters);
                model.over = true;
                end = End::Done;
            }
            (BackendMessage::NoticeResponse(_), true) => assert!(matches!(step, Step::Notice(_))),
            (
                BackendMessage::BackendKeyData { .. }
                | BackendMessage::NegotiateProtocolVersion { .. },
                true,
            ) => {}
            (request, true) => panic!("{request:?} accepted: {step:?}"),
            (request, false) => panic!("bytes sent in reply to {request:?}"),
        }
    }
    end
}

/// The SaltedPassword the keys were made from, found again from server-first's `s=` and `i=`.
fn salted_for(server_first: &[u8]) -> [u8; 32] {
    let text = String::from_utf8_lossy(server_first);
    let attr = |name: &str| {
        text.split(',')
            .find_map(|a| a.strip_prefix(name))
            .unwrap_or_default()
            .to_owned()
    };
    let salt = STANDARD.decode(attr("s=")).unwrap_or_default();
    let iterations: u32 = attr("i=").parse().unwrap_or_default();
    known_salted_password(&salt, iterations)
        .unwrap_or_else(|| sha256_pair(&salt, &iterations.to_be_bytes()))
}

/// A cheap stand-in SaltedPassword for the fuzzer's salts: no PBKDF2, whatever `i=` says.
fn sha256_pair(a: &[u8], b: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest([a, b].concat()).into()
}

/// The body of the one tagged message in `sent`, after checking it is a `'p'` of the right
/// length.
fn body(sent: &[u8]) -> &[u8] {
    let (tag, rest) = sent.split_first().expect("a message");
    assert_eq!(*tag, b'p');
    let (len, body) = rest.split_at(4);
    assert_eq!(
        i32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize,
        rest.len()
    );
    body
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> End {
        let path = format!("{}/fuzz/seeds/handshake/{name}", env!("CARGO_MANIFEST_DIR"));
        run(&std::fs::read(path).unwrap())
    }

    #[test]
    fn recorded_logins_complete() {
        for name in [
            "trust",
            "password",
            "md5",
            "scram",
            "scram_require_scram",
            "md5_require_md5",
        ] {
            assert_eq!(seed(&format!("recorded_{name}")), End::Done, "{name}");
        }
    }

    #[test]
    fn refusals_and_server_errors_fail() {
        for name in [
            "recorded_md5_wrong_password",
            "recorded_scram_wrong_password",
            "recorded_no_such_database",
            "recorded_scram_require_password",
            "recorded_scram_cap_4095",
            "recorded_scram_no_password",
            "recorded_md5_require_scram",
            "recorded_password_not_password",
            "recorded_trust_require_auth",
            "recorded_trust_require_md5",
            "scram_ok_without_sasl_final",
            "scram_plus_offered",
        ] {
            assert_eq!(seed(name), End::Failed, "{name}");
        }
        assert_eq!(seed("recorded_trust_require_none"), End::Done);
        assert_eq!(seed("negotiate_protocol_version"), End::Done);
    }

    /// fuzz/bound_seeds.py: SCRAM-SHA-256-PLUS logs in over TLS (and `y`, `n` where they
    /// belong); the refusals under `channel_binding=require` fail.
    #[test]
    fn channel_binding_seeds_reach_their_end() {
        for name in [
            "tls_plus_require_scram",
            "tls_plus_prefer",
            "tls_plus_sha512_data",
            "tls_plus_not_offered_y",
            "tls_disable_n",
            "tls_no_digest_prefer_n",
        ] {
            assert_eq!(seed(name), End::Done, "{name}");
        }
        for name in [
            "tls_plus_signed_unbound",
            "tls_require_not_offered",
            "tls_require_md5_request",
            "tls_require_ok_at_once",
            "tls_no_digest_require",
        ] {
            assert_eq!(seed(name), End::Failed, "{name}");
        }
    }
}
