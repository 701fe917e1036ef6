//! The built-in host model: channels, chats and message batches in flight, runs, containers,
//! deliveries, tasks, boot state and watchdog targets, folded from the product's event vocabulary.
//!
//! Pure: [`apply`], [`check_invariants`] and [`reconcile`] are plain functions over plain data; the
//! time they reason about is the events' `at` and the `now` they are given. The invariants I1–I8
//! and the actions are documented in `docs/reconciler.md`.
//!
//! I8 (stalled runs): each run keeps the last `progress` it reported (any JSON value, compared for
//! equality) and when it last changed; a run that is alive (not orphaned, not silent) and whose
//! progress has not changed for [`Limits::stall_after`] raises
//! `⏳ <task> alive but stalled: no progress for 5m (last: <progress>)` (see [`stalled_text`]),
//! shown as is by [`AlertAction::text`](crate::alerts::AlertAction::text). A run that never
//! reported progress is never stalled; a silent run is I3, not I8.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lookout_store::StoredEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alerts::AlertAction;
use crate::model::{Model, ModelAction, Violation};
use crate::time::{delta, human, micros};

/// How long recovered message ids and notices are remembered (by event time).
pub const MEMORY: TimeDelta = TimeDelta::hours(24);

/// Container statuses that count as "a running container" for I1 (a container being created or
/// restarting is not gone).
pub const ALIVE_STATUSES: &[&str] = &["running", "restarting", "created"];

/// The thresholds of the invariants. Plain data; the daemon fills it from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// I2: a message batch in flight with no response for longer than this (`stale_processing`).
    pub stale_processing: Duration,
    /// I3: a run with no heartbeat for longer than this (3 × `heartbeat_interval`).
    pub heartbeat: Duration,
    /// I4: a delivery pending for longer than this (`delivery_pending`).
    pub delivery_pending: Duration,
    /// I5: a channel disconnected for longer than this (`channel_down`).
    pub channel_down: Duration,
    /// I6: at most this many running containers (None: unlimited).
    pub max_concurrent: Option<usize>,
    /// I7: a task may start this late after its `next_run` (unless its `task_scheduled` says).
    pub task_grace: Duration,
    /// I1: how long a working run's container may be gone before the run counts as orphaned (the
    /// `run_finished` that usually follows an exit gets this long to arrive).
    pub orphan_grace: Duration,
    /// I8: a run whose heartbeats keep coming but whose reported `progress` has not changed for
    /// this long is stalled (5 × 60 s; the daemon sets `thresholds.stall_after ×
    /// thresholds.heartbeat_interval`).
    pub stall_after: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            stale_processing: Duration::from_secs(600),
            heartbeat: Duration::from_secs(3 * 60),
            delivery_pending: Duration::from_secs(300),
            channel_down: Duration::from_secs(120),
            max_concurrent: None,
            task_grace: Duration::from_secs(300),
            orphan_grace: Duration::from_secs(30),
            stall_after: Duration::from_secs(5 * 60),
        }
    }
}

/// A run's fields, common to `run_started`, `run_heartbeat` and `run_finished`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFact {
    /// The run id.
    pub run_id: String,
    /// Its group.
    pub group: String,
    /// `message` or `task`.
    pub run_kind: String,
    /// The task's name, for a task run.
    pub task: Option<String>,
    /// The container it runs in.
    pub container: Option<String>,
    /// How it ended (`run_finished`).
    pub outcome: Option<String>,
    /// Anything that changes while the run makes progress, rendered as text (a string as is,
    /// any other JSON value as JSON).
    pub progress: Option<String>,
    /// The same `progress` as the JSON value reported (None: absent or null), compared for
    /// equality by I8.
    #[serde(default)]
    pub progress_value: Option<Value>,
}

/// What an event says, typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum Fact {
    /// `channel_connected`.
    ChannelConnected {
        /// The channel.
        channel: String,
    },
    /// `channel_disconnected`.
    ChannelDisconnected {
        /// The channel.
        channel: String,
        /// Why, if said.
        reason: Option<String>,
    },
    /// `message_received`.
    MessageReceived {
        /// The channel.
        channel: String,
        /// The chat.
        chat_jid: String,
        /// The message id.
        message_id: String,
        /// The chat's group, if said.
        group: Option<String>,
    },
    /// `messages_recovered`.
    MessagesRecovered {
        /// The channel a reconciliation found them on.
        channel: String,
        /// The chat, if said.
        chat_jid: Option<String>,
        /// The group, if said.
        group: Option<String>,
        /// The recovered message ids.
        message_ids: Vec<String>,
    },
    /// `batch_dispatched`.
    BatchDispatched {
        /// The chat.
        chat_jid: String,
        /// The messages of the batch.
        message_ids: Vec<String>,
        /// The run answering them.
        run_id: Option<String>,
        /// The group, if said.
        group: Option<String>,
    },
    /// `bot_response`.
    BotResponse {
        /// The chat.
        chat_jid: String,
    },
    /// `delivery_queued`.
    DeliveryQueued {
        /// The delivery.
        delivery_id: String,
        /// Its chat.
        chat_jid: String,
        /// Its channel, if said.
        channel: Option<String>,
    },
    /// `delivery_sent`.
    DeliverySent {
        /// The delivery.
        delivery_id: String,
    },
    /// `delivery_failed` (the delivery stays pending: a host retries).
    DeliveryFailed {
        /// The delivery.
        delivery_id: String,
        /// Its chat.
        chat_jid: String,
        /// Why, rendered as text.
        error: Option<String>,
    },
    /// `run_started`.
    RunStarted(RunFact),
    /// `run_heartbeat`.
    RunHeartbeat(RunFact),
    /// `run_finished`.
    RunFinished(RunFact),
    /// `container_status`.
    ContainerStatus {
        /// The container.
        container: String,
        /// Its status.
        status: String,
    },
    /// `boot_started`.
    BootStarted {
        /// The service.
        service: String,
        /// Its version.
        version: Option<String>,
    },
    /// `boot_ready`.
    BootReady {
        /// The service.
        service: String,
    },
    /// `heartbeat` or `version_stamp` of a watchdog target.
    TargetSeen {
        /// The target.
        target: String,
        /// The version it reports.
        sha: Option<String>,
        /// True for `heartbeat` (false: `version_stamp`).
        heartbeat: bool,
    },
    /// `deploy`.
    Deploy {
        /// The deployed sha.
        sha: String,
    },
    /// `task_scheduled`: a task's next due time (the scheduler reports it whenever it computes one).
    TaskScheduled {
        /// The task's name.
        task: String,
        /// Its group.
        group: Option<String>,
        /// When it is due next (None: not scheduled any more).
        next_run: Option<DateTime<Utc>>,
        /// How late it may start, overriding [`Limits::task_grace`].
        grace_secs: Option<u64>,
    },
    /// A kind the model does not use, or a record missing a field it needs: only advances the seq.
    Other {
        /// The record's kind.
        kind: String,
        /// The missing or malformed field, if that is why.
        bad_field: Option<String>,
    },
}

