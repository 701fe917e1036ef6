//! Whether lookoutd is following the Docker engine's event stream, for `/status` (section
//! `docker`) and `lookout doctor`: a stream that silently stopped would turn every "container
//! died" alert into silence, so its state is shown, and a disconnection is a warning.
//!
//! [`docker_events`](crate::docker_events) writes a [`StreamStatus`]; [`DockerSection`] and
//! [`doctor`] read it.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lookout_status_collect::{CollectError, Collected, Collector, Finding};
use serde::Serialize;

/// The stream's state, as last seen by its follower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct StreamState {
    /// What is followed, as configured: names, `*` patterns and `label:` entries.
    pub(crate) following: Vec<String>,
    /// `connecting` (not yet answered), `connected` or `disconnected`.
    pub(crate) stream: &'static str,
    /// Since when it is in that state.
    pub(crate) since: DateTime<Utc>,
    /// Why it is not connected (the engine's or the socket's error).
    pub(crate) last_error: Option<String>,
    /// Events of followed containers seen since lookoutd started.
    pub(crate) events: u64,
    /// When the last of them came.
    pub(crate) last_event_at: Option<DateTime<Utc>>,
    /// Reconnections since lookoutd started.
    pub(crate) reconnects: u64,
}

/// Shared between the follower (writes) and `/status` and the doctor (read).
#[derive(Debug, Clone)]
pub(crate) struct StreamStatus(Arc<Mutex<StreamState>>);

impl StreamStatus {
    pub(crate) fn new(following: Vec<String>, now: DateTime<Utc>) -> Self {
        StreamStatus(Arc::new(Mutex::new(StreamState {
            following,
            stream: "connecting",
            since: now,
            last_error: None,
            events: 0,
            last_event_at: None,
            reconnects: 0,
        })))
    }

    fn edit(&self, f: impl FnOnce(&mut StreamState)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// A copy of the state now.
    pub(crate) fn get(&self) -> StreamState {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The engine answered and the stream is open.
    pub(crate) fn connected(&self, now: DateTime<Utc>) {
        self.edit(|s| {
            if s.stream != "connected" {
                if s.stream == "disconnected" {
                    s.reconnects += 1;
                }
                s.stream = "connected";
                s.since = now;
            }
            s.last_error = None;
        });
    }

    /// The engine cannot be reached, or its stream ended.
    pub(crate) fn disconnected(&self, error: String, now: DateTime<Utc>) {
        self.edit(|s| {
            if s.stream != "disconnected" {
                s.stream = "disconnected";
                s.since = now;
            }
            s.last_error = Some(error);
        });
    }

    /// An event of a followed container came.
    pub(crate) fn event(&self, now: DateTime<Utc>) {
        self.edit(|s| {
            s.events += 1;
            s.last_event_at = Some(now);
        });
    }
}

/// `/status`'s `docker` section: the event stream's state. Present only when something is
/// followed.
pub(crate) struct DockerSection(pub(crate) StreamStatus);

#[async_trait::async_trait]
impl Collector for DockerSection {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn collect(&self) -> Result<Collected, CollectError> {
        Ok(section(&self.0.get()))
    }
}

fn section(s: &StreamState) -> Collected {
    let data = serde_json::to_value(s).unwrap_or_default();
    let c = Collected::new(data);
    match s.stream {
        "disconnected" => c.with(Finding::warn(format!(
            "the Docker engine's event stream is disconnected since {}: {} (retried with backoff; container deaths are not seen meanwhile)",
            s.since.format("%H:%M:%S UTC"),
            s.last_error.as_deref().unwrap_or("unknown error")
        ))),
        _ => c,
    }
}

/// The doctor's line for the stream.
pub(crate) fn doctor(s: &StreamState) -> crate::doctor::Check {
    let name = "docker events".to_owned();
    let what = format!("following {}", s.following.join(", "));
    match s.stream {
        "connected" => crate::doctor::Check {
            name,
            status: "ok",
            detail: format!(
                "{what}: the event stream is connected since {}; {} event(s) seen",
                s.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                s.events
            ),
            fix: None,
        },
        "connecting" => crate::doctor::Check {
            name,
            status: "warn",
            detail: format!("{what}: the event stream has not answered yet"),
            fix: Some("wait a few seconds; if it stays so, check the Docker engine (`docker info`) and docker.socket".into()),
        },
        _ => crate::doctor::Check {
            name,
            status: "fail",
            detail: format!(
                "{what}: the event stream is disconnected since {}: {}",
                s.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                s.last_error.as_deref().unwrap_or("unknown error")
            ),
            fix: Some("start the Docker engine, give lookoutd access to its socket (the docker group), or set docker.socket; lookoutd reconnects by itself".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn the_streams_state_is_shown_and_a_disconnection_is_a_warning_and_a_failed_check() {
        let s = StreamStatus::new(vec!["agent-*".into(), "label:lookout".into()], t(0));
        assert_eq!(doctor(&s.get()).status, "warn");
        s.connected(t(1));
        s.event(t(5));
        let now = s.get();
        assert_eq!((now.stream, now.since, now.events), ("connected", t(1), 1));
        assert!(section(&now).findings.is_empty());
        let d = doctor(&now);
        assert_eq!(d.status, "ok");
        assert!(
            d.detail.contains("following agent-*, label:lookout"),
            "{}",
            d.detail
        );
        s.disconnected("connection refused".into(), t(10));
        s.disconnected("connection refused again".into(), t(12));
        let down = s.get();
        assert_eq!(down.since, t(10), "since the first failure");
        let c = section(&down);
        assert_eq!(c.findings.len(), 1);
        assert!(c.findings[0].reason.contains("connection refused again"));
        assert_eq!(c.data["stream"], "disconnected");
        assert_eq!(doctor(&down).status, "fail");
        s.connected(t(20));
        assert_eq!((s.get().reconnects, s.get().last_error), (1, None));
    }
}
