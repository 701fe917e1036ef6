//! The event vocabulary: the ingest contract of product.md, as a decoder.
//!
//! [`decode`] turns one JSON object into a [`Decoded`] event or an [`EventError`] that names the
//! field. Fields beyond the required and optional ones of a kind are kept in the payload. Two fields
//! are common to every kind: `at` (RFC 3339; when it happened, default: when received) and
//! `idempotency_key` (a retry with the same key is stored once).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The type a field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A non-empty string.
    Str,
    /// An RFC 3339 instant.
    Time,
    /// A list of non-empty strings.
    StrList,
    /// A non-negative integer.
    Uint,
    /// Anything JSON.
    Any,
}

impl FieldType {
    fn describe(self) -> &'static str {
        match self {
            FieldType::Str => "a non-empty string",
            FieldType::Time => "an RFC 3339 time such as 2026-11-24T10:00:00Z",
            FieldType::StrList => "a list of non-empty strings",
            FieldType::Uint => "a non-negative integer",
            FieldType::Any => "any JSON value",
        }
    }
}

/// One kind of the vocabulary: its fields and which one is its subject.
#[derive(Debug, Clone, Copy)]
pub struct KindSpec {
    /// The kind.
    pub kind: &'static str,
    /// Required fields.
    pub required: &'static [(&'static str, FieldType)],
    /// Optional fields (typed when present).
    pub optional: &'static [(&'static str, FieldType)],
    /// The field the event is about (indexed as its subject).
    pub subject: Option<&'static str>,
}

use FieldType::{Any, Str, StrList, Time, Uint};

const RUN_OPTIONAL: &[(&str, FieldType)] = &[
    ("task", Str),
    ("container", Str),
    ("pid", Uint),
    ("outcome", Str),
    ("error", Any),
    ("note", Any),
    ("progress", Any),
];
/// A run's later events: everything of [`RUN_OPTIONAL`], and the group and kind its `run_started`
/// said (given again, they are checked as there).
const RUN_FOLLOW_UP_OPTIONAL: &[(&str, FieldType)] = &[
    ("group", Str),
    ("run_kind", Str),
    ("task", Str),
    ("container", Str),
    ("pid", Uint),
    ("outcome", Str),
    ("error", Any),
    ("note", Any),
    ("progress", Any),
];
const DELIVERY_OPTIONAL: &[(&str, FieldType)] = &[("error", Any), ("channel", Str)];
const BOOT_OPTIONAL: &[(&str, FieldType)] = &[("version", Str), ("pid", Uint)];

