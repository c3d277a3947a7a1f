//! Fuzz body `scram`: arbitrary server-first and server-final messages (and a user's password)
//! through [`ScramClient`], checked against an independent model of RFC 5802 as PostgreSQL
//! speaks it.
//!
//! Input: `[options] server-first \n server-final \n password`.
//! - `options % 4` picks the iteration cap: 1 000 000 (the default), 4096, 1, `u32::MAX`.
//! - `(options / 4) % 2` picks the client: the psql nonce with `n=` (0) or the RFC 7677 nonce with
//!   `n=user` (1), so the two published exchanges replay to the verified state.
//!
//! Invariants:
//! - server-first is accepted exactly when the model accepts it (`r=` our nonce plus at least one
//!   printable character, `s=` canonical base64, `i=` a positive number within the cap, nothing
//!   else), with the model's salt and count; `m=`, over-cap and non-positive counts get their
//!   named errors. Any error poisons the exchange.
//! - client-final is `c=biws,r=<server nonce>,p=<proof>` and the proof is the one RFC 5802 §3
//!   computes from the salted password, recomputed here with HMAC directly.
//! - server-final verifies exactly when it is `v=` and the canonical base64 of the ServerSignature
//!   computed here; nothing verifies twice.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::wire::auth::{saslprep_or_raw, ScramClient, ScramError, ScramKeys};

/// Exchanges whose SaltedPassword is known: the psql exchange in rust-postgres' tests (password
/// `foobar`), RFC 7677 §3 (`pencil`), and one recorded from a real server. The input's option
/// byte picks the client (nonce and user) among the first two.
struct Vector {
    nonce: &'static str,
    user: &'static str,
    salt_b64: &'static str,
    iterations: u32,
    salted_password: [u8; 32],
}

const VECTORS: [Vector; 3] = [
    Vector {
        nonce: "9IZ2O01zb9IgiIZ1WJ/zgpJB",
        user: "",
        salt_b64: "fs3IXBy7U7+IvVjZ",
        iterations: 4096,
        salted_password: [
            0xe4, 0xb4, 0xd9, 0xc6, 0x52, 0xdb, 0x2c, 0xf7, 0x7c, 0x39, 0x9a, 0x78, 0x1d, 0x6b,
            0x4f, 0x23, 0xc3, 0x0d, 0x3f, 0x95, 0x92, 0x5f, 0x93, 0x2f, 0xe5, 0x81, 0xe8, 0x5d,
            0x46, 0x49, 0x96, 0x2c,
        ],
    },
    Vector {
        nonce: "rOprNGfwEbeRWgbNEkqO",
        user: "user",
        salt_b64: "W22ZaJ0SNY7soEsUEjb6gQ==",
        iterations: 4096,
        salted_password: [
            0xc4, 0xa4, 0x95, 0x10, 0x32, 0x3a, 0xb4, 0xf9, 0x52, 0xca, 0xc1, 0xfa, 0x99, 0x44,
            0x19, 0x39, 0xe7, 0x8e, 0xa7, 0x4d, 0x6b, 0xe8, 0x1d, 0xdf, 0x70, 0x96, 0xe8, 0x75,
            0x13, 0xdc, 0x61, 0x5d,
        ],
    },
    // Recorded from PostgreSQL 15 (`scram_user`, password `password`, the psql nonce): the
    // seeds `fuzz/seeds/{scram,handshake}/recorded_*` replay it to the verified state.
    Vector {
        nonce: "9IZ2O01zb9IgiIZ1WJ/zgpJB",
        user: "",
        salt_b64: "vc0zT9W5EpYT8hno2xZyhA==",
        iterations: 4096,
        salted_password: [
            0x85, 0x93, 0x3e, 0x65, 0x24, 0x08, 0xe2, 0xd7, 0x37, 0x69, 0x69, 0x51, 0xa0, 0xe6,
            0xcf, 0x8c, 0x4b, 0x93, 0xb4, 0xbe, 0xce, 0xd3, 0xd6, 0x1d, 0x59, 0x57, 0x2b, 0xbb,
            0x1e, 0x0c, 0x55, 0xb3,
        ],
    },
];

const CAPS: [u32; 4] = [1_000_000, 4096, 1, u32::MAX];

/// See the module header for the input layout and the invariants.
pub fn scram(data: &[u8]) {
    let _ = exchange(data);
}

