//! Replays every fuzz seed, corpus and regression file through the same functions the libFuzzer
//! targets call, in plain `cargo test` on the stable toolchain with no fuzzer installed: a crash
//! the fuzzer once found stays fixed, and the recorded server transcripts stay valid inputs.
//!
//! Layout (see docs/fuzzing.md), per target:
//! - `fuzz/seeds/<target>/`: named seeds, recorded from a real server or written from the
//!   protocol documentation and RFCs (never minimized away);
//! - `fuzz/corpus/<target>/`: the minimized corpus of past runs (libFuzzer's hash names);
//! - `fuzz/regressions/<target>/`: each input that once crashed a target, named after what it shows.
//!
//! A target with no seeds fails the test: an empty directory replays nothing.

use std::fs;
use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("conninfo", super::conninfo),
    ("decode_backend", super::decode_backend),
    ("error_fields", super::error_fields),
    ("extended_query", super::extended_query),
    ("frontend_roundtrip", super::frontend_roundtrip),
    ("handshake", super::handshake),
    ("scram", super::scram),
    ("simple_query", super::simple_query),
    ("tls", super::tls),
];

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, run) = TARGETS.iter().find(|(name, _)| *name == target).unwrap();
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = files_in(&fuzz.join("seeds").join(target));
    assert!(!seeds.is_empty(), "fuzz/seeds/{target} has no inputs");
    let corpus = files_in(&fuzz.join("corpus").join(target));
    let regressions = files_in(&fuzz.join("regressions").join(target));
    for file in seeds.iter().chain(&corpus).chain(&regressions) {
        let data = fs::read(file).unwrap();
        // A panic names the file, so the failing input is one `cargo fuzz run <target> <file>` away.
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", file.display());
    }
}

#[test]
fn every_target_has_a_replay() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut on_disk: Vec<String> = files_in(&fuzz)
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    on_disk.sort();
    let mut replayed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    replayed.sort();
    assert_eq!(on_disk, replayed);
}

#[test]
fn conninfo_corpus() {
    replay("conninfo");
}

#[test]
fn decode_backend_corpus() {
    replay("decode_backend");
}

#[test]
fn error_fields_corpus() {
    replay("error_fields");
}

#[test]
fn frontend_roundtrip_corpus() {
    replay("frontend_roundtrip");
}

#[test]
fn handshake_corpus() {
    replay("handshake");
}

#[test]
fn scram_corpus() {
    replay("scram");
}

#[test]
fn simple_query_corpus() {
    replay("simple_query");
}

#[test]
fn tls_corpus() {
    replay("tls");
}

#[test]
fn extended_query_corpus() {
    replay("extended_query");
}
