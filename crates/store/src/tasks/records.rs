//! Tasks and host jobs: creating, reading, pausing and deleting them; the due and overdue reads.

use sqlx::AssertSqlSafe;

use crate::error::{QueryContext, Result, StoreError};
use crate::time::{Timestamp, from_micros, to_micros};
use crate::{Store, on_pool};

use super::{NewTask, OwnerKind, TaskRecord, TaskRow, TaskStatus, task, task_columns};

impl Store {
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
}
