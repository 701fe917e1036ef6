//! The durable notification outbox: a notification is stored first, with one delivery row per sink it
//! is routed to, then delivered; each delivery is retried on its own until it succeeds or is given up
//! (dead-lettered). A notification survives a restart of lookoutd in its pending deliveries.

use crate::error::{QueryContext, Result, StoreError};
use crate::time::{Timestamp, from_micros, to_micros};
use crate::{Pool, Store, on_pool};

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
    /// `pending` (some delivery still to do), `delivered` (every sink reached) or `dead` (a sink
    /// gave up).
    pub status: String,
    /// Delivery attempts so far, over all sinks.
    pub attempts: i64,
}

/// A delivery that is due: the notification, the sink, and how often it was tried.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DueDelivery {
    /// The notification.
    pub notification: StoredNotification,
    /// Its structured details.
    pub payload: serde_json::Value,
    /// The sink to deliver to.
    pub sink: String,
    /// Attempts made so far for this sink.
    pub attempts: i64,
}

type NotificationRow = (
    String,
    i64,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    i64,
);

fn notification(r: NotificationRow) -> StoredNotification {
    let (id, created_at, dedup_key, group, severity, text, status, attempts) = r;
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
}

impl Store {
    /// Stores a notification with one pending delivery per sink, due now, in one transaction.
    /// With no sinks it is stored as delivered (nothing to do).
    pub async fn enqueue_notification(&self, n: &NewNotification, sinks: &[&str]) -> Result<()> {
        let now = to_micros(&chrono::Utc::now());
        let status = if sinks.is_empty() {
            "delivered"
        } else {
            "pending"
        };
        let payload = n.payload.to_string();
        macro_rules! run {
            ($tx:expr, $payload_sql:literal) => {{
                sqlx::query(concat!(
                    "INSERT INTO notifications (id, created_at, dedup_key, group_name, severity, text, payload, status, next_attempt_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, ", $payload_sql, ", $8, $2)"
                ))
                .bind(&n.id)
                .bind(now)
                .bind(&n.dedup_key)
                .bind(&n.group)
                .bind(&n.severity)
                .bind(&n.text)
                .bind(&payload)
                .bind(status)
                .execute(&mut *$tx)
                .await
                .context("storing a notification")?;
                for sink in sinks {
                    sqlx::query(
                        "INSERT INTO notification_deliveries (notification_id, sink, next_attempt_at) VALUES ($1, $2, $3)",
                    )
                    .bind(&n.id)
                    .bind(*sink)
                    .bind(now)
                    .execute(&mut *$tx)
                    .await
                    .context("storing a notification's deliveries")?;
                }
            }};
        }
        match &self.pool {
            Pool::Sqlite(p) => {
                let mut tx = p
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .context("starting an enqueue")?;
                run!(tx, "$7");
                tx.commit().await.context("committing an enqueue")?;
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await.context("starting an enqueue")?;
                run!(tx, "$7::jsonb");
                tx.commit().await.context("committing an enqueue")?;
            }
        }
        Ok(())
    }

