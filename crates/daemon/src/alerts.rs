//! Raising an alert. Conditions (something that holds, then clears) go through the alert
//! lifecycle of lookout-notify (`alerts::Alerts`: one state per rule + subject in the store, quiet
//! windows, folding, flapping, reminders); one-off messages (a boot report, a heal action) go
//! straight to the durable outbox. Both reach the configured sinks (the log, when none is).

use lookout_notify::alerts::AlertKey;
use lookout_notify::{Message, Outbox, Severity};

/// Sends a one-off message about `key`; a failure to store it is logged with its text, so it is
/// never silent.
pub(crate) async fn raise(
    outbox: &Outbox,
    key: &AlertKey,
    severity: Severity,
    text: &str,
    payload: serde_json::Value,
) {
    let m = Message::new(severity, text).key(key).payload(payload);
    if let Err(e) = outbox.send(m).await {
        tracing::error!(error = %e, %key, alert = %text, "cannot store an alert in the outbox");
    }
}

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use lookout_notify::alerts::{AlertPolicy, Alerts, RecurringQuiet};
use lookout_reconcile_core::event::Event;
use lookout_scheduler::Schedule;
use lookout_store::{QuietWindow, Store};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{ApiError, AppState};

/// The alert keys a `deploy` quiet window holds: what a restart makes fire for a moment.
pub(crate) const RESTART_CLASS: &str = "watchdog|crash_loop|I1:|I3:|I5:|container";

/// The lifecycle with the configured policy, `[[quiet]]` windows and fold table, sending through
/// `outbox`.
pub(crate) fn lifecycle(
    store: &Store,
    outbox: Arc<Outbox>,
    config: &lookout_config::Config,
) -> Arc<Alerts> {
    let a = Alerts::new(
        store.clone(),
        outbox,
        AlertPolicy {
            repeat_interval: config.alerts.repeat_interval,
            flap_changes: config.alerts.flap_changes,
            flap_window: config.alerts.flap_window,
        },
    );
    a.set_recurring(recurring(config));
    a.set_folding(crate::folding::table(config));
    Arc::new(a)
}

/// A `[[quiet]]` entry: its cron evaluated by the scheduler's parser (checked at start).
struct Recurring {
    name: String,
    schedule: Schedule,
    length: chrono::Duration,
    matcher: Option<String>,
}

impl RecurringQuiet for Recurring {
    fn window_at(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        // The window is open when a start falls in (now - length, now].
        let start = self
            .schedule
            .next_after(now - self.length - chrono::Duration::microseconds(1))?;
        (start <= now).then(|| (start, start + self.length))
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn matcher(&self) -> Option<&str> {
        self.matcher.as_deref()
    }
}

pub(crate) fn recurring(config: &lookout_config::Config) -> Vec<Arc<dyn RecurringQuiet>> {
    config
        .quiet
        .iter()
        .filter_map(|q| {
            let schedule = Schedule::parse(&q.cron, &q.tz).ok()?;
            Some(Arc::new(Recurring {
                name: q.name.clone(),
                schedule,
                length: chrono::Duration::from_std(q.duration).ok()?,
                matcher: q.matcher.clone(),
            }) as Arc<dyn RecurringQuiet>)
        })
        .collect()
}

/// Every second: the lifecycle's time-driven transitions, and a quiet window for restart-class
/// alerts after each `deploy` event (from its time, for `thresholds.deploy_quiet`).
pub(crate) fn spawn_ticks(
    store: Store,
    log: &crate::log::EventLog,
    alerts: Arc<Alerts>,
    deploy_quiet: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut deploys = deploy_subscription(log);
    tokio::spawn(async move {
        loop {
            deploy_windows(&store, deploy_quiet, &mut deploys).await;
            if let Err(e) = alerts.tick(Utc::now()).await {
                tracing::warn!(error = %e, "alert lifecycle tick failed");
            }
            // Woken by a deploy's append at once; the lifecycle's own tick is every second.
            tokio::select! {
                _ = deploys.wait(std::time::Duration::from_secs(1)) => {}
                _ = shutdown.wait_for(|v| *v) => break,
            }
        }
    });
}

/// The log's `deploy` events, followed by the deploy windows (cursor `deploy_windows_cursor`).
pub(crate) fn deploy_subscription(log: &crate::log::EventLog) -> crate::log::Subscription {
    log.subscribe("deploy_windows_cursor", &["deploy"])
}

/// Opens the quiet window of each `deploy` event after the subscription's cursor: restart-class
/// alerts from the deploy's time for `deploy_quiet`. The cursor moves once a window is stored.
pub(crate) async fn deploy_windows(
    store: &Store,
    deploy_quiet: std::time::Duration,
    deploys: &mut crate::log::Subscription,
) {
    let page = match deploys.read(100).await {
        Ok(page) => page,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read deploy events");
            return;
        }
    };
    for d in &page {
        let Event::Deploy { sha, .. } = Event::from_payload(&d.kind, &d.payload) else {
            continue; // a hand-made row without its sha: no window
        };
        let w = QuietWindow {
            id: format!("deploy-{}", d.seq),
            starts_at: d.at,
            ends_at: d.at
                + chrono::Duration::from_std(deploy_quiet).unwrap_or(chrono::Duration::zero()),
            matcher: Some(RESTART_CLASS.to_owned()),
            reason: format!("deploy {}", sha.get(..7).unwrap_or(&sha)),
        };
        // Its id is the deploy's seq: stored again after a crash before the commit, it is one row.
        if let Err(e) = store.quiet_add_once(&w).await {
            tracing::warn!(error = %e, "cannot open a deploy window; retried");
            return;
        }
    }
    if let Some(last) = page.last()
        && let Err(e) = deploys.commit(last.seq).await
    {
        tracing::warn!(error = %e, "cannot move the deploy windows' cursor; retried");
    }
}

