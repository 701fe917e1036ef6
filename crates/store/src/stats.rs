//! Counts and latest timestamps for the status page: cheap aggregate queries over indexed columns.

use std::time::Duration;

use crate::error::{QueryContext, Result, StoreError};
use crate::time::{Timestamp, from_micros, to_micros};
use crate::{Store, on_pool};

/// The event log at a glance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EventStats {
    /// How many events the log holds.
    pub total: i64,
    /// The highest seq (0 when empty).
    pub last_seq: i64,
    /// When the latest event happened.
    pub last_at: Option<Timestamp>,
}

/// Messages at a glance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageStats {
    /// Messages from people.
    pub total_inbound: i64,
    /// Messages from the bot.
    pub total_outbound: i64,
    /// The latest inbound message's timestamp.
    pub last_received_at: Option<Timestamp>,
    /// The latest outbound message's timestamp.
    pub last_sent_at: Option<Timestamp>,
    /// Messages whose batch is being processed (dispatched, no response yet).
    pub in_flight: i64,
    /// When the oldest of those was dispatched.
    pub oldest_in_flight_since: Option<Timestamp>,
}

/// Outbound deliveries at a glance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryStats {
    /// Deliveries not yet sent.
    pub pending: i64,
    /// Pending deliveries queued longer ago than the threshold asked for.
    pub pending_too_long: i64,
    /// When the oldest pending delivery was queued.
    pub oldest_pending_since: Option<Timestamp>,
    /// Deliveries that failed.
    pub failed: i64,
}

impl Store {
    /// Totals of the event log.
    pub async fn event_stats(&self) -> Result<EventStats> {
        let (total, last_seq): (i64, Option<i64>) = on_pool!(self, p => sqlx::query_as(
            "SELECT COUNT(*), MAX(seq) FROM events"
        )
        .fetch_one(p)
        .await)
        .context("counting events")?;
        let last_at: Option<i64> = match last_seq {
            None => None,
            Some(seq) => {
                on_pool!(self, p => sqlx::query_scalar("SELECT at FROM events WHERE seq = $1")
                .bind(seq)
                .fetch_optional(p)
                .await)
                .context("reading the latest event")?
            }
        };
        Ok(EventStats {
            total,
            last_seq: last_seq.unwrap_or(0),
            last_at: last_at.map(from_micros),
        })
    }

    /// Totals and latest timestamps of messages.
    pub async fn message_stats(&self) -> Result<MessageStats> {
        let (total_inbound, last_in): (i64, Option<i64>) = on_pool!(self, p => sqlx::query_as(
            "SELECT COUNT(*), MAX(timestamp) FROM messages WHERE direction = 'inbound'"
        )
        .fetch_one(p)
        .await)
        .context("counting inbound messages")?;
        let (total_outbound, last_out): (i64, Option<i64>) = on_pool!(self, p => sqlx::query_as(
            "SELECT COUNT(*), MAX(timestamp) FROM messages WHERE direction = 'outbound'"
        )
        .fetch_one(p)
        .await)
        .context("counting outbound messages")?;
        let (in_flight, oldest): (i64, Option<i64>) = on_pool!(self, p => sqlx::query_as(
            "SELECT COUNT(*), MIN(processing_started_at) FROM messages \
             WHERE processing_started_at IS NOT NULL"
        )
        .fetch_one(p)
        .await)
        .context("counting messages in flight")?;
        Ok(MessageStats {
            total_inbound,
            total_outbound,
            last_received_at: last_in.map(from_micros),
            last_sent_at: last_out.map(from_micros),
            in_flight,
            oldest_in_flight_since: oldest.map(from_micros),
        })
    }

    /// Pending and failed deliveries; `pending_too_long` counts those queued before `now - limit`.
    pub async fn delivery_stats(&self, now: Timestamp, limit: Duration) -> Result<DeliveryStats> {
        let limit = chrono::Duration::from_std(limit)
            .map_err(|_| StoreError::InvalidInput(format!("limit {limit:?} is too large")))?;
        let cutoff = to_micros(&(now - limit));
        let (pending, too_long, oldest, failed): (i64, i64, Option<i64>, i64) =
            on_pool!(self, p => sqlx::query_as(
                "SELECT \
                   COUNT(*) FILTER (WHERE status = 'pending'), \
                   COUNT(*) FILTER (WHERE status = 'pending' AND queued_at < $1), \
                   MIN(queued_at) FILTER (WHERE status = 'pending'), \
                   COUNT(*) FILTER (WHERE status = 'failed') \
                 FROM outbound_deliveries"
            )
            .bind(cutoff)
            .fetch_one(p)
            .await)
            .context("counting deliveries")?;
        Ok(DeliveryStats {
            pending,
            pending_too_long: too_long,
            oldest_pending_since: oldest.map(from_micros),
            failed,
        })
    }
}

impl Store {
    /// The latest event of each subject among events of `kinds` (e.g. the current state of every
    /// channel from `channel_connected` / `channel_disconnected`), ordered by subject.
    pub async fn latest_by_subject(&self, kinds: &[&str]) -> Result<Vec<crate::StoredEvent>> {
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        // One query: the rows whose seq is the highest of their subject among these kinds.
        let rows: Vec<(i64, i64, String, Option<String>, String)> = match &self.pool {
            crate::Pool::Sqlite(p) => {
                sqlx::query_as(
                    "SELECT seq, at, kind, subject, payload FROM events WHERE seq IN ( \
                       SELECT MAX(seq) FROM events WHERE kind IN (SELECT value FROM json_each($1)) \
                       AND subject IS NOT NULL GROUP BY subject)",
                )
                .bind(serde_json::to_string(&kinds).expect("strings serialise"))
                .fetch_all(p)
                .await
            }
            crate::Pool::Postgres(p) => {
                sqlx::query_as(
                    "SELECT seq, at, kind, subject, payload::text FROM events WHERE seq IN ( \
                       SELECT MAX(seq) FROM events WHERE kind = ANY($1) AND subject IS NOT NULL GROUP BY subject)",
                )
                .bind(&kinds)
                .fetch_all(p)
                .await
            }
        }
        .context("finding the latest event per subject")?;
        let mut out = crate::events::decode(rows)?;
        out.sort_by(|a, b| a.subject.cmp(&b.subject));
        Ok(out)
    }

    /// Notifications given up on (dead letters).
    pub async fn dead_notification_count(&self) -> Result<i64> {
        on_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE status = 'dead'")
            .fetch_one(p)
            .await)
        .context("counting dead letters")
    }
}

impl Store {
    /// How many of the embedded migrations this database has applied (for `lookout doctor`).
    pub async fn applied_migrations(&self) -> Result<i64> {
        on_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(p)
            .await)
        .context("counting applied migrations")
    }
}
