//! Scheduled tasks, host jobs and their runs (`scheduled_tasks`, `host_jobs`, `task_runs`).
//!
//! The store keeps the facts; the scheduler (`lookout-scheduler`) decides what they mean. The one
//! guarantee that lives here is **a due run is claimed once**: [`Store::claim_due_runs`] reads the
//! due rows, lets the caller decide each (in the same transaction), moves `next_run` on only if it
//! still holds the value that was read (compare-and-set), and inserts the run with
//! `ON CONFLICT DO NOTHING` on `UNIQUE (owner_kind, owner_id, scheduled_for)`. On PostgreSQL the read
//! takes `FOR UPDATE SKIP LOCKED`, so several schedulers on one database share the due rows without
//! waiting on each other; on SQLite the transaction is `BEGIN IMMEDIATE` (one writer at a time).

use sqlx::AssertSqlSafe;

use crate::error::{QueryContext, Result, StoreError};
use crate::time::{Timestamp, from_micros, to_micros};
use crate::{Pool, Store, on_pool};

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

/// How a run ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    /// Claimed, started or about to start.
    Running,
    /// Finished successfully.
    Ok,
    /// Finished with an error.
    Failed,
    /// Stopped after its timeout.
    Timeout,
    /// Stopped by something else: a crash or stop of the scheduler, or a replacing run.
    Interrupted,
    /// Never started, on purpose (a policy), with the reason in the summary.
    Skipped,
}

impl RunOutcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Ok => "ok",
            RunOutcome::Failed => "failed",
            RunOutcome::Timeout => "timeout",
            RunOutcome::Interrupted => "interrupted",
            RunOutcome::Skipped => "skipped",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Result<RunOutcome> {
        Ok(match s {
            "running" => RunOutcome::Running,
            "ok" => RunOutcome::Ok,
            "failed" => RunOutcome::Failed,
            "timeout" => RunOutcome::Timeout,
            "interrupted" => RunOutcome::Interrupted,
            "skipped" => RunOutcome::Skipped,
            other => {
                return Err(StoreError::Corrupt {
                    context: "reading a task run",
                    reason: format!("unknown run outcome `{other}`"),
                });
            }
        })
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

/// A due task, as [`Store::claim_due_runs`] shows it to the caller's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTask {
    /// The task (its `next_run` is due).
    pub task: TaskRecord,
    /// How many of its runs are `running` now (on any scheduler).
    pub running: i64,
}

/// The caller's decision for one due task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The task's next run after this claim (`None`: no more runs, the task becomes `completed`).
    pub next_run: Option<Timestamp>,
    /// Runs to record.
    pub runs: Vec<NewRun>,
}

/// A run to record in a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    /// The instant it was due.
    pub scheduled_for: Timestamp,
    /// `Some(reason)`: record it as `skipped` with the reason; `None`: record it `running`.
    pub skipped: Option<String>,
}

/// A run recorded by a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRun {
    /// The run's id.
    pub run_id: i64,
    /// The task it belongs to (as read, before `next_run` moved on).
    pub task: TaskRecord,
    /// The instant it was due.
    pub scheduled_for: Timestamp,
    /// `Some(reason)` when it was recorded `skipped`.
    pub skipped: Option<String>,
}

/// One run of a task or host job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaskRun {
    /// Its id.
    pub id: i64,
    /// Task or host job.
    pub owner_kind: OwnerKind,
    /// The task's id.
    pub owner_id: String,
    /// The instant it was due.
    pub scheduled_for: Timestamp,
    /// The scheduler that claimed it.
    pub claimed_by: Option<String>,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Output, error or reason, shortened.
    pub output_summary: Option<String>,
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

type RunRow = (
    i64,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<i64>,
    String,
    Option<String>,
);

const RUN_COLUMNS: &str = "id, owner_kind, owner_id, scheduled_for, claimed_by, started_at, \
                           finished_at, outcome, output_summary";

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

