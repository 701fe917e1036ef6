//! The fakes and the setup of the ladder tests (`ladder.rs`): a process table, an HTTP endpoint,
//! a container engine and a heal-state store that cannot save, all in memory.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use lookout_watchdog::*;

#[derive(Default)]
pub(crate) struct FakeProcess {
    pub(crate) alive: Mutex<HashSet<u32>>,
    pub(crate) calls: Mutex<Vec<String>>,
    pub(crate) next_pid: AtomicU32,
    /// Whether SIGTERM ends the process (a process that ignores it needs tier 3).
    pub(crate) term_kills: AtomicBool,
}

impl FakeProcess {
    pub(crate) fn with_alive(pid: u32) -> Arc<Self> {
        let f = FakeProcess::default();
        f.alive.lock().unwrap().insert(pid);
        f.next_pid.store(1000, Ordering::SeqCst);
        Arc::new(f)
    }
    pub(crate) fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl ProcessControl for FakeProcess {
    fn alive(&self, pid: u32) -> bool {
        self.alive.lock().unwrap().contains(&pid)
    }
    fn signal(&self, pid: u32, signal: Signal) -> Result<(), WatchdogError> {
        self.calls.lock().unwrap().push(format!("{signal:?} {pid}"));
        if signal == Signal::Kill || self.term_kills.load(Ordering::SeqCst) {
            self.alive.lock().unwrap().remove(&pid);
        }
        Ok(())
    }
    fn spawn(&self, command: &str) -> Result<u32, WatchdogError> {
        let pid = self.next_pid.fetch_add(1, Ordering::SeqCst);
        self.calls.lock().unwrap().push(format!("spawn {command}"));
        self.alive.lock().unwrap().insert(pid);
        Ok(pid)
    }
}

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

pub(crate) struct Setup {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) clock: Arc<TokioClock>,
    pub(crate) process: Arc<FakeProcess>,
    pub(crate) reporter: Arc<MemoryReporter>,
    pub(crate) store: Arc<dyn HealStateStore>,
    pub(crate) watchdog: Watchdog,
}

impl Setup {
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
    pub(crate) fn beat(&self) {
        self.watchdog.heartbeat("bridge", self.now()).unwrap();
    }
    pub(crate) async fn round(&self) -> String {
        let r = self.watchdog.probe_round().await;
        r.outcome("bridge")
            .map(|o| o.outcome.clone())
            .unwrap_or_default()
    }
    pub(crate) fn texts(&self) -> Vec<String> {
        self.reporter.texts()
    }
    /// A second watchdog over the same store and clock: lookoutd after a restart.
    pub(crate) async fn restarted(
        &self,
        spec: ProcessSpec,
        policy: Policy,
    ) -> (Watchdog, Arc<MemoryReporter>) {
        let reporter = Arc::new(MemoryReporter::new());
        let w = Watchdog::builder(self.store.clone(), reporter.clone())
            .clock(self.clock.clone())
            .process_control(self.process.clone())
            .build();
        w.add_target(Target::new("bridge", TargetSpec::Process(spec)).with_policy(policy))
            .await
            .unwrap();
        (w, reporter)
    }
}

pub(crate) fn process_spec(dir: &std::path::Path) -> ProcessSpec {
    ProcessSpec {
        pid_file: Some(dir.join("bridge.pid")),
        heartbeat_file: None,
        heartbeat_events: true,
        version_file: Some(dir.join("bridge.version")),
        expected_version: Some(ExpectedVersion::File(dir.join("expected"))),
        restart_marker: Some(dir.join("restart-bridge")),
        start: Some("start-bridge".into()),
    }
}

/// A bridge with pid 41 alive, a fresh heartbeat and the right version, on default policy.
pub(crate) async fn setup_with(
    policy: impl FnOnce(&mut Policy),
    store: Option<Arc<dyn HealStateStore>>,
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bridge.pid"), "41\n").unwrap();
    std::fs::write(dir.path().join("bridge.version"), "v2\n").unwrap();
    std::fs::write(dir.path().join("expected"), "v2\n").unwrap();
    let clock = Arc::new(TokioClock::starting_at(t0()));
    let process = FakeProcess::with_alive(41);
    let reporter = Arc::new(MemoryReporter::new());
    let store = store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
    let watchdog = Watchdog::builder(store.clone(), reporter.clone())
        .clock(clock.clone())
        .process_control(process.clone())
        .build();
    let mut p = Policy::for_kind(TargetKind::Process);
    policy(&mut p);
    watchdog
        .add_target(
            Target::new("bridge", TargetSpec::Process(process_spec(dir.path()))).with_policy(p),
        )
        .await
        .unwrap();
    let s = Setup {
        dir,
        clock,
        process,
        reporter,
        store,
        watchdog,
    };
    s.beat();
    s
}

pub(crate) async fn setup() -> Setup {
    setup_with(|_| {}, None).await
}

pub(crate) async fn advance(secs: u64) {
    tokio::time::advance(Duration::from_secs(secs)).await;
}

#[derive(Default)]
pub(crate) struct FakeHttp {
    pub(crate) fail: AtomicBool,
}

#[async_trait::async_trait]
impl HttpProbe for FakeHttp {
    async fn get(
        &self,
        _url: &str,
        _bearer: Option<&str>,
        _timeout: Duration,
    ) -> Result<HttpAnswer, HttpProbeError> {
        if self.fail.load(Ordering::SeqCst) {
            Err(HttpProbeError::Connect("connection refused".into()))
        } else {
            Ok(HttpAnswer {
                status: 200,
                body: String::new(),
            })
        }
    }
}

#[derive(Default)]
pub(crate) struct FakeEngine {
    pub(crate) state: Mutex<Option<ContainerState>>,
    pub(crate) calls: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl ContainerControl for FakeEngine {
    async fn inspect(&self, _name: &str) -> Result<ContainerState, EngineUnreachable> {
        self.state
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| EngineUnreachable("connection refused".into()))
    }
    async fn restart(&self, name: &str) -> Result<(), WatchdogError> {
        self.calls.lock().unwrap().push(format!("restart {name}"));
        Ok(())
    }
    async fn stop(&self, name: &str) -> Result<(), WatchdogError> {
        self.calls.lock().unwrap().push(format!("stop {name}"));
        Ok(())
    }
    async fn start(&self, name: &str) -> Result<(), WatchdogError> {
        self.calls.lock().unwrap().push(format!("start {name}"));
        Ok(())
    }
}

pub(crate) fn container(
    status: &str,
    health: Option<&str>,
    restarts: u64,
) -> Option<ContainerState> {
    Some(ContainerState {
        status: status.into(),
        health: health.map(Into::into),
        restart_count: restarts,
        exit_code: Some(1),
    })
}

pub(crate) struct BrokenStore;

impl HealStateStore for BrokenStore {
    fn load(&self, _target: &str) -> Result<Option<HealState>, WatchdogError> {
        Ok(None)
    }
    fn save(&self, _target: &str, _state: &HealState) -> Result<(), WatchdogError> {
        Err(WatchdogError::Task("disk full".into()))
    }
    fn remove(&self, _target: &str) -> Result<(), WatchdogError> {
        Ok(())
    }
}