/// How far an input got, so the unit tests can check the seeds reach the deep states.
#[derive(Debug, PartialEq, Eq)]
enum Reached {
    RejectedServerFirst,
    RejectedServerFinal,
    Verified,
}

fn exchange(data: &[u8]) -> Reached {
    let (options, [server_first, server_final, password]) = super::split_parts::<3>(data);
    let cap = CAPS[usize::from(options % 4)];
    let vector = &VECTORS[usize::from((options / 4) % 2)];
    let mut client = ScramClient::with_nonce_and_user(vector.user, vector.nonce);
    let client_first = client.client_first_message().to_vec();

    let result = client.handle_server_first(server_first, cap);
    let model = model_server_first(server_first, vector.nonce, cap);
    let request = match (result, model) {
        (Ok(request), Ok((salt, iterations))) => {
            assert_eq!((&request.salt, request.iterations), (&salt, iterations));
            request
        }
        (Err(error), Err(expected)) => {
            if let Some(expected) = expected {
                assert_eq!(error, expected, "server-first {server_first:?}");
            }
            assert_poisoned(&mut client);
            return Reached::RejectedServerFirst;
        }
        (result, model) => panic!("server-first {server_first:?}: {result:?}, model {model:?}"),
    };

    // The published exchanges use their published SaltedPassword (so their server-final
    // verifies); any other salt uses one cheap PBKDF2 round of the fuzzed password, so a hostile
    // `i=` costs nothing here and the user's password bytes reach SASLprep.
    let (salted, keys) = match known_salted_password(&request.salt, request.iterations) {
        Some(salted) => (salted, ScramKeys::from_salted_password(&salted)),
        None => {
            let prepped = saslprep_or_raw(password);
            let salted = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(&prepped, &request.salt, 1);
            (salted, ScramKeys::derive(password, &request.salt, 1))
        }
    };

    let client_final = match client.client_final_message(&keys) {
        Ok(message) => message,
        Err(e) => panic!("client-final refused after an accepted server-first: {e:?}"),
    };
    let nonce = text_after(server_first, b"r=", b',');
    let without_proof = [&b"c=biws,r="[..], nonce].concat();
    let auth_message = [
        client_first.get(3..).unwrap_or_default(), // client-first-bare: without `n,,`
        b",",
        server_first,
        b",",
        &without_proof,
    ]
    .concat();
    let client_key = hmac(&salted, b"Client Key");
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    let mut proof = hmac(&stored_key, &auth_message);
    for (p, k) in proof.iter_mut().zip(client_key) {
        *p ^= k;
    }
    let expected_final = [
        &without_proof[..],
        b",p=",
        STANDARD.encode(proof).as_bytes(),
    ]
    .concat();
    assert_eq!(client_final, expected_final, "client-final");

    let signature = server_signature(&salted, &auth_message);
    let genuine = [&b"v="[..], STANDARD.encode(signature).as_bytes()].concat();
    let verified = client.handle_server_final(server_final).is_ok();
    assert_eq!(
        verified,
        server_final == genuine,
        "server-final {server_final:?}"
    );
    assert_eq!(client.is_verified(), verified);
    assert_eq!(
        client.handle_server_final(&genuine),
        Err(ScramError::OutOfOrder),
        "a second server-final"
    );
    if verified {
        Reached::Verified
    } else {
        Reached::RejectedServerFinal
    }
}

/// After any error every step is `OutOfOrder` and nothing verifies.
fn assert_poisoned(client: &mut ScramClient) {
    let keys = ScramKeys::from_salted_password(&[0; 32]);
    assert_eq!(
        client.client_final_message(&keys),
        Err(ScramError::OutOfOrder)
    );
    assert_eq!(
        client.handle_server_final(b"v="),
        Err(ScramError::OutOfOrder)
    );
    assert!(!client.is_verified());
}

