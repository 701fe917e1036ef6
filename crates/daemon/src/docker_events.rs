//! Docker's event stream, not only polling: lookoutd follows the engine's `/events` for the
//! containers it is told about — `[docker] watch` (names, `*` patterns, `label:K[=V]`), the
//! `[[watch]]` container targets and the gateway's containers — and turns a death with a
//! non-zero exit code, an OOM kill, a restart loop and `health_status: unhealthy` into alerts
//! through the lifecycle within seconds, each with the container's last output lines. Each alert
//! depends on the Docker engine, so it folds under "engine unreachable" like the rest. A stop
//! asked for through the engine (`docker stop`, compose) is no death; a removed container's
//! alerts resolve and nothing is kept for it; a restart loop that ends with the container dead
//! is that death's alert when the loop settles. Alerts found firing at start (raised before a
//! restart of lookoutd) are looked at again through the engine, so none is left firing for ever.
//!
//! [`Watched`] says which containers; [`ContainerEvents`] is the policy (pure, `now` given);
//! [`spawn`] follows the stream, reconnecting with backoff when the engine goes away and asking
//! for the events it missed meanwhile (`since` its last one).

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::EventsOptions;
use chrono::{DateTime, Utc};
use futures_core::Stream;
use lookout_notify::Severity;
use lookout_notify::alerts::{Alert, AlertKey, Alerts};

use crate::docker_stream::StreamStatus;
use crate::folding::DOCKER_ENGINE;
use crate::run_watch::{DockerRunProbe, Look};

/// The alert rules of this module (`rule:container`).
pub(crate) const DIED: &str = "container_died";
pub(crate) const UNHEALTHY: &str = "container_unhealthy";
pub(crate) const RESTART_LOOP: &str = "container_restart_loop";

/// Which containers are followed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Watched {
    names: Vec<String>,
    labels: Vec<(String, Option<String>)>,
}

/// The follower of the engine's events: its task, and its state for `/status` and the doctor.
pub(crate) struct Following {
    pub(crate) task: tokio::task::JoinHandle<()>,
    pub(crate) status: StreamStatus,
}

impl Watched {
    pub(crate) fn from_config(c: &lookout_config::Config) -> Self {
        let mut w = Watched::default();
        let entries = c
            .docker
            .watch
            .iter()
            .cloned()
            .chain(c.gateway.containers.iter().cloned())
            .chain(c.watch.iter().filter_map(|t| match t.kind {
                lookout_config::WatchKind::Container => {
                    Some(t.container.clone().unwrap_or_else(|| t.name.clone()))
                }
                _ => None,
            }));
        for e in entries {
            match e.strip_prefix("label:") {
                Some(l) => match l.split_once('=') {
                    Some((k, v)) => w.labels.push((k.to_owned(), Some(v.to_owned()))),
                    None => w.labels.push((l.to_owned(), None)),
                },
                None => w.names.push(e),
            }
        }
        w
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.names.is_empty() && self.labels.is_empty()
    }

    /// What is followed, as configured (`label:` entries as written).
    pub(crate) fn entries(&self) -> Vec<String> {
        self.names
            .iter()
            .cloned()
            .chain(self.labels.iter().map(|(k, v)| match v {
                Some(v) => format!("label:{k}={v}"),
                None => format!("label:{k}"),
            }))
            .collect()
    }

    /// Whether the container `name` with `attributes` (its labels among them) is followed.
    pub(crate) fn matches(&self, name: &str, attributes: &HashMap<String, String>) -> bool {
        self.names.iter().any(|p| wildcard(p, name))
            || self
                .labels
                .iter()
                .any(|(k, v)| match (attributes.get(k), v) {
                    (Some(_), None) => true,
                    (Some(have), Some(want)) => have == want,
                    (None, _) => false,
                })
    }
}

/// `pattern` with `*` for any run of characters, matched against all of `text`.
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// One event of a followed container, as the policy reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EngineEvent {
    Start,
    Die {
        exit_code: Option<i64>,
    },
    Oom,
    Kill {
        signal: Option<String>,
    },
    Health {
        healthy: bool,
    },
    /// Stopped through the engine's API (`docker stop`, compose): its death was asked for.
    Stop,
    /// Removed: nothing about it is left to fix.
    Destroy,
}

