//! `queue`, `groups`, `tasks`, `host_jobs` and `watchdog`: what the host knows in memory (through
//! [`StatusDeps`](crate::StatusDeps)) and what the scheduler and the watchdog know (through
//! [`TaskSource`] and [`WatchdogSource`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::{CollectError, Collected, Collector, Finding, StatusDeps, human_age};

/// The host's run queue, as the seed's `GroupQueue` held it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueSnapshot {
    /// Containers running agents now.
    pub active_containers: u32,
    /// The concurrency limit, if any.
    pub max_concurrent: Option<u32>,
    /// Groups with work waiting for a free slot.
    pub groups_waiting: u32,
    /// Each group's queue.
    pub per_group: BTreeMap<String, GroupQueue>,
}

/// One group's queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupQueue {
    /// A run of this group is active.
    pub active: bool,
    /// The active run is a task's.
    pub is_task: bool,
    /// Messages wait for a run.
    pub pending_messages: bool,
    /// Tasks wait for a run.
    pub pending_tasks: u32,
}

/// Groups and sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupsSnapshot {
    /// Workspaces (groups) the host serves.
    pub total: u32,
    /// Agent sessions open now.
    pub active_sessions: u32,
}

/// `queue`: from [`StatusDeps::queue`](crate::StatusDeps::queue).
///
/// Verdict: at the concurrency limit with groups waiting **warns** ("queue at its concurrency limit
/// (10 of 10) with 3 group(s) waiting"); above the limit **fails**.
pub struct QueueSection {
    /// What the host knows.
    pub deps: Arc<dyn StatusDeps>,
}

#[async_trait::async_trait]
impl Collector for QueueSection {
    fn name(&self) -> &'static str {
        "queue"
    }

    async fn collect(&self) -> Result<Collected, CollectError> {
        let Some(q) = self.deps.queue().await? else {
            return Ok(Collected::new(json!({"reported": false})));
        };
        let mut c = Collected::new(serde_json::to_value(&q).map_err(|e| e.to_string())?);
        if let Some(max) = q.max_concurrent {
            if q.active_containers > max {
                c = c.with(Finding::fail(format!(
                    "{} active containers, above the concurrency limit of {max}",
                    q.active_containers
                )));
            } else if q.active_containers == max && q.groups_waiting > 0 {
                c = c.with(Finding::warn(format!(
                    "queue at its concurrency limit ({} of {max}) with {} group(s) waiting",
                    q.active_containers, q.groups_waiting
                )));
            }
        }
        Ok(c)
    }
}

/// `groups`: from [`StatusDeps::groups`](crate::StatusDeps::groups). Data only.
pub struct GroupsSection {
    /// What the host knows.
    pub deps: Arc<dyn StatusDeps>,
}

#[async_trait::async_trait]
impl Collector for GroupsSection {
    fn name(&self) -> &'static str {
        "groups"
    }

    async fn collect(&self) -> Result<Collected, CollectError> {
        Ok(Collected::new(match self.deps.groups().await? {
            Some(g) => serde_json::to_value(g).map_err(|e| e.to_string())?,
            None => json!({"reported": false}),
        }))
    }
}

/// One scheduled task or host job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskRow {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its group.
    pub group: Option<String>,
    /// `cron`, `interval` or `once`.
    pub schedule_type: String,
    /// The expression, interval or instant.
    pub schedule_value: String,
    /// The time zone of a cron schedule.
    pub tz: String,
    /// `active`, `paused` or `completed`.
    pub status: String,
    /// When it runs next.
    pub next_run: Option<DateTime<Utc>>,
    /// When it last ran.
    pub last_run: Option<DateTime<Utc>>,
    /// How its last run ended (`ok`, `failed`, `timeout`, `interrupted`, …).
    pub last_result: Option<String>,
    /// A run is going on now.
    pub running: bool,
}

/// Where task and host-job rows come from (the scheduler's tables, in the daemon).
#[async_trait::async_trait]
pub trait TaskSource: Send + Sync {
    /// Scheduled agent tasks.
    async fn tasks(&self) -> Result<Vec<TaskRow>, String>;
    /// Scheduled host jobs.
    async fn host_jobs(&self) -> Result<Vec<TaskRow>, String>;
}

/// Which list a [`TasksSection`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskList {
    /// `tasks`.
    Tasks,
    /// `host_jobs`.
    HostJobs,
}