/// One event: its seq, when it happened, and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEvent {
    /// Its position in the log.
    pub seq: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What it says.
    pub fact: Fact,
}

struct Fields<'a>(&'a Value);

impl Fields<'_> {
    fn opt(&self, f: &str) -> Option<String> {
        match self.0.get(f)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
    fn req(&self, f: &str) -> Result<String, String> {
        self.opt(f).ok_or_else(|| f.to_owned())
    }
    fn list(&self, f: &str) -> Result<Vec<String>, String> {
        self.0
            .get(f)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .ok_or_else(|| f.to_owned())
    }
    fn time(&self, f: &str) -> Option<DateTime<Utc>> {
        let s = self.0.get(f)?.as_str()?;
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
    fn run(&self) -> Result<RunFact, String> {
        Ok(RunFact {
            run_id: self.req("run_id")?,
            group: self.req("group")?,
            run_kind: self.req("run_kind")?,
            task: self.opt("task"),
            container: self.opt("container"),
            outcome: self.opt("outcome"),
            progress: self.opt("progress"),
            progress_value: self.0.get("progress").filter(|v| !v.is_null()).cloned(),
        })
    }
}

impl Fact {
    /// Types the fields of an event of `kind` (the payload as stored: every field but `kind`, `at`
    /// and `idempotency_key`).
    pub fn from_payload(kind: &str, payload: &Value) -> Fact {
        let f = Fields(payload);
        let typed: Result<Fact, String> = (|| {
            Ok(match kind {
                "channel_connected" => Fact::ChannelConnected {
                    channel: f.req("channel")?,
                },
                "channel_disconnected" => Fact::ChannelDisconnected {
                    channel: f.req("channel")?,
                    reason: f.opt("reason"),
                },
                "message_received" => Fact::MessageReceived {
                    channel: f.req("channel")?,
                    chat_jid: f.req("chat_jid")?,
                    message_id: f.req("message_id")?,
                    group: f.opt("group"),
                },
                "messages_recovered" => Fact::MessagesRecovered {
                    channel: f.req("channel")?,
                    chat_jid: f.opt("chat_jid"),
                    group: f.opt("group"),
                    message_ids: f.list("message_ids")?,
                },
                "batch_dispatched" => Fact::BatchDispatched {
                    chat_jid: f.req("chat_jid")?,
                    message_ids: f.list("message_ids")?,
                    run_id: f.opt("run_id"),
                    group: f.opt("group"),
                },
                "bot_response" => Fact::BotResponse {
                    chat_jid: f.req("chat_jid")?,
                },
                "delivery_queued" => Fact::DeliveryQueued {
                    delivery_id: f.req("delivery_id")?,
                    chat_jid: f.req("chat_jid")?,
                    channel: f.opt("channel"),
                },
                "delivery_sent" => Fact::DeliverySent {
                    delivery_id: f.req("delivery_id")?,
                },
                "delivery_failed" => Fact::DeliveryFailed {
                    delivery_id: f.req("delivery_id")?,
                    chat_jid: f.req("chat_jid")?,
                    error: f.opt("error"),
                },
                "run_started" => Fact::RunStarted(f.run()?),
                "run_heartbeat" => Fact::RunHeartbeat(f.run()?),
                "run_finished" => Fact::RunFinished(f.run()?),
                "container_status" => Fact::ContainerStatus {
                    container: f.req("container")?,
                    status: f.req("status")?,
                },
                "boot_started" => Fact::BootStarted {
                    service: f.req("service")?,
                    version: f.opt("version"),
                },
                "boot_ready" => Fact::BootReady {
                    service: f.req("service")?,
                },
                "heartbeat" | "version_stamp" => Fact::TargetSeen {
                    target: f.req("target")?,
                    sha: f.opt("sha"),
                    heartbeat: kind == "heartbeat",
                },
                "deploy" => Fact::Deploy { sha: f.req("sha")? },
                "task_scheduled" => Fact::TaskScheduled {
                    task: f.req("task")?,
                    group: f.opt("group"),
                    next_run: f.time("next_run"),
                    grace_secs: payload.get("grace_secs").and_then(Value::as_u64),
                },
                other => Fact::Other {
                    kind: other.to_owned(),
                    bad_field: None,
                },
            })
        })();
        typed.unwrap_or_else(|field| Fact::Other {
            kind: kind.to_owned(),
            bad_field: Some(field),
        })
    }
}

impl HostEvent {
    /// Types a record of the store's log.
    pub fn from_stored(e: &StoredEvent) -> HostEvent {
        HostEvent {
            seq: e.seq,
            at: e.at,
            fact: Fact::from_payload(&e.kind, &e.payload),
        }
    }
}

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

    fn remember(&mut self, id: &str, at: DateTime<Utc>) {
        self.known_messages.insert(id.to_owned(), at);
        if self.known_messages.len() > self.prune_at.max(4096) {
            let horizon = at - MEMORY;
            self.known_messages.retain(|_, t| *t >= horizon);
            self.prune_at = 2 * self.known_messages.len();
        }
    }
}

