//! Runners: what executes a run. [`TaskRunner`] is the seam; [`ShellRunner`], [`DockerRunner`] and
//! [`CallbackRunner`] are the three kinds, and [`Runners`] dispatches a [`RunnerSpec`] to them.
//!
//! **Cancellation is by drop.** The scheduler stops a run (timeout, `replace`, shutdown) by dropping
//! the future [`TaskRunner::run`] returned; a runner must then stop its work (the shell runner kills
//! its process group, the container runner force-removes its container).

mod callback;
mod docker;
mod output;
mod shell;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

pub use callback::{Callback, CallbackRunner};
pub use docker::DockerRunner;
pub use output::OutputBuffer;
pub use shell::ShellRunner;

use crate::spec::RunnerSpec;

/// One run, as a runner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    /// The run's id in `task_runs`.
    pub run_id: i64,
    /// The task's name.
    pub task: String,
    /// The task's group.
    pub group: Option<String>,
    /// The instant it was due.
    pub scheduled_for: DateTime<Utc>,
    /// What to run.
    pub runner: RunnerSpec,
}

/// How a run ended, as the runner saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// It succeeded.
    pub success: bool,
    /// One line for people: the result, or the error.
    pub message: String,
    /// The output kept (head and tail, with how much was cut), for `task_runs.output_summary`.
    pub output: String,
}

impl RunResult {
    /// A success with a one-line result.
    pub fn ok(message: impl Into<String>) -> RunResult {
        RunResult {
            success: true,
            message: message.into(),
            output: String::new(),
        }
    }

    /// A failure with a one-line error.
    pub fn failed(message: impl Into<String>) -> RunResult {
        RunResult {
            success: false,
            message: message.into(),
            output: String::new(),
        }
    }
}

/// Says whether a run's work is alive ("process alive", "container active"), for heartbeats.
#[async_trait::async_trait]
pub trait LivenessProbe: Send + Sync {
    /// A few words on the state of the work.
    async fn liveness(&self) -> String;
}

/// What a runner shares while it runs: the last line of output, a progress note and how to ask
/// whether the work is alive. Cheap to clone.
#[derive(Clone, Default)]
pub struct Progress {
    inner: Arc<Mutex<ProgressInner>>,
}

#[derive(Default)]
struct ProgressInner {
    last_line: Option<String>,
    progress: Option<String>,
    container: Option<String>,
    probe: Option<Arc<dyn LivenessProbe>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("last_line", &self.last_line())
            .field("progress", &self.progress())
            .finish()
    }
}

impl Progress {
    /// A fresh handle.
    pub fn new() -> Progress {
        Progress::default()
    }

    /// Records the last non-empty line of output.
    pub fn set_last_line(&self, line: &str) {
        let line = line.trim();
        if !line.is_empty() {
            self.lock().last_line = Some(truncate_chars(line, 200));
        }
    }

    /// The last non-empty line of output, if any.
    pub fn last_line(&self) -> Option<String> {
        self.lock().last_line.clone()
    }

    /// Records a progress note (a step count, the last tool call …): it goes in heartbeat events.
    pub fn set_progress(&self, progress: &str) {
        self.lock().progress = Some(progress.to_string());
    }

    /// The progress note, if any.
    pub fn progress(&self) -> Option<String> {
        self.lock().progress.clone()
    }

    /// Records the container the run is in (for events).
    pub fn set_container(&self, container: &str) {
        self.lock().container = Some(container.to_string());
    }

    /// The container, if any.
    pub fn container(&self) -> Option<String> {
        self.lock().container.clone()
    }

    /// Sets how to ask whether the work is alive.
    pub fn set_probe(&self, probe: Arc<dyn LivenessProbe>) {
        self.lock().probe = Some(probe);
    }

    /// Asks the probe (bounded by `timeout`); `None` without a probe.
    pub async fn liveness(&self, timeout: std::time::Duration) -> Option<String> {
        let probe = self.lock().probe.clone()?;
        Some(
            tokio::time::timeout(timeout, probe.liveness())
                .await
                .unwrap_or_else(|_| "liveness unknown".to_string()),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// Executes runs. See the module docs for cancellation.
#[async_trait::async_trait]
pub trait TaskRunner: Send + Sync + 'static {
    /// Runs `request` to its end, sharing progress through `progress`.
    async fn run(&self, request: RunRequest, progress: Progress) -> RunResult;
}

/// The runner lookoutd uses: shell commands, containers (when an engine is there) and callbacks,
/// chosen by the request's [`RunnerSpec`].
#[derive(Default)]
pub struct Runners {
    shell: ShellRunner,
    docker: Option<DockerRunner>,
    callbacks: CallbackRunner,
}

impl std::fmt::Debug for Runners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runners")
            .field("docker", &self.docker.is_some())
            .finish()
    }
}

impl Runners {
    /// Shell commands only; add containers with [`Runners::with_docker`], callbacks with
    /// [`Runners::with_callbacks`].
    pub fn new() -> Runners {
        Runners::default()
    }

    /// Runs container tasks with this runner.
    pub fn with_docker(mut self, docker: DockerRunner) -> Runners {
        self.docker = Some(docker);
        self
    }

    /// Runs callback tasks with these callbacks.
    pub fn with_callbacks(mut self, callbacks: CallbackRunner) -> Runners {
        self.callbacks = callbacks;
        self
    }
}

#[async_trait::async_trait]
impl TaskRunner for Runners {
    async fn run(&self, request: RunRequest, progress: Progress) -> RunResult {
        match &request.runner {
            RunnerSpec::Shell { .. } => self.shell.run(request, progress).await,
            RunnerSpec::Container { .. } => match &self.docker {
                Some(d) => d.run(request, progress).await,
                None => RunResult::failed("no container engine configured"),
            },
            RunnerSpec::Callback { .. } => self.callbacks.run(request, progress).await,
        }
    }
}
