//! The scheduler on an in-memory task store (`MemoryTaskStore`), running shell commands with the
//! `ShellRunner` for about four seconds: `tick` runs `echo` every second, `flaky` runs a command that
//! fails every two seconds. Everything the reporter receives — "⏱ starting", "✅/❌ finished"
//! notifications and `run_started` / `run_finished` events — is printed as it arrives (a small
//! reporter that prints and forwards to a `MemoryReporter`), then the runs' history is read back.
//!
//! Run it with:
//!
//! ```text
//! cargo run -p lookout-scheduler --example every_second
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_scheduler::{
    MemoryReporter, MemoryTaskStore, Notification, OwnerKind, Reporter, RunEvent, RunOutcome,
    RunnerSpec, Scheduler, SchedulerConfig, ShellRunner, SystemClock, TaskPolicy, TaskSpec,
};

/// Prints what it receives, with the time since the start, and keeps it in a `MemoryReporter`.
struct Printing {
    start: Instant,
    memory: MemoryReporter,
}

#[async_trait::async_trait]
impl Reporter for Printing {
    async fn notify(&self, n: Notification) {
        let t = self.start.elapsed().as_secs_f32();
        println!("{t:5.2}s notify [{}] {}", n.severity, n.text);
        self.memory.notify(n).await;
    }

    async fn event(&self, e: RunEvent) {
        let t = self.start.elapsed().as_secs_f32();
        let field = |k: &str| e.payload[k].as_str().unwrap_or("").to_owned();
        let line = format!(
            "{t:5.2}s event  {} task={} run={} {}",
            e.kind,
            field("task"),
            field("run_id"),
            field("outcome")
        );
        println!("{}", line.trim_end());
        self.memory.event(e).await;
    }
}

fn task(name: &str, schedule: &str, command: &str) -> TaskSpec {
    TaskSpec {
        name: name.into(),
        group: Some("ops".into()),
        schedule: schedule.into(),
        tz: "UTC".into(),
        runner: RunnerSpec::shell(command),
        policy: TaskPolicy {
            timeout: Some(Duration::from_secs(5)),
            ..TaskPolicy::default()
        },
    }
}

#[tokio::main]
async fn main() {
    let reporter = Arc::new(Printing {
        start: Instant::now(),
        memory: MemoryReporter::new(),
    });
    let scheduler = Scheduler::new(
        Arc::new(MemoryTaskStore::new()),
        Arc::new(SystemClock),
        Arc::new(ShellRunner::new()),
        reporter.clone(),
        SchedulerConfig::new("example", OwnerKind::Task),
    );
    for spec in [
        task("tick", "every 1s", "echo tick at $(date +%T)"),
        task("flaky", "every 2s", "echo 'disk full' >&2; exit 3"),
    ] {
        let record = scheduler.upsert_task(&spec).await.unwrap();
        println!(
            "task {} ({}), next run {}",
            record.name,
            spec.schedule,
            record
                .next_run
                .map(|t| t.format("%T%.3f").to_string())
                .unwrap_or_default()
        );
    }

    // Recover, then tick until the shutdown future completes; runs still going are interrupted.
    scheduler
        .run_until(tokio::time::sleep(Duration::from_millis(4500)))
        .await
        .unwrap();

    let ticks = scheduler.history("tick", 20).await.unwrap();
    let flaky = scheduler.history("flaky", 20).await.unwrap();
    let count = |runs: &[lookout_scheduler::TaskRun], o: RunOutcome| {
        runs.iter().filter(|r| r.outcome == o).count()
    };
    println!(
        "history: tick {} run(s), {} succeeded; flaky {} run(s), {} failed",
        ticks.len(),
        count(&ticks, RunOutcome::Ok),
        flaky.len(),
        count(&flaky, RunOutcome::Failed)
    );
    let texts = reporter.memory.texts();
    let events = reporter.memory.events();
    println!(
        "the reporter received {} notifications and {} events",
        texts.len(),
        events.len()
    );
    assert!(count(&ticks, RunOutcome::Ok) >= 3, "{ticks:#?}");
    assert!(count(&flaky, RunOutcome::Failed) >= 1, "{flaky:#?}");
    assert!(
        texts.iter().any(|t| t.starts_with("✅ tick finished")),
        "{texts:#?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("❌ flaky") && t.contains("disk full")),
        "{texts:#?}"
    );
    assert!(events.iter().any(|e| e.kind == "run_started"));
    assert!(events.iter().any(|e| e.kind == "run_finished"));
}
