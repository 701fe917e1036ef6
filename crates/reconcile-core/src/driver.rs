//! The tick driver: the runtime that owns the loop (kube-rs style), so the model owns only decisions.
//!
//! Each [`Driver::tick`]: drains new events by seq cursor from an [`EventSource`], applies them,
//! checks invariants, reconciles, executes what is not done yet through [`Execute`] (for the host
//! model: [`Effects`]), hands the whole current set of violations over
//! ([`Execute::violations`]), and persists `{cursor, state, violating, done keys}` as one JSON
//! value, so a restart neither loses nor re-applies an event and never re-runs an effect that
//! succeeded. A failed effect is not recorded as done: the next tick, which decides again from the
//! same state, retries it under the same idempotency key.
//!
//! Alerts are not the driver's: it keeps no alert lifecycle. Every tick hands every violation
//! that holds to the effects, and the host's lifecycle (lookoutd: lookout-notify's `alerts`) fires
//! it once, reminds, folds, holds it in a quiet window, and resolves it once it is no longer
//! handed over. `violating` (the set handed over last, [`Violating`]) only tells which violations
//! began or cleared since: for the metrics, the tick report, dry-run and replay.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::alerts::{AlertState, Violating, count_by_invariant};
use crate::error::ReconcileError;
use crate::host::{Action, Mark, Notice, Repair};
use crate::metrics::ReconcileMetrics;
use crate::model::{Model, ModelAction, Violation};
use crate::source::EventSource;

pub use lookout_common::{Clock, ManualClock, TokioClock};

/// Executes one action of a model. For the host model, implement [`Effects`] instead.
#[async_trait]
pub trait Execute<A>: Send + Sync {
    /// Performs `action`; an error means "not done", and the next tick retries it.
    async fn execute(&self, action: &A) -> Result<(), ReconcileError>;
    /// Takes the whole set of violations that hold at `now`, on every tick (also when it is
    /// empty): the host's alert lifecycle fires each (an alert already firing is not sent again)
    /// and resolves those of the model's invariants that fire but are not in `current` any more.
    /// An error is logged and counted; the next tick hands the set over again.
    async fn violations(
        &self,
        current: &[Violation],
        now: DateTime<Utc>,
    ) -> Result<(), ReconcileError>;
}

/// The host's side effects. Every call carries the action's idempotency key: a receiver that
/// remembers keys turns the driver's at-least-once (a crash between success and the next save) into
/// exactly once.
#[async_trait]
pub trait Effects: Send + Sync {
    /// Tells a group something (e.g. through the notification outbox).
    async fn notify(&self, key: &str, notice: &Notice) -> Result<(), ReconcileError>;
    /// Records something in the host (e.g. recovered messages to process).
    async fn mark(&self, key: &str, mark: &Mark) -> Result<(), ReconcileError>;
    /// Takes the whole set of violations that hold at `now`, on every tick (see
    /// [`Execute::violations`]): the host's alert lifecycle fires each one (deduplicating one
    /// already firing) and resolves the firing alerts of the invariants (`I1` … `I8`) that are
    /// not in `current` any more. The lifecycle is the only place an alert fires, repeats, folds,
    /// is held or resolves; the firing text is [`Violation::alert_text`], the key is invariant +
    /// subject.
    async fn violations(
        &self,
        current: &[Violation],
        now: DateTime<Utc>,
    ) -> Result<(), ReconcileError>;
    /// Performs a safe repair (called only with `auto_repair` on). The host should report what it
    /// did as an event (e.g. `run_finished` with `outcome: "repaired"`), so the log stays the one
    /// history.
    async fn repair(&self, key: &str, repair: &Repair) -> Result<(), ReconcileError>;
}

#[async_trait]
impl<T: Effects + ?Sized> Effects for Arc<T> {
    async fn notify(&self, key: &str, notice: &Notice) -> Result<(), ReconcileError> {
        (**self).notify(key, notice).await
    }
    async fn mark(&self, key: &str, mark: &Mark) -> Result<(), ReconcileError> {
        (**self).mark(key, mark).await
    }
    async fn violations(
        &self,
        current: &[Violation],
        now: DateTime<Utc>,
    ) -> Result<(), ReconcileError> {
        (**self).violations(current, now).await
    }
    async fn repair(&self, key: &str, repair: &Repair) -> Result<(), ReconcileError> {
        (**self).repair(key, repair).await
    }
}

