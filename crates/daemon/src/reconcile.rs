//! The reconciler in lookoutd: its tick loop over the event log, its effects (the outbox, the log),
//! `POST /debug/reconcile-dry-run`, `POST /debug/replay-events` and its part of `/metrics`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use lookout_notify::{Message, Outbox, Severity};

use lookout_reconcile_core::host::{Mark, Notice, Repair};
use lookout_reconcile_core::{
    AlertAction, AlertState, Driver, DriverConfig, Effects, HostModel, Limits, ReconcileError,
    ReconcileMetrics, ReplayRequest, TokioClock, dry_run,
};
use lookout_store::{NewEvent, Store};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{ApiError, AppState};

/// The model with lookoutd's thresholds.
pub(crate) fn model(
    config: &lookout_config::Config,
    stale_processing: std::time::Duration,
) -> HostModel {
    let t = &config.thresholds;
    HostModel::new(Limits {
        stale_processing,
        heartbeat: t.heartbeat_interval * 3,
        delivery_pending: t.delivery_pending,
        channel_down: t.channel_down,
        max_concurrent: config.reconcile.max_concurrent.map(|m| m as usize),
        task_grace: t.overdue_grace,
        // "alive but stalled": the same progress for this many heartbeat intervals.
        stall_after: t.heartbeat_interval * t.stall_after,
        ..Limits::default()
    })
}

pub(crate) fn driver_config(config: &lookout_config::Config) -> DriverConfig {
    DriverConfig {
        auto_repair: config.reconcile.auto_repair,
        // A tick that executed an effect always saves; otherwise every 5 s (the state holds a
        // day of message ids: megabytes at a busy host).
        save_every: std::time::Duration::from_secs(5),
        ..DriverConfig::default()
    }
}

/// What the reconciler's actions do in lookoutd.
struct DaemonEffects {
    outbox: Arc<Outbox>,
    alerts: Arc<lookout_notify::alerts::Alerts>,
    store: Store,
}

fn failed(key: &str) -> impl FnOnce(lookout_store::StoreError) -> ReconcileError + '_ {
    move |e| ReconcileError::Effect {
        action: key.to_owned(),
        reason: e.to_string(),
    }
}

#[async_trait::async_trait]
impl Effects for DaemonEffects {
    async fn notify(&self, key: &str, notice: &Notice) -> Result<(), ReconcileError> {
        let m = Message::new(Severity::Info, notice.text.clone())
            .key(key)
            .group(notice.group.clone())
            .payload(json!({"chat_jid": notice.chat_jid, "seq": notice.seq}));
        self.outbox.send(m).await.map(|_| ()).map_err(failed(key))
    }

    async fn mark(&self, key: &str, mark: &Mark) -> Result<(), ReconcileError> {
        // lookoutd cannot process a host's messages; the host learns of them from the notice
        // (its callback sink) and from the log. Said here so an operator sees it.
        let Mark::ProcessRecovered {
            channel,
            message_ids,
            group,
            ..
        } = mark;
        tracing::info!(key, %channel, %group, count = message_ids.len(), "recovered messages for the host to process");
        Ok(())
    }

    async fn alert(&self, key: &str, alert: &AlertAction) -> Result<(), ReconcileError> {
        // I2 (a batch in flight too long) is the interrupted-run contract, whose scan already
        // alerts with the chat and count: the log line here keeps it one message, not two.
        if alert.invariant == "I2" {
            tracing::warn!(key, alert = %alert.text(), "interrupted run (alerted by the stale scan)");
            return Ok(());
        }
        // Through the lifecycle: quiet windows, flapping and reminders apply; the reconciler's own
        // book already sends one firing and one resolved per violation.
        let now = Utc::now();
        let done = match alert.state {
            AlertState::Firing => {
                self.alerts
                    .fire(
                        lookout_notify::alerts::Alert::new(
                            alert.invariant.clone(),
                            alert.subject.clone(),
                            Severity::Critical,
                            alert.text(),
                        ),
                        now,
                    )
                    .await
            }
            AlertState::Resolved => {
                self.alerts
                    .resolve(&alert.invariant, &alert.subject, now)
                    .await
            }
        };
        done.map(|outcome| tracing::info!(key, ?outcome, "invariant alert"))
            .map_err(failed(key))
    }

    async fn repair(&self, key: &str, repair: &Repair) -> Result<(), ReconcileError> {
        let Repair::RunToIdle {
            run_id,
            group,
            run_kind,
            container,
            ..
        } = repair;
        // The repair is a fact in the log like any other: the run ends, marked repaired.
        let ev = NewEvent::new(
            "run_finished",
            json!({
                "run_id": run_id, "group": group, "run_kind": run_kind, "container": container,
                "outcome": "repaired",
                "note": format!("container {container} is gone; lookoutd set the run idle"),
                "idempotency": key,
            }),
        )
        .with_subject(run_id.clone());
        self.store
            .append_events(&[ev])
            .await
            .map(|_| ())
            .map_err(failed(key))
    }
}

/// Starts the tick loop; it stops when `shutdown` says so.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn(
    store: Store,
    outbox: Arc<Outbox>,
    alerts: Arc<lookout_notify::alerts::Alerts>,
    model: HostModel,
    config: DriverConfig,
    every: std::time::Duration,
    metrics: ReconcileMetrics,
    wake: Arc<tokio::sync::Notify>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let effects = DaemonEffects {
        outbox,
        alerts,
        store: store.clone(),
    };
    let driver =
        Driver::new(model, store, effects, TokioClock::new(), config).with_metrics(metrics);
    // Woken by each projected group of new events; at most one woken tick per 50 ms.
    let min_gap = std::time::Duration::from_millis(50).min(every);
    // The handle ends after the driver's last save (its cursor and alert book) at shutdown.
    tokio::spawn(driver.run_woken(every, min_gap, wake, async move {
        let _ = shutdown.wait_for(|v| *v).await;
    }))
}

/// `POST /debug/reconcile-dry-run`: what the next tick would do now; nothing is executed.
pub(crate) async fn dry_run_handler(
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let r = state.reconciler();
    let d = dry_run(&r.model, state.store(), &r.driver, Utc::now())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(serde_json::to_value(d).map_err(ApiError::internal)?))
}

/// The body of `POST /debug/replay-events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayBody {
    from: String,
    to: String,
}

/// `POST /debug/replay-events {"from","to"}`: the events of the range on a fresh state; nothing is
/// executed or written. A reversed, unparseable or too long range is a 422 naming which.
pub(crate) async fn replay_handler(
    State(state): State<AppState>,
    body: Result<Json<ReplayBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let r = state.reconciler();
    let req = ReplayRequest::parse(&b.from, &b.to, r.max_replay).map_err(|e| match &e {
        ReconcileError::InvalidRange { field, problem, .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
                .with("field", json!(field))
                .with("problem", json!(format!("{problem:?}").to_lowercase()))
        }
        _ => ApiError::internal(e),
    })?;
    let out = lookout_reconcile_core::replay::replay(&r.model, state.store(), req.from, req.to)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "from": out.from,
        "to": out.to,
        "events": out.events,
        "seqs": out.seqs,
        "violations": out.violations,
        "actions": out.actions,
    })))
}

/// What the debug handlers need.
pub(crate) struct Reconciler {
    pub(crate) model: HostModel,
    pub(crate) driver: DriverConfig,
    pub(crate) max_replay: std::time::Duration,
}
