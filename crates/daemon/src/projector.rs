//! Applies the event log to the tables the status page and the interrupted-run scan read (messages,
//! deliveries), following the log by a seq cursor kept in `router_state`.
//!
//! Every projection is idempotent (a message recorded twice is one row; marking and clearing set the
//! same values again), so applying an event a second time after a crash between the work and the
//! cursor update changes nothing.

use lookout_store::{Direction, NewMessage, Store, StoreError, StoredEvent, time::parse_rfc3339};
use serde_json::Value;

const CURSOR_KEY: &str = "projection_cursor";
const PAGE: u32 = 1000;

/// One projector per daemon; `catch_up` calls are serialised.
#[derive(Default)]
pub(crate) struct Projector {
    lock: tokio::sync::Mutex<()>,
}

impl Projector {
    /// Applies every event after the cursor; returns how many were applied.
    pub(crate) async fn catch_up(&self, store: &Store) -> Result<u64, StoreError> {
        let _one_at_a_time = self.lock.lock().await;
        let mut cursor: i64 = store
            .router_state_get(CURSOR_KEY)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut applied = 0;
        loop {
            let page = store.events_after(cursor, PAGE).await?;
            let Some(last) = page.last().map(|e| e.seq) else {
                break;
            };
            for e in &page {
                apply(store, e).await?;
            }
            applied += page.len() as u64;
            cursor = last;
            store
                .router_state_set(CURSOR_KEY, &cursor.to_string())
                .await?;
        }
        Ok(applied)
    }
}

fn s<'a>(e: &'a StoredEvent, field: &str) -> Option<&'a str> {
    e.payload.get(field).and_then(Value::as_str)
}

fn time(e: &StoredEvent, field: &str) -> Option<lookout_store::Timestamp> {
    s(e, field).and_then(|t| parse_rfc3339(t).ok())
}

async fn apply(store: &Store, e: &StoredEvent) -> Result<(), StoreError> {
    match e.kind.as_str() {
        "message_received" => {
            let (Some(channel), Some(chat), Some(id), Some(ts)) = (
                s(e, "channel"),
                s(e, "chat_jid"),
                s(e, "message_id"),
                time(e, "timestamp"),
            ) else {
                return Ok(()); // validated at ingest; a hand-made row is skipped, not fatal
            };
            store
                .record_messages(&[NewMessage {
                    channel: channel.into(),
                    chat_jid: chat.into(),
                    message_id: id.into(),
                    sender: s(e, "sender").map(Into::into),
                    direction: Direction::Inbound,
                    timestamp: ts,
                }])
                .await?;
        }
        "bot_response" => {
            let (Some(chat), Some(ts)) = (s(e, "chat_jid"), time(e, "timestamp")) else {
                return Ok(());
            };
            // A response without its own id is named by its seq, so a replay records it once.
            let id = s(e, "message_id")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("response:{}", e.seq));
            store
                .record_messages(&[NewMessage {
                    channel: s(e, "channel").unwrap_or("unknown").into(),
                    chat_jid: chat.into(),
                    message_id: id,
                    sender: None,
                    direction: Direction::Outbound,
                    timestamp: ts,
                }])
                .await?;
            store.clear_processing_on_response(chat, ts).await?;
        }
        "batch_dispatched" => {
            let Some(chat) = s(e, "chat_jid") else {
                return Ok(());
            };
            let ids: Vec<String> = e
                .payload
                .get("message_ids")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let out = store.mark_batch_processing(chat, &ids, e.at).await?;
            if !out.missing.is_empty() {
                tracing::warn!(
                    chat_jid = chat,
                    missing = ?out.missing,
                    "batch_dispatched names messages never reported as received; they are not tracked"
                );
            }
        }
        "delivery_queued" => {
            if let (Some(id), Some(chat)) = (s(e, "delivery_id"), s(e, "chat_jid")) {
                store
                    .delivery_queued(id, s(e, "channel"), chat, e.at)
                    .await?;
            }
        }
        "delivery_sent" => {
            if let Some(id) = s(e, "delivery_id") {
                store.delivery_sent(id, e.at).await?;
            }
        }
        "delivery_failed" => {
            if let Some(id) = s(e, "delivery_id") {
                let error = e
                    .payload
                    .get("error")
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .unwrap_or_else(|| "unknown error".into());
                store.delivery_failed(id, &error).await?;
            }
        }
        _ => {}
    }
    Ok(())
}