    /// Deliveries due at `now` (pending, next attempt not in the future), oldest first.
    pub async fn due_deliveries(&self, now: Timestamp, limit: u32) -> Result<Vec<DueDelivery>> {
        type Row = (
            String,
            i64,
            Option<String>,
            Option<String>,
            String,
            String,
            String,
            i64,
            String,
            String,
            i64,
        );
        let sql_payload = match self.pool {
            Pool::Sqlite(_) => "n.payload",
            Pool::Postgres(_) => "n.payload::text",
        };
        let sql = format!(
            "SELECT n.id, n.created_at, n.dedup_key, n.group_name, n.severity, n.text, n.status, n.attempts, \
                    {sql_payload}, d.sink, d.attempts \
             FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
             ORDER BY d.next_attempt_at, n.created_at LIMIT $2"
        );
        let rows: Vec<Row> = on_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(to_micros(&now))
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)
        .context("reading due deliveries")?;
        rows.into_iter()
            .map(|(id, c, k, g, sev, text, st, att, payload, sink, d_att)| {
                let payload = serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt {
                    context: "reading due deliveries",
                    reason: format!("notification {id} payload: {e}"),
                })?;
                Ok(DueDelivery {
                    notification: notification((id, c, k, g, sev, text, st, att)),
                    payload,
                    sink,
                    attempts: d_att,
                })
            })
            .collect()
    }

    /// A sink took the notification.
    pub async fn delivery_succeeded(&self, id: &str, sink: &str, at: Timestamp) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "UPDATE notification_deliveries SET status = 'delivered', delivered_at = $3, attempts = attempts + 1 \
             WHERE notification_id = $1 AND sink = $2",
        )
        .bind(id)
        .bind(sink)
        .bind(to_micros(&at))
        .execute(p)
        .await
        .map(|_| ()))
        .context("marking a delivery done")?;
        self.refresh_notification(id).await
    }

    /// A sink failed; try again at `retry_at`, or give up (dead letter) when it is `None`.
    pub async fn delivery_attempt_failed(
        &self,
        id: &str,
        sink: &str,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<()> {
        let (status, next) = match retry_at {
            Some(t) => ("pending", to_micros(&t)),
            None => ("dead", to_micros(&chrono::Utc::now())),
        };
        on_pool!(self, p => sqlx::query(
            "UPDATE notification_deliveries SET status = $3, attempts = attempts + 1, last_error = $4, next_attempt_at = $5 \
             WHERE notification_id = $1 AND sink = $2",
        )
        .bind(id)
        .bind(sink)
        .bind(status)
        .bind(error)
        .bind(next)
        .execute(p)
        .await
        .map(|_| ()))
        .context("recording a failed delivery")?;
        self.refresh_notification(id).await
    }

    /// Keeps the notification's summary (status, attempts) in step with its deliveries.
    async fn refresh_notification(&self, id: &str) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "UPDATE notifications SET \
               attempts = (SELECT COALESCE(SUM(attempts), 0) FROM notification_deliveries WHERE notification_id = $1), \
               status = CASE \
                 WHEN EXISTS (SELECT 1 FROM notification_deliveries WHERE notification_id = $1 AND status = 'pending') THEN 'pending' \
                 WHEN EXISTS (SELECT 1 FROM notification_deliveries WHERE notification_id = $1 AND status = 'dead') THEN 'dead' \
                 ELSE 'delivered' END, \
               delivered_at = (SELECT MAX(delivered_at) FROM notification_deliveries WHERE notification_id = $1), \
               last_error = (SELECT MAX(last_error) FROM notification_deliveries WHERE notification_id = $1) \
             WHERE id = $1",
        )
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))
        .context("updating a notification's status")
    }

    /// The latest `limit` notifications, newest first.
    pub async fn recent_notifications(&self, limit: u32) -> Result<Vec<StoredNotification>> {
        let rows: Vec<NotificationRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, created_at, dedup_key, group_name, severity, text, status, attempts \
             FROM notifications ORDER BY created_at DESC, id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)
        .context("listing notifications")?;
        Ok(rows.into_iter().map(notification).collect())
    }

    /// Deliveries still pending (for /status and metrics).
    pub async fn pending_delivery_count(&self) -> Result<i64> {
        on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM notification_deliveries WHERE status = 'pending'"
        )
        .fetch_one(p)
        .await)
        .context("counting pending deliveries")
    }
}

impl Store {
    /// A delivery waits (a sink's rate limit): due again at `at`, without counting an attempt.
    pub async fn delivery_postponed(&self, id: &str, sink: &str, at: Timestamp) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "UPDATE notification_deliveries SET next_attempt_at = $3 WHERE notification_id = $1 AND sink = $2",
        )
        .bind(id)
        .bind(sink)
        .bind(to_micros(&at))
        .execute(p)
        .await
        .map(|_| ()))
        .context("postponing a delivery")
    }
}
