//! Fuzz target `simple_query`: a scripted server answers a simple query with arbitrary bytes.
//! Input layout and invariants: `wirepool::fuzzing::simple_query` (src/fuzzing/simple_query.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wirepool::fuzzing::simple_query(data));
