//! The reconciler in lookoutd: its tick loop over the event log, its effects (the outbox, the alert
//! lifecycle, the log), `POST /debug/reconcile-dry-run`, `POST /debug/replay-events` and its part
//! of `/metrics`.
//!
//! Alerts: every tick the driver hands over the whole set of violations that hold, and
//! [`DaemonEffects`] syncs the lifecycle (lookout-notify's `alerts::Alerts`) with it, rule by rule
//! for the reconciler's own rules (`I1` … `I8`, keys `I5:slack`): each violation is fired (one
//! already firing is not sent again; reminders come at the lifecycle's `repeat_interval`), and a
//! firing alert of those rules that is no longer handed over is resolved — once. The lifecycle is
//! the only place a reconciler alert fires, repeats, folds, is held or resolves.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use lookout_notify::alerts::{Alert, Outcome};
use lookout_notify::{Message, Outbox, Severity};

use lookout_reconcile_core::host::{Invariant, Mark, Notice, Repair};
use lookout_reconcile_core::{
    Driver, DriverConfig, Effects, HostModel, Limits, ReconcileError, ReconcileMetrics,
    ReplayRequest, TokioClock, Violation, dry_run,
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

/// I2 (a batch in flight too long) is the interrupted-run contract, whose scan already alerts with
/// the chat and count: the reconciler only logs it, so it is one message, not two.
const LOGGED_ONLY: &str = "I2";

/// The lifecycle rules that are the reconciler's: its invariants' ids (but I2, logged only). Only
/// alerts of these are ever resolved by a hand-over of the violations.
fn own_rules() -> impl Iterator<Item = &'static str> {
    Invariant::ALL
        .iter()
        .map(|i| i.id())
        .filter(|id| *id != LOGGED_ONLY)
}

/// What the reconciler's actions do in lookoutd.
struct DaemonEffects {
    outbox: Arc<Outbox>,
    alerts: Arc<lookout_notify::alerts::Alerts>,
    store: Store,
    /// The I2 subjects logged while they hold (each logged once when it begins).
    logged: Mutex<BTreeSet<String>>,
}

impl DaemonEffects {
    fn new(outbox: Arc<Outbox>, alerts: Arc<lookout_notify::alerts::Alerts>, store: Store) -> Self {
        DaemonEffects {
            outbox,
            alerts,
            store,
            logged: Mutex::new(BTreeSet::new()),
        }
    }

    /// Logs each I2 violation once when it begins.
    fn log_interrupted(&self, current: &[Violation]) {
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        let now: BTreeSet<String> = current
            .iter()
            .filter(|v| v.invariant == LOGGED_ONLY)
            .map(|v| {
                if !logged.contains(&v.subject) {
                    tracing::warn!(subject = %v.subject, alert = %v.alert_text(), "interrupted run (alerted by the stale scan)");
                }
                v.subject.clone()
            })
            .collect();
        *logged = now;
    }
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

