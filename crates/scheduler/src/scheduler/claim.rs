//! A tick: claiming the due runs under the tasks' policies (concurrency, missed runs after
//! downtime) and starting them, then the overdue check (in `overdue`).

use chrono::{DateTime, TimeDelta, Utc};
use lookout_store::{Claim, DueTask, NewRun};

use crate::error::SchedulerError;
use crate::report::{Notification, Severity, human_duration};
use crate::spec::{Concurrency, Missed};

use super::blocked::BUSY;
use super::{Scheduler, SchedulerConfig, TickReport, policy_of, schedule_of};

/// How many missed instants are counted after downtime before giving up counting.
const MAX_MISSED_COUNT: usize = 100_000;

impl Scheduler {
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
                if reason == BUSY {
                    // Behind a run that is still going: one line, not one per period.
                    self.skipped_behind_a_run(&c).await;
                    continue;
                }
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
            self.started_again(&c).await;
            self.spawn_run(c);
        }
        self.check_blocked(now).await;
        self.check_overdue(now, &mut report).await?;
        match claim_error {
            Some(e) => Err(e.into()),
            None => Ok(report),
        }
    }
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
        skipped: busy.then(|| BUSY.into()),
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
