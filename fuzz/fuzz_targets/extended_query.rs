//! Fuzz target `extended_query`: a scripted server answers an extended query with arbitrary
//! bytes. Input layout and invariants: `wirepool::fuzzing::extended_query`
//! (src/fuzzing/extended_query.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wirepool::fuzzing::extended_query(data));