fn run(r: RunRow) -> Result<TaskRun> {
    let (
        id,
        owner_kind,
        owner_id,
        scheduled_for,
        claimed_by,
        started_at,
        finished_at,
        outcome,
        output_summary,
    ) = r;
    Ok(TaskRun {
        id,
        owner_kind: OwnerKind::parse(&owner_kind)?,
        owner_id,
        scheduled_for: from_micros(scheduled_for),
        claimed_by,
        started_at: started_at.map(from_micros),
        finished_at: finished_at.map(from_micros),
        outcome: RunOutcome::parse(&outcome)?,
        output_summary,
    })
}

impl Store {
    fn is_pg(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }

    /// Creates a task or host job, or updates the one of that name (keeping its id, status and,
    /// unless the schedule changed, its `next_run`). Returns the stored row.
    pub async fn upsert_task(&self, t: &NewTask, now: Timestamp) -> Result<TaskRecord> {
        if t.kind == OwnerKind::Task && t.group.is_none() {
            return Err(StoreError::InvalidInput(format!(
                "task `{}` needs a group",
                t.name
            )));
        }
        let pg = self.is_pg();
        let table = t.kind.table();
        let sql = format!(
            "INSERT INTO {table} AS cur (id, name, group_name, schedule_kind, schedule_value, tz, {runner}, \
             policy, next_run, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8{cast}, $9, $10, $10) \
             ON CONFLICT (name) DO UPDATE SET group_name = excluded.group_name, \
             schedule_kind = excluded.schedule_kind, schedule_value = excluded.schedule_value, \
             tz = excluded.tz, {runner} = excluded.{runner}, policy = excluded.policy, \
             next_run = CASE WHEN cur.next_run IS NULL OR cur.schedule_kind <> excluded.schedule_kind \
                 OR cur.schedule_value <> excluded.schedule_value OR cur.tz <> excluded.tz \
                 THEN excluded.next_run ELSE cur.next_run END, \
             status = CASE WHEN cur.status = 'completed' AND excluded.next_run IS NOT NULL \
                 THEN 'active' ELSE cur.status END, \
             updated_at = excluded.updated_at \
             RETURNING {cols}",
            runner = t.kind.runner_column(),
            cast = if pg { "::jsonb" } else { "" },
            cols = task_columns(t.kind, pg, "")
        );
        let row: TaskRow = on_pool!(self, p => sqlx::query_as(AssertSqlSafe(sql))
            .bind(&t.id)
            .bind(&t.name)
            .bind(&t.group)
            .bind(&t.schedule_kind)
            .bind(&t.schedule_value)
            .bind(&t.tz)
            .bind(&t.runner)
            .bind(&t.policy)
            .bind(t.next_run.as_ref().map(to_micros))
            .bind(to_micros(&now))
            .fetch_one(p)
            .await)
        .context("upserting a task")?;
        task(t.kind, row)
    }

    /// Every task (or host job), by name.
    pub async fn list_tasks(&self, kind: OwnerKind) -> Result<Vec<TaskRecord>> {
        let sql = format!(
            "SELECT {} FROM {} ORDER BY name",
            task_columns(kind, self.is_pg(), ""),
            kind.table()
        );
        let rows: Vec<TaskRow> =
            on_pool!(self, p => sqlx::query_as(AssertSqlSafe(sql)).fetch_all(p).await)
                .context("listing tasks")?;
        rows.into_iter().map(|r| task(kind, r)).collect()
    }