    async fn violations(
        &self,
        current: &[Violation],
        _at: DateTime<Utc>,
    ) -> Result<(), ReconcileError> {
        self.log_interrupted(current);
        // The lifecycle keeps its states on the wall clock, as its own tick does.
        let now = Utc::now();
        // One sync per rule of the reconciler's, each with its whole current set (empty too):
        // fire what holds, resolve what fires and holds no more. Another raiser's rules are
        // never in it, so none of its alerts is resolved here.
        let mut by_rule: BTreeMap<&str, Vec<Alert>> =
            own_rules().map(|r| (r, Vec::new())).collect();
        for v in current.iter().filter(|v| v.invariant != LOGGED_ONLY) {
            by_rule
                .entry(v.invariant.as_str())
                .or_default()
                .push(Alert::new(
                    v.invariant.clone(),
                    v.subject.clone(),
                    Severity::Critical,
                    v.alert_text(),
                ));
        }
        let mut first_error = None;
        for (rule, alerts) in by_rule {
            match self.alerts.sync(rule, alerts, now).await {
                Ok(outcomes) => {
                    for (key, outcome) in outcomes {
                        if outcome != Outcome::Nothing {
                            tracing::info!(%key, ?outcome, "invariant alert");
                        }
                    }
                }
                // The other rules are still synced; this one is again next tick.
                Err(e) => {
                    tracing::warn!(rule, error = %e, "cannot sync the invariant alerts");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), |e| Err(failed("violations")(e)))
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
    let effects = DaemonEffects::new(outbox, alerts, store.clone());
    let driver =
        Driver::new(model, store, effects, TokioClock::new(), config).with_metrics(metrics);
    // Woken by each projected group of new events; at most one woken tick per 50 ms.
    let min_gap = std::time::Duration::from_millis(50).min(every);
    // The handle ends after the driver's last save (its cursor and state) at shutdown.
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

#[cfg(test)]
mod tests {
    //! The reconciler's alerts through the lifecycle lookoutd builds (`alerts::lifecycle`), over a
    //! real SQLite store: the driver hands its violations over on every tick, the lifecycle sends
    //! one firing and one resolved.

    use std::time::Duration;

    use lookout_common::{Clock, ManualClock};
    use lookout_notify::alerts::AlertKey;

    use super::*;
    use crate::testing::Alerting;

    /// Delivers what is due; the (key, text) of each message sent since the last call.
    async fn sent(alerting: &Alerting) -> Vec<(String, String)> {
        alerting
            .sent()
            .await
            .into_iter()
            .map(|(key, text, _)| (key, text))
            .collect()
    }

    #[tokio::test]
    async fn a_violation_fires_once_across_ticks_and_resolves_once_when_it_clears() {
        let config = lookout_config::parse("", "lookout.toml").unwrap();
        // No dedup window: a second send of anything would show.
        let alerting = Alerting::new(&config).await;
        let (store, outbox, alerts) = (
            alerting.store.clone(),
            alerting.outbox.clone(),
            alerting.alerts.clone(),
        );
        // Another raiser's alert, and one of the reconciler's that fired before a restart and
        // cleared while lookoutd was down (its subject is not violated any more).
        let start = Utc::now();
        for (rule, subject, text) in [
            (
                "interrupted_run",
                "family@g.us",
                "⚠️ 2 message(s) interrupted",
            ),
            (
                "I4",
                "dl-old",
                "🚨 [I4] delivery dl-old to c1 pending for 6m",
            ),
        ] {
            let a = Alert::new(rule, subject, Severity::Critical, text);
            assert_eq!(alerts.fire(a, start).await.unwrap(), Outcome::Sent);
        }
        assert_eq!(sent(&alerting).await.len(), 2);

        store
            .append_events(&[NewEvent::new(
                "channel_disconnected",
                json!({"channel": "slack", "reason": "timeout"}),
            )
            .at(start - chrono::Duration::minutes(10))
            .with_subject("slack")])
            .await
            .unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let new_driver = || {
            Driver::new(
                model(&config, Duration::from_secs(600)),
                store.clone(),
                DaemonEffects::new(outbox.clone(), alerts.clone(), store.clone()),
                clock.clone(),
                driver_config(&config),
            )
        };
        let mut d = new_driver();
        let mut said = Vec::new();
        for _ in 0..5 {
            let r = d.tick().await.unwrap();
            assert_eq!(r.violations.len(), 1, "{r:?}");
            said.extend(sent(&alerting).await);
            clock.advance(Duration::from_secs(30));
        }
        // A restart: the lifecycle's state is in the store, nothing is sent again.
        drop(d);
        let mut d = new_driver();
        for _ in 0..3 {
            d.tick().await.unwrap();
            said.extend(sent(&alerting).await);
            clock.advance(Duration::from_secs(30));
        }
        let texts: Vec<&str> = said.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            said.iter()
                .filter(|(k, _)| k == "I5:slack")
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>(),
            ["🚨 [I5] channel #slack disconnected for 10m (timeout)"],
            "{texts:?}"
        );
        // What cleared while lookoutd was down is resolved by the first hand-over, once.
        assert_eq!(
            said.iter().filter(|(k, _)| k == "I4:dl-old").count(),
            1,
            "{texts:?}"
        );
        assert!(
            said.iter()
                .any(|(k, t)| k == "I4:dl-old" && t.starts_with("✅ resolved after")),
            "{texts:?}"
        );
        assert_eq!(said.len(), 2, "{texts:?}");

        // The channel comes back: resolved once, however many ticks follow.
        store
            .append_events(&[
                NewEvent::new("channel_connected", json!({"channel": "slack"}))
                    .at(clock.now())
                    .with_subject("slack"),
            ])
            .await
            .unwrap();
        let mut said = Vec::new();
        for _ in 0..5 {
            let r = d.tick().await.unwrap();
            assert!(r.violations.is_empty(), "{r:?}");
            said.extend(sent(&alerting).await);
            clock.advance(Duration::from_secs(30));
        }
        let texts: Vec<&str> = said.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(said.len(), 1, "{texts:?}");
        assert_eq!(said[0].0, "I5:slack");
        assert!(
            texts[0].starts_with("✅ resolved after")
                && texts[0].contains("🚨 [I5] channel #slack disconnected for"),
            "{texts:?}"
        );
        // Another raiser's alert is not the reconciler's to resolve.
        let list = alerts.list(Utc::now()).await.unwrap();
        let status = |k: AlertKey| {
            list.iter()
                .find(|v| v.record.key == k.to_string())
                .map(|v| v.status)
        };
        assert_eq!(
            status(AlertKey::new("interrupted_run", "family@g.us")),
            Some("firing")
        );
        assert_eq!(status(AlertKey::new("I5", "slack")), Some("resolved"));
        assert_eq!(status(AlertKey::new("I4", "dl-old")), Some("resolved"));
    }

    #[tokio::test]
    async fn i2_is_logged_only_and_never_reaches_the_lifecycle() {
        let config = lookout_config::parse("", "lookout.toml").unwrap();
        let alerting = Alerting::new(&config).await;
        let alerts = alerting.alerts.clone();
        let fx = DaemonEffects::new(
            alerting.outbox.clone(),
            alerts.clone(),
            alerting.store.clone(),
        );
        let i2 = Violation {
            invariant: "I2".into(),
            subject: "family@g.us".into(),
            message: "chat family@g.us: 2 message(s) in flight for 11m with no response".into(),
            since: Utc::now(),
        };
        for _ in 0..3 {
            fx.violations(std::slice::from_ref(&i2), Utc::now())
                .await
                .unwrap();
        }
        assert!(alerts.list(Utc::now()).await.unwrap().is_empty());
        assert_eq!(
            *fx.logged.lock().unwrap(),
            BTreeSet::from(["family@g.us".to_owned()])
        );
        fx.violations(&[], Utc::now()).await.unwrap();
        assert!(fx.logged.lock().unwrap().is_empty());
    }
}
