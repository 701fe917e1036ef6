//! # lookout-crash-detect — boot crash loops and interrupted runs (not built yet)
//!
//! This crate will own boot breadcrumbs (`BootGuard`), crash-loop detection with the cause of the last
//! failure, and interrupted-run detection over the store's `messages.processing_started_at` with the
//! stale scan.
//!
//! Detection never requeues, unlocks or replays anything by itself; recovery is an explicit policy.
