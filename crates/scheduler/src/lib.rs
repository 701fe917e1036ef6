//! # lookout-scheduler — scheduled tasks and host jobs that never run silently (not built yet)
//!
//! This crate will own cron / interval / once schedules with IANA time zones, atomic claiming of due
//! runs, the `TaskRunner` trait and its runners (command, one-shot container, in-process), the
//! concurrency and missed-run policies, timeouts, progress heartbeats, run history and overdue
//! detection.
//!
//! It takes `now` from an injected clock; it never sleeps on the wall clock to decide anything.
