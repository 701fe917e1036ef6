//! Fuzzes lookoutd's configuration file: `lookout_config::parse(text, origin)`.
//!
//! Must never panic; an error is one line (the crate's contract: `ConfigError`s are one-line
//! messages naming the key, its line and column) that starts with the origin.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = lookout_config::parse(text, "fuzz.toml") {
        let msg = e.to_string();
        assert!(
            msg.starts_with("fuzz.toml"),
            "error without its origin: {msg:?}"
        );
    }
});
