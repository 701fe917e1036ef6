//! Durations as the file and the flags write them (`90s`, `5m`, `1h30m`, `250ms`): lookout-common's
//! parser, so the file, the flags and the scheduler's specs accept exactly the same texts.

pub use lookout_common::duration::parse_duration;
