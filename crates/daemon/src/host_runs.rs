//! A host's own runs, followed by lookoutd: while a run reported with `run_started` is open, its
//! group gets "⏱ <task> still running (<elapsed> elapsed)" every `thresholds.heartbeat_interval`
//! (with the last `progress` it reported), then one line when `run_finished` ends it. The host
//! writes no timer: the messages come from the run's elapsed time, whether it sends heartbeats or
//! not (a one-shot container cannot). lookoutd's own scheduled runs say this themselves and are
//! skipped here (their events carry `"source": "lookoutd"`).
//!
//! A run started with a `container` (or a `pid`) is also looked at by lookoutd itself once per
//! interval, just before its line: "(… elapsed, container active) — last output: …" (or "process
//! active") while it runs, and, when the container or process is gone and a second look half an
//! interval (at most 5 s) later finds that no `run_finished` came, one "💀 … lost" line with the
//! container's exit code, whether the OOM killer ended it and its last output — and a
//! `run_finished` with outcome `lost` in the log, so the reconciler closes the run too. A pid is
//! looked at in lookoutd's own pid namespace; a pid reused by another process (a different start
//! time), or one never seen running there, counts as the run's process gone.
//!
//! [`HostRuns`] is the policy, fed events and looks and asked what is due at an instant; [`spawn`]
//! wires it to the event log, the engine ([`crate::run_watch`]) and the outbox.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_notify::{Message, Outbox, Severity};
use lookout_reconcile_core::event::Event;
use lookout_store::StoredEvent;

use crate::log::EventLog;
use crate::run_watch::{Look, RunProbe, Watched};

/// What lookoutd's own run events carry, so the host-run follower leaves them to the scheduler.
pub(crate) const OWN_SOURCE: &str = "lookoutd";

const KINDS: &[&str] = &["run_started", "run_heartbeat", "run_finished"];

#[derive(Debug, Clone)]
struct OpenRun {
    group: Option<String>,
    /// What people call it: the task's name, else the run id.
    name: String,
    started: DateTime<Utc>,
    progress: Option<String>,
    /// "still running" messages sent so far.
    beats: u32,
    /// The host promised heartbeats (`heartbeats` not `false` in its `run_started`).
    promised: bool,
    /// Its last sign of life: the start or a heartbeat.
    last_seen: DateTime<Utc>,
    /// The container or process it runs in, which lookoutd looks at itself.
    watched: Option<Watched>,
    /// What the last look at it found.
    look: Option<Look>,
    /// A look has found it running.
    seen_running: bool,
    /// Its process's start time, from the first look that found it running (a pid reused by
    /// another process has another).
    instance: Option<u64>,
    /// As its `run_started` said them, for the `run_finished` lookoutd writes for a lost run.
    reported: (String, String, Option<String>),
    /// A look found it gone: the run is concluded lost only if a second look, a short grace
    /// later, still finds it gone and no `run_finished` came in between (the host's finish is
    /// often a second behind its container's exit).
    gone: Option<Gone>,
}

/// What the first look that found a run's container or process gone saw.
#[derive(Debug, Clone)]
struct Gone {
    /// When; the second look is due a grace later.
    at: DateTime<Utc>,
    /// "exited with code 137 (killed for memory: OOM)", "is gone", …
    how: String,
    last_lines: Vec<String>,
    exit_code: Option<i64>,
    oom: bool,
}

/// A run whose container is gone with no `run_finished`: its line, and the `run_finished` event
/// (outcome `lost`) lookoutd appends for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lost {
    pub(crate) message: RunMessage,
    pub(crate) event: serde_json::Value,
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunMessage {
    pub(crate) key: String,
    pub(crate) group: Option<String>,
    pub(crate) severity: Severity,
    pub(crate) text: String,
}

/// The open runs of the host and the messages they are owed.
#[derive(Debug)]
pub(crate) struct HostRuns {
    every: Duration,
    open: HashMap<String, OpenRun>,
}

fn is_own(e: &StoredEvent) -> bool {
    e.payload.get("source").and_then(|s| s.as_str()) == Some(OWN_SOURCE)
}

fn elapsed(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    lookout_common::human_duration((to - from).to_std().unwrap_or_default())
}

