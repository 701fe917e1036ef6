//! Replays the `config_parse` fuzz target's committed corpus (`fuzz/corpus-seeds/config_parse`) through
//! the very checks the target runs (`fuzz/checks/config_parse.rs`), so `cargo test` keeps every input
//! the fuzzer was seeded with or found, without cargo-fuzz.

#[path = "../../../fuzz/checks/config_parse.rs"]
mod checks;

#[test]
fn the_committed_fuzz_corpus_passes_the_targets_checks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus-seeds/config_parse");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| f.unwrap().path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no corpus in {}", dir.display());
    for input in &inputs {
        let data = std::fs::read(input).unwrap();
        // A failing input names itself before its panic.
        eprintln!("{}", input.display());
        checks::check(&data);
    }
}
