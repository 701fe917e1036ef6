//! # lookout-reconcile-core — the event-sourced reconciler (not built yet)
//!
//! This crate will own Lookout's brain: a pure model (`apply(state, event)`,
//! `reconcile(state, now) -> actions`, `check_invariants(state, now)`), the tick driver that drains the
//! store's event log by a persisted seq cursor and executes actions through an injected `Effects`
//! trait, dry-run, replay of a time range, and per-tick metrics.
//!
//! It is **not** for I/O: the model functions never touch the store, the network or the clock; the
//! driver reaches the outside world only through traits.
