//! The `md5` password method (protocol-flow "AuthenticationMD5Password"): the hash a client sends in
//! the PasswordMessage that answers `R 5`.
//!
//! Invariant: pure and total. Any user, password and salt give a 35-character ASCII string; nothing
//! here looks at the peer's bytes beyond the 4-byte salt the caller already framed.
//!
//! MD5 is deprecated since PostgreSQL 18 and offers no mutual authentication: the server never
//! proves it knows the password, and the inner hash is password-equivalent. Prefer SCRAM.

use std::fmt::Write as _;

use ::md5::{Digest, Md5};

/// Computes the `md5` password response:
/// `concat('md5', md5(concat(md5(concat(password, user)) as lowercase hex, salt)))`.
///
/// `user` is the `user` startup parameter exactly as sent; `salt` is the 4 bytes of
/// AuthenticationMD5Password (`R 5`). The result is 35 ASCII characters; the caller sends it
/// NUL-terminated in a PasswordMessage.
///
/// ```
/// use wirepool::wire::auth::md5_password;
///
/// // Recorded against PostgreSQL 15: the server accepted this response.
/// let sent = md5_password(b"md5_user", b"password", [0x24, 0xe3, 0x28, 0x3c]);
/// assert_eq!(sent, "md5597fc0e070c5e935e3c5b66d1115833b");
/// ```
pub fn md5_password(user: &[u8], password: &[u8], salt: [u8; 4]) -> String {
    // The inner hash is what `pg_authid.rolpassword` stores (after its own "md5" prefix).
    let inner = Md5::new()
        .chain_update(password)
        .chain_update(user)
        .finalize();
    let mut inner_hex = String::with_capacity(32);
    push_lower_hex(&mut inner_hex, &inner);

    let outer = Md5::new()
        .chain_update(inner_hex.as_bytes())
        .chain_update(salt)
        .finalize();
    let mut out = String::with_capacity(35);
    out.push_str("md5");
    push_lower_hex(&mut out, &outer);
    out
}

/// The server compares hex text, so case matters: PostgreSQL writes lowercase at both stages.
fn push_lower_hex(out: &mut String, bytes: &[u8]) {
    for byte in bytes {
        // Writing into a String cannot fail; the fmt::Result only exists for io-backed writers.
        let _ = write!(out, "{byte:02x}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_hash_matches_the_stored_rolpassword() {
        let mut hex = String::new();
        push_lower_hex(
            &mut hex,
            &Md5::new()
                .chain_update(b"password")
                .chain_update(b"md5_user")
                .finalize(),
        );
        assert_eq!(hex, "7cd2b9a92689eab2e58caf2da80afa15");
    }
}
