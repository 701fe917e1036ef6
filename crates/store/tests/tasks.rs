//! Scheduled tasks, host jobs and their runs, on SQLite and PostgreSQL: a due run is claimed once.

use std::collections::HashSet;

use chrono::TimeDelta;
use lookout_store::time::parse_rfc3339;
use lookout_store::{
    Backend, Claim, NewRun, NewTask, OwnerKind, RunOutcome, Store, TaskStatus, Timestamp,
};

fn t(s: &str) -> Timestamp {
    parse_rfc3339(s).unwrap()
}

fn new_task(kind: OwnerKind, name: &str, next: Option<Timestamp>) -> NewTask {
    NewTask {
        kind,
        id: format!("id-{name}"),
        name: name.into(),
        group: Some("admin".into()),
        schedule_kind: "interval".into(),
        schedule_value: "1m".into(),
        tz: "UTC".into(),
        runner: r#"{"kind":"shell","command":"true"}"#.into(),
        policy: r#"{"concurrency":"forbid"}"#.into(),
        next_run: next,
    }
}

/// The decision the scheduler makes for an interval task: one run now, the next a minute later.
fn every_minute(d: &lookout_store::DueTask) -> Option<Claim> {
    let due = d.task.next_run?;
    Some(Claim {
        next_run: Some(due + TimeDelta::minutes(1)),
        runs: vec![NewRun {
            scheduled_for: due,
            skipped: None,
        }],
    })
}

async fn tasks_are_upserted_listed_paused_resumed_and_deleted(store: Store) {
    let now = t("2026-11-24T10:00:00Z");
    for kind in [OwnerKind::Task, OwnerKind::HostJob] {
        let a = store
            .upsert_task(&new_task(kind, "a", Some(t("2026-11-24T10:01:00Z"))), now)
            .await
            .unwrap();
        assert_eq!(a.status, TaskStatus::Active);
        assert_eq!(a.policy.replace(' ', ""), r#"{"concurrency":"forbid"}"#);
        assert_eq!(a.next_run, Some(t("2026-11-24T10:01:00Z")));
        // Same schedule: next_run kept; another schedule: replaced. The id stays.
        let mut again = new_task(kind, "a", Some(t("2026-11-24T11:00:00Z")));
        again.id = "other".into();
        let kept = store.upsert_task(&again, now).await.unwrap();
        assert_eq!(kept.id, "id-a");
        assert_eq!(kept.next_run, Some(t("2026-11-24T10:01:00Z")));
        again.schedule_value = "5m".into();
        let moved = store.upsert_task(&again, now).await.unwrap();
        assert_eq!(moved.next_run, Some(t("2026-11-24T11:00:00Z")));

        store
            .upsert_task(&new_task(kind, "b", None), now)
            .await
            .unwrap();
        let names: Vec<_> = store
            .list_tasks(kind)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["a", "b"]);

        assert!(
            store
                .set_task_status(kind, "a", TaskStatus::Paused, None, now)
                .await
                .unwrap()
        );
        let paused = store.get_task(kind, "a").await.unwrap().unwrap();
        assert_eq!((paused.status, paused.next_run), (TaskStatus::Paused, None));
        // A paused task is never due.
        let claimed = store
            .claim_due_runs(kind, t("2030-01-01T00:00:00Z"), "s1", 100, every_minute)
            .await
            .unwrap();
        assert!(claimed.is_empty());
        store
            .set_task_status(
                kind,
                "a",
                TaskStatus::Active,
                Some(t("2026-11-24T12:00:00Z")),
                now,
            )
            .await
            .unwrap();
        assert_eq!(
            store.next_due_at(kind).await.unwrap(),
            Some(t("2026-11-24T12:00:00Z"))
        );
        assert!(store.delete_task(kind, "b").await.unwrap());
        assert!(!store.delete_task(kind, "b").await.unwrap());
        assert!(store.get_task(kind, "b").await.unwrap().is_none());
        assert!(
            !store
                .set_task_status(kind, "b", TaskStatus::Paused, None, now)
                .await
                .unwrap()
        );
    }
    // A task needs a group; a host job does not.
    let mut no_group = new_task(OwnerKind::Task, "c", None);
    no_group.group = None;
    assert!(store.upsert_task(&no_group, now).await.is_err());
    no_group.kind = OwnerKind::HostJob;
    store.upsert_task(&no_group, now).await.unwrap();
}