/// Every kind Lookout knows.
pub const VOCABULARY: &[KindSpec] = &[
    KindSpec {
        kind: "channel_connected",
        required: &[("channel", Str)],
        optional: &[("reason", Any)],
        subject: Some("channel"),
    },
    KindSpec {
        kind: "channel_disconnected",
        required: &[("channel", Str)],
        optional: &[("reason", Any)],
        subject: Some("channel"),
    },
    KindSpec {
        kind: "message_received",
        required: &[
            ("channel", Str),
            ("chat_jid", Str),
            ("message_id", Str),
            ("timestamp", Time),
        ],
        optional: &[("sender", Str), ("group", Str)],
        subject: Some("chat_jid"),
    },
    KindSpec {
        kind: "messages_recovered",
        required: &[("channel", Str), ("message_ids", StrList)],
        optional: &[("chat_jid", Str), ("group", Str)],
        subject: Some("channel"),
    },
    KindSpec {
        kind: "batch_dispatched",
        required: &[("chat_jid", Str), ("message_ids", StrList)],
        optional: &[("run_id", Str), ("group", Str)],
        subject: Some("chat_jid"),
    },
    KindSpec {
        kind: "bot_response",
        required: &[("chat_jid", Str), ("timestamp", Time)],
        optional: &[("run_id", Str), ("message_id", Str), ("channel", Str)],
        subject: Some("chat_jid"),
    },
    KindSpec {
        kind: "delivery_queued",
        required: &[("delivery_id", Str), ("chat_jid", Str)],
        optional: DELIVERY_OPTIONAL,
        subject: Some("delivery_id"),
    },
    KindSpec {
        kind: "delivery_sent",
        required: &[("delivery_id", Str), ("chat_jid", Str)],
        optional: DELIVERY_OPTIONAL,
        subject: Some("delivery_id"),
    },
    // Beyond product.md's table: the channel's confirmation of a sent delivery (a host that
    // reports them is expected to for every delivery it sends; see `flow::confirm`).
    KindSpec {
        kind: "delivery_confirmed",
        required: &[("delivery_id", Str), ("chat_jid", Str)],
        optional: DELIVERY_OPTIONAL,
        subject: Some("delivery_id"),
    },
    KindSpec {
        kind: "delivery_failed",
        required: &[("delivery_id", Str), ("chat_jid", Str)],
        optional: DELIVERY_OPTIONAL,
        subject: Some("delivery_id"),
    },
    KindSpec {
        kind: "run_started",
        required: &[("run_id", Str), ("group", Str), ("run_kind", Str)],
        optional: RUN_OPTIONAL,
        subject: Some("run_id"),
    },
    // A heartbeat or finish needs only its run: lookoutd's ingest fills the group, kind and task
    // in from the run's `run_started` (a host need not repeat them).
    KindSpec {
        kind: "run_heartbeat",
        required: &[("run_id", Str)],
        optional: RUN_FOLLOW_UP_OPTIONAL,
        subject: Some("run_id"),
    },
    KindSpec {
        kind: "run_finished",
        required: &[("run_id", Str)],
        optional: RUN_FOLLOW_UP_OPTIONAL,
        subject: Some("run_id"),
    },
    KindSpec {
        kind: "container_status",
        required: &[("container", Str), ("status", Str)],
        optional: &[],
        subject: Some("container"),
    },
    KindSpec {
        kind: "boot_started",
        required: &[("service", Str)],
        optional: BOOT_OPTIONAL,
        subject: Some("service"),
    },
    KindSpec {
        kind: "boot_ready",
        required: &[("service", Str)],
        optional: BOOT_OPTIONAL,
        subject: Some("service"),
    },
    KindSpec {
        kind: "heartbeat",
        required: &[("target", Str)],
        optional: &[("sha", Str)],
        subject: Some("target"),
    },
    KindSpec {
        kind: "version_stamp",
        required: &[("target", Str)],
        optional: &[("sha", Str)],
        subject: Some("target"),
    },
    KindSpec {
        kind: "deploy",
        required: &[("sha", Str)],
        optional: &[("commit_message", Str)],
        subject: Some("sha"),
    },
    // Beyond product.md's table: the scheduler reports each task's next due time, so the reconciler
    // can check I7 (a task past next_run + grace with no run). No `next_run`: no longer scheduled.
    KindSpec {
        kind: "task_scheduled",
        required: &[("task", Str)],
        optional: &[("next_run", Time), ("group", Str), ("grace_secs", Uint)],
        subject: Some("task"),
    },
];

/// The spec of `kind`, if it is in the vocabulary.
pub fn spec(kind: &str) -> Option<&'static KindSpec> {
    VOCABULARY.iter().find(|s| s.kind == kind)
}

/// A valid event, ready to append.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Its kind.
    pub kind: &'static str,
    /// Its subject (the value of the kind's subject field).
    pub subject: Option<String>,
    /// When it happened.
    pub at: Option<DateTime<Utc>>,
    /// The retry key, if the reporter gave one.
    pub idempotency_key: Option<String>,
    /// Every field but `kind`, `at` and `idempotency_key`.
    pub payload: Map<String, Value>,
}

/// Why an event is not valid; `field` names the culprit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EventError {
    /// The field at fault (`kind` when the kind itself is).
    pub field: String,
    /// What is wrong, and what was expected.
    pub message: String,
}

/// Time fields that say what is planned, not what happened: never checked against the clock.
const PLANNED: &[&str] = &["next_run"];

/// Refuses an event dated too far ahead: its `at`, or any time field of its kind, later than
/// `now + max_skew`. A heartbeat dated 2099 would otherwise keep its target fresh forever and
/// silence the very alarm it feeds; the error names the field and says by how much it is ahead.
pub fn check_not_ahead(
    decoded: &Decoded,
    now: DateTime<Utc>,
    max_skew: chrono::TimeDelta,
) -> Result<(), EventError> {
    let limit = now + max_skew;
    let ahead = |field: &str, t: DateTime<Utc>| -> Result<(), EventError> {
        if t <= limit {
            return Ok(());
        }
        Err(err(
            field,
            format!(
                "field `{field}` is {} in the future ({}; lookoutd's clock reads {}): times more \
                 than {} ahead are refused (ingest.max_skew)",
                lookout_common::human_age(t - now),
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                lookout_common::human_age(max_skew),
            ),
        ))
    };
    if let Some(at) = decoded.at {
        ahead("at", at)?;
    }
    let Some(spec) = spec(decoded.kind) else {
        return Ok(());
    };
    for (field, ty) in spec.required.iter().chain(spec.optional) {
        // A plan is in the future by nature (a task's next run): only facts are checked.
        if *ty != FieldType::Time || PLANNED.contains(field) {
            continue;
        }
        if let Some(t) = decoded
            .payload
            .get(*field)
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        {
            ahead(field, t.with_timezone(&Utc))?;
        }
    }
    Ok(())
}

