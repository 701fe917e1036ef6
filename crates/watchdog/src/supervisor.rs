//! The supervisor: probe rounds, the healing budget, acting on decisions, reporting.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::WatchdogError;
use crate::clock::{Clock, TokioClock};
use crate::control::{
    ContainerControl, DockerControl, HttpProbe, NixProcessControl, ProcessControl, ReqwestProbe,
    Signal,
};
use crate::explain::{self, Explanation};
use crate::ladder::{self, Decision, HealState, LastAction};
use crate::metrics::{ActionLabels, ProbeLabels, WatchdogMetrics};
use crate::observe::{Health, Observation};
use crate::probe::{self, ProcessContext, RestartBaseline};
use crate::report::{EventKind, Notification, Report, Reporter, Severity, WatchdogEvent};
use crate::store::{HealStateStore, write_atomic};
use crate::target::{Action, BudgetPolicy, Target, TargetSpec};

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

fn dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
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

    /// The time until the next target is due, if any target exists.
    fn until_next_due(&self) -> Option<Duration> {
        let now = self.inner.clock.now();
        let slots = self.inner.slots.lock().unwrap();
        slots
            .values()
            .map(|s| match s.next_probe_at {
                None => Duration::ZERO,
                Some(at) => (at - now).to_std().unwrap_or(Duration::ZERO),
            })
            .min()
    }

    /// Runs probe rounds until `shutdown` completes: each target is probed once per its
    /// `probe_interval`; targets due together form one round.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let summary = self.probe_round().await;
            tracing::debug!(probed = summary.outcomes.len(), "watchdog round");
            let wait = self
                .until_next_due()
                .unwrap_or(Duration::from_secs(1))
                .max(Duration::from_millis(1));
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(wait) => {}
                () = self.inner.wake.notified() => {}
            }
        }
    }

    /// Probes every target that is due now, applies the healing budget, and lets the ladder of
    /// each act (at most one tier per target). Tests call it directly with a paused clock.
    pub async fn probe_round(&self) -> RoundSummary {
        let now = self.inner.clock.now();
        // Pick the due targets and take what their probes need.
        let mut jobs = Vec::new();
        {
            let mut slots = self.inner.slots.lock().unwrap();
            for (name, slot) in slots.iter_mut() {
                if slot.next_probe_at.is_some_and(|at| at > now) {
                    continue;
                }
                let first_seen = *slot.first_seen.get_or_insert(now);
                slot.next_probe_at = Some(now + dur(slot.target.policy.probe_interval));
                jobs.push(ProbeJob {
                    name: name.clone(),
                    target: slot.target.clone(),
                    ctx: ProcessContext {
                        heartbeat_event: slot.heartbeat_event,
                        first_seen,
                        started_at: slot.state.started_at,
                    },
                    http_in_row: slot.http_in_row,
                    baseline: slot.baseline.clone(),
                });
            }
        }
        let mut set = JoinSet::new();
        for job in jobs {
            let inner = self.inner.clone();
            set.spawn(async move { job.run(inner, now).await });
        }
        let mut observed: Vec<(Arc<Target>, Observation)> = Vec::new();
        while let Some(done) = set.join_next().await {
            let Ok((job, obs)) = done else { continue };
            self.inner
                .metrics
                .probes
                .get_or_create(&ProbeLabels {
                    target: job.name.clone(),
                    result: health_label(obs.health).into(),
                })
                .inc();
            let mut slots = self.inner.slots.lock().unwrap();
            if let Some(slot) = slots.get_mut(&job.name) {
                slot.http_in_row = job.http_in_row;
                slot.baseline = job.baseline;
                slot.last_obs = Some(obs.clone());
            }
            observed.push((job.target, obs));
        }
        observed.sort_by(|a, b| a.0.name.cmp(&b.0.name));

        let held = self.apply_budget(&observed, now).await;

        let mut set = JoinSet::new();
        let mut outcomes = Vec::new();
        for (target, obs) in observed {
            if let Some(cause) = held.get(&target.name) {
                outcomes.push(RoundOutcome {
                    target: target.name.clone(),
                    health: obs.health,
                    outcome: format!("held by the shared circuit ({cause})"),
                });
                continue;
            }
            let this = self.clone();
            set.spawn(async move {
                let outcome = this.handle(&target, &obs, now).await;
                RoundOutcome {
                    target: target.name.clone(),
                    health: obs.health,
                    outcome,
                }
            });
        }
        while let Some(done) = set.join_next().await {
            if let Ok(o) = done {
                outcomes.push(o);
            }
        }
        outcomes.sort_by(|a, b| a.target.cmp(&b.target));
        RoundSummary {
            at: Some(now),
            outcomes,
            shared_circuits: self.shared_circuits(),
        }
    }

    /// The healing budget: opens or closes shared circuits from this round's observations, and
    /// answers the targets they hold (name → cause).
    async fn apply_budget(
        &self,
        observed: &[(Arc<Target>, Observation)],
        now: DateTime<Utc>,
    ) -> BTreeMap<String, String> {
        // Every target's latest observation counts, not only this round's: targets are probed
        // on their own schedules, so one round may see a single target of a cause that fails for
        // twenty (and must not close the shared circuit because of it).
        let latest: Vec<(Arc<Target>, Observation)> = {
            let slots = self.inner.slots.lock().unwrap();
            let mut all: Vec<(Arc<Target>, Observation)> = slots
                .values()
                .filter_map(|s| s.last_obs.clone().map(|o| (s.target.clone(), o)))
                .collect();
            // A target observed this round but removed meanwhile still counts this once.
            for (t, o) in observed {
                if !all.iter().any(|(x, _)| x.name == t.name) {
                    all.push((t.clone(), o.clone()));
                }
            }
            all.sort_by(|a, b| a.0.name.cmp(&b.0.name));
            all
        };
        let mut by_cause: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for (target, obs) in &latest {
            if obs.health == Health::Healthy {
                continue;
            }
            if let Some(cause) = obs.upstream.clone().or_else(|| target.upstream.clone()) {
                by_cause
                    .entry(cause)
                    .or_default()
                    .push((target.name.clone(), obs.summary()));
            }
        }
        let threshold = self.inner.budget.threshold.max(1);
        let mut opened = Vec::new();
        let mut closed = Vec::new();
        let mut held = BTreeMap::new();
        {
            let mut shared = self.inner.shared.lock().unwrap();
            for (cause, failing) in &by_cause {
                if failing.len() < threshold {
                    continue;
                }
                let targets: Vec<String> = failing.iter().map(|(n, _)| n.clone()).collect();
                for t in &targets {
                    held.insert(t.clone(), cause.clone());
                }
                match shared.get_mut(cause) {
                    Some(c) => c.targets = targets,
                    None => {
                        let c = SharedCircuit {
                            cause: cause.clone(),
                            since: now,
                            targets,
                        };
                        shared.insert(cause.clone(), c.clone());
                        opened.push((c, failing.clone()));
                    }
                }
            }
            // Close the shared circuits whose cause no longer fails enough targets.
            let gone: Vec<String> = shared
                .keys()
                .filter(|cause| by_cause.get(*cause).is_none_or(|f| f.len() < threshold))
                .cloned()
                .collect();
            for cause in gone {
                if let Some(c) = shared.remove(&cause) {
                    closed.push(c);
                }
            }
        }
        for (c, failing) in opened {
            self.inner.metrics.circuits_open.inc();
            tracing::warn!(cause = %c.cause, targets = c.targets.len(), "watchdog shared circuit open");
            let seen = failing
                .iter()
                .map(|(n, s)| format!("{n}: {s}"))
                .collect::<Vec<_>>()
                .join("; ");
            self.report(
                WatchdogEvent {
                    kind: EventKind::WatchdogSharedCircuitOpen,
                    target: c.cause.clone(),
                    tier: None,
                    observation: seen,
                    action: "healing paused for the targets of this cause".into(),
                    ok: true,
                    targets: c.targets.clone(),
                    at: now,
                },
                Notification {
                    severity: Severity::Critical,
                    key: format!("watchdog_shared:{}", c.cause),
                    resolves: false,
                    text: format!(
                        "⛔ {} targets failing together, shared cause: {} — one circuit open, not healing them one by one (also affected: {})",
                        c.targets.len(),
                        c.cause,
                        c.targets.join(", ")
                    ),
                },
            )
            .await;
        }
        for c in closed {
            self.inner.metrics.circuits_open.dec();
            tracing::info!(cause = %c.cause, "watchdog shared circuit closed");
            self.report(
                WatchdogEvent {
                    kind: EventKind::WatchdogSharedCircuitClosed,
                    target: c.cause.clone(),
                    tier: None,
                    observation: format!("fewer than {threshold} targets fail with this cause"),
                    action: "healing resumed".into(),
                    ok: true,
                    targets: c.targets.clone(),
                    at: now,
                },
                Notification {
                    severity: Severity::Info,
                    key: format!("watchdog_shared:{}", c.cause),
                    resolves: true,
                    text: format!(
                        "✅ shared cause {} cleared — the watchdog heals its targets again ({})",
                        c.cause,
                        c.targets.join(", ")
                    ),
                },
            )
            .await;
        }
        held
    }

    /// Decides for one target, saves the state before acting, acts, reports.
    async fn handle(&self, target: &Target, obs: &Observation, now: DateTime<Utc>) -> String {
        let name = target.name.as_str();
        let (decision, state, before, changed) = {
            let mut slots = self.inner.slots.lock().unwrap();
            let Some(slot) = slots.get_mut(name) else {
                return "removed".into();
            };
            let before = slot.state.clone();
            let decision = ladder::decide(&slot.state, &target.spec, &target.policy, obs, now);
            let changed = ladder::apply(&mut slot.state, &decision, &target.policy, obs, now);
            (decision, slot.state.clone(), before, changed)
        };
        if changed && let Err(e) = self.persist(name, &state).await {
            // Acting without a saved state could repeat the action after a restart: hold off, and
            // forget the decision so the next probe decides again.
            if let Some(slot) = self.inner.slots.lock().unwrap().get_mut(name) {
                slot.state = before;
            }
            tracing::error!(target_name = %name, error = %e, "watchdog could not save heal state; not acting");
            return format!("not acting: heal state not saved ({e})");
        }
        match decision {
            Decision::Healthy {
                recovered_after,
                close_circuit,
            } => {
                if let Some(last) = recovered_after {
                    self.announce_recovery(target, &last, now).await;
                }
                if close_circuit {
                    self.inner.metrics.circuits_open.dec();
                    self.report(
                        WatchdogEvent {
                            kind: EventKind::WatchdogCircuitClosed,
                            target: name.to_owned(),
                            tier: Some(target.policy.circuit_tier()),
                            observation: "healthy".into(),
                            action: "circuit closed: healthy long enough".into(),
                            ok: true,
                            targets: Vec::new(),
                            at: now,
                        },
                        Notification {
                            severity: Severity::Info,
                            key: format!("watchdog_circuit:{name}"),
                            resolves: true,
                            text: format!(
                                "✅ {name}: healthy again — circuit closed, the watchdog heals again"
                            ),
                        },
                    )
                    .await;
                }
                "healthy".into()
            }
            Decision::Unknown => format!("unknown: {}", obs.summary()),
            Decision::CircuitOpen => "circuit open".into(),
            Decision::Settling { until } => format!("settling until {}", until.to_rfc3339()),
            Decision::Wait {
                tier, until, why, ..
            } => format!("tier {tier} waits for {why:?} until {}", until.to_rfc3339()),
            Decision::OpenCircuit { reason } => {
                self.inner.metrics.circuits_open.inc();
                let tier = target.policy.circuit_tier();
                tracing::error!(target_name = %name, tier, reason = %reason, "watchdog circuit open");
                self.report(
                    WatchdogEvent {
                        kind: EventKind::WatchdogCircuitOpen,
                        target: name.to_owned(),
                        tier: Some(tier),
                        observation: obs.summary(),
                        action: format!("circuit open: {reason}; stopped acting"),
                        ok: true,
                        targets: Vec::new(),
                        at: now,
                    },
                    Notification {
                        severity: Severity::Critical,
                        key: format!("watchdog_circuit:{name}"),
                        resolves: false,
                        text: format!(
                            "⛔ {name}: {} — circuit open, {reason}; the watchdog stopped acting (tier {tier}). `lookout watchdog reset {name}` when fixed",
                            obs.summary()
                        ),
                    },
                )
                .await;
                format!("circuit opened: {reason}")
            }
            Decision::Act { tier, action } => {
                self.inner
                    .metrics
                    .actions
                    .get_or_create(&ActionLabels {
                        target: name.to_owned(),
                        tier: tier.to_string(),
                    })
                    .inc();
                let result = self.perform(target, action, obs).await;
                let (what, ok) = match &result {
                    Ok(what) => (what.clone(), true),
                    Err(e) => (format!("{} failed: {e}", action.describe()), false),
                };
                if ok {
                    tracing::warn!(target_name = %name, tier, action = %what, "watchdog acted");
                } else {
                    tracing::error!(target_name = %name, tier, action = %what, "watchdog action failed");
                }
                self.report(
                    WatchdogEvent {
                        kind: EventKind::WatchdogAction,
                        target: name.to_owned(),
                        tier: Some(tier),
                        observation: obs.summary(),
                        action: what.clone(),
                        ok,
                        targets: Vec::new(),
                        at: now,
                    },
                    Notification {
                        severity: Severity::Warning,
                        key: format!("watchdog_heal:{name}"),
                        resolves: false,
                        text: format!("🩹 {name}: {} — {what} (tier {tier})", obs.summary()),
                    },
                )
                .await;
                format!("acted tier {tier}: {what}")
            }
        }
    }

    async fn announce_recovery(&self, target: &Target, last: &LastAction, now: DateTime<Utc>) {
        let name = &target.name;
        tracing::info!(target_name = %name, tier = last.tier, "watchdog target recovered");
        self.report(
            WatchdogEvent {
                kind: EventKind::WatchdogRecovered,
                target: name.clone(),
                tier: Some(last.tier),
                observation: "healthy".into(),
                action: format!("recovered after {}", last.action.describe()),
                ok: true,
                targets: Vec::new(),
                at: now,
            },
            Notification {
                severity: Severity::Info,
                key: format!("watchdog_heal:{name}"),
                resolves: true,
                text: format!(
                    "✅ {name}: healthy again after {} (tier {})",
                    last.action.describe(),
                    last.tier
                ),
            },
        )
        .await;
    }

    /// Carries out one action. Answers what was done.
    async fn perform(
        &self,
        target: &Target,
        action: Action,
        obs: &Observation,
    ) -> Result<String, WatchdogError> {
        match (&target.spec, action) {
            (TargetSpec::Process(p), Action::RestartMarker) => {
                let marker = p
                    .restart_marker
                    .clone()
                    .ok_or_else(|| WatchdogError::Spawn("no restart marker configured".into()))?;
                let body = format!(
                    "restart requested by the lookout watchdog at {}\n",
                    self.inner.clock.now().to_rfc3339()
                );
                let path = marker.clone();
                tokio::task::spawn_blocking(move || write_atomic(&path, body.as_bytes()))
                    .await
                    .map_err(|e| WatchdogError::Task(e.to_string()))?
                    .map_err(|source| WatchdogError::Io {
                        path: marker.clone(),
                        source,
                    })?;
                Ok(format!("wrote the restart marker {}", marker.display()))
            }
            (TargetSpec::Process(_), Action::Terminate) => {
                let pid = obs.pid.ok_or(WatchdogError::Signal {
                    pid: 0,
                    reason: "no pid".into(),
                })?;
                self.inner.process.signal(pid, Signal::Term)?;
                Ok(format!("sent SIGTERM to pid {pid}"))
            }
            (TargetSpec::Process(p), Action::KillAndStart) => {
                let mut done = Vec::new();
                if let Some(pid) = obs.pid.filter(|pid| self.inner.process.alive(*pid)) {
                    self.inner.process.signal(pid, Signal::Kill)?;
                    let deadline = tokio::time::Instant::now() + target.policy.kill_wait;
                    while self.inner.process.alive(pid) && tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    done.push(format!("sent SIGKILL to pid {pid}"));
                }
                match &p.start {
                    Some(cmd) => {
                        let child = self.inner.process.spawn(cmd)?;
                        done.push(format!("ran the start command (pid {child})"));
                    }
                    None => done.push("no start command configured".into()),
                }
                Ok(done.join(" and "))
            }
            (TargetSpec::Container(c), Action::ContainerRestart) => {
                self.inner.containers.restart(&c.container).await?;
                Ok(format!("restarted container {}", c.container))
            }
            (TargetSpec::Container(c), Action::ContainerStopStart) => {
                self.inner.containers.stop(&c.container).await?;
                self.inner.containers.start(&c.container).await?;
                Ok(format!("stopped and started container {}", c.container))
            }
            (_, action) => Err(WatchdogError::InvalidTarget {
                target: target.name.clone(),
                reason: format!("{action:?} does not apply"),
            }),
        }
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

fn health_label(h: Health) -> &'static str {
    match h {
        Health::Healthy => "healthy",
        Health::Failing => "failing",
        Health::Unknown => "unknown",
    }
}

