//! `gateway`: the LLM gateway's containers (through [`ContainerRuntime`]) and its health endpoint
//! (through [`HttpProbe`]). [`DockerRuntime`] (feature `docker`) and [`ReqwestProbe`] (feature
//! `http`) are the real ones.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::{Collected, Collector, Finding};

/// A container's state as `/status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerInfo {
    /// `running`, `exited`, `restarting`, `paused`, `created`, `dead`, … or `not_found`.
    pub state: String,
    /// The health check's status (`healthy`, `unhealthy`, `starting`) when it has one.
    pub health: Option<String>,
    /// How often the engine restarted it.
    pub restart_count: Option<i64>,
}

impl ContainerInfo {
    /// The state of a container the engine does not know.
    pub fn not_found() -> Self {
        ContainerInfo {
            state: "not_found".into(),
            health: None,
            restart_count: None,
        }
    }
}

/// Why a container engine could not answer at all (as opposed to "no such container").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("container engine unreachable: {0}")]
pub struct EngineUnreachable(pub String);

/// Reads container states from a container engine.
#[async_trait::async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// The state of the container `name`; [`ContainerInfo::not_found`] when the engine has none.
    async fn container(&self, name: &str) -> Result<ContainerInfo, EngineUnreachable>;
}

/// An answer of a health endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

/// GETs health endpoints.
#[async_trait::async_trait]
pub trait HttpProbe: Send + Sync {
    /// GETs `url` (with `Authorization: Bearer <bearer>` when given), giving up after `timeout`.
    async fn get(
        &self,
        url: &str,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Result<HttpAnswer, String>;
}

/// `gateway`: mode, each container's state, and the health endpoint's model counts.
///
/// Verdict: the engine unreachable **fails** ("docker engine unreachable: …"); a gateway container
/// not running **fails** ("gateway container litellm is exited"); the health endpoint failing,
/// slow past `health_timeout`, or answering something other than JSON **warns**; unhealthy models
/// **warn**, and no healthy model at all while some are unhealthy **fails**.
pub struct GatewaySection {
    /// `mode` as configured (free text).
    pub mode: Option<String>,
    /// The gateway's containers.
    pub containers: Vec<String>,
    /// The engine.
    pub runtime: Arc<dyn ContainerRuntime>,
    /// The health endpoint, if any.
    pub health_url: Option<String>,
    /// The key the health endpoint wants (read from the environment by the daemon; never shown).
    pub health_key: Option<String>,
    /// The HTTP client.
    pub probe: Arc<dyn HttpProbe>,
    /// How long the health endpoint may take (keep it below the section timeout, so a slow
    /// endpoint still leaves the containers' states in the report).
    pub health_timeout: Duration,
}

/// The model counts of a LiteLLM-style `/health` answer: `healthy_count`/`unhealthy_count`, or the
/// lengths of `healthy_endpoints`/`unhealthy_endpoints`.
fn model_counts(body: &str) -> Result<(u64, u64), String> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| {
        format!(
            "health endpoint answered with invalid JSON ({e}): {:?}",
            body.chars().take(60).collect::<String>()
        )
    })?;
    let count = |n: &str, list: &str| {
        v.get(n).and_then(|c| c.as_u64()).or_else(|| {
            v.get(list)
                .and_then(|l| l.as_array())
                .map(|a| a.len() as u64)
        })
    };
    match (
        count("healthy_count", "healthy_endpoints"),
        count("unhealthy_count", "unhealthy_endpoints"),
    ) {
        (Some(h), Some(u)) => Ok((h, u)),
        (Some(h), None) => Ok((h, 0)),
        _ => Err("health endpoint's JSON has no healthy_count or healthy_endpoints".to_owned()),
    }
}

#[async_trait::async_trait]
impl Collector for GatewaySection {
    fn name(&self) -> &'static str {
        "gateway"
    }

    async fn collect(&self) -> Result<Collected, String> {
        let containers = async {
            let mut out = Vec::new();
            for name in &self.containers {
                out.push((name.clone(), self.runtime.container(name).await));
            }
            out
        };
        let health = async {
            match &self.health_url {
                None => None,
                Some(url) => Some(
                    self.probe
                        .get(url, self.health_key.as_deref(), self.health_timeout)
                        .await,
                ),
            }
        };
        let (containers, health) = tokio::join!(containers, health);
        let mut findings = Vec::new();
        let mut states = serde_json::Map::new();
        let mut unreachable_said = false;
        for (name, r) in containers {
            match r {
                Ok(info) => {
                    if info.state != "running" {
                        findings.push(Finding::fail(format!(
                            "gateway container {name} is {}",
                            info.state.replace('_', " ")
                        )));
                    } else if info.health.as_deref() == Some("unhealthy") {
                        findings.push(Finding::warn(format!(
                            "gateway container {name} is unhealthy"
                        )));
                    }
                    states.insert(name, serde_json::to_value(info).map_err(|e| e.to_string())?);
                }
                Err(EngineUnreachable(e)) => {
                    // One cause, said once, not once per container.
                    if !unreachable_said {
                        findings.push(Finding::fail(format!("docker engine unreachable: {e}")));
                        unreachable_said = true;
                    }
                    states.insert(name, json!({"state": "engine_unreachable"}));
                }
            }
        }
        let (mut healthy, mut unhealthy, mut health_error) = (None, None, None);
        if let Some(h) = health {
            let counted = h.and_then(|a| {
                if (200..300).contains(&a.status) {
                    model_counts(&a.body)
                } else {
                    Err(format!("health endpoint answered HTTP {}", a.status))
                }
            });
            match counted {
                Ok((h, u)) => {
                    healthy = Some(h);
                    unhealthy = Some(u);
                    if u > 0 && h == 0 {
                        findings.push(Finding::fail(format!(
                            "gateway: no healthy model ({u} unhealthy)"
                        )));
                    } else if u > 0 {
                        findings.push(Finding::warn(format!("gateway: {u} unhealthy model(s)")));
                    }
                }
                Err(e) => {
                    findings.push(Finding::warn(format!("gateway {e}")));
                    health_error = Some(e);
                }
            }
        }
        Ok(Collected {
            data: json!({
                "mode": self.mode,
                "containers": states,
                "health_url": self.health_url,
                "healthy_models": healthy,
                "unhealthy_models": unhealthy,
                "health_error": health_error,
            }),
            findings,
        })
    }
}