impl HostRuns {
    /// Runs owed a message every `every`.
    pub(crate) fn new(every: Duration) -> Self {
        HostRuns {
            every: every.max(Duration::from_secs(1)),
            open: HashMap::new(),
        }
    }

    /// Takes one event of the log; returns the finish line of a run it ends.
    pub(crate) fn apply(&mut self, e: &StoredEvent) -> Option<RunMessage> {
        if is_own(e) {
            return None;
        }
        let typed = Event::from_payload(&e.kind, &e.payload);
        let run = typed.run()?;
        match e.kind.as_str() {
            "run_started" => {
                self.open.insert(
                    run.run_id.clone(),
                    OpenRun {
                        group: Some(run.group.clone()).filter(|g| !g.is_empty() && g != "-"),
                        name: run.task.clone().unwrap_or_else(|| run.run_id.clone()),
                        started: e.at,
                        progress: None,
                        beats: 0,
                        promised: run.heartbeats,
                        last_seen: e.at,
                        watched: watched(&run.container, run.pid),
                        look: None,
                        seen_running: false,
                        instance: None,
                        reported: (run.group.clone(), run.run_kind.clone(), run.task.clone()),
                        gone: None,
                    },
                );
                None
            }
            "run_heartbeat" => {
                if let Some(open) = self.open.get_mut(&run.run_id) {
                    open.last_seen = open.last_seen.max(e.at);
                    if let Some(w) = watched(&run.container, run.pid)
                        && open.watched.as_ref() != Some(&w)
                    {
                        open.watched = Some(w);
                        open.look = None;
                        open.seen_running = false;
                        open.instance = None;
                        open.gone = None;
                    }
                    if let Some(p) = &run.progress_value {
                        open.progress = Some(
                            p.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| p.to_string()),
                        );
                    }
                }
                None
            }
            "run_finished" => {
                let open = self.open.remove(&run.run_id)?;
                let took = elapsed(open.started, e.at);
                let failed = matches!(
                    run.outcome.as_deref(),
                    Some(
                        "failed"
                            | "error"
                            | "timeout"
                            | "timed_out"
                            | "interrupted"
                            | "cancelled"
                            | "lost"
                    )
                );
                // A run that ended before its first "still running" line needs no finish line
                // (every answered message batch would say one); a failure always does.
                if open.beats == 0 && !failed {
                    return None;
                }
                let (severity, text) = match run.outcome.as_deref() {
                    Some("failed" | "error" | "timeout" | "timed_out") => (
                        Severity::Warning,
                        match run.error.as_deref() {
                            Some(err) => format!("❌ {} failed after {took}: {err}", open.name),
                            None => format!("❌ {} failed after {took}", open.name),
                        },
                    ),
                    Some("interrupted" | "cancelled" | "lost") => (
                        Severity::Warning,
                        format!("⚠️ {} interrupted after {took}", open.name),
                    ),
                    _ => (
                        Severity::Info,
                        format!("✅ {} finished after {took}", open.name),
                    ),
                };
                Some(RunMessage {
                    key: format!("host-run:{}:finished", run.run_id),
                    group: open.group,
                    severity,
                    text,
                })
            }
            _ => None,
        }
    }

    /// When the next look or "still running" message is due, if any run is open.
    pub(crate) fn next_due(&self) -> Option<DateTime<Utc>> {
        self.open.values().map(|r| self.look_at(r)).min()
    }

    /// When a run is next looked at or said: its next line (a watched run is looked at just
    /// before), or, once a look found it gone, a grace after that look (and no line).
    fn look_at(&self, r: &OpenRun) -> DateTime<Utc> {
        match &r.gone {
            Some(g) => g.at + self.finish_grace(),
            None => self.due_at(r),
        }
    }

    /// Runs that promised heartbeats and went silent stay open (a late heartbeat resumes their
    /// lines) but are skipped at each tick; `due` advances their count so they do not spin.
    fn skip_silent(&mut self, now: DateTime<Utc>) {
        let every = chrono::TimeDelta::from_std(self.every).unwrap_or(chrono::TimeDelta::MAX);
        for r in self.open.values_mut() {
            if r.promised && r.watched.is_none() && now - r.last_seen > every * 3 {
                let beats =
                    ((now - r.started).num_milliseconds() / every.num_milliseconds().max(1)) as u32;
                r.beats = r.beats.max(beats);
            }
        }
    }

    fn due_at(&self, r: &OpenRun) -> DateTime<Utc> {
        let every = chrono::TimeDelta::from_std(self.every).unwrap_or(chrono::TimeDelta::MAX);
        r.started + every * (r.beats as i32 + 1)
    }

    /// How long a run found gone waits for its `run_finished` before it is said lost: half an
    /// interval, at most 5 s (a client flushes its events within a second or two).
    fn finish_grace(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std((self.every / 2).min(Duration::from_secs(5)))
            .unwrap_or(chrono::TimeDelta::MAX)
    }

    /// The "still running" messages due at `now`: one per open run at most (a run overdue by
    /// several intervals, after a restart, gets one line with its true elapsed time).
    pub(crate) fn due(&mut self, now: DateTime<Utc>) -> Vec<RunMessage> {
        let every = chrono::TimeDelta::from_std(self.every).unwrap_or(chrono::TimeDelta::MAX);
        self.skip_silent(now);
        let mut out = Vec::new();
        let mut ids: Vec<&String> = self.open.keys().collect();
        ids.sort();
        let ids: Vec<String> = ids.into_iter().cloned().collect();
        for id in ids {
            let r = &self.open[&id];
            // Found gone, waiting for its run_finished: no "still running" line.
            if r.gone.is_some() || self.due_at(r) > now {
                continue;
            }
            // A run that promised heartbeats and sent none for 3 intervals is silent (I3 says
            // so, once): "still running" would be a guess.
            if r.promised && r.watched.is_none() && now - r.last_seen > every * 3 {
                continue;
            }
            let (state, output) = match (&r.look, &r.watched) {
                (Some(Look::Running { last_line, .. }), Some(Watched::Process(_))) => {
                    (", process active", last_line.clone())
                }
                (Some(Look::Running { last_line, .. }), _) => {
                    (", container active", last_line.clone())
                }
                (Some(Look::Unknown(_)), Some(Watched::Process(_))) => {
                    (", process not checked: it could not be read", None)
                }
                (Some(Look::Unknown(_)), _) => {
                    (", container not checked: the engine did not answer", None)
                }
                _ => ("", None),
            };
            let mut text = format!(
                "⏱ {} still running ({} elapsed{state})",
                r.name,
                elapsed(r.started, now)
            );
            if let Some(p) = &r.progress {
                text.push_str(&format!(" — last: {p}"));
            }
            if let Some(o) = output {
                text.push_str(&format!(" — last output: {o}"));
            }
            let beats =
                ((now - r.started).num_milliseconds() / every.num_milliseconds().max(1)) as u32;
            out.push(RunMessage {
                key: format!("host-run:{id}:beat:{beats}"),
                group: r.group.clone(),
                severity: Severity::Info,
                text,
            });
            if let Some(r) = self.open.get_mut(&id) {
                r.beats = beats.max(r.beats + 1);
            }
        }
        out
    }

    /// The open runs in a container or process due a look at `now`: once per interval, just
    /// before its line, and a grace after a look that found it gone (run id, what it runs in).
    pub(crate) fn to_look(&self, now: DateTime<Utc>) -> Vec<(String, Watched)> {
        let mut out: Vec<(String, Watched)> = self
            .open
            .iter()
            .filter(|(_, r)| self.look_at(r) <= now)
            .filter_map(|(id, r)| r.watched.clone().map(|w| (id.clone(), w)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// What a look at `run_id`'s container or process found at `now`: kept for its next line, or,
    /// when it is gone, noted; a second look a grace later that still finds it gone (and no
    /// `run_finished` in between) ends the run as lost.
    pub(crate) fn saw(&mut self, run_id: &str, look: Look, now: DateTime<Utc>) -> Option<Lost> {
        let grace = self.finish_grace();
        let r = self.open.get_mut(run_id)?;
        // The same pid, a different process: the run's own is gone.
        let reused = match (&look, r.instance) {
            (
                Look::Running {
                    instance: Some(current),
                    ..
                },
                Some(first),
            ) => *current != first,
            (Look::Running { instance, .. }, None) => {
                r.instance = *instance;
                false
            }
            _ => false,
        };
        let process = matches!(r.watched, Some(Watched::Process(_)));
        let (how, last_lines, exit_code, oom) = match &look {
            _ if reused => (
                "is gone (its pid now belongs to another process)".to_owned(),
                Vec::new(),
                None,
                false,
            ),
            Look::Running { .. } => {
                r.seen_running = true;
                r.gone = None;
                r.look = Some(look);
                return None;
            }
            Look::Unknown(_) => {
                // Nothing concluded; a run found gone waits a grace again instead of a look
                // per loop while the engine does not answer.
                if let Some(g) = &mut r.gone {
                    g.at = now;
                }
                r.look = Some(look);
                return None;
            }
            // A container this engine never showed running (the host's containers may live on
            // another engine, or be reported by `container_status` only): nothing is concluded;
            // the reconciler's I1 judges it from the host's own events. /status and the doctor
            // say it was not found. (One already found ended and now removed is gone.)
            Look::Missing if !r.seen_running && !process && r.gone.is_none() => {
                r.look = Some(Look::Missing);
                return None;
            }
            Look::Ended {
                exit_code: None, ..
            } if process => (
                "is gone (a zombie: it ended, its exit code is its parent's to read)".to_owned(),
                Vec::new(),
                None,
                false,
            ),
            Look::Ended {
                exit_code,
                oom,
                last_lines,
            } => {
                let code = exit_code.map_or("an unknown code".to_owned(), |c| c.to_string());
                let oom_note = if *oom {
                    " (killed for memory: OOM)"
                } else {
                    ""
                };
                (
                    format!("exited with code {code}{oom_note}"),
                    last_lines.clone(),
                    *exit_code,
                    *oom,
                )
            }
            // A pid is read in lookoutd's own namespace: one never seen there ended before the
            // first look, or lives in a namespace lookoutd does not share. Either way nobody
            // vouches for the run any more, which is worth saying.
            Look::Missing if process && !r.seen_running => (
                "is gone (never seen running: it ended before the first look, or lookoutd does not share the host's pid namespace)".to_owned(),
                Vec::new(),
                None,
                false,
            ),
            Look::Missing if process => ("is gone".to_owned(), Vec::new(), None, false),
            Look::Missing => ("is gone (removed)".to_owned(), Vec::new(), None, false),
        };
        match &r.gone {
            // First found gone: wait a grace for the host's own run_finished.
            None => {
                r.gone = Some(Gone {
                    at: now,
                    how,
                    last_lines,
                    exit_code,
                    oom,
                });
                return None;
            }
            Some(g) if now - g.at < grace => return None,
            // Still gone: the first look's account (a container removed since has lost its
            // exit code and output, which the first look kept).
            Some(_) => {}
        }
        let r = self.open.remove(run_id)?;
        let watched = r.watched.clone()?;
        let g = r.gone.clone()?;
        let mut text = format!(
            "💀 {} lost after {}: its {watched} {}, and no run_finished came",
            r.name,
            elapsed(r.started, g.at),
            g.how
        );
        if !g.last_lines.is_empty() {
            text.push_str(&format!(" — last output:\n{}", g.last_lines.join("\n")));
        }
        let mut event = serde_json::json!({
            "kind": "run_finished",
            "run_id": run_id,
            "group": r.reported.0,
            "run_kind": r.reported.1,
            "task": r.reported.2,
            "outcome": "lost",
            "error": format!("{watched} {}", g.how),
            "exit_code": g.exit_code,
            "oom_killed": g.oom,
            "source": OWN_SOURCE,
        });
        match &watched {
            Watched::Container(c) => event["container"] = serde_json::json!(c),
            Watched::Process(p) => event["pid"] = serde_json::json!(p),
        }
        Some(Lost {
            message: RunMessage {
                key: format!("host-run:{run_id}:lost"),
                group: r.group.clone(),
                severity: Severity::Warning,
                text,
            },
            event,
        })
    }

    /// Open runs, for the start: what the store says is started and not finished.
    fn restore(&mut self, latest: &[StoredEvent], now: DateTime<Utc>) {
        let every = chrono::TimeDelta::from_std(self.every).unwrap_or(chrono::TimeDelta::MAX);
        for e in latest.iter().filter(|e| e.kind == "run_started") {
            self.apply(e);
            // Beats already owed before this start were sent by the previous lookoutd (or are
            // lost with it): the next one comes at the next interval.
            if let Some(run) = Event::from_payload(&e.kind, &e.payload).run()
                && let Some(r) = self.open.get_mut(&run.run_id)
            {
                r.beats = ((now - r.started).num_milliseconds() / every.num_milliseconds().max(1))
                    .max(0) as u32;
            }
        }
    }
}

/// What a run is watched through: its container, else its process.
fn watched(container: &Option<String>, pid: Option<u32>) -> Option<Watched> {
    match (container, pid) {
        (Some(c), _) => Some(Watched::Container(c.clone())),
        (None, Some(p)) => Some(Watched::Process(p)),
        (None, None) => None,
    }
}

/// One open run as `/status` shows it (section `runs`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct RunStatus {
    pub(crate) run_id: String,
    pub(crate) name: String,
    pub(crate) group: Option<String>,
    pub(crate) started_at: DateTime<Utc>,
    /// `container C` or `process P`; None when only its elapsed time is known.
    pub(crate) watched: Option<String>,
    /// `active`, `not checked: …`, `not seen yet`, `not found: …` (a container the engine does
    /// not know), `gone: waiting for its run_finished`, `sending heartbeats`, `elapsed time only` (it
    /// promised none), or `silent` (it promised heartbeats and sent none for 3 intervals).
    pub(crate) state: String,
    pub(crate) last_output: Option<String>,
    pub(crate) progress: Option<String>,
}

/// The open runs, shared between the follower (writes) and `/status` (reads).
pub(crate) type RunStatuses = std::sync::Arc<std::sync::Mutex<Vec<RunStatus>>>;

impl HostRuns {
    /// The open runs at `now`, by start.
    pub(crate) fn snapshot(&self, now: DateTime<Utc>) -> Vec<RunStatus> {
        let every = chrono::TimeDelta::from_std(self.every).unwrap_or(chrono::TimeDelta::MAX);
        let mut out: Vec<RunStatus> = self
            .open
            .iter()
            .map(|(id, r)| {
                let (state, last_output) = match (&r.watched, &r.look) {
                    _ if r.gone.is_some() => {
                        ("gone: waiting for its run_finished".to_owned(), None)
                    }
                    (_, Some(Look::Missing)) => (
                        "not found: the engine has no such container".to_owned(),
                        None,
                    ),
                    (_, Some(Look::Running { last_line, .. })) => {
                        ("active".to_owned(), last_line.clone())
                    }
                    (_, Some(Look::Unknown(e))) => (format!("not checked: {e}"), None),
                    (Some(_), _) => ("not seen yet".to_owned(), None),
                    (None, _) if r.promised && now - r.last_seen > every * 3 => {
                        ("silent".to_owned(), None)
                    }
                    (None, _) if r.promised => ("sending heartbeats".to_owned(), None),
                    (None, _) => ("elapsed time only".to_owned(), None),
                };
                RunStatus {
                    run_id: id.clone(),
                    name: r.name.clone(),
                    group: r.group.clone(),
                    started_at: r.started,
                    watched: r.watched.as_ref().map(ToString::to_string),
                    state,
                    last_output,
                    progress: r.progress.clone(),
                }
            })
            .collect();
        out.sort_by(|a, b| (a.started_at, &a.run_id).cmp(&(b.started_at, &b.run_id)));
        out
    }
}

/// `lookout doctor`'s line for the open runs: none when no run is open; a warning when one could
/// not be looked at or went silent.
pub(crate) fn doctor(runs: &[RunStatus]) -> Option<crate::doctor::Check> {
    if runs.is_empty() {
        return None;
    }
    let watched = runs.iter().filter(|r| r.watched.is_some()).count();
    let troubled: Vec<String> = runs
        .iter()
        .filter(|r| {
            r.state == "silent"
                || r.state.starts_with("not checked")
                || r.state.starts_with("not found")
        })
        .map(|r| format!("{} ({})", r.name, r.state))
        .collect();
    let detail = format!(
        "{} open run(s) followed, {watched} watched through a container or process",
        runs.len()
    );
    Some(if troubled.is_empty() {
        crate::doctor::Check {
            name: "host runs".into(),
            status: "ok",
            detail,
            fix: None,
        }
    } else {
        crate::doctor::Check {
            name: "host runs".into(),
            status: "warn",
            detail: format!("{detail}; {}", troubled.join(", ")),
            fix: Some("a silent run: check the host's heartbeat code or give its container or pid in run_started; not checked: check the Docker engine (docker.socket) or that lookoutd shares the host's pid namespace; not found: the container lives on an engine lookoutd does not watch, or was never created".into()),
        }
    })
}

/// `/status`'s `runs` section: the host's open runs lookoutd follows, with their watched state.
pub(crate) struct RunsSection(pub(crate) RunStatuses);

#[async_trait::async_trait]
impl lookout_status_collect::Collector for RunsSection {
    fn name(&self) -> &'static str {
        "runs"
    }

    async fn collect(
        &self,
    ) -> Result<lookout_status_collect::Collected, lookout_status_collect::CollectError> {
        let list = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(lookout_status_collect::Collected::new(serde_json::json!({
            "open": list.len(),
            "watched": list.iter().filter(|r| r.watched.is_some()).count(),
            "list": list,
        })))
    }
}