impl EngineEvent {
    /// From the stream's action and attributes; `None` for what the policy does not read.
    pub(crate) fn parse(action: &str, attributes: &HashMap<String, String>) -> Option<Self> {
        Some(match action {
            "start" => EngineEvent::Start,
            "die" => EngineEvent::Die {
                exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
            },
            "oom" => EngineEvent::Oom,
            "kill" => EngineEvent::Kill {
                signal: attributes.get("signal").cloned(),
            },
            "stop" => EngineEvent::Stop,
            "destroy" => EngineEvent::Destroy,
            // "health_status: starting" (and a bare "health_status") say nothing yet.
            a if a.starts_with("health_status") => match a.trim_end() {
                h if h.ends_with(": healthy") => EngineEvent::Health { healthy: true },
                h if h.ends_with(": unhealthy") => EngineEvent::Health { healthy: false },
                _ => return None,
            },
            _ => return None,
        })
    }
}

/// What the engine says of a container now (for [`ContainerEvents::resume`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContainerNow {
    Running,
    Stopped,
    Removed,
    /// The engine did not answer.
    Unknown,
}

/// What the policy decides for one event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// Fire `rule:container` with `text` (the last output lines are added by the caller).
    Fire {
        rule: &'static str,
        severity: Severity,
        text: String,
    },
    /// Resolve `rule:container`.
    Resolve { rule: &'static str },
}

#[derive(Debug, Default)]
struct Seen {
    starts: VecDeque<DateTime<Utc>>,
    oom: bool,
    signal: Option<String>,
    looping: bool,
    /// A death not said yet: said once the restart grace passes with no start.
    pending: Option<(DateTime<Utc>, String)>,
    /// Its last start or death: a death, the text it would say (also inside a loop, so a loop
    /// that ends with the container dead says so when it settles).
    last_death: Option<String>,
    /// Removed while its death was pending: forgotten once that is said.
    destroyed: bool,
}

/// How long a death waits for the engine's restart before it is an alert: a container that is
/// restarted at once is a restart (counted towards a loop), not a death.
pub(crate) const RESTART_GRACE: Duration = Duration::from_secs(5);

/// The policy over the followed containers' events.
#[derive(Debug)]
pub(crate) struct ContainerEvents {
    loop_count: usize,
    loop_window: chrono::TimeDelta,
    seen: HashMap<String, Seen>,
    /// Containers whose death waits longer than [`RESTART_GRACE`]: the watchdog's container
    /// targets, which it restarts itself once its probes see them down.
    graces: HashMap<String, chrono::TimeDelta>,
}

impl ContainerEvents {
    pub(crate) fn new(loop_count: u32, loop_window: Duration) -> Self {
        ContainerEvents {
            loop_count: loop_count.max(2) as usize,
            loop_window: chrono::TimeDelta::from_std(loop_window).unwrap_or(chrono::TimeDelta::MAX),
            seen: HashMap::new(),
            graces: HashMap::new(),
        }
    }

    /// `container`'s death is said only after `grace` with no start.
    pub(crate) fn with_grace(mut self, container: &str, grace: Duration) -> Self {
        self.graces.insert(
            container.to_owned(),
            chrono::TimeDelta::from_std(grace).unwrap_or(chrono::TimeDelta::MAX),
        );
        self
    }

