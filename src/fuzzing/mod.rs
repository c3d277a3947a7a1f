//! The bodies of the fuzz targets: one `pub fn <target>(data: &[u8])` per target, each feeding
//! arbitrary bytes into the crate and checking the invariants the target names.
//!
//! Why here and not in `fuzz/`: the libFuzzer targets (`fuzz/fuzz_targets/*.rs`) and the replay
//! test (`replay.rs`, run by `cargo test`) call the same functions, so every seed, corpus and
//! regression file is checked on stable with no fuzzer installed. The module exists only under
//! `cfg(fuzzing)`, which cargo-fuzz sets (quinn-proto gates its `fuzzing` module on it too), and
//! `cfg(test)`: a user's build does not contain it. It is not part of the API.
//!
//! Contract of every function: it returns normally for any input, and panics only when the crate
//! broke an invariant (that panic is the finding). It never panics on the input being malformed.
//! All targets but two are pure (bytes in, values out); `simple_query` and `extended_query`
//! drive a real [`Connection`](crate::Connection) against a scripted server on a loopback
//! socket, on a per-thread tokio runtime. How to run the targets and what each asserts:
//! `docs/fuzzing.md`.
//!
//! Input layouts are chosen so that recorded seeds stay readable: a leading option byte, then
//! messages separated by `\n` where the messages are text (see each function's doc).

mod conninfo;
mod decode_backend;
mod error_fields;
mod extended_query;
mod frontend_roundtrip;
mod handshake;
mod scram;
mod simple_query;
mod tls;

#[cfg(test)]
mod replay;

pub use self::conninfo::conninfo;
pub use self::decode_backend::decode_backend;
pub use self::error_fields::error_fields;
pub use self::extended_query::extended_query;
pub use self::frontend_roundtrip::frontend_roundtrip;
pub use self::handshake::handshake;
pub use self::scram::scram;
pub use self::simple_query::simple_query;
pub use self::tls::tls;

/// The option byte and up to `N` `\n`-separated parts of `data`; the last part takes the rest
/// (newlines included), missing parts are empty.
fn split_parts<const N: usize>(data: &[u8]) -> (u8, [&[u8]; N]) {
    let (options, mut rest) = match data.split_first() {
        Some((&options, rest)) => (options, rest),
        None => (0, &[][..]),
    };
    let mut parts: [&[u8]; N] = [&[]; N];
    for (i, part) in parts.iter_mut().enumerate() {
        let last = i + 1 == N;
        match rest.iter().position(|&b| b == b'\n') {
            Some(at) if !last => {
                *part = &rest[..at];
                rest = &rest[at + 1..];
            }
            _ => {
                *part = rest;
                rest = &[];
            }
        }
    }
    (options, parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_parts_layout() {
        assert_eq!(split_parts::<3>(b""), (0, [&b""[..], b"", b""]));
        assert_eq!(split_parts::<3>(b"7a\nb"), (b'7', [&b"a"[..], b"b", b""]));
        assert_eq!(split_parts::<2>(b"xa\nb\nc"), (b'x', [&b"a"[..], b"b\nc"]));
    }
}
