//! The scheduler: claims due runs, applies the policies, runs them, heartbeats, reports, records.
//!
//! This file holds the [`Scheduler`], its settings and its public API (tasks, the loop); the work
//! is in `claim` (a tick: claiming due runs under the policies), `run` (running a claimed run:
//! heartbeats, timeouts, the end), `overdue` (due runs nobody started) and `interrupted` (runs
//! stopped by a crash, a shutdown or a replacing run).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_store::{ClaimedRun, NewTask, OwnerKind, TaskRecord, TaskRun, TaskStatus};
use serde_json::json;

use crate::clock::Clock;
use crate::error::SchedulerError;
use crate::metrics::SchedulerMetrics;
use crate::report::{Reporter, RunEvent};
use crate::runner::TaskRunner;
use crate::schedule::{Schedule, ScheduleKind};
use crate::spec::{TaskPolicy, TaskSpec};
use crate::task_store::TaskStore;

mod blocked;
mod claim;
mod interrupted;
mod overdue;
mod run;

/// The scheduler's settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// This scheduler's name, stable across restarts (e.g. the host name): runs it claimed and left
    /// `running` are marked `interrupted` at its next start. Several schedulers sharing one
    /// PostgreSQL must have different names.
    pub instance: String,
    /// Tasks (`scheduled_tasks`) or host jobs (`host_jobs`).
    pub kind: OwnerKind,
    /// The longest sleep between two ticks (new tasks and the overdue check are seen this often).
    pub tick: Duration,
    /// Heartbeat interval of a run (a task's policy may set its own).
    pub heartbeat_interval: Duration,
    /// A due run not started this long after its time is overdue (a task's policy may set its own).
    pub overdue_grace: Duration,
    /// A due run started within this much of its time is on time; older ones were missed (the
    /// missed-run policy applies).
    pub on_time_tolerance: Duration,
    /// Starting deadline of [`Missed::CatchUp`] when a task sets none.
    pub default_starting_deadline: Duration,
    /// Most tasks claimed in one tick.
    pub claim_limit: u32,
}

