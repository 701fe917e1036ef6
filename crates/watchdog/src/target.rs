//! Targets: what is supervised, and the policy it is healed by. Plain data the daemon builds from
//! `[[watch]]` in its config or from the API.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::WatchdogError;

/// One supervised thing: its name, what it is, and how it is healed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// The target's name (`[A-Za-z0-9._-]`, 1..=64 characters): the subject of every event and alert.
    pub name: String,
    /// What it is and where to look.
    pub spec: TargetSpec,
    /// Intervals, limits and the ladder.
    pub policy: Policy,
    /// A shared upstream the target depends on (e.g. `"gateway"`). Targets failing together with
    /// the same upstream count against the healing budget (see [`BudgetPolicy`]).
    pub upstream: Option<String>,
}

impl Target {
    /// A target with the default policy of its kind.
    pub fn new(name: impl Into<String>, spec: TargetSpec) -> Self {
        let policy = Policy::for_kind(spec.kind());
        Target {
            name: name.into(),
            spec,
            policy,
            upstream: None,
        }
    }

    /// Replaces the policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the shared upstream.
    pub fn with_upstream(mut self, upstream: impl Into<String>) -> Self {
        self.upstream = Some(upstream.into());
        self
    }

    /// Checks the name and that the ladder fits the kind.
    pub fn validate(&self) -> Result<(), WatchdogError> {
        validate_name(&self.name)?;
        let kind = self.spec.kind();
        for action in &self.policy.ladder {
            if action.kind() != kind {
                return Err(WatchdogError::InvalidTarget {
                    target: self.name.clone(),
                    reason: format!("ladder action {action:?} does not apply to a {kind:?} target"),
                });
            }
        }
        if self.policy.probe_interval.is_zero() {
            return Err(WatchdogError::InvalidTarget {
                target: self.name.clone(),
                reason: "probe_interval must be more than zero".into(),
            });
        }
        Ok(())
    }
}

/// Target names become file names and alert subjects: keep them plain.
pub(crate) fn validate_name(name: &str) -> Result<(), WatchdogError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(WatchdogError::InvalidTarget {
            target: name.to_owned(),
            reason: "a name is 1 to 64 of A-Z a-z 0-9 . _ - and does not start with a dot".into(),
        })
    }
}

/// The kind of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A process on this host.
    Process,
    /// A Docker container.
    Container,
    /// An HTTP endpoint.
    Http,
}

/// What a target is and where to look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetSpec {
    /// A process seen through its pid, heartbeat and version files.
    Process(ProcessSpec),
    /// A Docker container, by name.
    Container(ContainerSpec),
    /// An HTTP endpoint.
    Http(HttpSpec),
}

impl TargetSpec {
    /// The kind.
    pub fn kind(&self) -> TargetKind {
        match self {
            TargetSpec::Process(_) => TargetKind::Process,
            TargetSpec::Container(_) => TargetKind::Container,
            TargetSpec::Http(_) => TargetKind::Http,
        }
    }
}

/// A supervised process. Every file is optional; what is not configured is not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// File holding the process id. Configured but missing (or naming a dead process) is a failure.
    pub pid_file: Option<PathBuf>,
    /// File the process touches or rewrites to say it is alive (its modification time counts).
    pub heartbeat_file: Option<PathBuf>,
    /// Heartbeats also (or only) arrive as events, fed in with
    /// [`Watchdog::heartbeat`](crate::Watchdog::heartbeat).
    pub heartbeat_events: bool,
    /// File in which the process writes the version it runs (e.g. the git SHA it started from).
    pub version_file: Option<PathBuf>,
    /// The version it should run.
    pub expected_version: Option<ExpectedVersion>,
    /// File whose creation asks the process to restart itself (tier 1).
    pub restart_marker: Option<PathBuf>,
    /// Shell command (`sh -c`) that starts the process (tier 3). It is expected to write the pid
    /// file itself, as the host's own start-up does.
    pub start: Option<String>,
}

/// A supervised container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The container's name (or id).
    pub container: String,
}

/// A supervised HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpSpec {
    /// The URL probed with a GET.
    pub url: String,
    /// The status expected; `None` accepts any 2xx.
    pub expected_status: Option<u16>,
    /// Timeout of one probe.
    pub timeout: Duration,
    /// Failed probes in a row before the endpoint counts as failing.
    pub failures_in_row: u32,
}

impl HttpSpec {
    /// An endpoint expecting any 2xx within 5 s, failing after 3 bad probes in a row.
    pub fn new(url: impl Into<String>) -> Self {
        HttpSpec {
            url: url.into(),
            expected_status: None,
            timeout: Duration::from_secs(5),
            failures_in_row: 3,
        }
    }
}