/// Folds one event into the state. Idempotent by seq: an event with `seq <= state.last_seq` is
/// ignored.
pub fn apply(state: &mut HostState, event: &HostEvent) {
    if event.seq <= state.last_seq {
        return;
    }
    state.last_seq = event.seq;
    state.last_event_at = Some(state.last_event_at.map_or(event.at, |t| t.max(event.at)));
    let at = event.at;
    if !state.notices.is_empty() {
        let horizon = at - MEMORY;
        state.notices.retain(|_, n| n.at >= horizon);
    }
    match &event.fact {
        Fact::ChannelConnected { channel } => {
            state.channels.insert(
                channel.clone(),
                Channel {
                    connected: true,
                    since: at,
                    reason: None,
                },
            );
        }
        Fact::ChannelDisconnected { channel, reason } => {
            let c = state.channels.entry(channel.clone()).or_insert(Channel {
                connected: false,
                since: at,
                reason: None,
            });
            if c.connected {
                c.connected = false;
                c.since = at;
            }
            c.reason.clone_from(reason);
        }
        Fact::MessageReceived {
            channel,
            chat_jid,
            message_id,
            group,
        } => {
            let chat = state.chats.entry(chat_jid.clone()).or_default();
            chat.channel = Some(channel.clone());
            if group.is_some() {
                chat.group.clone_from(group);
            }
            chat.last_message_at = Some(at);
            state.remember(message_id, at);
        }
        Fact::MessagesRecovered {
            channel,
            chat_jid,
            group,
            message_ids,
        } => {
            let mut fresh = Vec::new();
            for id in message_ids {
                if !state.knows_message(id) && !fresh.contains(id) {
                    fresh.push(id.clone());
                }
            }
            for id in &fresh {
                state.remember(id, at);
            }
            let chat_group = chat_jid
                .as_ref()
                .and_then(|c| state.chats.get(c))
                .and_then(|c| c.group.clone());
            if !fresh.is_empty() {
                let group = group
                    .clone()
                    .or(chat_group)
                    .or_else(|| chat_jid.clone())
                    .unwrap_or_else(|| channel.clone());
                state.notices.insert(
                    format!("recovered:{}", event.seq),
                    PendingNotice {
                        seq: event.seq,
                        at,
                        group,
                        channel: channel.clone(),
                        chat_jid: chat_jid.clone(),
                        message_ids: fresh,
                    },
                );
            }
        }
        Fact::BatchDispatched {
            chat_jid,
            message_ids,
            run_id,
            group,
        } => {
            let chat = state.chats.entry(chat_jid.clone()).or_default();
            if group.is_some() {
                chat.group.clone_from(group);
            }
            match &mut chat.in_flight {
                Some(b) => {
                    for id in message_ids {
                        if !b.message_ids.contains(id) {
                            b.message_ids.push(id.clone());
                        }
                    }
                    if run_id.is_some() {
                        b.run_id.clone_from(run_id);
                    }
                }
                None => {
                    chat.in_flight = Some(Batch {
                        message_ids: message_ids.clone(),
                        run_id: run_id.clone(),
                        since: at,
                    });
                }
            }
        }
        Fact::BotResponse { chat_jid } => {
            let chat = state.chats.entry(chat_jid.clone()).or_default();
            chat.in_flight = None;
            chat.last_response_at = Some(at);
        }
        Fact::DeliveryQueued {
            delivery_id,
            chat_jid,
            channel,
        } => {
            let known_channel = state.chats.get(chat_jid).and_then(|c| c.channel.clone());
            state
                .deliveries
                .entry(delivery_id.clone())
                .or_insert(Delivery {
                    chat_jid: chat_jid.clone(),
                    channel: channel.clone().or(known_channel),
                    queued_at: at,
                    failures: 0,
                    last_error: None,
                });
        }
        Fact::DeliverySent { delivery_id } => {
            state.deliveries.remove(delivery_id);
        }
        Fact::DeliveryFailed {
            delivery_id,
            chat_jid,
            error,
        } => {
            let d = state
                .deliveries
                .entry(delivery_id.clone())
                .or_insert(Delivery {
                    chat_jid: chat_jid.clone(),
                    channel: None,
                    queued_at: at,
                    failures: 0,
                    last_error: None,
                });
            d.failures += 1;
            d.last_error.clone_from(error);
        }
        Fact::RunStarted(r) | Fact::RunHeartbeat(r) => {
            let started = matches!(event.fact, Fact::RunStarted(_));
            let run = state.runs.entry(r.run_id.clone()).or_insert(Run {
                group: r.group.clone(),
                run_kind: r.run_kind.clone(),
                task: r.task.clone(),
                container: r.container.clone(),
                started_at: at,
                last_heartbeat_at: at,
                progress: None,
                progress_value: None,
                progress_changed_at: None,
            });
            run.last_heartbeat_at = run.last_heartbeat_at.max(at);
            if r.container.is_some() {
                run.container.clone_from(&r.container);
            }
            if r.progress.is_some() {
                run.progress.clone_from(&r.progress);
            }
            // I8: absent progress is "not reported" (no change, no evidence of a stall); a value
            // different from the last one reported (or the first one) is a change.
            if let Some(p) = &r.progress_value
                && run.progress_value.as_ref() != Some(p)
            {
                run.progress_value = Some(p.clone());
                run.progress_changed_at = Some(at);
            }
            if started && let Some(task) = &r.task {
                let t = state.tasks.entry(task.clone()).or_default();
                t.group.get_or_insert_with(|| r.group.clone());
                t.last_started_at = Some(t.last_started_at.map_or(at, |s| s.max(at)));
            }
        }
        Fact::RunFinished(r) => {
            state.runs.remove(&r.run_id);
            if let Some(task) = &r.task {
                let t = state.tasks.entry(task.clone()).or_default();
                t.last_finished = Some((at, r.outcome.clone()));
            }
        }
        Fact::ContainerStatus { container, status } => {
            let c = state
                .containers
                .entry(container.clone())
                .or_insert(Container {
                    status: status.clone(),
                    since: at,
                });
            if &c.status != status {
                c.status.clone_from(status);
                c.since = at;
            }
        }
        Fact::BootStarted { service, version } => {
            let prior = state.boots.get(service);
            let starts = match prior {
                Some(b) if b.ready_at.is_none() => b.starts_since_ready + 1,
                _ => 1,
            };
            state.boots.insert(
                service.clone(),
                Boot {
                    started_at: at,
                    version: version.clone(),
                    ready_at: None,
                    starts_since_ready: starts,
                },
            );
        }
        Fact::BootReady { service } => {
            let b = state.boots.entry(service.clone()).or_insert(Boot {
                started_at: at,
                version: None,
                ready_at: None,
                starts_since_ready: 1,
            });
            b.ready_at = Some(at);
        }
        Fact::TargetSeen {
            target,
            sha,
            heartbeat,
        } => {
            let t = state.targets.entry(target.clone()).or_default();
            if *heartbeat {
                t.last_heartbeat_at = Some(at);
            }
            if sha.is_some() {
                t.sha.clone_from(sha);
            }
        }
        Fact::Deploy { sha } => state.last_deploy = Some((sha.clone(), at)),
        Fact::TaskScheduled {
            task,
            group,
            next_run,
            grace_secs,
        } => {
            let t = state.tasks.entry(task.clone()).or_default();
            if group.is_some() {
                t.group.clone_from(group);
            }
            t.next_run = *next_run;
            t.grace_secs = *grace_secs;
        }
        Fact::Other { .. } => {}
    }
}

