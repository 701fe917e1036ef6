//! How lookoutd looks at a host's run itself: its container, through the engine, or its process,
//! through `/proc` (a pid in lookoutd's own pid namespace). A [`Look`] is what one look found;
//! [`RunProbe`] is the seam (this machine in lookoutd, a script in tests).

use std::pin::Pin;

use bollard::query_parameters::LogsOptions;
use futures_core::Stream;

/// How many of a container's last output lines a look keeps.
const LAST_LINES: usize = 5;

/// What a run is watched through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Watched {
    /// A container, by name or id.
    Container(String),
    /// A process.
    Process(u32),
}

impl std::fmt::Display for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Watched::Container(c) => write!(f, "container {c}"),
            Watched::Process(p) => write!(f, "process {p}"),
        }
    }
}

/// What one look at a run's container or process found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Look {
    /// Running, with its last line of output. `instance` tells one process from a later one
    /// given the same pid (its start time, in clock ticks since boot); None for a container.
    Running {
        last_line: Option<String>,
        instance: Option<u64>,
    },
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

/// Looks at a run's container or process.
#[async_trait::async_trait]
pub(crate) trait RunProbe: Send + Sync {
    async fn look(&self, what: &Watched) -> Look;
}

/// This machine: the Docker engine at `socket` for containers, `/proc` for processes.
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
    async fn look(&self, what: &Watched) -> Look {
        match what {
            Watched::Container(c) => self.look_container(c).await,
            Watched::Process(pid) => look_process(std::path::Path::new("/proc"), *pid),
        }
    }
}

/// A process, from `<proc>/<pid>/stat`: running unless it is gone or a zombie. Its exit code
/// belongs to its parent (the host), so a gone process says none.
pub(crate) fn look_process(proc: &std::path::Path, pid: u32) -> Look {
    let stat = match std::fs::read_to_string(proc.join(pid.to_string()).join("stat")) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Look::Missing,
        Err(e) => return Look::Unknown(format!("cannot read /proc/{pid}/stat: {e}")),
    };
    // `pid (comm) state ppid … starttime(22nd) …`: comm may hold spaces and parentheses, so the
    // fields are counted after its last ')'.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return Look::Unknown(format!("cannot read /proc/{pid}/stat: {stat:?}"));
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    match fields.first() {
        Some(&("Z" | "X" | "x")) => Look::Ended {
            exit_code: None,
            oom: false,
            last_lines: Vec::new(),
        },
        Some(_) => Look::Running {
            last_line: None,
            instance: fields.get(19).and_then(|t| t.parse().ok()),
        },
        None => Look::Unknown(format!("cannot read /proc/{pid}/stat: {stat:?}")),
    }
}

impl DockerRunProbe {
    /// A container, through the engine: its state and last lines of output.
    pub(crate) async fn look_container(&self, container: &str) -> Look {
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
                instance: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_read_from_its_stat_line() {
        let dir = tempfile::tempdir().unwrap();
        let put = |pid: u32, stat: &str| {
            std::fs::create_dir_all(dir.path().join(pid.to_string())).unwrap();
            std::fs::write(dir.path().join(pid.to_string()).join("stat"), stat).unwrap();
        };
        // A command name with a space and a parenthesis; starttime is the 22nd field.
        put(
            7,
            "7 (agent (x) 1) S 1 7 7 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100",
        );
        put(
            8,
            "8 (agent) Z 1 8 8 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 55 0 0",
        );
        assert_eq!(
            look_process(dir.path(), 7),
            Look::Running {
                last_line: None,
                instance: Some(987_654)
            }
        );
        assert!(matches!(
            look_process(dir.path(), 8),
            Look::Ended {
                exit_code: None,
                ..
            }
        ));
        assert_eq!(look_process(dir.path(), 9), Look::Missing);
    }

    #[test]
    fn this_process_is_running_on_the_real_proc() {
        let me = look_process(std::path::Path::new("/proc"), std::process::id());
        assert!(
            matches!(
                me,
                Look::Running {
                    instance: Some(_),
                    ..
                }
            ),
            "{me:?}"
        );
    }
}
