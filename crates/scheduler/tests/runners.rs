//! Real runners: shell commands (success, failure, timeout that kills the grandchild too), a
//! one-shot container, and heartbeats seen during a real run with a shortened interval. These use
//! real time, briefly.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lookout_scheduler::{
    DockerRunner, MemoryReporter, MemoryTaskStore, OwnerKind, Progress, RunOutcome, RunRequest,
    RunnerSpec, Runners, Scheduler, SchedulerConfig, ShellRunner, SystemClock, TaskPolicy,
    TaskRunner, TaskSpec,
};

fn request(runner: RunnerSpec) -> RunRequest {
    RunRequest {
        run_id: 7,
        task: "t".into(),
        group: Some("ops".into()),
        scheduled_for: Utc::now(),
        runner,
    }
}

#[tokio::test]
async fn shell_success_captures_output_env_and_workdir() {
    let dir = tempfile::tempdir().unwrap();
    let spec = RunnerSpec::Shell {
        command: "echo hello; echo \"$GREETING from $(pwd)\"; echo warn >&2".into(),
        env: [("GREETING".to_string(), "hi".to_string())].into(),
        workdir: Some(dir.path().to_path_buf()),
    };
    let p = Progress::new();
    let r = ShellRunner::new().run(request(spec), p.clone()).await;
    assert!(r.success, "{r:?}");
    assert!(r.output.contains("hello"), "{r:?}");
    assert!(
        r.output
            .contains(&format!("hi from {}", dir.path().display())),
        "{r:?}"
    );
    assert!(r.output.contains("warn"), "{r:?}");
}

#[tokio::test]
async fn shell_failure_says_the_exit_status_and_last_line() {
    let r = ShellRunner::new()
        .run(
            request(RunnerSpec::shell("echo about to fail; exit 3")),
            Progress::new(),
        )
        .await;
    assert!(!r.success);
    assert_eq!(r.message, "exit status 3: about to fail");
}

#[tokio::test]
async fn shell_output_is_truncated_keeping_head_and_tail() {
    let r = ShellRunner::new()
        .run(
            request(RunnerSpec::shell(
                "i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done",
            )),
            Progress::new(),
        )
        .await;
    assert!(r.success);
    assert!(
        r.output.starts_with("line0\nline1\n"),
        "{}",
        &r.output[..50]
    );
    assert!(r.output.ends_with("line1999"));
    assert!(r.output.contains("bytes cut …]"));
    assert!(r.output.len() < 5000);
}

fn alive(pid: i32) -> bool {
    // A zombie is dead too: look at /proc state.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn shell_timeout_kills_the_command_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let store = Arc::new(MemoryTaskStore::new());
    let reporter = Arc::new(MemoryReporter::new());
    let scheduler = Scheduler::new(
        store,
        Arc::new(SystemClock),
        Arc::new(Runners::new()),
        reporter.clone(),
        SchedulerConfig::new("s", OwnerKind::Task),
    );
    scheduler
        .upsert_task(&TaskSpec {
            name: "hang".into(),
            group: Some("ops".into()),
            schedule: "0 0 1 1 *".into(),
            tz: "UTC".into(),
            runner: RunnerSpec::shell(&format!(
                "sleep 300 & echo $! > {}; echo started; wait",
                pidfile.display()
            )),
            policy: TaskPolicy {
                timeout: Some(Duration::from_millis(1500)),
                ..TaskPolicy::default()
            },
        })
        .await
        .unwrap();
    let run = scheduler.run_now("hang").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !scheduler.active_runs().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let h = scheduler.history("hang", 1).await.unwrap();
    assert_eq!(h[0].id, run);
    assert_eq!(h[0].outcome, RunOutcome::Timeout);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The grandchild (`sleep 300`) is gone with its group.
    let gone_by = std::time::Instant::now() + Duration::from_secs(3);
    while alive(pid) && std::time::Instant::now() < gone_by {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(pid), "grandchild {pid} survived the timeout");
    assert!(
        reporter
            .texts()
            .iter()
            .any(|t| t == "❌ hang timed out after 1s and was stopped"),
        "{:?}",
        reporter.texts()
    );
}

