//! `incidents`: each alert's firing-to-resolved span. Rows are opened and closed by
//! [`Store::alert_put`] in the alert's own transaction; this module reads them, notes what was
//! done while they were open, and prunes old ones.

use crate::error::{QueryContext, Result};
use crate::time::{from_micros, to_micros};
use crate::{Store, Timestamp, on_pool};

/// One alert's firing-to-resolved span.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IncidentRecord {
    /// `<alert key>@<first seen, µs>`.
    pub id: String,
    /// The alert's key (`rule:subject`).
    pub alert: String,
    /// The rule.
    pub rule: String,
    /// What it is about.
    pub subject: String,
    /// `info`, `warning` or `critical` (the latest of the firing).
    pub severity: String,
    /// The group it was routed to.
    pub group: Option<String>,
    /// The firing text: what happened and why.
    pub text: String,
    /// The alert it was folded under, if any.
    pub cause: Option<String>,
    /// When it started firing.
    pub started_at: Timestamp,
    /// When it resolved (`None`: still open).
    pub resolved_at: Option<Timestamp>,
    /// What was done while it was open, oldest first.
    pub actions: Vec<IncidentAction>,
}

impl IncidentRecord {
    /// How long it lasted, or has lasted by `now` when still open.
    pub fn duration(&self, now: Timestamp) -> chrono::Duration {
        self.resolved_at.unwrap_or(now) - self.started_at
    }
}

/// Something done while an incident was open.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IncidentAction {
    /// When.
    pub at: Timestamp,
    /// `heal` (a watchdog tier), `command` (from chat or the CLI), `quiet`, `ack`.
    pub kind: String,
    /// What was done, as a person reads it.
    pub text: String,
    /// Who did it (a chat user, `lookoutd` for its own heal tiers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Which open incidents an action is noted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentScope<'a> {
    /// The open incident of this alert key.
    Alert(&'a str),
    /// The open incidents about this subject (a watch target, a task).
    Subject(&'a str),
    /// The open incidents whose key contains one of the `|`-separated parts (a quiet window's
    /// matcher); every open incident when `None`.
    Matching(Option<&'a str>),
}

type IncidentRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    i64,
    Option<i64>,
    String,
);

const COLUMNS: &str = "id, alert, rule, subject, severity, group_name, text, cause, started_at, \
     resolved_at, actions";

fn decode(r: IncidentRow) -> IncidentRecord {
    IncidentRecord {
        id: r.0,
        alert: r.1,
        rule: r.2,
        subject: r.3,
        severity: r.4,
        group: r.5,
        text: r.6,
        cause: r.7,
        started_at: from_micros(r.8),
        resolved_at: r.9.map(from_micros),
        // Written only by `incident_note` from typed values; an unreadable list reads as none.
        actions: serde_json::from_str(&r.10).unwrap_or_default(),
    }
}

fn matches(scope: IncidentScope<'_>, i: &IncidentRecord) -> bool {
    match scope {
        IncidentScope::Alert(key) => i.alert == key,
        IncidentScope::Subject(subject) => i.subject == subject,
        IncidentScope::Matching(None) => true,
        IncidentScope::Matching(Some(m)) => m
            .split('|')
            .map(str::trim)
            .any(|part| !part.is_empty() && i.alert.contains(part)),
    }
}

impl Store {
    /// Incidents started at or after `since`, or still open, newest first.
    pub async fn incidents_since(&self, since: Timestamp) -> Result<Vec<IncidentRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM incidents WHERE started_at >= $1 OR resolved_at IS NULL \
             ORDER BY started_at DESC, id"
        );
        let rows: Vec<IncidentRow> =
            on_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(to_micros(&since))
            .fetch_all(p)
            .await)
            .context("listing incidents")?;
        Ok(rows.into_iter().map(decode).collect())
    }

    /// Notes `action` on the open incidents of `scope`, each in one transaction with its read;
    /// returns how many incidents it was noted on.
    pub async fn incident_note(
        &self,
        scope: IncidentScope<'_>,
        action: &IncidentAction,
    ) -> Result<usize> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE resolved_at IS NULL");
        on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            let rows: Vec<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_all(&mut *tx)
                .await?;
            let mut noted = 0;
            for mut incident in rows.into_iter().map(decode) {
                if !matches(scope, &incident) {
                    continue;
                }
                incident.actions.push(action.clone());
                let actions =
                    serde_json::to_string(&incident.actions).expect("actions serialise");
                sqlx::query("UPDATE incidents SET actions = $2 WHERE id = $1")
                    .bind(&incident.id)
                    .bind(actions)
                    .execute(&mut *tx)
                    .await?;
                noted += 1;
            }
            tx.commit().await.map(|()| noted)
        }.await)
        .context("noting an action on incidents")
    }

    /// Deletes the resolved incidents that started before `before`; returns how many.
    pub async fn incidents_prune(&self, before: Timestamp) -> Result<u64> {
        on_pool!(self, p => sqlx::query(
            "DELETE FROM incidents WHERE started_at < $1 AND resolved_at IS NOT NULL",
        )
        .bind(to_micros(&before))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .context("pruning incidents")
    }
}
