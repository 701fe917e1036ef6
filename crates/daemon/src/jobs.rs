//! The scheduler in lookoutd: host jobs from `[[jobs]]`, agent tasks from the API, both reported
//! through the outbox (notifications) and the event log (`run_*` events), both shown in `/status`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lookout_common::Clock;
use lookout_notify::alerts::{Alert, AlertKey, Alerts, Dependency};
use lookout_notify::{Message, Outbox};
use lookout_scheduler::{
    DockerRunner, Notification, OwnerKind, Reporter, RunEvent, RunnerSpec, Runners, Scheduler,
    SchedulerConfig, SchedulerError, SystemClock, TaskSpec,
};
use lookout_status_collect::host::{TaskRow, TaskSource};
use lookout_store::{NewEvent, Store};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::folding::{DOCKER_ENGINE, GATEWAY, rule};
use crate::http::{ApiError, AppState};

/// Notifications to the outbox, events to the log.
pub(crate) struct OutboxReporter {
    outbox: Arc<Outbox>,
    alerts: Arc<Alerts>,
    store: Store,
    /// Which tasks need the gateway.
    gateway: lookout_config::GatewayConfig,
    clock: Arc<dyn Clock>,
}

/// The run and step of a scheduler's run message (`task-run:<run id>:<step>`).
fn run_step(key: &AlertKey) -> Option<(i64, &str)> {
    if key.rule != rule::TASK_RUN {
        return None;
    }
    let (run, step) = key.subject.split_once(':')?;
    Some((run.parse().ok()?, step))
}

impl OutboxReporter {
    pub(crate) fn new(
        outbox: Arc<Outbox>,
        alerts: Arc<Alerts>,
        store: Store,
        gateway: lookout_config::GatewayConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        OutboxReporter {
            outbox,
            alerts,
            store,
            gateway,
            clock,
        }
    }

    /// The task of run `run_id`: its name, and whether it runs in a container.
    async fn task_of(&self, run_id: i64) -> Option<(String, bool)> {
        let run = self.store.get_run(run_id).await.ok()??;
        let task = self
            .store
            .list_tasks(run.owner_kind)
            .await
            .ok()?
            .into_iter()
            .find(|t| t.id == run.owner_id)?;
        let runner: Value = serde_json::from_str(&task.runner).ok()?;
        Some((task.name, runner["kind"] == "container"))
    }

    /// What a task depends on: the Docker engine when it runs in a container, the gateway when
    /// `gateway.needed_by` names it.
    fn depends_on(&self, task: &str, container: bool) -> Vec<Dependency> {
        let mut out = Vec::new();
        if container {
            out.push(DOCKER_ENGINE);
        }
        if self.gateway.needed_by(task) {
            out.push(GATEWAY);
        }
        out
    }

    /// Root-cause folding (the fold table, `folding.rs`): while a cause of a task fires, its
    /// failure is not sent on its own — it becomes a `task-failed` alert folded under the cause's
    /// (listed in `lookout alerts list`, sent on its own only if it outlasts the cause). Its
    /// other run messages are dropped too when the rule says so (a container task while the
    /// engine is down), else sent (a task that needs the gateway may get through). Returns
    /// whether `n` was handled.
    async fn folded(&self, n: &Notification, run: i64, step: &str) -> bool {
        // Reads of the alerts table on every run message (one per cause of the table); the task is
        // looked up only while a cause fires.
        let firing = match self.alerts.firing_causes(rule::TASK_FAILED).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the causes of task failures; not folding");
                return false;
            }
        };
        if firing.is_empty() {
            return false;
        }
        let Some((task, container)) = self.task_of(run).await else {
            return false;
        };
        let depends_on = self.depends_on(&task, container);
        let Some(fold) = firing
            .into_iter()
            .find(|r| r.applies(rule::TASK_FAILED, &depends_on))
        else {
            return false;
        };
        let failure = step == "finished" && n.severity != lookout_scheduler::Severity::Info;
        if !failure && !fold.drops_messages {
            return false;
        }
        if failure {
            let mut a = Alert::keyed(
                AlertKey::new(rule::TASK_FAILED, task.clone()),
                lookout_notify::Severity::Warning,
                n.text.clone(),
            );
            a.depends_on = depends_on;
            if let Some(g) = &n.group {
                a = a.group(g.clone());
            }
            if let Err(e) = self.alerts.fire(a, self.clock.now()).await {
                tracing::error!(error = %e, %task, "cannot record a folded task failure");
            }
        } else {
            tracing::debug!(%task, cause = %fold.cause, text = %n.text, "folded under its cause's alert");
        }
        true
    }

    /// An overdue task is a condition with a lifecycle.
    async fn overdue(&self, key: AlertKey, n: &Notification) {
        let now = self.clock.now();
        let done = if n.resolves {
            self.alerts.resolve_key(&key, now).await
        } else {
            // Overdue because the gateway is down: folded while the gateway's alert fires.
            let needs_gateway = self.gateway.needed_by(&key.subject);
            let mut a = Alert::keyed(
                key.clone(),
                lookout_notify::Severity::Critical,
                n.text.clone(),
            );
            if needs_gateway {
                a = a.depends_on(GATEWAY);
            }
            if let Some(g) = &n.group {
                a = a.group(g.clone());
            }
            self.alerts.fire(a, now).await
        };
        if let Err(e) = done {
            tracing::error!(error = %e, alert = %key, "cannot record an overdue alert");
        }
    }
}

