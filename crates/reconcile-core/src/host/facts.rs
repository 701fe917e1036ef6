//! The [`HostEvent`] the host model folds: an event's seq, time and typed [`Event`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::model::LoggedEvent;

/// One event: its seq, when it happened, and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEvent {
    /// Its position in the log.
    pub seq: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What it says.
    pub fact: Event,
}

impl HostEvent {
    /// Types a record of the event log.
    pub fn from_logged(e: &LoggedEvent) -> HostEvent {
        HostEvent {
            seq: e.seq,
            at: e.at,
            fact: Event::from_payload(&e.kind, &e.payload),
        }
    }
}
