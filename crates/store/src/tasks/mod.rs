//! Scheduled tasks, host jobs and their runs (`scheduled_tasks`, `host_jobs`, `task_runs`).
//!
//! The store keeps the facts; the scheduler (`lookout-scheduler`) decides what they mean. The one
//! guarantee that lives here is **a due run is claimed once**: [`Store::claim_due_runs`] reads the
//! due rows, lets the caller decide each (in the same transaction), moves `next_run` on only if it
//! still holds the value that was read (compare-and-set), and inserts the run with
//! `ON CONFLICT DO NOTHING` on `UNIQUE (owner_kind, owner_id, scheduled_for)`. On PostgreSQL the read
//! takes `FOR UPDATE SKIP LOCKED`, so several schedulers on one database share the due rows without
//! waiting on each other; on SQLite the transaction is `BEGIN IMMEDIATE` (one writer at a time).
//!
//! Here: tasks and host jobs, and how their rows read. The parts: `records` (creating, reading,
//! pausing and deleting them; the due and overdue reads), `claims` (claiming due runs once, and
//! runs requested by hand), `runs` (a run's start and end, interrupted runs, the history).

use crate::error::{Result, StoreError};
use crate::time::{Timestamp, from_micros};
use crate::{Pool, Store};

mod claims;
mod records;
mod runs;

pub use claims::{Claim, ClaimedRun, DueTask, NewRun};
pub use runs::{RunOutcome, TaskRun};

/// Whose run: a scheduled agent task (`scheduled_tasks`) or a host job (`host_jobs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerKind {
    /// A row of `scheduled_tasks`.
    Task,
    /// A row of `host_jobs`.
    HostJob,
}

impl OwnerKind {
    /// The stored name (`task`, `host_job`).
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerKind::Task => "task",
            OwnerKind::HostJob => "host_job",
        }
    }

    fn table(self) -> &'static str {
        match self {
            OwnerKind::Task => "scheduled_tasks",
            OwnerKind::HostJob => "host_jobs",
        }
    }

    /// `scheduled_tasks` calls what runs `runner`; `host_jobs` calls it `command`.
    fn runner_column(self) -> &'static str {
        match self {
            OwnerKind::Task => "runner",
            OwnerKind::HostJob => "command",
        }
    }

    fn parse(s: &str) -> Result<OwnerKind> {
        match s {
            "task" => Ok(OwnerKind::Task),
            "host_job" => Ok(OwnerKind::HostJob),
            other => Err(StoreError::Corrupt {
                context: "reading a task run",
                reason: format!("unknown owner kind `{other}`"),
            }),
        }
    }
}

/// A task's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Runs when due.
    Active,
    /// Kept, not run.
    Paused,
    /// A one-off that has run (no next run).
    Completed,
}

impl TaskStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Active => "active",
            TaskStatus::Paused => "paused",
            TaskStatus::Completed => "completed",
        }
    }

    fn parse(s: &str) -> Result<TaskStatus> {
        match s {
            "active" => Ok(TaskStatus::Active),
            "paused" => Ok(TaskStatus::Paused),
            "completed" => Ok(TaskStatus::Completed),
            other => Err(StoreError::Corrupt {
                context: "reading a task",
                reason: format!("unknown task status `{other}`"),
            }),
        }
    }
}

/// A task or host job to create or update (by name).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewTask {
    /// Task or host job.
    pub kind: OwnerKind,
    /// Its id (kept when the name exists already).
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// The group it belongs to (required for tasks).
    pub group: Option<String>,
    /// `cron`, `interval` or `once`.
    pub schedule_kind: String,
    /// The expression, interval or instant.
    pub schedule_value: String,
    /// IANA time zone.
    pub tz: String,
    /// What runs, as JSON (the scheduler's runner spec).
    pub runner: String,
    /// Policies, as JSON.
    pub policy: String,
    /// The first run. Kept on update unless the schedule changed or none is stored.
    pub next_run: Option<Timestamp>,
}

/// A stored task or host job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaskRecord {
    /// Task or host job.
    pub kind: OwnerKind,
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its group.
    pub group: Option<String>,
    /// `cron`, `interval` or `once`.
    pub schedule_kind: String,
    /// The expression, interval or instant.
    pub schedule_value: String,
    /// IANA time zone.
    pub tz: String,
    /// What runs (JSON).
    pub runner: String,
    /// Active, paused or completed.
    pub status: TaskStatus,
    /// Policies (JSON).
    pub policy: String,
    /// When it is next due.
    pub next_run: Option<Timestamp>,
    /// When it last ran.
    pub last_run: Option<Timestamp>,
    /// How its last run ended.
    pub last_result: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
}

type TaskRow = (
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
    i64,
);

fn task_columns(kind: OwnerKind, pg: bool, alias: &str) -> String {
    format!(
        "{a}id, {a}name, {a}group_name, {a}schedule_kind, {a}schedule_value, {a}tz, {a}{runner}, \
         {a}status, {a}policy{cast}, {a}next_run, {a}last_run, {a}last_result, {a}created_at, \
         {a}updated_at",
        a = alias,
        runner = kind.runner_column(),
        cast = if pg { "::text" } else { "" }
    )
}

fn task(kind: OwnerKind, r: TaskRow) -> Result<TaskRecord> {
    let (
        id,
        name,
        group,
        schedule_kind,
        schedule_value,
        tz,
        runner,
        status,
        policy,
        next_run,
        last_run,
        last_result,
        created_at,
        updated_at,
    ) = r;
    Ok(TaskRecord {
        kind,
        id,
        name,
        group,
        schedule_kind,
        schedule_value,
        tz,
        runner,
        status: TaskStatus::parse(&status)?,
        policy,
        next_run: next_run.map(from_micros),
        last_run: last_run.map(from_micros),
        last_result,
        created_at: from_micros(created_at),
        updated_at: from_micros(updated_at),
    })
}

impl Store {
    fn is_pg(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }
}