/// The host's invariants, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Invariant {
    /// I1: a working run has no running container.
    OrphanRun,
    /// I2: a message batch in flight longer than `stale_processing` with no response.
    StaleBatch,
    /// I3: a run with no heartbeat for longer than its limit.
    SilentRun,
    /// I4: a delivery pending longer than its limit.
    StuckDelivery,
    /// I5: a channel disconnected longer than its limit.
    ChannelDown,
    /// I6: more running containers than the concurrency limit.
    TooManyContainers,
    /// I7: a task past `next_run` + grace with no run.
    TaskOverdue,
    /// I8: a run alive (heartbeats within their limit) whose progress has not changed for
    /// `stall_after`.
    StalledRun,
}

impl Invariant {
    /// Every invariant, in order.
    pub const ALL: [Invariant; 8] = [
        Invariant::OrphanRun,
        Invariant::StaleBatch,
        Invariant::SilentRun,
        Invariant::StuckDelivery,
        Invariant::ChannelDown,
        Invariant::TooManyContainers,
        Invariant::TaskOverdue,
        Invariant::StalledRun,
    ];

    /// Its id: `I1` … `I8`.
    pub fn id(self) -> &'static str {
        match self {
            Invariant::OrphanRun => "I1",
            Invariant::StaleBatch => "I2",
            Invariant::SilentRun => "I3",
            Invariant::StuckDelivery => "I4",
            Invariant::ChannelDown => "I5",
            Invariant::TooManyContainers => "I6",
            Invariant::TaskOverdue => "I7",
            Invariant::StalledRun => "I8",
        }
    }
}

fn violation(inv: Invariant, subject: &str, since: DateTime<Utc>, message: String) -> Violation {
    Violation {
        invariant: inv.id().to_owned(),
        subject: subject.to_owned(),
        message,
        since,
    }
}

/// The working runs whose container is gone (I1), with the container and since when.
fn orphans<'a>(
    state: &'a HostState,
    limits: &Limits,
    now: DateTime<Utc>,
) -> impl Iterator<Item = (&'a String, &'a Run, &'a String, &'a Container)> {
    let grace = delta(limits.orphan_grace);
    state.runs.iter().filter_map(move |(id, run)| {
        let name = run.container.as_ref()?;
        let c = state.containers.get(name)?;
        // A status older than the run is an earlier life of a reused name; only one seen since
        // the run started says this run's container is gone.
        (!c.alive() && c.since >= run.started_at && now - c.since >= grace)
            .then_some((id, run, name, c))
    })
}

