//! The scheduler: claims due runs, applies the policies, runs them, heartbeats, reports, records.

use std::collections::{HashMap, HashSet};

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lookout_store::{
    Claim, ClaimedRun, DueTask, NewRun, NewTask, OwnerKind, RunOutcome, TaskRecord, TaskRun,
    TaskStatus,
};

use crate::task_store::TaskStore;
use serde_json::json;

use crate::clock::Clock;
use crate::error::SchedulerError;
use crate::metrics::SchedulerMetrics;
use crate::report::{Notification, Reporter, RunEvent, Severity, human_duration};
use crate::runner::{Progress, RunRequest, RunResult, TaskRunner};
use crate::schedule::{Schedule, ScheduleKind};
use crate::spec::{Concurrency, Missed, RunnerSpec, TaskPolicy, TaskSpec};

/// How many missed instants are counted after downtime before giving up counting.
const MAX_MISSED_COUNT: usize = 100_000;

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

    /// At start: marks the runs this scheduler (by its `instance` name) left `running` as
    /// `interrupted`, and reports each ("⚠️ <task> was interrupted …"). Returns them.
    pub async fn recover(&self) -> Result<Vec<TaskRun>, SchedulerError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let runs = inner
            .store
            .interrupt_running_runs(
                inner.config.kind,
                &inner.config.instance,
                "interrupted: the scheduler stopped while the run was in progress",
                now,
            )
            .await?;
        if runs.is_empty() {
            return Ok(runs);
        }
        let tasks: HashMap<String, TaskRecord> = inner
            .store
            .list_tasks(inner.config.kind)
            .await?
            .into_iter()
            .map(|t| (t.id.clone(), t))
            .collect();
        for r in &runs {
            let (name, group) = tasks
                .get(&r.owner_id)
                .map(|t| (t.name.clone(), t.group.clone()))
                .unwrap_or_else(|| (r.owner_id.clone(), None));
            let since = r
                .started_at
                .map(|s| format!(" (started {})", s.to_rfc3339()))
                .unwrap_or_default();
            tracing::warn!(task = %name, run_id = r.id, "run left running by a previous process: interrupted");
            inner
                .metrics
                .finished(inner.config.kind.as_str(), "interrupted");
            inner
                .reporter
                .notify(Notification {
                    severity: Severity::Warning,
                    group: group.clone(),
                    dedup_key: format!("task-run:{}:finished", r.id),
                    text: format!(
                        "⚠️ {name} was interrupted: the scheduler stopped during its run{since}"
                    ),
                    resolves: false,
                })
                .await;
            inner
                .reporter
                .event(run_event(
                    "run_finished",
                    r.id,
                    &name,
                    &group,
                    json!({"outcome": "interrupted", "note": "the scheduler stopped during the run"}),
                ))
                .await;
        }
        Ok(runs)
    }

    /// One pass: claims due runs (policies applied), starts them, and checks for overdue tasks.
    pub async fn tick(&self) -> Result<TickReport, SchedulerError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let cfg = &inner.config;
        // A claim that fails (a full disk refuses writes) must not silence the overdue check:
        // that is when runs stop happening. The error is returned after it.
        let (claimed, claim_error) = match inner
            .store
            .claim_due_runs(cfg.kind, now, &cfg.instance, cfg.claim_limit, &mut |due| {
                decide(due, now, cfg)
            })
            .await
        {
            Ok(c) => (c, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let mut report = TickReport::default();
        for c in claimed {
            if let Some(reason) = &c.skipped {
                report.skipped.push(c.run_id);
                inner
                    .metrics
                    .finished(inner.config.kind.as_str(), "skipped");
                tracing::info!(task = %c.task.name, run_id = c.run_id, reason = %reason, "run skipped");
                inner
                    .reporter
                    .notify(Notification {
                        severity: Severity::Info,
                        group: c.task.group.clone(),
                        dedup_key: format!("task-run:{}:skipped", c.run_id),
                        text: format!("⏭ {} skipped: {reason}", c.task.name),
                        resolves: false,
                    })
                    .await;
                continue;
            }
            report.started.push(c.run_id);
            self.spawn_run(c);
        }
        // Overdue: due, unclaimed, past the grace.
        let due_unclaimed = inner.store.overdue_tasks(cfg.kind, now).await?;
        inner
            .metrics
            .due(cfg.kind.as_str(), due_unclaimed.len() as i64);
        let mut still: HashSet<String> = HashSet::new();
        for task in due_unclaimed {
            let grace = policy_of(&task).overdue_grace.unwrap_or(cfg.overdue_grace);
            let Some(next) = task.next_run else { continue };
            if now - next <= TimeDelta::from_std(grace).unwrap_or(TimeDelta::MAX) {
                continue;
            }
            // A run of it is going on (a catch-up after downtime works through its missed runs
            // one by one): it is queued behind its own run, not "never ran".
            let running = inner
                .active
                .lock()
                .expect("active lock")
                .get(&task.id)
                .is_some_and(|v| !v.is_empty());
            if running {
                continue;
            }
            still.insert(task.name.clone());
            {
                let mut overdue = inner.overdue.lock().expect("overdue lock");
                if overdue.contains_key(&task.name) {
                    continue;
                }
                overdue.insert(task.name.clone(), (next, task.group.clone()));
            }
            report.overdue.push(task.name.clone());
            tracing::warn!(task = %task.name, due = %next, "task overdue");
            inner
                .reporter
                .notify(Notification {
                    severity: Severity::Critical,
                    group: task.group.clone(),
                    dedup_key: format!("task-overdue:{}", task.name),
                    text: format!(
                        "⏰ {} is overdue: due at {}, not started after {}",
                        task.name,
                        next.to_rfc3339(),
                        human_duration((now - next).to_std().unwrap_or_default())
                    ),
                    resolves: false,
                })
                .await;
        }
        // Overdue no more without a run (skipped, paused, deleted, rescheduled): resolved too.
        let gone: Vec<(String, Option<String>)> = {
            let mut overdue = inner.overdue.lock().expect("overdue lock");
            let names: Vec<String> = overdue
                .keys()
                .filter(|n| !still.contains(*n))
                .cloned()
                .collect();
            names
                .into_iter()
                .filter_map(|n| overdue.remove(&n).map(|(_, g)| (n, g)))
                .collect()
        };
        for (name, group) in gone {
            self.resolve_overdue(&name, group, "no longer overdue")
                .await;
        }
        match claim_error {
            Some(e) => Err(e.into()),
            None => Ok(report),
        }
    }

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

    /// Stops every run in progress and records it `interrupted`.
    pub async fn shutdown(&self) {
        let all: Vec<Active> = {
            let mut active = self.inner.active.lock().expect("active lock");
            active.drain().flat_map(|(_, v)| v).collect()
        };
        for a in all {
            a.handle.abort();
            self.record_stopped(&a, "the scheduler stopped").await;
        }
    }

    async fn record_stopped(&self, a: &Active, why: &str) {
        let inner = &self.inner;
        let now = inner.clock.now();
        let elapsed = a
            .started
            .map(|s| (now - s).to_std().unwrap_or_default())
            .unwrap_or_default();
        match inner
            .store
            .finish_run(a.run_id, RunOutcome::Interrupted, Some(why), now)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(run_id = a.run_id, error = %e, "recording a stopped run");
            }
        }
        inner
            .metrics
            .finished(inner.config.kind.as_str(), "interrupted");
        inner
            .reporter
            .notify(Notification {
                severity: Severity::Warning,
                group: a.group.clone(),
                dedup_key: format!("task-run:{}:finished", a.run_id),
                text: format!(
                    "❌ {} interrupted after {}: {why}",
                    a.task,
                    human_duration(elapsed)
                ),
                resolves: false,
            })
            .await;
        inner
            .reporter
            .event(run_event(
                "run_finished",
                a.run_id,
                &a.task,
                &a.group,
                json!({"outcome": "interrupted", "note": why}),
            ))
            .await;
    }

    fn spawn_run(&self, claimed: ClaimedRun) {
        let policy = policy_of(&claimed.task);
        let this = self.clone();
        let task_id = claimed.task.id.clone();
        let run_id = claimed.run_id;
        // `replace`: stop this scheduler's runs of the task first.
        let replaced: Vec<Active> = if policy.concurrency == Concurrency::Replace {
            self.inner
                .active
                .lock()
                .expect("active lock")
                .remove(&task_id)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        // The run task waits for this to be registered before it starts (so that a run finishing at
        // once still finds its own entry to remove).
        let (registered_tx, registered_rx) = tokio::sync::oneshot::channel::<()>();
        let replaced_ids: Vec<i64> = replaced.iter().map(|a| a.run_id).collect();
        let handle = tokio::spawn(async move {
            for a in &replaced {
                a.handle.abort();
                this.record_stopped(a, &format!("replaced by run {run_id}"))
                    .await;
            }
            let _ = registered_rx.await;
            this.execute(claimed, policy).await;
        });
        if !replaced_ids.is_empty() {
            tracing::info!(run_id, replaced = ?replaced_ids, "replacing running runs");
        }
        let mut active = self.inner.active.lock().expect("active lock");
        active.entry(task_id).or_default().push(Active {
            run_id,
            task: String::new(),
            group: None,
            started: None,
            handle: handle.abort_handle(),
        });
        let _ = registered_tx.send(());
    }

    fn set_active_started(
        &self,
        task_id: &str,
        run_id: i64,
        name: &str,
        group: &Option<String>,
        at: DateTime<Utc>,
    ) {
        let mut active = self.inner.active.lock().expect("active lock");
        if let Some(a) = active
            .get_mut(task_id)
            .and_then(|v| v.iter_mut().find(|a| a.run_id == run_id))
        {
            a.task = name.to_string();
            a.group = group.clone();
            a.started = Some(at);
        }
    }

    fn remove_active(&self, task_id: &str, run_id: i64) {
        let mut active = self.inner.active.lock().expect("active lock");
        if let Some(v) = active.get_mut(task_id) {
            v.retain(|a| a.run_id != run_id);
            if v.is_empty() {
                active.remove(task_id);
            }
        }
    }

    async fn execute(&self, claimed: ClaimedRun, policy: TaskPolicy) {
        let inner = &self.inner;
        let task = &claimed.task;
        let run_id = claimed.run_id;
        let name = task.name.clone();
        let group = task.group.clone();
        if let Some(j) = policy.jitter.filter(|j| !j.is_zero()) {
            tokio::time::sleep(jitter_delay(&task.id, claimed.scheduled_for, j)).await;
        }
        let runner: RunnerSpec = match serde_json::from_str(&task.runner) {
            Ok(r) => r,
            Err(e) => {
                let msg = format!("unreadable runner spec: {e}");
                self.finish(
                    &claimed,
                    inner.clock.now(),
                    RunResult::failed(msg),
                    false,
                    None,
                )
                .await;
                return;
            }
        };
        let started = inner.clock.now();
        self.set_active_started(&task.id, run_id, &name, &group, started);
        if let Err(e) = inner.store.start_run(run_id, started).await {
            tracing::error!(run_id, error = %e, "recording a run's start");
        }
        let lag = (started - claimed.scheduled_for)
            .to_std()
            .unwrap_or_default();
        inner.metrics.started(inner.config.kind.as_str(), lag);
        tracing::info!(task = %name, run_id, lag_ms = lag.as_millis() as u64, "run starting");
        // An overdue task whose overdue run (or a later one) starts is resolved.
        let resolved = {
            let mut overdue = inner.overdue.lock().expect("overdue lock");
            match overdue.get(&name) {
                Some((due, _)) if *due <= claimed.scheduled_for => overdue.remove(&name),
                _ => None,
            }
        };
        if let Some((_, g)) = resolved {
            self.resolve_overdue(&name, g, "running again").await;
        }
        inner
            .reporter
            .notify(Notification {
                severity: Severity::Info,
                group: group.clone(),
                dedup_key: format!("task-run:{run_id}:started"),
                text: format!("⏱ {name} starting"),
                resolves: false,
            })
            .await;
        inner
            .reporter
            .event(run_event("run_started", run_id, &name, &group, json!({})))
            .await;

        let progress = Progress::new();
        let request = RunRequest {
            run_id,
            task: name.clone(),
            group: group.clone(),
            scheduled_for: claimed.scheduled_for,
            runner,
        };
        // A boxed future (async_trait): dropping it below really drops the runner's work.
        let mut run = inner.runner.run(request, progress.clone());
        let timeout = async {
            match policy.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(timeout);
        let every = policy
            .heartbeat
            .unwrap_or(inner.config.heartbeat_interval)
            .max(Duration::from_millis(10));
        let mut beats = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beat = 0u64;
        let result = loop {
            tokio::select! {
                biased;
                r = &mut run => break Some(r),
                _ = &mut timeout => break None,
                _ = beats.tick() => {
                    beat += 1;
                    self.heartbeat(run_id, &name, &group, started, &progress, beat).await;
                }
            }
        };
        // Dropping the run's future stops its work (kills the process group / the container).
        drop(run);
        let now = inner.clock.now();
        match result {
            Some(r) => self.finish(&claimed, now, r, false, Some(started)).await,
            None => {
                let limit = policy.timeout.unwrap_or_default();
                let r = RunResult {
                    success: false,
                    message: format!("timed out after {} (limit)", human_duration(limit)),
                    output: progress.last_line().unwrap_or_default(),
                };
                self.finish(&claimed, now, r, true, Some(started)).await
            }
        }
        self.remove_active(&task.id, run_id);
    }

    async fn resolve_overdue(&self, name: &str, group: Option<String>, how: &str) {
        self.inner
            .reporter
            .notify(Notification {
                severity: Severity::Info,
                group,
                dedup_key: format!("task-overdue:{name}"),
                text: format!("✅ {name} is {how} (was overdue)"),
                resolves: true,
            })
            .await;
    }

    async fn heartbeat(
        &self,
        run_id: i64,
        name: &str,
        group: &Option<String>,
        started: DateTime<Utc>,
        progress: &Progress,
        beat: u64,
    ) {
        let inner = &self.inner;
        let elapsed = (inner.clock.now() - started).to_std().unwrap_or_default();
        let liveness = progress.liveness(Duration::from_secs(5)).await;
        let mut text = format!(
            "⏱ {name} still running ({} elapsed",
            human_duration(elapsed)
        );
        if let Some(l) = &liveness {
            text.push_str(&format!(", {l}"));
        }
        text.push(')');
        let last = progress.last_line();
        if let Some(l) = &last {
            text.push_str(&format!(" — last output: {l}"));
        }
        tracing::debug!(task = %name, run_id, beat, "run heartbeat");
        inner
            .reporter
            .notify(Notification {
                severity: Severity::Info,
                group: group.clone(),
                dedup_key: format!("task-run:{run_id}:heartbeat:{beat}"),
                text,
                resolves: false,
            })
            .await;
        let mut extra = json!({"elapsed_s": elapsed.as_secs()});
        if let Some(p) = progress.progress().or(last) {
            extra["progress"] = json!(p);
        }
        if let Some(c) = progress.container() {
            extra["container"] = json!(c);
        }
        if let Some(l) = liveness {
            extra["note"] = json!(l);
        }
        inner
            .reporter
            .event(run_event("run_heartbeat", run_id, name, group, extra))
            .await;
    }

    async fn finish(
        &self,
        claimed: &ClaimedRun,
        now: DateTime<Utc>,
        r: RunResult,
        timed_out: bool,
        started: Option<DateTime<Utc>>,
    ) {
        let inner = &self.inner;
        let name = &claimed.task.name;
        let group = &claimed.task.group;
        let run_id = claimed.run_id;
        let outcome = if timed_out {
            RunOutcome::Timeout
        } else if r.success {
            RunOutcome::Ok
        } else {
            RunOutcome::Failed
        };
        let summary = if r.output.is_empty() {
            r.message.clone()
        } else {
            r.output.clone()
        };
        match inner
            .store
            .finish_run(run_id, outcome, Some(&summary), now)
            .await
        {
            Ok(true) => {}
            // Already ended (replaced, or marked interrupted by a shutdown): say nothing more.
            Ok(false) => return,
            Err(e) => tracing::error!(run_id, error = %e, "recording a run's end"),
        }
        let elapsed = started
            .map(|s| (now - s).to_std().unwrap_or_default())
            .unwrap_or_default();
        inner
            .metrics
            .finished(inner.config.kind.as_str(), outcome.as_str());
        inner.metrics.duration(inner.config.kind.as_str(), elapsed);
        let took = human_duration(elapsed);
        let (severity, text) = match outcome {
            RunOutcome::Ok => (
                Severity::Info,
                format!("✅ {name} finished in {took}: {}", r.message),
            ),
            RunOutcome::Timeout => (
                Severity::Warning,
                format!("❌ {name} timed out after {took} and was stopped"),
            ),
            _ => (
                Severity::Warning,
                format!("❌ {name} failed after {took}: {}", r.message),
            ),
        };
        tracing::info!(task = %name, run_id, outcome = outcome.as_str(), elapsed_s = elapsed.as_secs(), "run finished");
        inner
            .reporter
            .notify(Notification {
                severity,
                group: group.clone(),
                dedup_key: format!("task-run:{run_id}:finished"),
                text,
                resolves: false,
            })
            .await;
        let mut extra = json!({"outcome": outcome.as_str(), "elapsed_s": elapsed.as_secs()});
        if !r.success {
            extra["error"] = json!(r.message);
        }
        inner
            .reporter
            .event(run_event("run_finished", run_id, name, group, extra))
            .await;
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

/// A fixed delay in `[0, jitter)` from the task and the instant (the same on every scheduler).
fn jitter_delay(task_id: &str, at: DateTime<Utc>, jitter: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    task_id.hash(&mut h);
    at.timestamp_micros().hash(&mut h);
    let ms = jitter.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
}

/// The policy decision for one due task (runs inside the claim transaction; no I/O).
fn decide(due: &DueTask, now: DateTime<Utc>, cfg: &SchedulerConfig) -> Option<Claim> {
    let task = &due.task;
    let first = task.next_run?;
    let schedule = match schedule_of(task) {
        Ok(s) => s,
        Err(e) => {
            // Unreadable: stop it, and say so in its history.
            return Some(Claim {
                next_run: None,
                runs: vec![NewRun {
                    scheduled_for: first,
                    skipped: Some(format!("cannot read the schedule: {e}")),
                }],
            });
        }
    };
    let policy = policy_of(task);
    // Every instant due by now.
    let mut instants = vec![first];
    let mut next = schedule.next_after(first);
    while let Some(n) = next {
        if n > now || instants.len() >= MAX_MISSED_COUNT {
            break;
        }
        instants.push(n);
        next = schedule.next_after(n);
    }
    // After MAX_MISSED_COUNT, jump to the first run after now.
    if next.is_some_and(|n| n <= now) {
        next = schedule.next_after(now);
    }
    let tolerance = TimeDelta::from_std(cfg.on_time_tolerance).unwrap_or(TimeDelta::MAX);
    let late: Vec<DateTime<Utc>> = instants
        .iter()
        .copied()
        .filter(|t| now - *t > tolerance)
        .collect();
    let on_time: Option<DateTime<Utc>> = instants.iter().copied().rfind(|t| now - *t <= tolerance);
    let busy = due.running > 0 && policy.concurrency == Concurrency::Forbid;
    let fmt = |t: DateTime<Utc>| t.to_rfc3339();
    let run_or_skip = |at: DateTime<Utc>| NewRun {
        scheduled_for: at,
        skipped: busy.then(|| "the previous run is still running (concurrency = forbid)".into()),
    };

    if late.is_empty() {
        let at = on_time.unwrap_or(first);
        return Some(Claim {
            next_run: next,
            runs: vec![run_or_skip(at)],
        });
    }
    let n = late.len();
    let span = if n == 1 {
        format!("due at {}", fmt(late[0]))
    } else {
        format!("due from {} to {}", fmt(late[0]), fmt(late[n - 1]))
    };
    match policy.missed {
        Missed::Skip => {
            let mut runs = vec![NewRun {
                scheduled_for: late[0],
                skipped: Some(format!(
                    "{n} missed run(s) {span}, while no scheduler ran (missed = skip)"
                )),
            }];
            if let Some(at) = on_time {
                runs.push(run_or_skip(at));
            }
            Some(Claim {
                next_run: next,
                runs,
            })
        }
        Missed::RunOnce => {
            let last = on_time.unwrap_or(late[n - 1]);
            let mut runs = Vec::new();
            if instants.len() > 1 {
                runs.push(NewRun {
                    scheduled_for: instants[0],
                    skipped: Some(format!(
                        "{} missed run(s) {span} folded into one run at {} (missed = run_once)",
                        n,
                        fmt(last)
                    )),
                });
            }
            runs.push(run_or_skip(last));
            Some(Claim {
                next_run: next,
                runs,
            })
        }
        Missed::CatchUp => {
            let deadline = TimeDelta::from_std(
                policy
                    .starting_deadline
                    .unwrap_or(cfg.default_starting_deadline),
            )
            .unwrap_or(TimeDelta::MAX);
            let (too_old, within): (Vec<_>, Vec<_>) =
                late.iter().copied().partition(|t| now - *t > deadline);
            let mut runs = Vec::new();
            if !too_old.is_empty() {
                runs.push(NewRun {
                    scheduled_for: too_old[0],
                    skipped: Some(format!(
                        "{} missed run(s) older than the starting deadline ({}) skipped",
                        too_old.len(),
                        human_duration(deadline.to_std().unwrap_or_default())
                    )),
                });
            }
            let Some(&oldest) = within.first() else {
                if let Some(at) = on_time {
                    runs.push(run_or_skip(at));
                }
                return Some(Claim {
                    next_run: next,
                    runs,
                });
            };
            if busy {
                // Wait for the running one to end; the missed run stays due (unless old ones were
                // just skipped: then record those and resume from the oldest still within).
                if too_old.is_empty() {
                    return None;
                }
                return Some(Claim {
                    next_run: Some(oldest),
                    runs,
                });
            }
            runs.push(NewRun {
                scheduled_for: oldest,
                skipped: None,
            });
            // One at a time: the next instant stays due and is claimed by the next tick.
            let after = instants.iter().copied().find(|t| *t > oldest).or(next);
            Some(Claim {
                next_run: after,
                runs,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_bounded_and_stable() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let j = Duration::from_secs(30);
        let a = jitter_delay("t", at, j);
        assert!(a < j);
        assert_eq!(a, jitter_delay("t", at, j));
    }
}
