//! The seam between the runtime and a domain: the [`Model`] trait, and the types every model shares
//! ([`LoggedEvent`], [`Violation`], [`ModelAction`]).
//!
//! The tick driver, dry-run and replay are generic over a [`Model`]; Lookout's own host model is
//! [`HostModel`](crate::host::HostModel). A host with a different domain supplies its own state, event
//! and action types and keeps the runtime (draining, retries, idempotency, the hand-over of its
//! violations to the host's alert lifecycle, metrics) for free.
//!
//! A model reads the log as [`LoggedEvent`]s, the crate's own plain record: it depends on no store
//! type. Where the records come from is the [`EventSource`](crate::EventSource)'s business.

use std::fmt::Debug;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::alerts::AlertAction;

/// One entry of an append-only event log, as the reconciler reads it: what
/// [`EventSource`](crate::EventSource) returns and [`Model::decode`] types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedEvent {
    /// Its position in the log: unique, increasing in commit order.
    pub seq: i64,
    /// When it happened (event time: what the model reasons about, never the clock).
    pub at: DateTime<Utc>,
    /// Its kind (`run_started`, `container_status` …).
    pub kind: String,
    /// What it is about, if the log records it.
    pub subject: Option<String>,
    /// Its fields.
    pub payload: serde_json::Value,
}

/// One broken invariant, as [`Model::check_invariants`] sees it at `now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The invariant's id (`I1` … `I8` for the host model).
    pub invariant: String,
    /// What it is about (a run id, a chat, a channel …): an alert is one per invariant and subject
    /// (the host's lifecycle keys it `invariant:subject`).
    pub subject: String,
    /// One line a person understands: what is wrong, since when.
    pub message: String,
    /// Since when the condition holds (as far as the state knows).
    pub since: DateTime<Utc>,
}

impl Violation {
    /// The key the runtime tracks this violation by between ticks: `invariant|subject`.
    pub fn alert_key(&self) -> String {
        format!("{}|{}", self.invariant, self.subject)
    }

    /// The firing text a person reads: "🚨 [I5] channel #slack disconnected for 3m (timeout)",
    /// or the line as is for an invariant whose line is already the product's alert text
    /// ([`OWN_TEXT`](crate::alerts::OWN_TEXT): I8, "⏳ backup alive but stalled: …").
    pub fn alert_text(&self) -> String {
        crate::alerts::firing_text(&self.invariant, &self.message)
    }
}

/// What the runtime needs to know about a model's actions.
pub trait ModelAction: Clone + Debug + Send + Sync + Serialize + 'static {
    /// The idempotency key: the same effect always has the same key, so a retried action is
    /// recognised and a succeeded one is never run again.
    fn key(&self) -> String;
    /// The action's type, as a short label (`notify`, `alert`, `repair` …) for metrics.
    fn kind(&self) -> &'static str;
    /// Whether this is a repair, executed only when `auto_repair` is on.
    fn is_repair(&self) -> bool;
    /// The action that shows an alert a hand-over of the violations begins or ends (in dry-run,
    /// replay and the tick report). The driver never executes it: it hands the violations over
    /// instead ([`Execute::violations`](crate::Execute::violations)).
    fn from_alert(alert: AlertAction) -> Self;
    /// The alert this action shows, if it is one; must return `Some` for every action made by
    /// [`ModelAction::from_alert`] (that is how the driver tells them from actions to execute).
    fn as_alert(&self) -> Option<&AlertAction>;
}

/// A domain: how events fold into a state, which invariants hold, which actions follow.
///
/// Every method is pure: no I/O, no clock (`now` is an argument). Applying must be idempotent by
/// event seq: an event with a seq at or below the last one applied changes nothing.
pub trait Model: Send + Sync + 'static {
    /// The folded state. Persisted by the driver as JSON with its cursor, so a restart resumes it.
    type State: Default + Clone + Debug + PartialEq + Send + Sync + Serialize + DeserializeOwned;
    /// A typed event.
    type Event: Debug + Send + Sync;
    /// What the model asks the world to do.
    type Action: ModelAction;

    /// Turns a log record into a typed event (never fails: an unknown or malformed record becomes
    /// an event that only advances the seq).
    fn decode(&self, record: &LoggedEvent) -> Self::Event;
    /// Folds one event into the state (a no-op when its seq was already applied).
    fn apply(&self, state: &mut Self::State, event: &Self::Event);
    /// Every invariant that does not hold at `now`, in a deterministic order.
    fn check_invariants(&self, state: &Self::State, now: DateTime<Utc>) -> Vec<Violation>;
    /// The actions the state calls for at `now` (alerts excepted: the runtime hands the
    /// violations to the host's alert lifecycle), in a deterministic order.
    fn reconcile(&self, state: &Self::State, now: DateTime<Utc>) -> Vec<Self::Action>;
}
