//! Fuzzes lookoutd's configuration file: `lookout_config::parse(text, origin)`.
//!
//! Must never panic; an error is one line per mistake (the crate's contract: each names the key,
//! its line and column), and every line starts with the origin.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/config_parse.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check(data));
