//! What an event says, typed: [`Fact`] decoded from a record's kind and payload, and the
//! [`HostEvent`] the host model folds.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::LoggedEvent;

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
        /// How late it may start, overriding [`Limits::task_grace`](super::Limits::task_grace).
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
    /// Types a record of the event log.
    pub fn from_logged(e: &LoggedEvent) -> HostEvent {
        HostEvent {
            seq: e.seq,
            at: e.at,
            fact: Fact::from_payload(&e.kind, &e.payload),
        }
    }
}
