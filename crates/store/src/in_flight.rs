//! Interrupted-run detection over `messages.processing_started_at` (NanoClaw's B-01 contract).
//!
//! - Marking a dispatched batch sets the same `processing_started_at` on every message of the batch in
//!   one statement: all or none.
//! - A bot response for chat C at time T clears only rows with `chat_jid = C AND
//!   processing_started_at IS NOT NULL AND timestamp <= T`; a later message is never cleared by an
//!   older response.
//! - The stale scan reads rows whose `processing_started_at` is older than a cutoff, per chat.
//!
//! Nothing here changes which messages count as new, and nothing requeues by itself: the recovery
//! helpers ([`Store::note_requeued`], [`Store::abandon_in_flight`]) exist for an explicit policy only.
//! Every query is served by a partial index on the in-flight rows (see migration 0002).

use crate::error::{QueryContext, Result};
use crate::time::{Timestamp, from_micros, to_micros};
use crate::{Pool, Store, on_pool};

/// What marking a batch did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MarkOutcome {
    /// Messages marked in flight.
    pub marked: u64,
    /// Ids of the batch that are not recorded for that chat (nothing was marked for them).
    pub missing: Vec<String>,
}

/// One chat with messages in flight since before the cutoff.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StaleChat {
    /// The chat.
    pub chat_jid: String,
    /// Its channel.
    pub channel: String,
    /// How many of its messages are stale in flight.
    pub count: i64,
    /// When the oldest of them was dispatched.
    pub oldest_started_at: Timestamp,
    /// The most times any of them was already handed back by a recovery policy.
    pub max_attempts: i64,
}

fn ids_json(ids: &[String]) -> String {
    serde_json::to_string(ids).expect("strings serialise")
}

