//! The supervisor: probe rounds, the healing budget, acting on decisions, reporting.
//!
//! Here: the [`Watchdog`], its builder, its targets and its public API. The parts: `round` (the
//! loop and one probe round), `budget` (the healing budget's shared circuits), `act` (deciding for
//! one target, acting, reporting what was done).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::WatchdogError;
use crate::clock::{Clock, TokioClock};
use crate::control::{
    ContainerControl, DockerControl, HttpProbe, NixProcessControl, ProcessControl, ReqwestProbe,
};
use crate::explain::{self, Explanation};
use crate::ladder::HealState;
use crate::metrics::WatchdogMetrics;
use crate::observe::{Health, Observation};
use crate::probe::RestartBaseline;
use crate::report::{EventKind, Notification, Report, Reporter, Severity, WatchdogEvent};
use crate::store::HealStateStore;
use crate::target::{BudgetPolicy, Target};

mod act;
mod budget;
mod round;

/// One shared circuit of the healing budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedCircuit {
    /// The shared cause (a target's `upstream`, or one a probe saw, e.g. `docker engine`).
    pub cause: String,
    /// Since when.
    pub since: DateTime<Utc>,
    /// The targets it holds (failing with this cause in the last round).
    pub targets: Vec<String>,
}

/// What one round did for one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundOutcome {
    /// The target.
    pub target: String,
    /// The probe's verdict.
    pub health: Health,
    /// What the ladder did: `healthy`, `acted tier 2`, `cooldown`, `circuit open` …
    pub outcome: String,
}

/// What a probe round did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundSummary {
    /// When it ran.
    pub at: Option<DateTime<Utc>>,
    /// One entry per target probed (targets not yet due are not probed).
    pub outcomes: Vec<RoundOutcome>,
    /// Shared circuits open after the round.
    pub shared_circuits: Vec<SharedCircuit>,
}

impl RoundSummary {
    /// The outcome of `target` in this round.
    pub fn outcome(&self, target: &str) -> Option<&RoundOutcome> {
        self.outcomes.iter().find(|o| o.target == target)
    }
}

pub(crate) struct Slot {
    pub(crate) target: Arc<Target>,
    pub(crate) state: HealState,
    pub(crate) last_obs: Option<Observation>,
    pub(crate) first_seen: Option<DateTime<Utc>>,
    pub(crate) heartbeat_event: Option<DateTime<Utc>>,
    /// A heartbeat file dated ahead of the clock, and when it was first seen (see the probe).
    pub(crate) future_mtime: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub(crate) http_in_row: u32,
    pub(crate) baseline: RestartBaseline,
    pub(crate) next_probe_at: Option<DateTime<Utc>>,
}

pub(crate) struct Inner {
    pub(crate) clock: Arc<dyn Clock>,
    process: Arc<dyn ProcessControl>,
    containers: Arc<dyn ContainerControl>,
    http: Arc<dyn HttpProbe>,
    store: Arc<dyn HealStateStore>,
    reporter: Arc<dyn Reporter>,
    metrics: WatchdogMetrics,
    budget: BudgetPolicy,
    pub(crate) slots: Mutex<BTreeMap<String, Slot>>,
    pub(crate) shared: Mutex<BTreeMap<String, SharedCircuit>>,
    wake: tokio::sync::Notify,
}

/// Builds a [`Watchdog`]; every seam has a real default.
pub struct WatchdogBuilder {
    clock: Arc<dyn Clock>,
    process: Arc<dyn ProcessControl>,
    containers: Option<Arc<dyn ContainerControl>>,
    http: Option<Arc<dyn HttpProbe>>,
    store: Arc<dyn HealStateStore>,
    reporter: Arc<dyn Reporter>,
    budget: BudgetPolicy,
}