/// Where the version a process should run comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedVersion {
    /// The commit id of HEAD of the git repository at this path (`git:PATH`).
    GitHead(PathBuf),
    /// The trimmed content of a file (`file:PATH`).
    File(PathBuf),
    /// The trimmed standard output of a shell command (`cmd:COMMAND`).
    Command(String),
}

impl ExpectedVersion {
    /// Parses the config form: `git:PATH`, `file:PATH` or `cmd:COMMAND`.
    pub fn parse(s: &str) -> Result<Self, WatchdogError> {
        let bad = || WatchdogError::InvalidExpectedVersion(s.to_owned());
        let (scheme, rest) = s.split_once(':').ok_or_else(bad)?;
        if rest.trim().is_empty() {
            return Err(bad());
        }
        match scheme {
            "git" => Ok(ExpectedVersion::GitHead(PathBuf::from(rest))),
            "file" => Ok(ExpectedVersion::File(PathBuf::from(rest))),
            "cmd" => Ok(ExpectedVersion::Command(rest.to_owned())),
            _ => Err(bad()),
        }
    }
}

/// One rung of a ladder. Tier N is the N-th action of the target's ladder; the tier after the last
/// one is the open circuit (alert and stop acting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Write the restart marker the process polls (a cooperative restart). Skipped when the
    /// process is known to be gone or no marker is configured.
    RestartMarker,
    /// Send SIGTERM. Skipped without a live pid.
    Terminate,
    /// SIGKILL the pid if it is alive (the grace was the previous tier's cooldown), wait for it to
    /// go, then run the start command. Without a pid only the start command runs.
    KillAndStart,
    /// Restart the container through the engine.
    ContainerRestart,
    /// Stop, then start the container.
    ContainerStopStart,
}

impl Action {
    /// The kind of target the action applies to.
    pub fn kind(self) -> TargetKind {
        match self {
            Action::RestartMarker | Action::Terminate | Action::KillAndStart => TargetKind::Process,
            Action::ContainerRestart | Action::ContainerStopStart => TargetKind::Container,
        }
    }

    /// Whether the action (re)starts the target, so it is subject to the restart backoff.
    pub fn restarts(self) -> bool {
        matches!(
            self,
            Action::KillAndStart | Action::ContainerRestart | Action::ContainerStopStart
        )
    }

    /// A short human description.
    pub fn describe(self) -> &'static str {
        match self {
            Action::RestartMarker => "cooperative restart (restart marker)",
            Action::Terminate => "SIGTERM",
            Action::KillAndStart => "SIGKILL and start command",
            Action::ContainerRestart => "container restart",
            Action::ContainerStopStart => "container stop and start",
        }
    }
}

/// The default ladder of a kind: process = marker, SIGTERM, SIGKILL + start; container = restart,
/// stop + start; HTTP = none (a failing endpoint alerts: the watchdog cannot heal what it cannot
/// reach).
pub fn default_ladder(kind: TargetKind) -> Vec<Action> {
    match kind {
        TargetKind::Process => vec![
            Action::RestartMarker,
            Action::Terminate,
            Action::KillAndStart,
        ],
        TargetKind::Container => vec![Action::ContainerRestart, Action::ContainerStopStart],
        TargetKind::Http => Vec::new(),
    }
}

/// How a target is probed and healed. Every field has a default ([`Policy::for_kind`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// How often the target is probed (default 5 s).
    pub probe_interval: Duration,
    /// A heartbeat older than this is stale (default 90 s).
    pub stale_after: Duration,
    /// A heartbeat missing since the watchdog first saw the target, or since it started it, is a
    /// failure only after this grace (default 90 s).
    pub heartbeat_grace: Duration,
    /// The rungs, tier 1 first.
    pub ladder: Vec<Action>,
    /// After a tier acts, no tier acts for this long, so it gets time to work (default 45 s).
    pub cooldown: Duration,
    /// Per-tier overrides of `cooldown`, by tier number (1-based).
    pub tier_cooldowns: Vec<(u8, Duration)>,
    /// After any action, probe results neither escalate nor reset the ladder for this long: the
    /// target is settling (default 10 s).
    pub quiet_after_heal: Duration,
    /// How long tier 3 waits for a SIGKILLed process to disappear before starting (default 5 s).
    pub kill_wait: Duration,
    /// The circuit opens after this many consecutive failures of the top tier (default 3).
    pub max_top_tier_failures: u32,
    /// The circuit opens when more than `max_heals` actions were needed in `heal_period`
    /// (OTP's restart intensity; default 10 in 1 h).
    pub max_heals: u32,
    /// See `max_heals`.
    pub heal_period: Duration,
    /// An open circuit closes by itself after the target stayed healthy this long (default 10
    /// min); `None` leaves it to a manual reset.
    pub circuit_close_after: Option<Duration>,
    /// Backoff of actions that restart the target.
    pub backoff: BackoffPolicy,
    /// A container whose restart count grows by this much within `restart_loop_window` is
    /// restarting in a loop (default 3 in 5 min).
    pub restart_loop_count: u32,
    /// See `restart_loop_count`.
    pub restart_loop_window: Duration,
}

