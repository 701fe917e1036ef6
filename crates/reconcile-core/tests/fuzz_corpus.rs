//! Replays the committed corpora of the `event_decode` and `replay_request` fuzz targets
//! (`fuzz/corpus-seeds/<target>`) through the very checks the targets run (`fuzz/checks/`), so
//! `cargo test` keeps every input the fuzzer was seeded with or found, without cargo-fuzz.

#[path = "../../../fuzz/checks/event_decode.rs"]
mod checks;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;
#[path = "../../../fuzz/checks/replay_request.rs"]
mod replay_request;

#[test]
fn the_committed_fuzz_corpus_passes_the_targets_checks() {
    replay::corpus("event_decode", checks::check);
}

#[test]
fn the_replay_request_corpus_passes_its_checks() {
    replay::corpus("replay_request", replay_request::check);
}
