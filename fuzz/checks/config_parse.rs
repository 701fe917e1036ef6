//! What the `config_parse` fuzz target checks of one input, shared with the corpus replay test
//! (`crates/config/tests/fuzz_corpus.rs`).

/// Checks one fuzz input: never a panic; every line of an error starts with the origin.
pub(crate) fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = lookout_config::parse(text, "fuzz.toml") {
        let msg = e.to_string();
        for line in msg.lines() {
            assert!(
                line.starts_with("fuzz.toml"),
                "error without its origin: {msg:?}"
            );
        }
    }
}
