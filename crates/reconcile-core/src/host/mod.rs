//! The built-in host model: channels, chats and message batches in flight, runs, containers,
//! deliveries, tasks, boot state and watchdog targets, folded from the product's event vocabulary.
//!
//! Pure: [`apply`](fn@apply), [`check_invariants`] and [`reconcile`] are plain functions over
//! plain data; the time they reason about is the events' `at` and the `now` they are given. The
//! invariants I1–I8 and the actions are documented in `docs/reconciler.md`.
//!
//! I8 (stalled runs): each run keeps the last `progress` it reported (any JSON value, compared for
//! equality) and when it last changed; a run that is alive (not orphaned, not silent) and whose
//! progress has not changed for [`Limits::stall_after`] raises
//! `⏳ <task> alive but stalled: no progress for 5m (last: <progress>)` (see [`stalled_text`]),
//! shown as is by [`AlertAction::text`](crate::alerts::AlertAction::text). A run that never
//! reported progress is never stalled; a silent run is I3, not I8.
//!
//! The model is split by concern: the [`HostEvent`] it folds (`facts.rs`, over the crate's typed [`Event`]), the state
//! (`state.rs`) and its fold [`apply`](fn@apply) (`apply.rs`), the invariants and their
//! [`Limits`] (`invariants.rs`), and the actions [`reconcile`] decides (`actions.rs`); this
//! module ties them into [`HostModel`].

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{LoggedEvent, Model, Violation};

mod actions;
mod apply;
mod facts;
mod invariants;
mod state;

pub use crate::event::{Event, RunFact};
pub use actions::{ACTION_KINDS, Action, Mark, Notice, Repair, reconcile, recovered_text};
pub use apply::apply;
pub use facts::HostEvent;
pub use invariants::{
    Invariant, Limits, PROGRESS_TEXT_MAX, check_invariants, progress_text, stalled_text,
};
pub use state::{
    ALIVE_STATUSES, Batch, Boot, Channel, Chat, Container, Delivery, HostState, PendingNotice, Run,
    Target, Task,
};

/// How long recovered message ids and notices are remembered (by event time).
pub const MEMORY: TimeDelta = TimeDelta::hours(24);

/// Lookout's host model: [`apply`](fn@apply), [`check_invariants`] and [`reconcile`] with its
/// [`Limits`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostModel {
    /// The thresholds.
    pub limits: Limits,
}

impl HostModel {
    /// A model with these limits.
    pub fn new(limits: Limits) -> Self {
        HostModel { limits }
    }
}

impl Model for HostModel {
    type State = HostState;
    type Event = HostEvent;
    type Action = Action;

    fn decode(&self, record: &LoggedEvent) -> HostEvent {
        HostEvent::from_logged(record)
    }

    fn apply(&self, state: &mut HostState, event: &HostEvent) {
        apply(state, event);
    }

    fn check_invariants(&self, state: &HostState, now: DateTime<Utc>) -> Vec<Violation> {
        check_invariants(state, &self.limits, now)
    }

    fn reconcile(&self, state: &HostState, now: DateTime<Utc>) -> Vec<Action> {
        reconcile(state, &self.limits, now)
    }
}
