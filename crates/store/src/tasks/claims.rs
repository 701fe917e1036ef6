//! Claiming due runs, once each across every scheduler (see the module's top), and runs
//! requested by hand.

use sqlx::AssertSqlSafe;

use crate::error::{QueryContext, Result};
use crate::time::{Timestamp, to_micros};
use crate::{Pool, Store, on_pool};

use super::{OwnerKind, RunOutcome, TaskRecord, task, task_columns};

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

impl Store {
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
}
