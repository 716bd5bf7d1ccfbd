//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz targets'
//! bodies, so `cargo test` checks every input the fuzzers kept (crash regressions included)
//! without a fuzzer. See `fuzz/README.md`.

#[path = "support/fuzz_bodies.rs"]
mod fuzz_bodies;

use std::path::PathBuf;

/// Runs `body` on every file of `fuzz/corpus/<target>`; the corpus must not be empty.
fn replay_corpus(target: &str, body: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for file in &files {
        let data = std::fs::read(file).expect("corpus file");
        let result = std::panic::catch_unwind(|| body(&data));
        assert!(result.is_ok(), "{} failed", file.display());
    }
}

#[test]
fn envelope_corpus() {
    replay_corpus("envelope", fuzz_bodies::envelope);
}

#[test]
fn commands_corpus() {
    replay_corpus("commands", fuzz_bodies::commands);
}

#[test]
fn machine_corpus() {
    replay_corpus("machine", fuzz_bodies::machine);
}

#[test]
fn replay_corpus_recordings() {
    replay_corpus("replay", fuzz_bodies::replay_recording);
}
