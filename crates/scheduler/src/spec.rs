//! What a task is, as plain data: built by lookoutd from `[[jobs]]` or from the API.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::SchedulerError;
use crate::schedule::Schedule;

/// A task (or host job) to add or update, by name.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskSpec {
    /// Its unique name.
    pub name: String,
    /// The group its notifications go to (required for agent tasks).
    pub group: Option<String>,
    /// When it runs: anything [`Schedule::parse`] accepts (`0 3 * * *`, `every 15m`,
    /// `at 2026-12-01T09:00:00Z`).
    pub schedule: String,
    /// The IANA zone cron expressions are read in (default UTC).
    #[serde(default = "utc")]
    pub tz: String,
    /// What runs.
    pub runner: RunnerSpec,
    /// How it runs.
    #[serde(default)]
    pub policy: TaskPolicy,
}

fn utc() -> String {
    "UTC".into()
}

impl TaskSpec {
    /// Checks the spec and parses its schedule.
    pub fn validate(&self) -> Result<Schedule, SchedulerError> {
        if self.name.trim().is_empty() {
            return Err(SchedulerError::InvalidTask("a task needs a name".into()));
        }
        match &self.runner {
            RunnerSpec::Shell { command, .. } if command.trim().is_empty() => {
                return Err(SchedulerError::InvalidTask(format!(
                    "task `{}`: empty command",
                    self.name
                )));
            }
            RunnerSpec::Container { image, .. } if image.trim().is_empty() => {
                return Err(SchedulerError::InvalidTask(format!(
                    "task `{}`: empty image",
                    self.name
                )));
            }
            _ => {}
        }
        Schedule::parse(&self.schedule, &self.tz)
    }
}

/// What a run executes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunnerSpec {
    /// `sh -c COMMAND` in its own process group.
    Shell {
        /// The command line.
        command: String,
        /// Extra environment variables.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
        /// The working directory (default: lookoutd's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workdir: Option<PathBuf>,
    },
    /// A one-shot container: created, started, waited for, its logs kept, removed.
    Container {
        /// The image (local; never pulled).
        image: String,
        /// The command (default: the image's).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        command: Vec<String>,
        /// Environment variables.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
    },
    /// A function the embedding host registered under this name.
    Callback {
        /// The registered name.
        name: String,
    },
}

impl RunnerSpec {
    /// A shell command with no extra environment, in the current directory.
    pub fn shell(command: &str) -> RunnerSpec {
        RunnerSpec::Shell {
            command: command.to_string(),
            env: BTreeMap::new(),
            workdir: None,
        }
    }

    /// A callback registered under `name`.
    pub fn callback(name: &str) -> RunnerSpec {
        RunnerSpec::Callback {
            name: name.to_string(),
        }
    }
}

/// A run due while the previous one of the same task still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Concurrency {
    /// Skip the new run (recorded `skipped`).
    #[default]
    Forbid,
    /// Run both.
    Allow,
    /// Stop the old run (recorded `interrupted`) and start the new one.
    Replace,
}

/// Runs that fell due while no scheduler ran (downtime), older than the on-time tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    /// Run none of them (one `skipped` record says how many).
    Skip,
    /// Run once for all of them.
    #[default]
    RunOnce,
    /// Run each one still within the starting deadline, oldest first, one after another; older
    /// ones are skipped.
    CatchUp,
}

/// How a task runs.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TaskPolicy {
    /// A run due while the last still runs.
    pub concurrency: Concurrency,
    /// A longer run is killed and recorded `timeout`.
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Runs missed during downtime.
    pub missed: Missed,
    /// For [`Missed::CatchUp`]: missed runs older than this are skipped (default: 1 day).
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub starting_deadline: Option<Duration>,
    /// Each run starts up to this much later than due (a fixed delay per run, from a hash of the
    /// task and the instant, so several hosts spread their load).
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Duration>,
    /// Heartbeat interval (default: the scheduler's, 60 s).
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Duration>,
    /// A due run not started this long after its time raises "overdue" (default: the
    /// scheduler's).
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub overdue_grace: Option<Duration>,
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&crate::schedule::format_interval(*d)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let v: Option<String> = Option::deserialize(d)?;
        v.map(|s| lookout_common::duration::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}
