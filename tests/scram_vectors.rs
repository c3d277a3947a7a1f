//! SCRAM-SHA-256 client exchange against published and recorded vectors (RFC 7677 §3, a psql
//! exchange), every malformed server message the reference lists, call-order enforcement, and
//! SASLprep as PostgreSQL applies it. Pure: no server, no runtime.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use wirepool::wire::auth::{
    saslprep_or_raw, KeyRequest, ScramClient, ScramError, ScramKeys, DEFAULT_MAX_SCRAM_ITERATIONS,
    SCRAM_SHA_256, SCRAM_SHA_256_PLUS,
};

// The psql exchange recorded in rust-postgres (`postgres-protocol/src/authentication/sasl.rs`).
const PSQL_NONCE: &str = "9IZ2O01zb9IgiIZ1WJ/zgpJB";
const PSQL_SERVER_NONCE: &str = "9IZ2O01zb9IgiIZ1WJ/zgpJBjx/oIRLs02gGSHcw1KEty3eY";
const PSQL_SERVER_FIRST: &str =
    "r=9IZ2O01zb9IgiIZ1WJ/zgpJBjx/oIRLs02gGSHcw1KEty3eY,s=fs3IXBy7U7+IvVjZ,i=4096";
const PSQL_CLIENT_FINAL: &str = "c=biws,r=9IZ2O01zb9IgiIZ1WJ/zgpJBjx/oIRLs02gGSHcw1KEty3eY,p=AmNKosjJzS31NTlQYNs5BTeQjdHdk7lOflDo5re2an8=";
const PSQL_SERVER_FINAL: &str = "v=U+ppxD5XUKtradnv8e2MkeupiA8FU87Sg8CXzXHDAzw=";

// RFC 7677 §3 (username "user", password "pencil").
const RFC_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
const RFC_SALTED_PASSWORD: &str =
    "c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d";

