//! Replays a fuzz target's committed corpus (`fuzz/corpus-seeds/<target>`) through its checks: the
//! one loop the crates' `fuzz_corpus` tests share.

/// Runs `check` on every file of `fuzz/corpus-seeds/<target>`, naming each before its check (so a
/// failing input names itself before its panic); panics when there is none.
pub(crate) fn corpus(target: &str, check: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus-seeds")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| f.unwrap().path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no corpus in {}", dir.display());
    for input in &inputs {
        eprintln!("{}", input.display());
        check(&std::fs::read(input).unwrap());
    }
}
