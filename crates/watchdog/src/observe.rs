//! Observations: what one probe saw, as plain data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The verdict of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Every configured check passed.
    Healthy,
    /// At least one check failed: the ladder acts.
    Failing,
    /// The probe could not tell (e.g. the Docker engine is unreachable): nothing is healed.
    Unknown,
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The heartbeat is older than the stale limit.
    HeartbeatStale {
        /// Its age in seconds.
        age_secs: u64,
        /// The limit in seconds.
        limit_secs: u64,
    },
    /// No heartbeat was seen, and the grace is over.
    HeartbeatMissing,
    /// A pid file is configured but missing or unreadable.
    PidMissing,
    /// The pid file names a process that is not alive.
    PidDead {
        /// The pid.
        pid: u32,
    },
    /// The version stamp differs from the expected version.
    VersionMismatch {
        /// What the process stamped.
        running: String,
        /// What it should run.
        expected: String,
    },
    /// The container is not running.
    ContainerNotRunning {
        /// The engine's state (`exited`, `created`, `dead`, `not_found` …).
        state: String,
        /// Its exit code, when it exited.
        exit_code: Option<i64>,
    },
    /// The container's health check says unhealthy.
    ContainerUnhealthy,
    /// The container restarts in a loop.
    ContainerRestartLoop {
        /// Restarts counted in the window.
        restarts: u64,
    },
    /// The endpoint failed this many probes in a row.
    EndpointFailing {
        /// Failed probes in a row.
        in_row: u32,
        /// The last failure (status or error).
        last: String,
    },
}

impl Finding {
    /// A short human description ("heartbeat 95s old (stale after 90s)").
    pub fn describe(&self) -> String {
        match self {
            Finding::HeartbeatStale {
                age_secs,
                limit_secs,
            } => format!("heartbeat {age_secs}s old (stale after {limit_secs}s)"),
            Finding::HeartbeatMissing => "no heartbeat seen".into(),
            Finding::PidMissing => "pid file missing".into(),
            Finding::PidDead { pid } => format!("pid {pid} not alive"),
            Finding::VersionMismatch { running, expected } => {
                format!("running version {running}, expected {expected}")
            }
            Finding::ContainerNotRunning { state, exit_code } => match exit_code {
                Some(c) => format!("container {state} (exit code {c})"),
                None => format!("container {state}"),
            },
            Finding::ContainerUnhealthy => "container unhealthy".into(),
            Finding::ContainerRestartLoop { restarts } => {
                format!("container restarting in a loop ({restarts} restarts)")
            }
            Finding::EndpointFailing { in_row, last } => {
                format!("endpoint failed {in_row} probes in a row (last: {last})")
            }
        }
    }
}

/// What one probe of one target saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// The verdict.
    pub health: Health,
    /// The failed checks (empty when healthy).
    pub findings: Vec<Finding>,
    /// What was seen that is not a failure ("no version stamp: version not checked", "heartbeat
    /// missing, within the start-up grace").
    pub notes: Vec<String>,
    /// The live pid, when one is known; `None` makes the ladder skip the signalling tiers.
    pub pid: Option<u32>,
    /// A shared cause outside the target (e.g. `"docker engine"`), for the healing budget.
    pub upstream: Option<String>,
}

impl Observation {
    /// A healthy observation with no notes.
    pub fn healthy(at: DateTime<Utc>) -> Self {
        Observation {
            at,
            health: Health::Healthy,
            findings: Vec::new(),
            notes: Vec::new(),
            pid: None,
            upstream: None,
        }
    }

    /// The findings joined for a message ("pid file missing; heartbeat 95s old (…)"), or the
    /// notes when there is no finding.
    pub fn summary(&self) -> String {
        if self.findings.is_empty() {
            if self.notes.is_empty() {
                return match self.health {
                    Health::Healthy => "healthy".into(),
                    Health::Failing => "failing".into(),
                    Health::Unknown => "unknown".into(),
                };
            }
            return self.notes.join("; ");
        }
        self.findings
            .iter()
            .map(Finding::describe)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Sets the verdict from the findings: failing when there is one, else healthy (an unknown
    /// verdict stays unknown).
    pub(crate) fn settle(&mut self) {
        if self.health != Health::Unknown {
            self.health = if self.findings.is_empty() {
                Health::Healthy
            } else {
                Health::Failing
            };
        }
    }
}
