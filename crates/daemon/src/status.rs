//! `GET /status`: the sections lookoutd can collect today, and the page a person reads.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use lookout_reconcile_core::event::Event;
use lookout_status_collect::gateway::{GatewaySection, ReqwestProbe, docker_runtime};
use lookout_status_collect::host::{
    GroupsSection, GroupsSnapshot, QueueSection, QueueSnapshot, TaskList, TaskSource, TasksSection,
};
use lookout_status_collect::repos::{
    DeploySection, DeploySource, Git2Inspector, LastDeploy, RepoInspector, RepoTarget, ReposSection,
};
use lookout_status_collect::sections::{
    BootSection, ChannelsSection, MessagesSection, NotificationsSection, ServiceSection,
};
use lookout_status_collect::{ChannelState, Collector, StatusDeps};
use lookout_store::Store;
use serde::Deserialize;

use crate::http::{ApiError, AppState};

/// What the host reports through its events: channel state from the latest `channel_connected` /
/// `channel_disconnected` of each channel.
pub(crate) struct EventDeps {
    pub(crate) store: Store,
    /// The host's concurrency limit, as configured (`reconcile.max_concurrent`).
    pub(crate) max_concurrent: Option<u32>,
}

impl EventDeps {
    /// The latest `run_started` or `run_finished` of each run; `None` when no run was reported.
    async fn runs(&self) -> Result<Option<Vec<lookout_store::StoredEvent>>, String> {
        let latest = self
            .store
            .latest_by_subject(&["run_started", "run_finished"])
            .await
            .map_err(|e| e.to_string())?;
        Ok((!latest.is_empty()).then_some(latest))
    }
}

#[async_trait::async_trait]
impl StatusDeps for EventDeps {
    /// The runs the host reported as started and not yet finished, per group.
    async fn queue(&self) -> Result<Option<QueueSnapshot>, String> {
        let Some(latest) = self.runs().await? else {
            return Ok(None);
        };
        let mut q = QueueSnapshot {
            max_concurrent: self.max_concurrent,
            ..QueueSnapshot::default()
        };
        for run in latest.iter().filter(|e| e.kind == "run_started") {
            let typed = Event::from_payload(&run.kind, &run.payload);
            let run = typed.run();
            let group = run.map_or("-", |r| r.group.as_str()).to_owned();
            let g = q.per_group.entry(group).or_default();
            g.active = true;
            g.is_task |= run.is_some_and(|r| r.run_kind == "task");
            if run.is_some_and(|r| r.container.is_some()) {
                q.active_containers += 1;
            }
        }
        Ok(Some(q))
    }

    /// The groups the host's runs were reported in (`total`), and those with a run going on now
    /// (`active_sessions`). A host that registers groups without running in them reports them
    /// itself when it embeds the crate; lookoutd knows what the events say.
    async fn groups(&self) -> Result<Option<GroupsSnapshot>, String> {
        let Some(latest) = self.runs().await? else {
            return Ok(None);
        };
        let group = |e: &lookout_store::StoredEvent| {
            Event::from_payload(&e.kind, &e.payload)
                .group()
                .map(str::to_owned)
        };
        let all: std::collections::BTreeSet<String> = latest.iter().filter_map(group).collect();
        let active: std::collections::BTreeSet<String> = latest
            .iter()
            .filter(|e| e.kind == "run_started")
            .filter_map(group)
            .collect();
        Ok(Some(GroupsSnapshot {
            total: all.len() as u32,
            active_sessions: active.len() as u32,
        }))
    }

    async fn channels(&self) -> Result<BTreeMap<String, ChannelState>, String> {
        let latest = self
            .store
            .latest_by_subject(&["channel_connected", "channel_disconnected"])
            .await
            .map_err(|e| e.to_string())?;
        Ok(latest
            .into_iter()
            .filter_map(|e| {
                let (channel, connected, reason) = match Event::from_payload(&e.kind, &e.payload) {
                    Event::ChannelConnected { channel, reason } => (channel, true, reason),
                    Event::ChannelDisconnected { channel, reason } => (channel, false, reason),
                    _ => return None,
                };
                Some((
                    channel,
                    ChannelState {
                        connected,
                        since: Some(e.at),
                        reason,
                    },
                ))
            })
            .collect())
    }
}

/// The last deploy: the newest `deploy` event.
struct DeployEvents {
    store: Store,
}

#[async_trait::async_trait]
impl DeploySource for DeployEvents {
    async fn last_deploy(&self) -> Result<Option<LastDeploy>, String> {
        // `deploy` events are keyed by sha: the newest of the latest per sha is the last deploy.
        let latest = self
            .store
            .latest_by_subject(&["deploy"])
            .await
            .map_err(|e| e.to_string())?;
        Ok(latest.into_iter().max_by_key(|e| e.seq).and_then(|e| {
            match Event::from_payload(&e.kind, &e.payload) {
                Event::Deploy { sha, .. } => Some(LastDeploy { at: e.at, sha }),
                _ => None,
            }
        }))
    }
}

