//! Fuzz target `tls`: the answer to SSLRequest and the server certificate's signature algorithm.
//! Input layout and invariants: `wirepool::fuzzing::tls` (src/fuzzing/tls.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wirepool::fuzzing::tls(data));
