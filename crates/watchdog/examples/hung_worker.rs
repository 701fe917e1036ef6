//! The watchdog supervising a real child process that hangs: a small shell worker writes its pid
//! file and touches a heartbeat file every 200 ms; after a moment it hangs (stops heartbeating but
//! stays alive, and ignores SIGTERM). The watchdog sees the stale heartbeat and climbs its ladder
//! one tier per probe, with a cooldown between tiers: tier 1 writes the restart marker (the hung
//! worker does not look), tier 2 sends SIGTERM (ignored), tier 3 sends SIGKILL and runs the start
//! command, whose fresh worker heartbeats again — and the watchdog reports it recovered. Timings
//! are shrunk to seconds (stale after 1 s, 1 s cooldowns); the heal state is kept in JSON files in a
//! temporary directory. Takes about 6 seconds.
//!
//! Run it with:
//!
//! ```text
//! cargo run -p lookout-watchdog --example hung_worker
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_watchdog::{
    Action, EventKind, Health, JsonFileStore, MemoryReporter, NixProcessControl, Policy,
    ProcessControl, ProcessSpec, Report, Reporter, Signal, Target, TargetKind, TargetSpec,
    Watchdog,
};

/// The worker: heartbeats until the file `hang` appears, then hangs (alive, silent, deaf to
/// SIGTERM). `exec`ed by its start command, so the pid it writes is the one the watchdog spawned.
const WORKER: &str = r#"cd "$1" || exit 1
echo $$ > worker.pid
trap 'echo "pid $$: SIGTERM ignored" >> worker.log' TERM
while [ ! -e hang ]; do touch heartbeat; sleep 0.2; done
echo "pid $$: hung" >> worker.log
while true; do sleep 0.2; done
"#;

/// Prints each report as it arrives and keeps it in a `MemoryReporter`.
struct Printing {
    start: Instant,
    memory: MemoryReporter,
}

#[async_trait::async_trait]
impl Reporter for Printing {
    async fn report(&self, r: Report) {
        println!(
            "{:5.2}s report {} [{}] {}",
            self.start.elapsed().as_secs_f32(),
            r.event.kind.as_str(),
            r.notification.severity,
            r.notification.text
        );
        self.memory.report(r).await;
    }
}

/// Kills whichever worker the pid file names when dropped, so no worker outlives the example, even
/// when an assertion fails half-way.
struct KillWorker<'a>(&'a Path);

impl Drop for KillWorker<'_> {
    fn drop(&mut self) {
        if let Some(pid) = read_pid(self.0) {
            let _ = NixProcessControl.signal(pid, Signal::Kill);
        }
    }
}

fn read_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("worker.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[tokio::main]
async fn main() {
    let start = Instant::now();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let d = dir.path();
    std::fs::write(d.join("worker.sh"), WORKER).unwrap();
    let start_cmd = format!(
        "rm -f '{0}/hang'; exec sh '{0}/worker.sh' '{0}'",
        d.display()
    );

    // The host starts its worker (through the same control the watchdog uses, which reaps it).
    let control = NixProcessControl;
    let first = control.spawn(&start_cmd).unwrap();
    let _cleanup = KillWorker(d);
    while read_pid(d) != Some(first) || !d.join("heartbeat").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the worker never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("worker started: pid {first}");

    let reporter = Arc::new(Printing {
        start,
        memory: MemoryReporter::new(),
    });
    let store = Arc::new(JsonFileStore::new(d.join("heal-state")).unwrap());
    let watchdog = Watchdog::builder(store, reporter.clone())
        .process_control(Arc::new(control))
        .build();
    let mut policy = Policy::for_kind(TargetKind::Process);
    policy.probe_interval = Duration::from_millis(250);
    policy.stale_after = Duration::from_secs(1);
    policy.heartbeat_grace = Duration::from_secs(1);
    policy.cooldown = Duration::from_secs(1);
    policy.quiet_after_heal = Duration::from_millis(500);
    policy.kill_wait = Duration::from_secs(1);
    policy.backoff.initial = Duration::from_secs(1);
    let spec = ProcessSpec {
        pid_file: Some(d.join("worker.pid")),
        heartbeat_file: Some(d.join("heartbeat")),
        restart_marker: Some(d.join("restart-requested")),
        start: Some(start_cmd),
        ..ProcessSpec::default()
    };
    watchdog
        .add_target(Target::new("worker", TargetSpec::Process(spec)).with_policy(policy))
        .await
        .unwrap();
    let ladder: Vec<&str> = watchdog
        .explain("worker")
        .unwrap()
        .ladder
        .iter()
        .map(|r| r.action.describe())
        .collect();
    println!("ladder: {}", ladder.join(" → "));

    // Probe rounds, printing each change; the worker hangs after a second of good health.
    let mut last = String::new();
    let mut hung = false;
    loop {
        let elapsed = start.elapsed();
        assert!(
            elapsed < Duration::from_secs(14),
            "no recovery in time; reports: {:#?}",
            reporter.memory.texts()
        );
        if !hung && elapsed > Duration::from_millis(1500) {
            std::fs::write(d.join("hang"), "").unwrap();
            println!("{:5.2}s the worker hangs", elapsed.as_secs_f32());
            hung = true;
        }
        let round = watchdog.probe_round().await;
        if let Some(o) = round.outcome("worker") {
            let line = format!("{:?}: {}", o.health, o.outcome);
            if line != last {
                println!("{:5.2}s probe  {line}", start.elapsed().as_secs_f32());
                last = line;
            }
        }
        let recovered = reporter
            .memory
            .reports()
            .iter()
            .any(|r| r.event.kind == EventKind::WatchdogRecovered);
        if recovered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // What the ladder did, in order: marker, SIGTERM, SIGKILL + start.
    let reports = reporter.memory.reports();
    let tiers: Vec<u8> = reports
        .iter()
        .filter(|r| r.event.kind == EventKind::WatchdogAction)
        .filter_map(|r| r.event.tier)
        .collect();
    assert_eq!(tiers, [1, 2, 3], "{reports:#?}");
    assert!(
        d.join("restart-requested").exists(),
        "tier 1 wrote no marker"
    );
    let log = std::fs::read_to_string(d.join("worker.log")).unwrap_or_default();
    print!("worker.log:\n{log}");
    assert!(log.contains("SIGTERM ignored"), "tier 2 sent no SIGTERM");
    let second = read_pid(d).expect("the start command wrote a pid");
    assert_ne!(second, first, "tier 3 started no new worker");
    assert!(!control.alive(first), "the hung worker survived SIGKILL");
    let state = watchdog.state("worker").unwrap();
    let explained = watchdog.explain("worker").unwrap();
    println!(
        "after: new worker pid {second}, health {:?}, heal state saved: {}, next: {}",
        explained.observation.as_ref().map(|o| o.health),
        d.join("heal-state").read_dir().unwrap().count() > 0,
        explained.next.summary
    );
    assert_eq!(
        explained.observation.map(|o| o.health),
        Some(Health::Healthy)
    );
    assert!(state.circuit.is_none());
    assert!(
        explained
            .ladder
            .iter()
            .any(|r| r.action == Action::KillAndStart)
    );
    println!("done in {:.1}s", start.elapsed().as_secs_f32());
}
