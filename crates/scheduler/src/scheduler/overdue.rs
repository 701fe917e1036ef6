//! Overdue tasks: due, not claimed by any scheduler, past their grace; reported once, and resolved
//! when a run starts or the task is overdue no more.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};

use crate::error::SchedulerError;
use crate::report::{Notification, Severity, human_duration};

use super::{Scheduler, TickReport, policy_of};

impl Scheduler {
    /// The overdue check of a tick: reports the tasks newly overdue (into `report` too), and
    /// resolves the ones overdue no more.
    pub(super) async fn check_overdue(
        &self,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), SchedulerError> {
        let inner = &self.inner;
        let cfg = &inner.config;
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
        Ok(())
    }

    pub(super) async fn resolve_overdue(&self, name: &str, group: Option<String>, how: &str) {
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
}