    /// The task (or host job) of that name.
    pub async fn get_task(&self, kind: OwnerKind, name: &str) -> Result<Option<TaskRecord>> {
        let sql = format!(
            "SELECT {} FROM {} WHERE name = $1",
            task_columns(kind, self.is_pg(), ""),
            kind.table()
        );
        let row: Option<TaskRow> = on_pool!(self, p => sqlx::query_as(AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(p)
            .await)
        .context("reading a task")?;
        row.map(|r| task(kind, r)).transpose()
    }

    /// Sets a task's status and its next run (pause: `Paused`, next run kept or cleared by the caller;
    /// resume: `Active` with a fresh next run). Returns whether the task exists.
    pub async fn set_task_status(
        &self,
        kind: OwnerKind,
        name: &str,
        status: TaskStatus,
        next_run: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<bool> {
        let sql = format!(
            "UPDATE {} SET status = $1, next_run = $2, updated_at = $3 WHERE name = $4",
            kind.table()
        );
        on_pool!(self, p => sqlx::query(AssertSqlSafe(sql))
            .bind(status.as_str())
            .bind(next_run.as_ref().map(to_micros))
            .bind(to_micros(&now))
            .bind(name)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0))
        .context("setting a task's status")
    }

    /// Sets a task's next run, by id. Returns whether the task exists.
    pub async fn set_next_run(
        &self,
        kind: OwnerKind,
        id: &str,
        next_run: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<bool> {
        let sql = format!(
            "UPDATE {} SET next_run = $1, updated_at = $2 WHERE id = $3",
            kind.table()
        );
        on_pool!(self, p => sqlx::query(AssertSqlSafe(sql))
            .bind(next_run.as_ref().map(to_micros))
            .bind(to_micros(&now))
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0))
        .context("setting a task's next run")
    }

    /// Deletes a task by name (its run history stays). Returns whether it existed.
    pub async fn delete_task(&self, kind: OwnerKind, name: &str) -> Result<bool> {
        let sql = format!("DELETE FROM {} WHERE name = $1", kind.table());
        on_pool!(self, p => sqlx::query(AssertSqlSafe(sql))
            .bind(name)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0))
        .context("deleting a task")
    }

    /// The earliest `next_run` of an active task, to know how long the scheduler may sleep.
    pub async fn next_due_at(&self, kind: OwnerKind) -> Result<Option<Timestamp>> {
        let sql = format!(
            "SELECT MIN(next_run) FROM {} WHERE status = 'active'",
            kind.table()
        );
        let v: Option<i64> =
            on_pool!(self, p => sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(p).await)
                .context("reading the next due time")?;
        Ok(v.map(from_micros))
    }

    /// Active tasks whose `next_run` is before `before` (the caller passes `now - grace`): due runs
    /// that no scheduler claimed.
    pub async fn overdue_tasks(
        &self,
        kind: OwnerKind,
        before: Timestamp,
    ) -> Result<Vec<TaskRecord>> {
        let sql = format!(
            "SELECT {} FROM {} WHERE status = 'active' AND next_run IS NOT NULL AND next_run < $1 \
             ORDER BY next_run, name",
            task_columns(kind, self.is_pg(), ""),
            kind.table()
        );
        let rows: Vec<TaskRow> = on_pool!(self, p => sqlx::query_as(AssertSqlSafe(sql))
            .bind(to_micros(&before))
            .fetch_all(p)
            .await)
        .context("reading overdue tasks")?;
        rows.into_iter().map(|r| task(kind, r)).collect()
    }

