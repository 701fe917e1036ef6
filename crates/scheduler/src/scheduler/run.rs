//! Running a claimed run: `replace` and jitter, the start, a heartbeat each interval, the
//! timeout, and the end (recorded, reported, measured).

use std::hash::{Hash, Hasher};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_store::{ClaimedRun, RunOutcome};
use serde_json::json;

use crate::report::{Notification, Severity, human_duration};
use crate::runner::{Progress, RunRequest, RunResult};
use crate::spec::{Concurrency, RunnerSpec, TaskPolicy};

use super::{Active, Scheduler, policy_of, run_event};

impl Scheduler {
    pub(super) fn spawn_run(&self, claimed: ClaimedRun) {
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
        let took = (now - started).to_std().unwrap_or_default();
        self.blocker_ended(&task.id, run_id, took).await;
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

/// A fixed delay in `[0, jitter)` from the task and the instant (the same on every scheduler).
fn jitter_delay(task_id: &str, at: DateTime<Utc>, jitter: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    task_id.hash(&mut h);
    at.timestamp_micros().hash(&mut h);
    let ms = jitter.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
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
