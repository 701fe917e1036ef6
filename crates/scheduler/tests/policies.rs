//! The scheduler under tokio's paused clock: every schedule kind, policy and heartbeat timing.
//! Nothing here sleeps for real: `tokio::time::sleep` in a paused runtime moves virtual time.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_scheduler::{
    CallbackRunner, Concurrency, MemoryReporter, MemoryTaskStore, Missed, OwnerKind, RunOutcome,
    RunResult, RunnerSpec, Scheduler, SchedulerConfig, TaskPolicy, TaskSpec, TaskStore, TokioClock,
};

const T0: &str = "2026-11-24T09:59:30Z";

struct Harness {
    scheduler: Scheduler,
    reporter: Arc<MemoryReporter>,
    store: Arc<MemoryTaskStore>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    loop_task: Option<tokio::task::JoinHandle<()>>,
}

/// Callbacks: `sleep:<secs>` sleeps then succeeds, `fail` fails at once.
fn callbacks() -> CallbackRunner {
    let mut c = CallbackRunner::new();
    c.register("sleep-150", |_r, p| async move {
        p.set_last_line("step 1 of 3");
        tokio::time::sleep(Duration::from_secs(75)).await;
        p.set_last_line("step 2 of 3");
        p.set_progress("2/3");
        tokio::time::sleep(Duration::from_secs(75)).await;
        RunResult::ok("23 API calls")
    });
    c.register("sleep-1800", |_r, _p| async move {
        tokio::time::sleep(Duration::from_secs(1800)).await;
        RunResult::ok("long one done")
    });
    c.register("sleep-720", |_r, _p| async move {
        tokio::time::sleep(Duration::from_secs(720)).await;
        RunResult::ok("finally")
    });
    c.register("quick", |_r, _p| async move { RunResult::ok("done") });
    c.register("fail", |_r, _p| async move {
        RunResult::failed("exit status 3: boom")
    });
    c.register("forever", |_r, _p| async move {
        std::future::pending::<()>().await;
        RunResult::ok("never")
    });
    c
}

async fn harness_with(instance: &str, store: Option<Arc<MemoryTaskStore>>) -> Harness {
    let store = store.unwrap_or_default();
    let reporter = Arc::new(MemoryReporter::new());
    let clock = Arc::new(TokioClock::starting_at(T0.parse().unwrap()));
    let mut cfg = SchedulerConfig::new(instance, OwnerKind::Task);
    cfg.tick = Duration::from_secs(5);
    let scheduler = Scheduler::new(
        store.clone(),
        clock,
        Arc::new(callbacks()),
        reporter.clone(),
        cfg,
    );
    Harness {
        scheduler,
        reporter,
        store,
        stop: None,
        loop_task: None,
    }
}

async fn harness() -> Harness {
    harness_with("s1", None).await
}

impl Harness {
    fn start(&mut self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let s = self.scheduler.clone();
        self.stop = Some(tx);
        self.loop_task = Some(tokio::spawn(async move {
            s.run_until(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        }));
    }

    async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.loop_task.take() {
            h.await.unwrap();
        }
    }

    async fn add(&self, name: &str, schedule: &str, callback: &str, policy: TaskPolicy) {
        self.scheduler
            .upsert_task(&TaskSpec {
                name: name.into(),
                group: Some("ops".into()),
                schedule: schedule.into(),
                tz: "UTC".into(),
                runner: RunnerSpec::callback(callback),
                policy,
            })
            .await
            .unwrap();
    }

    async fn outcomes(&self, name: &str) -> Vec<(String, RunOutcome)> {
        let mut runs = self.scheduler.history(name, 100).await.unwrap();
        runs.reverse();
        runs.into_iter()
            .map(|r| (r.scheduled_for.format("%H:%M:%S").to_string(), r.outcome))
            .collect()
    }

    fn texts(&self) -> Vec<String> {
        self.reporter.texts()
    }
}

async fn minutes(n: u64) {
    tokio::time::sleep(Duration::from_secs(60 * n)).await;
}

fn count(texts: &[String], needle: &str) -> usize {
    texts.iter().filter(|t| t.contains(needle)).count()
}

