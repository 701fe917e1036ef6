//! `alerts` and `quiet_windows`: the alert lifecycle's state (decided by lookout-notify's
//! `alerts` module; this module only stores and reads it).

use crate::error::{QueryContext, Result};
use crate::time::{from_micros, to_micros};
use crate::{Store, Timestamp, on_pool};

/// One condition's alert (rule + subject), as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertRecord {
    /// `rule:subject`.
    pub key: String,
    /// The rule (`interrupted_run`, `task-overdue`, `I1`, …).
    pub rule: String,
    /// What it is about.
    pub subject: String,
    /// `true` while the condition holds.
    pub firing: bool,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// The group it is routed to.
    pub group: Option<String>,
    /// The latest firing text.
    pub text: String,
    /// The key of the alert that causes this one (folded while that one fires).
    pub cause: Option<String>,
    /// When this firing began.
    pub first_seen: Timestamp,
    /// When the state last changed.
    pub last_change: Timestamp,
    /// When the firing message was last sent (`None`: not sent in this firing — held or folded).
    pub last_sent: Option<Timestamp>,
    /// Firing messages sent in this firing.
    pub send_count: i64,
    /// When it resolved.
    pub resolved_at: Option<Timestamp>,
    /// Recent state changes (for flapping), oldest first.
    pub changes: Vec<Timestamp>,
    /// Flapping: its changes are summarised, not sent one by one.
    pub flapping: bool,
    /// Who acknowledged this firing (`/ack` from chat, `lookout alerts ack`): no more reminders.
    pub acked_by: Option<String>,
}

type AlertRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
    String,
    i64,
    Option<String>,
);

const COLUMNS: &str = "key, rule, subject, state, severity, group_name, text, cause, first_seen, \
     last_change, last_sent, send_count, resolved_at, changes, flapping, acked_by";

fn decode(r: AlertRow) -> AlertRecord {
    let changes: Vec<i64> = serde_json::from_str(&r.13).unwrap_or_default();
    AlertRecord {
        key: r.0,
        rule: r.1,
        subject: r.2,
        firing: r.3 == "firing",
        severity: r.4,
        group: r.5,
        text: r.6,
        cause: r.7,
        first_seen: from_micros(r.8),
        last_change: from_micros(r.9),
        last_sent: r.10.map(from_micros),
        send_count: r.11,
        resolved_at: r.12.map(from_micros),
        changes: changes.into_iter().map(from_micros).collect(),
        flapping: r.14 != 0,
        acked_by: r.15,
    }
}

/// A quiet window: alerts starting inside it are held until it ends.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QuietWindow {
    /// Its id.
    pub id: String,
    /// When it starts.
    pub starts_at: Timestamp,
    /// When it ends.
    pub ends_at: Timestamp,
    /// Only alerts whose key contains this (`None`: every alert).
    pub matcher: Option<String>,
    /// Why (`manual`, `deploy abc1234`, `config: nightly-backup`).
    pub reason: String,
}

