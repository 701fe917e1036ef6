//! The seams to the world: processes, the container engine and HTTP, each a trait with one real
//! implementation, so the ladder is unit-tested with fakes.

use serde::{Deserialize, Serialize};

use crate::WatchdogError;

/// A signal the ladder sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signal {
    /// SIGTERM (tier 2).
    Term,
    /// SIGKILL (tier 3).
    Kill,
}

/// Process control: the only way the watchdog acts on a process.
pub trait ProcessControl: Send + Sync {
    /// Whether `pid` exists (`kill(pid, 0)`). A stopped (SIGSTOP) process is alive: a hang is seen
    /// by its heartbeat, not here.
    fn alive(&self, pid: u32) -> bool;
    /// Sends `signal` to `pid`.
    fn signal(&self, pid: u32, signal: Signal) -> Result<(), WatchdogError>;
    /// Runs `command` with `sh -c`, detached in its own process group; returns its pid.
    fn spawn(&self, command: &str) -> Result<u32, WatchdogError>;
}

/// The real [`ProcessControl`]: `kill(2)` through nix, and `sh -c` children in their own process
/// group, reaped by a small thread each so none is left a zombie.
#[derive(Debug, Clone, Copy, Default)]
pub struct NixProcessControl;

impl ProcessControl for NixProcessControl {
    fn alive(&self, pid: u32) -> bool {
        let Ok(raw) = i32::try_from(pid) else {
            return false;
        };
        if raw <= 0 {
            return false;
        }
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
            Ok(()) => true,
            // It exists but belongs to someone else.
            Err(nix::errno::Errno::EPERM) => true,
            Err(_) => false,
        }
    }

    fn signal(&self, pid: u32, signal: Signal) -> Result<(), WatchdogError> {
        let raw = i32::try_from(pid)
            .ok()
            .filter(|p| *p > 0)
            .ok_or(WatchdogError::Signal {
                pid,
                reason: "not a valid pid".into(),
            })?;
        let sig = match signal {
            Signal::Term => nix::sys::signal::Signal::SIGTERM,
            Signal::Kill => nix::sys::signal::Signal::SIGKILL,
        };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), sig).map_err(|e| {
            WatchdogError::Signal {
                pid,
                reason: e.desc().to_owned(),
            }
        })
    }

    fn spawn(&self, command: &str) -> Result<u32, WatchdogError> {
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| WatchdogError::Spawn(e.to_string()))?;
        let pid = child.id();
        // Reap it whenever it exits, so a restarted target never lingers as a zombie (a zombie
        // answers kill(0) and would look alive).
        std::thread::Builder::new()
            .name(format!("watchdog-reap-{pid}"))
            .spawn(move || {
                let _ = child.wait();
            })
            .map_err(|e| WatchdogError::Spawn(e.to_string()))?;
        Ok(pid)
    }
}

/// What the engine says about a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    /// `running`, `exited`, `restarting`, `created`, `paused`, `dead`, or `not_found`.
    pub status: String,
    /// The health check's status (`healthy`, `unhealthy`, `starting`), when it has one.
    pub health: Option<String>,
    /// The engine's restart count.
    pub restart_count: u64,
    /// The exit code of the last run.
    pub exit_code: Option<i64>,
}

pub use lookout_common::docker::EngineUnreachable;

impl From<lookout_common::docker::ContainerState> for ContainerState {
    fn from(c: lookout_common::docker::ContainerState) -> Self {
        ContainerState {
            status: c.status,
            health: c.health,
            restart_count: c.restart_count.unwrap_or(0).max(0) as u64,
            exit_code: c.exit_code,
        }
    }
}

/// Container control through the engine.
#[async_trait::async_trait]
pub trait ContainerControl: Send + Sync {
    /// The container's state; a missing container is `Ok` with status `not_found`.
    async fn inspect(&self, name: &str) -> Result<ContainerState, EngineUnreachable>;
    /// Restarts it.
    async fn restart(&self, name: &str) -> Result<(), WatchdogError>;
    /// Stops it.
    async fn stop(&self, name: &str) -> Result<(), WatchdogError>;
    /// Starts it.
    async fn start(&self, name: &str) -> Result<(), WatchdogError>;
}

/// The real [`ContainerControl`]: the Docker Engine API over its unix socket (bollard, through
/// lookout-common's [`DockerEngine`](lookout_common::docker::DockerEngine), which connects lazily
/// and again after a failure, so an engine that starts later is found).
#[derive(Debug)]
pub struct DockerControl {
    engine: lookout_common::docker::DockerEngine,
}

impl DockerControl {
    /// Control through the engine at `socket` (`unix:///var/run/docker.sock` or a path).
    pub fn new(socket: impl Into<String>) -> Self {
        DockerControl {
            engine: lookout_common::docker::DockerEngine::new(socket),
        }
    }

    async fn client(&self) -> Result<bollard::Docker, EngineUnreachable> {
        self.engine.client().await
    }

    fn err(&self, name: &str, e: impl std::fmt::Display) -> WatchdogError {
        WatchdogError::Container {
            container: name.to_owned(),
            reason: e.to_string(),
        }
    }
}

#[async_trait::async_trait]
impl ContainerControl for DockerControl {
    async fn inspect(&self, name: &str) -> Result<ContainerState, EngineUnreachable> {
        use lookout_common::docker::ContainerRuntime;
        self.engine.inspect(name).await.map(ContainerState::from)
    }

    async fn restart(&self, name: &str) -> Result<(), WatchdogError> {
        let d = self.client().await.map_err(|e| self.err(name, e))?;
        d.restart_container(name, None)
            .await
            .map_err(|e| self.err(name, e))
    }

    async fn stop(&self, name: &str) -> Result<(), WatchdogError> {
        let d = self.client().await.map_err(|e| self.err(name, e))?;
        match d.stop_container(name, None).await {
            // 304: already stopped.
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(self.err(name, e)),
        }
    }

    async fn start(&self, name: &str) -> Result<(), WatchdogError> {
        let d = self.client().await.map_err(|e| self.err(name, e))?;
        match d.start_container(name, None).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(self.err(name, e)),
        }
    }
}

pub use lookout_common::http::{HttpAnswer, HttpProbe, HttpProbeError, ReqwestProbe};

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn real_control_spawns_signals_and_reaps() {
        let c = NixProcessControl;
        assert!(c.alive(std::process::id()));
        let pid = c.spawn("sleep 30").unwrap();
        assert!(c.alive(pid));
        c.signal(pid, Signal::Kill).unwrap();
        // Reaped by its thread: gone, not a zombie.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while c.alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!c.alive(pid));
        assert!(!c.alive(0));
    }
}