impl std::fmt::Debug for WatchdogBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchdogBuilder")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl WatchdogBuilder {
    /// The clock (default: [`TokioClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// Process control (default: [`NixProcessControl`]).
    pub fn process_control(mut self, control: Arc<dyn ProcessControl>) -> Self {
        self.process = control;
        self
    }
    /// Container control (default: [`DockerControl`] on `/var/run/docker.sock`).
    pub fn container_control(mut self, control: Arc<dyn ContainerControl>) -> Self {
        self.containers = Some(control);
        self
    }
    /// HTTP probing (default: [`ReqwestProbe`]).
    pub fn http_probe(mut self, probe: Arc<dyn HttpProbe>) -> Self {
        self.http = Some(probe);
        self
    }
    /// The healing budget (default: 3 targets with one cause).
    pub fn budget(mut self, budget: BudgetPolicy) -> Self {
        self.budget = budget;
        self
    }
    /// The watchdog, with no targets yet.
    pub fn build(self) -> Watchdog {
        Watchdog {
            inner: Arc::new(Inner {
                clock: self.clock,
                process: self.process,
                containers: self
                    .containers
                    .unwrap_or_else(|| Arc::new(DockerControl::new("unix:///var/run/docker.sock"))),
                http: self.http.unwrap_or_else(|| Arc::new(ReqwestProbe::new())),
                store: self.store,
                reporter: self.reporter,
                metrics: WatchdogMetrics::default(),
                budget: self.budget,
                slots: Mutex::new(BTreeMap::new()),
                shared: Mutex::new(BTreeMap::new()),
                wake: tokio::sync::Notify::new(),
            }),
        }
    }
}

/// The supervisor of a set of targets. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct Watchdog {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog")
            .field("targets", &self.targets())
            .finish_non_exhaustive()
    }
}

impl Watchdog {
    /// Starts a builder with where heal state is kept and who hears about actions.
    pub fn builder(store: Arc<dyn HealStateStore>, reporter: Arc<dyn Reporter>) -> WatchdogBuilder {
        WatchdogBuilder {
            clock: Arc::new(TokioClock::new()),
            process: Arc::new(NixProcessControl),
            containers: None,
            http: None,
            store,
            reporter,
            budget: BudgetPolicy::default(),
        }
    }

    /// Adds a target, or replaces the spec and policy of one with the same name (its heal state is
    /// kept). The saved heal state is loaded, so the ladder continues where it was.
    pub async fn add_target(&self, target: Target) -> Result<(), WatchdogError> {
        target.validate()?;
        let name = target.name.clone();
        let store = self.inner.store.clone();
        let loaded = {
            let name = name.clone();
            tokio::task::spawn_blocking(move || store.load(&name))
                .await
                .map_err(|e| WatchdogError::Task(e.to_string()))??
        };
        {
            let mut slots = self.inner.slots.lock().unwrap();
            match slots.get_mut(&name) {
                Some(slot) => slot.target = Arc::new(target),
                None => {
                    let state = loaded.unwrap_or_default();
                    if state.circuit.is_some() {
                        self.inner.metrics.circuits_open.inc();
                    }
                    slots.insert(
                        name.clone(),
                        Slot {
                            target: Arc::new(target),
                            state,
                            last_obs: None,
                            first_seen: None,
                            heartbeat_event: None,
                            future_mtime: None,
                            http_in_row: 0,
                            baseline: RestartBaseline::default(),
                            next_probe_at: None,
                        },
                    );
                }
            }
        }
        tracing::info!(target_name = %name, "watchdog target added");
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Stops supervising `name` and forgets its saved state. Returns whether it was there.
    pub async fn remove_target(&self, name: &str) -> Result<bool, WatchdogError> {
        let removed = self.inner.slots.lock().unwrap().remove(name);
        if let Some(slot) = &removed {
            if slot.state.circuit.is_some() {
                self.inner.metrics.circuits_open.dec();
            }
            let store = self.inner.store.clone();
            let name = name.to_owned();
            tokio::task::spawn_blocking(move || store.remove(&name))
                .await
                .map_err(|e| WatchdogError::Task(e.to_string()))??;
        }
        Ok(removed.is_some())
    }

    /// The supervised targets' names.
    pub fn targets(&self) -> Vec<String> {
        self.inner.slots.lock().unwrap().keys().cloned().collect()
    }

    /// The current heal state of `name`.
    pub fn state(&self, name: &str) -> Option<HealState> {
        self.inner
            .slots
            .lock()
            .unwrap()
            .get(name)
            .map(|s| s.state.clone())
    }

    /// Feeds in a heartbeat event (`{"kind": "heartbeat", "target": …}` from the log or the API).
    /// An older heartbeat than one already seen is ignored.
    pub fn heartbeat(&self, name: &str, at: DateTime<Utc>) -> Result<(), WatchdogError> {
        let mut slots = self.inner.slots.lock().unwrap();
        let slot = slots
            .get_mut(name)
            .ok_or_else(|| WatchdogError::UnknownTarget(name.to_owned()))?;
        slot.heartbeat_event = slot.heartbeat_event.max(Some(at));
        Ok(())
    }

    /// The metrics (register them with [`WatchdogMetrics::register`] or [`Watchdog::register`]).
    pub fn metrics(&self) -> &WatchdogMetrics {
        &self.inner.metrics
    }

    /// Registers the metrics in `registry`.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        self.inner.metrics.register(registry);
    }