#[async_trait::async_trait]
impl Reporter for OutboxReporter {
    async fn notify(&self, n: Notification) {
        // An overdue task is a condition with a lifecycle; the rest are one-off run messages.
        let key = AlertKey::parse(&n.dedup_key);
        if let Some(k) = key.clone().filter(|k| k.rule == rule::TASK_OVERDUE) {
            self.overdue(k, &n).await;
            return;
        }
        let run = key.as_ref().and_then(run_step);
        if let Some((run, step)) = run {
            if self.folded(&n, run, step).await {
                return;
            }
            // A task that failed while folded and now succeeds: its folded failure is over.
            if step == "finished" && n.severity == lookout_scheduler::Severity::Info {
                if let Some((task, _)) = self.task_of(run).await {
                    let _ = self
                        .alerts
                        .resolve_key(&AlertKey::new(rule::TASK_FAILED, task), self.clock.now())
                        .await;
                }
            }
        }
        let severity = match n.severity {
            lookout_scheduler::Severity::Info => lookout_notify::Severity::Info,
            lookout_scheduler::Severity::Warning => lookout_notify::Severity::Warning,
            lookout_scheduler::Severity::Critical => lookout_notify::Severity::Critical,
        };
        let mut m = Message::new(severity, n.text.clone()).key(n.dedup_key.clone());
        if let Some(g) = n.group {
            m = m.group(g);
        }
        if let Err(e) = self.outbox.send(m).await {
            tracing::error!(error = %e, key = %n.dedup_key, text = %n.text, "cannot store a task notification");
        }
    }

    async fn event(&self, e: RunEvent) {
        let subject = e.payload.get("run_id").map(|r| {
            r.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| r.to_string())
        });
        // Marked as lookoutd's own: the host-run follower leaves these runs to the scheduler,
        // which says "still running" for them itself.
        let mut payload = e.payload;
        if let Some(p) = payload.as_object_mut() {
            p.insert(
                "source".into(),
                serde_json::Value::from(crate::host_runs::OWN_SOURCE),
            );
        }
        let mut ev = NewEvent::new(&e.kind, payload);
        if let Some(s) = subject {
            ev = ev.with_subject(s);
        }
        if let Err(err) = self.store.append_events(&[ev]).await {
            tracing::error!(error = %err, kind = %e.kind, "cannot store a run event");
        }
    }
}

/// The two schedulers: agent tasks (added through the API) and host jobs (from `[[jobs]]`).
#[derive(Clone)]
pub(crate) struct Schedulers {
    pub(crate) tasks: Scheduler,
    pub(crate) host_jobs: Scheduler,
}

fn instance() -> String {
    // Stable across restarts and distinct per host: runs this host left `running` are its own.
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "lookoutd".into())
}