    /// What `event` of `container` at `now` means.
    pub(crate) fn on(
        &mut self,
        container: &str,
        event: EngineEvent,
        now: DateTime<Utc>,
    ) -> Vec<Decision> {
        if event == EngineEvent::Destroy {
            return match self.seen.get_mut(container) {
                // A `--rm` container removed just after its crash: the crash is still said.
                Some(s) if s.pending.is_some() => {
                    s.destroyed = true;
                    Vec::new()
                }
                // Removed: its alerts end, and nothing is kept for it (unique names come and go).
                _ => {
                    self.seen.remove(container);
                    vec![
                        Decision::Resolve { rule: DIED },
                        Decision::Resolve { rule: RESTART_LOOP },
                        Decision::Resolve { rule: UNHEALTHY },
                    ]
                }
            };
        }
        let s = self.seen.entry(container.to_owned()).or_default();
        match event {
            EngineEvent::Destroy => Vec::new(), // handled above
            EngineEvent::Stop => {
                // `docker stop` kills, the container dies, then the engine says stop: a death
                // asked for, not an alert.
                s.pending = None;
                s.last_death = None;
                Vec::new()
            }
            EngineEvent::Oom => {
                s.oom = true;
                Vec::new()
            }
            EngineEvent::Kill { signal } => {
                s.signal = signal;
                Vec::new()
            }
            EngineEvent::Start => {
                s.starts.push_back(now);
                while s
                    .starts
                    .front()
                    .is_some_and(|t| now - *t > self.loop_window)
                {
                    s.starts.pop_front();
                }
                // Restarted within the grace: the death was a restart, never said.
                s.pending = None;
                s.last_death = None;
                let mut out = vec![Decision::Resolve { rule: DIED }];
                if !s.looping && s.starts.len() >= self.loop_count {
                    s.looping = true;
                    out.push(Decision::Fire {
                        rule: RESTART_LOOP,
                        severity: Severity::Critical,
                        text: format!(
                            "🔁 container {container} is restarting in a loop: {} starts in {}",
                            s.starts.len(),
                            lookout_common::human_duration(
                                self.loop_window.to_std().unwrap_or_default()
                            )
                        ),
                    });
                }
                out
            }
            EngineEvent::Die { exit_code } => {
                let oom = std::mem::take(&mut s.oom);
                let signal = s.signal.take();
                if exit_code == Some(0) && !oom {
                    s.last_death = None;
                    return Vec::new();
                }
                let how = match (oom, exit_code, signal) {
                    (true, code, _) => format!(
                        "was killed for memory (OOM){}",
                        code.map(|c| format!(", exit code {c}")).unwrap_or_default()
                    ),
                    (false, Some(code), Some(sig)) => {
                        format!("died (exit code {code}, signal {sig})")
                    }
                    (false, Some(code), None) => format!("died (exit code {code})"),
                    (false, None, _) => "died".to_owned(),
                };
                let text = format!("🛑 container {container} {how}");
                s.last_death = Some(text.clone());
                // Inside a restart loop each death is that loop's, not an alert of its own.
                if !s.looping {
                    s.pending = Some((now, text));
                }
                Vec::new()
            }
            EngineEvent::Health { healthy: false } => vec![Decision::Fire {
                rule: UNHEALTHY,
                severity: Severity::Warning,
                text: format!("🩺 container {container} is unhealthy (its health check fails)"),
            }],
            EngineEvent::Health { healthy: true } => vec![Decision::Resolve { rule: UNHEALTHY }],
        }
    }

