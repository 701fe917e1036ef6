//! The folded state of a host: [`HostState`] and the records it keeps.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::MEMORY;

/// Container statuses that count as "a running container" for I1 (a container being created or
/// restarting is not gone).
pub const ALIVE_STATUSES: &[&str] = &["running", "restarting", "created"];

/// A channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// Connected or not.
    pub connected: bool,
    /// Since when it is in that state.
    pub since: DateTime<Utc>,
    /// Why it disconnected, if said.
    pub reason: Option<String>,
}

/// A batch of messages handed to a run and not yet answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The messages.
    pub message_ids: Vec<String>,
    /// The run answering them.
    pub run_id: Option<String>,
    /// Since when (the first dispatch not yet answered).
    pub since: DateTime<Utc>,
}

/// A chat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    /// Its channel, once known.
    pub channel: Option<String>,
    /// Its group, once known.
    pub group: Option<String>,
    /// The batch in flight.
    pub in_flight: Option<Batch>,
    /// The last inbound message.
    pub last_message_at: Option<DateTime<Utc>>,
    /// The last bot response.
    pub last_response_at: Option<DateTime<Utc>>,
}

/// A working run (a finished run leaves the state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Its group.
    pub group: String,
    /// `message` or `task`.
    pub run_kind: String,
    /// The task, for a task run.
    pub task: Option<String>,
    /// Its container.
    pub container: Option<String>,
    /// Its process (a pid), when it runs as one.
    #[serde(default)]
    pub pid: Option<u32>,
    /// When it started (or was first seen).
    pub started_at: DateTime<Utc>,
    /// Its last sign of life (start or heartbeat).
    pub last_heartbeat_at: DateTime<Utc>,
    /// Its last reported progress, as text (a heartbeat without progress leaves it as it was).
    pub progress: Option<String>,
    /// Its last reported progress as the JSON value (I8 compares these for equality). Absent in
    /// a state saved before I8, hence the default.
    #[serde(default)]
    pub progress_value: Option<Value>,
    /// When its reported progress last changed (the first report counts as a change); None while
    /// it has reported none (such a run is never stalled).
    #[serde(default)]
    pub progress_changed_at: Option<DateTime<Utc>>,
    /// The host promised heartbeats for it (its `run_started` did not say `heartbeats: false`):
    /// only such a run can be silent (I3).
    #[serde(default = "promised")]
    pub heartbeats: bool,
}

fn promised() -> bool {
    true
}

/// A container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// Its last status.
    pub status: String,
    /// Since when.
    pub since: DateTime<Utc>,
}

impl Container {
    /// Whether it counts as running for I1.
    pub fn alive(&self) -> bool {
        ALIVE_STATUSES.contains(&self.status.as_str())
    }
}

/// A pending delivery (a sent one leaves the state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Its chat.
    pub chat_jid: String,
    /// Its channel, if known.
    pub channel: Option<String>,
    /// When it was first queued.
    pub queued_at: DateTime<Utc>,
    /// Failed attempts so far.
    pub failures: u32,
    /// The last error.
    pub last_error: Option<String>,
}

/// A scheduled task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Its group.
    pub group: Option<String>,
    /// When it is due next.
    pub next_run: Option<DateTime<Utc>>,
    /// Its own grace, if its schedule gave one.
    pub grace_secs: Option<u64>,
    /// When a run of it last started.
    pub last_started_at: Option<DateTime<Utc>>,
    /// When a run of it last finished, and how.
    pub last_finished: Option<(DateTime<Utc>, Option<String>)>,
}

/// A service's boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Boot {
    /// The last start.
    pub started_at: DateTime<Utc>,
    /// Its version.
    pub version: Option<String>,
    /// When it became ready (None: booting).
    pub ready_at: Option<DateTime<Utc>>,
    /// Starts without a ready in between.
    pub starts_since_ready: u32,
}

/// A watchdog target, as its heartbeats and version stamps report it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Its last heartbeat.
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// The version it last reported.
    pub sha: Option<String>,
}

/// A notification to send because of one event (e.g. messages recovered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingNotice {
    /// The event that caused it.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// The group to tell.
    pub group: String,
    /// The channel.
    pub channel: String,
    /// The chat, if known.
    pub chat_jid: Option<String>,
    /// The new (never seen before) message ids.
    pub message_ids: Vec<String>,
}

/// The folded state of a host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    /// The seq of the last event applied (0: none).
    pub last_seq: i64,
    /// The time of the last event applied.
    pub last_event_at: Option<DateTime<Utc>>,
    /// Channels by name.
    pub channels: BTreeMap<String, Channel>,
    /// Chats by `chat_jid`.
    pub chats: BTreeMap<String, Chat>,
    /// Working runs by id.
    pub runs: BTreeMap<String, Run>,
    /// Containers by name.
    pub containers: BTreeMap<String, Container>,
    /// Pending deliveries by id.
    pub deliveries: BTreeMap<String, Delivery>,
    /// Tasks by name.
    pub tasks: BTreeMap<String, Task>,
    /// Boots by service.
    pub boots: BTreeMap<String, Boot>,
    /// Watchdog targets by name.
    pub targets: BTreeMap<String, Target>,
    /// The last deploy: sha and when.
    pub last_deploy: Option<(String, DateTime<Utc>)>,
    /// Message ids seen (received or recovered) in the last [`MEMORY`], for recovery dedup.
    pub known_messages: BTreeMap<String, DateTime<Utc>>,
    /// Notices caused by events of the last [`MEMORY`], keyed by their action's key.
    pub notices: BTreeMap<String, PendingNotice>,
    /// The size of `known_messages` at which it is next pruned.
    #[serde(default)]
    pub prune_at: usize,
}

impl HostState {
    /// Whether a message id was seen (received or recovered) in the last [`MEMORY`].
    pub fn knows_message(&self, message_id: &str) -> bool {
        self.known_messages.contains_key(message_id)
    }

    pub(super) fn remember(&mut self, id: &str, at: DateTime<Utc>) {
        self.known_messages.insert(id.to_owned(), at);
        if self.known_messages.len() > self.prune_at.max(4096) {
            let horizon = at - MEMORY;
            self.known_messages.retain(|_, t| *t >= horizon);
            self.prune_at = 2 * self.known_messages.len();
        }
    }
}
