//! # lookout-watchdog — supervise processes, containers and endpoints, and heal them (not built yet)
//!
//! This crate will own supervised targets (process, container, HTTP endpoint), their detection rules
//! (stale heartbeat, dead pid, stale version, exited or unhealthy container, failing endpoint), the
//! escalation ladder with per-tier cooldowns and a circuit breaker, and the persisted heal state.
//!
//! It acts on processes only through a `ProcessControl` trait, so every rule is testable with fakes.
