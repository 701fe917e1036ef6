//! One typed event: what an event of the vocabulary says, as the reconciler, the projector,
//! `/status` and the daemon's other consumers read it. [`crate::vocabulary`] is the ingest
//! contract (which fields a kind requires, and the error naming a bad one); [`Event`] is the same
//! vocabulary as data, made from a stored payload by [`Event::from_payload`], the one place that
//! reads payload fields by name.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// The process it runs as (a pid in lookoutd's own pid namespace), watched when there is no
    /// container.
    #[serde(default)]
    pub pid: Option<u32>,
    /// How it ended (`run_finished`).
    pub outcome: Option<String>,
    /// Anything that changes while the run makes progress, rendered as text (a string as is,
    /// any other JSON value as JSON).
    pub progress: Option<String>,
    /// The same `progress` as the JSON value reported (None: absent or null), compared for
    /// equality by I8.
    #[serde(default)]
    pub progress_value: Option<Value>,
    /// Why it failed (`run_finished`), rendered as text.
    #[serde(default)]
    pub error: Option<String>,
    /// `false` in a `run_started` that says the host will send no heartbeat for this run (a
    /// one-shot container): it is never called silent (I3). Absent: `true`.
    #[serde(default = "promised")]
    pub heartbeats: bool,
}

fn promised() -> bool {
    true
}

/// What an event of the vocabulary says, typed: one variant per kind (two kinds, `heartbeat` and
/// `version_stamp`, share [`Event::TargetSeen`]). Every consumer of the log — the host model, the
/// projector, `/status`, deploy windows, the watchdog's heartbeat feed — reads this form, made in
/// one place ([`Event::from_payload`]); the store keeps the JSON the host sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum Event {
    /// `channel_connected`.
    ChannelConnected {
        /// The channel.
        channel: String,
        /// A note, if said (rendered as text).
        #[serde(default)]
        reason: Option<String>,
    },
    /// `channel_disconnected`.
    ChannelDisconnected {
        /// The channel.
        channel: String,
        /// Why, if said (rendered as text).
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
        /// Who sent it, if said.
        #[serde(default)]
        sender: Option<String>,
        /// When it was sent (required at ingest; None only in a hand-made row).
        #[serde(default)]
        timestamp: Option<DateTime<Utc>>,
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
        /// When it was sent (required at ingest; None only in a hand-made row).
        #[serde(default)]
        timestamp: Option<DateTime<Utc>>,
        /// The response's own message id, if said.
        #[serde(default)]
        message_id: Option<String>,
        /// The channel it went out on, if said.
        #[serde(default)]
        channel: Option<String>,
        /// The run that answered, if said.
        #[serde(default)]
        run_id: Option<String>,
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
        /// Its chat (a record stored before it was read may lack it: empty).
        #[serde(default)]
        chat_jid: String,
    },
    /// `delivery_confirmed`: the channel confirmed a sent delivery arrived.
    DeliveryConfirmed {
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
        /// Its commit message, if said.
        #[serde(default)]
        commit_message: Option<String>,
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
            pid: self
                .0
                .get("pid")
                .and_then(Value::as_u64)
                .and_then(|p| u32::try_from(p).ok()),
            outcome: self.opt("outcome"),
            progress: self.opt("progress"),
            progress_value: self.0.get("progress").filter(|v| !v.is_null()).cloned(),
            error: self.opt("error"),
            heartbeats: self
                .0
                .get("heartbeats")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        })
    }
}

impl Event {
    /// Types the fields of an event of `kind` (the payload as stored: every field but `kind`, `at`
    /// and `idempotency_key`).
    pub fn from_payload(kind: &str, payload: &Value) -> Event {
        let f = Fields(payload);
        let typed: Result<Event, String> = (|| {
            Ok(match kind {
                "channel_connected" => Event::ChannelConnected {
                    channel: f.req("channel")?,
                    reason: f.opt("reason"),
                },
                "channel_disconnected" => Event::ChannelDisconnected {
                    channel: f.req("channel")?,
                    reason: f.opt("reason"),
                },
                "message_received" => Event::MessageReceived {
                    channel: f.req("channel")?,
                    chat_jid: f.req("chat_jid")?,
                    message_id: f.req("message_id")?,
                    group: f.opt("group"),
                    sender: f.opt("sender"),
                    timestamp: f.time("timestamp"),
                },
                "messages_recovered" => Event::MessagesRecovered {
                    channel: f.req("channel")?,
                    chat_jid: f.opt("chat_jid"),
                    group: f.opt("group"),
                    message_ids: f.list("message_ids")?,
                },
                "batch_dispatched" => Event::BatchDispatched {
                    chat_jid: f.req("chat_jid")?,
                    message_ids: f.list("message_ids")?,
                    run_id: f.opt("run_id"),
                    group: f.opt("group"),
                },
                "bot_response" => Event::BotResponse {
                    chat_jid: f.req("chat_jid")?,
                    timestamp: f.time("timestamp"),
                    message_id: f.opt("message_id"),
                    channel: f.opt("channel"),
                    run_id: f.opt("run_id"),
                },
                "delivery_queued" => Event::DeliveryQueued {
                    delivery_id: f.req("delivery_id")?,
                    chat_jid: f.req("chat_jid")?,
                    channel: f.opt("channel"),
                },
                "delivery_sent" => Event::DeliverySent {
                    delivery_id: f.req("delivery_id")?,
                    chat_jid: f.opt("chat_jid").unwrap_or_default(),
                },
                "delivery_confirmed" => Event::DeliveryConfirmed {
                    delivery_id: f.req("delivery_id")?,
                },
                "delivery_failed" => Event::DeliveryFailed {
                    delivery_id: f.req("delivery_id")?,
                    chat_jid: f.req("chat_jid")?,
                    error: f.opt("error"),
                },
                "run_started" => Event::RunStarted(f.run()?),
                "run_heartbeat" => Event::RunHeartbeat(f.run()?),
                "run_finished" => Event::RunFinished(f.run()?),
                "container_status" => Event::ContainerStatus {
                    container: f.req("container")?,
                    status: f.req("status")?,
                },
                "boot_started" => Event::BootStarted {
                    service: f.req("service")?,
                    version: f.opt("version"),
                },
                "boot_ready" => Event::BootReady {
                    service: f.req("service")?,
                },
                "heartbeat" | "version_stamp" => Event::TargetSeen {
                    target: f.req("target")?,
                    sha: f.opt("sha"),
                    heartbeat: kind == "heartbeat",
                },
                "deploy" => Event::Deploy {
                    sha: f.req("sha")?,
                    commit_message: f.opt("commit_message"),
                },
                "task_scheduled" => Event::TaskScheduled {
                    task: f.req("task")?,
                    group: f.opt("group"),
                    next_run: f.time("next_run"),
                    grace_secs: payload.get("grace_secs").and_then(Value::as_u64),
                },
                other => Event::Other {
                    kind: other.to_owned(),
                    bad_field: None,
                },
            })
        })();
        typed.unwrap_or_else(|field| Event::Other {
            kind: kind.to_owned(),
            bad_field: Some(field),
        })
    }

