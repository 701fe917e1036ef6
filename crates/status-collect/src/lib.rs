//! # lookout-status-collect — every subsystem's health in one report (not built yet)
//!
//! This crate will own `StatusDeps` (what only the host knows) and one collector per section of the
//! status report (service, deploy, channels, gateway, queue, repos/worktrees, messages, tasks,
//! host_jobs, groups, watchdog, boot), run concurrently, each with its own timeout, plus the overall
//! `pass` / `warn` / `fail` verdict.
//!
//! It is **not** allowed to let one failing section fail the whole report.