#[async_trait]
impl<T: Effects> Execute<Action> for T {
    async fn execute(&self, action: &Action) -> Result<(), ReconcileError> {
        let key = action.key();
        match action {
            Action::Notify(n) => self.notify(&key, n).await,
            Action::Mark(m) => self.mark(&key, m).await,
            // Shown by dry-run, replay and the tick report; the alert itself goes out through
            // `violations`, so there is nothing to do for it here (the driver never asks).
            Action::Alert(_) => Ok(()),
            Action::Repair(r) => self.repair(&key, r).await,
        }
    }

    async fn violations(
        &self,
        current: &[Violation],
        now: DateTime<Utc>,
    ) -> Result<(), ReconcileError> {
        Effects::violations(self, current, now).await
    }
}

/// How the driver behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverConfig {
    /// Execute repairs (off: they are reported, by dry-run too, but not executed).
    pub auto_repair: bool,
    /// Events drained per tick at most (a tick that drains this many is followed at once by another).
    pub max_events_per_tick: u32,
    /// The `router_state` key of the persisted driver state.
    pub state_key: String,
    /// Save the state at most this often when a tick executed no effect (zero: after every
    /// tick). A tick that executed an effect always saves (its done key must survive a crash);
    /// between saves, a restart re-applies the events after the saved cursor, which gives the
    /// same state. A state with a day of message ids is megabytes: saving it on every tick would
    /// keep the store's writer busy.
    pub save_every: Duration,
}

/// The default `router_state` key.
pub const DEFAULT_STATE_KEY: &str = "reconcile.driver";

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            auto_repair: false,
            max_events_per_tick: 10_000,
            state_key: DEFAULT_STATE_KEY.to_owned(),
            save_every: Duration::ZERO,
        }
    }
}

/// What the driver persists: one JSON value, written whole after each tick.
///
/// A state saved by a version that kept its own alert book (an `alerts` field) still loads: the
/// field is ignored (that version's firing alerts are in the host's lifecycle too, which the first
/// hand-over of the violations brings up to date), and `violating` starts empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(bound = "S: Serialize + DeserializeOwned")]
pub struct DriverState<S> {
    /// The seq of the last event applied.
    pub cursor: i64,
    /// The model's state after it.
    pub state: S,
    /// The violations handed over at the last tick whose hand-over succeeded (what tells a
    /// violation that begins or clears; never what is sent).
    #[serde(default)]
    pub violating: Violating,
    /// Idempotency keys of effects that succeeded, among the actions still decided.
    pub done: BTreeSet<String>,
}

/// Loads the persisted driver state under `key` (default when there is none).
pub async fn load_state<S, Src>(source: &Src, key: &str) -> Result<DriverState<S>, ReconcileError>
where
    S: Default + Serialize + DeserializeOwned,
    Src: EventSource + ?Sized,
{
    match source.load(key).await? {
        None => Ok(DriverState::default()),
        Some(text) => serde_json::from_str(&text).map_err(|e| ReconcileError::CorruptState {
            key: key.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// What a model decided at one instant: violations, and the actions (model's, then the alerts a
/// hand-over of the violations begins and ends).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision<A> {
    /// The invariants that do not hold (all of them are handed over).
    pub violations: Vec<Violation>,
    /// The actions, model's first, then the alerts that begin or end compared with `violating`
    /// ([`ModelAction::from_alert`]: shown, never executed).
    pub actions: Vec<A>,
}

/// Checks invariants, reconciles, and says which alerts begin or end compared with the
/// violations handed over last (`violating`): the one decision the tick, dry-run and replay
/// share. Pure: it changes nothing.
pub fn decide<M: Model>(
    model: &M,
    state: &M::State,
    violating: &Violating,
    now: DateTime<Utc>,
) -> Decision<M::Action> {
    let violations = model.check_invariants(state, now);
    let mut actions = model.reconcile(state, now);
    actions.extend(
        violating
            .diff(&violations, now)
            .into_iter()
            .map(M::Action::from_alert),
    );
    Decision {
        violations,
        actions,
    }
}

/// What one tick did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TickReport<A> {
    /// Events drained and applied.
    pub events: usize,
    /// The cursor after the tick.
    pub cursor: i64,
    /// Events left in the log after the cursor (an upper bound: seqs may have gaps).
    pub pending: i64,
    /// The `now` the tick decided at.
    pub now: DateTime<Utc>,
    /// The invariants that do not hold.
    pub violations: Vec<Violation>,
    /// Actions executed successfully, then the alerts the hand-over of the violations began or
    /// ended (when it succeeded).
    pub executed: Vec<A>,
    /// Actions that failed, with why (retried next tick); and the alerts a failed hand-over would
    /// have begun or ended (handed over again next tick).
    pub failed: Vec<(A, String)>,
    /// Repairs not executed because `auto_repair` is off.
    pub skipped: Vec<A>,
    /// Actions decided again but already done before.
    pub already_done: usize,
    /// Wall time of the tick.
    pub elapsed: Duration,
}

/// The tick driver of model `M`.
pub struct Driver<M: Model, S, E, C> {
    model: M,
    source: S,
    effects: E,
    clock: C,
    config: DriverConfig,
    metrics: ReconcileMetrics,
    st: Option<DriverState<M::State>>,
    /// When the state was last saved (None: not since it was loaded).
    saved_at: Option<tokio::time::Instant>,
}

impl<M, S, E, C> std::fmt::Debug for Driver<M, S, E, C>
where
    M: Model,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("config", &self.config)
            .field("cursor", &self.st.as_ref().map(|s| s.cursor))
            .finish_non_exhaustive()
    }
}