#[cfg(feature = "docker")]
pub use docker::DockerRuntime;

#[cfg(feature = "docker")]
mod docker {
    use bollard::Docker;
    use bollard::errors::Error;
    use tokio::sync::Mutex;

    use super::{ContainerInfo, ContainerRuntime, EngineUnreachable};

    /// The real [`ContainerRuntime`]: the Docker Engine API over its unix socket. It connects
    /// lazily and again after a failure, so an engine that starts after lookoutd is found.
    pub struct DockerRuntime {
        socket: String,
        client: Mutex<Option<Docker>>,
    }

    impl DockerRuntime {
        /// A runtime for the engine at `socket` (`unix:///var/run/docker.sock` or a path).
        pub fn new(socket: impl Into<String>) -> Self {
            DockerRuntime {
                socket: socket.into(),
                client: Mutex::new(None),
            }
        }

        async fn client(&self) -> Result<Docker, EngineUnreachable> {
            let mut c = self.client.lock().await;
            if let Some(d) = &*c {
                return Ok(d.clone());
            }
            let d = Docker::connect_with_unix(&self.socket, 5, bollard::API_DEFAULT_VERSION)
                .map_err(|e| EngineUnreachable(format!("{}: {e}", self.socket)))?;
            *c = Some(d.clone());
            Ok(d)
        }
    }

    #[async_trait::async_trait]
    impl ContainerRuntime for DockerRuntime {
        async fn container(&self, name: &str) -> Result<ContainerInfo, EngineUnreachable> {
            let d = self.client().await?;
            match d.inspect_container(name, None).await {
                Ok(r) => {
                    let state = r.state.as_ref();
                    Ok(ContainerInfo {
                        state: state
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
                    })
                }
                Err(Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Ok(ContainerInfo::not_found()),
                Err(e) => {
                    // Drop the client: the next call reconnects (the engine may have restarted).
                    *self.client.lock().await = None;
                    Err(EngineUnreachable(format!("{}: {e}", self.socket)))
                }
            }
        }
    }
}

#[cfg(feature = "http")]
pub use http::ReqwestProbe;

#[cfg(feature = "http")]
mod http {
    use std::time::Duration;

    use super::{HttpAnswer, HttpProbe};

    /// The real [`HttpProbe`]: one pooled HTTP client.
    #[derive(Debug, Clone, Default)]
    pub struct ReqwestProbe {
        client: reqwest::Client,
    }

    impl ReqwestProbe {
        /// A probe with its own connection pool.
        pub fn new() -> Self {
            Self::default()
        }
    }

