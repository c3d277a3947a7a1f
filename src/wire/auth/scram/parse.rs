//! Parsers for the two SCRAM messages the server sends: server-first-message (the data of
//! AuthenticationSASLContinue, `R 11`) and server-final-message (AuthenticationSASLFinal, `R 12`).
//!
//! Invariant: total over arbitrary bytes. Every input yields a value or a typed [`ScramError`];
//! no indexing, no unchecked arithmetic, no allocation beyond the decoded base64. The grammar is
//! RFC 5802 §7; where libpq is laxer (trailing data, leading zeros) we follow the RFC and say so.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::ScramError;

/// A validated server-first-message.
pub(super) struct ServerFirst<'a> {
    /// The whole message as text: it is part of AuthMessage.
    pub(super) text: &'a str,
    /// `r=`: the client nonce followed by at least one server character.
    pub(super) nonce: &'a str,
    /// `s=`, decoded.
    pub(super) salt: Vec<u8>,
    /// `i=`, in `1..=max_iterations`.
    pub(super) iterations: u32,
}

/// Parses `r=<nonce>,s=<base64 salt>,i=<count>` and checks it against our nonce and the
/// iteration cap (the validations of libpq's `read_server_first_message`, plus the cap and a
/// strictly longer nonce).
pub(super) fn server_first<'a>(
    msg: &'a [u8],
    client_nonce: &str,
    max_iterations: u32,
) -> Result<ServerFirst<'a>, ScramError> {
    let text = as_text(msg)?;
    let mut attributes = text.split(',');

    let first = attributes.next().unwrap_or_default();
    // RFC 5802 §5.1: `m=` announces a mandatory extension; a client that does not know it MUST
    // fail the exchange. None is defined, so any `m=` fails.
    if first.starts_with("m=") {
        return Err(ScramError::MandatoryExtension);
    }
    let nonce = first.strip_prefix("r=").ok_or(ScramError::MissingNonce)?;
    // We echo this nonce in client-final-message, so it must be RFC 5802 `printable`.
    if !nonce.bytes().all(is_printable) {
        return Err(ScramError::InvalidNonce);
    }
    // libpq checks only the prefix ("nonce mismatch"); an equal nonce means the server added no
    // randomness of its own, which defeats replay protection (malisper/pgrust#53).
    if !nonce
        .strip_prefix(client_nonce)
        .is_some_and(|server_part| !server_part.is_empty())
    {
        return Err(ScramError::NonceMismatch);
    }

    let salt = attributes
        .next()
        .and_then(|a| a.strip_prefix("s="))
        .ok_or(ScramError::MissingSalt)?;
    // An empty salt is valid base64 and libpq accepts it; it only weakens the server's own secret.
    let salt = STANDARD
        .decode(salt)
        .map_err(|_| ScramError::InvalidBase64)?;

    let iterations = attributes
        .next()
        .and_then(|a| a.strip_prefix("i="))
        .ok_or(ScramError::MissingIterations)?;
    let iterations = iteration_count(iterations, max_iterations)?;

    // RFC 5802 allows extensions here, but none is defined and PostgreSQL sends none; libpq only
    // warns about trailing data, rust-postgres rejects it. Rejecting keeps AuthMessage exactly
    // what we understood.
    if attributes.next().is_some() {
        return Err(ScramError::TrailingData);
    }
    Ok(ServerFirst {
        text,
        nonce,
        salt,
        iterations,
    })
}

/// Parses `v=<base64 ServerSignature>`; `e=<error>` becomes [`ScramError::ServerError`]. Returns
/// the 32 signature bytes for the caller to compare in constant time.
pub(super) fn server_final(msg: &[u8]) -> Result<[u8; 32], ScramError> {
    let text = as_text(msg)?;
    let (first, rest) = match text.split_once(',') {
        Some((first, rest)) => (first, Some(rest)),
        None => (text, None),
    };
    // RFC 5802 §7: server-final-message = (server-error / verifier) ["," extensions].
    // PostgreSQL sends an ErrorResponse instead of `e=`, but libpq handles it and so do we.
    if first.starts_with("e=") {
        return Err(ScramError::ServerError);
    }
    let verifier = first
        .strip_prefix("v=")
        .ok_or(ScramError::UnexpectedAttribute)?;
    if rest.is_some() {
        return Err(ScramError::TrailingData);
    }
    let signature = STANDARD
        .decode(verifier)
        .map_err(|_| ScramError::InvalidBase64)?;
    // The length is public (always 32 for SHA-256); only the value needs constant time.
    <[u8; 32]>::try_from(signature.as_slice()).map_err(|_| ScramError::InvalidServerSignature)
}

/// The checks libpq makes before parsing any SCRAM message (`fe-auth-scram.c`): non-empty, no
/// NUL (it compares `inputlen` with `strlen`), and UTF-8 text.
fn as_text(msg: &[u8]) -> Result<&str, ScramError> {
    if msg.is_empty() {
        return Err(ScramError::Empty);
    }
    if msg.contains(&0) {
        return Err(ScramError::EmbeddedNul);
    }
    std::str::from_utf8(msg).map_err(|_| ScramError::NotUtf8)
}

/// `i=`: RFC 5802 `posit-number = %x31-39 *DIGIT` (no sign, no leading zero), at most the cap.
fn iteration_count(digits: &str, max_iterations: u32) -> Result<u32, ScramError> {
    let well_formed = digits
        .bytes()
        .next()
        .is_some_and(|b| matches!(b, b'1'..=b'9'))
        && digits.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(ScramError::InvalidIterationCount);
    }
    // Only digits remain, so a parse failure is overflow: a valid count, just far too high.
    let count: u32 = digits
        .parse()
        .map_err(|_| ScramError::IterationCountTooHigh)?;
    if count > max_iterations {
        return Err(ScramError::IterationCountTooHigh);
    }
    Ok(count)
}

/// RFC 5802 §7 `printable = %x21-2B / %x2D-7E`: visible ASCII except `,`.
pub(super) fn is_printable(b: u8) -> bool {
    matches!(b, 0x21..=0x2b | 0x2d..=0x7e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iteration_count_grammar() {
        assert_eq!(iteration_count("4096", 10_000), Ok(4096));
        assert_eq!(iteration_count("1", 1), Ok(1));
        for bad in ["", "0", "04096", "+5", "-1", "4096 ", " 4096", "4e3", "٣"] {
            assert_eq!(
                iteration_count(bad, u32::MAX),
                Err(ScramError::InvalidIterationCount),
                "{bad:?}"
            );
        }
        assert_eq!(
            iteration_count("4294967296", u32::MAX),
            Err(ScramError::IterationCountTooHigh)
        );
        assert_eq!(iteration_count("4294967295", u32::MAX), Ok(u32::MAX));
    }

    #[test]
    fn server_final_with_extension_is_trailing_data() {
        let sig = STANDARD.encode([7u8; 32]);
        assert_eq!(
            server_final(format!("v={sig},x=1").as_bytes()),
            Err(ScramError::TrailingData)
        );
        assert_eq!(server_final(format!("v={sig}").as_bytes()), Ok([7u8; 32]));
    }
}