/// The model of server-first: `Ok((salt, iterations))` if valid, else `Err(Some(error))` when
/// the message is well-formed text and its error is one the target pins, `Err(None)` otherwise.
#[allow(clippy::type_complexity)]
fn model_server_first(
    msg: &[u8],
    client_nonce: &str,
    cap: u32,
) -> Result<(Vec<u8>, u32), Option<ScramError>> {
    let text = match std::str::from_utf8(msg) {
        Ok(text) if !text.is_empty() && !text.contains('\0') => text,
        _ => return Err(None),
    };
    if text.starts_with("m=") {
        return Err(Some(ScramError::MandatoryExtension));
    }
    let parts: Vec<&str> = text.split(',').collect();
    let [r, s, i] = parts[..] else {
        return Err(None);
    };
    let nonce_ok = r.strip_prefix("r=").is_some_and(|n| {
        n.len() > client_nonce.len()
            && n.starts_with(client_nonce)
            && n.bytes().all(|b| matches!(b, 0x21..=0x2b | 0x2d..=0x7e))
    });
    let salt = s.strip_prefix("s=").and_then(|s| STANDARD.decode(s).ok());
    let (true, Some(salt), Some(digits)) = (nonce_ok, salt, i.strip_prefix("i=")) else {
        return Err(None);
    };
    // RFC 5802 `posit-number = %x31-39 *DIGIT`: `0`, `-1`, `+1`, `01` and `` are all malformed.
    let positive = !digits.is_empty()
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit());
    if !positive {
        return Err(Some(ScramError::InvalidIterationCount));
    }
    match digits.parse::<u32>() {
        Ok(n) if n <= cap => Ok((salt, n)),
        _ => Err(Some(ScramError::IterationCountTooHigh)),
    }
}

/// The bytes after the first `prefix` up to `end` (or the end of `msg`).
fn text_after<'a>(msg: &'a [u8], prefix: &[u8], end: u8) -> &'a [u8] {
    let rest = msg.strip_prefix(prefix).unwrap_or_default();
    let stop = rest.iter().position(|&b| b == end).unwrap_or(rest.len());
    &rest[..stop]
}

/// The SaltedPassword of a published or recorded exchange with this salt and count, so that
/// exchange's server-final verifies; `None` for any other salt (the fuzzer's).
pub(super) fn known_salted_password(salt: &[u8], iterations: u32) -> Option<[u8; 32]> {
    VECTORS
        .iter()
        .find(|v| {
            STANDARD.decode(v.salt_b64).ok().as_deref() == Some(salt) && v.iterations == iterations
        })
        .map(|v| v.salted_password)
}

/// RFC 5802 §3 ServerSignature, computed here with HMAC directly (not with the crate's code).
pub(super) fn server_signature(salted: &[u8; 32], auth_message: &[u8]) -> [u8; 32] {
    hmac(&hmac(salted, b"Server Key"), auth_message)
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().into()
        }
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Vec<u8> {
        let path = format!("{}/fuzz/seeds/scram/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(path).unwrap()
    }

    #[test]
    fn published_exchanges_verify() {
        assert_eq!(exchange(&seed("psql_exchange")), Reached::Verified);
        assert_eq!(exchange(&seed("rfc7677_exchange")), Reached::Verified);
        assert_eq!(exchange(&seed("psql_cap_4096")), Reached::Verified);
    }

    #[test]
    fn seeds_reach_each_rejection() {
        assert_eq!(exchange(&seed("cap_1_over")), Reached::RejectedServerFirst);
        assert_eq!(
            exchange(&seed("other_salt_saslprep_password")),
            Reached::RejectedServerFinal
        );
        assert_eq!(
            exchange(&seed("server_final_trailing")),
            Reached::RejectedServerFinal
        );
    }

    #[test]
    fn model_pins_the_named_errors() {
        let nonce = VECTORS[0].nonce;
        let with_count = |i: &str| format!("r={nonce}x,s=AA==,i={i}");
        let model = |m: &str, cap| model_server_first(m.as_bytes(), nonce, cap);
        assert_eq!(model(&with_count("7"), 7), Ok((vec![0], 7)));
        assert_eq!(
            model(&with_count("8"), 7),
            Err(Some(ScramError::IterationCountTooHigh))
        );
        assert_eq!(
            model(&with_count("4294967296"), u32::MAX),
            Err(Some(ScramError::IterationCountTooHigh))
        );
        for bad in ["0", "-1", "+1", "01", ""] {
            assert_eq!(
                model(&with_count(bad), 7),
                Err(Some(ScramError::InvalidIterationCount))
            );
        }
        assert_eq!(model("m=x", 7), Err(Some(ScramError::MandatoryExtension)));
        assert_eq!(model(&format!("r={nonce},s=AA==,i=1"), 7), Err(None));
    }
}