/// `tasks` or `host_jobs`: one row each, with `overdue` where `next_run` is past by more than
/// `grace` and no run is going on.
///
/// Verdict: an overdue task **fails** ("task daily-report overdue by 3h"); a last run that failed,
/// timed out or was interrupted **warns** ("task backup-db: last run failed").
pub struct TasksSection {
    /// The rows.
    pub source: Arc<dyn TaskSource>,
    /// Which list.
    pub list: TaskList,
    /// How late a run may be before it is overdue.
    pub grace: Duration,
}

#[async_trait::async_trait]
impl Collector for TasksSection {
    fn name(&self) -> &'static str {
        match self.list {
            TaskList::Tasks => "tasks",
            TaskList::HostJobs => "host_jobs",
        }
    }

    async fn collect(&self) -> Result<Collected, CollectError> {
        let (rows, what) = match self.list {
            TaskList::Tasks => (self.source.tasks().await?, "task"),
            TaskList::HostJobs => (self.source.host_jobs().await?, "host job"),
        };
        let now = Utc::now();
        let grace = chrono::Duration::from_std(self.grace).unwrap_or(chrono::Duration::MAX);
        let mut findings = Vec::new();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let late = r
                .next_run
                .filter(|_| r.status == "active" && !r.running)
                .map(|n| now - n)
                .filter(|late| *late > grace);
            if let Some(late) = late {
                findings.push(Finding::fail(format!(
                    "{what} {} overdue by {}",
                    r.name,
                    human_age(late)
                )));
            }
            if let Some(res @ ("failed" | "timeout" | "interrupted")) = r.last_result.as_deref() {
                findings.push(Finding::warn(format!(
                    "{what} {}: last run {}",
                    r.name,
                    if res == "timeout" { "timed out" } else { res }
                )));
            }
            let mut v = serde_json::to_value(&r).map_err(|e| e.to_string())?;
            v["overdue"] = json!(late.is_some());
            v["overdue_seconds"] = json!(late.map(|l| l.num_seconds()));
            out.push(v);
        }
        Ok(Collected {
            data: serde_json::Value::Array(out),
            findings,
        })
    }
}

/// One supervised target as the watchdog sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetRow {
    /// Its name.
    pub name: String,
    /// `process`, `container` or `http`.
    pub kind: String,
    /// The last probe found it healthy.
    pub healthy: bool,
    /// What the last probe saw.
    pub observation: Option<String>,
    /// The ladder's position (0: nothing done).
    pub tier: u32,
    /// The circuit is open: the watchdog stopped acting.
    pub circuit_open: bool,
    /// Why the circuit opened.
    pub circuit_reason: Option<String>,
    /// When a tier last acted.
    pub last_action_at: Option<DateTime<Utc>>,
    /// What the watchdog would do next, in words (`None` while healthy).
    pub next_action: Option<String>,
    /// When it may do it, at the earliest.
    pub next_action_at: Option<DateTime<Utc>>,
}

/// Where the watchdog's targets come from.
#[async_trait::async_trait]
pub trait WatchdogSource: Send + Sync {
    /// Every target.
    async fn targets(&self) -> Result<Vec<TargetRow>, String>;
}

/// `watchdog`: each target.
///
/// Verdict: an open circuit **fails** ("watchdog gave up on bridge: …"); an unhealthy target the
/// ladder is working on **warns** ("bridge: heartbeat 2m old (tier 1)").
pub struct WatchdogSection {
    /// The targets.
    pub source: Arc<dyn WatchdogSource>,
}

