//! The durable notification outbox: a notification is stored first, then delivered.

use crate::error::{QueryContext, Result};
use crate::time::{Timestamp, from_micros, to_micros};
use crate::{Store, on_pool};

/// A notification to store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewNotification {
    /// Unique id, so a sink can drop duplicates of an at-least-once delivery.
    pub id: String,
    /// What it is about (rule and subject), for deduplication.
    pub dedup_key: Option<String>,
    /// The group it is for, when it is for one.
    pub group: Option<String>,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// The text a person reads.
    pub text: String,
    /// Structured details.
    pub payload: serde_json::Value,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredNotification {
    /// Its id.
    pub id: String,
    /// When it was stored.
    pub created_at: Timestamp,
    /// Its dedup key.
    pub dedup_key: Option<String>,
    /// Its group.
    pub group: Option<String>,
    /// Its severity.
    pub severity: String,
    /// Its text.
    pub text: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: i64,
}

impl Store {
    /// Stores a notification as pending, due now.
    pub async fn enqueue_notification(&self, n: &NewNotification) -> Result<()> {
        let now = to_micros(&chrono::Utc::now());
        on_pool!(self, p => sqlx::query(
            "INSERT INTO notifications (id, created_at, dedup_key, group_name, severity, text, payload, status, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $2)",
        )
        .bind(&n.id)
        .bind(now)
        .bind(&n.dedup_key)
        .bind(&n.group)
        .bind(&n.severity)
        .bind(&n.text)
        .bind(sqlx::types::Json(&n.payload))
        .execute(p)
        .await
        .map(|_| ()))
        .context("storing a notification")
    }

    /// Marks a notification delivered.
    pub async fn notification_delivered(&self, id: &str, at: Timestamp) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE notifications SET status = 'delivered', delivered_at = $2, attempts = attempts + 1 WHERE id = $1",
        )
        .bind(id)
        .bind(to_micros(&at))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .context("marking a notification delivered")?;
        Ok(n == 1)
    }

    /// The latest `limit` notifications, newest first.
    pub async fn recent_notifications(&self, limit: u32) -> Result<Vec<StoredNotification>> {
        type Row = (
            String,
            i64,
            Option<String>,
            Option<String>,
            String,
            String,
            String,
            i64,
        );
        let rows: Vec<Row> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, created_at, dedup_key, group_name, severity, text, status, attempts \
             FROM notifications ORDER BY created_at DESC, id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)
        .context("listing notifications")?;
        Ok(rows
            .into_iter()
            .map(
                |(id, created_at, dedup_key, group, severity, text, status, attempts)| {
                    StoredNotification {
                        id,
                        created_at: from_micros(created_at),
                        dedup_key,
                        group,
                        severity,
                        text,
                        status,
                        attempts,
                    }
                },
            )
            .collect())
    }
}
