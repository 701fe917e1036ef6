//! A realistic host stream for the benches: 50 agents answering chats in containers.
#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::{Value, json};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap()
}

/// `n` events `(at, kind, payload)`, one every `step`: each of 50 agents in turn receives a message,
/// dispatches it, runs (with heartbeats and container reports), answers, and delivers.
pub fn stream(
    n: usize,
    step: TimeDelta,
) -> impl Iterator<Item = (DateTime<Utc>, &'static str, Value)> {
    let mut i = 0usize;
    let mut round = 0usize;
    let mut agent = 0usize;
    let mut phase = 0usize;
    std::iter::from_fn(move || {
        if i >= n {
            return None;
        }
        let at = t0() + step * i as i32;
        let chat = format!("chat-{agent}");
        let run = format!("run-{agent}-{round}");
        let container = format!("agent-{agent}");
        let msg = format!("m-{agent}-{round}");
        let run_fields = json!({"run_id": run, "group": format!("group-{agent}"), "run_kind": "message",
                                "container": container, "progress": phase});
        let (kind, payload) = match phase {
            0 => (
                "message_received",
                json!({"channel": "slack", "chat_jid": chat, "message_id": msg,
                                              "timestamp": at.to_rfc3339(), "group": format!("group-{agent}")}),
            ),
            1 => (
                "batch_dispatched",
                json!({"chat_jid": chat, "message_ids": [msg], "run_id": run}),
            ),
            2 => (
                "container_status",
                json!({"container": container, "status": "running"}),
            ),
            3 => ("run_started", run_fields),
            4..=8 => ("run_heartbeat", run_fields),
            9 => (
                "bot_response",
                json!({"chat_jid": chat, "timestamp": at.to_rfc3339(), "run_id": run}),
            ),
            10 => (
                "delivery_queued",
                json!({"delivery_id": format!("d-{agent}-{round}"), "chat_jid": chat}),
            ),
            11 => (
                "delivery_sent",
                json!({"delivery_id": format!("d-{agent}-{round}"), "chat_jid": chat}),
            ),
            12 => (
                "run_finished",
                json!({"run_id": run, "group": format!("group-{agent}"), "run_kind": "message",
                                          "container": container, "outcome": "ok"}),
            ),
            _ => (
                "container_status",
                json!({"container": container, "status": "exited"}),
            ),
        };
        i += 1;
        agent += 1;
        if agent == 50 {
            agent = 0;
            phase += 1;
            if phase == 14 {
                phase = 0;
                round += 1;
            }
        }
        Some((at, kind, payload))
    })
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}