async fn a_due_run_is_claimed_once_and_runs_have_a_history(store: Store) {
    let now = t("2026-11-24T10:00:00Z");
    let task = store
        .upsert_task(
            &new_task(OwnerKind::Task, "a", Some(t("2026-11-24T10:00:00Z"))),
            now,
        )
        .await
        .unwrap();
    let first = store
        .claim_due_runs(OwnerKind::Task, now, "s1", 10, every_minute)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].scheduled_for, now);
    // Claimed: not due again at the same instant.
    let again = store
        .claim_due_runs(OwnerKind::Task, now, "s2", 10, every_minute)
        .await
        .unwrap();
    assert!(again.is_empty());
    // A decision that does not move next_run (the same instant twice) records nothing twice.
    store
        .set_next_run(OwnerKind::Task, &task.id, Some(now), now)
        .await
        .unwrap();
    let dup = store
        .claim_due_runs(OwnerKind::Task, now, "s2", 10, every_minute)
        .await
        .unwrap();
    assert!(
        dup.is_empty(),
        "the unique key refuses a second run for one instant"
    );

    let run = first[0].run_id;
    assert_eq!(
        store.running_runs(OwnerKind::Task).await.unwrap()[0].id,
        run
    );
    store
        .start_run(run, t("2026-11-24T10:00:01Z"))
        .await
        .unwrap();
    assert!(
        store
            .finish_run(run, RunOutcome::Ok, Some("done"), t("2026-11-24T10:00:09Z"))
            .await
            .unwrap()
    );
    // Finishing twice changes nothing.
    assert!(
        !store
            .finish_run(run, RunOutcome::Failed, None, t("2026-11-24T10:00:10Z"))
            .await
            .unwrap()
    );
    let got = store.get_run(run).await.unwrap().unwrap();
    assert_eq!(got.outcome, RunOutcome::Ok);
    assert_eq!(got.output_summary.as_deref(), Some("done"));
    assert_eq!(got.started_at, Some(t("2026-11-24T10:00:01Z")));
    assert_eq!(got.finished_at, Some(t("2026-11-24T10:00:09Z")));
    let task = store.get_task(OwnerKind::Task, "a").await.unwrap().unwrap();
    assert_eq!(task.last_result.as_deref(), Some("ok"));
    assert_eq!(task.last_run, Some(t("2026-11-24T10:00:01Z")));

    // A skipped run is recorded as such, finished at once.
    store
        .set_next_run(
            OwnerKind::Task,
            &task.id,
            Some(t("2026-11-24T10:05:00Z")),
            now,
        )
        .await
        .unwrap();
    let skipped = store
        .claim_due_runs(OwnerKind::Task, t("2026-11-24T10:05:00Z"), "s1", 10, |d| {
            assert_eq!(d.running, 0);
            Some(Claim {
                next_run: None,
                runs: vec![NewRun {
                    scheduled_for: d.task.next_run.unwrap(),
                    skipped: Some("previous run still running".into()),
                }],
            })
        })
        .await
        .unwrap();
    assert_eq!(skipped.len(), 1);
    let history = store
        .task_runs(OwnerKind::Task, &task.id, 10)
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|r| r.outcome).collect::<Vec<_>>(),
        [RunOutcome::Skipped, RunOutcome::Ok]
    );
    // next_run None: a one-off is completed.
    let task = store.get_task(OwnerKind::Task, "a").await.unwrap().unwrap();
    assert_eq!((task.status, task.next_run), (TaskStatus::Completed, None));
}

