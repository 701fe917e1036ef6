//! The watchdog in lookoutd: `[[watch]]` targets, reports to the log and the outbox, heartbeat
//! events fed from the log, `/api/watchdog/*`, and the `watchdog` section of `/status`.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lookout_common::Clock;
use lookout_config::{Watch, WatchKind};
use lookout_notify::alerts::{Alert, AlertKey, Alerts};
use lookout_notify::{Message, Outbox};
use lookout_status_collect::host::{TargetRow, WatchdogSource};
use lookout_store::{NewEvent, Store};
use lookout_watchdog::{
    ContainerSpec, DockerControl, ExpectedVersion, Health, HttpSpec, JsonFileStore, Policy,
    ProcessSpec, Report, Reporter, Target, TargetKind, TargetSpec, Watchdog, WatchdogError,
};
use serde_json::{Value, json};

use crate::folding::{DOCKER_ENGINE, rule};
use crate::http::{ApiError, AppState};

/// Each report: its event to the log, its notification to the outbox.
pub(crate) struct DaemonReporter {
    outbox: Arc<Outbox>,
    alerts: Arc<Alerts>,
    store: Store,
    /// The container targets: they depend on the Docker engine.
    containers: HashSet<String>,
    clock: Arc<dyn Clock>,
}

impl DaemonReporter {
    pub(crate) fn new(
        outbox: Arc<Outbox>,
        alerts: Arc<Alerts>,
        store: Store,
        config: &lookout_config::Config,
        clock: Arc<dyn Clock>,
    ) -> Self {
        DaemonReporter {
            outbox,
            alerts,
            store,
            containers: config
                .watch
                .iter()
                .filter(|w| matches!(w.kind, WatchKind::Container))
                .map(|w| w.name.clone())
                .collect(),
            clock,
        }
    }
}

#[async_trait::async_trait]
impl Reporter for DaemonReporter {
    async fn report(&self, r: Report) {
        let ev = r.event.to_json();
        let kind = ev["kind"].as_str().unwrap_or("watchdog_action").to_owned();
        let stored = NewEvent::new(&kind, ev).with_subject(r.event.target.clone());
        if let Err(e) = self.store.append_events(&[stored]).await {
            tracing::error!(error = %e, target = %r.event.target, "cannot store a watchdog event");
        }
        // A circuit (one target's or a shared one) is a condition with a lifecycle; each heal action
        // is a one-off message.
        if let Some(key) = AlertKey::parse(&r.notification.key)
            .filter(|k| k.rule == rule::WATCHDOG_CIRCUIT || k.rule == rule::WATCHDOG_SHARED)
        {
            let now = self.clock.now();
            let done = if r.notification.resolves {
                self.alerts.resolve_key(&key, now).await
            } else {
                let container =
                    key.rule == rule::WATCHDOG_CIRCUIT && self.containers.contains(&key.subject);
                let a = Alert::keyed(
                    key.clone(),
                    lookout_notify::Severity::Critical,
                    r.notification.text.clone(),
                );
                // A container target's circuit opened while the engine is down is that cause's
                // effect (the fold table).
                let a = if container {
                    a.depends_on(DOCKER_ENGINE)
                } else {
                    a
                };
                self.alerts.fire(a, now).await
            };
            if let Err(e) = done {
                tracing::error!(error = %e, alert = %key, "cannot record a watchdog alert");
            }
            return;
        }
        let severity = match r.notification.severity {
            lookout_watchdog::Severity::Info => lookout_notify::Severity::Info,
            lookout_watchdog::Severity::Warning => lookout_notify::Severity::Warning,
            lookout_watchdog::Severity::Critical => lookout_notify::Severity::Critical,
        };
        let m = Message::new(severity, r.notification.text.clone())
            .key(r.notification.key.clone())
            .payload(json!({"resolves": r.notification.resolves}));
        if let Err(e) = self.outbox.send(m).await {
            tracing::error!(error = %e, text = %r.notification.text, "cannot store a watchdog notification");
        }
        // A heal tier taken while an incident about this target is open is part of its story.
        let action = lookout_store::IncidentAction {
            at: self.clock.now(),
            kind: "heal".into(),
            text: r.notification.text.clone(),
            by: Some("lookoutd".into()),
        };
        if let Err(e) = self
            .store
            .incident_note(
                lookout_store::IncidentScope::Subject(&r.event.target),
                &action,
            )
            .await
        {
            tracing::warn!(error = %e, target = %r.event.target, "cannot note a heal action on its incident");
        }
    }
}