/// The collectors of this daemon.
pub(crate) fn collectors(
    store: &Store,
    config: &lookout_config::Config,
    stale_processing: std::time::Duration,
    state_dir: &std::path::Path,
) -> Vec<Arc<dyn Collector>> {
    let deps: Arc<dyn StatusDeps> = Arc::new(EventDeps {
        store: store.clone(),
        max_concurrent: config.reconcile.max_concurrent,
    });
    let inspector: Arc<dyn RepoInspector> = if config.status.watch_repos {
        // lookoutd's own state directory may sit inside a watched repository (`./.lookout`): its
        // database is written all the time and git ignores it, so its writes do not count.
        Arc::new(lookout_status_collect::watched::WatchedInspector::new(
            Arc::new(Git2Inspector),
            config.status.rescan_interval,
            vec![state_dir.to_path_buf()],
        ))
    } else {
        Arc::new(Git2Inspector)
    };
    // The default (no `[[repos]]`) is "the repository lookoutd was started in": outside of one
    // there is nothing to watch, which is not a failure. Configured repositories always report.
    let by_default = config.repos == lookout_config::Config::default().repos;
    let repos: Vec<RepoTarget> = config
        .repos
        .iter()
        .filter(|r| !by_default || inspector.inspect(&r.path).is_ok())
        .map(|r| RepoTarget::new(&r.path, r.name.clone()))
        .collect();
    let mut out: Vec<Arc<dyn Collector>> = vec![
        Arc::new(ServiceSection {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: chrono::Utc::now(),
            deps: deps.clone(),
        }),
        Arc::new(ChannelsSection {
            deps: deps.clone(),
            channel_down: config.thresholds.channel_down,
        }),
        Arc::new(gateway_section(config)),
        Arc::new(QueueSection { deps: deps.clone() }),
        Arc::new(GroupsSection { deps }),
        Arc::new(ReposSection {
            inspector: inspector.clone(),
            repos: repos.clone(),
        }),
        Arc::new(MessagesSection {
            store: store.clone(),
            delivery_pending: config.thresholds.delivery_pending,
            stale_processing,
        }),
        Arc::new(BootSection {
            store: store.clone(),
            services: None,
        }),
        Arc::new(NotificationsSection {
            store: store.clone(),
        }),
    ];
    if let Some(first) = repos.into_iter().next() {
        out.push(Arc::new(DeploySection {
            inspector,
            repo: first,
            deploys: Arc::new(DeployEvents {
                store: store.clone(),
            }),
        }));
    }
    out
}

/// `tasks` and `host_jobs`, from the scheduler's tables.
pub(crate) fn scheduler_collectors(
    store: &Store,
    grace: std::time::Duration,
) -> Vec<Arc<dyn Collector>> {
    let source: Arc<dyn TaskSource> = Arc::new(crate::jobs::SchedulerTasks {
        store: store.clone(),
    });
    vec![
        Arc::new(TasksSection {
            source: source.clone(),
            list: TaskList::Tasks,
            grace,
        }),
        Arc::new(TasksSection {
            source,
            list: TaskList::HostJobs,
            grace,
        }),
    ]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusQuery {
    sections: Option<String>,
    format: Option<String>,
}

pub(crate) async fn status(
    State(state): State<AppState>,
    q: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) =
        q.map_err(|e| ApiError::new(axum::http::StatusCode::BAD_REQUEST, e.body_text()))?;
    let only: Option<Vec<String>> = q.sections.map(|s| {
        s.split(',')
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect()
    });
    if let Some(only) = &only {
        let known: Vec<&str> = state
            .status()
            .collectors()
            .iter()
            .map(|c| c.name())
            .collect();
        if let Some(bad) = only.iter().find(|s| !known.contains(&s.as_str())) {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("unknown section `{bad}`; sections: {}", known.join(", ")),
            )
            .with("field", serde_json::json!("sections")));
        }
    }
    let report = state.status().report(only.as_deref()).await;
    Ok(match q.format.as_deref() {
        None | Some("json") => Json(&*report).into_response(),
        Some("html") => Html(crate::page::render(&state).await).into_response(),
        Some(other) => {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("unknown format `{other}`; use json or html"),
            )
            .with("field", serde_json::json!("format")));
        }
    })
}

/// `/`: the page.
pub(crate) async fn index(State(state): State<AppState>) -> Response {
    Html(crate::page::render(&state).await).into_response()
}

/// The gateway's section: `/status` shows it and the `gateway_down` check decides from it.
pub(crate) fn gateway_section(config: &lookout_config::Config) -> GatewaySection {
    let gateway = &config.gateway;
    GatewaySection {
        mode: gateway.mode.clone(),
        containers: gateway.containers.clone(),
        runtime: Arc::new(docker_runtime(config.docker.socket.clone())),
        health_url: gateway.health_url.clone(),
        // The key is read here; it is never logged or shown in /status.
        health_key: gateway
            .health_key_env
            .as_ref()
            .and_then(|v| std::env::var(v).ok()),
        probe: Arc::new(ReqwestProbe::new()),
        health_timeout: gateway.health_timeout,
    }
}
