//! The invariants I1–I8: their [`Limits`], [`Invariant`] ids and [`check_invariants`], and the
//! text of the I8 line.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Container, HostState, Run};
use crate::model::Violation;
use crate::time::{delta, human};

/// The thresholds of the invariants. Plain data; the daemon fills it from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// I2: a message batch in flight with no response for longer than this (`stale_processing`).
    pub stale_processing: Duration,
    /// I3: a run with no heartbeat for longer than this (3 × `heartbeat_interval`).
    pub heartbeat: Duration,
    /// I4: a delivery pending for longer than this (`delivery_pending`).
    pub delivery_pending: Duration,
    /// I5: a channel disconnected for longer than this (`channel_down`).
    pub channel_down: Duration,
    /// I6: at most this many running containers (None: unlimited).
    pub max_concurrent: Option<usize>,
    /// I7: a task may start this late after its `next_run` (unless its `task_scheduled` says).
    pub task_grace: Duration,
    /// I1: how long a working run's container may be gone before the run counts as orphaned (the
    /// `run_finished` that usually follows an exit gets this long to arrive).
    pub orphan_grace: Duration,
    /// I8: a run whose heartbeats keep coming but whose reported `progress` has not changed for
    /// this long is stalled (5 × 60 s; the daemon sets `thresholds.stall_after ×
    /// thresholds.heartbeat_interval`).
    pub stall_after: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            stale_processing: Duration::from_secs(600),
            heartbeat: Duration::from_secs(3 * 60),
            delivery_pending: Duration::from_secs(300),
            channel_down: Duration::from_secs(120),
            max_concurrent: None,
            task_grace: Duration::from_secs(300),
            orphan_grace: Duration::from_secs(30),
            stall_after: Duration::from_secs(5 * 60),
        }
    }
}

/// The host's invariants, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Invariant {
    /// I1: a working run has no running container.
    OrphanRun,
    /// I2: a message batch in flight longer than `stale_processing` with no response.
    StaleBatch,
    /// I3: a run with no heartbeat for longer than its limit.
    SilentRun,
    /// I4: a delivery pending longer than its limit.
    StuckDelivery,
    /// I5: a channel disconnected longer than its limit.
    ChannelDown,
    /// I6: more running containers than the concurrency limit.
    TooManyContainers,
    /// I7: a task past `next_run` + grace with no run.
    TaskOverdue,
    /// I8: a run alive (heartbeats within their limit) whose progress has not changed for
    /// `stall_after`.
    StalledRun,
}

impl Invariant {
    /// Every invariant, in order.
    pub const ALL: [Invariant; 8] = [
        Invariant::OrphanRun,
        Invariant::StaleBatch,
        Invariant::SilentRun,
        Invariant::StuckDelivery,
        Invariant::ChannelDown,
        Invariant::TooManyContainers,
        Invariant::TaskOverdue,
        Invariant::StalledRun,
    ];

    /// Its id: `I1` … `I8`.
    pub fn id(self) -> &'static str {
        match self {
            Invariant::OrphanRun => "I1",
            Invariant::StaleBatch => "I2",
            Invariant::SilentRun => "I3",
            Invariant::StuckDelivery => "I4",
            Invariant::ChannelDown => "I5",
            Invariant::TooManyContainers => "I6",
            Invariant::TaskOverdue => "I7",
            Invariant::StalledRun => "I8",
        }
    }
}

fn violation(inv: Invariant, subject: &str, since: DateTime<Utc>, message: String) -> Violation {
    Violation {
        invariant: inv.id().to_owned(),
        subject: subject.to_owned(),
        message,
        since,
    }
}