impl Schedulers {
    /// Builds both; host jobs of `config` are added (or updated) by name.
    pub(crate) async fn start(
        store: &Store,
        outbox: Arc<Outbox>,
        alerts: Arc<Alerts>,
        config: &lookout_config::Config,
    ) -> Schedulers {
        let mut runners = Runners::new();
        match bollard::Docker::connect_with_unix(
            &config.docker.socket,
            120,
            bollard::API_DEFAULT_VERSION,
        ) {
            Ok(d) => runners = runners.with_docker(DockerRunner::new(d)),
            Err(e) => {
                tracing::info!(socket = %config.docker.socket, error = %e, "no Docker engine: container jobs will fail until one is there")
            }
        }
        let runners = Arc::new(runners);
        let reporter = Arc::new(OutboxReporter::new(
            outbox,
            alerts,
            store.clone(),
            config.gateway.clone(),
            Arc::new(lookout_common::SystemClock),
        ));
        let metrics = lookout_scheduler::SchedulerMetrics::default();
        let make = |kind| {
            let mut c = SchedulerConfig::new(&instance(), kind);
            c.heartbeat_interval = config.thresholds.heartbeat_interval;
            c.overdue_grace = config.thresholds.overdue_grace;
            // A run starting later than this after its time was missed (lookoutd was down): the
            // missed-run policy decides, and says so. Never more lenient than the overdue grace.
            c.on_time_tolerance = c.on_time_tolerance.min(config.thresholds.overdue_grace);
            Scheduler::new(
                Arc::new(store.clone()),
                Arc::new(SystemClock),
                runners.clone(),
                reporter.clone(),
                c,
            )
            .with_metrics(metrics.clone())
        };
        let s = Schedulers {
            tasks: make(OwnerKind::Task),
            host_jobs: make(OwnerKind::HostJob),
        };
        for job in &config.jobs {
            let added = match crate::checks::task_spec(job) {
                Ok(spec) => s.host_jobs.upsert_task(&spec).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = added {
                tracing::error!(job = %job.name, error = %e, "cannot schedule a [[jobs]] entry");
            }
        }
        s
    }

    /// Overdue alerts are decided by the scheduler, whose memory of them ends with the process: an
    /// overdue alert still firing in the store whose task is no longer overdue (it ran, was
    /// removed, or lookoutd was down when it cleared) gets its one "resolved" here, at start.
    pub(crate) async fn resolve_cleared_overdue(
        &self,
        store: &Store,
        alerts: &Alerts,
        grace: std::time::Duration,
    ) -> Result<usize, lookout_store::StoreError> {
        let now = chrono::Utc::now();
        let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let mut tasks = store.list_tasks(OwnerKind::Task).await?;
        tasks.extend(store.list_tasks(OwnerKind::HostJob).await?);
        let mut resolved = 0;
        for a in store.alerts_firing(rule::TASK_OVERDUE).await? {
            let still = tasks
                .iter()
                .any(|t| t.name == a.subject && t.next_run.is_some_and(|n| now - n > grace));
            if !still {
                alerts.resolve_key(&AlertKey::of(&a), now).await?;
                resolved += 1;
            }
        }
        Ok(resolved)
    }

    /// Runs both until `shutdown` resolves; runs in progress are then recorded `interrupted`.
    /// The handles end once both have stopped their runs and recorded them `interrupted`.
    pub(crate) fn spawn(
        &self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        [self.tasks.clone(), self.host_jobs.clone()]
            .into_iter()
            .map(|s| {
                let mut rx = shutdown.clone();
                tokio::spawn(async move {
                    let stop = async move {
                        let _ = rx.wait_for(|v| *v).await;
                    };
                    if let Err(e) = s.run_until(stop).await {
                        tracing::error!(error = %e, "the scheduler stopped");
                    }
                })
            })
            .collect()
    }

    /// The scheduler holding the task or host job `name`.
    pub(crate) async fn owner(&self, name: &str) -> Result<&Scheduler, ApiError> {
        for s in [&self.tasks, &self.host_jobs] {
            let list = s.list_tasks().await.map_err(internal)?;
            if list.iter().any(|t| t.name == name) {
                return Ok(s);
            }
        }
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no task or host job named `{name}`"),
        )
        .with("field", json!("name")))
    }
}

fn internal(e: SchedulerError) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn invalid(e: SchedulerError) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
}

fn schedulers(state: &AppState) -> Result<&Schedulers, ApiError> {
    state.schedulers().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the scheduler is not running",
        )
    })
}