fn unhex(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// A psql-vector client that has accepted server-first and produced client-final.
fn psql_awaiting_server_final() -> ScramClient {
    let mut scram = ScramClient::with_nonce(PSQL_NONCE);
    let request = scram
        .handle_server_first(PSQL_SERVER_FIRST.as_bytes(), DEFAULT_MAX_SCRAM_ITERATIONS)
        .unwrap();
    let keys = ScramKeys::derive(b"foobar", &request.salt, request.iterations);
    scram.client_final_message(&keys).unwrap();
    scram
}

fn server_first_error(server_first: &[u8], max_iterations: u32) -> ScramError {
    let mut scram = ScramClient::with_nonce(PSQL_NONCE);
    let err = scram
        .handle_server_first(server_first, max_iterations)
        .unwrap_err();
    // Any error ends the exchange: nothing can follow it.
    let keys = ScramKeys::from_salted_password(&[0; 32]);
    assert_eq!(
        scram.client_final_message(&keys),
        Err(ScramError::OutOfOrder)
    );
    assert!(!scram.is_verified());
    err
}

fn server_final_error(server_final: &[u8]) -> ScramError {
    let mut scram = psql_awaiting_server_final();
    let err = scram.handle_server_final(server_final).unwrap_err();
    assert!(!scram.is_verified());
    // Poisoned: not even the genuine signature is accepted afterwards.
    assert_eq!(
        scram.handle_server_final(PSQL_SERVER_FINAL.as_bytes()),
        Err(ScramError::OutOfOrder)
    );
    assert!(!scram.is_verified());
    err
}

#[test]
fn mechanism_names() {
    assert_eq!(SCRAM_SHA_256, "SCRAM-SHA-256");
    assert_eq!(SCRAM_SHA_256_PLUS, "SCRAM-SHA-256-PLUS");
    assert_eq!(DEFAULT_MAX_SCRAM_ITERATIONS, 1_000_000);
}

#[test]
fn psql_exchange_byte_for_byte() {
    let mut scram = ScramClient::with_nonce(PSQL_NONCE);
    assert_eq!(
        scram.client_first_message(),
        b"n,,n=,r=9IZ2O01zb9IgiIZ1WJ/zgpJB"
    );

    let request = scram
        .handle_server_first(PSQL_SERVER_FIRST.as_bytes(), DEFAULT_MAX_SCRAM_ITERATIONS)
        .unwrap();
    assert_eq!(
        request,
        KeyRequest {
            salt: STANDARD.decode("fs3IXBy7U7+IvVjZ").unwrap(),
            iterations: 4096,
        }
    );

    let keys = ScramKeys::derive(b"foobar", &request.salt, request.iterations);
    let client_final = scram.client_final_message(&keys).unwrap();
    assert_eq!(String::from_utf8(client_final).unwrap(), PSQL_CLIENT_FINAL);
    assert!(!scram.is_verified());

    scram
        .handle_server_final(PSQL_SERVER_FINAL.as_bytes())
        .unwrap();
    assert!(scram.is_verified());
    // client-first never changes, whatever the state.
    assert_eq!(
        scram.client_first_message(),
        b"n,,n=,r=9IZ2O01zb9IgiIZ1WJ/zgpJB"
    );
}

#[test]
fn rfc7677_exchange_byte_for_byte() {
    let mut scram = ScramClient::with_nonce_and_user("user", RFC_NONCE);
    assert_eq!(
        scram.client_first_message(),
        b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    );
    let request = scram
        .handle_server_first(RFC_SERVER_FIRST.as_bytes(), DEFAULT_MAX_SCRAM_ITERATIONS)
        .unwrap();
    assert_eq!(
        request.salt,
        STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap()
    );
    assert_eq!(request.iterations, 4096);

    let keys = ScramKeys::derive(b"pencil", &request.salt, request.iterations);
    let client_final = scram.client_final_message(&keys).unwrap();
    assert_eq!(String::from_utf8(client_final).unwrap(), RFC_CLIENT_FINAL);
    scram
        .handle_server_final(RFC_SERVER_FINAL.as_bytes())
        .unwrap();
    assert!(scram.is_verified());
}

#[test]
fn rfc7677_keys_from_the_published_salted_password() {
    // The keys built from RFC 7677's SaltedPassword give the same proof and signature, so
    // `derive` computed exactly that SaltedPassword in the test above.
    let keys = ScramKeys::from_salted_password(&unhex(RFC_SALTED_PASSWORD));
    let mut scram = ScramClient::with_nonce_and_user("user", RFC_NONCE);
    scram
        .handle_server_first(RFC_SERVER_FIRST.as_bytes(), 4096)
        .unwrap();
    assert_eq!(
        scram.client_final_message(&keys).unwrap(),
        RFC_CLIENT_FINAL.as_bytes()
    );
    scram
        .handle_server_final(RFC_SERVER_FINAL.as_bytes())
        .unwrap();
    assert!(scram.is_verified());
}

#[test]
fn cached_keys_can_be_reused_across_exchanges() {
    let keys = ScramKeys::derive(
        b"foobar",
        &STANDARD.decode("fs3IXBy7U7+IvVjZ").unwrap(),
        4096,
    );
    for _ in 0..2 {
        let mut scram = ScramClient::with_nonce(PSQL_NONCE);
        scram
            .handle_server_first(PSQL_SERVER_FIRST.as_bytes(), 4096)
            .unwrap();
        assert_eq!(
            scram.client_final_message(&keys.clone()).unwrap(),
            PSQL_CLIENT_FINAL.as_bytes()
        );
    }
}

#[test]
fn wrong_password_gives_a_different_proof_and_rejects_the_genuine_signature() {
    let mut scram = ScramClient::with_nonce(PSQL_NONCE);
    let request = scram
        .handle_server_first(PSQL_SERVER_FIRST.as_bytes(), 4096)
        .unwrap();
    let keys = ScramKeys::derive(b"foobaz", &request.salt, request.iterations);
    let client_final = scram.client_final_message(&keys).unwrap();
    assert_ne!(client_final, PSQL_CLIENT_FINAL.as_bytes());
    assert_eq!(
        scram.handle_server_final(PSQL_SERVER_FINAL.as_bytes()),
        Err(ScramError::InvalidServerSignature)
    );
    assert!(!scram.is_verified());
}

#[test]
fn wrong_server_signature_is_rejected() {
    // One bit flipped in the genuine signature.
    let mut signature = STANDARD.decode(&PSQL_SERVER_FINAL[2..]).unwrap();
    signature[31] ^= 1;
    let forged = format!("v={}", STANDARD.encode(&signature));
    assert_eq!(
        server_final_error(forged.as_bytes()),
        ScramError::InvalidServerSignature
    );
    // A signature from another exchange (RFC 7677's) is just as wrong.
    assert_eq!(
        server_final_error(RFC_SERVER_FINAL.as_bytes()),
        ScramError::InvalidServerSignature
    );
}

#[test]
fn malformed_server_first() {
    let n = PSQL_SERVER_NONCE;
    let ours = PSQL_NONCE;
    let salt = "s=fs3IXBy7U7+IvVjZ";
    let cap = DEFAULT_MAX_SCRAM_ITERATIONS;
    use ScramError::*;
    #[rustfmt::skip]
    let cases: Vec<(String, ScramError)> = vec![
        (String::new(), Empty),
        (format!("{salt},i=4096"), MissingNonce),
        (format!("r={n}"), MissingSalt),
        (format!("r={n},i=4096"), MissingSalt),
        (format!("r={n},i=4096,{salt}"), MissingSalt),
        (format!("r={n},{salt}"), MissingIterations),
        (format!("r={n},{salt},"), MissingIterations),
        (format!("r={n},{salt},i=0"), InvalidIterationCount),
        (format!("r={n},{salt},i=-1"), InvalidIterationCount),
        (format!("r={n},{salt},i="), InvalidIterationCount),
        (format!("r={n},{salt},i=4k"), InvalidIterationCount),
        (format!("r={n},{salt},i=99999999999"), IterationCountTooHigh),
        (format!("r={n},{salt},i=2147483647"), IterationCountTooHigh),
        (format!("r={n},{salt},i=1000001"), IterationCountTooHigh),
        (format!("r={n},s=!!!!,i=4096"), InvalidBase64),
        (format!("r={n},s=fs3IXBy7U7+IvVj,i=4096"), InvalidBase64), // not a multiple of 4
        (format!("r={n},s=fs3IXBy7U7+IvVjZ=,i=4096"), InvalidBase64), // stray padding
        (format!("r=X{},{salt},i=4096", &n[1..]), NonceMismatch), // does not start with ours
        (format!("r={},{salt},i=4096", &ours[..20]), NonceMismatch), // shorter than ours
        (format!("r={ours},{salt},i=4096"), NonceMismatch), // equal: no server part
        (format!("r=,{salt},i=4096"), NonceMismatch),
        (format!("r={ours} x,{salt},i=4096"), InvalidNonce), // space is not `printable`
        (format!("r={ours}\u{e9},{salt},i=4096"), InvalidNonce),
        (format!("m=ext,r={n},{salt},i=4096"), MandatoryExtension),
        (format!("r={n},{salt},i=4096,x=ext"), TrailingData),
        (format!("r={n},{salt},i=4096,"), TrailingData),
        (format!("r={n},{salt},i=4096\0"), EmbeddedNul),
    ];
    for (msg, expected) in cases {
        assert_eq!(server_first_error(msg.as_bytes(), cap), expected, "{msg:?}");
    }
    assert_eq!(
        server_first_error(b"r=9IZ2O01zb9IgiIZ1WJ/zgpJB\xff\xfe,s=AA==,i=1", cap),
        ScramError::NotUtf8
    );
}

#[test]
fn iteration_cap_is_inclusive() {
    let at_cap = format!("r={PSQL_SERVER_NONCE},s=fs3IXBy7U7+IvVjZ,i=4096");
    let mut scram = ScramClient::with_nonce(PSQL_NONCE);
    assert_eq!(
        scram
            .handle_server_first(at_cap.as_bytes(), 4096)
            .unwrap()
            .iterations,
        4096
    );
    assert_eq!(
        server_first_error(at_cap.as_bytes(), 4095),
        ScramError::IterationCountTooHigh
    );

    let at_default = format!("r={PSQL_SERVER_NONCE},s=fs3IXBy7U7+IvVjZ,i=1000000");
    let mut scram = ScramClient::with_nonce(PSQL_NONCE);
    let request = scram
        .handle_server_first(at_default.as_bytes(), DEFAULT_MAX_SCRAM_ITERATIONS)
        .unwrap();
    assert_eq!(request.iterations, DEFAULT_MAX_SCRAM_ITERATIONS);
}

#[test]
fn malformed_server_final() {
    let genuine = PSQL_SERVER_FINAL;
    let short = format!("v={}", STANDARD.encode([0u8; 31]));
    let long = format!("v={}", STANDARD.encode([0u8; 33]));
    use ScramError::*;
    #[rustfmt::skip]
    let cases: Vec<(Vec<u8>, ScramError)> = vec![
        (b"".to_vec(), Empty),
        (b"e=invalid-proof".to_vec(), ServerError),
        (b"e=other-error,x=1".to_vec(), ServerError),
        (short.into_bytes(), InvalidServerSignature),
        (long.into_bytes(), InvalidServerSignature),
        (b"v=".to_vec(), InvalidServerSignature),
        (b"v=not base64!".to_vec(), InvalidBase64),
        (genuine.trim_end_matches('=').into(), InvalidBase64), // padding stripped
        (genuine.replacen("v=", "x=", 1).into(), UnexpectedAttribute),
        (format!("m=ext,{genuine}").into(), UnexpectedAttribute),
        // Even the genuine signature does not pass with anything after it.
        (format!("{genuine},x=1").into(), TrailingData),
        (format!("{genuine}\0").into(), EmbeddedNul),
        ([genuine.as_bytes(), b"\xff"].concat(), NotUtf8),
    ];
    for (msg, expected) in cases {
        assert_eq!(
            server_final_error(&msg),
            expected,
            "{}",
            String::from_utf8_lossy(&msg)
        );
    }
}

#[test]
fn out_of_order_calls() {
    let keys = ScramKeys::from_salted_password(&[0; 32]);

    // client-final before server-first.
    let mut scram = ScramClient::with_nonce(PSQL_NONCE);
    assert_eq!(
        scram.client_final_message(&keys),
        Err(ScramError::OutOfOrder)
    );

    // server-final before anything.
    let mut scram = ScramClient::with_nonce(PSQL_NONCE);
    assert_eq!(
        scram.handle_server_final(PSQL_SERVER_FINAL.as_bytes()),
        Err(ScramError::OutOfOrder)
    );
    assert!(!scram.is_verified());

    // server-final before client-final.
    let mut scram = ScramClient::with_nonce(PSQL_NONCE);
    scram
        .handle_server_first(PSQL_SERVER_FIRST.as_bytes(), 4096)
        .unwrap();
    assert_eq!(
        scram.handle_server_final(PSQL_SERVER_FINAL.as_bytes()),
        Err(ScramError::OutOfOrder)
    );

    // A second server-first (a second `R 11`).
    let mut scram = ScramClient::with_nonce(PSQL_NONCE);
    scram
        .handle_server_first(PSQL_SERVER_FIRST.as_bytes(), 4096)
        .unwrap();
    assert_eq!(
        scram.handle_server_first(PSQL_SERVER_FIRST.as_bytes(), 4096),
        Err(ScramError::OutOfOrder)
    );

    // client-final twice.
    let mut scram = psql_awaiting_server_final();
    assert_eq!(
        scram.client_final_message(&keys),
        Err(ScramError::OutOfOrder)
    );
    assert_eq!(
        scram.handle_server_final(PSQL_SERVER_FINAL.as_bytes()),
        Err(ScramError::OutOfOrder),
        "an out-of-order call ends the exchange"
    );

    // Anything after success is a caller bug; it ends the exchange rather than being ignored.
    let mut scram = psql_awaiting_server_final();
    scram
        .handle_server_final(PSQL_SERVER_FINAL.as_bytes())
        .unwrap();
    assert_eq!(
        scram.handle_server_final(PSQL_SERVER_FINAL.as_bytes()),
        Err(ScramError::OutOfOrder)
    );
    assert!(!scram.is_verified());

    // After a rejected server-first, even the genuine one is refused.
    let mut scram = ScramClient::with_nonce(PSQL_NONCE);
    assert_eq!(
        scram.handle_server_first(b"i=0", 4096),
        Err(ScramError::MissingNonce)
    );
    assert_eq!(
        scram.handle_server_first(PSQL_SERVER_FIRST.as_bytes(), 4096),
        Err(ScramError::OutOfOrder)
    );
}

#[test]
fn random_nonce_client_first() {
    let a = ScramClient::new().unwrap();
    let b = ScramClient::new().unwrap();
    let first = a.client_first_message();
    let nonce = first.strip_prefix(b"n,,n=,r=").unwrap();
    assert_eq!(nonce.len(), 24);
    assert!(nonce
        .iter()
        .all(|&c| matches!(c, 0x21..=0x2b | 0x2d..=0x7e)));
    assert_ne!(first, b.client_first_message());
}

#[test]
fn saslprep_table() {
    // RFC 4013 §3 examples, and what PostgreSQL does (`fe-auth-scram.c` and the server): a
    // password SASLprep rejects is used as its raw bytes.
    assert_eq!(&*saslprep_or_raw("\u{2168}".as_bytes()), b"IX");
    assert_eq!(&*saslprep_or_raw("I\u{AD}X".as_bytes()), b"IX");
    assert_eq!(&*saslprep_or_raw("\u{AA}".as_bytes()), b"a");
    assert_eq!(&*saslprep_or_raw(b"user"), b"user");
    assert_eq!(&*saslprep_or_raw("\u{A0}x".as_bytes()), b" x"); // non-ASCII space → space
                                                                // Rejected by SASLprep: the raw bytes, as the server stores them.
    assert_eq!(&*saslprep_or_raw(b"\x07"), b"\x07");
    assert_eq!(&*saslprep_or_raw(b"a\x07b"), b"a\x07b");
    let bidi = "\u{627}\u{31}".as_bytes();
    assert_eq!(&*saslprep_or_raw(bidi), bidi);
    // Not UTF-8 at all.
    assert_eq!(&*saslprep_or_raw(b"\xffpw"), b"\xffpw");
    assert_eq!(&*saslprep_or_raw(b""), b"");
}

#[test]
fn derive_applies_saslprep() {
    let salt = b"salt";
    let proof = |keys: &ScramKeys| {
        let mut scram = ScramClient::with_nonce("N");
        scram
            .handle_server_first(b"r=NS,s=c2FsdA==,i=2", 2)
            .unwrap();
        scram.client_final_message(keys).unwrap()
    };
    let ix = proof(&ScramKeys::derive(b"IX", salt, 2));
    assert_eq!(
        proof(&ScramKeys::derive("\u{2168}".as_bytes(), salt, 2)),
        ix
    );
    assert_eq!(
        proof(&ScramKeys::derive("I\u{AD}X".as_bytes(), salt, 2)),
        ix
    );
    assert_ne!(proof(&ScramKeys::derive(b"ix", salt, 2)), ix);
}

#[test]
fn secrets_stay_out_of_debug() {
    let keys = ScramKeys::derive(b"foobar", b"salt", 1);
    assert_eq!(format!("{keys:?}"), "ScramKeys(<redacted>)");
    assert_eq!(format!("{:?}", keys.clone()), "ScramKeys(<redacted>)");

    let scram = psql_awaiting_server_final();
    let debug = format!("{scram:?}");
    assert!(!debug.contains("AmNK"), "{debug}");
    assert!(!debug.contains(&PSQL_SERVER_FINAL[2..10]), "{debug}");
}

#[test]
fn errors_are_small_copy_std_errors() {
    fn assert_traits<E: std::error::Error + Copy + Send + Sync + 'static>() {}
    assert_traits::<ScramError>();
    assert!(std::mem::size_of::<ScramError>() <= 1);
    assert_eq!(
        ScramError::NonceMismatch.to_string(),
        "invalid SCRAM response (nonce mismatch)"
    );
}

/// A cheap stand-in for the fuzzer: mutate valid messages and check every result is a typed error
/// (or the one genuine message), never a panic. Deterministic xorshift, no clock.
#[test]
fn mutated_server_messages_never_panic_or_verify() {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let keys = ScramKeys::derive(
        b"foobar",
        &STANDARD.decode("fs3IXBy7U7+IvVjZ").unwrap(),
        4096,
    );
    for _ in 0..3000 {
        let mut first = PSQL_SERVER_FIRST.as_bytes().to_vec();
        let mut last = PSQL_SERVER_FINAL.as_bytes().to_vec();
        for msg in [&mut first, &mut last] {
            for _ in 0..=next() % 3 {
                let at = (next() % (msg.len() as u64 + 1)) as usize;
                let byte = next() as u8;
                match next() % 3 {
                    0 if at < msg.len() => msg[at] = byte,
                    1 if at < msg.len() => {
                        msg.remove(at);
                    }
                    _ => msg.insert(at, byte),
                }
            }
        }
        let mut scram = ScramClient::with_nonce(PSQL_NONCE);
        if scram.handle_server_first(&first, 4096).is_err() {
            continue;
        }
        let client_final = scram.client_final_message(&keys).unwrap();
        let result = scram.handle_server_final(&last);
        // Canonical base64 has one spelling per value, so only the genuine exchange verifies.
        let genuine = first == PSQL_SERVER_FIRST.as_bytes()
            && last == PSQL_SERVER_FINAL.as_bytes()
            && client_final == PSQL_CLIENT_FINAL.as_bytes();
        assert_eq!(result.is_ok(), genuine, "{first:?} {last:?}");
        assert_eq!(scram.is_verified(), genuine);
    }
}
