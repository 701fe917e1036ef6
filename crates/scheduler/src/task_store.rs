//! What the scheduler needs from a database, as a trait: [`lookout_store::Store`] implements it
//! (SQLite, PostgreSQL), and [`MemoryTaskStore`] is a faithful in-memory fake for tests under a
//! paused clock (where real I/O would let tokio's clock jump).

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use lookout_store::{
    Claim, ClaimedRun, DueTask, NewTask, OwnerKind, RunOutcome, Store, StoreError, TaskRecord,
    TaskRun, TaskStatus,
};

type Result<T> = std::result::Result<T, StoreError>;

/// The caller's decision in a claim (see [`Store::claim_due_runs`]).
pub type Decide<'a> = &'a mut (dyn FnMut(&DueTask) -> Option<Claim> + Send);

/// The store operations of the scheduler. See [`Store`]'s methods of the same names for the
/// contract of each.
#[async_trait::async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// [`Store::upsert_task`].
    async fn upsert_task(&self, t: &NewTask, now: DateTime<Utc>) -> Result<TaskRecord>;
    /// [`Store::list_tasks`].
    async fn list_tasks(&self, kind: OwnerKind) -> Result<Vec<TaskRecord>>;
    /// [`Store::get_task`].
    async fn get_task(&self, kind: OwnerKind, name: &str) -> Result<Option<TaskRecord>>;
    /// [`Store::set_task_status`].
    async fn set_task_status(
        &self,
        kind: OwnerKind,
        name: &str,
        status: TaskStatus,
        next_run: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// [`Store::delete_task`].
    async fn delete_task(&self, kind: OwnerKind, name: &str) -> Result<bool>;
    /// [`Store::next_due_at`].
    async fn next_due_at(&self, kind: OwnerKind) -> Result<Option<DateTime<Utc>>>;
    /// [`Store::overdue_tasks`].
    async fn overdue_tasks(
        &self,
        kind: OwnerKind,
        before: DateTime<Utc>,
    ) -> Result<Vec<TaskRecord>>;
    /// [`Store::claim_due_runs`].
    async fn claim_due_runs(
        &self,
        kind: OwnerKind,
        now: DateTime<Utc>,
        claimed_by: &str,
        limit: u32,
        decide: Decide<'_>,
    ) -> Result<Vec<ClaimedRun>>;
    /// [`Store::claim_manual_run`].
    async fn claim_manual_run(
        &self,
        kind: OwnerKind,
        task_id: &str,
        scheduled_for: DateTime<Utc>,
        claimed_by: &str,
    ) -> Result<Option<i64>>;
    /// [`Store::start_run`].
    async fn start_run(&self, run_id: i64, at: DateTime<Utc>) -> Result<()>;
    /// [`Store::finish_run`].
    async fn finish_run(
        &self,
        run_id: i64,
        outcome: RunOutcome,
        summary: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// [`Store::interrupt_running_runs`].
    async fn interrupt_running_runs(
        &self,
        kind: OwnerKind,
        claimed_by: &str,
        note: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<TaskRun>>;
    /// [`Store::task_runs`].
    async fn task_runs(&self, kind: OwnerKind, task_id: &str, limit: u32) -> Result<Vec<TaskRun>>;
}

#[async_trait::async_trait]
impl TaskStore for Store {
    async fn upsert_task(&self, t: &NewTask, now: DateTime<Utc>) -> Result<TaskRecord> {
        Store::upsert_task(self, t, now).await
    }
    async fn list_tasks(&self, kind: OwnerKind) -> Result<Vec<TaskRecord>> {
        Store::list_tasks(self, kind).await
    }
    async fn get_task(&self, kind: OwnerKind, name: &str) -> Result<Option<TaskRecord>> {
        Store::get_task(self, kind, name).await
    }
    async fn set_task_status(
        &self,
        kind: OwnerKind,
        name: &str,
        status: TaskStatus,
        next_run: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        Store::set_task_status(self, kind, name, status, next_run, now).await
    }
    async fn delete_task(&self, kind: OwnerKind, name: &str) -> Result<bool> {
        Store::delete_task(self, kind, name).await
    }
    async fn next_due_at(&self, kind: OwnerKind) -> Result<Option<DateTime<Utc>>> {
        Store::next_due_at(self, kind).await
    }
    async fn overdue_tasks(
        &self,
        kind: OwnerKind,
        before: DateTime<Utc>,
    ) -> Result<Vec<TaskRecord>> {
        Store::overdue_tasks(self, kind, before).await
    }
    async fn claim_due_runs(
        &self,
        kind: OwnerKind,
        now: DateTime<Utc>,
        claimed_by: &str,
        limit: u32,
        decide: Decide<'_>,
    ) -> Result<Vec<ClaimedRun>> {
        Store::claim_due_runs(self, kind, now, claimed_by, limit, |d| decide(d)).await
    }
    async fn claim_manual_run(
        &self,
        kind: OwnerKind,
        task_id: &str,
        scheduled_for: DateTime<Utc>,
        claimed_by: &str,
    ) -> Result<Option<i64>> {
        Store::claim_manual_run(self, kind, task_id, scheduled_for, claimed_by).await
    }
    async fn start_run(&self, run_id: i64, at: DateTime<Utc>) -> Result<()> {
        Store::start_run(self, run_id, at).await
    }
    async fn finish_run(
        &self,
        run_id: i64,
        outcome: RunOutcome,
        summary: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        Store::finish_run(self, run_id, outcome, summary, at).await
    }
    async fn interrupt_running_runs(
        &self,
        kind: OwnerKind,
        claimed_by: &str,
        note: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<TaskRun>> {
        Store::interrupt_running_runs(self, kind, claimed_by, note, at).await
    }
    async fn task_runs(&self, kind: OwnerKind, task_id: &str, limit: u32) -> Result<Vec<TaskRun>> {
        Store::task_runs(self, kind, task_id, limit).await
    }
}

/// An in-memory [`TaskStore`] with the same semantics as the SQL one (one process only).
#[derive(Debug, Default)]
pub struct MemoryTaskStore {
    state: Mutex<Mem>,
    /// When set, claims fail with this reason while reads still work (a full disk, a database
    /// that refuses writes).
    claims_fail: Mutex<Option<String>>,
}

#[derive(Debug, Default)]
struct Mem {
    tasks: Vec<TaskRecord>,
    runs: Vec<TaskRun>,
}

impl MemoryTaskStore {
    /// An empty store.
    pub fn new() -> MemoryTaskStore {
        MemoryTaskStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mem> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes every claim fail with `reason` (`None`: claims work again), as a store whose writes
    /// fail while its reads still answer. The error is a [`StoreError::InvalidInput`] carrying the
    /// reason; the scheduler does not tell store errors apart.
    pub fn fail_claims(&self, reason: Option<&str>) {
        *self.claims_fail.lock().unwrap_or_else(|e| e.into_inner()) = reason.map(str::to_owned);
    }

    fn insert_run(
        mem: &mut Mem,
        kind: OwnerKind,
        owner: &str,
        at: DateTime<Utc>,
        by: &str,
        skipped: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<i64> {
        if mem
            .runs
            .iter()
            .any(|r| r.owner_kind == kind && r.owner_id == owner && r.scheduled_for == at)
        {
            return None;
        }
        let id = mem.runs.len() as i64 + 1;
        mem.runs.push(TaskRun {
            id,
            owner_kind: kind,
            owner_id: owner.to_string(),
            scheduled_for: at,
            claimed_by: Some(by.to_string()),
            started_at: None,
            finished_at: skipped.map(|_| now),
            outcome: if skipped.is_some() {
                RunOutcome::Skipped
            } else {
                RunOutcome::Running
            },
            output_summary: skipped.map(str::to_string),
        });
        Some(id)
    }
}

#[async_trait::async_trait]
impl TaskStore for MemoryTaskStore {
    async fn upsert_task(&self, t: &NewTask, now: DateTime<Utc>) -> Result<TaskRecord> {
        if t.kind == OwnerKind::Task && t.group.is_none() {
            return Err(StoreError::InvalidInput(format!(
                "task `{}` needs a group",
                t.name
            )));
        }
        let mut m = self.lock();
        if let Some(cur) = m
            .tasks
            .iter_mut()
            .find(|x| x.kind == t.kind && x.name == t.name)
        {
            let changed = cur.next_run.is_none()
                || cur.schedule_kind != t.schedule_kind
                || cur.schedule_value != t.schedule_value
                || cur.tz != t.tz;
            if changed {
                cur.next_run = t.next_run;
            }
            if cur.status == TaskStatus::Completed && t.next_run.is_some() {
                cur.status = TaskStatus::Active;
            }
            cur.group = t.group.clone();
            cur.schedule_kind = t.schedule_kind.clone();
            cur.schedule_value = t.schedule_value.clone();
            cur.tz = t.tz.clone();
            cur.runner = t.runner.clone();
            cur.policy = t.policy.clone();
            cur.updated_at = now;
            return Ok(cur.clone());
        }
        let rec = TaskRecord {
            kind: t.kind,
            id: t.id.clone(),
            name: t.name.clone(),
            group: t.group.clone(),
            schedule_kind: t.schedule_kind.clone(),
            schedule_value: t.schedule_value.clone(),
            tz: t.tz.clone(),
            runner: t.runner.clone(),
            status: TaskStatus::Active,
            policy: t.policy.clone(),
            next_run: t.next_run,
            last_run: None,
            last_result: None,
            created_at: now,
            updated_at: now,
        };
        m.tasks.push(rec.clone());
        Ok(rec)
    }

    async fn list_tasks(&self, kind: OwnerKind) -> Result<Vec<TaskRecord>> {
        let mut v: Vec<_> = self
            .lock()
            .tasks
            .iter()
            .filter(|t| t.kind == kind)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    async fn get_task(&self, kind: OwnerKind, name: &str) -> Result<Option<TaskRecord>> {
        Ok(self
            .lock()
            .tasks
            .iter()
            .find(|t| t.kind == kind && t.name == name)
            .cloned())
    }

    async fn set_task_status(
        &self,
        kind: OwnerKind,
        name: &str,
        status: TaskStatus,
        next_run: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut m = self.lock();
        match m
            .tasks
            .iter_mut()
            .find(|t| t.kind == kind && t.name == name)
        {
            Some(t) => {
                t.status = status;
                t.next_run = next_run;
                t.updated_at = now;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_task(&self, kind: OwnerKind, name: &str) -> Result<bool> {
        let mut m = self.lock();
        let before = m.tasks.len();
        m.tasks.retain(|t| !(t.kind == kind && t.name == name));
        Ok(m.tasks.len() < before)
    }

    async fn next_due_at(&self, kind: OwnerKind) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .lock()
            .tasks
            .iter()
            .filter(|t| t.kind == kind && t.status == TaskStatus::Active)
            .filter_map(|t| t.next_run)
            .min())
    }

    async fn overdue_tasks(
        &self,
        kind: OwnerKind,
        before: DateTime<Utc>,
    ) -> Result<Vec<TaskRecord>> {
        let mut v: Vec<_> = self
            .lock()
            .tasks
            .iter()
            .filter(|t| {
                t.kind == kind
                    && t.status == TaskStatus::Active
                    && t.next_run.is_some_and(|n| n < before)
            })
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.next_run, &a.name).cmp(&(b.next_run, &b.name)));
        Ok(v)
    }

    async fn claim_due_runs(
        &self,
        kind: OwnerKind,
        now: DateTime<Utc>,
        claimed_by: &str,
        limit: u32,
        decide: Decide<'_>,
    ) -> Result<Vec<ClaimedRun>> {
        if let Some(reason) = self
            .claims_fail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(StoreError::InvalidInput(format!(
                "cannot claim due runs: {reason}"
            )));
        }
        let mut m = self.lock();
        let mut due: Vec<TaskRecord> = m
            .tasks
            .iter()
            .filter(|t| {
                t.kind == kind
                    && t.status == TaskStatus::Active
                    && t.next_run.is_some_and(|n| n <= now)
            })
            .cloned()
            .collect();
        due.sort_by(|a, b| (a.next_run, &a.id).cmp(&(b.next_run, &b.id)));
        due.truncate(limit as usize);
        let mut claimed = Vec::new();
        for task in due {
            let running = m
                .runs
                .iter()
                .filter(|r| {
                    r.owner_kind == kind
                        && r.owner_id == task.id
                        && r.outcome == RunOutcome::Running
                })
                .count() as i64;
            let d = DueTask { task, running };
            let Some(claim) = decide(&d) else { continue };
            if let Some(t) = m
                .tasks
                .iter_mut()
                .find(|t| t.kind == kind && t.id == d.task.id)
            {
                t.next_run = claim.next_run;
                if claim.next_run.is_none() {
                    t.status = TaskStatus::Completed;
                }
                t.updated_at = now;
            }
            for new in claim.runs {
                if let Some(run_id) = Self::insert_run(
                    &mut m,
                    kind,
                    &d.task.id,
                    new.scheduled_for,
                    claimed_by,
                    new.skipped.as_deref(),
                    now,
                ) {
                    claimed.push(ClaimedRun {
                        run_id,
                        task: d.task.clone(),
                        scheduled_for: new.scheduled_for,
                        skipped: new.skipped,
                    });
                }
            }
        }
        Ok(claimed)
    }

    async fn claim_manual_run(
        &self,
        kind: OwnerKind,
        task_id: &str,
        scheduled_for: DateTime<Utc>,
        claimed_by: &str,
    ) -> Result<Option<i64>> {
        let mut m = self.lock();
        Ok(Self::insert_run(
            &mut m,
            kind,
            task_id,
            scheduled_for,
            claimed_by,
            None,
            scheduled_for,
        ))
    }

    async fn start_run(&self, run_id: i64, at: DateTime<Utc>) -> Result<()> {
        let mut m = self.lock();
        if let Some(r) = m
            .runs
            .iter_mut()
            .find(|r| r.id == run_id && r.outcome == RunOutcome::Running)
        {
            r.started_at = Some(at);
        }
        Ok(())
    }

    async fn finish_run(
        &self,
        run_id: i64,
        outcome: RunOutcome,
        summary: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut m = self.lock();
        let Some(r) = m
            .runs
            .iter_mut()
            .find(|r| r.id == run_id && r.outcome == RunOutcome::Running)
        else {
            return Ok(false);
        };
        r.outcome = outcome;
        r.output_summary = summary.map(str::to_string);
        r.finished_at = Some(at);
        let (kind, owner, started) = (r.owner_kind, r.owner_id.clone(), r.started_at);
        if let Some(t) = m.tasks.iter_mut().find(|t| t.kind == kind && t.id == owner) {
            t.last_run = Some(started.unwrap_or(at));
            t.last_result = Some(outcome.as_str().to_string());
        }
        Ok(true)
    }

    async fn interrupt_running_runs(
        &self,
        kind: OwnerKind,
        claimed_by: &str,
        note: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<TaskRun>> {
        let mut m = self.lock();
        let mut out = Vec::new();
        for r in m.runs.iter_mut().filter(|r| {
            r.owner_kind == kind
                && r.outcome == RunOutcome::Running
                && r.claimed_by.as_deref() == Some(claimed_by)
        }) {
            r.outcome = RunOutcome::Interrupted;
            r.finished_at = Some(at);
            r.output_summary = Some(note.to_string());
            out.push(r.clone());
        }
        Ok(out)
    }

    async fn task_runs(&self, kind: OwnerKind, task_id: &str, limit: u32) -> Result<Vec<TaskRun>> {
        let mut v: Vec<_> = self
            .lock()
            .runs
            .iter()
            .filter(|r| r.owner_kind == kind && r.owner_id == task_id)
            .cloned()
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse((r.scheduled_for, r.id)));
        v.truncate(limit as usize);
        Ok(v)
    }
}
