//! Applies the event log to the tables the status page and the interrupted-run scan read (messages,
//! deliveries), following the log as a subscriber (`crate::log`) with its cursor in `router_state`.
//!
//! Every projection is idempotent (a message recorded twice is one row; marking and clearing set the
//! same values again), so applying an event a second time after a crash between the work and the
//! cursor update changes nothing.

use lookout_reconcile_core::event::Event;
use lookout_store::{Direction, NewMessage, Store, StoreError, StoredEvent};

use crate::log::{EventLog, Subscription};

const CURSOR_KEY: &str = "projection_cursor";
const PAGE: u32 = 1000;

/// One projector per daemon: a subscription to every kind of the log, under `projection_cursor`;
/// `catch_up` calls are serialised by it.
pub(crate) struct Projector {
    store: Store,
    sub: tokio::sync::Mutex<Subscription>,
}

impl Projector {
    /// The projector of `log`'s store.
    pub(crate) fn new(log: &EventLog, store: Store) -> Self {
        Projector {
            store,
            sub: tokio::sync::Mutex::new(log.subscribe(CURSOR_KEY, &[])),
        }
    }

    /// Applies every event after the cursor; returns how many were applied.
    pub(crate) async fn catch_up(&self) -> Result<u64, StoreError> {
        let mut sub = self.sub.lock().await;
        let mut applied = 0;
        loop {
            let page = sub.read(PAGE).await?;
            let Some(last) = page.last().map(|e| e.seq) else {
                break;
            };
            for e in &page {
                apply(&self.store, e).await?;
            }
            applied += page.len() as u64;
            sub.commit(last).await?;
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
        Event::DeliverySent { delivery_id, .. } => {
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