impl SchedulerConfig {
    /// Defaults for a scheduler named `instance`: 1 s tick, 60 s heartbeats, 2 min overdue grace,
    /// 60 s on-time tolerance, 1 day catch-up deadline, 1,000 claims a tick.
    pub fn new(instance: &str, kind: OwnerKind) -> SchedulerConfig {
        SchedulerConfig {
            instance: instance.to_string(),
            kind,
            tick: Duration::from_secs(1),
            heartbeat_interval: Duration::from_secs(60),
            overdue_grace: Duration::from_secs(120),
            on_time_tolerance: Duration::from_secs(60),
            default_starting_deadline: Duration::from_secs(86_400),
            claim_limit: 1000,
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Runs started (spawned).
    pub started: Vec<i64>,
    /// Runs recorded `skipped`.
    pub skipped: Vec<i64>,
    /// Tasks newly reported overdue.
    pub overdue: Vec<String>,
}

struct Active {
    run_id: i64,
    task: String,
    group: Option<String>,
    started: Option<DateTime<Utc>>,
    handle: tokio::task::AbortHandle,
}

/// The overdue instant and the task's group.
type OverdueEntry = (DateTime<Utc>, Option<String>);

struct Inner {
    store: Arc<dyn TaskStore>,
    clock: Arc<dyn Clock>,
    runner: Arc<dyn TaskRunner>,
    reporter: Arc<dyn Reporter>,
    metrics: SchedulerMetrics,
    config: SchedulerConfig,
    /// Runs this scheduler is running, by task id.
    active: Mutex<HashMap<String, Vec<Active>>>,
    /// Tasks reported overdue and not yet resolved, by name: the instant that was overdue, and the
    /// group.
    overdue: Mutex<HashMap<String, OverdueEntry>>,
    /// `forbid` tasks held up by a running run, by task id.
    blocked: Mutex<HashMap<String, blocked::Blocked>>,
}

/// Runs scheduled tasks. Cheap to clone (one shared state).
///
/// Drive it with [`Scheduler::run_until`] (recover, then tick until shutdown), or call
/// [`Scheduler::recover`] and [`Scheduler::tick`] yourself (tests do).
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Scheduler {
    /// A scheduler over `store` (a [`lookout_store::Store`] in an `Arc`, or a
    /// [`crate::MemoryTaskStore`]), taking `now` from `clock`, running with `runner`, reporting to
    /// `reporter`.
    pub fn new(
        store: Arc<dyn TaskStore>,
        clock: Arc<dyn Clock>,
        runner: Arc<dyn TaskRunner>,
        reporter: Arc<dyn Reporter>,
        config: SchedulerConfig,
    ) -> Scheduler {
        let metrics = SchedulerMetrics::default();
        metrics.init(config.kind.as_str());
        Scheduler {
            inner: Arc::new(Inner {
                store,
                clock,
                runner,
                reporter,
                metrics,
                config,
                active: Mutex::new(HashMap::new()),
                overdue: Mutex::new(HashMap::new()),
                blocked: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Shares `metrics` (e.g. one set for a daemon's task and host-job schedulers: its series are
    /// labelled by `owner`). Call it on a new scheduler, before it is cloned.
    pub fn with_metrics(mut self, metrics: SchedulerMetrics) -> Scheduler {
        let inner = Arc::get_mut(&mut self.inner)
            .expect("Scheduler::with_metrics is called before the scheduler is cloned");
        metrics.init(inner.config.kind.as_str());
        inner.metrics = metrics;
        self
    }

    /// The metrics (register them with [`SchedulerMetrics::register`]).
    pub fn metrics(&self) -> &SchedulerMetrics {
        &self.inner.metrics
    }

    /// The settings.
    pub fn config(&self) -> &SchedulerConfig {
        &self.inner.config
    }

    // ---------------------------------------------------------------------------------------------
    // Tasks
    // ---------------------------------------------------------------------------------------------

    /// Adds a task, or updates the one of that name (its next run is recomputed when the schedule
    /// changed). Invalid schedules are refused with their position.
    pub async fn upsert_task(&self, spec: &TaskSpec) -> Result<TaskRecord, SchedulerError> {
        let schedule = spec.validate()?;
        let now = self.inner.clock.now();
        let next = first_run(&schedule, now);
        let (kind, value) = schedule.to_parts();
        let record = NewTask {
            kind: self.inner.config.kind,
            id: spec.name.clone(),
            name: spec.name.clone(),
            group: spec.group.clone(),
            schedule_kind: kind.as_str().to_string(),
            schedule_value: value,
            tz: schedule.tz().name().to_string(),
            runner: serde_json::to_string(&spec.runner).expect("runner spec serialises"),
            policy: serde_json::to_string(&spec.policy).expect("policy serialises"),
            next_run: next,
        };
        let stored = self.inner.store.upsert_task(&record, now).await?;
        tracing::info!(task = %spec.name, next_run = ?stored.next_run, "task upserted");
        Ok(stored)
    }

    /// Every task.
    pub async fn list_tasks(&self) -> Result<Vec<TaskRecord>, SchedulerError> {
        Ok(self.inner.store.list_tasks(self.inner.config.kind).await?)
    }

    /// Pauses a task: it keeps its definition and history but is not run (a run in progress goes
    /// on).
    pub async fn pause(&self, name: &str) -> Result<(), SchedulerError> {
        let now = self.inner.clock.now();
        let kind = self.inner.config.kind;
        if !self
            .inner
            .store
            .set_task_status(kind, name, TaskStatus::Paused, None, now)
            .await?
        {
            return Err(SchedulerError::NotFound(name.into()));
        }
        Ok(())
    }

    /// Resumes a paused task from now: runs missed while paused are not run.
    pub async fn resume(&self, name: &str) -> Result<TaskRecord, SchedulerError> {
        let kind = self.inner.config.kind;
        let task = self
            .inner
            .store
            .get_task(kind, name)
            .await?
            .ok_or_else(|| SchedulerError::NotFound(name.into()))?;
        let now = self.inner.clock.now();
        let next = first_run(&schedule_of(&task)?, now);
        let status = if next.is_some() {
            TaskStatus::Active
        } else {
            TaskStatus::Completed
        };
        self.inner
            .store
            .set_task_status(kind, name, status, next, now)
            .await?;
        self.inner
            .store
            .get_task(kind, name)
            .await?
            .ok_or_else(|| SchedulerError::NotFound(name.into()))
    }

    /// Deletes a task (its history stays).
    pub async fn delete(&self, name: &str) -> Result<(), SchedulerError> {
        if !self
            .inner
            .store
            .delete_task(self.inner.config.kind, name)
            .await?
        {
            return Err(SchedulerError::NotFound(name.into()));
        }
        Ok(())
    }

    /// Runs a task now, outside its schedule (its next scheduled run is unchanged). Returns the run
    /// id.
    pub async fn run_now(&self, name: &str) -> Result<i64, SchedulerError> {
        let kind = self.inner.config.kind;
        let task = self
            .inner
            .store
            .get_task(kind, name)
            .await?
            .ok_or_else(|| SchedulerError::NotFound(name.into()))?;
        let now = self.inner.clock.now();
        let run_id = self
            .inner
            .store
            .claim_manual_run(kind, &task.id, now, &self.inner.config.instance)
            .await?
            .ok_or_else(|| {
                SchedulerError::InvalidTask(format!("`{name}` already has a run now"))
            })?;
        self.spawn_run(ClaimedRun {
            run_id,
            task,
            scheduled_for: now,
            skipped: None,
        });
        Ok(run_id)
    }

    /// A task's latest runs, newest first.
    pub async fn history(&self, name: &str, limit: u32) -> Result<Vec<TaskRun>, SchedulerError> {
        let kind = self.inner.config.kind;
        let task = self
            .inner
            .store
            .get_task(kind, name)
            .await?
            .ok_or_else(|| SchedulerError::NotFound(name.into()))?;
        Ok(self.inner.store.task_runs(kind, &task.id, limit).await?)
    }

    /// Run ids this scheduler is running now.
    pub fn active_runs(&self) -> Vec<i64> {
        let active = self.inner.active.lock().expect("active lock");
        let mut ids: Vec<i64> = active.values().flatten().map(|a| a.run_id).collect();
        ids.sort_unstable();
        ids
    }

    // ---------------------------------------------------------------------------------------------
    // The loop
    // ---------------------------------------------------------------------------------------------

    /// Recovers, then ticks until `shutdown` completes: after each tick it sleeps until the next
    /// due run or [`SchedulerConfig::tick`], whichever is sooner. At shutdown, runs in progress are
    /// stopped and recorded `interrupted`.
    pub async fn run_until<F>(&self, shutdown: F) -> Result<(), SchedulerError>
    where
        F: std::future::Future<Output = ()>,
    {
        self.recover().await?;
        tokio::pin!(shutdown);
        loop {
            let started = match self.tick().await {
                Ok(r) => r.started.len() + r.skipped.len(),
                Err(e) => {
                    tracing::error!(error = %e, "scheduler tick failed");
                    0
                }
            };
            let now = self.inner.clock.now();
            let next = self
                .inner
                .store
                .next_due_at(self.inner.config.kind)
                .await
                .unwrap_or(None);
            let tick = self.inner.config.tick;
            let sleep = match next {
                Some(n) if n > now => (n - now).to_std().unwrap_or(tick).min(tick),
                // Due already: go again at once if the last tick made progress (more to claim),
                // else wait (a deferred catch-up, or another scheduler holds it).
                Some(_) if started > 0 => Duration::ZERO,
                _ => tick,
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = &mut shutdown => break,
            }
        }
        self.shutdown().await;
        Ok(())
    }
}

fn run_event(
    kind: &str,
    run_id: i64,
    task: &str,
    group: &Option<String>,
    extra: serde_json::Value,
) -> RunEvent {
    let mut payload = json!({
        "run_id": run_id.to_string(),
        "group": group,
        "run_kind": "task",
        "task": task,
    });
    if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    RunEvent {
        kind: kind.to_string(),
        payload,
    }
}

/// The first run of a schedule created (or resumed) at `now`: a `once` in the past is due at once.
fn first_run(schedule: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match schedule.to_parts().0 {
        ScheduleKind::Once => schedule
            .next_after(DateTime::<Utc>::MIN_UTC)
            .map(|t| t.max(now)),
        _ => schedule.next_after(now),
    }
}

fn schedule_of(task: &TaskRecord) -> Result<Schedule, SchedulerError> {
    let kind: ScheduleKind = task.schedule_kind.parse()?;
    Schedule::from_parts(kind, &task.schedule_value, &task.tz)
}

fn policy_of(task: &TaskRecord) -> TaskPolicy {
    serde_json::from_str(&task.policy).unwrap_or_else(|e| {
        tracing::warn!(task = %task.name, error = %e, "unreadable policy; using defaults");
        TaskPolicy::default()
    })
}