/// Every invariant that does not hold at `now`, in invariant then subject order.
///
/// Root causes fold what follows from them: an orphaned run (I1) is not also reported silent (I3),
/// and a pending delivery on a channel that is down for longer than its limit is counted in the
/// channel's I5 alert instead of raising its own I4. A run is stalled (I8) only while it is alive:
/// an orphaned (I1) or silent (I3) run is not also stalled, so one run raises at most one of I1,
/// I3 and I8 (a silent run whose progress had stalled says so in its I3 line).
pub fn check_invariants(state: &HostState, limits: &Limits, now: DateTime<Utc>) -> Vec<Violation> {
    let mut out = Vec::new();
    let orphaned: BTreeSet<&String> = orphans(state, limits, now).map(|o| o.0).collect();
    for (id, run, name, c) in orphans(state, limits, now) {
        out.push(violation(
            Invariant::OrphanRun,
            id,
            c.since,
            format!(
                "run {id} (group {}) is working but its container {name} is {} (for {})",
                run.group,
                c.status,
                human(now - c.since)
            ),
        ));
    }
    let stale = delta(limits.stale_processing);
    for (jid, chat) in &state.chats {
        if let Some(b) = &chat.in_flight
            && now - b.since > stale
        {
            out.push(violation(
                Invariant::StaleBatch,
                jid,
                b.since,
                format!(
                    "chat {jid}: {} message(s) in flight for {} with no response{}",
                    b.message_ids.len(),
                    human(now - b.since),
                    b.run_id
                        .as_ref()
                        .map(|r| format!(" (run {r})"))
                        .unwrap_or_default()
                ),
            ));
        }
    }
    let hb = delta(limits.heartbeat);
    let stall = delta(limits.stall_after);
    for (id, run) in &state.runs {
        if !orphaned.contains(id) && now - run.last_heartbeat_at > hb {
            out.push(violation(
                Invariant::SilentRun,
                id,
                run.last_heartbeat_at,
                format!(
                    "run {id} ({}{}) has sent no heartbeat for {}",
                    run.run_kind,
                    run.task
                        .as_ref()
                        .map(|t| format!(" task {t}"))
                        .unwrap_or_default(),
                    human(now - run.last_heartbeat_at)
                ),
            ));
            // A silent run is I3, not I8; say so when its progress had stalled too.
            if let (Some(changed), Some(p)) = (run.progress_changed_at, &run.progress_value)
                && now - changed >= stall
            {
                if let Some(v) = out.last_mut() {
                    v.message.push_str(&format!(
                        "; no progress for {} (last: {})",
                        human(now - changed),
                        progress_text(p)
                    ));
                }
            }
        }
    }
    let down = delta(limits.channel_down);
    let down_channels: BTreeSet<&String> = state
        .channels
        .iter()
        .filter(|(_, c)| !c.connected && now - c.since > down)
        .map(|(n, _)| n)
        .collect();
    let pending = delta(limits.delivery_pending);
    let mut folded: BTreeMap<&String, usize> = BTreeMap::new();
    for (id, d) in &state.deliveries {
        if now - d.queued_at <= pending {
            continue;
        }
        if let Some(ch) = d.channel.as_ref().filter(|c| down_channels.contains(c)) {
            *folded.entry(ch).or_default() += 1;
            continue;
        }
        out.push(violation(
            Invariant::StuckDelivery,
            id,
            d.queued_at,
            format!(
                "delivery {id} to {} pending for {}{}",
                d.chat_jid,
                human(now - d.queued_at),
                d.last_error
                    .as_ref()
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            ),
        ));
    }
    for name in &down_channels {
        let c = &state.channels[*name];
        let also = folded
            .get(name)
            .map(|n| format!("; also affected: {n} pending deliveries"))
            .unwrap_or_default();
        out.push(violation(
            Invariant::ChannelDown,
            name,
            c.since,
            format!(
                "channel #{name} disconnected for {}{}{also}",
                human(now - c.since),
                c.reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        ));
    }
    if let Some(max) = limits.max_concurrent {
        let running: Vec<&Container> = state
            .containers
            .values()
            .filter(|c| c.status == "running")
            .collect();
        if running.len() > max {
            let since = running.iter().map(|c| c.since).max().unwrap_or(now);
            out.push(violation(
                Invariant::TooManyContainers,
                "containers",
                since,
                format!(
                    "{} containers running, more than the limit of {max}",
                    running.len()
                ),
            ));
        }
    }
    for (name, t) in &state.tasks {
        let Some(next) = t.next_run else { continue };
        let grace = t
            .grace_secs
            .map_or(delta(limits.task_grace), |s| TimeDelta::seconds(s as i64));
        let ran = t.last_started_at.is_some_and(|s| s >= next);
        if !ran && now > next + grace {
            out.push(violation(
                Invariant::TaskOverdue,
                name,
                next,
                format!(
                    "task {name}{} was due at {} and has not run ({} late)",
                    t.group
                        .as_ref()
                        .map(|g| format!(" (group {g})"))
                        .unwrap_or_default(),
                    next.to_rfc3339(),
                    human(now - next)
                ),
            ));
        }
    }
    for (id, run) in &state.runs {
        let (Some(changed), Some(p)) = (run.progress_changed_at, &run.progress_value) else {
            continue; // never reported progress: never stalled
        };
        // Alive: not orphaned (I1) and not silent (I3) — those are the louder, truer alerts.
        let alive = !orphaned.contains(id) && now - run.last_heartbeat_at <= hb;
        if alive && now - changed >= stall {
            out.push(violation(
                Invariant::StalledRun,
                id,
                changed,
                stalled_text(run.task.as_deref().unwrap_or(id), now - changed, p),
            ));
        }
    }
    out
}

/// How long a progress value may be in an alert line before it is cut (with "…").
pub const PROGRESS_TEXT_MAX: usize = 100;

/// A progress value as an alert shows it: a string as is, any other JSON value as JSON, cut at
/// [`PROGRESS_TEXT_MAX`] characters.
pub fn progress_text(p: &Value) -> String {
    let text = match p {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() <= PROGRESS_TEXT_MAX {
        return text;
    }
    let mut cut: String = text.chars().take(PROGRESS_TEXT_MAX).collect();
    cut.push('…');
    cut
}

/// The I8 line, product.md's text:
/// `⏳ <name> alive but stalled: no progress for 5m (last: <progress>)`, where `name` is the run's
/// task for a task run, else its run id.
/// [`AlertAction::text`] shows it as is.
pub fn stalled_text(name: &str, unchanged_for: TimeDelta, progress: &Value) -> String {
    format!(
        "⏳ {name} alive but stalled: no progress for {} (last: {})",
        human(unchanged_for),
        progress_text(progress)
    )
}

/// A safe repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "repair", rename_all = "snake_case")]
pub enum Repair {
    /// I1: the run whose container is gone goes to idle (the host ends it; its messages are
    /// handled by the interrupted-run contract).
    RunToIdle {
        /// The run.
        run_id: String,
        /// Its group.
        group: String,
        /// Its kind (`message` or `task`), for the `run_finished` that reports the repair.
        #[serde(default = "message_kind")]
        run_kind: String,
        /// The container that is gone.
        container: String,
        /// When the run started (part of the key: a reused run id is another repair).
        started_at: DateTime<Utc>,
    },
}

/// A notification to a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The group to tell.
    pub group: String,
    /// The chat, if known.
    pub chat_jid: Option<String>,
    /// The text.
    pub text: String,
    /// The event that caused it.
    pub seq: i64,
}

/// Something to record in the host (a "mark"): recovered messages to process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mark", rename_all = "snake_case")]
pub enum Mark {
    /// Recovered messages the host should process now.
    ProcessRecovered {
        /// The channel.
        channel: String,
        /// The chat, if known.
        chat_jid: Option<String>,
        /// The group.
        group: String,
        /// The messages (new ones only).
        message_ids: Vec<String>,
        /// The event that found them.
        seq: i64,
    },
}

fn message_kind() -> String {
    "message".into()
}

/// The host model's action types, as [`ModelAction::kind`] names them (metric labels).
pub const ACTION_KINDS: [&str; 5] = ["notify", "mark", "alert", "resolved", "repair"];

/// What the host model asks the world to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Tell a group something.
    Notify(Notice),
    /// Record something in the host.
    Mark(Mark),
    /// Send an alert (firing or resolved).
    Alert(AlertAction),
    /// Repair a state (only with `auto_repair`).
    Repair(Repair),
}