fn store_error(e: lookout_store::StoreError) -> ApiError {
    ApiError::internal(e)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    failed: bool,
}

/// `GET /api/alerts`: firing, held, folded, flapping and resolved alerts (`?failed=true`: the
/// notifications that could not be delivered).
pub(crate) async fn list(
    State(state): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    if q.failed {
        let dead = state
            .outbox()
            .dead_letters(500)
            .await
            .map_err(store_error)?;
        let failing = state.outbox().failing_sinks().await.map_err(store_error)?;
        return Ok(Json(json!({
            "failed": dead,
            "failing_sinks": failing
                .into_iter()
                .map(|(sink, since)| json!({"sink": sink, "since": since}))
                .collect::<Vec<_>>(),
        })));
    }
    let alerts = state.alerts().list(Utc::now()).await.map_err(store_error)?;
    let quiet = state
        .store()
        .quiet_windows(Utc::now())
        .await
        .map_err(store_error)?;
    Ok(Json(json!({ "alerts": alerts, "quiet": quiet })))
}

/// The body of `POST /api/quiet`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuietBody {
    /// How long: `30m`.
    #[serde(rename = "for")]
    length: String,
    /// Only keys containing one of these `|`-separated parts.
    #[serde(rename = "match")]
    matcher: Option<String>,
    /// Why.
    reason: Option<String>,
}

/// `POST /api/quiet {"for": "30m", "match"?, "reason"?}`: opens a quiet window now.
pub(crate) async fn quiet_add(
    State(state): State<AppState>,
    body: Result<Json<QuietBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let length = lookout_config::duration::parse_duration(&b.length)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("`for` = {:?} is not a duration such as 30m or 2h", b.length),
            )
            .with("field", json!("for"))
        })?;
    let now = Utc::now();
    let id = format!("q-{}", now.timestamp_micros());
    let w = state
        .alerts()
        .quiet(
            id,
            length,
            b.matcher.filter(|m| !m.is_empty()),
            b.reason.unwrap_or_else(|| "manual".into()),
            now,
        )
        .await
        .map_err(store_error)?;
    Ok((StatusCode::CREATED, Json(json!({ "quiet": w }))))
}

/// `GET /api/quiet`: open and coming windows (one-off and, with their next opening, `[[quiet]]`).
pub(crate) async fn quiet_list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let windows = state
        .store()
        .quiet_windows(Utc::now())
        .await
        .map_err(store_error)?;
    Ok(Json(json!({ "quiet": windows })))
}

/// `POST /api/quiet/{id}/end`.
pub(crate) async fn quiet_end(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if state
        .store()
        .quiet_end(&id, Utc::now())
        .await
        .map_err(store_error)?
    {
        Ok(Json(json!({ "ended": id })))
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no open quiet window `{id}`"),
        )
        .with("field", json!("id")))
    }
}

/// `POST /api/alerts/{id}/retry`: sends a dead-lettered notification again.
pub(crate) async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match state.outbox().retry_dead(&id).await.map_err(store_error)? {
        0 => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no dead-lettered notification `{id}`"),
        )
        .with("field", json!("id"))),
        n => Ok(Json(json!({ "retrying": id, "deliveries": n }))),
    }
}
