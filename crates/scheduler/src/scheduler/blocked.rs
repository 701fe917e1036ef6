//! A `forbid` task held up by a run that does not end: one problem, not a stream of notices.
//!
//! The first run skipped behind a running one says so once ("⏭ hog: skipped, run #1 still
//! running since 10:00 UTC"); later skips behind the same run are recorded in the history and
//! counted, silently. Once the task's overdue grace passes from the first skipped instant with no
//! run started, one alert ("⏰ hog is overdue / stuck: run #1 running for 12m, 6 runs skipped"),
//! under the task's overdue key so it has the overdue alert's lifecycle. When the blocking run
//! ends, a summary of what it held up; when a run of the task starts again, the alert resolves
//! once.

use chrono::{DateTime, TimeDelta, Utc};
use lookout_store::ClaimedRun;

use crate::report::{Notification, Severity, human_duration};

use super::{Scheduler, policy_of};

/// The reason a `forbid` task's run is skipped behind a running one (stored in its history).
pub(super) const BUSY: &str = "the previous run is still running (concurrency = forbid)";

/// One task held up by a running run.
pub(super) struct Blocked {
    name: String,
    group: Option<String>,
    /// The run holding it up and when it started, when this scheduler runs it.
    blocker: Option<(i64, Option<DateTime<Utc>>)>,
    /// The instant of the first run skipped behind it.
    first_skipped_for: DateTime<Utc>,
    /// The task's overdue grace (its own, or the scheduler's).
    grace: TimeDelta,
    skipped: u32,
    /// The overdue alert was raised.
    alerted: bool,
}

impl Scheduler {
    /// A run of `c.task` skipped because one is still running: the one line for the first, a
    /// count for the rest.
    pub(super) async fn skipped_behind_a_run(&self, c: &ClaimedRun) {
        let blocker = self
            .inner
            .active
            .lock()
            .expect("active lock")
            .get(&c.task.id)
            .and_then(|runs| runs.first().map(|a| (a.run_id, a.started)));
        let first = {
            let mut blocked = self.inner.blocked.lock().expect("blocked lock");
            let entry = blocked.entry(c.task.id.clone()).or_insert_with(|| Blocked {
                name: c.task.name.clone(),
                group: c.task.group.clone(),
                blocker,
                first_skipped_for: c.scheduled_for,
                grace: TimeDelta::from_std(
                    policy_of(&c.task)
                        .overdue_grace
                        .unwrap_or(self.inner.config.overdue_grace),
                )
                .unwrap_or(TimeDelta::MAX),
                skipped: 0,
                alerted: false,
            });
            entry.skipped += 1;
            entry.skipped == 1
        };
        tracing::info!(task = %c.task.name, run_id = c.run_id, reason = BUSY, "run skipped");
        if !first {
            return;
        }
        let behind = match blocker {
            Some((id, Some(started))) => format!(
                "run #{id} still running since {}",
                started.format("%H:%M UTC")
            ),
            Some((id, None)) => format!("run #{id} still running"),
            None => "a run is still running (on another scheduler)".into(),
        };
        self.inner
            .reporter
            .notify(Notification {
                severity: Severity::Info,
                group: c.task.group.clone(),
                dedup_key: format!("task-run:{}:skipped", c.run_id),
                text: format!("⏭ {}: skipped, {behind}", c.task.name),
                resolves: false,
            })
            .await;
    }

    /// Raises the overdue alert of each held-up task whose grace has passed since its first
    /// skipped instant, once.
    pub(super) async fn check_blocked(&self, now: DateTime<Utc>) {
        let due: Vec<Notification> = {
            let mut blocked = self.inner.blocked.lock().expect("blocked lock");
            blocked
                .values_mut()
                .filter(|b| !b.alerted)
                .filter_map(|b| {
                    if now - b.first_skipped_for <= b.grace {
                        return None;
                    }
                    b.alerted = true;
                    // Held up by a run another scheduler runs (one store, several daemons):
                    // still stuck, said without what only that scheduler knows.
                    let blocker = match b.blocker {
                        Some((id, Some(s))) => format!(
                            "run #{id} running for {}",
                            human_duration((now - s).to_std().unwrap_or_default())
                        ),
                        Some((id, None)) => format!("run #{id} still running"),
                        None => "a run still running on another scheduler".into(),
                    };
                    Some(Notification {
                        severity: Severity::Critical,
                        group: b.group.clone(),
                        dedup_key: format!("task-overdue:{}", b.name),
                        text: format!(
                            "⏰ {} is overdue / stuck: {blocker}, {} run(s) skipped",
                            b.name, b.skipped
                        ),
                        resolves: false,
                    })
                })
                .collect()
        };
        for n in due {
            tracing::warn!(alert = %n.dedup_key, "task stuck behind a running run");
            self.inner.reporter.notify(n).await;
        }
    }

    /// The run `run_id` of `task_id` ended after `took`: a summary of what it held up.
    pub(super) async fn blocker_ended(
        &self,
        task_id: &str,
        run_id: i64,
        took: std::time::Duration,
    ) {
        let summary = {
            let mut blocked = self.inner.blocked.lock().expect("blocked lock");
            let Some(b) = blocked.get_mut(task_id) else {
                return;
            };
            if b.blocker.map(|(id, _)| id) != Some(run_id) {
                return;
            }
            b.blocker = None;
            let n = Notification {
                severity: Severity::Info,
                group: b.group.clone(),
                dedup_key: format!("task-run:{run_id}:held-up"),
                text: format!(
                    "⏭ {}: run #{run_id} ended after {}; {} run(s) were skipped behind it",
                    b.name,
                    human_duration(took),
                    b.skipped
                ),
                resolves: false,
            };
            // Nothing raised: nothing left to resolve.
            if !b.alerted {
                blocked.remove(task_id);
            }
            n
        };
        self.inner.reporter.notify(summary).await;
    }

    /// A run of `c.task` starts: a task held up flows again, and its alert resolves once.
    pub(super) async fn started_again(&self, c: &ClaimedRun) {
        let was = self
            .inner
            .blocked
            .lock()
            .expect("blocked lock")
            .remove(&c.task.id);
        if let Some(b) = was.filter(|b| b.alerted) {
            tracing::info!(task = %b.name, "task runs again after being held up");
            self.resolve_overdue(&b.name, b.group, "running again")
                .await;
        }
    }
}