/// A `[[watch]]` entry as a watchdog target (the config was validated at load).
pub(crate) fn target(w: &Watch) -> Result<Target, WatchdogError> {
    let spec = match w.kind {
        WatchKind::Process => TargetSpec::Process(ProcessSpec {
            pid_file: w.pid_file.clone(),
            heartbeat_file: w.heartbeat_file.clone(),
            // No heartbeat file: the host posts `heartbeat` events for it instead.
            heartbeat_events: w.heartbeat_file.is_none(),
            version_file: w.version_file.clone(),
            expected_version: w
                .expected_version
                .as_deref()
                .map(ExpectedVersion::parse)
                .transpose()?,
            restart_marker: w.restart_marker.clone(),
            start: w.start.clone(),
        }),
        WatchKind::Container => TargetSpec::Container(ContainerSpec {
            container: w.container.clone().unwrap_or_else(|| w.name.clone()),
        }),
        WatchKind::Http => {
            let mut h = HttpSpec::new(w.url.clone().unwrap_or_default());
            h.expected_status = w.expected_status;
            TargetSpec::Http(h)
        }
    };
    let kind = spec.kind();
    let mut policy = Policy::for_kind(kind);
    policy.probe_interval = w.probe_interval;
    policy.stale_after = w.stale_after;
    policy.cooldown = w.cooldown;
    policy.max_top_tier_failures = w.max_tier_failures;
    let t = Target::new(w.name.clone(), spec).with_policy(policy);
    // Container targets share the engine: when it fails, one circuit, not one per container.
    Ok(if kind == TargetKind::Container {
        t.with_upstream(DOCKER_ENGINE.0)
    } else {
        t
    })
}

