//! Replays the `event_decode` fuzz target's committed corpus (`fuzz/corpus-seeds/event_decode`) through
//! the very checks the target runs (`fuzz/checks/event_decode.rs`), so `cargo test` keeps every input
//! the fuzzer was seeded with or found, without cargo-fuzz.

#[path = "../../../fuzz/checks/event_decode.rs"]
mod checks;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn the_committed_fuzz_corpus_passes_the_targets_checks() {
    replay::corpus("event_decode", checks::check);
}