impl ModelAction for Action {
    fn key(&self) -> String {
        match self {
            Action::Notify(n) => format!("notify:recovered:{}", n.seq),
            Action::Mark(Mark::ProcessRecovered { seq, .. }) => format!("mark:recovered:{seq}"),
            Action::Alert(a) => a.key(),
            Action::Repair(Repair::RunToIdle {
                run_id, started_at, ..
            }) => format!("repair:run_to_idle:{run_id}:{}", micros(*started_at)),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Action::Notify(_) => "notify",
            Action::Mark(_) => "mark",
            Action::Alert(a) if a.state == crate::alerts::AlertState::Resolved => "resolved",
            Action::Alert(_) => "alert",
            Action::Repair(_) => "repair",
        }
    }

    fn is_repair(&self) -> bool {
        matches!(self, Action::Repair(_))
    }

    fn from_alert(alert: AlertAction) -> Self {
        Action::Alert(alert)
    }

    fn as_alert(&self) -> Option<&AlertAction> {
        match self {
            Action::Alert(a) => Some(a),
            _ => None,
        }
    }
}

/// The text of a recovery notice: "Recovered N missed message(s) from #channel — processing now."
pub fn recovered_text(n: usize, channel: &str) -> String {
    format!("Recovered {n} missed message(s) from #{channel} — processing now.")
}

/// The actions the state calls for at `now` (alerts aside): for each recovery of the last
/// [`MEMORY`], a mark (process the messages) and a notice; for each orphaned run (I1), its repair.
pub fn reconcile(state: &HostState, limits: &Limits, now: DateTime<Utc>) -> Vec<Action> {
    let mut out = Vec::new();
    for (run_id, run, name, _) in orphans(state, limits, now) {
        out.push(Action::Repair(Repair::RunToIdle {
            run_id: run_id.clone(),
            group: run.group.clone(),
            run_kind: run.run_kind.clone(),
            container: name.clone(),
            started_at: run.started_at,
        }));
    }
    for n in state.notices.values() {
        if now - n.at > MEMORY {
            continue;
        }
        out.push(Action::Mark(Mark::ProcessRecovered {
            channel: n.channel.clone(),
            chat_jid: n.chat_jid.clone(),
            group: n.group.clone(),
            message_ids: n.message_ids.clone(),
            seq: n.seq,
        }));
        out.push(Action::Notify(Notice {
            group: n.group.clone(),
            chat_jid: n.chat_jid.clone(),
            text: recovered_text(n.message_ids.len(), &n.channel),
            seq: n.seq,
        }));
    }
    out
}

