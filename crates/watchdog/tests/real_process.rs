//! Real processes, real signals, real files: small `sh` workers that write heartbeats, hang, die,
//! ignore SIGTERM or honour the restart marker, supervised by a running [`Watchdog::run`] loop with
//! short intervals (probe 200 ms, stale 1 s). Every worker runs in its own process group and is
//! SIGKILLed at the end of its test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_watchdog::*;

const WORKER: &str = r#"#!/bin/sh
# worker.sh DIR MODE — a supervised process for the tests.
dir="$1"; mode="$2"
[ "$mode" = ignore-term ] && trap '' TERM
echo $$ > "$dir/pid.tmp" && mv "$dir/pid.tmp" "$dir/pid"
cat "$dir/source_version" > "$dir/version" 2>/dev/null
while :; do
  if [ -e "$dir/restart" ] && [ "$mode" != ignore-term ]; then
    rm -f "$dir/restart"
    exec sh "$0" "$dir" normal
  fi
  if [ "$mode" = ignore-term ] && [ -e "$dir/hang" ]; then sleep 0.1; continue; fi
  touch "$dir/hb"
  sleep 0.1
done
"#;

struct Worker {
    dir: tempfile::TempDir,
    pids: std::sync::Mutex<Vec<u32>>,
}

impl Worker {
    fn new() -> Worker {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("worker.sh"), WORKER).unwrap();
        Worker {
            dir,
            pids: std::sync::Mutex::new(Vec::new()),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn command(&self, mode: &str) -> String {
        format!(
            "exec sh {} {} {mode}",
            self.path("worker.sh").display(),
            self.dir.path().display()
        )
    }
    /// Starts the first worker and waits until it wrote its pid and a heartbeat.
    fn start(&self, mode: &str) -> u32 {
        let pid = NixProcessControl.spawn(&self.command(mode)).unwrap();
        wait_until(Duration::from_secs(5), || {
            self.pid() == Some(pid) && self.path("hb").exists()
        });
        pid
    }
    fn pid(&self) -> Option<u32> {
        let p = std::fs::read_to_string(self.path("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let mut pids = self.pids.lock().unwrap();
        if !pids.contains(&p) {
            pids.push(p);
        }
        Some(p)
    }
    fn spec(&self) -> ProcessSpec {
        ProcessSpec {
            pid_file: Some(self.path("pid")),
            heartbeat_file: Some(self.path("hb")),
            heartbeat_events: false,
            version_file: Some(self.path("version")),
            expected_version: None,
            restart_marker: Some(self.path("restart")),
            start: Some(self.command("normal")),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.pid();
        for pid in self.pids.lock().unwrap().iter() {
            // Each worker leads its own process group: take its `sleep` along.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

fn fast_policy() -> Policy {
    let mut p = Policy::for_kind(TargetKind::Process);
    p.probe_interval = Duration::from_millis(200);
    p.stale_after = Duration::from_secs(1);
    p.heartbeat_grace = Duration::from_secs(2);
    p.cooldown = Duration::from_millis(700);
    p.quiet_after_heal = Duration::from_millis(300);
    p.kill_wait = Duration::from_secs(2);
    p.backoff = BackoffPolicy {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(1),
        reset_after: Duration::from_secs(10),
    };
    p
}

struct Running {
    watchdog: Watchdog,
    reporter: Arc<MemoryReporter>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn start(spec: ProcessSpec, state_dir: &Path) -> Running {
        let reporter = Arc::new(MemoryReporter::new());
        let store = Arc::new(JsonFileStore::new(state_dir.join("watchdog")).unwrap());
        let watchdog = Watchdog::builder(store, reporter.clone()).build();
        watchdog
            .add_target(Target::new("worker", TargetSpec::Process(spec)).with_policy(fast_policy()))
            .await
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let w = watchdog.clone();
        let task = tokio::spawn(async move {
            w.run(async {
                let _ = rx.await;
            })
            .await;
        });
        Running {
            watchdog,
            reporter,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// The tiers acted so far, in order.
    fn tiers(&self) -> Vec<u8> {
        self.reporter
            .reports()
            .iter()
            .filter(|r| r.event.kind == EventKind::WatchdogAction)
            .filter_map(|r| r.event.tier)
            .collect()
    }

    fn recovered(&self) -> bool {
        self.reporter
            .reports()
            .iter()
            .any(|r| r.event.kind == EventKind::WatchdogRecovered)
    }

    async fn wait_recovered(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.recovered() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    async fn stop(mut self) -> Vec<Report> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        self.reporter.reports()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_process_sigstopped_is_healed_through_the_tiers() {
    let w = Worker::new();
    let first = w.start("normal");
    let state = tempfile::tempdir().unwrap();
    let run = Running::start(w.spec(), state.path()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(run.reporter.reports().is_empty(), "healthy: no action");
    // Alive (kill(0) succeeds) but hung.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    let t = Instant::now();
    assert!(
        run.wait_recovered(Duration::from_secs(15)).await,
        "{:?}",
        run.reporter.texts()
    );
    let healed_in = t.elapsed();
    let tiers = run.tiers();
    assert_eq!(tiers, vec![1, 2, 3], "{:?}", run.reporter.texts());
    let texts = run.reporter.texts();
    assert!(
        texts[0]
            .starts_with("🩹 worker: heartbeat 1s old (stale after 1s) — wrote the restart marker"),
        "{texts:?}"
    );
    let now_pid = w.pid().unwrap();
    assert_ne!(now_pid, first, "a new process runs");
    assert!(NixProcessControl.alive(now_pid));
    assert!(!NixProcessControl.alive(first), "the hung one is gone");
    eprintln!("hung process healed in {healed_in:?}: {texts:?}");
    let why = run.watchdog.explain("worker").unwrap();
    assert_eq!(why.circuit.state, CircuitState::Closed);
    assert_eq!(why.backoff.restarts, 1);
    let reports = run.stop().await;
    assert_eq!(
        reports.last().unwrap().notification.text,
        "✅ worker: healthy again after SIGKILL and start command (tier 3)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_process_is_restarted_by_its_start_command() {
    let w = Worker::new();
    let first = w.start("normal");
    let state = tempfile::tempdir().unwrap();
    let run = Running::start(w.spec(), state.path()).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(
        run.wait_recovered(Duration::from_secs(10)).await,
        "{:?}",
        run.reporter.texts()
    );
    assert_eq!(run.tiers(), vec![3], "no pid to signal: straight to tier 3");
    assert!(run.reporter.texts()[0].contains(&format!("pid {first} not alive")));
    assert_ne!(w.pid().unwrap(), first);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_honours_the_restart_marker_is_healed_at_tier_1() {
    let w = Worker::new();
    std::fs::write(w.path("source_version"), "v1\n").unwrap();
    let first = w.start("normal");
    let state = tempfile::tempdir().unwrap();
    let mut spec = w.spec();
    spec.expected_version = Some(ExpectedVersion::File(w.path("source_version")));
    let run = Running::start(spec, state.path()).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(run.reporter.reports().is_empty());
    // An update lands: the process still runs v1.
    std::fs::write(w.path("source_version"), "v2\n").unwrap();
    assert!(
        run.wait_recovered(Duration::from_secs(10)).await,
        "{:?}",
        run.reporter.texts()
    );
    assert_eq!(run.tiers(), vec![1]);
    let texts = run.reporter.texts();
    assert!(
        texts[0]
            .starts_with("🩹 worker: running version v1, expected v2 — wrote the restart marker"),
        "{texts:?}"
    );
    assert_eq!(w.pid(), Some(first), "restarted itself in place (exec)");
    assert_eq!(
        std::fs::read_to_string(w.path("version")).unwrap().trim(),
        "v2"
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_ignores_sigterm_needs_tier_3() {
    let w = Worker::new();
    let first = w.start("ignore-term");
    let state = tempfile::tempdir().unwrap();
    let run = Running::start(w.spec(), state.path()).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // It stops beating, ignores the marker and SIGTERM.
    std::fs::write(w.path("hang"), "").unwrap();
    assert!(
        run.wait_recovered(Duration::from_secs(15)).await,
        "{:?}",
        run.reporter.texts()
    );
    assert_eq!(run.tiers(), vec![1, 2, 3], "{:?}", run.reporter.texts());
    let texts = run.reporter.texts();
    assert!(
        texts[1].contains(&format!("sent SIGTERM to pid {first}")),
        "{texts:?}"
    );
    assert!(
        texts[2].contains(&format!(
            "sent SIGKILL to pid {first} and ran the start command"
        )),
        "{texts:?}"
    );
    assert!(!NixProcessControl.alive(first));
    // The state file on disk says the episode ended healthy.
    let saved = JsonFileStore::new(state.path().join("watchdog"))
        .unwrap()
        .load("worker")
        .unwrap()
        .unwrap();
    assert_eq!(saved.next_tier, 0);
    assert_eq!(saved.restarts, 1);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_exits_at_once_backs_off_then_opens_the_circuit() {
    let w = Worker::new();
    let state = tempfile::tempdir().unwrap();
    let mut spec = w.spec();
    spec.start = Some("exit 0".into());
    let mut policy = fast_policy();
    policy.cooldown = Duration::from_millis(50);
    policy.quiet_after_heal = Duration::ZERO;
    policy.max_top_tier_failures = 4;
    let reporter = Arc::new(MemoryReporter::new());
    let watchdog = Watchdog::builder(
        Arc::new(JsonFileStore::new(state.path()).unwrap()),
        reporter.clone(),
    )
    .build();
    watchdog
        .add_target(Target::new("worker", TargetSpec::Process(spec)).with_policy(policy))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let wd = watchdog.clone();
    let task = tokio::spawn(async move {
        wd.run(async {
            let _ = rx.await;
        })
        .await;
    });
    let t0 = Instant::now();
    let opened = wait_until(Duration::from_secs(10), || {
        reporter
            .reports()
            .iter()
            .any(|r| r.event.kind == EventKind::WatchdogCircuitOpen)
    });
    let _ = tx.send(());
    task.await.unwrap();
    assert!(opened, "{:?}", reporter.texts());
    // Restarts at about 0, 0.2, 0.6, 1.4 s (200 ms doubling), probed every 200 ms.
    let times: Vec<f64> = reporter
        .reports()
        .iter()
        .filter(|r| r.event.kind == EventKind::WatchdogAction)
        .map(|r| (r.event.at - reporter.reports()[0].event.at).num_milliseconds() as f64 / 1000.0)
        .collect();
    assert_eq!(times.len(), 4, "{times:?}");
    for (got, want) in times.iter().zip([0.0, 0.2, 0.6, 1.4]) {
        assert!(
            (got - want).abs() <= 0.25,
            "restart at {got}s, expected {want}s ± 0.25 s: {times:?}"
        );
    }
    eprintln!("restart times {times:?}, circuit after {:?}", t0.elapsed());
}
