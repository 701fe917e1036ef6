//! Fuzzes schedules: `lookout_scheduler::Schedule::parse(expr, tz)`, then `next_after` and
//! `upcoming` on whatever parses.
//!
//! Must never panic; every instant returned is strictly after the one asked from, `upcoming` is
//! strictly increasing and yields at most `n`; the stored form (`to_parts`) parses back
//! (`from_parts`) to a schedule with the same next run.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/schedule_parse.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check(data));