#[async_trait::async_trait]
impl Collector for WatchdogSection {
    fn name(&self) -> &'static str {
        "watchdog"
    }

    async fn collect(&self) -> Result<Collected, CollectError> {
        let targets = self.source.targets().await?;
        let mut findings = Vec::new();
        let mut data = serde_json::Map::new();
        for t in targets {
            if t.circuit_open {
                findings.push(Finding::fail(format!(
                    "watchdog gave up on {}: {}",
                    t.name,
                    t.circuit_reason.as_deref().unwrap_or("circuit open")
                )));
            } else if !t.healthy {
                findings.push(Finding::warn(format!(
                    "{}: {} (tier {})",
                    t.name,
                    t.observation.as_deref().unwrap_or("unhealthy"),
                    t.tier
                )));
            }
            data.insert(
                t.name.clone(),
                serde_json::to_value(&t).map_err(|e| e.to_string())?,
            );
        }
        Ok(Collected {
            data: serde_json::Value::Object(data),
            findings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Verdict;

    struct Host(Option<QueueSnapshot>);
    #[async_trait::async_trait]
    impl StatusDeps for Host {
        async fn queue(&self) -> Result<Option<QueueSnapshot>, String> {
            Ok(self.0.clone())
        }
        async fn groups(&self) -> Result<Option<GroupsSnapshot>, String> {
            Ok(Some(GroupsSnapshot {
                total: 5,
                active_sessions: 2,
            }))
        }
    }

    fn q(active: u32, waiting: u32) -> QueueSnapshot {
        QueueSnapshot {
            active_containers: active,
            max_concurrent: Some(10),
            groups_waiting: waiting,
            per_group: BTreeMap::from([(
                "admin".into(),
                GroupQueue {
                    active: true,
                    pending_tasks: 1,
                    ..Default::default()
                },
            )]),
        }
    }

    #[tokio::test]
    async fn queue_rules() {
        let run = |s| async move {
            QueueSection {
                deps: Arc::new(Host(s)),
            }
            .collect()
            .await
            .unwrap()
        };
        assert!(run(Some(q(3, 2))).await.findings.is_empty());
        let full = run(Some(q(10, 3))).await;
        assert_eq!(
            full.findings,
            vec![Finding::warn(
                "queue at its concurrency limit (10 of 10) with 3 group(s) waiting"
            )]
        );
        assert_eq!(full.data["per_group"]["admin"]["pending_tasks"], 1);
        assert_eq!(run(Some(q(11, 0))).await.findings[0].level, Verdict::Fail);
        assert_eq!(run(None).await.data, json!({"reported": false}));
        let g = GroupsSection {
            deps: Arc::new(Host(None)),
        }
        .collect()
        .await
        .unwrap();
        assert_eq!(g.data, json!({"total": 5, "active_sessions": 2}));
    }

    struct Rows(Vec<TaskRow>);
    #[async_trait::async_trait]
    impl TaskSource for Rows {
        async fn tasks(&self) -> Result<Vec<TaskRow>, String> {
            Ok(self.0.clone())
        }
        async fn host_jobs(&self) -> Result<Vec<TaskRow>, String> {
            Ok(vec![])
        }
    }

    fn row(
        name: &str,
        next_in_min: i64,
        status: &str,
        running: bool,
        last: Option<&str>,
    ) -> TaskRow {
        TaskRow {
            id: name.into(),
            name: name.into(),
            group: Some("admin".into()),
            schedule_type: "cron".into(),
            schedule_value: "0 9 * * *".into(),
            tz: "UTC".into(),
            status: status.into(),
            next_run: Some(Utc::now() + chrono::Duration::minutes(next_in_min)),
            last_run: None,
            last_result: last.map(str::to_owned),
            running,
        }
    }

    #[tokio::test]
    async fn overdue_only_past_the_grace_and_not_while_running_or_paused() {
        let s = TasksSection {
            source: Arc::new(Rows(vec![
                row("daily-report", -185, "active", false, Some("ok")),
                row("in-grace", -3, "active", false, None),
                row("running-late", -60, "active", true, None),
                row("paused", -600, "paused", false, None),
                row("backup-db", 30, "active", false, Some("timeout")),
            ])),
            list: TaskList::Tasks,
            grace: Duration::from_secs(5 * 60),
        };
        let c = s.collect().await.unwrap();
        assert_eq!(
            c.findings,
            vec![
                Finding::fail("task daily-report overdue by 3h 5m"),
                Finding::warn("task backup-db: last run timed out"),
            ]
        );
        let overdue: Vec<bool> = c
            .data
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["overdue"].as_bool().unwrap())
            .collect();
        assert_eq!(overdue, vec![true, false, false, false, false]);
    }

    struct Targets;
    #[async_trait::async_trait]
    impl WatchdogSource for Targets {
        async fn targets(&self) -> Result<Vec<TargetRow>, String> {
            let t = |name: &str, healthy, circuit| TargetRow {
                name: name.into(),
                kind: "process".into(),
                healthy,
                observation: (!healthy).then(|| "heartbeat 2m old".to_owned()),
                tier: if healthy { 0 } else { 1 },
                circuit_open: circuit,
                circuit_reason: circuit.then(|| "3 tier-3 restarts did not help".to_owned()),
                last_action_at: None,
                next_action: None,
                next_action_at: None,
            };
            Ok(vec![
                t("ok", true, false),
                t("bridge", false, false),
                t("runner", false, true),
            ])
        }
    }

    #[tokio::test]
    async fn watchdog_rules() {
        let c = WatchdogSection {
            source: Arc::new(Targets),
        }
        .collect()
        .await
        .unwrap();
        assert_eq!(
            c.findings,
            vec![
                Finding::warn("bridge: heartbeat 2m old (tier 1)"),
                Finding::fail("watchdog gave up on runner: 3 tier-3 restarts did not help"),
            ]
        );
        assert_eq!(c.data["ok"]["healthy"], true);
    }
}
