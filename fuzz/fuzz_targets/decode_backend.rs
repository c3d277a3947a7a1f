//! Fuzz target `decode_backend`: arbitrary bytes into the streaming backend decoder, fed whole, bytewise and in chunks.
//! Input layout and invariants: `wirepool::fuzzing::decode_backend` (src/fuzzing/decode_backend.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wirepool::fuzzing::decode_backend(data));
