//! # lookout-reconcile-core — the event-sourced reconciler
//!
//! Lookout's brain folds every fact, reported as an event, into a state; checks invariants; and
//! decides actions. This crate holds:
//!
//! - [`vocabulary`]: the ingest contract of the product, as a decoder that names the field at fault;
//! - [`model`]: the [`Model`] trait a domain implements (state, event and action types; pure
//!   `decode`, `apply`, `check_invariants`, `reconcile`) over [`LoggedEvent`], the crate's own
//!   record of the event log (no store type), and [`host`]: Lookout's own host model with the
//!   invariants I1–I8 (`docs/reconciler.md`; I8 is a run alive but stalled: heartbeats that keep
//!   coming with the same `progress` for [`Limits::stall_after`]);
//! - [`driver`]: the tick driver, which owns the loop, retries, idempotency and metrics, reaching
//!   the world only through [`EventSource`], [`Execute`]/[`Effects`] and [`Clock`]; each tick it
//!   hands the whole current set of violations to the effects ([`Execute::violations`]), whose
//!   alert lifecycle (lookoutd: lookout-notify's) is the only place an alert fires, repeats,
//!   folds, is held or resolves;
//! - [`alerts`]: the view of those alerts — which begin and which end with a hand-over
//!   ([`Violating::diff`]), shown by dry-run, replay and the tick report — and their texts;
//! - [`source`]: [`EventSource`], the log and the driver's key/value space; with the feature
//!   `store` (not default) it is implemented for `lookout_store::Store`, and without it the crate
//!   does not depend on `lookout-store`;
//! - [`replay`]: [`dry_run`] and [`replay`](replay::replay), which decide without executing;
//! - [`filter`]: the `container_status` noise filter; [`channel`]: finding missed messages;
//!   [`metrics`]: Prometheus metrics;
//! - [`flow`]: the message flow checks — unanswered messages and quiet channels — over the same
//!   events, pure like the model ([`flow::Flow`], judged at a `now` it is given).
//!
//! It is **not** for I/O in the model: `apply`, `check_invariants` and `reconcile` never touch the
//! store, the network or the clock (`now` is an argument). Nor does it deliver notifications or
//! repair anything itself: the host's [`Effects`] do.
//!
//! ```
//! use chrono::{TimeDelta, TimeZone, Utc};
//! use lookout_reconcile_core::host::{apply, check_invariants, reconcile, Event, HostEvent, HostState, Limits};
//! use serde_json::json;
//!
//! let t0 = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap();
//! let mut state = HostState::default();
//! let event = |seq, kind: &str, payload| HostEvent { seq, at: t0, fact: Event::from_payload(kind, &payload) };
//! apply(&mut state, &event(1, "run_started", json!({"run_id": "r1", "group": "g", "run_kind": "task", "container": "c1"})));
//! apply(&mut state, &event(2, "container_status", json!({"container": "c1", "status": "exited"})));
//! apply(&mut state, &event(2, "container_status", json!({"container": "c1", "status": "running"}))); // seq 2 again: no-op
//!
//! let now = t0 + TimeDelta::minutes(1);
//! let violations = check_invariants(&state, &Limits::default(), now);
//! assert_eq!(violations[0].invariant, "I1"); // a working run with no running container
//! let actions = reconcile(&state, &Limits::default(), now);
//! assert_eq!(serde_json::to_value(&actions[0]).unwrap()["repair"], "run_to_idle");
//! ```

pub mod alerts;
pub mod channel;
pub mod driver;
pub mod error;
pub mod event;
pub mod filter;
pub mod flow;
pub mod host;
pub mod metrics;
pub mod model;
pub mod replay;
pub mod source;
mod time;
pub mod vocabulary;

pub use alerts::{AlertAction, AlertState, Violating};
pub use channel::{ChannelMessage, ChannelPage, ChannelSource, find_missed};
pub use driver::{
    Clock, Decision, Driver, DriverConfig, DriverState, Effects, Execute, ManualClock, TickReport,
    TokioClock, decide,
};
pub use error::{RangeProblem, ReconcileError};
pub use filter::ContainerStatusFilter;
pub use host::{Action, HostEvent, HostModel, HostState, Limits};
pub use metrics::ReconcileMetrics;
pub use model::{LoggedEvent, Model, ModelAction, Violation};
pub use replay::{DryRun, Replay, ReplayRequest, dry_run, replay_events};
pub use source::EventSource;