#[tokio::test]
async fn heartbeats_during_a_real_shell_run_with_a_short_interval() {
    let store = Arc::new(MemoryTaskStore::new());
    let reporter = Arc::new(MemoryReporter::new());
    let scheduler = Scheduler::new(
        store,
        Arc::new(SystemClock),
        Arc::new(Runners::new()),
        reporter.clone(),
        SchedulerConfig::new("s", OwnerKind::Task),
    );
    scheduler
        .upsert_task(&TaskSpec {
            name: "steps".into(),
            group: Some("ops".into()),
            schedule: "0 0 1 1 *".into(),
            tz: "UTC".into(),
            runner: RunnerSpec::shell("echo step 1; sleep 2.6; echo step 2"),
            policy: TaskPolicy {
                heartbeat: Some(Duration::from_secs(1)),
                ..TaskPolicy::default()
            },
        })
        .await
        .unwrap();
    scheduler.run_now("steps").await.unwrap();
    while !scheduler.active_runs().is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let texts = reporter.texts();
    let beats: Vec<_> = texts
        .iter()
        .filter(|t| t.contains("still running"))
        .collect();
    assert_eq!(beats.len(), 2, "{texts:#?}");
    assert_eq!(
        beats[0],
        "⏱ steps still running (1s elapsed, process alive) — last output: step 1"
    );
    assert!(
        texts
            .last()
            .unwrap()
            .starts_with("✅ steps finished in 2s: step 2"),
        "{texts:#?}"
    );
}

/// Docker: skipped (with a reason) when no engine answers, unless CI=true.
async fn docker() -> Option<DockerRunner> {
    let ci = lookout_common::in_ci();
    let runner = match DockerRunner::connect() {
        Ok(r) => r,
        Err(e) if ci => panic!("CI=true and Docker is unreachable: {e}"),
        Err(e) => {
            eprintln!("SKIPPED (Docker): {e}");
            return None;
        }
    };
    if let Err(e) = runner.ping().await {
        if ci {
            panic!("CI=true and Docker is unreachable: {e}");
        }
        eprintln!("SKIPPED (Docker): {e}");
        return None;
    }
    let status = std::process::Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/test-image.sh"
    ))
    .status()
    .expect("running scripts/test-image.sh");
    assert!(status.success(), "scripts/test-image.sh failed");
    Some(runner)
}

#[tokio::test]
async fn a_one_shot_container_runs_prints_heartbeats_and_is_removed() {
    let Some(docker) = docker().await else { return };
    let store = Arc::new(MemoryTaskStore::new());
    let reporter = Arc::new(MemoryReporter::new());
    let scheduler = Scheduler::new(
        store,
        Arc::new(SystemClock),
        Arc::new(Runners::new().with_docker(docker)),
        reporter.clone(),
        SchedulerConfig::new("s", OwnerKind::Task),
    );
    scheduler
        .upsert_task(&TaskSpec {
            name: "boxed".into(),
            group: Some("ops".into()),
            schedule: "0 0 1 1 *".into(),
            tz: "UTC".into(),
            runner: RunnerSpec::Container {
                image: "lookout-test/busybox".into(),
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    "echo hello from the box; sleep 3; echo all done".into(),
                ],
                env: Default::default(),
            },
            policy: TaskPolicy {
                heartbeat: Some(Duration::from_secs(1)),
                ..TaskPolicy::default()
            },
        })
        .await
        .unwrap();
    let run = scheduler.run_now("boxed").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !scheduler.active_runs().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let texts = reporter.texts();
    let h = scheduler.history("boxed", 1).await.unwrap();
    assert_eq!(h[0].outcome, RunOutcome::Ok, "{texts:#?}");
    let out = h[0].output_summary.as_deref().unwrap();
    assert!(
        out.contains("hello from the box") && out.contains("all done"),
        "{out}"
    );
    assert!(
        texts.iter().any(|t| t.contains("still running")
            && t.contains("container active")
            && t.contains("last output: hello from the box")),
        "{texts:#?}"
    );
    assert!(
        texts
            .last()
            .unwrap()
            .starts_with("✅ boxed finished in 3s: all done")
            || texts
                .last()
                .unwrap()
                .starts_with("✅ boxed finished in 4s: all done"),
        "{texts:#?}"
    );
    let events = reporter.events();
    assert!(
        events.iter().any(|e| e.kind == "run_heartbeat"
            && e.payload["container"] == format!("lookout-task-boxed-{run}")),
        "{events:?}"
    );
    // Removed.
    let ps = std::process::Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("name=lookout-task-boxed-{run}"),
            "-q",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&ps.stdout).trim().is_empty());
}
