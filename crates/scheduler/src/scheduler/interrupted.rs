//! Interrupted runs: the ones a previous process left `running` (found at start), and the ones
//! stopped by a shutdown or by a replacing run.

use std::collections::HashMap;

use lookout_store::{RunOutcome, TaskRecord, TaskRun};
use serde_json::json;

use crate::error::SchedulerError;
use crate::report::{Notification, Severity, human_duration};

use super::{Active, Scheduler, run_event};

impl Scheduler {
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

    pub(super) async fn record_stopped(&self, a: &Active, why: &str) {
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
}
