//! Replays the `schedule_parse` fuzz target's committed corpus (`fuzz/corpus-seeds/schedule_parse`) through
//! the very checks the target runs (`fuzz/checks/schedule_parse.rs`), so `cargo test` keeps every input
//! the fuzzer was seeded with or found, without cargo-fuzz.

#[path = "../../../fuzz/checks/schedule_parse.rs"]
mod checks;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn the_committed_fuzz_corpus_passes_the_targets_checks() {
    replay::corpus("schedule_parse", checks::check);
}
