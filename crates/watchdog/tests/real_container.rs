//! Real containers from the local test image (`scripts/test-image.sh`, no pulls) through the real
//! Docker engine, and an unreachable engine. Without an engine the Docker tests skip with a reason,
//! or fail when `CI=true`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_watchdog::*;

const SOCKET: &str = "unix:///var/run/docker.sock";

fn docker_available() -> bool {
    let ok = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if lookout_common::in_ci() {
            panic!("Docker engine unreachable and CI=true");
        }
        eprintln!("skipped: Docker engine unreachable");
        return false;
    }
    let image = std::process::Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/test-image.sh"
    ))
    .status()
    .expect("scripts/test-image.sh");
    assert!(image.success(), "scripts/test-image.sh failed");
    true
}

/// A container made for one test, removed at the end.
struct TestContainer(String);

impl TestContainer {
    fn create(tag: &str, script: &str) -> TestContainer {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("lookout-wd-{tag}-{}-{nanos}", std::process::id());
        let out = std::process::Command::new("docker")
            .args([
                "run",
                "-d",
                "--name",
                &name,
                "lookout-test/busybox",
                "sh",
                "-c",
                script,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        TestContainer(name)
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.0])
            .output();
    }
}

fn fast_policy() -> Policy {
    let mut p = Policy::for_kind(TargetKind::Container);
    p.probe_interval = Duration::from_millis(250);
    p.cooldown = Duration::from_millis(500);
    p.quiet_after_heal = Duration::from_millis(500);
    p.backoff = BackoffPolicy {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(1),
        reset_after: Duration::from_secs(10),
    };
    p
}

async fn round_until(
    w: &Watchdog,
    limit: Duration,
    mut done: impl FnMut(&RoundSummary) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let r = w.probe_round().await;
        if done(&r) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

fn watchdog(reporter: Arc<MemoryReporter>, socket: &str) -> Watchdog {
    Watchdog::builder(Arc::new(MemoryStore::new()), reporter)
        .container_control(Arc::new(DockerControl::new(socket)))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_exits_is_restarted() {
    if !docker_available() {
        return;
    }
    // Exits with 1 the first time; after a restart it stays up.
    let c = TestContainer::create(
        "once",
        "if [ -e /tmp/once ]; then exec sleep 1000; else touch /tmp/once; exit 1; fi",
    );
    let reporter = Arc::new(MemoryReporter::new());
    let w = watchdog(reporter.clone(), SOCKET);
    w.add_target(
        Target::new(
            "agent",
            TargetSpec::Container(ContainerSpec {
                container: c.0.clone(),
            }),
        )
        .with_policy(fast_policy()),
    )
    .await
    .unwrap();
    let recovered = round_until(&w, Duration::from_secs(20), |_| {
        reporter
            .reports()
            .iter()
            .any(|r| r.event.kind == EventKind::WatchdogRecovered)
    })
    .await;
    assert!(recovered, "{:?}", reporter.texts());
    let texts = reporter.texts();
    assert_eq!(
        texts[0],
        format!(
            "🩹 agent: container exited (exit code 1) — restarted container {} (tier 1)",
            c.0
        )
    );
    assert_eq!(
        texts[1],
        "✅ agent: healthy again after container restart (tier 1)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_exits_every_time_opens_the_circuit() {
    if !docker_available() {
        return;
    }
    let c = TestContainer::create("always", "exit 3");
    let reporter = Arc::new(MemoryReporter::new());
    let w = watchdog(reporter.clone(), SOCKET);
    w.add_target(
        Target::new(
            "agent",
            TargetSpec::Container(ContainerSpec {
                container: c.0.clone(),
            }),
        )
        .with_policy(fast_policy()),
    )
    .await
    .unwrap();
    let opened = round_until(&w, Duration::from_secs(40), |_| {
        reporter
            .reports()
            .iter()
            .any(|r| r.event.kind == EventKind::WatchdogCircuitOpen)
    })
    .await;
    assert!(opened, "{:?}", reporter.texts());
    let tiers: Vec<u8> = reporter
        .reports()
        .iter()
        .filter(|r| r.event.kind == EventKind::WatchdogAction)
        .filter_map(|r| r.event.tier)
        .collect();
    assert_eq!(tiers, vec![1, 2, 2, 2], "{:?}", reporter.texts());
    let open = reporter.reports().last().unwrap().clone();
    assert_eq!(open.notification.severity, Severity::Critical);
    assert!(
        open.notification.text.contains("(tier 3)"),
        "{}",
        open.notification.text
    );
    // Open: no more actions.
    let before = reporter.reports().len();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        w.probe_round().await;
    }
    assert_eq!(reporter.reports().len(), before);
    assert_eq!(
        w.explain("agent").unwrap().circuit.state,
        CircuitState::Open
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_engine_is_one_shared_cause_not_thirty_failures() {
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("unix://{}", dir.path().join("no-docker.sock").display());
    let reporter = Arc::new(MemoryReporter::new());
    let w = watchdog(reporter.clone(), &socket);
    for i in 0..5 {
        w.add_target(Target::new(
            format!("c{i}"),
            TargetSpec::Container(ContainerSpec {
                container: format!("c{i}"),
            }),
        ))
        .await
        .unwrap();
    }
    let r = w.probe_round().await;
    assert!(r.outcomes.iter().all(|o| o.health == Health::Unknown));
    assert_eq!(r.shared_circuits.len(), 1);
    assert_eq!(r.shared_circuits[0].cause, "docker engine");
    let texts = reporter.texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].starts_with("⛔ 5 targets failing together, shared cause: docker engine"));
    let why = w.explain("c3").unwrap();
    assert_eq!(why.circuit.state, CircuitState::SharedOpen);
    assert!(why.observation.unwrap().notes[0].contains("container engine unreachable"));
}
