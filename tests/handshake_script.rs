//! The `Handshake` state machine driven by scripted server messages, no socket: the recorded
//! psql SCRAM exchange replayed byte for byte, and every way a server can try to skip or
//! downgrade authentication.

use bytes::{Bytes, BytesMut};
use wirepool::wire::auth::ScramKeys;
use wirepool::wire::tls::CertificateError;
use wirepool::wire::{
    frontend, AuthConfig, Authentication, BackendMessage, ChannelBindingMode, Decoder, Handshake,
    HandshakeError, StartupParams, Step, TransactionStatus, WireError,
};

const NONCE: &str = "9IZ2O01zb9IgiIZ1WJ/zgpJB";
const SERVER_FIRST: &[u8] =
    b"r=9IZ2O01zb9IgiIZ1WJ/zgpJBjx/oIRLs02gGSHcw1KEty3eY,s=fs3IXBy7U7+IvVjZ,i=4096";
const CLIENT_FINAL: &[u8] = b"c=biws,r=9IZ2O01zb9IgiIZ1WJ/zgpJBjx/oIRLs02gGSHcw1KEty3eY,p=AmNKosjJzS31NTlQYNs5BTeQjdHdk7lOflDo5re2an8=";
const SERVER_FINAL: &[u8] = b"v=U+ppxD5XUKtradnv8e2MkeupiA8FU87Sg8CXzXHDAzw=";

fn params() -> StartupParams {
    StartupParams {
        user: "postgres".into(),
        database: Some("postgres".into()),
        ..Default::default()
    }
}

