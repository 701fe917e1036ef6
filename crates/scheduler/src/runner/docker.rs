//! One-shot containers through the Docker Engine API (bollard).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, ContainerStateStatusEnum};
use bollard::query_parameters::{CreateContainerOptions, LogsOptions, RemoveContainerOptions};
use futures_core::Stream;

use super::{LivenessProbe, OutputBuffer, Progress, RunRequest, RunResult, TaskRunner};
use crate::error::SchedulerError;
use crate::spec::RunnerSpec;

/// How often a running container's state is looked at.
const POLL: Duration = Duration::from_millis(250);

/// Runs a container once per run: create (from a local image, never pulled), start, wait, collect
/// its logs, remove. Labels `lookout.task` and `lookout.run_id` say whose it is. If the run is
/// stopped (its future dropped), the container is force-removed.
#[derive(Debug, Clone)]
pub struct DockerRunner {
    docker: Docker,
}

impl DockerRunner {
    /// Connects to the local engine (`DOCKER_HOST` or the default socket). Connecting is lazy: use
    /// [`DockerRunner::ping`] to know whether it answers.
    pub fn connect() -> Result<DockerRunner, SchedulerError> {
        Docker::connect_with_local_defaults()
            .map(DockerRunner::new)
            .map_err(|e| SchedulerError::Runner(format!("cannot reach the Docker engine: {e}")))
    }

    /// Uses an existing client.
    pub fn new(docker: Docker) -> DockerRunner {
        DockerRunner { docker }
    }

    /// Checks that the engine answers.
    pub async fn ping(&self) -> Result<(), SchedulerError> {
        self.docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| SchedulerError::Runner(format!("the Docker engine does not answer: {e}")))
    }

    async fn remove(docker: &Docker, name: &str) {
        let opts = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        if let Err(e) = docker.remove_container(name, Some(opts)).await {
            tracing::warn!(container = %name, error = %e, "removing a task container failed");
        }
    }
}

async fn next<S: Stream + ?Sized>(s: &mut Pin<Box<S>>) -> Option<S::Item> {
    std::future::poll_fn(|cx| s.as_mut().poll_next(cx)).await
}

/// Force-removes the container when dropped while still armed.
struct ContainerGuard {
    docker: Docker,
    name: Option<String>,
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            let docker = self.docker.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { DockerRunner::remove(&docker, &name).await });
            }
        }
    }
}

struct ContainerProbe {
    docker: Docker,
    name: String,
    progress: Progress,
}

#[async_trait::async_trait]
impl LivenessProbe for ContainerProbe {
    async fn liveness(&self) -> String {
        // The last line of output, for the heartbeat.
        let opts = LogsOptions {
            stdout: true,
            stderr: true,
            tail: "1".into(),
            ..Default::default()
        };
        let mut logs = Box::pin(self.docker.logs(&self.name, Some(opts)));
        while let Some(Ok(chunk)) = next(&mut logs).await {
            self.progress
                .set_last_line(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        match self.docker.inspect_container(&self.name, None).await {
            Ok(i) => match i.state.and_then(|s| s.status) {
                Some(ContainerStateStatusEnum::RUNNING) => "container active".into(),
                Some(other) => format!("container {other}"),
                None => "container state unknown".into(),
            },
            Err(e) => format!("container not inspectable: {e}"),
        }
    }
}

fn container_name(task: &str, run_id: i64) -> String {
    let clean: String = task
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!("lookout-task-{clean}-{run_id}")
}

#[async_trait::async_trait]
impl TaskRunner for DockerRunner {
    async fn run(&self, request: RunRequest, progress: Progress) -> RunResult {
        let RunnerSpec::Container {
            image,
            command,
            env,
        } = &request.runner
        else {
            return RunResult::failed("not a container task");
        };
        let name = container_name(&request.task, request.run_id);
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            cmd: (!command.is_empty()).then(|| command.clone()),
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(HashMap::from([
                ("lookout.task".to_string(), request.task.clone()),
                ("lookout.run_id".to_string(), request.run_id.to_string()),
            ])),
            ..Default::default()
        };
        let opts = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        if let Err(e) = self.docker.create_container(Some(opts), body).await {
            return RunResult::failed(format!("cannot create a container of `{image}`: {e}"));
        }
        let mut guard = ContainerGuard {
            docker: self.docker.clone(),
            name: Some(name.clone()),
        };
        if let Err(e) = self.docker.start_container(&name, None).await {
            return RunResult::failed(format!("cannot start container {name}: {e}"));
        }
        progress.set_container(&name);
        progress.set_probe(Arc::new(ContainerProbe {
            docker: self.docker.clone(),
            name: name.clone(),
            progress: progress.clone(),
        }));
        tracing::debug!(task = %request.task, run_id = request.run_id, container = %name, "container run started");
        let (exit_code, error) = loop {
            match self.docker.inspect_container(&name, None).await {
                Ok(i) => {
                    let state = i.state.unwrap_or_default();
                    match state.status {
                        Some(ContainerStateStatusEnum::EXITED)
                        | Some(ContainerStateStatusEnum::DEAD) => {
                            break (
                                state.exit_code.unwrap_or(-1),
                                state.error.filter(|e| !e.is_empty()),
                            );
                        }
                        _ => tokio::time::sleep(POLL).await,
                    }
                }
                Err(e) => break (-1, Some(format!("container vanished: {e}"))),
            }
        };
        let mut out = OutputBuffer::default();
        let opts = LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut logs = Box::pin(self.docker.logs(&name, Some(opts)));
        while let Some(item) = next(&mut logs).await {
            match item {
                Ok(chunk) => {
                    let bytes = chunk.into_bytes();
                    out.push(&bytes);
                    for line in String::from_utf8_lossy(&bytes).lines() {
                        progress.set_last_line(line);
                    }
                }
                Err(e) => {
                    tracing::warn!(container = %name, error = %e, "reading container logs");
                    break;
                }
            }
        }
        drop(logs);
        guard.name = None;
        DockerRunner::remove(&self.docker, &name).await;
        let last = progress.last_line();
        let output = out.summary();
        if exit_code == 0 {
            RunResult {
                success: true,
                message: last.unwrap_or_else(|| "exit 0".into()),
                output,
            }
        } else {
            let why = error.unwrap_or_else(|| format!("exit status {exit_code}"));
            RunResult {
                success: false,
                message: match last {
                    Some(l) => format!("{why}: {l}"),
                    None => why,
                },
                output,
            }
        }
    }
}
