//! # lookout-reconcile-core — the event-sourced reconciler
//!
//! Lookout's brain folds every fact, reported as an event, into a state; checks invariants; and
//! decides actions. Today this crate holds its first part: the event [`vocabulary`], the ingest
//! contract of the product, as a decoder that names the field at fault. Still to come: the pure
//! model (`apply(state, event)`, `reconcile(state, now) -> actions`, `check_invariants(state, now)`),
//! the tick driver that drains the store's log by a persisted seq cursor, dry-run, replay and per-tick
//! metrics.
//!
//! It is **not** for I/O: the model functions never touch the store, the network or the clock; the
//! driver reaches the outside world only through traits.
//!
//! ```
//! use lookout_reconcile_core::vocabulary::decode;
//! use serde_json::json;
//!
//! let ok = decode(json!({"kind": "channel_disconnected", "channel": "slack", "reason": "timeout"}))
//!     .unwrap();
//! assert_eq!(ok.subject.as_deref(), Some("slack"));
//!
//! let bad = decode(json!({"kind": "bot_response", "chat_jid": "c1"})).unwrap_err();
//! assert_eq!(bad.field, "timestamp");
//! ```

pub mod vocabulary;
