//! Fuzz target `conninfo`: arbitrary keyword/value strings and URIs: parse, print, parse again, resolve.
//! Input layout and invariants: `wirepool::fuzzing::conninfo` (src/fuzzing/conninfo.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wirepool::fuzzing::conninfo(data));