impl Policy {
    /// The defaults for a kind (the ladder differs; the rest is shared).
    pub fn for_kind(kind: TargetKind) -> Self {
        Policy {
            probe_interval: Duration::from_secs(5),
            stale_after: Duration::from_secs(90),
            heartbeat_grace: Duration::from_secs(90),
            ladder: default_ladder(kind),
            cooldown: Duration::from_secs(45),
            tier_cooldowns: Vec::new(),
            quiet_after_heal: Duration::from_secs(10),
            kill_wait: Duration::from_secs(5),
            max_top_tier_failures: 3,
            max_heals: 10,
            heal_period: Duration::from_secs(3600),
            circuit_close_after: Some(Duration::from_secs(600)),
            backoff: BackoffPolicy::default(),
            restart_loop_count: 3,
            restart_loop_window: Duration::from_secs(300),
        }
    }

    /// The cooldown after tier `tier` acted.
    pub fn cooldown_of(&self, tier: u8) -> Duration {
        self.tier_cooldowns
            .iter()
            .find(|(t, _)| *t == tier)
            .map(|(_, d)| *d)
            .unwrap_or(self.cooldown)
    }

    /// The tier number of the open circuit: one past the last action.
    pub fn circuit_tier(&self) -> u8 {
        u8::try_from(self.ladder.len() + 1).unwrap_or(u8::MAX)
    }
}

/// Restart backoff (Kubernetes' CrashLoopBackOff defaults): the first restart is immediate, each
/// next one waits `initial` doubling up to `max` after the previous restart; the count resets after
/// the target stayed healthy `reset_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackoffPolicy {
    /// The wait before the second restart (default 10 s).
    pub initial: Duration,
    /// The longest wait (default 5 min).
    pub max: Duration,
    /// Healthy this long resets the count (default 10 min).
    pub reset_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

impl BackoffPolicy {
    /// The wait after the previous restart before the next may run, given how many restarts
    /// have run since the last reset: 0 → none, 1 → `initial`, 2 → 2 × `initial`, … up to `max`.
    pub fn delay(&self, restarts_so_far: u32) -> Duration {
        if restarts_so_far == 0 {
            return Duration::ZERO;
        }
        let shift = (restarts_so_far - 1).min(31);
        self.initial
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// The healing budget: when at least `threshold` targets fail in one probe round with the same
/// upstream cause, one shared circuit opens for them (one alert) instead of healing each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetPolicy {
    /// Targets failing together with one cause (default 3).
    pub threshold: usize,
}

impl Default for BudgetPolicy {
    fn default() -> Self {
        BudgetPolicy { threshold: 3 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_schedule_doubles_to_the_cap() {
        let b = BackoffPolicy::default();
        let secs: Vec<u64> = (0..8).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, vec![0, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(b.delay(1000).as_secs(), 300);
    }

    #[test]
    fn expected_version_forms() {
        assert_eq!(
            ExpectedVersion::parse("git:.").unwrap(),
            ExpectedVersion::GitHead(".".into())
        );
        assert_eq!(
            ExpectedVersion::parse("file:run/v").unwrap(),
            ExpectedVersion::File("run/v".into())
        );
        assert_eq!(
            ExpectedVersion::parse("cmd:echo 1").unwrap(),
            ExpectedVersion::Command("echo 1".into())
        );
        assert!(ExpectedVersion::parse("svn:x").is_err());
        assert!(ExpectedVersion::parse("git:").is_err());
    }

    #[test]
    fn names_and_ladders_are_checked() {
        let t = Target::new("bridge", TargetSpec::Process(ProcessSpec::default()));
        t.validate().unwrap();
        assert!(
            Target::new("../x", TargetSpec::Process(ProcessSpec::default()))
                .validate()
                .is_err()
        );
        let mut bad = t.clone();
        bad.policy.ladder = vec![Action::ContainerRestart];
        assert!(bad.validate().is_err());
    }
}
