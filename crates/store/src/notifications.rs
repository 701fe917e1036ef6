//! The durable notification outbox: a notification is stored first, with one delivery row per sink it
//! is routed to, then delivered; each delivery is retried on its own until it succeeds or is given up
//! (dead-lettered). A notification survives a restart of lookoutd in its pending deliveries.
//!
//! Sink fallback is kept here too: `notify_sink_health` holds, per sink, the first failed attempt
//! since its last success (`failing_since`), so a restart does not reset the clock; a delivery to a
//! fallback sink on behalf of a failing primary is its own row in `notification_deliveries`, naming
//! the primary in `via` (durable, retried and dead-lettered like any other).

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

/// One delivery (a notification to one sink): a due one ([`Store::due_deliveries`]) or a dead letter
/// ([`Store::dead_deliveries`]).
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
    /// The failing primary sink this is a fallback delivery for; `None` for a sink's own delivery.
    pub via: Option<String>,
    /// The error of the last failed attempt, if any.
    pub last_error: Option<String>,
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
        self.read_deliveries(
            "d.status = 'pending' AND d.next_attempt_at <= $1 \
             ORDER BY d.next_attempt_at, n.created_at LIMIT $2",
            &[to_micros(&now), i64::from(limit)],
            "reading due deliveries",
        )
        .await
    }

    /// Dead letters: deliveries given up on after their last attempt, newest notification first
    /// (`limit` at most).
    pub async fn dead_deliveries(&self, limit: u32) -> Result<Vec<DueDelivery>> {
        self.read_deliveries(
            "d.status = 'dead' ORDER BY n.created_at DESC, n.id DESC, d.sink LIMIT $1",
            &[i64::from(limit)],
            "listing dead letters",
        )
        .await
    }

    async fn read_deliveries(
        &self,
        filter_order_limit: &'static str,
        binds: &[i64],
        context: &'static str,
    ) -> Result<Vec<DueDelivery>> {
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
            Option<String>,
            Option<String>,
        );
        let sql_payload = match self.pool {
            Pool::Sqlite(_) => "n.payload",
            Pool::Postgres(_) => "n.payload::text",
        };
        let sql = format!(
            "SELECT n.id, n.created_at, n.dedup_key, n.group_name, n.severity, n.text, n.status, n.attempts, \
                    {sql_payload}, d.sink, d.attempts, d.via, d.last_error \
             FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id \
             WHERE {filter_order_limit}"
        );
        let rows: Vec<Row> = on_pool!(self, p => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            for b in binds {
                q = q.bind(*b);
            }
            q.fetch_all(p).await
        })
        .context(context)?;
        rows.into_iter()
            .map(
                |(id, c, k, g, sev, text, st, att, payload, sink, d_att, via, last_error)| {
                    let payload =
                        serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt {
                            context,
                            reason: format!("notification {id} payload: {e}"),
                        })?;
                    Ok(DueDelivery {
                        notification: notification((id, c, k, g, sev, text, st, att)),
                        payload,
                        sink,
                        attempts: d_att,
                        via,
                        last_error,
                    })
                },
            )
            .collect()
    }

    /// A sink took the notification. Fallback deliveries made on this sink's behalf for the same
    /// notification and not delivered yet (pending or dead) are dropped: the primary has it.
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
        on_pool!(self, p => sqlx::query(
            "DELETE FROM notification_deliveries WHERE notification_id = $1 AND via = $2 AND status <> 'delivered'",
        )
        .bind(id)
        .bind(sink)
        .execute(p)
        .await
        .map(|_| ()))
        .context("dropping superseded fallback deliveries")?;
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

impl Store {
    /// A delivery attempt to `sink` failed at `at`: it is failing since then, unless it already was.
    pub async fn sink_failed(&self, sink: &str, at: Timestamp) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO notify_sink_health (sink, failing_since, last_failure_at) VALUES ($1, $2, $2) \
             ON CONFLICT (sink) DO UPDATE SET \
               failing_since = COALESCE(notify_sink_health.failing_since, excluded.failing_since), \
               last_failure_at = excluded.last_failure_at",
        )
        .bind(sink)
        .bind(to_micros(&at))
        .execute(p)
        .await
        .map(|_| ()))
        .context("recording a failing sink")
    }

    /// A delivery to `sink` succeeded at `at`. When it was failing, it no longer is, and its pending
    /// deliveries waiting on a backoff are due at `at`, so its backlog goes out now. Returns whether
    /// it was failing.
    pub async fn sink_recovered(&self, sink: &str, at: Timestamp) -> Result<bool> {
        let at = to_micros(&at);
        let changed = on_pool!(self, p => sqlx::query(
            "UPDATE notify_sink_health SET failing_since = NULL, last_success_at = $2 \
             WHERE sink = $1 AND failing_since IS NOT NULL",
        )
        .bind(sink)
        .bind(at)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .context("recording a recovered sink")?;
        if changed == 0 {
            return Ok(false);
        }
        on_pool!(self, p => sqlx::query(
            "UPDATE notification_deliveries SET next_attempt_at = $2 \
             WHERE sink = $1 AND status = 'pending' AND next_attempt_at > $2",
        )
        .bind(sink)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ()))
        .context("bringing a recovered sink's backlog forward")?;
        Ok(true)
    }

    /// The sinks failing now (every attempt failed since their last success), with the time of
    /// their first failed attempt since then.
    pub async fn failing_sinks(&self) -> Result<Vec<(String, Timestamp)>> {
        let rows: Vec<(String, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT sink, failing_since FROM notify_sink_health WHERE failing_since IS NOT NULL ORDER BY sink",
        )
        .fetch_all(p)
        .await)
        .context("reading failing sinks")?;
        Ok(rows.into_iter().map(|(s, t)| (s, from_micros(t))).collect())
    }

    /// Gives every pending delivery of `primary` a delivery to `fallback` too, due at `at` and
    /// naming `primary` in `via`, unless the notification already has one for `fallback`. Returns
    /// how many were added.
    pub async fn deliver_via_fallback(
        &self,
        primary: &str,
        fallback: &str,
        at: Timestamp,
    ) -> Result<u64> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO notification_deliveries (notification_id, sink, next_attempt_at, via) \
             SELECT notification_id, $2, $3, $1 FROM notification_deliveries \
             WHERE sink = $1 AND status = 'pending' \
             ON CONFLICT (notification_id, sink) DO NOTHING",
        )
        .bind(primary)
        .bind(fallback)
        .bind(to_micros(&at))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .context("routing a failing sink's deliveries to its fallback")
    }

    /// Makes the dead deliveries of notification `id` pending again, due at `at`, with their
    /// attempts reset. Returns how many; 0 when `id` is unknown or has no dead delivery.
    pub async fn retry_dead_deliveries(&self, id: &str, at: Timestamp) -> Result<u64> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE notification_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2 \
             WHERE notification_id = $1 AND status = 'dead'",
        )
        .bind(id)
        .bind(to_micros(&at))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .context("retrying a dead letter")?;
        if n > 0 {
            self.refresh_notification(id).await?;
        }
        Ok(n)
    }
}