impl Store {
    /// The alert of `key`, if it ever fired.
    pub async fn alert_get(&self, key: &str) -> Result<Option<AlertRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM alerts WHERE key = $1");
        let row: Option<AlertRow> =
            on_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(key)
            .fetch_optional(p)
            .await)
            .context("reading an alert")?;
        Ok(row.map(decode))
    }

    /// Stores `a` (insert or replace by key) and, in the same transaction, its incident: a
    /// firing alert opens (or updates) the incident of this firing, a resolved one closes it.
    pub async fn alert_put(&self, a: &AlertRecord) -> Result<()> {
        let changes: Vec<i64> = a.changes.iter().map(to_micros).collect();
        let changes = serde_json::to_string(&changes).expect("integers serialise");
        let now = to_micros(&chrono::Utc::now());
        on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO alerts (key, rule, subject, state, severity, group_name, text, cause, \
                   first_seen, last_change, last_sent, send_count, resolved_at, changes, flapping, \
                   updated_at, acked_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
                 ON CONFLICT (key) DO UPDATE SET rule = excluded.rule, subject = excluded.subject, \
                   state = excluded.state, severity = excluded.severity, group_name = excluded.group_name, \
                   text = excluded.text, cause = excluded.cause, first_seen = excluded.first_seen, \
                   last_change = excluded.last_change, last_sent = excluded.last_sent, \
                   send_count = excluded.send_count, resolved_at = excluded.resolved_at, \
                   changes = excluded.changes, flapping = excluded.flapping, updated_at = excluded.updated_at, \
                   acked_by = excluded.acked_by",
            )
            .bind(&a.key)
            .bind(&a.rule)
            .bind(&a.subject)
            .bind(if a.firing { "firing" } else { "resolved" })
            .bind(&a.severity)
            .bind(&a.group)
            .bind(&a.text)
            .bind(&a.cause)
            .bind(to_micros(&a.first_seen))
            .bind(to_micros(&a.last_change))
            .bind(a.last_sent.as_ref().map(to_micros))
            .bind(a.send_count)
            .bind(a.resolved_at.as_ref().map(to_micros))
            .bind(&changes)
            .bind(i64::from(a.flapping))
            .bind(now)
            .bind(&a.acked_by)
            .execute(&mut *tx)
            .await?;
            if a.firing {
                // One incident per firing (a re-fire has a new first_seen); a firing that is
                // stored again updates its text, severity and cause.
                sqlx::query(
                    "INSERT INTO incidents (id, alert, rule, subject, severity, group_name, text, cause, \
                       started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (id) DO UPDATE SET severity = excluded.severity, \
                       group_name = excluded.group_name, text = excluded.text, cause = excluded.cause",
                )
                .bind(format!("{}@{}", a.key, to_micros(&a.first_seen)))
                .bind(&a.key)
                .bind(&a.rule)
                .bind(&a.subject)
                .bind(&a.severity)
                .bind(&a.group)
                .bind(&a.text)
                .bind(&a.cause)
                .bind(to_micros(&a.first_seen))
                .execute(&mut *tx)
                .await?;
            } else {
                let at = a.resolved_at.as_ref().map_or(now, to_micros);
                sqlx::query(
                    "UPDATE incidents SET resolved_at = $2 WHERE alert = $1 AND resolved_at IS NULL",
                )
                .bind(&a.key)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }.await)
        .context("writing an alert")?;
        Ok(())
    }

    /// Every alert, firing first, newest change first.
    pub async fn alerts_list(&self) -> Result<Vec<AlertRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM alerts ORDER BY CASE state WHEN 'firing' THEN 0 ELSE 1 END, last_change DESC"
        );
        let rows: Vec<AlertRow> =
            on_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_all(p)
            .await)
            .context("listing alerts")?;
        Ok(rows.into_iter().map(decode).collect())
    }

    /// The firing alerts of `rule`.
    pub async fn alerts_firing(&self, rule: &str) -> Result<Vec<AlertRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM alerts WHERE state = 'firing' AND rule = $1 ORDER BY key"
        );
        let rows: Vec<AlertRow> =
            on_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(rule)
            .fetch_all(p)
            .await)
            .context("listing firing alerts")?;
        Ok(rows.into_iter().map(decode).collect())
    }

    /// Opens a quiet window.
    pub async fn quiet_add(&self, w: &QuietWindow) -> Result<()> {
        self.insert_quiet(w, false).await.map(|_| ())
    }

    /// Opens a quiet window unless one with its id exists (a window derived from an event, stored
    /// again after a crash): true when it was added.
    pub async fn quiet_add_once(&self, w: &QuietWindow) -> Result<bool> {
        let added = self.insert_quiet(w, true).await?;
        Ok(added == 1)
    }

    /// Inserts `w`; with `once`, an existing id is left alone. Both statements are fixed text.
    async fn insert_quiet(&self, w: &QuietWindow, once: bool) -> Result<u64> {
        const INSERT: &str = "INSERT INTO quiet_windows (id, starts_at, ends_at, matcher, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)";
        const INSERT_ONCE: &str = "INSERT INTO quiet_windows (id, starts_at, ends_at, matcher, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING";
        let sql = if once { INSERT_ONCE } else { INSERT };
        on_pool!(self, p => sqlx::query(sql)
        .bind(&w.id)
        .bind(to_micros(&w.starts_at))
        .bind(to_micros(&w.ends_at))
        .bind(&w.matcher)
        .bind(&w.reason)
        .bind(to_micros(&chrono::Utc::now()))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .context("opening a quiet window")
    }

    /// Windows not ended by hand whose end is after `now` (open now, or still to come).
    pub async fn quiet_windows(&self, now: Timestamp) -> Result<Vec<QuietWindow>> {
        let rows: Vec<(String, i64, i64, Option<String>, String)> =
            on_pool!(self, p => sqlx::query_as(
            "SELECT id, starts_at, ends_at, matcher, reason FROM quiet_windows \
             WHERE ended_at IS NULL AND ends_at > $1 ORDER BY starts_at, id",
        )
        .bind(to_micros(&now))
        .fetch_all(p)
        .await)
            .context("listing quiet windows")?;
        Ok(rows
            .into_iter()
            .map(|(id, s, e, matcher, reason)| QuietWindow {
                id,
                starts_at: from_micros(s),
                ends_at: from_micros(e),
                matcher,
                reason,
            })
            .collect())
    }

    /// Ends the window `id` at `now`; `false` when there is no such open window.
    pub async fn quiet_end(&self, id: &str, now: Timestamp) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE quiet_windows SET ended_at = $2, ends_at = $2 WHERE id = $1 AND ended_at IS NULL \
             AND ends_at > $2",
        )
        .bind(id)
        .bind(to_micros(&now))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .context("ending a quiet window")?;
        Ok(n == 1)
    }
}
