//! Messages and deliveries the host reports, as rows the status page and the interrupted-run scan read.

use crate::error::{QueryContext, Result};
use crate::time::{Timestamp, to_micros};
use crate::{Pool, Store};

/// Who sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From a person, to the bot.
    Inbound,
    /// From the bot.
    Outbound,
}

impl Direction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// A message to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// The channel it came through.
    pub channel: String,
    /// The conversation it belongs to.
    pub chat_jid: String,
    /// Its id on the channel; unique within the chat.
    pub message_id: String,
    /// Who sent it, when known.
    pub sender: Option<String>,
    /// Inbound or outbound.
    pub direction: Direction,
    /// When it was sent, by the channel's clock.
    pub timestamp: Timestamp,
}

impl Store {
    /// Records messages in one transaction; a message already recorded (same chat and id) is left
    /// as it is. Returns how many were new.
    pub async fn record_messages(&self, messages: &[NewMessage]) -> Result<u64> {
        if messages.is_empty() {
            return Ok(0);
        }
        let now = to_micros(&chrono::Utc::now());
        let rows: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                serde_json::json!([
                    m.channel,
                    m.chat_jid,
                    m.message_id,
                    m.sender,
                    m.direction.as_str(),
                    to_micros(&m.timestamp)
                ])
            })
            .collect();
        let done = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query(
                    "INSERT INTO messages (channel, chat_jid, message_id, sender, direction, timestamp, recorded_at) \
                     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, $2 \
                     FROM json_each($1) ORDER BY key \
                     ON CONFLICT (chat_jid, message_id) DO NOTHING",
                )
                .bind(serde_json::Value::Array(rows).to_string())
                .bind(now)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
            }
            Pool::Postgres(p) => {
                sqlx::query(
                    "INSERT INTO messages (channel, chat_jid, message_id, sender, direction, timestamp, recorded_at) \
                     SELECT r->>0, r->>1, r->>2, r->>3, r->>4, (r->>5)::bigint, $2 \
                     FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(r, ord) ORDER BY ord \
                     ON CONFLICT (chat_jid, message_id) DO NOTHING",
                )
                .bind(serde_json::Value::Array(rows).to_string())
                .bind(now)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
            }
        }
        .context("recording messages")?;
        Ok(done)
    }

    /// Records an outbound delivery as pending (queued at `at`); a second call for the same id
    /// changes nothing.
    pub async fn delivery_queued(
        &self,
        delivery_id: &str,
        channel: Option<&str>,
        chat_jid: &str,
        at: Timestamp,
    ) -> Result<()> {
        crate::on_pool!(self, p => sqlx::query(
            "INSERT INTO outbound_deliveries (delivery_id, channel, chat_jid, status, queued_at) \
             VALUES ($1, $2, $3, 'pending', $4) ON CONFLICT (delivery_id) DO NOTHING",
        )
        .bind(delivery_id)
        .bind(channel)
        .bind(chat_jid)
        .bind(to_micros(&at))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .context("recording a queued delivery")?;
        Ok(())
    }

    /// Marks a delivery sent at `at` (once: a repeat changes nothing and returns false).
    pub async fn delivery_sent(&self, delivery_id: &str, at: Timestamp) -> Result<bool> {
        let done = crate::on_pool!(self, p => sqlx::query(
            "UPDATE outbound_deliveries SET status = 'sent', sent_at = $2, attempts = attempts + 1 \
             WHERE delivery_id = $1 AND status <> 'sent'",
        )
        .bind(delivery_id)
        .bind(to_micros(&at))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .context("marking a delivery sent")?;
        Ok(done == 1)
    }

    /// Marks a delivery failed with its error.
    pub async fn delivery_failed(&self, delivery_id: &str, error: &str) -> Result<bool> {
        let done = crate::on_pool!(self, p => sqlx::query(
            "UPDATE outbound_deliveries SET status = 'failed', last_error = $2, attempts = attempts + 1 \
             WHERE delivery_id = $1 AND status <> 'sent'",
        )
        .bind(delivery_id)
        .bind(error)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .context("marking a delivery failed")?;
        Ok(done == 1)
    }
}
