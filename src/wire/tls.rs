//! The sans-IO half of TLS: the server's one-byte answer to SSLRequest (PostgreSQL protocol
//! docs, "SSL Session Encryption"), and the `tls-server-end-point` channel binding data of a
//! server certificate (RFC 5929 §4.1), and the Common Names libpq falls back to when a
//! certificate has no subjectAltName of the host's kind, read by a small DER reader that looks
//! at nothing but the certificate's outer SEQUENCE, its `signatureAlgorithm`, its subject and
//! its subjectAltName.
//!
//! Invariant: an `S` must be the only byte the server has sent. Bytes that arrived with it were
//! written before the TLS handshake by whoever sits on the path, so they are an error, never
//! protocol data (CVE-2021-23222, libpq's fix in fe-connect.c: "received unencrypted data after
//! SSL response").

use super::WireError;

/// What the server answered to SSLRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslReply {
    /// `S`: start the TLS handshake on this socket.
    Accepted,
    /// `N`: the server will not do TLS; the same socket continues in plaintext.
    Refused,
    /// `E`: an ErrorResponse (a server older than 7.0, or one that rejects the request). It is
    /// not shown: the server is not authenticated yet (CVE-2024-10977); the socket is closed.
    Error,
}

/// Reads the server's reply to SSLRequest from `received`, everything the first read returned.
///
/// ```
/// use wirepool::wire::tls::{ssl_reply, SslReply};
/// assert_eq!(ssl_reply(b"S").unwrap(), SslReply::Accepted);
/// assert_eq!(ssl_reply(b"N").unwrap(), SslReply::Refused);
/// assert!(ssl_reply(b"S\x16\x03\x01").is_err()); // bytes stuffed after S
/// ```
///
/// # Errors
/// [`WireError::DataAfterSslReply`] if bytes follow `S` or `N`; [`WireError::NotPostgres`] for
/// any other first byte (an HTTP server's `H`), or none.
pub fn ssl_reply(received: &[u8]) -> Result<SslReply, WireError> {
    match received {
        [b'S'] => Ok(SslReply::Accepted),
        [b'N'] => Ok(SslReply::Refused),
        [b'S' | b'N', ..] => Err(WireError::DataAfterSslReply),
        // An ErrorResponse carries its length and fields; none of it is read.
        [b'E', ..] => Ok(SslReply::Error),
        [other, ..] => Err(WireError::NotPostgres { first_byte: *other }),
        [] => Err(WireError::NotPostgres { first_byte: 0 }),
    }
}

/// The hash `tls-server-end-point` channel binding uses for a certificate (RFC 5929 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndPointHash {
    /// SHA-224.
    Sha224,
    /// SHA-256 (also for certificates signed with MD5 or SHA-1).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// Why a certificate gives no channel binding data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateError {
    /// The DER does not have the shape of an X.509 certificate's outer `SEQUENCE {
    /// tbsCertificate, signatureAlgorithm, ... }`.
    Malformed,
    /// The signature algorithm has no single hash (Ed25519, Ed448) or is unknown: RFC 5929
    /// leaves the binding undefined (libpq: "could not find digest for NID UNDEF").
    NoDigest,
}

impl std::fmt::Display for CertificateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CertificateError::Malformed => "the server certificate is not valid DER",
            CertificateError::NoDigest => {
                "the server certificate's signature algorithm has no digest (Ed25519, Ed448 or \
                 unknown), so tls-server-end-point channel binding is undefined for it"
            }
        })
    }
}

impl std::error::Error for CertificateError {}

/// Largest certificate the reader looks at; real ones are a few KiB.
pub const MAX_CERTIFICATE_LEN: usize = 64 * 1024;

/// OID bodies (DER content octets).
mod oid {
    const RSA: [u8; 8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    pub const MD5_RSA: [u8; 9] = pkcs1(4);
    pub const SHA1_RSA: [u8; 9] = pkcs1(5);
    pub const RSA_PSS: [u8; 9] = pkcs1(10);
    pub const SHA256_RSA: [u8; 9] = pkcs1(11);
    pub const SHA384_RSA: [u8; 9] = pkcs1(12);
    pub const SHA512_RSA: [u8; 9] = pkcs1(13);
    pub const SHA224_RSA: [u8; 9] = pkcs1(14);
    const fn pkcs1(n: u8) -> [u8; 9] {
        [
            RSA[0], RSA[1], RSA[2], RSA[3], RSA[4], RSA[5], RSA[6], RSA[7], n,
        ]
    }
    pub const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    pub const ECDSA_SHA224: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01];
    pub const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    pub const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    pub const ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    pub const DSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03];
    pub const DSA_SHA224: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x01];
    pub const DSA_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x02];
    pub const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
    pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    pub const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    pub const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
    pub const SHA224: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04];
    /// id-at-commonName, 2.5.4.3.
    pub const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
    /// id-ce-subjectAltName, 2.5.29.17.
    pub const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
}

