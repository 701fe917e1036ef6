//! Runs: how they end, their start and end, the runs a stopped scheduler left `running`, and a
//! task's history.

use sqlx::AssertSqlSafe;

use crate::error::{QueryContext, Result, StoreError};
use crate::time::{Timestamp, from_micros, to_micros};
use crate::{Store, on_pool};

use super::OwnerKind;

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
