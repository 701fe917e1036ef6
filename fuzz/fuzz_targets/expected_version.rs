//! Fuzzes `[[watch]] expected_version` specs (`ExpectedVersion::parse`): never a panic; accepted
//! exactly when well formed, the path or command kept as written; a refusal names the spec.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/expected_version.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check(data));