/// `GET /api/tasks`: tasks and host jobs.
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let s = schedulers(&state)?;
    let mut all = s.tasks.list_tasks().await.map_err(internal)?;
    all.extend(s.host_jobs.list_tasks().await.map_err(internal)?);
    Ok(Json(json!({ "tasks": all })))
}

/// The body of `POST /api/tasks`, as `lookout tasks add` sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddTask {
    name: String,
    group: String,
    cron: Option<String>,
    every: Option<String>,
    at: Option<String>,
    #[serde(default = "utc")]
    tz: String,
    command: Option<String>,
    image: Option<String>,
}

fn utc() -> String {
    "UTC".into()
}

/// `POST /api/tasks`: adds (or updates, by name) an agent task.
pub(crate) async fn add(
    State(state): State<AppState>,
    body: Result<Json<AddTask>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let schedule = match (&b.cron, &b.every, &b.at) {
        (Some(c), None, None) => c.clone(),
        (None, Some(e), None) => format!("every {e}"),
        (None, None, Some(a)) => format!("at {a}"),
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "give exactly one of `cron`, `every`, `at`",
            )
            .with("field", json!("schedule")));
        }
    };
    let runner = match (&b.command, &b.image) {
        (Some(c), None) => RunnerSpec::shell(c),
        (None, Some(i)) => RunnerSpec::Container {
            image: i.clone(),
            command: Vec::new(),
            env: Default::default(),
        },
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "give exactly one of `command`, `image`",
            )
            .with("field", json!("runner")));
        }
    };
    let spec = TaskSpec {
        name: b.name,
        group: Some(b.group),
        schedule,
        tz: b.tz,
        runner,
        policy: Default::default(),
    };
    let s = schedulers(&state)?;
    let task = s.tasks.upsert_task(&spec).await.map_err(invalid)?;
    Ok((StatusCode::CREATED, Json(json!({ "task": task }))))
}

/// `POST /api/tasks/{name}/pause`.
pub(crate) async fn pause(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = schedulers(&state)?.owner(&name).await?;
    s.pause(&name).await.map_err(invalid)?;
    Ok(Json(json!({ "paused": name })))
}

/// `POST /api/tasks/{name}/resume`.
pub(crate) async fn resume(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = schedulers(&state)?.owner(&name).await?;
    let task = s.resume(&name).await.map_err(invalid)?;
    Ok(Json(json!({ "task": task })))
}

/// `POST /api/tasks/{name}/run`: a run now, beside the schedule.
pub(crate) async fn run_now(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = schedulers(&state)?.owner(&name).await?;
    let run_id = s.run_now(&name).await.map_err(invalid)?;
    Ok(Json(json!({ "run_id": run_id })))
}

/// `GET /api/tasks/{name}/history`.
pub(crate) async fn history(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = schedulers(&state)?.owner(&name).await?;
    let runs = s.history(&name, 50).await.map_err(internal)?;
    Ok(Json(json!({ "runs": runs })))
}

/// `/status`'s `tasks` and `host_jobs`, from the schedulers' tables.
pub(crate) struct SchedulerTasks {
    pub(crate) store: Store,
}

async fn rows(store: &Store, kind: OwnerKind) -> Result<Vec<TaskRow>, String> {
    let (list, running) = tokio::try_join!(store.list_tasks(kind), store.running_runs(kind))
        .map_err(|e| e.to_string())?;
    let running_tasks: std::collections::HashSet<String> =
        running.into_iter().map(|r| r.owner_id).collect();
    Ok(list
        .into_iter()
        .map(|t| TaskRow {
            running: running_tasks.contains(&t.id),
            id: t.id,
            name: t.name,
            group: t.group,
            schedule_type: t.schedule_kind,
            schedule_value: t.schedule_value,
            tz: t.tz,
            status: serde_json::to_value(t.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            next_run: t.next_run,
            last_run: t.last_run,
            last_result: t.last_result,
        })
        .collect())
}

#[async_trait::async_trait]
impl TaskSource for SchedulerTasks {
    async fn tasks(&self) -> Result<Vec<TaskRow>, String> {
        rows(&self.store, OwnerKind::Task).await
    }
    async fn host_jobs(&self) -> Result<Vec<TaskRow>, String> {
        rows(&self.store, OwnerKind::HostJob).await
    }
}