/// Builds the watchdog, adds the configured targets and starts its loop and its heartbeat feed.
pub(crate) async fn start(
    log: &crate::log::EventLog,
    outbox: Arc<Outbox>,
    alerts: Arc<Alerts>,
    config: &lookout_config::Config,
    state_dir: &std::path::Path,
    registry: &mut prometheus_client::registry::Registry,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<Arc<Watchdog>, WatchdogError> {
    let store = log.store();
    let heal_state = JsonFileStore::new(state_dir.join("watchdog"))?;
    let w = Arc::new(
        Watchdog::builder(
            Arc::new(heal_state),
            Arc::new(DaemonReporter::new(
                outbox,
                alerts,
                store.clone(),
                config,
                Arc::new(lookout_common::SystemClock),
            )),
        )
        .container_control(Arc::new(DockerControl::new(config.docker.socket.clone())))
        .build(),
    );
    for entry in &config.watch {
        w.add_target(target(entry)?).await?;
    }
    w.register(registry);
    if !config.watch.is_empty() {
        let mut rx = shutdown.clone();
        let run = w.clone();
        tokio::spawn(async move {
            run.run(async move {
                let _ = rx.wait_for(|v| *v).await;
            })
            .await
        });
        tokio::spawn(feed_heartbeats(log.clone(), w.clone(), shutdown));
    }
    Ok(w)
}

/// Feeds `heartbeat` events to the watchdog: first the latest of each target already in the log
/// (so a restart of lookoutd sees the heartbeats sent before it, instead of waiting out the
/// start-up grace), then each new one as it is appended (a subscription from the end of the log).
async fn feed_heartbeats(
    log: crate::log::EventLog,
    w: Arc<Watchdog>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let names: Vec<String> = w.targets();
    let feed = |subject: Option<&str>, at| {
        if let Some(t) = subject.filter(|t| names.iter().any(|n| n == t)) {
            let _ = w.heartbeat(t, at);
        }
    };
    // Subscribed before the snapshot: a heartbeat appended in between is fed twice, never missed.
    let mut beats = loop {
        match log.subscribe_from_end(&["heartbeat"]).await {
            Ok(s) => break s,
            Err(e) => tracing::warn!(error = %e, "cannot follow heartbeat events; retried"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = shutdown.wait_for(|v| *v) => return,
        }
    };
    match log.store().latest_by_subject(&["heartbeat"]).await {
        Ok(latest) => latest.iter().for_each(|b| feed(b.subject.as_deref(), b.at)),
        Err(e) => tracing::warn!(error = %e, "cannot read heartbeat events"),
    }
    loop {
        match beats.read(1000).await {
            Ok(page) => {
                page.iter().for_each(|b| feed(b.subject.as_deref(), b.at));
                if let Some(last) = page.last() {
                    let _ = beats.commit(last.seq).await; // in memory: cannot fail
                    continue; // more may be waiting
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read heartbeat events"),
        }
        tokio::select! {
            _ = beats.wait(std::time::Duration::from_secs(1)) => {}
            _ = shutdown.wait_for(|v| *v) => break,
        }
    }
}

fn watchdog(state: &AppState) -> Result<&Watchdog, ApiError> {
    state.watchdog().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the watchdog is not running",
        )
    })
}

fn unknown(e: WatchdogError, name: &str) -> ApiError {
    match e {
        WatchdogError::UnknownTarget(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no watchdog target named `{name}`"),
        )
        .with("field", json!("target")),
        other => ApiError::internal(other),
    }
}

/// `GET /api/watchdog`: every target with its explanation.
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let w = watchdog(&state)?;
    let mut out = Vec::new();
    for name in w.targets() {
        out.push(
            serde_json::to_value(w.explain(&name).map_err(|e| unknown(e, &name))?)
                .map_err(ApiError::internal)?,
        );
    }
    Ok(Json(json!({ "targets": out })))
}

/// `GET /api/watchdog/{target}/explain`.
pub(crate) async fn explain(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let e = watchdog(&state)?
        .explain(&name)
        .map_err(|e| unknown(e, &name))?;
    Ok(Json(serde_json::to_value(e).map_err(ApiError::internal)?))
}

/// `POST /api/watchdog/{target}/reset`: closes its circuit and restarts its ladder.
pub(crate) async fn reset(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    watchdog(&state)?
        .reset(&name)
        .await
        .map_err(|e| unknown(e, &name))?;
    Ok(Json(json!({ "reset": name })))
}

/// `/status`'s `watchdog` section.
pub(crate) struct WatchdogTargets(pub(crate) Arc<Watchdog>);

#[async_trait::async_trait]
impl WatchdogSource for WatchdogTargets {
    async fn targets(&self) -> Result<Vec<TargetRow>, String> {
        let mut rows = Vec::new();
        for name in self.0.targets() {
            let e = self.0.explain(&name).map_err(|e| e.to_string())?;
            let healthy = e
                .observation
                .as_ref()
                .is_none_or(|o| o.health != Health::Failing);
            let open = e.circuit.state != lookout_watchdog::CircuitState::Closed;
            rows.push(TargetRow {
                kind: format!("{:?}", e.kind).to_lowercase(),
                healthy,
                observation: (!e.seen.is_empty()).then(|| e.seen.join("; ")),
                tier: e
                    .last_action
                    .as_ref()
                    .map(|a| u32::from(a.tier))
                    .unwrap_or(0),
                circuit_open: open,
                circuit_reason: e.circuit.reason.clone(),
                last_action_at: e.last_action.as_ref().map(|a| a.at),
                next_action: (!healthy || open).then(|| e.next.summary.clone()),
                next_action_at: (!healthy && !open).then_some(e.next.at).flatten(),
                name,
            });
        }
        Ok(rows)
    }
}
