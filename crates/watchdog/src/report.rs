//! What the watchdog tells the daemon: an event for the log and a notification, as plain data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The kind of a watchdog event in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A tier acted (`watchdog_action`).
    WatchdogAction,
    /// A target's circuit opened: the watchdog stopped acting (`watchdog_circuit_open`).
    WatchdogCircuitOpen,
    /// A target's circuit closed (`watchdog_circuit_closed`).
    WatchdogCircuitClosed,
    /// A target healed by the ladder is healthy again (`watchdog_recovered`).
    WatchdogRecovered,
    /// Several targets failing with one cause: one shared circuit opened
    /// (`watchdog_shared_circuit_open`).
    WatchdogSharedCircuitOpen,
    /// The shared circuit closed (`watchdog_shared_circuit_closed`).
    WatchdogSharedCircuitClosed,
}

impl EventKind {
    /// The kind as written in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::WatchdogAction => "watchdog_action",
            EventKind::WatchdogCircuitOpen => "watchdog_circuit_open",
            EventKind::WatchdogCircuitClosed => "watchdog_circuit_closed",
            EventKind::WatchdogRecovered => "watchdog_recovered",
            EventKind::WatchdogSharedCircuitOpen => "watchdog_shared_circuit_open",
            EventKind::WatchdogSharedCircuitClosed => "watchdog_shared_circuit_closed",
        }
    }
}

/// One event for the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchdogEvent {
    /// What happened.
    pub kind: EventKind,
    /// The target (for a shared circuit: the cause, e.g. `docker engine`).
    pub target: String,
    /// The tier (the circuit's tier for a circuit event).
    pub tier: Option<u8>,
    /// What was seen.
    pub observation: String,
    /// What was done (or why nothing more will be).
    pub action: String,
    /// Whether the action itself succeeded (`false`: it was tried and errored).
    pub ok: bool,
    /// The targets a shared circuit holds.
    pub targets: Vec<String>,
    /// When.
    pub at: DateTime<Utc>,
}

impl WatchdogEvent {
    /// The event in the ingest shape: `{"kind": "watchdog_action", "target": …, …}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "kind": self.kind.as_str(),
            "target": self.target,
            "observation": self.observation,
            "action": self.action,
            "ok": self.ok,
            "timestamp": self.at.to_rfc3339(),
        });
        if let Some(t) = self.tier {
            v["tier"] = t.into();
        }
        if !self.targets.is_empty() {
            v["targets"] = self.targets.clone().into();
        }
        v
    }
}

pub use lookout_common::Severity;

/// One message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// How loud.
    pub severity: Severity,
    /// The alert key (rule + subject), e.g. `watchdog_circuit:bridge`: an opening and its closing
    /// share it, so the daemon's alert lifecycle pairs them.
    pub key: String,
    /// Whether this resolves the alert of `key`.
    pub resolves: bool,
    /// The text, e.g. "🩹 bridge: heartbeat 95s old (stale after 90s) — wrote the restart marker (tier 1)".
    pub text: String,
}

/// One thing the watchdog did or decided, for the daemon to record and deliver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// For the event log.
    pub event: WatchdogEvent,
    /// For people.
    pub notification: Notification,
}

/// Implemented by the daemon: append the event to the log and send the notification through the
/// outbox. It should not fail the watchdog; errors are the reporter's to log.
#[async_trait::async_trait]
pub trait Reporter: Send + Sync {
    /// Records one report.
    async fn report(&self, report: Report);
}

/// A reporter that keeps every report in memory: for tests and for the bench.
#[derive(Debug, Default)]
pub struct MemoryReporter {
    reports: std::sync::Mutex<Vec<Report>>,
}

impl MemoryReporter {
    /// An empty reporter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything reported so far.
    pub fn reports(&self) -> Vec<Report> {
        self.reports.lock().unwrap().clone()
    }

    /// The notification texts so far.
    pub fn texts(&self) -> Vec<String> {
        self.reports
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.notification.text.clone())
            .collect()
    }
}

#[async_trait::async_trait]
impl Reporter for MemoryReporter {
    async fn report(&self, report: Report) {
        self.reports.lock().unwrap().push(report);
    }
}
