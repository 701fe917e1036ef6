//! Replays the `text_inputs` fuzz target's committed corpus (`fuzz/corpus-seeds/text_inputs`) through
//! the very checks the target runs (`fuzz/checks/text_inputs.rs`), so `cargo test` keeps every input
//! the fuzzer was seeded with or found, without cargo-fuzz.

#[path = "../../../fuzz/checks/text_inputs.rs"]
mod checks;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn the_committed_fuzz_corpus_passes_the_targets_checks() {
    replay::corpus("text_inputs", checks::check);
}
