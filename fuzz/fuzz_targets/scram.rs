//! Fuzz target `scram`: arbitrary server-first/server-final messages through the SCRAM client.
//! Input layout and invariants: `wirepool::fuzzing::scram` (src/fuzzing/scram.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wirepool::fuzzing::scram(data));
