//! Fuzzes the range of `POST /debug/replay-events` (`ReplayRequest::parse`): never a panic; an
//! accepted range is ordered and within the maximum; a refused one names its field.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/replay_request.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check(data));
