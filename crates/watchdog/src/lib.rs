//! # lookout-watchdog — supervise processes, containers and endpoints, and heal them tier by tier
//!
//! A [`Watchdog`] probes its [`Target`]s (a process seen through pid, heartbeat and version
//! files; a Docker container; an HTTP endpoint) once per probe interval and detects a hang (stale
//! heartbeat), a death (pid gone), stale code (version stamp ≠ the expected version, e.g. git
//! HEAD), an exited, unhealthy or looping container, and a failing endpoint. A failing target is
//! healed one tier per probe up its ladder (process: restart marker → SIGTERM → SIGKILL + start
//! command → circuit open), with a cooldown per tier, a quiet period after each action, a restart
//! backoff (10 s doubling to 5 min), and a circuit that opens after repeated top-tier failures or
//! too many heals in a period. When several targets fail with one upstream cause, one shared
//! circuit opens instead (the healing budget). The heal state is saved before every action
//! ([`HealStateStore`], [`JsonFileStore`]), so a restarted daemon continues the ladder and never
//! repeats an action. Every action, circuit and recovery goes to a [`Reporter`] as an event and a
//! notification ("🩹 bridge: heartbeat 95s old (stale after 90s) — sent SIGTERM to pid 41 (tier
//! 2)"); [`Watchdog::explain`] says what was seen and what comes next.
//!
//! It is **not** the daemon: it reads no config file, serves no HTTP, stores no events and sends no
//! messages itself (the [`Reporter`] does), and it does not talk to systemd. It acts on processes
//! only through [`ProcessControl`] and on containers only through [`ContainerControl`].
//!
//! ```
//! use std::sync::Arc;
//! use lookout_watchdog::{
//!     MemoryReporter, MemoryStore, ProcessSpec, Target, TargetSpec, Watchdog,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let reporter = Arc::new(MemoryReporter::new());
//! let watchdog = Watchdog::builder(Arc::new(MemoryStore::new()), reporter.clone()).build();
//! let spec = ProcessSpec {
//!     heartbeat_events: true,
//!     start: Some("true".into()),
//!     ..ProcessSpec::default()
//! };
//! watchdog.add_target(Target::new("bridge", TargetSpec::Process(spec))).await.unwrap();
//! watchdog.heartbeat("bridge", chrono::Utc::now()).unwrap();
//! let round = watchdog.probe_round().await;
//! assert_eq!(round.outcome("bridge").unwrap().outcome, "healthy");
//! assert!(reporter.reports().is_empty());
//! let why = watchdog.explain("bridge").unwrap();
//! assert!(why.next.if_failing); // what would happen if it failed
//! # }
//! ```

mod clock;
mod control;
mod explain;
mod ladder;
mod metrics;
mod observe;
mod probe;
mod report;
mod store;
mod supervisor;
mod target;

use std::path::PathBuf;

pub use clock::{Clock, TokioClock};
pub use control::{
    ContainerControl, ContainerState, DockerControl, EngineUnreachable, HttpAnswer, HttpProbe,
    HttpProbeError, NixProcessControl, ProcessControl, ReqwestProbe, Signal,
};
pub use explain::{BackoffInfo, CircuitInfo, CircuitState, Explanation, NextStep, Rung};
pub use ladder::{CircuitOpen, HealState, LastAction, WaitReason};
pub use metrics::WatchdogMetrics;
pub use observe::{Finding, Health, Observation};
pub use report::{
    EventKind, MemoryReporter, Notification, Report, Reporter, Severity, WatchdogEvent,
};
pub use store::{HealStateStore, JsonFileStore, MemoryStore};
pub use supervisor::{RoundOutcome, RoundSummary, SharedCircuit, Watchdog, WatchdogBuilder};
pub use target::{
    Action, BackoffPolicy, BudgetPolicy, ContainerSpec, ExpectedVersion, HttpSpec, Policy,
    ProcessSpec, Target, TargetKind, TargetSpec, default_ladder,
};

/// What can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    /// A target's name, spec or ladder is not acceptable.
    #[error("watchdog target {target}: {reason}")]
    InvalidTarget {
        /// The target.
        target: String,
        /// Why.
        reason: String,
    },
    /// `expected_version` is not `git:PATH`, `file:PATH` or `cmd:COMMAND`.
    #[error("expected version {0:?}: use git:PATH, file:PATH or cmd:COMMAND")]
    InvalidExpectedVersion(String),
    /// No target has this name.
    #[error("no watchdog target named {0:?}")]
    UnknownTarget(String),
    /// A state or marker file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A saved heal state could not be read.
    #[error("heal state {}: {reason}", path.display())]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A signal could not be sent.
    #[error("signal to pid {pid}: {reason}")]
    Signal {
        /// The pid.
        pid: u32,
        /// Why.
        reason: String,
    },
    /// The start command could not be run.
    #[error("start command: {0}")]
    Spawn(String),
    /// The container engine refused an action.
    #[error("container {container}: {reason}")]
    Container {
        /// The container.
        container: String,
        /// Why.
        reason: String,
    },
    /// A background task failed.
    #[error("watchdog task: {0}")]
    Task(String),
}