    /// Deaths whose restart grace has passed with no start: each an alert now.
    pub(crate) fn due(&mut self, now: DateTime<Utc>) -> Vec<(String, Decision)> {
        let default = chrono::TimeDelta::from_std(RESTART_GRACE).unwrap_or_default();
        let mut out = Vec::new();
        for (name, s) in &mut self.seen {
            let grace = self.graces.get(name).copied().unwrap_or(default);
            if s.pending.as_ref().is_some_and(|(at, _)| now - *at >= grace) {
                let (_, text) = s.pending.take().expect("checked");
                s.last_death = None;
                out.push((
                    name.clone(),
                    Decision::Fire {
                        rule: DIED,
                        severity: Severity::Critical,
                        text,
                    },
                ));
            }
        }
        self.seen
            .retain(|_, s| !(s.destroyed && s.pending.is_none()));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// An alert of `rule` about `container` found firing at start (raised before a restart of
    /// lookoutd, whose memory of the container ended with it), and what the engine says of the
    /// container now: a death whose container runs again, or any alert of a removed container,
    /// resolves; a restart loop is followed again, and settles after a quiet window.
    pub(crate) fn resume(
        &mut self,
        container: &str,
        rule: &str,
        state: ContainerNow,
        now: DateTime<Utc>,
    ) -> Vec<Decision> {
        let rule = match rule {
            DIED => DIED,
            RESTART_LOOP => RESTART_LOOP,
            UNHEALTHY => UNHEALTHY,
            _ => return Vec::new(),
        };
        match (rule, state) {
            // The engine did not answer: nothing is concluded.
            (_, ContainerNow::Unknown) => Vec::new(),
            (_, ContainerNow::Removed) => vec![Decision::Resolve { rule }],
            (RESTART_LOOP, running) => {
                let s = self.seen.entry(container.to_owned()).or_default();
                s.looping = true;
                s.starts = VecDeque::from([now]);
                s.last_death = (running == ContainerNow::Stopped)
                    .then(|| format!("🛑 container {container} is not running"));
                Vec::new()
            }
            (DIED, ContainerNow::Running) => vec![Decision::Resolve { rule: DIED }],
            _ => Vec::new(),
        }
    }

    /// Restart loops quiet for a whole window end: their alerts resolve, and a loop that ended
    /// with the container dead (the engine gave up restarting it) is that death's alert now.
    pub(crate) fn settled(&mut self, now: DateTime<Utc>) -> Vec<(String, Decision)> {
        let mut out = Vec::new();
        for (name, s) in &mut self.seen {
            if s.looping && s.starts.back().is_none_or(|t| now - *t > self.loop_window) {
                s.looping = false;
                s.starts.clear();
                out.push((name.clone(), Decision::Resolve { rule: RESTART_LOOP }));
                if let Some(text) = s.last_death.take() {
                    out.push((
                        name.clone(),
                        Decision::Fire {
                            rule: DIED,
                            severity: Severity::Critical,
                            text: format!(
                                "{text}, after a restart loop: it is not restarted any more"
                            ),
                        },
                    ));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

async fn next<S: Stream + ?Sized>(s: &mut Pin<Box<S>>) -> Option<S::Item> {
    std::future::poll_fn(|cx| s.as_mut().poll_next(cx)).await
}

/// Follows the engine's events for the watched containers until `stop`; `None` when nothing is
/// watched.
pub(crate) fn spawn(
    config: &lookout_config::Config,
    alerts: Arc<Alerts>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<Following> {
    let watched = Watched::from_config(config);
    if watched.is_empty() {
        return None;
    }
    let status = StreamStatus::new(watched.entries(), Utc::now());
    let socket = config
        .docker
        .socket
        .trim_start_matches("unix://")
        .to_owned();
    let mut policy = ContainerEvents::new(
        config.docker.restart_loop_count,
        config.docker.restart_loop_window,
    );
    for t in &config.watch {
        if let lookout_config::WatchKind::Container = t.kind {
            policy = policy.with_grace(
                t.container.as_deref().unwrap_or(&t.name),
                watchdog_grace(t.probe_interval),
            );
        }
    }
    let task = tokio::spawn(follow(
        socket,
        watched,
        policy,
        alerts,
        status.clone(),
        stop,
    ));
    Some(Following { task, status })
}

async fn follow(
    socket: String,
    watched: Watched,
    mut policy: ContainerEvents,
    alerts: Arc<Alerts>,
    status: StreamStatus,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let probe = DockerRunProbe::new(&socket);
    let mut failures = 0u32;
    // The last event read (ns since the epoch): a reconnect asks the engine for the events since
    // then, so a death while the stream was down (an engine restart, a backoff) is not missed.
    let mut last_nano: Option<i64> = None;
    // The alerts found firing at start have been looked at again.
    let mut resumed = false;
    loop {
        let connected =
            bollard::Docker::connect_with_unix(&socket, 120, bollard::API_DEFAULT_VERSION);
        let docker = match connected {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the Docker engine for its events");
                status.disconnected(e.to_string(), Utc::now());
                failures += 1;
                if backoff(failures, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        // The stream answers nothing until an event comes: a ping says whether the engine is
        // there at all, so `/status` does not call a dead socket connected.
        if let Err(e) = docker.ping().await {
            tracing::warn!(error = %e, "cannot reach the Docker engine for its events");
            status.disconnected(e.to_string(), Utc::now());
            failures += 1;
            if backoff(failures, &mut stop).await {
                return;
            }
            continue;
        }
        let filters = HashMap::from([("type".to_owned(), vec!["container".to_owned()])]);
        let mut events = Box::pin(docker.events(Some(EventsOptions {
            filters: Some(filters),
            since: last_nano.map(|n| n.div_euclid(1_000_000_000).to_string()),
            ..Default::default()
        })));
        tracing::info!(%socket, "following the Docker engine's events");
        status.connected(Utc::now());
        if !resumed {
            resumed = resume_firing(&alerts, &probe, &mut policy).await;
        }
        let mut settle = tokio::time::interval(Duration::from_secs(1));
        loop {
            let item = tokio::select! {
                item = next(&mut events) => item,
                _ = settle.tick() => {
                    let now = Utc::now();
                    for (name, d) in policy.due(now) {
                        decide(&alerts, &probe, &name, d, now).await;
                    }
                    for (name, d) in policy.settled(now) {
                        decide(&alerts, &probe, &name, d, now).await;
                    }
                    continue;
                }
                // Mapped to `()`: the watch's guard must not live across the awaits above (Send).
                () = async { let _ = stop.wait_for(|v| *v).await; } => return,
            };
            let ev = match item {
                Some(Ok(ev)) => ev,
                // The stream ended or failed: the engine restarted or went away.
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the Docker engine's event stream failed; reconnecting");
                    status.disconnected(e.to_string(), Utc::now());
                    break;
                }
                None => {
                    tracing::warn!("the Docker engine's event stream ended; reconnecting");
                    status.disconnected("the event stream ended".into(), Utc::now());
                    break;
                }
            };
            failures = 0;
            // Replayed from `since` (whole seconds): the ones already read are skipped.
            if let Some(nano) = ev.time_nano {
                if last_nano.is_some_and(|last| nano <= last) {
                    continue;
                }
                last_nano = Some(nano);
            }
            let actor = ev.actor.unwrap_or_default();
            let attributes = actor.attributes.unwrap_or_default();
            let Some(name) = attributes.get("name").cloned() else {
                continue;
            };
            if !watched.matches(&name, &attributes) {
                continue;
            }
            let Some(event) = ev
                .action
                .as_deref()
                .and_then(|a| EngineEvent::parse(a, &attributes))
            else {
                continue;
            };
            let now = Utc::now();
            status.event(now);
            for d in policy.on(&name, event, now) {
                decide(&alerts, &probe, &name, d, now).await;
            }
        }
        failures += 1;
        if backoff(failures, &mut stop).await {
            return;
        }
    }
}

/// The container alerts firing at start, each looked at again through the engine (see
/// [`ContainerEvents::resume`]); a removed container's alerts resolve. False when the alerts
/// could not be read (tried again at the next connection).
async fn resume_firing(
    alerts: &Alerts,
    probe: &DockerRunProbe,
    policy: &mut ContainerEvents,
) -> bool {
    let now = Utc::now();
    let list = match alerts.list(now).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the container alerts firing at start");
            return false;
        }
    };
    for a in list.into_iter().filter(|a| a.record.firing) {
        let rule = a.record.rule.as_str();
        if ![DIED, RESTART_LOOP, UNHEALTHY].contains(&rule) {
            continue;
        }
        let name = a.record.subject.clone();
        let state = match probe.look_container(&name).await {
            Look::Running { .. } => ContainerNow::Running,
            Look::Ended { .. } => ContainerNow::Stopped,
            Look::Missing => ContainerNow::Removed,
            Look::Unknown(_) => ContainerNow::Unknown,
        };
        let decisions = policy.resume(&name, rule, state, now);
        for d in decisions {
            tracing::info!(container = %name, rule, "a container alert firing at start, looked at again");
            decide(alerts, probe, &name, d, now).await;
        }
    }
    true
}

/// How long the death of a watchdog container target waits for the watchdog's own restart: its
/// probes see it down within two intervals, and a restart takes a few seconds. Only a death that
/// outlasts that is said here (the watchdog's ladder says the rest), so a target the watchdog
/// heals is not also "died".
pub(crate) fn watchdog_grace(probe_interval: Duration) -> Duration {
    (probe_interval * 2 + Duration::from_secs(10)).max(RESTART_GRACE)
}

/// Waits 1 s, 2 s, 4 s … up to a minute; true when stopped meanwhile.
async fn backoff(failures: u32, stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    let wait = Duration::from_secs(1u64 << failures.min(6)).min(Duration::from_secs(60));
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        () = async { let _ = stop.wait_for(|v| *v).await; } => true,
    }
}

async fn decide(
    alerts: &Alerts,
    probe: &DockerRunProbe,
    name: &str,
    d: Decision,
    now: DateTime<Utc>,
) {
    let done = match d {
        Decision::Resolve { rule } => alerts
            .resolve_key(&AlertKey::new(rule, name), now)
            .await
            .map(|_| ()),
        Decision::Fire {
            rule,
            severity,
            text,
        } => {
            // The container's last lines: what it said before it died (or while it is unhealthy).
            let lines = match probe.look_container(name).await {
                Look::Ended { last_lines, .. } => last_lines,
                Look::Running { last_line, .. } => last_line.into_iter().collect(),
                Look::Missing | Look::Unknown(_) => Vec::new(),
            };
            let text = if lines.is_empty() {
                text
            } else {
                format!("{text} — last output:\n{}", lines.join("\n"))
            };
            tracing::warn!(container = %name, rule, "container event alert");
            alerts
                .fire(alert(rule, name, severity, text), now)
                .await
                .map(|_| ())
        }
    };
    if let Err(e) = done {
        tracing::error!(error = %e, container = %name, "cannot record a container alert");
    }
}

/// A followed container's alert: its subject depends on the engine, so it folds under the
/// engine's own alert while that fires (an engine restart stops every container).
pub(crate) fn alert(rule: &str, container: &str, severity: Severity, text: String) -> Alert {
    Alert::keyed(AlertKey::new(rule, container), severity, text).depends_on(DOCKER_ENGINE)
}

#[cfg(test)]
#[path = "docker_events_tests.rs"]
mod tests;