    #[async_trait::async_trait]
    impl HttpProbe for ReqwestProbe {
        async fn get(
            &self,
            url: &str,
            bearer: Option<&str>,
            timeout: Duration,
        ) -> Result<HttpAnswer, String> {
            let mut req = self.client.get(url).timeout(timeout);
            if let Some(k) = bearer {
                req = req.bearer_auth(k);
            }
            let send = async {
                let resp = req.send().await?;
                let status = resp.status().as_u16();
                let body = resp.text().await?;
                Ok::<_, reqwest::Error>(HttpAnswer { status, body })
            };
            match send.await {
                Ok(a) => Ok(a),
                Err(e) if e.is_timeout() => Err(format!(
                    "health endpoint timed out after {} ms",
                    timeout.as_millis()
                )),
                // Only the URL's host and path: the error's source chain may repeat the URL, but
                // never a header, so the key cannot leak here.
                Err(e) => Err(format!("health endpoint unreachable: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::Verdict;

    struct Engine(Option<HashMap<&'static str, &'static str>>);
    #[async_trait::async_trait]
    impl ContainerRuntime for Engine {
        async fn container(&self, name: &str) -> Result<ContainerInfo, EngineUnreachable> {
            let m = self
                .0
                .as_ref()
                .ok_or_else(|| EngineUnreachable("no socket".into()))?;
            Ok(match m.get(name) {
                Some(s) => ContainerInfo {
                    state: (*s).into(),
                    health: None,
                    restart_count: Some(0),
                },
                None => ContainerInfo::not_found(),
            })
        }
    }

    struct Health(Result<HttpAnswer, String>);
    #[async_trait::async_trait]
    impl HttpProbe for Health {
        async fn get(&self, _: &str, _: Option<&str>, _: Duration) -> Result<HttpAnswer, String> {
            self.0.clone()
        }
    }

    fn section(engine: Engine, health: Result<(u16, &str), &str>) -> GatewaySection {
        GatewaySection {
            mode: Some("litellm".into()),
            containers: vec!["litellm".into(), "litellm-db".into()],
            runtime: Arc::new(engine),
            health_url: Some("http://127.0.0.1:4000/health".into()),
            health_key: None,
            probe: Arc::new(Health(
                health
                    .map(|(status, body)| HttpAnswer {
                        status,
                        body: body.into(),
                    })
                    .map_err(str::to_owned),
            )),
            health_timeout: Duration::from_secs(1),
        }
    }

    fn running() -> Engine {
        Engine(Some(HashMap::from([
            ("litellm", "running"),
            ("litellm-db", "running"),
        ])))
    }

    fn reasons(c: &Collected) -> Vec<(Verdict, String)> {
        c.findings
            .iter()
            .map(|f| (f.level, f.reason.clone()))
            .collect()
    }

    #[tokio::test]
    async fn healthy_gateway_passes_with_counts() {
        let c = section(
            running(),
            Ok((200, r#"{"healthy_count":2,"unhealthy_count":0}"#)),
        )
        .collect()
        .await
        .unwrap();
        assert!(c.findings.is_empty(), "{:?}", c.findings);
        assert_eq!(c.data["healthy_models"], 2);
        assert_eq!(c.data["containers"]["litellm"]["state"], "running");
    }

    #[tokio::test]
    async fn endpoint_lists_count_as_well() {
        let c = section(
            running(),
            Ok((
                200,
                r#"{"healthy_endpoints":[{}],"unhealthy_endpoints":[{},{}]}"#,
            )),
        )
        .collect()
        .await
        .unwrap();
        assert_eq!(
            (
                c.data["healthy_models"].clone(),
                c.data["unhealthy_models"].clone()
            ),
            (1.into(), 2.into())
        );
        assert_eq!(
            reasons(&c),
            vec![(Verdict::Warn, "gateway: 2 unhealthy model(s)".into())]
        );
    }

    #[tokio::test]
    async fn no_healthy_model_fails() {
        let c = section(
            running(),
            Ok((200, r#"{"healthy_count":0,"unhealthy_count":3}"#)),
        )
        .collect()
        .await
        .unwrap();
        assert_eq!(
            reasons(&c),
            vec![(
                Verdict::Fail,
                "gateway: no healthy model (3 unhealthy)".into()
            )]
        );
    }

    #[tokio::test]
    async fn missing_and_exited_containers_fail_by_name() {
        let engine = Engine(Some(HashMap::from([("litellm", "exited")])));
        let c = section(engine, Ok((200, r#"{"healthy_count":1}"#)))
            .collect()
            .await
            .unwrap();
        assert_eq!(
            reasons(&c),
            vec![
                (Verdict::Fail, "gateway container litellm is exited".into()),
                (
                    Verdict::Fail,
                    "gateway container litellm-db is not found".into()
                ),
            ]
        );
        assert_eq!(c.data["containers"]["litellm-db"]["state"], "not_found");
    }

    #[tokio::test]
    async fn an_unreachable_engine_is_said_once() {
        let c = section(Engine(None), Ok((200, r#"{"healthy_count":1}"#)))
            .collect()
            .await
            .unwrap();
        assert_eq!(
            reasons(&c),
            vec![(Verdict::Fail, "docker engine unreachable: no socket".into())]
        );
        assert_eq!(
            c.data["containers"]["litellm"]["state"],
            "engine_unreachable"
        );
        assert_eq!(
            c.data["healthy_models"], 1,
            "the health endpoint still reports"
        );
    }

    #[tokio::test]
    async fn bad_health_answers_warn_and_keep_the_containers() {
        for (health, want) in [
            (
                Ok((500, "oops")),
                "gateway health endpoint answered HTTP 500",
            ),
            (
                Err("health endpoint timed out after 1000 ms"),
                "gateway health endpoint timed out after 1000 ms",
            ),
        ] {
            let c = section(running(), health).collect().await.unwrap();
            assert_eq!(reasons(&c), vec![(Verdict::Warn, want.to_owned())]);
            assert_eq!(c.data["healthy_models"], serde_json::Value::Null);
            assert_eq!(c.data["containers"]["litellm"]["state"], "running");
        }
        let c = section(running(), Ok((200, "<html>")))
            .collect()
            .await
            .unwrap();
        assert!(
            c.findings[0]
                .reason
                .starts_with("gateway health endpoint answered with invalid JSON"),
            "{:?}",
            c.findings
        );
    }
}
