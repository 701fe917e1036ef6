//! How lookoutd looks at a host's run itself: its container, through the engine. A [`Look`] is
//! what one look found; [`RunProbe`] is the seam (the engine in lookoutd, a script in tests).

use std::pin::Pin;

use bollard::query_parameters::LogsOptions;
use futures_core::Stream;

/// How many of a container's last output lines a look keeps.
const LAST_LINES: usize = 5;

/// What one look at a run's container found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Look {
    /// Running, with its last line of output.
    Running { last_line: Option<String> },
    /// Exited, with its exit code, whether the kernel's OOM killer ended it, and its last lines.
    Ended {
        exit_code: Option<i64>,
        oom: bool,
        last_lines: Vec<String>,
    },
    /// The engine does not know it (removed, or never created).
    Missing,
    /// The engine did not answer: nothing is concluded about the run.
    Unknown(String),
}

/// Looks at a run's container.
#[async_trait::async_trait]
pub(crate) trait RunProbe: Send + Sync {
    async fn look(&self, container: &str) -> Look;
}

/// The Docker engine at `socket`.
pub(crate) struct DockerRunProbe {
    engine: lookout_common::docker::DockerEngine,
}

impl DockerRunProbe {
    pub(crate) fn new(socket: &str) -> Self {
        DockerRunProbe {
            engine: lookout_common::docker::DockerEngine::new(socket.trim_start_matches("unix://"))
                .with_timeout(5),
        }
    }
}

async fn next<S: Stream + ?Sized>(s: &mut Pin<Box<S>>) -> Option<S::Item> {
    std::future::poll_fn(|cx| s.as_mut().poll_next(cx)).await
}

#[async_trait::async_trait]
impl RunProbe for DockerRunProbe {
    async fn look(&self, container: &str) -> Look {
        let docker = match self.engine.client().await {
            Ok(d) => d,
            Err(e) => return Look::Unknown(e.0),
        };
        let info = match docker.inspect_container(container, None).await {
            Ok(i) => i,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Look::Missing,
            Err(e) => return Look::Unknown(self.engine.unreachable(e).await.0),
        };
        let opts = LogsOptions {
            stdout: true,
            stderr: true,
            tail: LAST_LINES.to_string(),
            ..Default::default()
        };
        let mut lines = Vec::new();
        let mut logs = Box::pin(docker.logs(container, Some(opts)));
        let read = async {
            while let Some(Ok(chunk)) = next(&mut logs).await {
                let text = String::from_utf8_lossy(&chunk.into_bytes()).into_owned();
                lines.extend(
                    text.lines()
                        .map(str::trim_end)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned),
                );
            }
        };
        // A look must not hang on a slow log stream: without lines it still says what it saw.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), read).await;
        let keep = lines.len().saturating_sub(LAST_LINES);
        let lines: Vec<String> = lines.split_off(keep);
        let state = info.state.unwrap_or_default();
        if state.running == Some(true) {
            Look::Running {
                last_line: lines.last().cloned(),
            }
        } else {
            Look::Ended {
                exit_code: state.exit_code,
                oom: state.oom_killed == Some(true),
                last_lines: lines,
            }
        }
    }
}
