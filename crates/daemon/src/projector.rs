//! Applies the event log to the tables the status page and the interrupted-run scan read (messages,
//! deliveries), following the log by a seq cursor kept in `router_state`.
//!
//! Every projection is idempotent (a message recorded twice is one row; marking and clearing set the
//! same values again), so applying an event a second time after a crash between the work and the
//! cursor update changes nothing.

use lookout_reconcile_core::event::Event;
use lookout_store::{Direction, NewMessage, Store, StoreError, StoredEvent};

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

async fn apply(store: &Store, e: &StoredEvent) -> Result<(), StoreError> {
    // Typed in one place (reconcile-core's Event); a hand-made row missing a field is `Other` and
    // skipped, never fatal (ingest validated everything it acknowledged).
    match Event::from_payload(&e.kind, &e.payload) {
        Event::MessageReceived {
            channel,
            chat_jid,
            message_id,
            sender,
            timestamp: Some(timestamp),
            ..
        } => {
            store
                .record_messages(&[NewMessage {
                    channel,
                    chat_jid,
                    message_id,
                    sender,
                    direction: Direction::Inbound,
                    timestamp,
                }])
                .await?;
        }
        Event::BotResponse {
            chat_jid,
            timestamp: Some(timestamp),
            message_id,
            channel,
            ..
        } => {
            // A response without its own id is named by its seq, so a replay records it once.
            let id = message_id.unwrap_or_else(|| format!("response:{}", e.seq));
            store
                .record_messages(&[NewMessage {
                    channel: channel.unwrap_or_else(|| "unknown".into()),
                    chat_jid: chat_jid.clone(),
                    message_id: id,
                    sender: None,
                    direction: Direction::Outbound,
                    timestamp,
                }])
                .await?;
            store
                .clear_processing_on_response(&chat_jid, timestamp)
                .await?;
        }
        Event::BatchDispatched {
            chat_jid,
            message_ids,
            ..
        } => {
            let out = store
                .mark_batch_processing(&chat_jid, &message_ids, e.at)
                .await?;
            if !out.missing.is_empty() {
                tracing::warn!(
                    chat_jid = %chat_jid,
                    missing = ?out.missing,
                    "batch_dispatched names messages never reported as received; they are not tracked"
                );
            }
        }
        Event::DeliveryQueued {
            delivery_id,
            chat_jid,
            channel,
        } => {
            store
                .delivery_queued(&delivery_id, channel.as_deref(), &chat_jid, e.at)
                .await?;
        }
        Event::DeliverySent { delivery_id } => {
            store.delivery_sent(&delivery_id, e.at).await?;
        }
        Event::DeliveryFailed {
            delivery_id, error, ..
        } => {
            let error = error.unwrap_or_else(|| "unknown error".into());
            store.delivery_failed(&delivery_id, &error).await?;
        }
        _ => {}
    }
    Ok(())
}