async fn runs_left_running_are_interrupted_for_their_scheduler_only(store: Store) {
    let now = t("2026-11-24T10:00:00Z");
    for name in ["a", "b"] {
        store
            .upsert_task(&new_task(OwnerKind::Task, name, Some(now)), now)
            .await
            .unwrap();
    }
    let mut n = 0;
    let mine = store
        .claim_due_runs(OwnerKind::Task, now, "s1", 1, every_minute)
        .await
        .unwrap();
    n += mine.len();
    let theirs = store
        .claim_due_runs(OwnerKind::Task, now, "s2", 1, every_minute)
        .await
        .unwrap();
    n += theirs.len();
    assert_eq!(n, 2);
    let interrupted = store
        .interrupt_running_runs(
            OwnerKind::Task,
            "s1",
            "lookoutd stopped during the run",
            t("2026-11-24T10:30:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(interrupted.len(), 1);
    assert_eq!(interrupted[0].id, mine[0].run_id);
    assert_eq!(interrupted[0].outcome, RunOutcome::Interrupted);
    let running = store.running_runs(OwnerKind::Task).await.unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].id, theirs[0].run_id);
    // The due query counts running runs of a task (forbid decides with it).
    store
        .set_next_run(OwnerKind::Task, &theirs[0].task.id, Some(now), now)
        .await
        .unwrap();
    let mut seen = None;
    store
        .claim_due_runs(OwnerKind::Task, now, "s1", 10, |d| {
            if d.task.id == theirs[0].task.id {
                seen = Some(d.running);
            }
            None
        })
        .await
        .unwrap();
    assert_eq!(seen, Some(1));
}

async fn overdue_tasks_are_those_past_their_grace(store: Store) {
    let now = t("2026-11-24T10:00:00Z");
    store
        .upsert_task(
            &new_task(OwnerKind::Task, "late", Some(t("2026-11-24T09:50:00Z"))),
            now,
        )
        .await
        .unwrap();
    store
        .upsert_task(
            &new_task(OwnerKind::Task, "fine", Some(t("2026-11-24T09:59:30Z"))),
            now,
        )
        .await
        .unwrap();
    let overdue = store
        .overdue_tasks(OwnerKind::Task, now - TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        overdue.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["late"]
    );
}

/// Three schedulers on one database race for 1,000 due runs: every run is claimed exactly once.
async fn three_schedulers_claim_1000_due_runs_exactly_once(store: Store) {
    let now = t("2026-11-24T10:00:00Z");
    for i in 0..1000 {
        store
            .upsert_task(
                &new_task(OwnerKind::Task, &format!("t{i:04}"), Some(now)),
                now,
            )
            .await
            .unwrap();
    }
    // Each scheduler has its own pool (PostgreSQL: its own connections, as separate daemons would).
    let mut handles = Vec::new();
    for s in 0..3 {
        let own = match store.backend() {
            Backend::Postgres => reopen_pg(&store).await,
            Backend::Sqlite => store.clone(),
        };
        handles.push(tokio::spawn(async move {
            let name = format!("s{s}");
            let mut mine = Vec::new();
            loop {
                let got = own
                    .claim_due_runs(OwnerKind::Task, now, &name, 50, every_minute)
                    .await
                    .unwrap();
                if got.is_empty() {
                    // Nothing left that this scheduler could see unlocked; check once more after
                    // the others commit.
                    tokio::task::yield_now().await;
                    if own.next_due_at(OwnerKind::Task).await.unwrap() > Some(now) {
                        break;
                    }
                    continue;
                }
                mine.extend(got.into_iter().map(|c| (c.task.id, c.scheduled_for)));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    let mut per = Vec::new();
    for h in handles {
        let mine = h.await.unwrap();
        per.push(mine.len());
        all.extend(mine);
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), 1000, "claimed per scheduler: {per:?}");
    assert_eq!(unique.len(), 1000);
    let rows = store.running_runs(OwnerKind::Task).await.unwrap();
    assert_eq!(rows.len(), 1000);
    if store.backend() == Backend::Postgres {
        assert!(
            per.iter().filter(|&&n| n > 0).count() >= 2,
            "the work was shared: {per:?}"
        );
    }
}

/// A second store on the same PostgreSQL database (the test store's URL has no password).
async fn reopen_pg(store: &Store) -> Store {
    Store::open(store.display_url()).await.unwrap()
}

lookout_store::store_tests!(
    tasks_are_upserted_listed_paused_resumed_and_deleted,
    a_due_run_is_claimed_once_and_runs_have_a_history,
    runs_left_running_are_interrupted_for_their_scheduler_only,
    overdue_tasks_are_those_past_their_grace,
    three_schedulers_claim_1000_due_runs_exactly_once,
);
