//! Fuzz target `frontend_roundtrip`: arbitrary field values through every frontend encoder and back.
//! Input layout and invariants: `wirepool::fuzzing::frontend_roundtrip` (src/fuzzing/frontend_roundtrip.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wirepool::fuzzing::frontend_roundtrip(data));