    /// The shared circuits open now.
    pub fn shared_circuits(&self) -> Vec<SharedCircuit> {
        self.inner
            .shared
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect()
    }

    /// What was observed of `name`, what would act next and when, and the circuit's state.
    pub fn explain(&self, name: &str) -> Result<Explanation, WatchdogError> {
        explain::explain(self, name)
    }

    /// The manual reset (`lookout watchdog reset TARGET`): closes the circuit and starts the
    /// ladder and the backoff over. Announces the closing when a circuit was open.
    pub async fn reset(&self, name: &str) -> Result<(), WatchdogError> {
        let now = self.inner.clock.now();
        let (state, was_open, circuit_tier) = {
            let mut slots = self.inner.slots.lock().unwrap();
            let slot = slots
                .get_mut(name)
                .ok_or_else(|| WatchdogError::UnknownTarget(name.to_owned()))?;
            let was_open = slot.state.circuit.take();
            slot.state = HealState {
                started_at: slot.state.started_at,
                ..HealState::default()
            };
            // Probe at once: the operator wants to see the effect.
            slot.next_probe_at = None;
            (
                slot.state.clone(),
                was_open,
                slot.target.policy.circuit_tier(),
            )
        };
        self.persist(name, &state).await?;
        tracing::info!(target_name = %name, "watchdog target reset by operator");
        if let Some(open) = was_open {
            self.inner.metrics.circuits_open.dec();
            self.report(
                WatchdogEvent {
                    kind: EventKind::WatchdogCircuitClosed,
                    target: name.to_owned(),
                    tier: Some(circuit_tier),
                    observation: format!("circuit was open since {}", open.since.to_rfc3339()),
                    action: "reset by operator".into(),
                    ok: true,
                    targets: Vec::new(),
                    at: now,
                },
                Notification {
                    severity: Severity::Info,
                    key: format!("watchdog_circuit:{name}"),
                    resolves: true,
                    text: format!(
                        "✅ {name}: circuit closed by a manual reset — the watchdog heals again"
                    ),
                },
            )
            .await;
        }
        self.inner.wake.notify_one();
        Ok(())
    }

    async fn persist(&self, name: &str, state: &HealState) -> Result<(), WatchdogError> {
        let store = self.inner.store.clone();
        let name = name.to_owned();
        let state = state.clone();
        tokio::task::spawn_blocking(move || store.save(&name, &state))
            .await
            .map_err(|e| WatchdogError::Task(e.to_string()))?
    }

    async fn report(&self, event: WatchdogEvent, notification: Notification) {
        self.inner
            .reporter
            .report(Report {
                event,
                notification,
            })
            .await;
    }
}