/// DER tags used here.
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;
/// `[3]` constructed, explicit: tbsCertificate's `extensions`.
const CONTEXT_3: u8 = 0xa3;
/// GeneralName's `dNSName [2] IMPLICIT IA5String` and `iPAddress [7] IMPLICIT OCTET STRING`.
const DNS_NAME: u8 = 0x82;
const IP_ADDRESS: u8 = 0x87;
/// `[0]` constructed, explicit: RSASSA-PSS-params' `hashAlgorithm`.
const CONTEXT_0: u8 = 0xa0;

/// One DER TLV off the front of `input`: (tag, content, rest). Definite lengths only (DER).
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), CertificateError> {
    let (&tag, rest) = input.split_first().ok_or(CertificateError::Malformed)?;
    let (&first, rest) = rest.split_first().ok_or(CertificateError::Malformed)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // Long form: 1..=3 length bytes are enough for MAX_CERTIFICATE_LEN.
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 {
            return Err(CertificateError::Malformed);
        }
        let (bytes, rest) = rest
            .split_at_checked(n)
            .ok_or(CertificateError::Malformed)?;
        let len = bytes
            .iter()
            .try_fold(0usize, |acc, &b| {
                acc.checked_mul(256)?.checked_add(usize::from(b))
            })
            .ok_or(CertificateError::Malformed)?;
        (len, rest)
    };
    let (content, rest) = rest
        .split_at_checked(len)
        .ok_or(CertificateError::Malformed)?;
    Ok((tag, content, rest))
}

fn expect(input: &[u8], want: u8) -> Result<(&[u8], &[u8]), CertificateError> {
    match tlv(input)? {
        (tag, content, rest) if tag == want => Ok((content, rest)),
        _ => Err(CertificateError::Malformed),
    }
}

/// The hash `tls-server-end-point` uses for the certificate `der` (RFC 5929 §4.1, libpq's
/// `pgtls_get_peer_certificate_hash`): the hash of its `signatureAlgorithm`, SHA-256 in place of
/// MD5 or SHA-1; for RSASSA-PSS the hash named in its parameters (SHA-1 when absent, so
/// SHA-256). Reads only the outer SEQUENCE and the AlgorithmIdentifier after tbsCertificate.
///
/// ```
/// use wirepool::wire::tls::{end_point_hash, CertificateError};
/// assert_eq!(end_point_hash(b"\x30\x00"), Err(CertificateError::Malformed));
/// ```
///
/// # Errors
/// [`CertificateError::Malformed`] for bytes that are not shaped like a certificate (or exceed
/// [`MAX_CERTIFICATE_LEN`]); [`CertificateError::NoDigest`] for Ed25519, Ed448 and unknown
/// algorithms.
pub fn end_point_hash(der: &[u8]) -> Result<EndPointHash, CertificateError> {
    if der.len() > MAX_CERTIFICATE_LEN {
        return Err(CertificateError::Malformed);
    }
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (_tbs, rest) = expect(certificate, SEQUENCE)?;
    let (algorithm, _) = expect(rest, SEQUENCE)?;
    let (oid, params) = expect(algorithm, OID)?;
    use EndPointHash::{Sha224, Sha256, Sha384, Sha512};
    Ok(match oid {
        o if o == oid::MD5_RSA || o == oid::SHA1_RSA => Sha256,
        o if o == oid::ECDSA_SHA1 || o == oid::DSA_SHA1 => Sha256,
        o if o == oid::SHA256_RSA || o == oid::ECDSA_SHA256 || o == oid::DSA_SHA256 => Sha256,
        o if o == oid::SHA224_RSA || o == oid::ECDSA_SHA224 || o == oid::DSA_SHA224 => Sha224,
        o if o == oid::SHA384_RSA || o == oid::ECDSA_SHA384 => Sha384,
        o if o == oid::SHA512_RSA || o == oid::ECDSA_SHA512 => Sha512,
        o if o == oid::RSA_PSS => pss_hash(params)?,
        _ => return Err(CertificateError::NoDigest),
    })
}

