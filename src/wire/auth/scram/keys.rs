//! The secret half of SCRAM-SHA-256: SASLprep of the password, PBKDF2, and the HMACs of
//! RFC 5802 §3. Everything here is keyed by the password or what is derived from it.
//!
//! Invariants:
//! - No secret leaves this file except as the client proof (which is safe to send) or as the
//!   expected ServerSignature handed to the exchange for a constant-time comparison.
//! - `ScramKeys`' `Debug` is redacted; it has no `Display` and no accessor for the raw keys.
//! - Nothing here fails or panics: SASLprep falls back to raw bytes, and HMAC takes any key.

use std::borrow::Cow;
use std::fmt;

use hmac::digest::{Key, KeyInit};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The keys PBKDF2 yields for one (password, salt, iteration count): SCRAM's ClientKey and
/// ServerKey. Everything else in an exchange is cheap to compute from them.
///
/// They are password-equivalent for this server (whoever holds them can log in), so `Debug`
/// prints `ScramKeys(<redacted>)` and there is no way to read them back. `Clone` lets a pool cache
/// them per (salt, iterations) so a reconnect does not pay PBKDF2 again.
///
/// ```
/// use wirepool::wire::auth::ScramKeys;
///
/// let keys = ScramKeys::derive(b"pencil", b"salt", 1);
/// assert_eq!(format!("{keys:?}"), "ScramKeys(<redacted>)");
/// ```
#[derive(Clone)]
pub struct ScramKeys {
    client_key: [u8; 32],
    server_key: [u8; 32],
}

impl ScramKeys {
    /// Runs PBKDF2 as RFC 5802 §3 and PostgreSQL do:
    /// `SaltedPassword = PBKDF2-HMAC-SHA-256(SASLprep(password), salt, iterations)` (SASLprep by
    /// [`saslprep_or_raw`]), `ClientKey = HMAC(SaltedPassword, "Client Key")`,
    /// `ServerKey = HMAC(SaltedPassword, "Server Key")`.
    ///
    /// This is deliberately slow (`iterations` rounds of HMAC; 4096 by default on PostgreSQL, up to
    /// [`DEFAULT_MAX_SCRAM_ITERATIONS`](super::DEFAULT_MAX_SCRAM_ITERATIONS) accepted). Run it off
    /// the async executor (`spawn_blocking`) and cache the result. `iterations == 0` behaves as 1:
    /// PBKDF2's first block is always computed; the exchange never asks for 0 because
    /// [`ScramClient::handle_server_first`](super::ScramClient::handle_server_first) rejects it.
    pub fn derive(password: &[u8], salt: &[u8], iterations: u32) -> ScramKeys {
        let password = saslprep_or_raw(password);
        let salted = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(&password, salt, iterations);
        ScramKeys::from_salted_password(&salted)
    }

    /// Builds the keys from an already computed SaltedPassword (RFC 5802 §3), for a caller that
    /// stores it instead of the password, or to check [`derive`](Self::derive) against a vector.
    ///
    /// ```
    /// use wirepool::wire::auth::ScramKeys;
    ///
    /// let salted = [0u8; 32];
    /// let keys = ScramKeys::from_salted_password(&salted);
    /// # drop(keys);
    /// ```
    pub fn from_salted_password(salted_password: &[u8; 32]) -> ScramKeys {
        ScramKeys {
            client_key: hmac_sha256(salted_password, &[b"Client Key"]),
            server_key: hmac_sha256(salted_password, &[b"Server Key"]),
        }
    }

    /// `ClientProof = ClientKey XOR HMAC(SHA-256(ClientKey), AuthMessage)`. `auth_message` is
    /// passed in pieces so the exchange need not concatenate it.
    pub(super) fn client_proof(&self, auth_message: &[&[u8]]) -> [u8; 32] {
        let stored_key: [u8; 32] = Sha256::digest(self.client_key).into();
        let mut proof = hmac_sha256(&stored_key, auth_message);
        for (p, k) in proof.iter_mut().zip(self.client_key) {
            *p ^= k;
        }
        proof
    }

    /// `ServerSignature = HMAC(ServerKey, AuthMessage)`: what the server must send back in `v=`.
    pub(super) fn server_signature(&self, auth_message: &[&[u8]]) -> [u8; 32] {
        hmac_sha256(&self.server_key, auth_message)
    }
}

impl fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScramKeys(<redacted>)")
    }
}

