//! Fuzzes lookoutd's configuration file: `lookout_config::parse(text, origin)`.
//!
//! Must never panic; an error is one line per mistake (the crate's contract: each names the key,
//! its line and column), and every line starts with the origin.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
});