struct ProbeJob {
    name: String,
    target: Arc<Target>,
    ctx: ProcessContext,
    http_in_row: u32,
    baseline: RestartBaseline,
}

impl ProbeJob {
    async fn run(mut self, inner: Arc<Inner>, now: DateTime<Utc>) -> (ProbeJob, Observation) {
        let obs = match &self.target.spec {
            TargetSpec::Process(_) => {
                let target = self.target.clone();
                let control = inner.process.clone();
                let ctx = self.ctx.clone();
                tokio::task::spawn_blocking(move || {
                    let TargetSpec::Process(spec) = &target.spec else {
                        unreachable!("matched above")
                    };
                    probe::probe_process(spec, &target.policy, control.as_ref(), &ctx, now)
                })
                .await
                .unwrap_or_else(|e| {
                    let mut o = Observation::healthy(now);
                    o.health = Health::Unknown;
                    o.notes.push(format!("probe failed: {e}"));
                    o
                })
            }
            TargetSpec::Container(spec) => {
                probe::probe_container(
                    spec,
                    &self.target.policy,
                    inner.containers.as_ref(),
                    &mut self.baseline,
                    now,
                )
                .await
            }
            TargetSpec::Http(spec) => {
                probe::probe_http(spec, inner.http.as_ref(), &mut self.http_in_row, now).await
            }
        };
        (self, obs)
    }
}