    /// The group an event names, if it names one (runs, chats' messages and batches, tasks).
    pub fn group(&self) -> Option<&str> {
        match self {
            Event::RunStarted(r) | Event::RunHeartbeat(r) | Event::RunFinished(r) => Some(&r.group),
            Event::MessageReceived { group, .. }
            | Event::MessagesRecovered { group, .. }
            | Event::BatchDispatched { group, .. }
            | Event::TaskScheduled { group, .. } => group.as_deref(),
            _ => None,
        }
    }

    /// The run's fields, for `run_started`, `run_heartbeat` and `run_finished`.
    pub fn run(&self) -> Option<&RunFact> {
        match self {
            Event::RunStarted(r) | Event::RunHeartbeat(r) | Event::RunFinished(r) => Some(r),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::vocabulary::{FieldType, VOCABULARY, decode};

    fn sample(t: FieldType) -> Value {
        match t {
            FieldType::Str => json!("x"),
            FieldType::Time => json!("2026-11-24T10:00:00Z"),
            FieldType::StrList => json!(["m1", "m2"]),
            FieldType::Uint => json!(7),
            FieldType::Any => json!("y"),
        }
    }

    // The two halves of the vocabulary agree: every kind ingest stores, with only its required
    // fields, is typed (never `Other`), and with its optional ones too.
    #[test]
    fn every_kind_ingest_accepts_is_typed() {
        for spec in VOCABULARY {
            for with_optional in [false, true] {
                let mut body = serde_json::Map::new();
                body.insert("kind".into(), json!(spec.kind));
                let fields = spec
                    .required
                    .iter()
                    .chain(spec.optional.iter().filter(|_| with_optional));
                // A run's heartbeat or finish may say only its run: lookoutd's ingest stores it
                // with the group and kind of the run's `run_started` (an unknown run's is `Other`).
                if !with_optional && matches!(spec.kind, "run_heartbeat" | "run_finished") {
                    body.insert("group".into(), json!("g"));
                    body.insert("run_kind".into(), json!("task"));
                }
                for (name, t) in fields {
                    // A few fields have values beyond their type's (checked by the decoder).
                    let value = match *name {
                        "run_kind" => json!("task"),
                        "outcome" => json!("ok"),
                        _ => sample(*t),
                    };
                    body.insert((*name).into(), value);
                }
                let decoded = decode(Value::Object(body)).unwrap();
                let event = Event::from_payload(decoded.kind, &Value::Object(decoded.payload));
                assert!(
                    !matches!(event, Event::Other { .. }),
                    "{} (optional fields: {with_optional}) typed as {event:?}",
                    spec.kind
                );
            }
        }
    }

    #[test]
    fn fields_are_typed_once_here() {
        let e = Event::from_payload(
            "message_received",
            &json!({"channel": "slack", "chat_jid": "c1", "message_id": "m1",
                    "timestamp": "2026-11-24T10:00:00+01:00", "sender": "ann"}),
        );
        let Event::MessageReceived {
            timestamp, sender, ..
        } = e
        else {
            panic!("{e:?}")
        };
        assert_eq!(
            timestamp.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-11-24T09:00:00+00:00")
        );
        assert_eq!(sender.as_deref(), Some("ann"));
        let run = Event::from_payload(
            "run_finished",
            &json!({"run_id": "r1", "group": "g", "run_kind": "task", "outcome": "failed",
                    "error": {"code": 2}}),
        );
        assert_eq!(run.group(), Some("g"));
        assert_eq!(
            run.run().and_then(|r| r.error.as_deref()),
            Some(r#"{"code":2}"#),
            "a non-string error is rendered as JSON"
        );
        // A record missing a field the type needs names it, and only advances the seq.
        assert_eq!(
            Event::from_payload("bot_response", &json!({})),
            Event::Other {
                kind: "bot_response".into(),
                bad_field: Some("chat_jid".into()),
            }
        );
    }
}