/// The working runs whose container is gone (I1), with the container and since when.
pub(super) fn orphans<'a>(
    state: &'a HostState,
    limits: &Limits,
    now: DateTime<Utc>,
) -> impl Iterator<Item = (&'a String, &'a Run, &'a String, &'a Container)> {
    let grace = delta(limits.orphan_grace);
    state.runs.iter().filter_map(move |(id, run)| {
        let name = run.container.as_ref()?;
        let c = state.containers.get(name)?;
        // A status older than the run is an earlier life of a reused name; only one seen since
        // the run started says this run's container is gone.
        (!c.alive() && c.since >= run.started_at && now - c.since >= grace)
            .then_some((id, run, name, c))
    })
}

/// Every invariant that does not hold at `now`, in invariant then subject order.
///
/// Root causes fold what follows from them: an orphaned run (I1) is not also reported silent (I3),
/// and a pending delivery on a channel that is down for longer than its limit is counted in the
/// channel's I5 alert instead of raising its own I4. A run is stalled (I8) only while it is alive:
/// an orphaned (I1) or silent (I3) run is not also stalled, so one run raises at most one of I1,
/// I3 and I8 (a silent run whose progress had stalled says so in its I3 line).
pub fn check_invariants(state: &HostState, limits: &Limits, now: DateTime<Utc>) -> Vec<Violation> {
    let mut out = Vec::new();
    let orphaned: BTreeSet<&String> = orphans(state, limits, now).map(|o| o.0).collect();
    for (id, run, name, c) in orphans(state, limits, now) {
        out.push(violation(
            Invariant::OrphanRun,
            id,
            c.since,
            format!(
                "run {id} (group {}) is working but its container {name} is {} (for {})",
                run.group,
                c.status,
                human(now - c.since)
            ),
        ));
    }
    let stale = delta(limits.stale_processing);
    for (jid, chat) in &state.chats {
        if let Some(b) = &chat.in_flight
            && now - b.since > stale
        {
            out.push(violation(
                Invariant::StaleBatch,
                jid,
                b.since,
                format!(
                    "chat {jid}: {} message(s) in flight for {} with no response{}",
                    b.message_ids.len(),
                    human(now - b.since),
                    b.run_id
                        .as_ref()
                        .map(|r| format!(" (run {r})"))
                        .unwrap_or_default()
                ),
            ));
        }
    }
    let hb = delta(limits.heartbeat);
    let stall = delta(limits.stall_after);
    for (id, run) in &state.runs {
        // Silent only where heartbeats were promised and are all there is to go by: a run in a
        // container or a process is watched through it instead (I1 when a container is gone;
        // lookoutd's own follower says "still running" while it runs and "lost" when it is
        // gone), so its missing heartbeats are not an alarm about a run that is alive.
        let watched = run.container.is_some() || run.pid.is_some();
        if !orphaned.contains(id) && run.heartbeats && !watched && now - run.last_heartbeat_at > hb
        {
            let what = match (run.run_kind.as_str(), &run.task) {
                ("task", Some(t)) => format!("task {t}"),
                (kind, Some(t)) => format!("{kind} task {t}"),
                (kind, None) => kind.to_owned(),
            };
            out.push(violation(
                Invariant::SilentRun,
                id,
                run.last_heartbeat_at,
                format!(
                    "run {id} ({what}) has sent no heartbeat for {}",
                    human(now - run.last_heartbeat_at)
                ),
            ));
            // A silent run is I3, not I8; say so when its progress had stalled too.
            if let (Some(changed), Some(p)) = (run.progress_changed_at, &run.progress_value)
                && now - changed >= stall
            {
                if let Some(v) = out.last_mut() {
                    v.message.push_str(&format!(
                        "; no progress for {} (last: {})",
                        human(now - changed),
                        progress_text(p)
                    ));
                }
            }
        }
    }
    let down = delta(limits.channel_down);
    let down_channels: BTreeSet<&String> = state
        .channels
        .iter()
        .filter(|(_, c)| !c.connected && now - c.since > down)
        .map(|(n, _)| n)
        .collect();
    let pending = delta(limits.delivery_pending);
    let mut folded: BTreeMap<&String, usize> = BTreeMap::new();
    for (id, d) in &state.deliveries {
        if now - d.queued_at <= pending {
            continue;
        }
        if let Some(ch) = d.channel.as_ref().filter(|c| down_channels.contains(c)) {
            *folded.entry(ch).or_default() += 1;
            continue;
        }
        out.push(violation(
            Invariant::StuckDelivery,
            id,
            d.queued_at,
            format!(
                "delivery {id} to {} pending for {}{}",
                d.chat_jid,
                human(now - d.queued_at),
                d.last_error
                    .as_ref()
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            ),
        ));
    }
    for name in &down_channels {
        let c = &state.channels[*name];
        let also = folded
            .get(name)
            .map(|n| format!("; also affected: {n} pending deliveries"))
            .unwrap_or_default();
        out.push(violation(
            Invariant::ChannelDown,
            name,
            c.since,
            format!(
                "channel #{name} disconnected for {}{}{also}",
                human(now - c.since),
                c.reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        ));
    }
    if let Some(max) = limits.max_concurrent {
        let running: Vec<&Container> = state
            .containers
            .values()
            .filter(|c| c.status == "running")
            .collect();
        if running.len() > max {
            let since = running.iter().map(|c| c.since).max().unwrap_or(now);
            out.push(violation(
                Invariant::TooManyContainers,
                "containers",
                since,
                format!(
                    "{} containers running, more than the limit of {max}",
                    running.len()
                ),
            ));
        }
    }
    for (name, t) in &state.tasks {
        let Some(next) = t.next_run else { continue };
        let grace = t
            .grace_secs
            .map_or(delta(limits.task_grace), |s| TimeDelta::seconds(s as i64));
        let ran = t.last_started_at.is_some_and(|s| s >= next);
        if !ran && now > next + grace {
            out.push(violation(
                Invariant::TaskOverdue,
                name,
                next,
                format!(
                    "task {name}{} was due at {} and has not run ({} late)",
                    t.group
                        .as_ref()
                        .map(|g| format!(" (group {g})"))
                        .unwrap_or_default(),
                    next.to_rfc3339(),
                    human(now - next)
                ),
            ));
        }
    }
    for (id, run) in &state.runs {
        let (Some(changed), Some(p)) = (run.progress_changed_at, &run.progress_value) else {
            continue; // never reported progress: never stalled
        };
        // Alive: not orphaned (I1) and not silent (I3) — those are the louder, truer alerts.
        let alive = !orphaned.contains(id) && now - run.last_heartbeat_at <= hb;
        if alive && now - changed >= stall {
            out.push(violation(
                Invariant::StalledRun,
                id,
                changed,
                stalled_text(run.task.as_deref().unwrap_or(id), now - changed, p),
            ));
        }
    }
    out
}

/// How long a progress value may be in an alert line before it is cut (with "…").
pub const PROGRESS_TEXT_MAX: usize = 100;

/// A progress value as an alert shows it: a string as is, any other JSON value as JSON, cut at
/// [`PROGRESS_TEXT_MAX`] characters.
pub fn progress_text(p: &Value) -> String {
    let text = match p {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() <= PROGRESS_TEXT_MAX {
        return text;
    }
    let mut cut: String = text.chars().take(PROGRESS_TEXT_MAX).collect();
    cut.push('…');
    cut
}

/// The I8 line, product.md's text:
/// `⏳ <name> alive but stalled: no progress for 5m (last: <progress>)`, where `name` is the run's
/// task for a task run, else its run id.
/// [`AlertAction::text`](crate::alerts::AlertAction::text) shows it as is.
pub fn stalled_text(name: &str, unchanged_for: TimeDelta, progress: &Value) -> String {
    format!(
        "⏳ {name} alive but stalled: no progress for {} (last: {})",
        human(unchanged_for),
        progress_text(progress)
    )
}
