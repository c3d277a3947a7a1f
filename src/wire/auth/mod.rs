//! Password authentication computations: the `md5` response and the SCRAM-SHA-256 client
//! exchange. Pure: no I/O, no runtime, no clock; randomness only in [`ScramClient::new`], and
//! injectable ([`ScramClient::with_nonce`]) so recorded exchanges replay byte for byte.
//!
//! The handshake state machine (`wire::startup`) decides *which* method to answer and frames the
//! messages; this module only computes what goes inside them. Invariants: nothing here panics on
//! a server's bytes, and no password, key or proof reaches `Debug` or `Display`.
//!
//! Sources: PostgreSQL protocol-flow and sasl-authentication docs, RFC 5802 (SCRAM), RFC 7677
//! (SCRAM-SHA-256), RFC 4013 (SASLprep), libpq `fe-auth-scram.c`. A byte-by-byte walk through a
//! real exchange is in `docs/protocol.md (section "SCRAM-SHA-256")`.

pub mod md5;
pub mod scram;

pub use self::md5::md5_password;
pub use self::scram::{
    saslprep_or_raw, ChannelBinding, KeyRequest, ScramClient, ScramError, ScramKeys,
    DEFAULT_MAX_SCRAM_ITERATIONS, SCRAM_SHA_256, SCRAM_SHA_256_PLUS,
};