fn err(field: &str, message: String) -> EventError {
    EventError {
        field: field.to_owned(),
        message,
    }
}

fn check(field: &str, ty: FieldType, v: &Value) -> Result<(), EventError> {
    let ok = match ty {
        Str => v.as_str().is_some_and(|s| !s.trim().is_empty()),
        Time => v
            .as_str()
            .is_some_and(|s| DateTime::parse_from_rfc3339(s).is_ok()),
        StrList => v.as_array().is_some_and(|a| {
            !a.is_empty() && a.iter().all(|x| x.as_str().is_some_and(|s| !s.is_empty()))
        }),
        Uint => v.as_u64().is_some(),
        Any => true,
    };
    if ok {
        Ok(())
    } else {
        Err(err(
            field,
            format!(
                "field `{field}` must be {}, found {}",
                ty.describe(),
                short(v)
            ),
        ))
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(40).map(|c| c.0).unwrap_or(s.len())]
        )
    } else {
        s
    }
}

fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

fn contains_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => has_nul(s),
        Value::Array(a) => a.iter().any(contains_nul),
        Value::Object(m) => m.iter().any(|(k, v)| has_nul(k) || contains_nul(v)),
        _ => false,
    }
}

/// Validates one event object against the vocabulary.
pub fn decode(value: Value) -> Result<Decoded, EventError> {
    let Value::Object(mut map) = value else {
        return Err(err(
            "",
            format!("an event must be a JSON object, found {}", short(&value)),
        ));
    };
    let kind = match map.remove("kind") {
        Some(Value::String(k)) => k,
        Some(other) => {
            return Err(err(
                "kind",
                format!("field `kind` must be a string, found {}", short(&other)),
            ));
        }
        None => return Err(err("kind", "missing field `kind`".into())),
    };
    let Some(spec) = spec(&kind) else {
        let known: Vec<&str> = VOCABULARY.iter().map(|s| s.kind).collect();
        return Err(err(
            "kind",
            format!("unknown kind `{kind}`; known kinds: {}", known.join(", ")),
        ));
    };
    for (field, ty) in spec.required {
        match map.get(*field) {
            None | Some(Value::Null) => {
                let names: Vec<&str> = spec.required.iter().map(|f| f.0).collect();
                return Err(err(
                    field,
                    format!(
                        "missing field `{field}` ({kind} needs {})",
                        names.join(", ")
                    ),
                ));
            }
            Some(v) => check(field, *ty, v)?,
        }
    }
    for (field, ty) in spec.optional {
        if let Some(v) = map.get(*field).filter(|v| !v.is_null()) {
            check(field, *ty, v)?;
        }
    }
    if kind.starts_with("run_")
        && let Some(rk) = map.get("run_kind").and_then(Value::as_str)
        && rk != "message"
        && rk != "task"
    {
        return Err(err(
            "run_kind",
            format!("field `run_kind` must be \"message\" or \"task\", found \"{rk}\""),
        ));
    }
    let at = match map.remove("at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            DateTime::parse_from_rfc3339(&s)
                .map_err(|e| {
                    err(
                        "at",
                        format!("field `at` must be an RFC 3339 time ({e}), found \"{s}\""),
                    )
                })?
                .with_timezone(&Utc),
        ),
        Some(other) => {
            return Err(err(
                "at",
                format!(
                    "field `at` must be an RFC 3339 time, found {}",
                    short(&other)
                ),
            ));
        }
    };
    let idempotency_key = match map.remove("idempotency_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 200 => Some(s),
        Some(other) => {
            return Err(err(
                "idempotency_key",
                format!(
                    "field `idempotency_key` must be a string of 1 to 200 characters, found {}",
                    short(&other)
                ),
            ));
        }
    };
    for (field, v) in &map {
        if has_nul(field) || contains_nul(v) {
            return Err(err(
                field,
                format!("field `{field}` contains a NUL character, which cannot be stored"),
            ));
        }
    }
    let subject = spec
        .subject
        .and_then(|f| map.get(f))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Decoded {
        kind: spec.kind,
        subject,
        at,
        idempotency_key,
        payload: map,
    })
}

