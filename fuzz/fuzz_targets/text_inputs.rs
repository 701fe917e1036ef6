//! Fuzzes what people type: durations (`parse_duration`) and store URLs (`StoreUrl::parse`,
//! `redact`). Never a panic; a store URL's error never shows its credential.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/text_inputs.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check(data));
