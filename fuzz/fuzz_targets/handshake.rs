//! Fuzz target `handshake`: a client config and arbitrary server messages through the startup state machine.
//! Input layout and invariants: `wirepool::fuzzing::handshake` (src/fuzzing/handshake.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wirepool::fuzzing::handshake(data));