#[cfg(test)]
mod skew_tests {
    use chrono::{TimeDelta, TimeZone};
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap()
    }

    #[test]
    fn a_time_too_far_ahead_is_refused_naming_its_field() {
        let skew = TimeDelta::minutes(5);
        let beat = decode(json!({"kind": "heartbeat", "target": "bridge",
                                 "at": "2099-01-01T00:00:00Z"}))
        .unwrap();
        let e = check_not_ahead(&beat, now(), skew).unwrap_err();
        assert_eq!(e.field, "at");
        assert!(
            e.message
                .starts_with("field `at` is 26335d 14h in the future (2099-01-01T00:00:00Z; "),
            "{}",
            e.message
        );
        assert!(
            e.message
                .ends_with("times more than 5m ahead are refused (ingest.max_skew)")
        );
        // A typed time field of the kind is checked too.
        let msg = decode(
            json!({"kind": "message_received", "channel": "slack", "chat_jid": "c",
                                "message_id": "m", "timestamp": "2026-11-24T10:06:00Z"}),
        )
        .unwrap();
        assert_eq!(
            check_not_ahead(&msg, now(), skew).unwrap_err().field,
            "timestamp"
        );
        // Within the skew, or in the past: accepted.
        let near = decode(
            json!({"kind": "message_received", "channel": "slack", "chat_jid": "c",
                                 "message_id": "m", "timestamp": "2026-11-24T10:04:59Z",
                                 "at": "2020-01-01T00:00:00Z"}),
        )
        .unwrap();
        assert!(check_not_ahead(&near, now(), skew).is_ok());
        // A plan is in the future by nature: a task's next run a day ahead is accepted.
        let planned = decode(json!({"kind": "task_scheduled", "task": "nightly",
                                    "next_run": "2026-11-25T03:00:00Z"}))
        .unwrap();
        assert!(check_not_ahead(&planned, now(), skew).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_valid_event_keeps_extra_fields_as_payload() {
        let d = decode(json!({
            "kind": "message_received", "channel": "slack", "chat_jid": "c1", "message_id": "m1",
            "timestamp": "2026-11-24T10:00:00+01:00", "at": "2026-11-24T09:00:01Z",
            "idempotency_key": "k1", "lang": "en"
        }))
        .unwrap();
        assert_eq!(d.kind, "message_received");
        assert_eq!(d.subject.as_deref(), Some("c1"));
        assert_eq!(d.idempotency_key.as_deref(), Some("k1"));
        assert_eq!(d.at.unwrap().to_rfc3339(), "2026-11-24T09:00:01+00:00");
        assert_eq!(d.payload["lang"], "en");
        assert!(!d.payload.contains_key("kind") && !d.payload.contains_key("at"));
    }

    #[test]
    fn errors_name_the_field() {
        let e = decode(json!({"kind": "message_recieved"})).unwrap_err();
        assert_eq!(e.field, "kind");
        assert!(
            e.message
                .starts_with("unknown kind `message_recieved`; known kinds: channel_connected")
        );
        let e = decode(json!({"kind": "bot_response", "chat_jid": "c1"})).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            (
                "timestamp",
                "missing field `timestamp` (bot_response needs chat_jid, timestamp)"
            )
        );
        let e = decode(json!({"kind": "bot_response", "chat_jid": "c1", "timestamp": "yesterday"}))
            .unwrap_err();
        assert_eq!(e.field, "timestamp");
        assert!(e.message.contains("RFC 3339"), "{}", e.message);
        let e = decode(json!({"kind": "batch_dispatched", "chat_jid": "c1", "message_ids": []}))
            .unwrap_err();
        assert_eq!(e.field, "message_ids");
        let e = decode(json!({"kind": "boot_started", "service": "x", "pid": -1})).unwrap_err();
        assert_eq!(e.field, "pid");
        let e = decode(
            json!({"kind": "run_started", "run_id": "r", "group": "g", "run_kind": "batch"}),
        )
        .unwrap_err();
        assert_eq!(e.field, "run_kind");
        let e = decode(json!({"kind": "deploy", "sha": "abc", "at": 12})).unwrap_err();
        assert_eq!(e.field, "at");
        let e = decode(json!(["not", "an", "object"])).unwrap_err();
        assert!(e.message.starts_with("an event must be a JSON object"));
        let e = decode(json!({"kind": "deploy", "sha": "a", "note": {"x": ["ok", "bad\u{0}"]}}))
            .unwrap_err();
        assert_eq!(e.field, "note");
        assert!(e.message.contains("NUL"), "{}", e.message);
        let e = decode(json!({"channel": "x"})).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("kind", "missing field `kind`")
        );
    }

    #[test]
    fn every_kind_of_the_product_is_known() {
        for k in [
            "channel_connected",
            "channel_disconnected",
            "message_received",
            "messages_recovered",
            "batch_dispatched",
            "bot_response",
            "delivery_queued",
            "delivery_sent",
            "delivery_confirmed",
            "delivery_failed",
            "run_started",
            "run_heartbeat",
            "run_finished",
            "container_status",
            "boot_started",
            "boot_ready",
            "heartbeat",
            "version_stamp",
            "deploy",
        ] {
            assert!(spec(k).is_some(), "{k}");
        }
    }
}