#[tokio::test(start_paused = true)]
async fn cron_task_runs_each_minute_and_says_so() {
    let mut h = harness().await;
    h.add("tick", "* * * * *", "quick", TaskPolicy::default())
        .await;
    h.start();
    minutes(3).await;
    h.stop().await;
    assert_eq!(
        h.outcomes("tick").await,
        [
            ("10:00:00".to_string(), RunOutcome::Ok),
            ("10:01:00".to_string(), RunOutcome::Ok),
            ("10:02:00".to_string(), RunOutcome::Ok),
        ]
    );
    let texts = h.texts();
    assert_eq!(count(&texts, "⏱ tick starting"), 3, "{texts:#?}");
    assert_eq!(
        count(&texts, "✅ tick finished in 0s: done"),
        3,
        "{texts:#?}"
    );
    // Events in the product's vocabulary.
    let events = h.reporter.events();
    assert_eq!(events[0].kind, "run_started");
    assert_eq!(events[0].payload["run_kind"], "task");
    assert_eq!(events[0].payload["task"], "tick");
    assert_eq!(events[0].payload["group"], "ops");
    assert_eq!(events[1].kind, "run_finished");
    assert_eq!(events[1].payload["outcome"], "ok");
    // Lag is tiny on a paused clock.
    let mut reg = prometheus_client::registry::Registry::default();
    h.scheduler.metrics().register(&mut reg);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    assert!(
        text.contains("lookout_scheduler_runs_started_total{owner=\"task\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("lookout_scheduler_runs_finished_total{owner=\"task\",outcome=\"ok\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("lookout_scheduler_scheduling_lag_seconds_count{owner=\"task\"} 3"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn interval_and_once_schedules() {
    let mut h = harness().await;
    h.add("every", "every 15m", "quick", TaskPolicy::default())
        .await;
    h.add(
        "once",
        "at 2026-11-24T10:05:00Z",
        "quick",
        TaskPolicy::default(),
    )
    .await;
    h.start();
    minutes(46).await;
    h.stop().await;
    // every 15m from 09:59:30
    assert_eq!(
        h.outcomes("every").await,
        [
            ("10:14:30".to_string(), RunOutcome::Ok),
            ("10:29:30".to_string(), RunOutcome::Ok),
            ("10:44:30".to_string(), RunOutcome::Ok),
        ]
    );
    assert_eq!(
        h.outcomes("once").await,
        [("10:05:00".to_string(), RunOutcome::Ok)]
    );
    let once = h
        .store
        .get_task(OwnerKind::Task, "once")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(once.status, lookout_store::TaskStatus::Completed);
}

#[tokio::test(start_paused = true)]
async fn heartbeats_every_interval_while_running_and_none_after() {
    let mut h = harness().await;
    h.add("long", "0 10 * * *", "sleep-150", TaskPolicy::default())
        .await;
    h.start();
    minutes(10).await;
    h.stop().await;
    let texts: Vec<String> = h
        .reporter
        .notifications()
        .into_iter()
        .filter(|n| n.group.as_deref() == Some("ops"))
        .map(|n| n.text)
        .collect();
    assert_eq!(
        texts,
        [
            "⏱ long starting",
            "⏱ long still running (1m elapsed) — last output: step 1 of 3",
            "⏱ long still running (2m elapsed) — last output: step 2 of 3",
            "✅ long finished in 2m 30s: 23 API calls",
        ]
    );
    let beats: Vec<_> = h
        .reporter
        .events()
        .into_iter()
        .filter(|e| e.kind == "run_heartbeat")
        .collect();
    assert_eq!(beats.len(), 2);
    assert_eq!(beats[1].payload["progress"], "2/3");
}

#[tokio::test(start_paused = true)]
async fn a_shorter_heartbeat_interval_from_the_policy() {
    let mut h = harness().await;
    let policy = TaskPolicy {
        heartbeat: Some(Duration::from_secs(20)),
        ..TaskPolicy::default()
    };
    h.add("long", "0 10 * * *", "sleep-150", policy).await;
    h.start();
    minutes(5).await;
    h.stop().await;
    // 150 s at 20 s intervals: 20, 40, …, 140 → 7 heartbeats.
    assert_eq!(count(&h.texts(), "still running"), 7, "{:#?}", h.texts());
}

#[tokio::test(start_paused = true)]
async fn a_timeout_stops_the_run_and_says_so() {
    let mut h = harness().await;
    let policy = TaskPolicy {
        timeout: Some(Duration::from_secs(90)),
        ..TaskPolicy::default()
    };
    h.add("slow", "0 10 * * *", "sleep-1800", policy).await;
    h.start();
    minutes(10).await;
    h.stop().await;
    assert_eq!(
        h.outcomes("slow").await,
        [("10:00:00".to_string(), RunOutcome::Timeout)]
    );
    let texts = h.texts();
    assert_eq!(count(&texts, "still running (1m elapsed)"), 1, "{texts:#?}");
    assert_eq!(
        count(&texts, "❌ slow timed out after 1m 30s and was stopped"),
        1,
        "{texts:#?}"
    );
    assert_eq!(count(&texts, "still running (2m elapsed)"), 0, "{texts:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_failure_is_reported_with_its_error() {
    let mut h = harness().await;
    h.add("bad", "0 10 * * *", "fail", TaskPolicy::default())
        .await;
    h.start();
    minutes(2).await;
    h.stop().await;
    assert_eq!(
        h.outcomes("bad").await,
        [("10:00:00".to_string(), RunOutcome::Failed)]
    );
    assert_eq!(
        count(&h.texts(), "❌ bad failed after 0s: exit status 3: boom"),
        1
    );
    let fin = h
        .reporter
        .events()
        .into_iter()
        .find(|e| e.kind == "run_finished")
        .unwrap();
    assert_eq!(fin.payload["error"], "exit status 3: boom");
}

fn concurrency(c: Concurrency) -> TaskPolicy {
    TaskPolicy {
        concurrency: c,
        ..TaskPolicy::default()
    }
}

#[tokio::test(start_paused = true)]
async fn concurrency_forbid_skips_a_run_due_while_one_runs() {
    let mut h = harness().await;
    // Runs 150 s, due every minute.
    h.add(
        "c",
        "* * * * *",
        "sleep-150",
        concurrency(Concurrency::Forbid),
    )
    .await;
    h.start();
    minutes(3).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    h.stop().await;
    assert_eq!(
        h.outcomes("c").await,
        [
            ("10:00:00".to_string(), RunOutcome::Ok),
            ("10:01:00".to_string(), RunOutcome::Skipped),
            ("10:02:00".to_string(), RunOutcome::Skipped),
        ]
    );
    // One line for the first skip behind run #1, none for the second, and what it held up once
    // it ended (at 10:02:30).
    let texts = h.texts();
    assert_eq!(count(&texts, "⏭ c"), 2, "{texts:#?}");
    assert_eq!(
        count(&texts, "⏭ c: skipped, run #1 still running since 10:00 UTC"),
        1,
        "{texts:#?}"
    );
    assert_eq!(
        count(
            &texts,
            "⏭ c: run #1 ended after 2m 30s; 2 run(s) were skipped behind it"
        ),
        1,
        "{texts:#?}"
    );
    assert_eq!(count(&texts, "overdue"), 0, "within the grace: {texts:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_forbid_task_behind_a_hung_run_is_one_skip_line_one_overdue_alert_and_one_resolved() {
    let mut h = harness().await;
    // Due every minute; its first run takes 12 minutes (a hang, as far as the schedule goes).
    h.add(
        "hog",
        "* * * * *",
        "sleep-720",
        concurrency(Concurrency::Forbid),
    )
    .await;
    h.start();
    // Through the hang: 10:01 … 10:11 are skipped behind run #1.
    minutes(11).await;
    tokio::time::sleep(Duration::from_secs(40)).await;
    let during = h.texts();
    assert_eq!(
        count(
            &during,
            "⏭ hog: skipped, run #1 still running since 10:00 UTC"
        ),
        1,
        "one skip line, not one per period: {during:#?}"
    );
    assert_eq!(count(&during, "⏭"), 1, "{during:#?}");
    // The grace (2 min) passed from the first skipped instant (10:01) with no run started: one
    // alert, at the first tick after 10:03, raised once.
    let alerts: Vec<&String> = during.iter().filter(|t| t.starts_with("⏰ hog")).collect();
    assert_eq!(alerts.len(), 1, "{during:#?}");
    assert!(
        alerts[0].starts_with("⏰ hog is overdue / stuck: run #1 running for 3m"),
        "{}",
        alerts[0]
    );
    assert!(alerts[0].ends_with(", 3 run(s) skipped"), "{}", alerts[0]);
    let raised = h
        .reporter
        .notifications()
        .into_iter()
        .find(|n| n.text.starts_with("⏰ hog"))
        .unwrap();
    assert_eq!(raised.dedup_key, "task-overdue:hog");
    // Run #1 ends at 10:12; the 10:13 run starts: a summary, then the alert resolves once.
    minutes(2).await;
    h.stop().await;
    let after = h.texts();
    assert_eq!(
        count(
            &after,
            "⏭ hog: run #1 ended after 12m; 11 run(s) were skipped behind it"
        ),
        1,
        "{after:#?}"
    );
    assert_eq!(
        count(&after, "✅ hog is running again (was overdue)"),
        1,
        "{after:#?}"
    );
    assert_eq!(count(&after, "⏰ hog"), 1, "{after:#?}");
    let outcomes = h.outcomes("hog").await;
    assert_eq!(outcomes[0].1, RunOutcome::Ok, "{outcomes:?}");
    assert!(
        outcomes[1..12]
            .iter()
            .all(|(_, o)| *o == RunOutcome::Skipped),
        "{outcomes:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_forbid_task_held_up_by_another_schedulers_run_is_still_one_overdue_alert() {
    // Two schedulers on one store: s1 runs the hung run, s2 claims the instants behind it and
    // knows nothing of that run but that it holds the task up.
    let s1 = harness_with("s1", None).await;
    let mut s2 = harness_with("s2", Some(s1.store.clone())).await;
    s1.add(
        "hog",
        "* * * * *",
        "sleep-720",
        concurrency(Concurrency::Forbid),
    )
    .await;
    // s1 ticks alone until it starts the first run.
    let mut started = Vec::new();
    for _ in 0..30 {
        started = s1.scheduler.tick().await.unwrap().started;
        if !started.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    assert_eq!(started.len(), 1, "s1 runs the first instant");
    s2.start();
    minutes(11).await;
    tokio::time::sleep(Duration::from_secs(40)).await;
    let during = s2.texts();
    assert_eq!(
        count(
            &during,
            "⏭ hog: skipped, a run is still running (on another scheduler)"
        ),
        1,
        "{during:#?}"
    );
    let alerts: Vec<&String> = during.iter().filter(|t| t.starts_with("⏰ hog")).collect();
    assert_eq!(
        alerts,
        ["⏰ hog is overdue / stuck: a run still running on another scheduler, 3 run(s) skipped"],
        "one alert, though the run is another scheduler's: {during:#?}"
    );
    // s1's run ends at 10:12; s2 starts 10:13: the alert resolves once.
    minutes(2).await;
    s2.stop().await;
    assert_eq!(
        count(&s2.texts(), "✅ hog is running again (was overdue)"),
        1,
        "{:#?}",
        s2.texts()
    );
}

#[tokio::test(start_paused = true)]
async fn concurrency_allow_runs_both() {
    let mut h = harness().await;
    h.add(
        "c",
        "* * * * *",
        "sleep-150",
        concurrency(Concurrency::Allow),
    )
    .await;
    h.start();
    minutes(4).await;
    tokio::time::sleep(Duration::from_secs(40)).await;
    h.stop().await;
    // 10:00 and 10:01 ended (at 10:02:30, 10:03:30); 10:02, 10:03, 10:04 still running at 10:04:10.
    let o = h.outcomes("c").await;
    assert_eq!(o[0].1, RunOutcome::Ok);
    assert_eq!(o[1].1, RunOutcome::Ok);
    assert_eq!(o.len(), 5, "{o:?}");
    assert!(
        o[2..].iter().all(|(_, r)| *r == RunOutcome::Interrupted),
        "{o:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn concurrency_replace_stops_the_old_run() {
    let mut h = harness().await;
    h.add(
        "c",
        "* * * * *",
        "sleep-150",
        concurrency(Concurrency::Replace),
    )
    .await;
    h.start();
    minutes(2).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    h.stop().await;
    let o = h.outcomes("c").await;
    assert_eq!(
        o,
        [
            ("10:00:00".to_string(), RunOutcome::Interrupted),
            ("10:01:00".to_string(), RunOutcome::Interrupted),
        ]
    );
    let runs = h.scheduler.history("c", 10).await.unwrap();
    assert!(
        runs.iter().any(|r| r
            .output_summary
            .as_deref()
            .is_some_and(|s| s.starts_with("replaced by run"))),
        "{runs:?}"
    );
    assert_eq!(
        count(&h.texts(), "❌ c interrupted after 1m: replaced by run"),
        1
    );
    assert_eq!(
        count(
            &h.texts(),
            "❌ c interrupted after 40s: the scheduler stopped"
        ),
        1
    );
}

fn missed(m: Missed) -> TaskPolicy {
    TaskPolicy {
        missed: m,
        starting_deadline: Some(Duration::from_secs(25 * 60)),
        ..TaskPolicy::default()
    }
}

/// The scheduler is down from 10:00 to 10:35: runs due at 10:10, 10:20, 10:30 are missed.
async fn after_downtime(policy: TaskPolicy) -> Harness {
    let mut h = harness().await;
    h.add("m", "*/10 * * * *", "quick", policy).await;
    // Down: no loop. (The task's first run is 10:00:00, which the 09:59:30 start would catch; move
    // time past it first with the loop running, then stop.)
    h.start();
    minutes(1).await;
    h.stop().await;
    minutes(34).await; // 10:34:30
    h.start();
    minutes(1).await; // 10:35:30
    h.stop().await;
    h
}

#[tokio::test(start_paused = true)]
async fn missed_skip_runs_none_and_records_how_many() {
    let h = after_downtime(missed(Missed::Skip)).await;
    assert_eq!(
        h.outcomes("m").await,
        [
            ("10:00:00".to_string(), RunOutcome::Ok),
            ("10:10:00".to_string(), RunOutcome::Skipped),
        ]
    );
    let runs = h.scheduler.history("m", 10).await.unwrap();
    assert!(
        runs[0].output_summary.as_deref().unwrap().starts_with(
            "3 missed run(s) due from 2026-11-24T10:10:00+00:00 to 2026-11-24T10:30:00+00:00"
        ),
        "{runs:?}"
    );
    let task = h
        .store
        .get_task(OwnerKind::Task, "m")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        task.next_run,
        Some("2026-11-24T10:40:00Z".parse::<DateTime<Utc>>().unwrap())
    );
}

#[tokio::test(start_paused = true)]
async fn missed_run_once_runs_one_for_all() {
    let h = after_downtime(missed(Missed::RunOnce)).await;
    assert_eq!(
        h.outcomes("m").await,
        [
            ("10:00:00".to_string(), RunOutcome::Ok),
            ("10:10:00".to_string(), RunOutcome::Skipped),
            ("10:30:00".to_string(), RunOutcome::Ok),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn missed_catch_up_runs_each_within_the_deadline() {
    // Deadline 25 min at 10:34:30: 10:10 is too old (24.5 min? no: 24.5 < 25 → within).
    let h = after_downtime(TaskPolicy {
        missed: Missed::CatchUp,
        starting_deadline: Some(Duration::from_secs(20 * 60)),
        ..TaskPolicy::default()
    })
    .await;
    // At 10:34:30: 10:10 is 24.5 min old (> 20: skipped), 10:20 and 10:30 run, one after another.
    assert_eq!(
        h.outcomes("m").await,
        [
            ("10:00:00".to_string(), RunOutcome::Ok),
            ("10:10:00".to_string(), RunOutcome::Skipped),
            ("10:20:00".to_string(), RunOutcome::Ok),
            ("10:30:00".to_string(), RunOutcome::Ok),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn jitter_delays_the_start_within_its_bound() {
    let mut h = harness().await;
    let policy = TaskPolicy {
        jitter: Some(Duration::from_secs(30)),
        ..TaskPolicy::default()
    };
    h.add("j", "0 10 * * *", "quick", policy).await;
    h.start();
    minutes(2).await;
    h.stop().await;
    let run = &h.scheduler.history("j", 1).await.unwrap()[0];
    let delay = run.started_at.unwrap() - run.scheduled_for;
    assert!(
        delay >= chrono::TimeDelta::zero() && delay < chrono::TimeDelta::seconds(31),
        "{delay}"
    );
    assert_eq!(run.outcome, RunOutcome::Ok);
}

#[tokio::test(start_paused = true)]
async fn pause_and_resume() {
    let mut h = harness().await;
    h.add("p", "* * * * *", "quick", TaskPolicy::default())
        .await;
    h.scheduler.pause("p").await.unwrap();
    h.start();
    minutes(3).await;
    assert!(h.outcomes("p").await.is_empty());
    h.scheduler.resume("p").await.unwrap();
    minutes(2).await;
    h.stop().await;
    // Resumed at 10:02:30: runs at 10:03 and 10:04, none for the paused minutes.
    assert_eq!(
        h.outcomes("p").await,
        [
            ("10:03:00".to_string(), RunOutcome::Ok),
            ("10:04:00".to_string(), RunOutcome::Ok),
        ]
    );
    assert!(h.scheduler.pause("nope").await.is_err());
}

#[tokio::test(start_paused = true)]
async fn a_run_left_running_by_a_crash_is_interrupted_at_the_next_start() {
    let store = Arc::new(MemoryTaskStore::new());
    let mut first = harness_with("host-a", Some(store.clone())).await;
    first
        .add("f", "0 10 * * *", "forever", TaskPolicy::default())
        .await;
    first.start();
    minutes(2).await;
    // A crash: the loop and its run vanish without recording anything.
    first.loop_task.take().unwrap().abort();
    assert_eq!(first.outcomes("f").await[0].1, RunOutcome::Running);

    let reporter = Arc::new(MemoryReporter::new());
    let again = Scheduler::new(
        store,
        Arc::new(TokioClock::starting_at(
            "2026-11-24T10:30:00Z".parse().unwrap(),
        )),
        Arc::new(callbacks()),
        reporter.clone(),
        SchedulerConfig::new("host-a", OwnerKind::Task),
    );
    let interrupted = again.recover().await.unwrap();
    assert_eq!(interrupted.len(), 1);
    assert_eq!(interrupted[0].outcome, RunOutcome::Interrupted);
    assert_eq!(
        reporter.texts(),
        [
            "⚠️ f was interrupted: the scheduler stopped during its run (started 2026-11-24T10:00:00+00:00)"
        ]
    );
    assert_eq!(reporter.events()[0].payload["outcome"], "interrupted");
}

#[tokio::test(start_paused = true)]
async fn a_catch_up_queued_behind_its_own_run_is_not_overdue() {
    let mut h = harness().await;
    // Down until 10:14:30, so 10:00 and 10:10 were missed; catch_up runs 10:00 (30 minutes), and
    // with forbid the 10:10 run waits behind it. The missed-run policy is handling it: waiting
    // behind its own run is not "never ran", so no overdue alert (lookoutd's downtime is the
    // cause, and catch_up its answer).
    let policy = TaskPolicy {
        missed: Missed::CatchUp,
        concurrency: Concurrency::Forbid,
        ..TaskPolicy::default()
    };
    h.add("o", "*/10 * * * *", "sleep-1800", policy).await;
    minutes(15).await;
    h.start();
    minutes(31).await;
    h.stop().await;
    let texts = h.texts();
    assert_eq!(count(&texts, "⏰ o is overdue"), 0, "{texts:#?}");
    // The 10:10 run started when the 10:00 one ended, caught up in order.
    let outcomes = h.outcomes("o").await;
    assert!(outcomes.len() >= 2, "{outcomes:?}");
}

#[tokio::test(start_paused = true)]
async fn a_task_whose_runs_cannot_be_claimed_is_overdue_once_then_resolved() {
    let mut h = harness().await;
    h.add("d", "* * * * *", "quick", TaskPolicy::default())
        .await;
    // Writes fail (a full disk) while reads answer: no run can be claimed, so none starts.
    h.store.fail_claims(Some("no space left on device"));
    h.start();
    minutes(5).await;
    let texts = h.texts();
    // Due at 10:00, grace 2 min: overdue from 10:02, said once however many ticks see it.
    assert_eq!(
        count(&texts, "⏰ d is overdue: due at 2026-11-24T10:00:00+00:00"),
        1,
        "{texts:#?}"
    );
    assert!(h.outcomes("d").await.is_empty());
    // Claims work again: the task runs, and the alert is resolved once.
    h.store.fail_claims(None);
    minutes(2).await;
    h.stop().await;
    let texts = h.texts();
    assert_eq!(count(&texts, "⏰ d is overdue"), 1, "{texts:#?}");
    assert_eq!(count(&texts, "(was overdue)"), 1, "{texts:#?}");
    assert!(
        h.outcomes("d")
            .await
            .iter()
            .any(|(_, o)| *o == RunOutcome::Ok),
        "{:?}",
        h.outcomes("d").await
    );
}
