//! Fuzz body `tls`: the parsers a TLS peer reaches before it is authenticated: the answer to
//! SSLRequest, the server certificate's `signatureAlgorithm` (for channel binding), and its
//! subject and subjectAltName (for `verify-full`'s Common Name fallback).
//!
//! Input: `[options] bytes`.
//! - `options % 2 == 0`: `bytes` is what the first read after SSLRequest returned.
//! - `options % 2 == 1`: `bytes` is a server certificate (DER).
//!
//! Invariants:
//! - `S` or `N` is accepted exactly when it is the only byte (CVE-2021-23222); an `E` first byte
//!   is an error answer whatever follows; anything else is an error.
//! - The certificate reader never panics; when it names a hash, the channel binding data has
//!   that hash's length, and the input starts with a DER SEQUENCE; inputs above
//!   `MAX_CERTIFICATE_LEN` are refused. The name reader never panics either, returns no name
//!   holding a NUL, and refuses what the hash reader refuses as too long.

use crate::wire::tls::{
    common_names_without_san, end_point_hash, ssl_reply, tls_server_end_point, EndPointHash,
    HostKind, SslReply, MAX_CERTIFICATE_LEN,
};

/// Runs one input; panics only if an invariant above is broken.
pub fn tls(data: &[u8]) {
    let (options, bytes) = match data.split_first() {
        Some((&options, rest)) => (options, rest),
        None => (0, &[][..]),
    };
    if options % 2 == 0 {
        let reply = ssl_reply(bytes);
        match (bytes, reply) {
            (b"S", Ok(SslReply::Accepted)) | (b"N", Ok(SslReply::Refused)) => {}
            ([b'E', ..], Ok(SslReply::Error)) => {}
            ([b'S' | b'N', _, ..], Err(_)) => {}
            ([first, ..], Err(_)) if !matches!(first, b'S' | b'N' | b'E') => {}
            ([], Err(_)) => {}
            (bytes, reply) => panic!("ssl_reply({bytes:?}) = {reply:?}"),
        }
        return;
    }
    for kind in [HostKind::Name, HostKind::Address] {
        if let Ok(names) = common_names_without_san(bytes, kind) {
            assert!(names.iter().all(|n| !n.contains('\0')));
        }
        if bytes.len() > MAX_CERTIFICATE_LEN {
            assert!(common_names_without_san(bytes, kind).is_err());
        }
    }
    match end_point_hash(bytes) {
        Ok(hash) => {
            assert_eq!(bytes.first(), Some(&0x30), "a certificate is a SEQUENCE");
            assert!(bytes.len() <= MAX_CERTIFICATE_LEN);
            let len = match hash {
                EndPointHash::Sha224 => 28,
                EndPointHash::Sha256 => 32,
                EndPointHash::Sha384 => 48,
                EndPointHash::Sha512 => 64,
            };
            assert_eq!(tls_server_end_point(bytes).map(|d| d.len()), Ok(len));
        }
        Err(e) => assert_eq!(tls_server_end_point(bytes), Err(e)),
    }
}