    /// Claims due runs, at most `limit` tasks at a time, once each across every scheduler.
    ///
    /// In one transaction: reads the active tasks with `next_run <= now` (on PostgreSQL with
    /// `FOR UPDATE SKIP LOCKED`: rows another scheduler holds are left to it), asks `decide` for each
    /// (`None` leaves the task untouched), moves `next_run` on only where it still holds the value
    /// read, and records the decided runs with `ON CONFLICT DO NOTHING` on the unique
    /// `(owner_kind, owner_id, scheduled_for)`. Returns the runs recorded by this call.
    pub async fn claim_due_runs<F>(
        &self,
        kind: OwnerKind,
        now: Timestamp,
        claimed_by: &str,
        limit: u32,
        mut decide: F,
    ) -> Result<Vec<ClaimedRun>>
    where
        F: FnMut(&DueTask) -> Option<Claim> + Send,
    {
        let pg = self.is_pg();
        let table = kind.table();
        let select = format!(
            "SELECT {cols}, (SELECT COUNT(*) FROM task_runs r WHERE r.owner_kind = $1 \
                 AND r.owner_id = t.id AND r.outcome = 'running') \
             FROM {table} t WHERE t.status = 'active' AND t.next_run IS NOT NULL AND t.next_run <= $2 \
             ORDER BY t.next_run, t.id LIMIT $3{lock}",
            cols = task_columns(kind, pg, "t."),
            lock = if pg {
                " FOR UPDATE OF t SKIP LOCKED"
            } else {
                ""
            }
        );
        let advance = format!(
            "UPDATE {table} SET next_run = $1, \
             status = CASE WHEN $1 IS NULL THEN 'completed' ELSE status END, updated_at = $2 \
             WHERE id = $3 AND next_run = $4 AND status = 'active'"
        );
        let insert = "INSERT INTO task_runs (owner_kind, owner_id, scheduled_for, claimed_by, \
                      finished_at, outcome, output_summary) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                      ON CONFLICT (owner_kind, owner_id, scheduled_for) DO NOTHING RETURNING id";
        let now_us = to_micros(&now);

        macro_rules! claim_in {
            ($tx:ident) => {{
                type DueRow = (
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
                    i64,
                );
                let rows: Vec<DueRow> = sqlx::query_as(AssertSqlSafe(select))
                    .bind(kind.as_str())
                    .bind(now_us)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *$tx)
                    .await
                    .context("reading due tasks")?;
                let mut claimed = Vec::new();
                for r in rows {
                    let running = r.14;
                    let record = task(
                        kind,
                        (
                            r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10, r.11, r.12,
                            r.13,
                        ),
                    )?;
                    let due = DueTask {
                        task: record,
                        running,
                    };
                    let Some(claim) = decide(&due) else { continue };
                    let Some(read_next) = due.task.next_run else {
                        continue;
                    };
                    let moved = sqlx::query(AssertSqlSafe(advance.clone()))
                        .bind(claim.next_run.as_ref().map(to_micros))
                        .bind(now_us)
                        .bind(&due.task.id)
                        .bind(to_micros(&read_next))
                        .execute(&mut *$tx)
                        .await
                        .context("moving a task's next run on")?
                        .rows_affected();
                    if moved == 0 {
                        // Another scheduler claimed it between our read and now.
                        continue;
                    }
                    for new in claim.runs {
                        let (finished, outcome) = match &new.skipped {
                            Some(_) => (Some(now_us), RunOutcome::Skipped),
                            None => (None, RunOutcome::Running),
                        };
                        let id: Option<i64> = sqlx::query_scalar(insert)
                            .bind(kind.as_str())
                            .bind(&due.task.id)
                            .bind(to_micros(&new.scheduled_for))
                            .bind(claimed_by)
                            .bind(finished)
                            .bind(outcome.as_str())
                            .bind(new.skipped.as_deref())
                            .fetch_optional(&mut *$tx)
                            .await
                            .context("recording a claimed run")?;
                        if let Some(run_id) = id {
                            claimed.push(ClaimedRun {
                                run_id,
                                task: due.task.clone(),
                                scheduled_for: new.scheduled_for,
                                skipped: new.skipped,
                            });
                        }
                    }
                }
                claimed
            }};
        }

        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut tx = pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .context("starting a claim")?;
                let claimed = claim_in!(tx);
                tx.commit().await.context("committing a claim")?;
                Ok(claimed)
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await.context("starting a claim")?;
                let claimed = claim_in!(tx);
                tx.commit().await.context("committing a claim")?;
                Ok(claimed)
            }
        }
    }

    /// Records a run requested by hand ("run now") for `scheduled_for`, without touching the
    /// schedule. `None` when a run for that instant exists already.
    pub async fn claim_manual_run(
        &self,
        kind: OwnerKind,
        task_id: &str,
        scheduled_for: Timestamp,
        claimed_by: &str,
    ) -> Result<Option<i64>> {
        on_pool!(self, p => sqlx::query_scalar(
            "INSERT INTO task_runs (owner_kind, owner_id, scheduled_for, claimed_by, outcome) \
             VALUES ($1, $2, $3, $4, 'running') \
             ON CONFLICT (owner_kind, owner_id, scheduled_for) DO NOTHING RETURNING id",
        )
        .bind(kind.as_str())
        .bind(task_id)
        .bind(to_micros(&scheduled_for))
        .bind(claimed_by)
        .fetch_optional(p)
        .await)
        .context("recording a manual run")
    }

    /// Marks a claimed run as started.
    pub async fn start_run(&self, run_id: i64, at: Timestamp) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "UPDATE task_runs SET started_at = $1 WHERE id = $2 AND outcome = 'running'",
        )
        .bind(to_micros(&at))
        .bind(run_id)
        .execute(p)
        .await
        .map(|_| ()))
        .context("starting a run")
    }

    /// Records how a run ended, and the task's `last_run` / `last_result`. Returns `false` when the
    /// run had ended already (e.g. marked interrupted), in which case nothing changes.
    pub async fn finish_run(
        &self,
        run_id: i64,
        outcome: RunOutcome,
        summary: Option<&str>,
        at: Timestamp,
    ) -> Result<bool> {
        let owner: Option<(String, String, Option<i64>)> = on_pool!(self, p => sqlx::query_as(
            "UPDATE task_runs SET outcome = $1, output_summary = $2, finished_at = $3 \
             WHERE id = $4 AND outcome = 'running' RETURNING owner_kind, owner_id, started_at",
        )
        .bind(outcome.as_str())
        .bind(summary)
        .bind(to_micros(&at))
        .bind(run_id)
        .fetch_optional(p)
        .await)
        .context("finishing a run")?;
        let Some((kind, owner_id, started_at)) = owner else {
            return Ok(false);
        };
        let kind = OwnerKind::parse(&kind)?;
        let sql = format!(
            "UPDATE {} SET last_run = $1, last_result = $2 WHERE id = $3",
            kind.table()
        );
        on_pool!(self, p => sqlx::query(AssertSqlSafe(sql))
            .bind(started_at.unwrap_or(to_micros(&at)))
            .bind(outcome.as_str())
            .bind(&owner_id)
            .execute(p)
            .await
            .map(|_| ()))
        .context("recording a task's last result")?;
        Ok(true)
    }

    /// Marks every run this scheduler (`claimed_by`) left `running` as `interrupted` (called at
    /// start: those runs died with the previous process). Returns them, as they are now.
    pub async fn interrupt_running_runs(
        &self,
        kind: OwnerKind,
        claimed_by: &str,
        note: &str,
        at: Timestamp,
    ) -> Result<Vec<TaskRun>> {
        let sql = format!(
            "UPDATE task_runs SET outcome = 'interrupted', finished_at = $1, output_summary = $2 \
             WHERE owner_kind = $3 AND claimed_by = $4 AND outcome = 'running' RETURNING {RUN_COLUMNS}"
        );
        let rows: Vec<RunRow> = on_pool!(self, p => sqlx::query_as(AssertSqlSafe(sql))
            .bind(to_micros(&at))
            .bind(note)
            .bind(kind.as_str())
            .bind(claimed_by)
            .fetch_all(p)
            .await)
        .context("marking runs interrupted")?;
        let mut runs: Vec<TaskRun> = rows.into_iter().map(run).collect::<Result<_>>()?;
        runs.sort_by_key(|r| r.id);
        Ok(runs)
    }

    /// Runs still `running` (on any scheduler), oldest first.
    pub async fn running_runs(&self, kind: OwnerKind) -> Result<Vec<TaskRun>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM task_runs WHERE owner_kind = $1 AND outcome = 'running' \
             ORDER BY id"
        );
        let rows: Vec<RunRow> = on_pool!(self, p => sqlx::query_as(AssertSqlSafe(sql))
            .bind(kind.as_str())
            .fetch_all(p)
            .await)
        .context("reading running runs")?;
        rows.into_iter().map(run).collect()
    }

    /// One run by id.
    pub async fn get_run(&self, run_id: i64) -> Result<Option<TaskRun>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM task_runs WHERE id = $1");
        let row: Option<RunRow> = on_pool!(self, p => sqlx::query_as(AssertSqlSafe(sql))
            .bind(run_id)
            .fetch_optional(p)
            .await)
        .context("reading a run")?;
        row.map(run).transpose()
    }

    /// A task's latest `limit` runs, newest (by due time) first.
    pub async fn task_runs(
        &self,
        kind: OwnerKind,
        task_id: &str,
        limit: u32,
    ) -> Result<Vec<TaskRun>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM task_runs WHERE owner_kind = $1 AND owner_id = $2 \
             ORDER BY scheduled_for DESC, id DESC LIMIT $3"
        );
        let rows: Vec<RunRow> = on_pool!(self, p => sqlx::query_as(AssertSqlSafe(sql))
            .bind(kind.as_str())
            .bind(task_id)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)
        .context("reading a task's runs")?;
        rows.into_iter().map(run).collect()
    }
}