/// RSASSA-PSS-params (RFC 4055 §3.1): `SEQUENCE { hashAlgorithm [0] AlgorithmIdentifier DEFAULT
/// sha1, ... }`.
fn pss_hash(params: &[u8]) -> Result<EndPointHash, CertificateError> {
    let (fields, _) = expect(params, SEQUENCE)?;
    let hash_oid = match tlv(fields) {
        Ok((CONTEXT_0, explicit, _)) => {
            let (algorithm, _) = expect(explicit, SEQUENCE)?;
            expect(algorithm, OID)?.0
        }
        // hashAlgorithm absent: SHA-1.
        _ => oid::SHA1,
    };
    Ok(match hash_oid {
        o if o == oid::SHA1 || o == oid::SHA256 => EndPointHash::Sha256,
        o if o == oid::SHA224 => EndPointHash::Sha224,
        o if o == oid::SHA384 => EndPointHash::Sha384,
        o if o == oid::SHA512 => EndPointHash::Sha512,
        _ => return Err(CertificateError::NoDigest),
    })
}

/// The `tls-server-end-point` channel binding data for the server certificate `der`: its hash
/// with [`end_point_hash`]'s algorithm.
///
/// # Errors
/// As [`end_point_hash`].
pub fn tls_server_end_point(der: &[u8]) -> Result<Vec<u8>, CertificateError> {
    use sha2::Digest;
    Ok(match end_point_hash(der)? {
        EndPointHash::Sha224 => sha2::Sha224::digest(der).to_vec(),
        EndPointHash::Sha256 => sha2::Sha256::digest(der).to_vec(),
        EndPointHash::Sha384 => sha2::Sha384::digest(der).to_vec(),
        EndPointHash::Sha512 => sha2::Sha512::digest(der).to_vec(),
    })
}

/// What kind of host a certificate's names are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// A DNS name: checked against `dNSName` entries.
    Name,
    /// An IP address literal: checked against `iPAddress` entries.
    Address,
}

