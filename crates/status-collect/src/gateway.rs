//! `gateway`: the LLM gateway's containers (through [`ContainerRuntime`]) and its health endpoint
//! (through [`HttpProbe`]). [`DockerRuntime`] (feature `docker`) and [`ReqwestProbe`] (feature
//! `http`) are the real ones.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::{CollectError, Collected, Collector, Finding};

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

impl From<ContainerState> for ContainerInfo {
    fn from(c: ContainerState) -> Self {
        ContainerInfo {
            state: c.status,
            health: c.health,
            restart_count: c.restart_count,
        }
    }
}

pub use lookout_common::docker::{ContainerRuntime, ContainerState, EngineUnreachable};
pub use lookout_common::http::{HttpAnswer, HttpProbe, HttpProbeError};

/// The real [`ContainerRuntime`]: the Docker Engine API (lookout-common's, with a 5 s timeout).
#[cfg(feature = "docker")]
pub fn docker_runtime(socket: impl Into<String>) -> DockerEngine {
    DockerEngine::new(socket).with_timeout(5)
}

#[cfg(feature = "docker")]
pub use lookout_common::docker::DockerEngine;

#[cfg(feature = "http")]
pub use lookout_common::http::ReqwestProbe;

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

    async fn collect(&self) -> Result<Collected, CollectError> {
        let containers = async {
            let mut out = Vec::new();
            for name in &self.containers {
                out.push((
                    name.clone(),
                    self.runtime.inspect(name).await.map(ContainerInfo::from),
                ));
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
            let counted = h.map_err(health_error_text).and_then(|a| {
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

/// Why the health endpoint gave no answer, as the section says it.
fn health_error_text(e: HttpProbeError) -> String {
    match e {
        HttpProbeError::Timeout(ms) => format!("health endpoint timed out after {ms} ms"),
        HttpProbeError::Connect(e) | HttpProbeError::Other(e) => {
            format!("health endpoint unreachable: {e}")
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
        async fn inspect(&self, name: &str) -> Result<ContainerState, EngineUnreachable> {
            let m = self
                .0
                .as_ref()
                .ok_or_else(|| EngineUnreachable("no socket".into()))?;
            Ok(match m.get(name) {
                Some(s) => ContainerState {
                    status: (*s).into(),
                    health: None,
                    restart_count: Some(0),
                    exit_code: None,
                },
                None => ContainerState::not_found(),
            })
        }
    }

    struct Health(Result<HttpAnswer, HttpProbeError>);
    #[async_trait::async_trait]
    impl HttpProbe for Health {
        async fn get(
            &self,
            _: &str,
            _: Option<&str>,
            _: Duration,
        ) -> Result<HttpAnswer, HttpProbeError> {
            self.0.clone()
        }
    }

    fn section(engine: Engine, health: Result<(u16, &str), HttpProbeError>) -> GatewaySection {
        GatewaySection {
            mode: Some("litellm".into()),
            containers: vec!["litellm".into(), "litellm-db".into()],
            runtime: Arc::new(engine),
            health_url: Some("http://127.0.0.1:4000/health".into()),
            health_key: None,
            probe: Arc::new(Health(health.map(|(status, body)| HttpAnswer {
                status,
                body: body.into(),
            }))),
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
                Err(HttpProbeError::Timeout(1000)),
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
