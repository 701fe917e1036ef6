//! Replays the `expected_version` fuzz target's committed corpus
//! (`fuzz/corpus-seeds/expected_version`) through the very checks the target runs
//! (`fuzz/checks/expected_version.rs`), so `cargo test` keeps every input without cargo-fuzz.

#[path = "../../../fuzz/checks/expected_version.rs"]
mod checks;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn the_committed_fuzz_corpus_passes_the_targets_checks() {
    replay::corpus("expected_version", checks::check);
}
