//! Fuzz target `error_fields`: arbitrary ErrorResponse/NoticeResponse bodies.
//! Input layout and invariants: `wirepool::fuzzing::error_fields` (src/fuzzing/error_fields.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wirepool::fuzzing::error_fields(data));