/// SASLprep (RFC 4013) as PostgreSQL applies it to SCRAM passwords (`pg_saslprep`, called from
/// libpq's `scram_init` and from the server when it stores the secret): the normalized bytes, or
/// the raw bytes when the password is not UTF-8 or SASLprep rejects it (prohibited or unassigned
/// characters, bad bidi). Never an error, because both sides fall back the same way.
///
/// ```
/// use wirepool::wire::auth::saslprep_or_raw;
///
/// assert_eq!(&*saslprep_or_raw("I\u{AD}X".as_bytes()), b"IX"); // soft hyphen maps to nothing
/// assert_eq!(&*saslprep_or_raw("\u{2168}".as_bytes()), b"IX"); // NFKC of ROMAN NUMERAL NINE
/// assert_eq!(&*saslprep_or_raw(b"a\x07b"), b"a\x07b"); // prohibited: sent raw, as the server stores it
/// ```
pub fn saslprep_or_raw(password: &[u8]) -> Cow<'_, [u8]> {
    let Ok(text) = std::str::from_utf8(password) else {
        return Cow::Borrowed(password);
    };
    match stringprep::saslprep(text) {
        Ok(Cow::Borrowed(prepped)) => Cow::Borrowed(prepped.as_bytes()),
        Ok(Cow::Owned(prepped)) => Cow::Owned(prepped.into_bytes()),
        Err(_) => Cow::Borrowed(password),
    }
}

/// HMAC-SHA-256 with a 32-byte key over `parts` concatenated.
fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    // RFC 2104 §2 zero-pads a key shorter than the hash's 64-byte block, so padding it here is the
    // same HMAC and lets us use the fixed-size constructor: `new_from_slice` returns a Result that
    // can never be Err for HMAC, and this file has no `expect`.
    let mut block = Key::<HmacSha256>::default();
    for (b, k) in block.iter_mut().zip(key) {
        *b = *k;
    }
    let mut mac = <HmacSha256 as KeyInit>::new(&block);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc7677_salted_password() {
        let salt = [
            0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36,
            0xfa, 0x81,
        ]; // base64 "W22ZaJ0SNY7soEsUEjb6gQ=="
        let salted = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(b"pencil", &salt, 4096);
        assert_eq!(
            hex(&salted),
            "c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d"
        );
    }

    /// The intermediate values `docs/protocol.md (section "SCRAM-SHA-256")` shows for the psql exchange.
    #[test]
    fn psql_vector_intermediates() {
        let salt = [
            0x7e, 0xcd, 0xc8, 0x5c, 0x1c, 0xbb, 0x53, 0xbf, 0x88, 0xbd, 0x58, 0xd9,
        ]; // base64 "fs3IXBy7U7+IvVjZ"
        let salted = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(b"foobar", &salt, 4096);
        assert_eq!(
            hex(&salted),
            "e4b4d9c652db2cf77c399a781d6b4f23c30d3f95925f932fe581e85d4649962c"
        );
        let keys = ScramKeys::derive(b"foobar", &salt, 4096);
        assert_eq!(
            hex(&keys.client_key),
            "864e070b1cd5f07b7cd9773e8fd91b9076abd8c69230a9c3d3446b6605cb241a"
        );
        assert_eq!(
            hex(&Sha256::digest(keys.client_key)),
            "b6681b467f6a7c38378a9fbec00c6c148934665f4f1743430799e90e355e1023"
        );
        assert_eq!(
            hex(&keys.server_key),
            "6d25398604b8beef52fc171ecb2334f9bd11c5d691b5d1f92d18e608f707c618"
        );
        let auth_message: &[&[u8]] = &[
            b"n=,r=9IZ2O01zb9IgiIZ1WJ/zgpJB,",
            b"r=9IZ2O01zb9IgiIZ1WJ/zgpJBjx/oIRLs02gGSHcw1KEty3eY,s=fs3IXBy7U7+IvVjZ,i=4096,",
            b"c=biws,r=9IZ2O01zb9IgiIZ1WJ/zgpJBjx/oIRLs02gGSHcw1KEty3eY",
        ];
        assert_eq!(
            hex(&keys.client_proof(auth_message)),
            "02634aa2c8c9cd2df535395060db390537908dd1dd93b94e7e50e8e6b7b66a7f"
        );
        assert_eq!(
            hex(&keys.server_signature(auth_message)),
            "53ea69c43e5750ab6b69d9eff1ed8c91eba9880f0553ced283c097cd71c3033c"
        );
    }

    #[test]
    fn padded_key_hmac_equals_slice_key_hmac() {
        let key = [0xa5u8; 32];
        let mut reference = <HmacSha256 as Mac>::new_from_slice(&key).unwrap();
        reference.update(b"Client Key");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(hmac_sha256(&key, &[b"Client ", b"Key"]), expected);
    }

    #[test]
    fn zero_iterations_behaves_as_one() {
        let a = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(b"p", b"s", 0);
        let b = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(b"p", b"s", 1);
        assert_eq!(a, b);
    }
}
