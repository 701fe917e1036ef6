//! Incidents: each alert's firing-to-resolved span (kept by the store in the alert's own
//! transaction), shown with what was folded under it and what was done meanwhile.
//! `GET /api/incidents`, `POST /api/alerts/ack`, and the prune loop that keeps `incidents.keep`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use lookout_notify::alerts::AlertKey;
use lookout_store::{IncidentRecord, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::{ApiError, AppState};

/// How far back `GET /api/incidents` looks when not told: the page's 30 days.
pub(crate) const DEFAULT_SINCE: Duration = Duration::from_secs(30 * 24 * 3600);

/// An incident as the API, the CLI, chat and the page show it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IncidentView {
    #[serde(flatten)]
    pub(crate) record: IncidentRecord,
    /// Still firing.
    pub(crate) open: bool,
    /// From firing to resolved (or to now, while open), in seconds.
    pub(crate) duration_seconds: i64,
    /// The incidents folded under this one: caused by it and started while it was open.
    pub(crate) folded: Vec<IncidentRecord>,
}

/// The incidents started since `since` (or still open), newest first, each with the incidents
/// folded under it; a folded incident whose cause's incident is not in the list stands alone.
pub(crate) async fn views(
    store: &Store,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<IncidentView>, lookout_store::StoreError> {
    let all = store.incidents_since(since).await?;
    let parent_of = |child: &IncidentRecord| -> Option<usize> {
        let cause = child.cause.as_deref()?;
        all.iter().position(|p| {
            p.alert == cause
                && p.started_at <= child.started_at
                && p.resolved_at.is_none_or(|end| child.started_at <= end)
        })
    };
    let parents: Vec<Option<usize>> = all.iter().map(parent_of).collect();
    let mut out = Vec::new();
    for (i, record) in all.iter().enumerate() {
        if parents[i].is_some() {
            continue;
        }
        let folded = all
            .iter()
            .zip(&parents)
            .filter(|(_, p)| **p == Some(i))
            .map(|(c, _)| c.clone())
            .collect();
        out.push(IncidentView {
            open: record.resolved_at.is_none(),
            duration_seconds: record.duration(now).num_seconds().max(0),
            record: record.clone(),
            folded,
        });
    }
    Ok(out)
}

/// The query of `GET /api/incidents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncidentsQuery {
    /// An RFC 3339 instant, or a duration back from now (`7d`, `12h`); 30 days when absent.
    since: Option<String>,
}

/// Reads `since`: an instant, or a duration back from `now`.
pub(crate) fn parse_since(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let back = lookout_common::duration::parse_duration(text).ok()?;
    Some(now - chrono::Duration::from_std(back).ok()?)
}

/// `GET /api/incidents?since=…`.
pub(crate) async fn list(
    State(state): State<AppState>,
    q: Result<Query<IncidentsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let now = Utc::now();
    let since = match &q.since {
        None => now - chrono::Duration::from_std(DEFAULT_SINCE).expect("30 days fit"),
        Some(text) => parse_since(text, now).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "`since` = {text:?} is neither an RFC 3339 instant nor a duration such as 7d"
                ),
            )
            .with("field", json!("since"))
        })?,
    };
    let incidents = views(state.store(), since, now)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({ "since": since, "incidents": incidents })))
}

/// The body of `POST /api/alerts/ack`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AckBody {
    /// The alert's key, `rule:subject`.
    alert: String,
    /// Who acknowledges it (the CLI sends the user's name).
    by: Option<String>,
}

/// `POST /api/alerts/ack {"alert": "rule:subject", "by"?}`: stops the alert's reminders.
pub(crate) async fn ack(
    State(state): State<AppState>,
    body: Result<Json<AckBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let by =
        b.by.filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| "api".into());
    match ack_alert(&state, &b.alert, &by).await? {
        Some(key) => Ok(Json(json!({ "acked": key, "by": by }))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no firing alert `{}`", b.alert),
        )
        .with("field", json!("alert"))),
    }
}

/// Acknowledges the firing alert `alert` (its full key, or a unique part of a firing key) for
/// `by`; the key acknowledged, `None` when nothing firing matches.
pub(crate) async fn ack_alert(
    state: &AppState,
    alert: &str,
    by: &str,
) -> Result<Option<String>, ApiError> {
    let firing: Vec<String> = state
        .store()
        .alerts_list()
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .filter(|a| a.firing)
        .map(|a| a.key)
        .collect();
    let key = if firing.iter().any(|k| k == alert) {
        alert.to_owned()
    } else {
        let matching: Vec<&String> = firing.iter().filter(|k| k.contains(alert)).collect();
        match matching.as_slice() {
            [] => return Ok(None),
            [one] => (*one).clone(),
            many => {
                let list: Vec<&str> = many.iter().map(|k| k.as_str()).collect();
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "`{alert}` matches several firing alerts: {}",
                        list.join(", ")
                    ),
                )
                .with("field", json!("alert")));
            }
        }
    };
    let Some(parsed) = AlertKey::parse(&key) else {
        return Ok(None);
    };
    let acked = state
        .alerts()
        .ack(&parsed, by, Utc::now())
        .await
        .map_err(ApiError::internal)?;
    Ok(acked.map(|a| a.key))
}

/// Prunes incidents older than `keep` once an hour (and at start).
pub(crate) fn spawn_prune(
    store: Store,
    keep: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.wait_for(|v| *v) => return,
            }
            let Ok(keep) = chrono::Duration::from_std(keep) else {
                return;
            };
            match store.incidents_prune(Utc::now() - keep).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "incidents older than incidents.keep removed"),
                Err(e) => tracing::warn!(error = %e, "cannot prune old incidents"),
            }
        }
    })
}