/// Lookout's host model: [`apply`], [`check_invariants`] and [`reconcile`] with its [`Limits`].
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

    fn decode(&self, record: &StoredEvent) -> HostEvent {
        HostEvent::from_stored(record)
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn t(m: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap() + TimeDelta::minutes(m)
    }

    fn state(events: &[(i64, &str, Value)]) -> HostState {
        let mut s = HostState::default();
        for (i, (m, kind, p)) in events.iter().enumerate() {
            apply(
                &mut s,
                &HostEvent {
                    seq: i as i64 + 1,
                    at: t(*m),
                    fact: Fact::from_payload(kind, p),
                },
            );
        }
        s
    }

    fn ids(s: &HostState, limits: &Limits, now: i64) -> Vec<(String, String)> {
        check_invariants(s, limits, t(now))
            .into_iter()
            .map(|v| (v.invariant, v.subject))
            .collect()
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    #[test]
    fn each_invariant_fires_past_its_limit_and_not_before() {
        let run = json!({"run_id": "r1", "group": "g", "run_kind": "task", "task": "daily"});
        let s = state(&[
            (
                0,
                "batch_dispatched",
                json!({"chat_jid": "c1", "message_ids": ["m1"]}),
            ),
            (0, "run_started", run.clone()),
            (
                0,
                "delivery_queued",
                json!({"delivery_id": "d1", "chat_jid": "c1"}),
            ),
            (0, "channel_disconnected", json!({"channel": "slack"})),
            (
                0,
                "container_status",
                json!({"container": "a", "status": "running"}),
            ),
            (
                0,
                "container_status",
                json!({"container": "b", "status": "running"}),
            ),
            (
                0,
                "task_scheduled",
                json!({"task": "weekly", "next_run": t(1).to_rfc3339()}),
            ),
        ]);
        let limits = Limits {
            max_concurrent: Some(1),
            ..Limits::default()
        };
        assert_eq!(ids(&s, &limits, 1), [pair("I6", "containers")]);
        assert_eq!(
            ids(&s, &limits, 11),
            [
                pair("I2", "c1"),
                pair("I3", "r1"),
                pair("I4", "d1"),
                pair("I5", "slack"),
                pair("I6", "containers"),
                pair("I7", "weekly"),
            ]
        );
        // Answers, heartbeats, sends, reconnects and runs clear them.
        let mut s = s;
        for (i, (kind, p)) in [
            (
                "bot_response",
                json!({"chat_jid": "c1", "timestamp": t(11).to_rfc3339()}),
            ),
            ("run_heartbeat", run),
            (
                "delivery_sent",
                json!({"delivery_id": "d1", "chat_jid": "c1"}),
            ),
            ("channel_connected", json!({"channel": "slack"})),
            (
                "container_status",
                json!({"container": "b", "status": "exited"}),
            ),
            (
                "run_started",
                json!({"run_id": "r2", "group": "g", "run_kind": "task", "task": "weekly"}),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            apply(
                &mut s,
                &HostEvent {
                    seq: 100 + i as i64,
                    at: t(11),
                    fact: Fact::from_payload(kind, &p),
                },
            );
        }
        assert!(
            ids(&s, &limits, 12).is_empty(),
            "{:?}",
            ids(&s, &limits, 12)
        );
    }

    #[test]
    fn a_channel_down_folds_its_stuck_deliveries() {
        let s = state(&[
            (
                0,
                "delivery_queued",
                json!({"delivery_id": "d1", "chat_jid": "c1", "channel": "wa"}),
            ),
            (0, "channel_disconnected", json!({"channel": "wa"})),
        ]);
        let v = check_invariants(&s, &Limits::default(), t(10));
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message
                .ends_with("also affected: 1 pending deliveries"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn recovered_messages_are_deduplicated_by_id() {
        let s = state(&[
            (
                0,
                "message_received",
                json!({"channel": "wa", "chat_jid": "c1", "message_id": "m1", "group": "fam"}),
            ),
            (
                1,
                "messages_recovered",
                json!({"channel": "wa", "chat_jid": "c1", "message_ids": ["m1", "m2"]}),
            ),
            (
                2,
                "messages_recovered",
                json!({"channel": "wa", "chat_jid": "c1", "message_ids": ["m2"]}),
            ),
        ]);
        let texts: Vec<String> = reconcile(&s, &Limits::default(), t(3))
            .into_iter()
            .filter_map(|a| match a {
                Action::Notify(n) => Some(format!("{}: {}", n.group, n.text)),
                _ => None,
            })
            .collect();
        assert_eq!(
            texts,
            ["fam: Recovered 1 missed message(s) from #wa — processing now."]
        );
        // A day later the notice is no longer acted on.
        assert!(reconcile(&s, &Limits::default(), t(3 + 25 * 60)).is_empty());
    }

    #[test]
    fn an_orphaned_run_waits_for_its_grace_and_is_not_also_silent() {
        let s = state(&[
            (
                0,
                "run_started",
                json!({"run_id": "r1", "group": "g", "run_kind": "message", "container": "k"}),
            ),
            (
                1,
                "container_status",
                json!({"container": "k", "status": "exited"}),
            ),
        ]);
        assert!(ids(&s, &Limits::default(), 1).is_empty());
        assert_eq!(ids(&s, &Limits::default(), 20), [pair("I1", "r1")]);
    }

    fn run_event(progress: Option<Value>) -> Value {
        let mut v = json!({"run_id": "r1", "group": "ops", "run_kind": "task", "task": "backup"});
        if let Some(p) = progress {
            v["progress"] = p;
        }
        v
    }

    /// `run_started` at minute 0, then a heartbeat every minute `1..=last` with `progress(m)`.
    fn beating(
        last: i64,
        progress: impl Fn(i64) -> Option<Value>,
    ) -> Vec<(i64, &'static str, Value)> {
        let mut ev = vec![(0, "run_started", run_event(None))];
        for m in 1..=last {
            ev.push((m, "run_heartbeat", run_event(progress(m))));
        }
        ev
    }

    fn stalled_at(s: &HostState, now: i64) -> Vec<String> {
        check_invariants(s, &Limits::default(), t(now))
            .into_iter()
            .filter(|v| v.invariant == "I8")
            .map(|v| v.message)
            .collect()
    }

    #[test]
    fn fixed_progress_is_stalled_after_stall_after_and_not_before() {
        // First progress at minute 1 (that is its change); the same value every minute after.
        let s = state(&beating(7, |_| Some(json!({"step": 3, "tool": "grep"}))));
        assert_eq!(s.runs["r1"].progress_changed_at, Some(t(1)));
        for now in [1, 2, 5] {
            assert_eq!(ids(&s, &Limits::default(), now), [], "at {now}m");
        }
        let just_before = check_invariants(&s, &Limits::default(), t(6) - TimeDelta::seconds(1));
        assert!(just_before.is_empty(), "{just_before:?}");
        assert_eq!(ids(&s, &Limits::default(), 6), [pair("I8", "r1")]);
        assert_eq!(
            stalled_at(&s, 6),
            [r#"⏳ backup alive but stalled: no progress for 5m (last: {"step":3,"tool":"grep"})"#]
        );
        // The alert a person reads is product.md's text, as is.
        let mut book = crate::alerts::AlertBook::default();
        let plan = book.plan(&check_invariants(&s, &Limits::default(), t(6)), t(6));
        assert_eq!(
            plan.actions[0].text(),
            r#"⏳ backup alive but stalled: no progress for 5m (last: {"step":3,"tool":"grep"})"#
        );
        // The threshold is the limit's, whatever it is.
        let short = Limits {
            stall_after: Duration::from_secs(120),
            ..Limits::default()
        };
        assert_eq!(ids(&s, &short, 2), []);
        assert_eq!(ids(&s, &short, 3), [pair("I8", "r1")]);
    }

    #[test]
    fn a_message_run_is_named_by_its_run_id_and_long_progress_is_cut() {
        let long = "x".repeat(150);
        let s = state(&[
            (
                0,
                "run_started",
                json!({"run_id": "m-42", "group": "g", "run_kind": "message", "progress": long}),
            ),
            (
                5,
                "run_heartbeat",
                json!({"run_id": "m-42", "group": "g", "run_kind": "message", "progress": long}),
            ),
        ]);
        assert_eq!(
            stalled_at(&s, 5),
            [format!(
                "⏳ m-42 alive but stalled: no progress for 5m (last: {}…)",
                "x".repeat(PROGRESS_TEXT_MAX)
            )]
        );
    }

    #[test]
    fn progress_that_moves_resolves_the_stall_once() {
        let mut events = beating(7, |_| Some(json!(3)));
        events.push((8, "run_heartbeat", run_event(Some(json!(4)))));
        let stuck = state(&events[..8]);
        let moved = state(&events);
        let mut book = crate::alerts::AlertBook::default();
        let fired = book.plan(&check_invariants(&stuck, &Limits::default(), t(7)), t(7));
        assert_eq!(fired.actions.len(), 1);
        book.record_sent(&fired.actions[0], t(7));
        assert_eq!(ids(&moved, &Limits::default(), 8), []);
        let resolved = book.plan(&check_invariants(&moved, &Limits::default(), t(8)), t(8));
        assert_eq!(resolved.actions.len(), 1);
        assert_eq!(
            resolved.actions[0].text(),
            "✅ [I8] resolved: r1 (was: ⏳ backup alive but stalled: no progress for 6m (last: 3))"
        );
        book.record_sent(&resolved.actions[0], t(8));
        assert!(book.plan(&[], t(9)).actions.is_empty());
        // Progress moved at 8: stalled again only 5 minutes later.
        for m in 9..=13 {
            events.push((m, "run_heartbeat", run_event(Some(json!(4)))));
        }
        let again = state(&events);
        assert_eq!(ids(&again, &Limits::default(), 12), []);
        assert_eq!(ids(&again, &Limits::default(), 13), [pair("I8", "r1")]);
    }

    #[test]
    fn progress_compares_as_json_and_absent_progress_changes_nothing() {
        // "3" (a string) and 3 (a number) are different values: a change.
        let s = state(&[
            (0, "run_heartbeat", run_event(Some(json!("3")))),
            (4, "run_heartbeat", run_event(Some(json!(3)))),
            (6, "run_heartbeat", run_event(None)),
            (7, "run_heartbeat", run_event(Some(Value::Null))),
        ]);
        let run = &s.runs["r1"];
        assert_eq!(run.progress_changed_at, Some(t(4)));
        assert_eq!(run.progress_value, Some(json!(3)));
        assert_eq!(ids(&s, &Limits::default(), 8), []);
        assert_eq!(ids(&s, &Limits::default(), 9), [pair("I8", "r1")]);
        // Objects compare as JSON values: key order is no change.
        let s = state(&[
            (
                0,
                "run_heartbeat",
                run_event(Some(json!({"a": 1, "b": [2]}))),
            ),
            (
                4,
                "run_heartbeat",
                run_event(Some(serde_json::from_str(r#"{"b":[2],"a":1}"#).unwrap())),
            ),
        ]);
        assert_eq!(s.runs["r1"].progress_changed_at, Some(t(0)));
    }

    #[test]
    fn the_run_ending_resolves_the_stall() {
        let mut events = beating(6, |_| Some(json!("step 3")));
        assert_eq!(
            ids(&state(&events), &Limits::default(), 6),
            [pair("I8", "r1")]
        );
        events.push((6, "run_finished", run_event(None)));
        assert_eq!(ids(&state(&events), &Limits::default(), 6), []);
    }

    #[test]
    fn a_run_that_reports_no_progress_is_never_stalled() {
        let none = state(&beating(60, |_| None));
        let null = state(&beating(60, |_| Some(Value::Null)));
        for s in [&none, &null] {
            assert_eq!(s.runs["r1"].progress_changed_at, None);
            assert_eq!(ids(s, &Limits::default(), 60), []);
        }
    }

    #[test]
    fn a_silent_run_is_i3_not_i8() {
        // Same progress every minute until minute 2, then nothing: silent, never stalled.
        let s = state(&beating(2, |_| Some(json!(1))));
        assert_eq!(ids(&s, &Limits::default(), 5), []);
        assert_eq!(ids(&s, &Limits::default(), 6), [pair("I3", "r1")]);
        assert_eq!(ids(&s, &Limits::default(), 30), [pair("I3", "r1")]);
        // Stalled first, then silent: the I8 hands over to I3 (never both), whose line says so.
        let s = state(&beating(7, |_| Some(json!(1))));
        assert_eq!(ids(&s, &Limits::default(), 10), [pair("I8", "r1")]);
        assert_eq!(ids(&s, &Limits::default(), 11), [pair("I3", "r1")]);
        let v = check_invariants(&s, &Limits::default(), t(11));
        assert_eq!(
            v[0].message,
            "run r1 (task task backup) has sent no heartbeat for 4m; no progress for 10m (last: 1)"
        );
        // An orphaned run is I1 only.
        let mut events = beating(7, |_| Some(json!(1)));
        events[0].2["container"] = json!("k");
        events.push((
            7,
            "container_status",
            json!({"container": "k", "status": "exited"}),
        ));
        assert_eq!(
            ids(&state(&events), &Limits::default(), 8),
            [pair("I1", "r1")]
        );
    }

    #[test]
    fn a_state_saved_before_i8_still_loads() {
        // A driver state as the previous version saved it: no progress_value, no
        // progress_changed_at, and Limits without stall_after.
        let old = r#"{"cursor": 3, "alerts": {"firing": {}}, "done": [], "state": {
            "last_seq": 3, "last_event_at": "2026-11-24T10:02:00Z", "channels": {}, "chats": {},
            "runs": {"r1": {"group": "ops", "run_kind": "task", "task": "backup", "container": null,
                            "started_at": "2026-11-24T10:00:00Z",
                            "last_heartbeat_at": "2026-11-24T10:02:00Z", "progress": "3"}},
            "containers": {}, "deliveries": {}, "tasks": {}, "boots": {}, "targets": {},
            "last_deploy": null, "known_messages": {}, "notices": {}}}"#;
        let mut d: crate::driver::DriverState<HostState> =
            serde_json::from_str(old).expect("an old state loads");
        let run = &d.state.runs["r1"];
        assert_eq!(
            (run.progress_value.as_ref(), run.progress_changed_at),
            (None, None)
        );
        assert_eq!(ids(&d.state, &Limits::default(), 3), []);
        // The next report counts as the first change: no instant stall after an upgrade.
        apply(
            &mut d.state,
            &HostEvent {
                seq: 4,
                at: t(3),
                fact: Fact::from_payload("run_heartbeat", &run_event(Some(json!("3")))),
            },
        );
        assert_eq!(d.state.runs["r1"].progress_changed_at, Some(t(3)));
        assert_eq!(ids(&d.state, &Limits::default(), 6), []);
        let old_limits: Limits = serde_json::from_value(json!({
            "stale_processing": {"secs": 600, "nanos": 0}, "heartbeat": {"secs": 180, "nanos": 0},
            "delivery_pending": {"secs": 300, "nanos": 0}, "channel_down": {"secs": 120, "nanos": 0},
            "max_concurrent": null, "task_grace": {"secs": 300, "nanos": 0},
            "orphan_grace": {"secs": 30, "nanos": 0}}))
        .unwrap();
        assert_eq!(old_limits, Limits::default());
    }
}