/// Follows the host's runs until `stop`: their "still running" lines and finish lines go to the
/// outbox, routed by the run's group.
pub(crate) fn spawn(
    log: &EventLog,
    outbox: std::sync::Arc<Outbox>,
    probe: std::sync::Arc<dyn RunProbe>,
    every: Duration,
    statuses: RunStatuses,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let log = log.clone();
    tokio::spawn(async move {
        // Subscribed before the snapshot: an event appended in between is applied twice (the
        // same state), never missed.
        let mut sub = loop {
            match log.subscribe_from_end(KINDS).await {
                Ok(s) => break s,
                Err(e) => tracing::warn!(error = %e, "cannot follow run events; retried"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.wait_for(|v| *v) => return,
            }
        };
        let mut runs = HostRuns::new(every);
        match log
            .store()
            .latest_by_subject(&["run_started", "run_finished"])
            .await
        {
            Ok(latest) => runs.restore(&latest, Utc::now()),
            Err(e) => tracing::warn!(error = %e, "cannot read the open runs"),
        }
        loop {
            let mut said = Vec::new();
            match sub.read(1000).await {
                Ok(page) => {
                    said.extend(page.iter().filter_map(|e| runs.apply(e)));
                    if let Some(last) = page.last() {
                        let _ = sub.commit(last.seq).await; // in memory: cannot fail
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read run events"),
            }
            // Containers first: a gone one ends its run as lost instead of a "still running".
            let now = Utc::now();
            // All at once: an engine slow to answer holds each look up to its timeout, and one
            // after another they would hold every run's line and the log's events.
            let mut looking = tokio::task::JoinSet::new();
            for (id, watched) in runs.to_look(now) {
                let probe = probe.clone();
                looking.spawn(async move {
                    let look = probe.look(&watched).await;
                    (id, watched, look)
                });
            }
            let mut looks = Vec::new();
            while let Some(done) = looking.join_next().await {
                match done {
                    Ok(l) => looks.push(l),
                    Err(e) => tracing::error!(error = %e, "a look at a host run failed"),
                }
            }
            looks.sort_by(|a, b| a.0.cmp(&b.0));
            for (id, watched, look) in looks {
                if let Some(lost) = runs.saw(&id, look, now) {
                    tracing::warn!(run_id = %id, %watched, "host run lost: it is gone");
                    let stored = lookout_store::NewEvent::new("run_finished", lost.event)
                        .with_subject(id.clone());
                    if let Err(e) = log.store().append_events(&[stored]).await {
                        tracing::error!(error = %e, run_id = %id, "cannot record a lost run");
                    }
                    said.push(lost.message);
                }
            }
            said.extend(runs.due(now));
            *statuses.lock().unwrap_or_else(|p| p.into_inner()) = runs.snapshot(now);
            for m in said {
                let mut msg = Message::new(m.severity, m.text.clone()).key(m.key);
                if let Some(g) = m.group {
                    msg = msg.group(g);
                }
                if let Err(e) = outbox.send(msg).await {
                    tracing::error!(error = %e, text = %m.text, "cannot store a run message");
                }
            }
            let wait = runs
                .next_due()
                .map(|at| (at - Utc::now()).to_std().unwrap_or_default())
                .unwrap_or(Duration::from_secs(60))
                .min(Duration::from_secs(60));
            tokio::select! {
                _ = sub.wait(wait) => {}
                _ = stop.wait_for(|v| *v) => return,
            }
        }
    })
}

#[cfg(test)]
#[path = "host_runs_tests.rs"]
mod tests;