impl Store {
    /// Marks every message of a dispatched batch in flight since `at`, in one statement (all or
    /// none). Returns how many were marked and which ids are unknown for that chat.
    pub async fn mark_batch_processing(
        &self,
        chat_jid: &str,
        message_ids: &[String],
        at: Timestamp,
    ) -> Result<MarkOutcome> {
        if message_ids.is_empty() {
            return Ok(MarkOutcome {
                marked: 0,
                missing: Vec::new(),
            });
        }
        let ids = ids_json(message_ids);
        let marked = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE messages SET processing_started_at = $1 \
                 WHERE chat_jid = $2 AND message_id IN (SELECT value FROM json_each($3))",
            )
            .bind(to_micros(&at))
            .bind(chat_jid)
            .bind(&ids)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "UPDATE messages SET processing_started_at = $1 \
                 WHERE chat_jid = $2 AND message_id = ANY($3)",
            )
            .bind(to_micros(&at))
            .bind(chat_jid)
            .bind(message_ids)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .context("marking a batch in flight")?;
        let mut unique = message_ids.to_vec();
        unique.sort();
        unique.dedup();
        let missing =
            if marked as usize >= unique.len() {
                Vec::new()
            } else {
                let known: Vec<String> = match &self.pool {
                Pool::Sqlite(p) => sqlx::query_scalar(
                    "SELECT message_id FROM messages \
                     WHERE chat_jid = $1 AND message_id IN (SELECT value FROM json_each($2))",
                )
                .bind(chat_jid)
                .bind(&ids)
                .fetch_all(p)
                .await,
                Pool::Postgres(p) => sqlx::query_scalar(
                    "SELECT message_id FROM messages WHERE chat_jid = $1 AND message_id = ANY($2)",
                )
                .bind(chat_jid)
                .bind(message_ids)
                .fetch_all(p)
                .await,
            }
            .context("finding unknown messages of a batch")?;
                unique.retain(|id| !known.contains(id));
                unique
            };
        Ok(MarkOutcome { marked, missing })
    }

    /// A bot response in `chat_jid` at `response_at` clears the in-flight mark of that chat's
    /// messages sent at or before it — and of no other row. Returns how many were cleared.
    pub async fn clear_processing_on_response(
        &self,
        chat_jid: &str,
        response_at: Timestamp,
    ) -> Result<u64> {
        on_pool!(self, p => sqlx::query(
            "UPDATE messages SET processing_started_at = NULL \
             WHERE chat_jid = $1 AND processing_started_at IS NOT NULL AND timestamp <= $2",
        )
        .bind(chat_jid)
        .bind(to_micros(&response_at))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .context("clearing in-flight messages on a response")
    }

    /// The oldest `processing_started_at` at or after `cutoff`: the next message in flight to go
    /// stale (at that time plus the threshold), so a scan can be timed to the moment it does.
    pub async fn next_in_flight_since(&self, cutoff: Timestamp) -> Result<Option<Timestamp>> {
        let oldest: Option<i64> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT MIN(processing_started_at) FROM messages WHERE processing_started_at >= $1",
        )
        .bind(to_micros(&cutoff))
        .fetch_one(p)
        .await)
        .context("finding the next message in flight to go stale")?;
        Ok(oldest.map(from_micros))
    }

    /// Chats with messages in flight since before `cutoff`, oldest first.
    pub async fn stale_in_flight(&self, cutoff: Timestamp) -> Result<Vec<StaleChat>> {
        let rows: Vec<(String, String, i64, i64, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT chat_jid, MIN(channel), COUNT(*), MIN(processing_started_at), MAX(processing_attempts) \
             FROM messages \
             WHERE processing_started_at IS NOT NULL AND processing_started_at < $1 \
             GROUP BY chat_jid ORDER BY MIN(processing_started_at), chat_jid",
        )
        .bind(to_micros(&cutoff))
        .fetch_all(p)
        .await)
        .context("scanning for stale in-flight messages")?;
        Ok(rows
            .into_iter()
            .map(
                |(chat_jid, channel, count, oldest, max_attempts)| StaleChat {
                    chat_jid,
                    channel,
                    count,
                    oldest_started_at: from_micros(oldest),
                    max_attempts,
                },
            )
            .collect())
    }

    /// The ids of a chat's messages in flight since before `cutoff`, in timestamp order.
    pub async fn stale_message_ids(
        &self,
        chat_jid: &str,
        cutoff: Timestamp,
    ) -> Result<Vec<String>> {
        on_pool!(self, p => sqlx::query_scalar(
            "SELECT message_id FROM messages \
             WHERE chat_jid = $1 AND processing_started_at IS NOT NULL AND processing_started_at < $2 \
             ORDER BY timestamp, message_id",
        )
        .bind(chat_jid)
        .bind(to_micros(&cutoff))
        .fetch_all(p)
        .await)
        .context("listing stale in-flight messages")
    }

    /// Recovery only: the host took these messages back for another dispatch. Clears their mark and
    /// counts the attempt.
    pub async fn note_requeued(&self, chat_jid: &str, message_ids: &[String]) -> Result<u64> {
        self.update_listed(
            chat_jid,
            message_ids,
            "processing_started_at = NULL, processing_attempts = processing_attempts + 1",
            "noting a requeue",
        )
        .await
    }

    /// Recovery only: give up on these messages (clear the mark; the attempts count stays as a record).
    pub async fn abandon_in_flight(&self, chat_jid: &str, message_ids: &[String]) -> Result<u64> {
        self.update_listed(
            chat_jid,
            message_ids,
            "processing_started_at = NULL",
            "abandoning in-flight messages",
        )
        .await
    }

    /// `UPDATE messages SET <set>` for the listed messages of a chat. `set` is one of this module's
    /// constants, never input.
    async fn update_listed(
        &self,
        chat_jid: &str,
        message_ids: &[String],
        set: &'static str,
        context: &'static str,
    ) -> Result<u64> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE messages SET {set} WHERE chat_jid = $1 AND message_id IN (SELECT value FROM json_each($2))"
            )))
            .bind(chat_jid)
            .bind(ids_json(message_ids))
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE messages SET {set} WHERE chat_jid = $1 AND message_id = ANY($2)"
            )))
            .bind(chat_jid)
            .bind(message_ids)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .context(context)
    }
}