/// The subject's Common Names of the certificate `der` when it has no subjectAltName entry of
/// the host's kind, else nothing: libpq's `pgtls_verify_peer_name_matches_certificate_guts`
/// (fe-secure-openssl.c) checks the CN only then. Names that are not UTF-8 text, or that
/// hold a NUL (a forged name, CVE-2009-4034), are left out.
///
/// ```
/// use wirepool::wire::tls::{common_names_without_san, CertificateError, HostKind};
/// assert_eq!(
///     common_names_without_san(b"\x30\x00", HostKind::Name),
///     Err(CertificateError::Malformed)
/// );
/// ```
///
/// # Errors
/// [`CertificateError::Malformed`] for bytes not shaped like a certificate's tbsCertificate
/// (or over [`MAX_CERTIFICATE_LEN`]).
pub fn common_names_without_san(
    der: &[u8],
    kind: HostKind,
) -> Result<Vec<String>, CertificateError> {
    if der.len() > MAX_CERTIFICATE_LEN {
        return Err(CertificateError::Malformed);
    }
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    // version [0] EXPLICIT (optional), serialNumber, signature, issuer, validity, subject,
    // subjectPublicKeyInfo, issuerUniqueID [1], subjectUniqueID [2], extensions [3] EXPLICIT.
    let mut rest = tbs;
    if rest.first() == Some(&CONTEXT_0) {
        rest = tlv(rest)?.2;
    }
    for _ in 0..4 {
        rest = tlv(rest)?.2; // serialNumber, signature, issuer, validity
    }
    let (subject, after_subject) = expect(rest, SEQUENCE)?;
    rest = tlv(after_subject)?.2; // subjectPublicKeyInfo
    let mut has_san_of_kind = false;
    while !rest.is_empty() {
        let (tag, content, next) = tlv(rest)?;
        if tag == CONTEXT_3 {
            has_san_of_kind = san_has(content, kind)?;
        }
        rest = next;
    }
    if has_san_of_kind {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    let mut rdns = subject;
    while !rdns.is_empty() {
        let (set, next) = expect(rdns, SET)?;
        let mut attributes = set;
        while !attributes.is_empty() {
            let (attribute, more) = expect(attributes, SEQUENCE)?;
            let (oid, value) = expect(attribute, OID)?;
            if oid == oid::COMMON_NAME {
                let (tag, text, _) = tlv(value)?;
                let text_tag = matches!(tag, UTF8_STRING | PRINTABLE_STRING | IA5_STRING);
                match std::str::from_utf8(text) {
                    Ok(name) if text_tag && !name.contains('\0') => names.push(name.to_owned()),
                    _ => {}
                }
            }
            attributes = more;
        }
        rdns = next;
    }
    Ok(names)
}

/// Whether `extensions` (the content of tbsCertificate's `[3]`) hold a subjectAltName with an
/// entry of `kind`.
fn san_has(extensions: &[u8], kind: HostKind) -> Result<bool, CertificateError> {
    let (mut list, _) = expect(extensions, SEQUENCE)?;
    while !list.is_empty() {
        let (extension, next) = expect(list, SEQUENCE)?;
        let (oid, mut fields) = expect(extension, OID)?;
        if oid == oid::SUBJECT_ALT_NAME {
            if fields.first() == Some(&BOOLEAN) {
                fields = tlv(fields)?.2; // critical
            }
            let (value, _) = expect(fields, OCTET_STRING)?;
            let (mut names, _) = expect(value, SEQUENCE)?;
            let wanted = match kind {
                HostKind::Name => DNS_NAME,
                HostKind::Address => IP_ADDRESS,
            };
            while !names.is_empty() {
                let (tag, _, more) = tlv(names)?;
                if tag == wanted {
                    return Ok(true);
                }
                names = more;
            }
        }
        list = next;
    }
    Ok(false)
}

/// Whether the certificate name `pattern` (a CN) names `host`, by libpq's
/// `pq_verify_peer_name_matches_certificate_name` (fe-secure-common.c): equal ignoring ASCII
/// case, or `*.rest` matching a host that is one label followed by `.rest` (the wildcard never
/// spans a dot, and `*.example.com` does not name `example.com`).
///
/// ```
/// use wirepool::wire::tls::name_matches;
/// assert!(name_matches("DB.example.com", "db.example.com"));
/// assert!(name_matches("*.example.com", "db.example.com"));
/// assert!(!name_matches("*.example.com", "a.db.example.com"));
/// assert!(!name_matches("*.example.com", "example.com"));
/// ```
pub fn name_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) if suffix.starts_with('.') && suffix.len() > 1 => {
            let Some(split) = host.len().checked_sub(suffix.len()) else {
                return false;
            };
            match (host.get(..split), host.get(split..)) {
                (Some(label), Some(tail)) => {
                    !label.is_empty() && !label.contains('.') && tail.eq_ignore_ascii_case(suffix)
                }
                _ => false,
            }
        }
        _ => pattern.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_exactly_one_label() {
        assert!(name_matches("localhost", "LOCALHOST"));
        assert!(name_matches("*.pg.example", "a.pg.example"));
        assert!(!name_matches("*.pg.example", ".pg.example"));
        assert!(!name_matches("*.pg.example", "pg.example"));
        assert!(!name_matches("*.pg.example", "a.b.pg.example"));
        assert!(!name_matches("*", "localhost"));
        assert!(!name_matches("*.", "a."));
        assert!(!name_matches("db*.example", "db1.example"));
        assert!(name_matches("*.ex", "é.ex"));
    }

    #[test]
    fn truncated_certificates_are_malformed_not_a_panic() {
        let mut der = vec![0x30, 0x82, 0x01, 0x00];
        der.extend([0x30, 0x03, 0x02, 0x01, 0x01]);
        for cut in 0..der.len() {
            let _ = common_names_without_san(&der[..cut], HostKind::Name);
        }
        assert_eq!(
            common_names_without_san(&der, HostKind::Name),
            Err(CertificateError::Malformed)
        );
    }

    #[test]
    fn one_byte_answers() {
        assert_eq!(ssl_reply(b"S"), Ok(SslReply::Accepted));
        assert_eq!(ssl_reply(b"N"), Ok(SslReply::Refused));
        assert_eq!(ssl_reply(b"E\0\0\0\x08abcd"), Ok(SslReply::Error));
    }

    #[test]
    fn anything_after_the_answer_is_refused() {
        assert_eq!(ssl_reply(b"SR"), Err(WireError::DataAfterSslReply));
        assert_eq!(
            ssl_reply(b"NR\0\0\0\x08"),
            Err(WireError::DataAfterSslReply)
        );
    }

    #[test]
    fn other_bytes_are_not_an_answer() {
        let http = WireError::NotPostgres { first_byte: b'H' };
        assert_eq!(ssl_reply(b"HTTP/1.1 400 Bad Request"), Err(http));
        assert_eq!(
            ssl_reply(b""),
            Err(WireError::NotPostgres { first_byte: 0 })
        );
    }
}