fn with_password(pw: &str) -> AuthConfig {
    AuthConfig {
        password: Some(pw.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn auth(a: Authentication) -> BackendMessage {
    BackendMessage::Authentication(a)
}

fn sasl() -> BackendMessage {
    auth(Authentication::Sasl {
        mechanisms: vec!["SCRAM-SHA-256".into()],
    })
}

fn sasl_continue(data: &'static [u8]) -> BackendMessage {
    auth(Authentication::SaslContinue {
        data: Bytes::from_static(data),
    })
}

fn sasl_final(data: &'static [u8]) -> BackendMessage {
    auth(Authentication::SaslFinal {
        data: Bytes::from_static(data),
    })
}

fn take(hs: &mut Handshake) -> Vec<u8> {
    let mut out = BytesMut::new();
    hs.poll_transmit(&mut out);
    out.to_vec()
}

/// Starts a handshake and checks the StartupMessage went out first.
fn start(auth: AuthConfig) -> Handshake {
    let mut hs = Handshake::new(&params(), auth)
        .unwrap()
        .with_scram_nonce(NONCE);
    let startup = take(&mut hs);
    let mut expected = BytesMut::new();
    frontend::startup_message(
        [
            ("user", "postgres"),
            ("database", "postgres"),
            ("client_encoding", "UTF8"),
        ],
        &mut expected,
    )
    .unwrap();
    assert_eq!(startup, expected.to_vec());
    hs
}

/// Runs the SCRAM exchange up to (and including) sending client-final.
fn scram_until_client_final(hs: &mut Handshake, password: &str) {
    assert!(matches!(hs.handle(sasl()), Ok(Step::Continue)));
    let mut expected = BytesMut::new();
    frontend::sasl_initial_response(
        "SCRAM-SHA-256",
        b"n,,n=,r=9IZ2O01zb9IgiIZ1WJ/zgpJB",
        &mut expected,
    )
    .unwrap();
    assert_eq!(take(hs), expected.to_vec());
    let Ok(Step::NeedScramKeys(req)) = hs.handle(sasl_continue(SERVER_FIRST)) else {
        panic!("keys expected");
    };
    assert_eq!(req.iterations, 4096);
    assert!(take(hs).is_empty(), "nothing is sent before the keys exist");
    let keys = ScramKeys::derive(password.as_bytes(), &req.salt, req.iterations);
    hs.provide_scram_keys(&keys).unwrap();
}

#[test]
fn psql_scram_transcript_replays_byte_for_byte() {
    let mut hs = start(with_password("foobar"));
    scram_until_client_final(&mut hs, "foobar");
    let mut expected = BytesMut::new();
    frontend::sasl_response(CLIENT_FINAL, &mut expected).unwrap();
    assert_eq!(take(&mut hs), expected.to_vec());

    // The rest of the login arrives as raw bytes through the decoder, as it would off a socket.
    let mut wire = BytesMut::new();
    for (tag, body) in [
        (b'R', [&[0u8, 0, 0, 12][..], SERVER_FINAL].concat()),
        (b'R', vec![0, 0, 0, 0]),
        (b'S', b"server_version\x0015.20\0".to_vec()),
        (b'N', b"SWARNING\0C01000\0Mhi\0\0".to_vec()),
        (b'K', vec![0, 0, 0x32, 0x78, 0xad, 0xa8, 0x55, 0x4b]),
        (b'Z', b"I".to_vec()),
    ] {
        wire.extend_from_slice(&[tag]);
        wire.extend_from_slice(&(u32::try_from(body.len()).unwrap() + 4).to_be_bytes());
        wire.extend_from_slice(&body);
    }
    let mut decoder = Decoder::new();
    let mut notices = 0;
    let session = loop {
        let msg = decoder
            .decode(&mut wire)
            .unwrap()
            .expect("whole transcript buffered");
        match hs.handle(msg).unwrap() {
            Step::Continue => {}
            Step::Notice(n) => {
                assert_eq!(n.message(), "hi");
                notices += 1;
            }
            Step::NeedScramKeys(_) => panic!("keys asked twice"),
            Step::Done(s) => break s,
        }
    };
    assert_eq!(notices, 1);
    assert!(take(&mut hs).is_empty());
    assert_eq!(session.status, TransactionStatus::Idle);
    assert_eq!(session.parameters["server_version"], "15.20");
    let key = session.backend_key.unwrap();
    assert_eq!((key.pid, key.key), (0x3278, [0xad, 0xa8, 0x55, 0x4b]));
    assert!(
        !format!("{key:?}").contains("173"),
        "Debug hides the cancel key"
    );
}

#[test]
fn sasl_final_skipped_is_refused() {
    let mut hs = start(with_password("foobar"));
    scram_until_client_final(&mut hs, "foobar");
    let err = hs.handle(auth(Authentication::Ok)).unwrap_err();
    assert!(matches!(&err, HandshakeError::Auth(m) if m.contains("before completing SCRAM")));
    // The machine stays failed.
    assert!(hs
        .handle(BackendMessage::ReadyForQuery(TransactionStatus::Idle))
        .is_err());
}

#[test]
fn wrong_server_signature_is_refused() {
    let mut hs = start(with_password("foobar"));
    scram_until_client_final(&mut hs, "foobar");
    let err = hs
        .handle(sasl_final(
            b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ))
        .unwrap_err();
    assert!(
        matches!(&err, HandshakeError::Auth(m) if m.contains("signature")),
        "{err}"
    );
    assert!(hs.handle(auth(Authentication::Ok)).is_err());
}

#[test]
fn sasl_final_without_continue_is_a_protocol_error() {
    let mut hs = start(with_password("foobar"));
    hs.handle(sasl()).unwrap();
    take(&mut hs);
    assert_eq!(
        hs.handle(sasl_final(SERVER_FINAL)).unwrap_err(),
        HandshakeError::Protocol(WireError::UnexpectedAuthRequest(12))
    );
}

#[test]
fn second_sasl_request_is_a_protocol_error() {
    let mut hs = start(with_password("foobar"));
    hs.handle(sasl()).unwrap();
    assert_eq!(
        hs.handle(sasl()).unwrap_err(),
        HandshakeError::Protocol(WireError::UnexpectedAuthRequest(10))
    );
}

#[test]
fn cleartext_under_require_scram_sends_no_password() {
    let mut cfg = with_password("secret");
    cfg.require_auth = "scram-sha-256".parse().unwrap();
    let mut hs = start(cfg);
    let err = hs
        .handle(auth(Authentication::CleartextPassword))
        .unwrap_err();
    assert_eq!(
        err,
        HandshakeError::Auth(
            "authentication method requirement \"scram-sha-256\" failed: server requested a cleartext password"
                .into()
        )
    );
    assert!(take(&mut hs).is_empty(), "no password bytes may be emitted");
}

#[test]
fn trust_under_require_auth_is_refused() {
    let mut cfg = with_password("secret");
    cfg.require_auth = "scram-sha-256".parse().unwrap();
    let mut hs = start(cfg);
    let err = hs.handle(auth(Authentication::Ok)).unwrap_err();
    assert!(
        matches!(&err, HandshakeError::Auth(m) if m.ends_with("server did not complete authentication"))
    );
}

#[test]
fn require_auth_none_refuses_any_challenge() {
    let mut cfg = with_password("secret");
    cfg.require_auth = "none".parse().unwrap();
    let mut hs = start(cfg);
    assert!(hs
        .handle(auth(Authentication::Md5Password { salt: [1, 2, 3, 4] }))
        .is_err());
    assert!(take(&mut hs).is_empty());
}

#[test]
fn huge_iteration_count_is_refused_before_pbkdf2() {
    let mut hs = start(with_password("foobar"));
    hs.handle(sasl()).unwrap();
    take(&mut hs);
    let err = hs
        .handle(sasl_continue(
            b"r=9IZ2O01zb9IgiIZ1WJ/zgpJBjx/oIRLs02gGSHcw1KEty3eY,s=fs3IXBy7U7+IvVjZ,i=1000000000",
        ))
        .unwrap_err();
    assert!(matches!(err, HandshakeError::Auth(_)), "{err}");
    assert!(take(&mut hs).is_empty());
}

#[test]
fn kerberos_gss_sspi_scm_are_unsupported_by_name() {
    for (a, name) in [
        (Authentication::KerberosV5, "Kerberos"),
        (Authentication::Gss, "GSSAPI"),
        (Authentication::Sspi, "SSPI"),
        (Authentication::ScmCredential, "SCM"),
    ] {
        let mut hs = start(with_password("x"));
        let err = hs.handle(auth(a)).unwrap_err();
        assert!(
            matches!(&err, HandshakeError::Unsupported(m) if m.contains(name)),
            "{err}"
        );
        assert!(take(&mut hs).is_empty());
    }
}

#[test]
fn no_password_configured_fails_before_sending() {
    for request in [
        Authentication::CleartextPassword,
        Authentication::Md5Password { salt: [0; 4] },
        Authentication::Sasl {
            mechanisms: vec!["SCRAM-SHA-256".into()],
        },
    ] {
        let mut hs = start(AuthConfig::default());
        let err = hs.handle(auth(request)).unwrap_err();
        assert_eq!(err, HandshakeError::Auth("no password supplied".into()));
        assert!(take(&mut hs).is_empty());
    }
}

#[test]
fn md5_and_cleartext_replies() {
    let params = StartupParams {
        user: "md5_user".into(),
        ..Default::default()
    };
    let mut hs = Handshake::new(&params, with_password("password")).unwrap();
    take(&mut hs);
    hs.handle(auth(Authentication::Md5Password {
        salt: [0x24, 0xe3, 0x28, 0x3c],
    }))
    .unwrap();
    assert_eq!(
        take(&mut hs),
        b"p\0\0\0\x28md5597fc0e070c5e935e3c5b66d1115833b\0"
    );
    hs.handle(auth(Authentication::Ok)).unwrap();

    let mut hs = start(with_password("password"));
    hs.handle(auth(Authentication::CleartextPassword)).unwrap();
    assert_eq!(take(&mut hs), b"p\0\0\0\x0dpassword\0");
    // A second challenge after the password went out is not part of any flow.
    assert!(hs.handle(auth(Authentication::CleartextPassword)).is_err());
}

#[test]
fn scram_plus_over_plaintext_and_unknown_mechanisms() {
    let mut hs = start(with_password("x"));
    let err = hs
        .handle(auth(Authentication::Sasl {
            mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()],
        }))
        .unwrap_err();
    assert_eq!(
        err,
        HandshakeError::Auth(
            "server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection".into()
        )
    );
    let mut hs = start(with_password("x"));
    let err = hs
        .handle(auth(Authentication::Sasl {
            mechanisms: vec!["OAUTHBEARER".into()],
        }))
        .unwrap_err();
    assert!(matches!(&err, HandshakeError::Unsupported(m) if m.contains("OAUTHBEARER")));
    assert!(take(&mut hs).is_empty());
}

#[test]
fn negotiate_protocol_version_rules() {
    let v = |version: i32, options: Vec<String>| BackendMessage::NegotiateProtocolVersion {
        version,
        options,
    };
    let mut hs = start(AuthConfig::default());
    assert!(matches!(
        hs.handle(v(0x0003_0000, vec![])),
        Ok(Step::Continue)
    ));
    assert_eq!(
        hs.handle(v(0x0003_0000, vec![])).unwrap_err(),
        HandshakeError::Protocol(WireError::DuplicateNegotiateProtocolVersion)
    );
    let mut hs = start(AuthConfig::default());
    assert_eq!(
        hs.handle(v(0x0003_0000, vec!["_pq_.x".into()]))
            .unwrap_err(),
        HandshakeError::Protocol(WireError::UnrequestedProtocolOption)
    );
    let mut hs = start(AuthConfig::default());
    assert_eq!(
        hs.handle(v(0x0002_0000, vec![])).unwrap_err(),
        HandshakeError::Protocol(WireError::UnsupportedProtocolVersion(0x0002_0000))
    );
}

#[test]
fn server_error_and_out_of_order_messages() {
    let mut hs = start(AuthConfig::default());
    let body = b"SFATAL\0C28P01\0Mpassword authentication failed for user \"x\"\0\0";
    let e = wirepool::DbError::parse(b'E', Bytes::from_static(body)).unwrap();
    let err = hs.handle(BackendMessage::ErrorResponse(e)).unwrap_err();
    assert!(matches!(&err, HandshakeError::Server(e) if e.code() == "28P01"));

    let mut hs = start(AuthConfig::default());
    assert_eq!(
        hs.handle(BackendMessage::ReadyForQuery(TransactionStatus::Idle))
            .unwrap_err(),
        HandshakeError::Protocol(WireError::UnexpectedMessage { tag: b'Z' })
    );
    let mut hs = start(AuthConfig::default());
    assert!(hs
        .handle(BackendMessage::BackendKeyData {
            pid: 1,
            key: [0; 4]
        })
        .is_err());
}

// ---- channel_binding (libpq fe-auth.c `pg_SASL_init`, `check_expected_areq`) ----

fn over_tls(end_point: Result<Vec<u8>, CertificateError>, mode: ChannelBindingMode) -> AuthConfig {
    AuthConfig {
        tls: Some(end_point),
        channel_binding: mode,
        ..with_password("foobar")
    }
}

fn offered(mechanisms: &[&str]) -> BackendMessage {
    auth(Authentication::Sasl {
        mechanisms: mechanisms.iter().map(|m| (*m).to_owned()).collect(),
    })
}

/// The mechanism and client-first-message of the SASLInitialResponse the handshake sent.
fn initial_response(hs: &mut Handshake) -> (String, String) {
    let out = take(hs);
    assert_eq!(out[0], b'p', "a SASLInitialResponse");
    let body = &out[5..];
    let nul = body.iter().position(|&b| b == 0).unwrap();
    let mechanism = String::from_utf8(body[..nul].to_vec()).unwrap();
    let data = String::from_utf8(body[nul + 5..].to_vec()).unwrap();
    (mechanism, data)
}

const BOTH: &[&str] = &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"];

/// `AuthConfig::tls`: no TLS, or TLS with the channel binding data (or why there is none).
type Channel = Option<Result<Vec<u8>, CertificateError>>;

#[test]
fn over_tls_plus_is_chosen_and_the_flag_names_tls_server_end_point() {
    let data = vec![7u8; 32];
    for mode in [ChannelBindingMode::Prefer, ChannelBindingMode::Require] {
        let mut hs = start(over_tls(Ok(data.clone()), mode));
        assert!(matches!(hs.handle(offered(BOTH)), Ok(Step::Continue)));
        let (mechanism, first) = initial_response(&mut hs);
        assert_eq!(mechanism, "SCRAM-SHA-256-PLUS");
        assert_eq!(first, format!("p=tls-server-end-point,,n=,r={NONCE}"));
        let Ok(Step::NeedScramKeys(req)) = hs.handle(sasl_continue(SERVER_FIRST)) else {
            panic!("keys expected");
        };
        let keys = ScramKeys::derive(b"foobar", &req.salt, req.iterations);
        hs.provide_scram_keys(&keys).unwrap();
        let out = take(&mut hs);
        let text = String::from_utf8_lossy(&out[5..]).into_owned();
        let c = text.strip_prefix("c=").unwrap().split(',').next().unwrap();
        let mut expected = b"p=tls-server-end-point,,".to_vec();
        expected.extend(&data);
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD.decode(c).unwrap();
        assert_eq!(decoded, expected, "{mode:?}");
    }
}

#[test]
fn over_tls_without_plus_offered_the_flag_is_y_and_disable_says_n() {
    let mut hs = start(over_tls(Ok(vec![1; 32]), ChannelBindingMode::Prefer));
    hs.handle(offered(&["SCRAM-SHA-256"])).unwrap();
    assert_eq!(
        initial_response(&mut hs),
        ("SCRAM-SHA-256".into(), format!("y,,n=,r={NONCE}"))
    );
    let mut hs = start(over_tls(Ok(vec![1; 32]), ChannelBindingMode::Disable));
    hs.handle(offered(BOTH)).unwrap();
    assert_eq!(
        initial_response(&mut hs),
        ("SCRAM-SHA-256".into(), format!("n,,n=,r={NONCE}"))
    );
}

/// An Ed25519 server certificate has no digest for tls-server-end-point: `require` fails before
/// anything is sent; `prefer` authenticates without binding, with `n` (never `y`, which a server
/// that offered -PLUS refuses as a downgrade).
#[test]
fn a_certificate_without_a_digest_fails_require_and_prefer_goes_unbound() {
    let mut hs = start(over_tls(
        Err(CertificateError::NoDigest),
        ChannelBindingMode::Require,
    ));
    let e = hs.handle(offered(BOTH)).unwrap_err();
    assert!(
        matches!(&e, HandshakeError::Auth(m) if m.contains("Ed25519")),
        "{e}"
    );
    assert!(take(&mut hs).is_empty());
    let mut hs = start(over_tls(
        Err(CertificateError::NoDigest),
        ChannelBindingMode::Prefer,
    ));
    hs.handle(offered(BOTH)).unwrap();
    assert_eq!(
        initial_response(&mut hs),
        ("SCRAM-SHA-256".into(), format!("n,,n=,r={NONCE}"))
    );
}

#[test]
fn require_never_answers_anything_but_a_bound_scram_exchange() {
    let require = |tls| AuthConfig {
        tls,
        channel_binding: ChannelBindingMode::Require,
        ..with_password("foobar")
    };
    let cases: Vec<(Channel, BackendMessage, &str)> = vec![
        // Over plaintext the server offers no -PLUS.
        (None, offered(&["SCRAM-SHA-256"]), "did not offer"),
        // Over TLS, a server (or a proxy) that offers no -PLUS.
        (
            Some(Ok(vec![1; 32])),
            offered(&["SCRAM-SHA-256"]),
            "did not offer",
        ),
        (
            None,
            auth(Authentication::CleartextPassword),
            "not supported by server",
        ),
        (
            Some(Ok(vec![1; 32])),
            auth(Authentication::Md5Password { salt: [1, 2, 3, 4] }),
            "not supported by server",
        ),
        (None, auth(Authentication::Ok), "without channel binding"),
    ];
    for (tls, request, says) in cases {
        let mut hs = start(require(tls));
        let e = hs.handle(request).unwrap_err();
        assert!(
            matches!(&e, HandshakeError::Auth(m) if m.contains(says)),
            "{says}: {e}"
        );
        assert!(take(&mut hs).is_empty(), "{says}: nothing may be sent");
    }
}

#[test]
fn an_unbound_exchange_cannot_end_in_authentication_ok_under_require() {
    // A server that completes plain SCRAM although the client asked for -PLUS cannot happen
    // through `start_sasl`; what is left is a server that skips SCRAM: covered above. Here the
    // bound path runs to the end with the recorded transcript's keys and server signature
    // (computed for `c=biws`, so the signature fails: the server cannot fake a binding).
    let mut hs = start(over_tls(Ok(vec![1; 32]), ChannelBindingMode::Require));
    hs.handle(offered(BOTH)).unwrap();
    take(&mut hs);
    let Ok(Step::NeedScramKeys(req)) = hs.handle(sasl_continue(SERVER_FIRST)) else {
        panic!("keys expected");
    };
    hs.provide_scram_keys(&ScramKeys::derive(b"foobar", &req.salt, req.iterations))
        .unwrap();
    take(&mut hs);
    assert!(hs.handle(sasl_final(SERVER_FINAL)).is_err());
}

// ---- require_auth with channel_binding (libpq fe-auth.c `check_expected_areq`: require_auth
// is asked first, then channel_binding; PostgreSQL's src/test/ssl/t/002_scram.pl) ----

fn with_require_auth(mut cfg: AuthConfig, spec: &str) -> AuthConfig {
    cfg.require_auth = spec.parse().unwrap();
    cfg
}

/// RFC 5802 §3 ServerSignature, computed here from the SaltedPassword with HMAC directly.
fn server_signature(salted: &[u8; 32], auth_message: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mac = |key: &[u8], data: &[u8]| {
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    };
    mac(&mac(salted, b"Server Key"), auth_message)
}

/// `require_auth=scram-sha-256` with `channel_binding=require` over TLS: SCRAM-SHA-256-PLUS,
/// the server signature over the *bound* AuthMessage verifies, and the login ends in `Done`.
/// With `channel_binding=disable` the same policy runs plain SCRAM with `n`.
#[test]
fn require_auth_scram_and_channel_binding_require_complete_a_bound_exchange() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let data = vec![0x5a; 48];
    let cfg = with_require_auth(
        over_tls(Ok(data.clone()), ChannelBindingMode::Require),
        "scram-sha-256",
    );
    let mut hs = start(cfg);
    hs.handle(offered(BOTH)).unwrap();
    let (mechanism, first) = initial_response(&mut hs);
    assert_eq!(mechanism, "SCRAM-SHA-256-PLUS");
    assert_eq!(first, format!("p=tls-server-end-point,,n=,r={NONCE}"));
    let Ok(Step::NeedScramKeys(req)) = hs.handle(sasl_continue(SERVER_FIRST)) else {
        panic!("keys expected");
    };
    let salted: [u8; 32] =
        pbkdf2::pbkdf2_hmac_array::<sha2::Sha256, 32>(b"foobar", &req.salt, req.iterations);
    hs.provide_scram_keys(&ScramKeys::derive(b"foobar", &req.salt, req.iterations))
        .unwrap();
    let out = take(&mut hs);
    let client_final = std::str::from_utf8(&out[5..]).unwrap();
    let (without_proof, _) = client_final.rsplit_once(",p=").unwrap();
    let bound_c = b64.encode([&b"p=tls-server-end-point,,"[..], &data].concat());
    assert!(without_proof.starts_with(&format!("c={bound_c},r=")));
    let auth_message = [
        format!("n=,r={NONCE},").as_bytes(),
        SERVER_FIRST,
        b",",
        without_proof.as_bytes(),
    ]
    .concat();
    let v = format!("v={}", b64.encode(server_signature(&salted, &auth_message)));
    let step = hs.handle(auth(Authentication::SaslFinal {
        data: Bytes::from(v.into_bytes()),
    }));
    assert!(matches!(step, Ok(Step::Continue)), "{step:?}");
    hs.handle(auth(Authentication::Ok)).unwrap();
    let Ok(Step::Done(_)) = hs.handle(BackendMessage::ReadyForQuery(TransactionStatus::Idle))
    else {
        panic!("the bound login did not complete");
    };

    let cfg = with_require_auth(
        over_tls(Ok(data), ChannelBindingMode::Disable),
        "scram-sha-256",
    );
    let mut hs = start(cfg);
    hs.handle(offered(BOTH)).unwrap();
    assert_eq!(
        initial_response(&mut hs),
        ("SCRAM-SHA-256".into(), format!("n,,n=,r={NONCE}"))
    );
}

/// Every pairing in which one of the two settings refuses: the refusal comes before any reply,
/// whichever setting gives it. `require_auth=md5` or `password` is satisfied by the server's
/// request and `channel_binding=require` still refuses it (002_scram.pl: "channel_binding can
/// fail even when require_auth succeeds"); a SASL request is refused by a `require_auth` that
/// does not allow SCRAM before channel binding is considered.
#[test]
fn require_auth_and_channel_binding_require_refuse_before_sending_anything() {
    let not_sasl = "channel binding required but not supported by server's authentication request";
    let cases: Vec<(&str, BackendMessage, &str)> = vec![
        (
            "md5",
            auth(Authentication::Md5Password { salt: [1, 2, 3, 4] }),
            not_sasl,
        ),
        ("password", auth(Authentication::CleartextPassword), not_sasl),
        (
            "md5,password",
            auth(Authentication::CleartextPassword),
            not_sasl,
        ),
        (
            "!scram-sha-256",
            auth(Authentication::Md5Password { salt: [1, 2, 3, 4] }),
            not_sasl,
        ),
        (
            "md5",
            offered(BOTH),
            "authentication method requirement \"md5\" failed: server requested SASL authentication",
        ),
        (
            "password",
            offered(BOTH),
            "authentication method requirement \"password\" failed: server requested SASL \
             authentication",
        ),
        (
            "!scram-sha-256",
            offered(BOTH),
            "requirement \"!scram-sha-256\" failed: server requested SASL authentication",
        ),
        (
            "scram-sha-256",
            auth(Authentication::Ok),
            "server did not complete authentication",
        ),
        (
            "none",
            auth(Authentication::Ok),
            "server authenticated client without channel binding",
        ),
        (
            "scram-sha-256",
            offered(&["SCRAM-SHA-256"]),
            "server did not offer an authentication method that supports channel binding",
        ),
    ];
    for (spec, request, says) in cases {
        let cfg = with_require_auth(over_tls(Ok(vec![1; 32]), ChannelBindingMode::Require), spec);
        let mut hs = start(cfg);
        let e = hs.handle(request).unwrap_err();
        assert!(
            matches!(&e, HandshakeError::Auth(m) if m.contains(says)),
            "{spec}: {e}"
        );
        assert!(take(&mut hs).is_empty(), "{spec}: nothing may be sent");
    }
}
