//! What the scheduler tells the world: notifications for people, events for the log.

use std::sync::Mutex;

pub use lookout_common::{Severity, human_duration};

/// A message for people, routed by group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Notification {
    /// How much it matters.
    pub severity: Severity,
    /// The task's group (host jobs may have none).
    pub group: Option<String>,
    /// What it is about: rule and subject (`task-overdue:backup`), or one run's step
    /// (`task-run:42:started`).
    pub dedup_key: String,
    /// The text a person reads.
    pub text: String,
    /// This announces that the alert with the same `dedup_key` is resolved.
    pub resolves: bool,
}

/// An event for the event log, in the product's vocabulary (`run_started`, `run_heartbeat`,
/// `run_finished`), with `run_kind = "task"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunEvent {
    /// The kind.
    pub kind: String,
    /// The fields: run_id, group, run_kind, task, container?, outcome?, error?, note?, progress?.
    pub payload: serde_json::Value,
}

/// Where the scheduler reports; lookoutd implements it over its notification outbox and event log.
/// Calls must not block for long: a slow reporter delays the run it reports on.
#[async_trait::async_trait]
pub trait Reporter: Send + Sync + 'static {
    /// A message for people.
    async fn notify(&self, notification: Notification);
    /// An event for the log.
    async fn event(&self, event: RunEvent);
}

/// Something reported, as [`MemoryReporter`] keeps it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reported {
    /// A notification.
    Notification(Notification),
    /// An event.
    Event(RunEvent),
}

/// A reporter that keeps everything in memory, in order (for tests and for hosts that poll).
#[derive(Debug, Default)]
pub struct MemoryReporter {
    items: Mutex<Vec<Reported>>,
}

impl MemoryReporter {
    /// An empty reporter.
    pub fn new() -> MemoryReporter {
        MemoryReporter::default()
    }

    /// Everything reported so far.
    pub fn all(&self) -> Vec<Reported> {
        self.items.lock().expect("reporter lock").clone()
    }

    /// The notification texts so far.
    pub fn texts(&self) -> Vec<String> {
        self.notifications().into_iter().map(|n| n.text).collect()
    }

    /// The notifications so far.
    pub fn notifications(&self) -> Vec<Notification> {
        self.all()
            .into_iter()
            .filter_map(|r| match r {
                Reported::Notification(n) => Some(n),
                Reported::Event(_) => None,
            })
            .collect()
    }

    /// The events so far.
    pub fn events(&self) -> Vec<RunEvent> {
        self.all()
            .into_iter()
            .filter_map(|r| match r {
                Reported::Event(e) => Some(e),
                Reported::Notification(_) => None,
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl Reporter for MemoryReporter {
    async fn notify(&self, n: Notification) {
        self.items
            .lock()
            .expect("reporter lock")
            .push(Reported::Notification(n));
    }
    async fn event(&self, e: RunEvent) {
        self.items
            .lock()
            .expect("reporter lock")
            .push(Reported::Event(e));
    }
}

/// A reporter that only logs (through `tracing`).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogReporter;

#[async_trait::async_trait]
impl Reporter for LogReporter {
    async fn notify(&self, n: Notification) {
        tracing::info!(severity = n.severity.as_str(), group = ?n.group, key = %n.dedup_key, "{}", n.text);
    }
    async fn event(&self, e: RunEvent) {
        tracing::info!(kind = %e.kind, payload = %e.payload, "scheduler event");
    }
}