impl<M, S, E, C> Driver<M, S, E, C>
where
    M: Model,
    S: EventSource,
    E: Execute<M::Action>,
    C: Clock,
{
    /// A driver; its persisted state is loaded by the first tick.
    pub fn new(model: M, source: S, effects: E, clock: C, config: DriverConfig) -> Self {
        Driver {
            model,
            source,
            effects,
            clock,
            config,
            metrics: ReconcileMetrics::new(),
            st: None,
            saved_at: None,
        }
    }

    /// Uses these metrics (e.g. ones already registered in the daemon's registry).
    pub fn with_metrics(mut self, metrics: ReconcileMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Its metrics (register them with [`ReconcileMetrics::register`]).
    pub fn metrics(&self) -> &ReconcileMetrics {
        &self.metrics
    }

    /// The driver state in memory (None before the first tick).
    pub fn driver_state(&self) -> Option<&DriverState<M::State>> {
        self.st.as_ref()
    }

    /// The model's state in memory (None before the first tick).
    pub fn state(&self) -> Option<&M::State> {
        self.st.as_ref().map(|s| &s.state)
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The event source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// One tick (see the module docs). An error leaves nothing half-done that the next tick would
    /// not redo: the persisted state is only replaced whole.
    pub async fn tick(&mut self) -> Result<TickReport<M::Action>, ReconcileError> {
        let r = self.tick_inner().await;
        if let Err(e) = &r {
            self.metrics.tick_error();
            warn!(error = %e, "reconcile tick failed");
        }
        r
    }

    async fn tick_inner(&mut self) -> Result<TickReport<M::Action>, ReconcileError> {
        let wall = std::time::Instant::now();
        if self.st.is_none() {
            let st = load_state(&self.source, &self.config.state_key).await?;
            info!(cursor = st.cursor, "reconciler resumes");
            self.st = Some(st);
        }
        let st = self.st.as_mut().expect("loaded above");
        let records = self
            .source
            .events_after(st.cursor, self.config.max_events_per_tick)
            .await?;
        for r in &records {
            let e = self.model.decode(r);
            self.model.apply(&mut st.state, &e);
            st.cursor = r.seq;
        }
        let now = self.clock.now();
        let decision = decide(&self.model, &st.state, &st.violating, now);
        let mut emitted = BTreeSet::new();
        let (mut executed, mut failed, mut skipped, mut already_done) =
            (Vec::new(), Vec::new(), Vec::new(), 0);
        let mut alerts = Vec::new();
        for action in decision.actions {
            if action.as_alert().is_some() {
                // Not executed: the alert goes out with the hand-over below.
                alerts.push(action);
                continue;
            }
            let key = action.key();
            emitted.insert(key.clone());
            if st.done.contains(&key) {
                already_done += 1;
                continue;
            }
            let kind = action.kind();
            self.metrics.action(kind);
            if action.is_repair() && !self.config.auto_repair {
                debug!(key, "repair not executed: auto_repair is off");
                skipped.push(action);
                continue;
            }
            match self.effects.execute(&action).await {
                Ok(()) => {
                    self.metrics.effect(kind, true);
                    info!(key, kind, "effect done");
                    st.done.insert(key);
                    executed.push(action);
                }
                Err(e) => {
                    self.metrics.effect(kind, false);
                    warn!(key, kind, error = %e, "effect failed; retried next tick");
                    failed.push((action, e.to_string()));
                }
            }
        }
        // Only keys of actions still decided are worth remembering: the set stays small.
        st.done.retain(|k| emitted.contains(k));
        // The whole current set, every tick: the host's lifecycle fires, reminds and resolves.
        for a in &alerts {
            self.metrics.action(a.kind());
        }
        match self.effects.violations(&decision.violations, now).await {
            Ok(()) => {
                for a in alerts {
                    let kind = a.kind();
                    self.metrics.effect(kind, true);
                    if let Some(x) = a.as_alert()
                        && x.state == AlertState::Firing
                    {
                        self.metrics.onset(&x.invariant);
                    }
                    info!(key = a.key(), kind, "effect done");
                    executed.push(a);
                }
                st.violating.record(&decision.violations, now);
            }
            Err(e) => {
                warn!(
                    error = %e,
                    violations = decision.violations.len(),
                    "handing the violations over failed; handed over again next tick"
                );
                for a in alerts {
                    self.metrics.effect(a.kind(), false);
                    failed.push((a, e.to_string()));
                }
            }
        }
        self.metrics
            .firing(&count_by_invariant(&decision.violations));
        let due = self
            .saved_at
            .is_none_or(|t| t.elapsed() >= self.config.save_every);
        if !executed.is_empty() || due {
            let text = serde_json::to_string(&*st).map_err(|e| ReconcileError::CorruptState {
                key: self.config.state_key.clone(),
                reason: format!("cannot serialise: {e}"),
            })?;
            self.source.save(&self.config.state_key, &text).await?;
            self.saved_at = Some(tokio::time::Instant::now());
        }
        let pending = (self.source.latest_seq().await? - st.cursor).max(0);
        let elapsed = wall.elapsed();
        self.metrics
            .tick(records.len(), elapsed.as_secs_f64(), pending);
        debug!(
            events = records.len(),
            cursor = st.cursor,
            pending,
            violations = decision.violations.len(),
            executed = executed.len(),
            failed = failed.len(),
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            "reconcile tick"
        );
        Ok(TickReport {
            events: records.len(),
            cursor: st.cursor,
            pending,
            now,
            violations: decision.violations,
            executed,
            failed,
            skipped,
            already_done,
            elapsed,
        })
    }

    /// Ticks every `every` until `shutdown` completes; a tick that drained a full batch is followed
    /// at once by another. Tick errors are logged and counted, never fatal.
    pub async fn run(mut self, every: Duration, shutdown: impl Future<Output = ()>) {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = interval.tick() => {
                    if let Ok(r) = self.tick().await
                        && r.events >= self.config.max_events_per_tick as usize
                    {
                        interval.reset_immediately();
                    }
                }
            }
        }
        self.flush().await;
        info!("reconciler stopped");
    }

    /// Saves the state now if it changed since the last save (at shutdown).
    pub async fn flush(&mut self) {
        let Some(st) = self.st.as_ref() else { return };
        match serde_json::to_string(st) {
            Ok(text) => match self.source.save(&self.config.state_key, &text).await {
                Ok(()) => self.saved_at = Some(tokio::time::Instant::now()),
                Err(e) => warn!(error = %e, "cannot save the reconciler state at shutdown"),
            },
            Err(e) => warn!(error = %e, "cannot serialise the reconciler state"),
        }
    }

    /// Like [`Driver::run`], and also ticks soon after `wake` is notified (new events were
    /// stored), so a violation an event makes is seen in milliseconds instead of up to one
    /// interval later. Woken ticks are at least `min_gap` apart, so a stream of events costs at
    /// most one tick per `min_gap`.
    pub async fn run_woken(
        mut self,
        every: Duration,
        min_gap: Duration,
        wake: std::sync::Arc<tokio::sync::Notify>,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let mut last = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = interval.tick() => {}
                _ = wake.notified() => {
                    let since = last.elapsed();
                    if since < min_gap {
                        tokio::select! {
                            _ = &mut shutdown => break,
                            _ = tokio::time::sleep(min_gap - since) => {}
                        }
                    }
                }
            }
            last = tokio::time::Instant::now();
            if let Ok(r) = self.tick().await
                && r.events >= self.config.max_events_per_tick as usize
            {
                interval.reset_immediately();
            } else {
                interval.reset();
            }
        }
        self.flush().await;
        info!("reconciler stopped");
    }
}
