//! The Docker inspect seam: what the engine says about one container. `/status`'s gateway section,
//! the watchdog's container targets and lookoutd's gateway check all read containers through
//! [`ContainerRuntime`]; [`DockerEngine`] (feature `docker`) is the real one.

/// What the engine says about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// `running`, `exited`, `restarting`, `created`, `paused`, `dead`, … or `not_found`.
    pub status: String,
    /// The health check's status (`healthy`, `unhealthy`, `starting`), when it has one.
    pub health: Option<String>,
    /// How often the engine restarted it, when it says.
    pub restart_count: Option<i64>,
    /// The exit code of its last run, when it says.
    pub exit_code: Option<i64>,
}

impl ContainerState {
    /// The state of a container the engine does not know.
    pub fn not_found() -> Self {
        ContainerState {
            status: "not_found".into(),
            health: None,
            restart_count: None,
            exit_code: None,
        }
    }
}

/// The engine could not answer at all (as opposed to "no such container"): its own condition,
/// never a container's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("container engine unreachable: {0}")]
pub struct EngineUnreachable(pub String);

/// Reads a container's state from an engine.
#[async_trait::async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// The state of `name`; a missing container is `Ok` with status `not_found`.
    async fn inspect(&self, name: &str) -> Result<ContainerState, EngineUnreachable>;
}

#[cfg(feature = "docker")]
pub use real::DockerEngine;

#[cfg(feature = "docker")]
mod real {
    use bollard::Docker;
    use bollard::errors::Error;

    use super::{ContainerRuntime, ContainerState, EngineUnreachable};

    /// The Docker Engine API over its unix socket (bollard). It connects lazily and again after a
    /// failure, so an engine that starts (or restarts) later is found.
    pub struct DockerEngine {
        socket: String,
        timeout_secs: u64,
        client: tokio::sync::Mutex<Option<Docker>>,
    }

    impl std::fmt::Debug for DockerEngine {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("DockerEngine")
                .field("socket", &self.socket)
                .finish()
        }
    }

    impl DockerEngine {
        /// An engine at `socket` (`unix:///var/run/docker.sock` or a path); nothing is connected
        /// until the first call.
        pub fn new(socket: impl Into<String>) -> Self {
            DockerEngine {
                socket: socket.into(),
                timeout_secs: 30,
                client: tokio::sync::Mutex::new(None),
            }
        }

        /// Each request gives up after `secs` seconds (default 30).
        pub fn with_timeout(mut self, secs: u64) -> Self {
            self.timeout_secs = secs;
            self
        }

        /// The socket it talks to.
        pub fn socket(&self) -> &str {
            &self.socket
        }

        /// A connected client, connecting when there is none.
        pub async fn client(&self) -> Result<Docker, EngineUnreachable> {
            let mut guard = self.client.lock().await;
            if let Some(d) = guard.as_ref() {
                return Ok(d.clone());
            }
            let d = Docker::connect_with_unix(
                &self.socket,
                self.timeout_secs,
                bollard::API_DEFAULT_VERSION,
            )
            .map_err(|e| EngineUnreachable(format!("{}: {e}", self.socket)))?;
            *guard = Some(d.clone());
            Ok(d)
        }

        /// Drops the client, so the next call reconnects (the engine may have restarted).
        pub async fn forget(&self) {
            *self.client.lock().await = None;
        }

        /// `e` as the engine being unreachable, forgetting the client.
        pub async fn unreachable(&self, e: impl std::fmt::Display) -> EngineUnreachable {
            self.forget().await;
            EngineUnreachable(format!("{}: {e}", self.socket))
        }
    }

    #[async_trait::async_trait]
    impl ContainerRuntime for DockerEngine {
        async fn inspect(&self, name: &str) -> Result<ContainerState, EngineUnreachable> {
            let d = self.client().await?;
            match d.inspect_container(name, None).await {
                Ok(r) => {
                    let state = r.state.as_ref();
                    Ok(ContainerState {
                        status: state
                            .and_then(|s| s.status)
                            .map(|s| s.to_string())
                            .filter(|s| !s.is_empty())
                            .unwrap_or_else(|| "unknown".into()),
                        health: state
                            .and_then(|s| s.health.as_ref())
                            .and_then(|h| h.status)
                            .map(|h| h.to_string())
                            .filter(|h| !h.is_empty() && h != "none"),
                        restart_count: r.restart_count,
                        exit_code: state.and_then(|s| s.exit_code),
                    })
                }
                Err(Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Ok(ContainerState::not_found()),
                Err(e) => Err(self.unreachable(e).await),
            }
        }
    }
}
