//! The configuration file of lookoutd: one TOML file in which every key has a default.
//!
//! [`parse`] turns the text into a [`Config`], and any mistake into one [`ConfigError`] line that
//! names the key path (`notify.sinks[1].url`), its line and column, and what to do about it: the
//! nearest valid key for an unknown one, the new name of a renamed one, the expected type, the
//! allowed range. The keys are documented in `docs/configuration.md`.
//!
//! How position and path are found, with the least machinery: the text is parsed once into toml's
//! spanned `DeTable`, and the structs are deserialized from it through `serde_path_to_error`. toml's
//! own error carries the byte span of the offending key or value but not its path (its key list is
//! private and never filled); `serde_path_to_error` gives the exact path, array indices included,
//! but no position. Together they give both, without a second parser (`toml_edit`) and without
//! `Spanned<T>` wrappers in the structs the rest of lookoutd reads. The checks that span several
//! keys run after deserializing and find their position by walking the same `DeTable` along the
//! path they report.
//!
//! Secrets never come from the file: keys ending in `_env` name the environment variable that holds
//! one. Error messages quote keys, numbers and the values of enumerations and durations, never the
//! value of a free-form string (which could be a secret pasted into the wrong key).

// A `ConfigError` is made at most once, at start-up, and ends it: its size costs nothing, and flat
// variants keep it easy to match on.
#![allow(clippy::result_large_err)]

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::duration::parse_duration;

// ---------------------------------------------------------------------------------------------
// The configuration
// ---------------------------------------------------------------------------------------------

/// The whole file. Every section has a default, so an empty file (or none) is a valid configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: the HTTP API.
    pub server: ServerConfig,
    /// `[store]`: where events and state are kept.
    pub store: StoreConfig,
    /// `[thresholds]`: when a silence becomes a failure.
    pub thresholds: Thresholds,
    /// `[boot]`: boot records and crash-loop detection.
    pub boot: BootConfig,
    /// `[notify]`: where alerts go.
    pub notify: NotifyConfig,
    /// `[[repos]]`: git repositories (and their worktrees) to watch.
    pub repos: Vec<Repo>,
    /// `[gateway]`: the LLM gateway.
    pub gateway: GatewayConfig,
    /// `[[watch]]`: targets the watchdog supervises.
    pub watch: Vec<Watch>,
    /// `[[jobs]]`: scheduled host jobs.
    pub jobs: Vec<Job>,
    /// `[status]`: how `GET /status` collects.
    pub status: StatusConfig,
    /// `[docker]`: the container engine.
    pub docker: DockerConfig,
    /// `[reconcile]`: the reconciler's tick, repairs and replay limit.
    pub reconcile: ReconcileConfig,
    /// `[alerts]`: the alert lifecycle.
    pub alerts: AlertsConfig,
    /// `[[quiet]]`: recurring quiet windows.
    pub quiet: Vec<Quiet>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            thresholds: Thresholds::default(),
            boot: BootConfig::default(),
            notify: NotifyConfig::default(),
            // With no `[[repos]]`, lookoutd watches the repository it was started in.
            repos: vec![Repo {
                path: PathBuf::from("."),
                name: None,
            }],
            gateway: GatewayConfig::default(),
            watch: Vec::new(),
            jobs: Vec::new(),
            status: StatusConfig::default(),
            docker: DockerConfig::default(),
            reconcile: ReconcileConfig::default(),
            alerts: AlertsConfig::default(),
            quiet: Vec::new(),
        }
    }
}

/// `[alerts]`: the alert lifecycle (one state per condition, kept in the store).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// A lasting alert is re-sent at most this often.
    #[serde(deserialize_with = "duration")]
    pub repeat_interval: Duration,
    /// More than this many state changes within `flap_window` is flapping (1 ..= 1000).
    pub flap_changes: u32,
    /// The window flapping is counted in.
    #[serde(deserialize_with = "duration")]
    pub flap_window: Duration,
    /// Root-cause folding: what follows from a firing cause is listed under it, not sent one by one.
    pub fold: bool,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            repeat_interval: Duration::from_secs(4 * 3600),
            flap_changes: 4,
            flap_window: Duration::from_secs(600),
            fold: true,
        }
    }
}

/// `[[quiet]]`: a recurring quiet window; alerts starting inside it are held, not dropped.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quiet {
    /// Its name (shown with the alerts it holds).
    pub name: String,
    /// When it opens: a cron expression, read in `tz`.
    pub cron: String,
    /// The time zone of `cron`.
    #[serde(default = "default_tz")]
    pub tz: String,
    /// How long it stays open.
    #[serde(deserialize_with = "duration")]
    pub duration: Duration,
    /// Only alerts whose key (`rule:subject`) contains one of these `|`-separated parts.
    #[serde(rename = "match")]
    pub matcher: Option<String>,
}

/// `[reconcile]`: the event-sourced reconciler.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileConfig {
    /// How often it drains new events and checks its invariants.
    #[serde(deserialize_with = "duration")]
    pub tick: Duration,
    /// Execute safe repairs (a working run whose container is gone goes to idle); off: they are
    /// reported, not executed.
    pub auto_repair: bool,
    /// The longest range `POST /debug/replay-events` accepts.
    #[serde(deserialize_with = "duration")]
    pub max_replay_range: Duration,
    /// The host's container concurrency limit (invariant I6); none: unlimited.
    pub max_concurrent: Option<u32>,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            tick: Duration::from_secs(1),
            auto_repair: false,
            max_replay_range: Duration::from_secs(7 * 86_400),
            max_concurrent: None,
        }
    }
}

/// `[status]`: how `GET /status` collects its sections.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// Each section's time limit; a section past it reports its error and the others still answer.
    #[serde(deserialize_with = "duration")]
    pub section_timeout: Duration,
    /// How long a report is kept and shared by the requests that follow it (`0s`: only requests
    /// arriving while one is collected share it).
    #[serde(deserialize_with = "duration")]
    pub cache_ttl: Duration,
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            section_timeout: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(1),
        }
    }
}

/// `[docker]`: the container engine (gateway containers, one-shot job containers, watched
/// containers).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerConfig {
    /// The engine's socket: `unix:///var/run/docker.sock` or a path.
    pub socket: String,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            socket: "unix:///var/run/docker.sock".into(),
        }
    }
}

/// `[server]`: the HTTP API of lookoutd.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub bind: String,
    /// The environment variable holding the bearer token for `/api` and `/debug`.
    pub token_env: String,
    /// Whether `GET /status` needs the token too.
    pub status_requires_token: bool,
    /// Largest request body accepted (1 KiB ..= 64 MiB).
    pub max_body_bytes: usize,
    /// Most events in one `POST /api/events` (1 ..= 100000).
    pub max_events_per_request: usize,
    /// A request taking longer than this is answered with an error.
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// Requests served at once (1 ..= 10000).
    pub concurrency_limit: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8484".into(),
            token_env: "LOOKOUT_TOKEN".into(),
            status_requires_token: false,
            max_body_bytes: 1_048_576,
            max_events_per_request: 1000,
            request_timeout: Duration::from_secs(10),
            concurrency_limit: 256,
        }
    }
}

/// `[store]`: the database.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` (relative to the state directory) or `postgres://USER@HOST/DB`.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://lookout.db".into(),
        }
    }
}

/// `[thresholds]`: how long a silence may last before it is a failure.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// A message in flight this long with no bot response is an interrupted run.
    #[serde(deserialize_with = "duration")]
    pub stale_processing: Duration,
    /// How often the interrupted-run scan runs.
    #[serde(deserialize_with = "duration")]
    pub stale_scan_interval: Duration,
    /// Interval of the "still running" heartbeat of long tasks.
    #[serde(deserialize_with = "duration")]
    pub heartbeat_interval: Duration,
    /// A delivery pending this long is stuck.
    #[serde(deserialize_with = "duration")]
    pub delivery_pending: Duration,
    /// A channel disconnected this long is down.
    #[serde(deserialize_with = "duration")]
    pub channel_down: Duration,
    /// Heartbeat intervals with the same progress before a run is called stalled (1 ..= 1000).
    pub stall_after: u32,
    /// The quiet window a `deploy` event opens for restart-class alerts.
    #[serde(deserialize_with = "duration")]
    pub deploy_quiet: Duration,
    /// How late a task or host job may start before it is overdue.
    #[serde(deserialize_with = "duration")]
    pub overdue_grace: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            stale_processing: Duration::from_secs(10 * 60),
            stale_scan_interval: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(60),
            delivery_pending: Duration::from_secs(5 * 60),
            channel_down: Duration::from_secs(2 * 60),
            stall_after: 5,
            deploy_quiet: Duration::from_secs(2 * 60),
            overdue_grace: Duration::from_secs(5 * 60),
        }
    }
}

/// `[boot]`: boot records and crash loops.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootConfig {
    /// Failed starts within `crash_loop_window` that make a crash loop (1 ..= 100).
    pub crash_loop_threshold: u32,
    /// The window in which failed starts are counted.
    #[serde(deserialize_with = "duration")]
    pub crash_loop_window: Duration,
    /// `[[boot.services]]`: the services whose starts are recorded.
    pub services: Vec<BootService>,
}

impl Default for BootConfig {
    fn default() -> Self {
        BootConfig {
            crash_loop_threshold: 3,
            crash_loop_window: Duration::from_secs(5 * 60),
            services: Vec::new(),
        }
    }
}

/// `[[boot.services]]`: one service whose starts are recorded.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootService {
    /// The service name used by `lookout boot begin|ready|fail --service`.
    pub name: String,
    /// A log file whose tail is the cause of a failed start.
    pub log_file: Option<PathBuf>,
    /// How many lines of `log_file` make the cause (1 ..= 50).
    #[serde(default = "default_log_lines")]
    pub log_lines: usize,
    /// The systemd unit asked for the cause when the log gives none.
    pub systemd_unit: Option<String>,
}

fn default_log_lines() -> usize {
    3
}

/// `[notify]`: where alerts go.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// How long a sink may fail before its messages go to its `fallback`.
    #[serde(deserialize_with = "duration")]
    pub fallback_after: Duration,
    /// `[[notify.sinks]]`; none means alerts go to lookoutd's log only.
    pub sinks: Vec<Sink>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            fallback_after: Duration::from_secs(2 * 60),
            sinks: Vec::new(),
        }
    }
}

/// `[[notify.sinks]]`: one destination for alerts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sink {
    /// The sink's name (what `fallback` refers to); defaults to the kind.
    pub name: Option<String>,
    /// What the sink is.
    pub kind: SinkKind,
    /// The URL of a webhook, slack or callback sink.
    pub url: Option<String>,
    /// The environment variable holding the URL, when the URL is a secret.
    pub url_env: Option<String>,
    /// The file a `file` sink appends to.
    pub path: Option<PathBuf>,
    /// Only alerts of these groups (none: every group).
    pub groups: Option<Vec<String>>,
    /// The least severe alert sent.
    #[serde(default)]
    pub min_severity: Severity,
    /// The sink that takes over when this one fails for `notify.fallback_after`.
    pub fallback: Option<String>,
}

impl Sink {
    /// The sink's name: `name`, or the kind when there is none.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.kind.as_str())
    }
}

/// What a sink is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// lookoutd's own log.
    Log,
    /// A JSON POST to a URL.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// Lines appended to a file.
    File,
    /// A POST to the host's own callback endpoint.
    Callback,
}

impl SinkKind {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Log => "log",
            SinkKind::Webhook => "webhook",
            SinkKind::Slack => "slack",
            SinkKind::File => "file",
            SinkKind::Callback => "callback",
        }
    }

    fn needs_url(self) -> bool {
        matches!(
            self,
            SinkKind::Webhook | SinkKind::Slack | SinkKind::Callback
        )
    }
}

/// How serious an alert is; a sink takes those at or above its `min_severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Recoveries, summaries.
    #[default]
    Info,
    /// Something degraded.
    Warning,
    /// Something is down.
    Critical,
}

/// `[[repos]]`: a git repository whose worktrees are watched.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repo {
    /// The repository's directory.
    pub path: PathBuf,
    /// Its name in `/status`; defaults to the directory's name.
    pub name: Option<String>,
}

/// `[gateway]`: the LLM gateway the host talks to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// How the gateway runs (free text shown in `/status`, e.g. "litellm").
    pub mode: Option<String>,
    /// Containers the gateway needs.
    pub containers: Vec<String>,
    /// Its health endpoint.
    pub health_url: Option<String>,
    /// The environment variable holding the key the health endpoint wants.
    pub health_key_env: Option<String>,
    /// How long the health endpoint may take to answer.
    #[serde(deserialize_with = "duration")]
    pub health_timeout: Duration,
    /// How often lookoutd checks the gateway for its `gateway_down` alert (only when containers
    /// or a health URL are configured).
    #[serde(deserialize_with = "duration")]
    pub probe_interval: Duration,
    /// The tasks and host jobs (by name; `"*"` for all) that need the gateway: while it is down,
    /// their failures and overdue alerts are folded under its alert.
    pub needed_by: Vec<String>,
}

impl GatewayConfig {
    /// Whether the task or host job `name` needs the gateway.
    pub fn needed_by(&self, name: &str) -> bool {
        self.needed_by.iter().any(|n| n == "*" || n == name)
    }

    /// Whether anything of the gateway is configured to check.
    pub fn is_checked(&self) -> bool {
        !self.containers.is_empty() || self.health_url.is_some()
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            mode: None,
            containers: Vec::new(),
            health_url: None,
            health_key_env: None,
            health_timeout: Duration::from_secs(1),
            probe_interval: Duration::from_secs(30),
            needed_by: Vec::new(),
        }
    }
}

/// `[[watch]]`: one target the watchdog supervises.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    /// The target's name.
    pub name: String,
    /// What the target is.
    pub kind: WatchKind,
    /// File holding the process id.
    pub pid_file: Option<PathBuf>,
    /// File the process touches or rewrites to say it is alive.
    pub heartbeat_file: Option<PathBuf>,
    /// File in which the process writes the version it runs.
    pub version_file: Option<PathBuf>,
    /// The version it should run: `git:REPO` (HEAD), `file:PATH` or `cmd:COMMAND`.
    pub expected_version: Option<String>,
    /// File whose creation asks the process to restart itself (the gentle tier).
    pub restart_marker: Option<PathBuf>,
    /// Command that starts the process (the last tier).
    pub start: Option<String>,
    /// The container, for `kind = "container"`.
    pub container: Option<String>,
    /// The URL probed, for `kind = "http"`.
    pub url: Option<String>,
    /// The status an `http` probe expects (default: any 2xx).
    pub expected_status: Option<u16>,
    /// How often the target is probed.
    #[serde(default = "default_probe_interval", deserialize_with = "duration")]
    pub probe_interval: Duration,
    /// A heartbeat older than this is stale.
    #[serde(default = "default_stale_after", deserialize_with = "duration")]
    pub stale_after: Duration,
    /// The wait after a tier acts before the next may.
    #[serde(default = "default_cooldown", deserialize_with = "duration")]
    pub cooldown: Duration,
    /// Failed tiers in a row before the circuit opens (1 ..= 100).
    #[serde(default = "default_max_tier_failures")]
    pub max_tier_failures: u32,
}

fn default_probe_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_stale_after() -> Duration {
    Duration::from_secs(90)
}
fn default_cooldown() -> Duration {
    Duration::from_secs(45)
}
fn default_max_tier_failures() -> u32 {
    3
}

/// What a watched target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchKind {
    /// A process seen through pid, heartbeat and version files.
    Process,
    /// A Docker container.
    Container,
    /// An HTTP endpoint.
    Http,
}

/// `[[jobs]]`: one scheduled host job.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// The job's name.
    pub name: String,
    /// The group it belongs to (alerts are routed by group).
    pub group: Option<String>,
    /// A 5-field cron expression (one of `cron`, `every`, `at`).
    pub cron: Option<String>,
    /// A fixed interval (one of `cron`, `every`, `at`).
    #[serde(default, deserialize_with = "optional_duration")]
    pub every: Option<Duration>,
    /// One instant, RFC 3339 (one of `cron`, `every`, `at`).
    #[serde(default, deserialize_with = "optional_instant")]
    pub at: Option<DateTime<Utc>>,
    /// The time zone `cron` is read in.
    #[serde(default = "default_tz")]
    pub tz: String,
    /// A shell command to run (one of `command`, `image`).
    pub command: Option<String>,
    /// A container image to run once (one of `command`, `image`).
    pub image: Option<String>,
    /// For an `image` job: the container's command and arguments (default: the image's own).
    pub args: Option<Vec<String>>,
    /// A run taking longer is stopped and failed.
    #[serde(default, deserialize_with = "optional_duration")]
    pub timeout: Option<Duration>,
    /// What happens when a run is due while the last one still runs.
    #[serde(default)]
    pub concurrency: ConcurrencyPolicy,
    /// What happens to runs missed while lookoutd was down.
    #[serde(default)]
    pub missed: MissedPolicy,
}

fn default_tz() -> String {
    "UTC".into()
}

/// When a job runs (exactly one of `cron`, `every`, `at`, checked by [`parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSchedule<'a> {
    /// A cron expression, read in the job's `tz`.
    Cron(&'a str),
    /// A fixed interval.
    Every(Duration),
    /// Once.
    At(DateTime<Utc>),
}

/// What a job runs (exactly one of `command`, `image`, checked by [`parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobAction<'a> {
    /// A shell command.
    Command(&'a str),
    /// A one-shot container of this image.
    Image(&'a str),
}

impl Job {
    /// The job's schedule; `None` only for a `Job` that did not come through [`parse`].
    pub fn schedule(&self) -> Option<JobSchedule<'_>> {
        match (&self.cron, self.every, self.at) {
            (Some(cron), None, None) => Some(JobSchedule::Cron(cron)),
            (None, Some(every), None) => Some(JobSchedule::Every(every)),
            (None, None, Some(at)) => Some(JobSchedule::At(at)),
            _ => None,
        }
    }

    /// What the job runs; `None` only for a `Job` that did not come through [`parse`].
    pub fn action(&self) -> Option<JobAction<'_>> {
        match (&self.command, &self.image) {
            (Some(command), None) => Some(JobAction::Command(command)),
            (None, Some(image)) => Some(JobAction::Image(image)),
            _ => None,
        }
    }
}

/// A job's run due while the previous one still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcurrencyPolicy {
    /// Skip the new run.
    #[default]
    Forbid,
    /// Run both.
    Allow,
    /// Stop the old run and start the new one.
    Replace,
}

/// Runs missed while lookoutd was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedPolicy {
    /// Run none of them.
    Skip,
    /// Run once for all of them.
    #[default]
    RunOnce,
    /// Run each of them.
    CatchUp,
}

// ---------------------------------------------------------------------------------------------
// Value helpers (serde `deserialize_with`)
// ---------------------------------------------------------------------------------------------

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration string such as \"90s\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(|message| {
            // The position is in the error already; drop the parser's echo of the value.
            let echo = format!("`{}`: ", v.trim());
            E::custom(message.strip_prefix(&echo).unwrap_or(&message))
        })
    }
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_str(DurationVisitor)
}

fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    deserializer.deserialize_str(DurationVisitor).map(Some)
}

/// An RFC 3339 instant, written as a string or as a TOML date-time (which must have an offset).
struct InstantVisitor;

impl InstantVisitor {
    fn instant<E: de::Error>(v: &str) -> Result<DateTime<Utc>, E> {
        DateTime::parse_from_rfc3339(v.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                E::custom(format!(
                    "not an RFC 3339 instant ({e}); expected e.g. 2026-12-01T09:00:00Z"
                ))
            })
    }
}

impl<'de> Visitor<'de> for InstantVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 instant such as \"2026-12-01T09:00:00Z\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<DateTime<Utc>, E> {
        Self::instant(v)
    }

    // toml hands a native date-time over as a one-entry map holding its text.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DateTime<Utc>, A::Error> {
        match map.next_entry::<String, String>()? {
            Some((_, text)) => Self::instant(&text),
            None => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
        }
    }
}

fn optional_instant<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    deserializer.deserialize_any(InstantVisitor).map(Some)
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// Reads and parses the file at `path`; a missing file is an error (the caller decides whether a
/// file was named at all).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        origin: origin.clone(),
        source,
    })?;
    parse(&text, &origin)
}

/// Parses the text of a configuration file; `origin` (usually the file's path) starts every error.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let tree = DeTable::parse(text).map_err(|e| syntax_error(origin, text, &e))?;
    let src = Source {
        origin,
        text,
        tree: tree.get_ref(),
    };
    let config: Config =
        serde_path_to_error::deserialize(toml::de::Deserializer::from(tree.clone()))
            .map_err(|e| src.de_error(e))?;
    validate(&config, &src)?;
    Ok(config)
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A configuration that cannot be used. Its `Display` is one line naming the file, the key path,
/// the line and column, and what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{origin}: cannot read the configuration file: {source}")]
    Read {
        /// The file.
        origin: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not TOML.
    #[error("{origin}: invalid TOML{at}: {message}")]
    Syntax {
        /// The file.
        origin: String,
        /// Where.
        at: At,
        /// What the TOML parser said.
        message: String,
    },
    /// A key the configuration does not have.
    #[error("{origin}: unknown key `{path}`{at}{advice}")]
    UnknownKey {
        /// The file.
        origin: String,
        /// The key.
        path: KeyPath,
        /// Where.
        at: At,
        /// " — did you mean `…`?", or the valid keys; may be empty.
        advice: String,
    },
    /// A key that was renamed.
    #[error("{origin}: key `{path}`{at} was renamed to `{renamed_to}`{advice}")]
    Renamed {
        /// The file.
        origin: String,
        /// The old key.
        path: KeyPath,
        /// Where.
        at: At,
        /// The key to write instead.
        renamed_to: KeyPath,
        /// Why, when there is more to say; may be empty.
        advice: String,
    },
    /// A value of the wrong TOML type.
    #[error("{origin}: wrong type for `{path}`{at}: expected {expected}, found {found}{advice}")]
    WrongType {
        /// The file.
        origin: String,
        /// The key.
        path: KeyPath,
        /// Where.
        at: At,
        /// The type wanted.
        expected: String,
        /// The type written.
        found: String,
        /// How to write it, when there is more to say; may be empty.
        advice: String,
    },
    /// A number outside its range.
    #[error("{origin}: `{path}` = {value}{at} is out of range ({min}..={max})")]
    OutOfRange {
        /// The file.
        origin: String,
        /// The key.
        path: KeyPath,
        /// The number written.
        value: String,
        /// The line.
        at: AtLine,
        /// The smallest value allowed.
        min: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// Any other bad value, a missing key or a rule between keys.
    #[error("{origin}: `{path}`{at}: {message}")]
    Invalid {
        /// The file.
        origin: String,
        /// The key or table.
        path: KeyPath,
        /// Where.
        at: At,
        /// What is wrong and what to do.
        message: String,
    },
}

/// A 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Location {
    fn of(text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// Renders " at line L, column C", or nothing when the position is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At(Option<Location>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(Location { line, column }) => write!(f, " at line {line}, column {column}"),
            None => Ok(()),
        }
    }
}

/// Renders " at line L", or nothing when the position is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtLine(Option<usize>);

impl fmt::Display for AtLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, " at line {line}"),
            None => Ok(()),
        }
    }
}

/// A dotted key path with array indices: `notify.sinks[1].url`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    fn key(&self, key: &str) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    fn index(&self, index: usize) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }

    /// The table holding the last key.
    fn parent(&self) -> KeyPath {
        let mut path = self.clone();
        path.0.pop();
        path
    }

    fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }

    /// The path without indices (`notify.sinks.url`): how the schema and the rename table name keys.
    fn schema(&self) -> String {
        let keys: Vec<&str> = self
            .0
            .iter()
            .filter_map(|s| match s {
                Segment::Key(k) => Some(k.as_str()),
                Segment::Index(_) => None,
            })
            .collect();
        keys.join(".")
    }

    fn from_serde(path: &serde_path_to_error::Path) -> KeyPath {
        let mut out = KeyPath::default();
        for segment in path {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    out.0.push(Segment::Index(*index));
                }
                serde_path_to_error::Segment::Map { key } => out.0.push(Segment::Key(key.clone())),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        out
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

fn syntax_error(origin: &str, text: &str, error: &toml::de::Error) -> ConfigError {
    let span = error.span();
    let mut message = error.message().trim().replace('\n', "; ");
    if let Some(span) = &span {
        // Name the key of a duplicate; the rest of toml's messages describe the token already.
        if message == "duplicate key" {
            if let Some(key) = text.get(span.clone()).filter(|k| !k.contains('\n')) {
                message = format!("duplicate key `{}`", key.trim());
            }
        }
    }
    ConfigError::Syntax {
        origin: origin.to_owned(),
        at: At(span.map(|s| Location::of(text, s.start))),
        message,
    }
}

/// Keys that were renamed: the old key (without indices), its new name in the same table, and
/// what else to say.
const RENAMED: &[(&str, &str, &str)] = &[
    ("thresholds.stale_threshold", "stale_processing", ""),
    (
        "server.token",
        "token_env",
        "it names the environment variable that holds the token; secrets never go in the file",
    ),
];

/// Every key of every table, by path without indices. `home_of` uses it to say where a key placed
/// in the wrong table belongs; the tests check it against the structs and against the docs.
const SCHEMA: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "server",
            "store",
            "thresholds",
            "boot",
            "notify",
            "repos",
            "gateway",
            "watch",
            "jobs",
            "status",
            "docker",
            "reconcile",
            "alerts",
            "quiet",
        ],
    ),
    (
        "alerts",
        &["repeat_interval", "flap_changes", "flap_window", "fold"],
    ),
    ("quiet", &["name", "cron", "tz", "duration", "match"]),
    ("status", &["section_timeout", "cache_ttl"]),
    (
        "reconcile",
        &["tick", "auto_repair", "max_replay_range", "max_concurrent"],
    ),
    ("docker", &["socket"]),
    (
        "server",
        &[
            "bind",
            "token_env",
            "status_requires_token",
            "max_body_bytes",
            "max_events_per_request",
            "request_timeout",
            "concurrency_limit",
        ],
    ),
    ("store", &["url"]),
    (
        "thresholds",
        &[
            "stale_processing",
            "stale_scan_interval",
            "heartbeat_interval",
            "delivery_pending",
            "channel_down",
            "stall_after",
            "deploy_quiet",
            "overdue_grace",
        ],
    ),
    (
        "boot",
        &["crash_loop_threshold", "crash_loop_window", "services"],
    ),
    (
        "boot.services",
        &["name", "log_file", "log_lines", "systemd_unit"],
    ),
    ("notify", &["fallback_after", "sinks"]),
    (
        "notify.sinks",
        &[
            "name",
            "kind",
            "url",
            "url_env",
            "path",
            "groups",
            "min_severity",
            "fallback",
        ],
    ),
    ("repos", &["path", "name"]),
    (
        "gateway",
        &[
            "mode",
            "containers",
            "health_url",
            "health_key_env",
            "health_timeout",
            "probe_interval",
            "needed_by",
        ],
    ),
    (
        "watch",
        &[
            "name",
            "kind",
            "pid_file",
            "heartbeat_file",
            "version_file",
            "expected_version",
            "restart_marker",
            "start",
            "container",
            "url",
            "expected_status",
            "probe_interval",
            "stale_after",
            "cooldown",
            "max_tier_failures",
        ],
    ),
    (
        "jobs",
        &[
            "name",
            "group",
            "cron",
            "every",
            "at",
            "tz",
            "command",
            "image",
            "args",
            "timeout",
            "concurrency",
            "missed",
        ],
    ),
];

/// The tables written `[[name]]`, once per entry.
const ARRAYS_OF_TABLES: &[&str] = &[
    "boot.services",
    "notify.sinks",
    "repos",
    "watch",
    "jobs",
    "quiet",
];

/// The allowed range of each bounded integer, by path without indices.
const RANGES: &[(&str, u64, u64)] = &[
    ("server.max_body_bytes", 1024, 64 * 1024 * 1024),
    ("server.max_events_per_request", 1, 100_000),
    ("server.concurrency_limit", 1, 10_000),
    ("thresholds.stall_after", 1, 1000),
    ("alerts.flap_changes", 1, 1000),
    ("boot.crash_loop_threshold", 1, 100),
    ("boot.services.log_lines", 1, 50),
    ("watch.expected_status", 100, 599),
    ("watch.max_tier_failures", 1, 100),
];

fn range_of(path: &KeyPath) -> Option<(u64, u64)> {
    let schema = path.schema();
    RANGES
        .iter()
        .find(|(key, _, _)| *key == schema)
        .map(|&(_, min, max)| (min, max))
}

/// The range of the integer type serde named in "expected u16".
fn type_range(expected: &str) -> Option<(u64, u64)> {
    Some(match expected {
        "u8" => (0, u8::MAX.into()),
        "u16" => (0, u16::MAX.into()),
        "u32" => (0, u32::MAX.into()),
        "u64" | "usize" => (0, u64::MAX),
        _ => return None,
    })
}

/// The text, its parsed tree and its name: what an error needs to say where.
struct Source<'a, 'i> {
    origin: &'a str,
    text: &'a str,
    tree: &'a DeTable<'i>,
}

impl<'i> Source<'_, 'i> {
    /// The key's span (when the path ends in a key) and the value at `path`.
    fn lookup(&self, path: &KeyPath) -> Option<(Option<Range<usize>>, &Spanned<DeValue<'i>>)> {
        let mut segments = path.0.iter();
        let Some(Segment::Key(first)) = segments.next() else {
            return None;
        };
        let (key, mut value) = self.tree.get_key_value(first.as_str())?;
        let mut key_span = Some(key.span());
        for segment in segments {
            match segment {
                Segment::Key(k) => {
                    let (key, v) = value.get_ref().as_table()?.get_key_value(k.as_str())?;
                    key_span = Some(key.span());
                    value = v;
                }
                Segment::Index(i) => {
                    value = value.get_ref().as_array()?.get(*i)?;
                    key_span = None;
                }
            }
        }
        Some((key_span, value))
    }

    fn at(&self, span: Option<Range<usize>>) -> At {
        At(span.map(|s| Location::of(self.text, s.start)))
    }

    /// Where the value at `path` is (for a table of an array, its `[[header]]`).
    fn at_value(&self, path: &KeyPath) -> At {
        self.at(self.lookup(path).map(|(_, v)| v.span()))
    }

    fn invalid(&self, path: KeyPath, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            at: self.at_value(&path),
            path,
            message: message.into(),
        }
    }

    fn de_error(&self, error: serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
        let mut path = KeyPath::from_serde(error.path());
        let inner = error.into_inner();
        let message = inner.message();
        let at = self.at(inner.span());
        let origin = self.origin.to_owned();

        // serde's messages are stable text: "unknown field `x`, expected one of `a`, `b`".
        if let Some((field, rest)) = message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split_once('`'))
        {
            if path.last_key() != Some(field) {
                path = path.key(field);
            }
            return self.unknown_key(path, at, &backticked(rest));
        }
        if let Some((found, expected)) = message
            .strip_prefix("invalid type: ")
            .and_then(|r| r.split_once(", expected "))
        {
            let found = match self.lookup(&path) {
                Some((_, value)) => toml_type(value.get_ref()).to_owned(),
                None => serde_found(found),
            };
            let expected = serde_expected(expected);
            // `[watch]` written for `[[watch]]`.
            let advice = if expected == "an array"
                && found == "a table"
                && ARRAYS_OF_TABLES.contains(&path.schema().as_str())
            {
                format!(" (write `[[{}]]` for each entry)", path.schema())
            } else {
                String::new()
            };
            return ConfigError::WrongType {
                origin,
                path,
                at,
                expected,
                found,
                advice,
            };
        }
        if let Some((value, expected)) = message
            .strip_prefix("invalid value: integer `")
            .and_then(|r| r.split_once("`, expected "))
        {
            if let Some((min, max)) = range_of(&path).or_else(|| type_range(expected)) {
                return ConfigError::OutOfRange {
                    origin,
                    value: value.to_owned(),
                    at: AtLine(at.0.map(|l| l.line)),
                    path,
                    min,
                    max,
                };
            }
        }
        if let Some((variant, rest)) = message
            .strip_prefix("unknown variant `")
            .and_then(|r| r.split_once("`, "))
        {
            let allowed = backticked(rest);
            let advice = nearest(variant, &allowed)
                .map(|near| format!(" — did you mean `{near}`?"))
                .unwrap_or_default();
            return ConfigError::Invalid {
                origin,
                path,
                at,
                message: format!("unknown value `{variant}`, {rest}{advice}"),
            };
        }
        // toml's word for a number or an array where an enumeration's name belongs.
        if message == "wanted string or table" {
            let found = self
                .lookup(&path)
                .map_or("another type", |(_, value)| toml_type(value.get_ref()));
            return ConfigError::WrongType {
                origin,
                path,
                at,
                expected: "a string".into(),
                found: found.into(),
                advice: String::new(),
            };
        }
        let message = match message
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            Some(field) => format!("missing required key `{field}`"),
            None => message.replace('\n', "; "),
        };
        ConfigError::Invalid {
            origin,
            path,
            at,
            message,
        }
    }

    fn unknown_key(&self, path: KeyPath, at: At, valid: &[String]) -> ConfigError {
        let origin = self.origin.to_owned();
        let table = path.parent();
        let key = path.last_key().unwrap_or_default().to_owned();
        if let Some((_, new, why)) = RENAMED.iter().find(|(old, _, _)| *old == path.schema()) {
            return ConfigError::Renamed {
                origin,
                at,
                renamed_to: table.key(new),
                path,
                advice: if why.is_empty() {
                    String::new()
                } else {
                    format!(" — {why}")
                },
            };
        }
        let advice = if let Some(env) = secret_sibling(&key, valid) {
            format!(
                " — did you mean `{env}`? Secrets come from the environment: set it to the name of \
                 the variable that holds the secret"
            )
        } else if let Some(near) = nearest(&key, valid)
            .or_else(|| synonym(&key, valid))
            .or_else(|| part_of(&key, valid))
        {
            format!(" — did you mean `{near}`?")
        } else if let Some(home) = home_of(&key, &table.schema()) {
            format!(" — did you mean `{home}`?")
        } else if valid.is_empty() {
            " (this table takes no keys)".to_owned()
        } else {
            let list: Vec<String> = valid.iter().map(|k| format!("`{k}`")).collect();
            format!(" (valid keys here: {})", list.join(", "))
        };
        ConfigError::UnknownKey {
            origin,
            path,
            at,
            advice,
        }
    }
}

/// The words between backticks: "expected one of `a`, `b`" gives `a` and `b`.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// A TOML value's type, as the error says it.
fn toml_type(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// serde's "expected u64" in TOML's words.
fn serde_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize" => {
            "an integer".into()
        }
        "a string" | "a borrowed string" | "path string" => "a string".into(),
        "a boolean" => "a boolean (true or false)".into(),
        "a sequence" => "an array".into(),
        "f32" | "f64" => "a number".into(),
        e if e.starts_with("struct ") || e.starts_with("a map") || e == "map" => "a table".into(),
        e if e.starts_with("enum ") || e.starts_with("variant ") => "a string".into(),
        other => other.into(),
    }
}

/// serde's "string \"x\"" in TOML's words, without the value.
fn serde_found(found: &str) -> String {
    let kind = found.split(' ').next().unwrap_or(found);
    match kind {
        "string" => "a string",
        "integer" => "an integer",
        "floating" => "a float",
        "boolean" => "a boolean",
        "sequence" => "an array",
        "map" => "a table",
        _ => "another type",
    }
    .into()
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), on characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

fn normalise(key: &str) -> String {
    key.to_ascii_lowercase().replace('-', "_")
}

/// The valid key closest to `key`, when it is close: at most max(2, len/3) edits, and never more
/// than half the key (so `url` does not suggest `at`).
fn nearest(key: &str, valid: &[String]) -> Option<String> {
    let wanted = normalise(key);
    let len = wanted.chars().count();
    let limit = (len / 3).max(2).min(len / 2);
    valid
        .iter()
        .map(|v| (edit_distance(&wanted, &normalise(v)), v))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v.clone())
}

const SECRET_WORDS: &[&str] = &["password", "passwd", "token", "secret", "key", "credential"];

/// For a key that holds a secret (`password`, `health_key`), the `*_env` key beside it.
fn secret_sibling(key: &str, valid: &[String]) -> Option<String> {
    let wanted = format!("{key}_env");
    if valid.contains(&wanted) {
        return Some(wanted);
    }
    let lower = key.to_ascii_lowercase();
    let word = SECRET_WORDS.iter().find(|w| lower.contains(**w))?;
    let envs: Vec<&String> = valid.iter().filter(|v| v.ends_with("_env")).collect();
    // The `_env` key about the same secret, else the table's only `_env` key.
    envs.iter()
        .filter(|v| v.contains(word))
        .min_by_key(|v| edit_distance(&lower, v))
        .or(if envs.len() == 1 { envs.first() } else { None })
        .map(|v| (*v).clone())
}

/// Words people write for a key under another name.
const SYNONYMS: &[(&str, &str)] = &[
    ("type", "kind"),
    ("listen", "bind"),
    ("address", "bind"),
    ("addr", "bind"),
    ("database_url", "url"),
    ("schedule", "cron"),
    ("interval", "every"),
    ("timezone", "tz"),
    ("time_zone", "tz"),
    ("cmd", "command"),
    ("run", "command"),
    ("tags", "groups"),
    ("severity", "min_severity"),
];

fn synonym(key: &str, valid: &[String]) -> Option<String> {
    let key = normalise(key);
    SYNONYMS
        .iter()
        .find(|(word, target)| *word == key && valid.iter().any(|v| v == target))
        .map(|(_, target)| (*target).to_owned())
}

/// The one valid key that has `key` as a whole word at its start or end (`timeout` in
/// `request_timeout`).
fn part_of(key: &str, valid: &[String]) -> Option<String> {
    let key = normalise(key);
    let mut found = valid
        .iter()
        .filter(|v| v.starts_with(&format!("{key}_")) || v.ends_with(&format!("_{key}")));
    let first = found.next()?;
    found.next().is_none().then(|| first.clone())
}

/// The full path of the one other table that has `key` (`[server] stale_processing` belongs in
/// `thresholds`).
fn home_of(key: &str, table: &str) -> Option<String> {
    let mut homes = SCHEMA
        .iter()
        .filter(|(t, keys)| *t != table && keys.contains(&key))
        .map(|(t, _)| {
            if t.is_empty() {
                key.to_owned()
            } else {
                format!("{t}.{key}")
            }
        });
    let home = homes.next()?;
    homes.next().is_none().then_some(home)
}

// ---------------------------------------------------------------------------------------------
// Checks between keys, after deserializing
// ---------------------------------------------------------------------------------------------

fn validate(config: &Config, src: &Source<'_, '_>) -> Result<(), ConfigError> {
    let root = KeyPath::default();
    let range = |path: KeyPath, value: u64| -> Result<(), ConfigError> {
        match range_of(&path) {
            Some((min, max)) if value < min || value > max => Err(ConfigError::OutOfRange {
                origin: src.origin.to_owned(),
                value: value.to_string(),
                at: AtLine(src.at_value(&path).0.map(|l| l.line)),
                path,
                min,
                max,
            }),
            _ => Ok(()),
        }
    };
    let positive = |path: KeyPath, value: Duration| -> Result<(), ConfigError> {
        if value.is_zero() {
            Err(src.invalid(path, "must be longer than zero"))
        } else {
            Ok(())
        }
    };
    let env_name = |path: KeyPath, value: &str| -> Result<(), ConfigError> {
        let mut chars = value.chars();
        let ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            Ok(())
        } else {
            Err(src.invalid(
                path,
                "must be the name of an environment variable (letters, digits and `_`), not the \
                 secret itself",
            ))
        }
    };
    let http_url = |path: KeyPath, value: &str| -> Result<(), ConfigError> {
        if value.starts_with("http://") || value.starts_with("https://") {
            Ok(())
        } else {
            Err(src.invalid(path, "expected an http:// or https:// URL"))
        }
    };
    let non_empty = |path: KeyPath, value: &str| -> Result<(), ConfigError> {
        if value.trim().is_empty() {
            Err(src.invalid(path, "must not be empty"))
        } else {
            Ok(())
        }
    };
    // Names that must be unique within one array of tables.
    // Names that must be unique within one array of tables; `hint` adds to the message for an
    // entry.
    let unique = |table: KeyPath,
                  names: &[&str],
                  what: &str,
                  hint: &dyn Fn(usize) -> &'static str|
     -> Result<(), ConfigError> {
        for (i, name) in names.iter().enumerate() {
            if let Some(first) = names[..i].iter().position(|n| n == name) {
                let line = src
                    .at_value(&table.index(first))
                    .0
                    .map(|l| format!(" at line {}", l.line))
                    .unwrap_or_default();
                return Err(src.invalid(
                    table.index(i),
                    format!(
                        "another {what} is already named `{name}` (the one{line}){}",
                        hint(i)
                    ),
                ));
            }
        }
        Ok(())
    };
    let no_hint = |_: usize| "";

    // [server]
    let server = root.key("server");
    let s = &config.server;
    if !s
        .bind
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
    {
        return Err(src.invalid(
            server.key("bind"),
            "expected ADDRESS:PORT, e.g. 127.0.0.1:8484",
        ));
    }
    env_name(server.key("token_env"), &s.token_env)?;
    range(server.key("max_body_bytes"), s.max_body_bytes as u64)?;
    range(
        server.key("max_events_per_request"),
        s.max_events_per_request as u64,
    )?;
    positive(server.key("request_timeout"), s.request_timeout)?;
    range(server.key("concurrency_limit"), s.concurrency_limit as u64)?;

    // [store]: the store's own parser, so the file accepts exactly what `--store-url` does.
    if let Err(e) = lookout_store::StoreUrl::parse(&config.store.url) {
        let message = match e {
            // Its reason, without the URL (which could hold a password).
            lookout_store::StoreError::InvalidUrl { reason, .. } => reason,
            other => other.to_string(),
        };
        return Err(src.invalid(root.key("store").key("url"), message));
    }

    // [thresholds]
    let thresholds = root.key("thresholds");
    let t = &config.thresholds;
    positive(thresholds.key("stale_processing"), t.stale_processing)?;
    positive(thresholds.key("stale_scan_interval"), t.stale_scan_interval)?;
    positive(thresholds.key("heartbeat_interval"), t.heartbeat_interval)?;
    range(thresholds.key("stall_after"), t.stall_after.into())?;
    range(
        root.key("alerts").key("flap_changes"),
        config.alerts.flap_changes.into(),
    )?;
    positive(
        root.key("alerts").key("repeat_interval"),
        config.alerts.repeat_interval,
    )?;
    positive(
        root.key("alerts").key("flap_window"),
        config.alerts.flap_window,
    )?;
    for (i, q) in config.quiet.iter().enumerate() {
        positive(root.key("quiet").index(i).key("duration"), q.duration)?;
    }

    // [boot]
    let boot = root.key("boot");
    range(
        boot.key("crash_loop_threshold"),
        config.boot.crash_loop_threshold.into(),
    )?;
    positive(boot.key("crash_loop_window"), config.boot.crash_loop_window)?;
    let services = boot.key("services");
    for (i, service) in config.boot.services.iter().enumerate() {
        non_empty(services.index(i).key("name"), &service.name)?;
        range(services.index(i).key("log_lines"), service.log_lines as u64)?;
    }
    let names: Vec<&str> = config
        .boot
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    unique(services, &names, "service", &no_hint)?;

    // [notify]
    let sinks = root.key("notify").key("sinks");
    for (i, sink) in config.notify.sinks.iter().enumerate() {
        let at = sinks.index(i);
        let kind = sink.kind.as_str();
        if let Some(name) = &sink.name {
            non_empty(at.key("name"), name)?;
        }
        if sink.kind.needs_url() {
            match (&sink.url, &sink.url_env) {
                (None, None) => {
                    return Err(src.invalid(
                        at,
                        format!(
                            "a {kind} sink needs `url` (or `url_env`, the variable holding it)"
                        ),
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(src.invalid(at, "set `url` or `url_env`, not both"));
                }
                (Some(url), None) => http_url(at.key("url"), url)?,
                (None, Some(var)) => env_name(at.key("url_env"), var)?,
            }
        } else if sink.url.is_some() || sink.url_env.is_some() {
            let key = if sink.url.is_some() { "url" } else { "url_env" };
            return Err(src.invalid(
                at.key(key),
                format!("a {kind} sink takes no `{key}` (only webhook, slack and callback do)"),
            ));
        }
        match (sink.kind, &sink.path) {
            (SinkKind::File, None) => {
                return Err(src.invalid(at, "a file sink needs `path`"));
            }
            (SinkKind::File, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err(src.invalid(
                    at.key("path"),
                    format!("a {kind} sink takes no `path` (only a file sink does)"),
                ));
            }
        }
    }
    let names: Vec<&str> = config.notify.sinks.iter().map(Sink::name).collect();
    unique(sinks.clone(), &names, "sink", &|i| {
        if config.notify.sinks[i].name.is_none() {
            "; a sink's name defaults to its kind: give each a `name`"
        } else {
            ""
        }
    })?;
    for (i, sink) in config.notify.sinks.iter().enumerate() {
        if let Some(fallback) = &sink.fallback {
            let path = sinks.index(i).key("fallback");
            if fallback == sink.name() {
                return Err(src.invalid(path, "a sink cannot fall back to itself"));
            }
            if !names.contains(&fallback.as_str()) {
                let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                return Err(src.invalid(
                    path,
                    format!("no sink is named `{fallback}` (sinks: {})", list.join(", ")),
                ));
            }
        }
    }

    // [[repos]]
    for (i, repo) in config.repos.iter().enumerate() {
        non_empty(
            root.key("repos").index(i).key("path"),
            &repo.path.to_string_lossy(),
        )?;
    }

    // [gateway]
    let gateway = root.key("gateway");
    if let Some(url) = &config.gateway.health_url {
        http_url(gateway.key("health_url"), url)?;
    }
    if let Some(var) = &config.gateway.health_key_env {
        env_name(gateway.key("health_key_env"), var)?;
    }
    positive(gateway.key("probe_interval"), config.gateway.probe_interval)?;
    for (i, name) in config.gateway.needed_by.iter().enumerate() {
        non_empty(gateway.key("needed_by").index(i), name)?;
    }

    // [[watch]]
    let watch = root.key("watch");
    for (i, target) in config.watch.iter().enumerate() {
        let at = watch.index(i);
        non_empty(at.key("name"), &target.name)?;
        match target.kind {
            WatchKind::Process => {
                if target.pid_file.is_none()
                    && target.heartbeat_file.is_none()
                    && target.version_file.is_none()
                {
                    return Err(src.invalid(
                        at,
                        "a process target needs at least one of `pid_file`, `heartbeat_file` or \
                         `version_file`",
                    ));
                }
            }
            WatchKind::Container => {
                if target.container.is_none() {
                    return Err(src.invalid(at, "a container target needs `container`"));
                }
            }
            WatchKind::Http => match &target.url {
                None => return Err(src.invalid(at, "an http target needs `url`")),
                Some(url) => http_url(at.key("url"), url)?,
            },
        }
        if let Some(expected) = &target.expected_version {
            if !["git:", "file:", "cmd:"]
                .iter()
                .any(|p| expected.starts_with(p) && expected.len() > p.len())
            {
                return Err(src.invalid(
                    at.key("expected_version"),
                    "expected `git:REPO`, `file:PATH` or `cmd:COMMAND`",
                ));
            }
            if target.version_file.is_none() {
                return Err(src.invalid(
                    at.key("expected_version"),
                    "needs `version_file`, where the process writes the version it runs",
                ));
            }
        }
        if let Some(status) = target.expected_status {
            range(at.key("expected_status"), status.into())?;
        }
        positive(at.key("probe_interval"), target.probe_interval)?;
        positive(at.key("stale_after"), target.stale_after)?;
        range(at.key("max_tier_failures"), target.max_tier_failures.into())?;
    }
    let names: Vec<&str> = config.watch.iter().map(|w| w.name.as_str()).collect();
    unique(watch, &names, "target", &no_hint)?;

    // [[jobs]]
    let jobs = root.key("jobs");
    for (i, job) in config.jobs.iter().enumerate() {
        let at = jobs.index(i);
        non_empty(at.key("name"), &job.name)?;
        let schedules: Vec<&str> = [
            ("cron", job.cron.is_some()),
            ("every", job.every.is_some()),
            ("at", job.at.is_some()),
        ]
        .iter()
        .filter(|(_, set)| *set)
        .map(|(key, _)| *key)
        .collect();
        exactly_one(src, &at, &schedules, "`cron`, `every` or `at`")?;
        let actions: Vec<&str> = [
            ("command", job.command.is_some()),
            ("image", job.image.is_some()),
        ]
        .iter()
        .filter(|(_, set)| *set)
        .map(|(key, _)| *key)
        .collect();
        exactly_one(src, &at, &actions, "`command` or `image`")?;
        if job.args.is_some() && job.image.is_none() {
            return Err(src.invalid(
                at.key("args"),
                "`args` is the container's command of an `image` job; a `command` job takes its \
                 arguments in `command`"
                    .to_owned(),
            ));
        }
        if let Some(cron) = &job.cron {
            non_empty(at.key("cron"), cron)?;
        }
        if let Some(every) = job.every {
            positive(at.key("every"), every)?;
        }
        if let Some(timeout) = job.timeout {
            positive(at.key("timeout"), timeout)?;
        }
    }
    let names: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
    unique(jobs, &names, "job", &no_hint)?;
    Ok(())
}

fn exactly_one(
    src: &Source<'_, '_>,
    table: &KeyPath,
    set: &[&str],
    choices: &str,
) -> Result<(), ConfigError> {
    let found = match set {
        [_] => return Ok(()),
        [] => "found none".to_owned(),
        [first, rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|k| format!("`{k}`")).collect();
            format!("found `{first}` and {}", rest.join(" and "))
        }
    };
    Err(src.invalid(
        table.clone(),
        format!("set exactly one of {choices}; {found}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "config.toml";

    fn error(text: &str) -> String {
        match parse(text, ORIGIN) {
            Ok(config) => panic!("expected an error, parsed {config:#?}"),
            Err(e) => e.to_string(),
        }
    }

    // --- defaults and complete files ---------------------------------------------------------

    #[test]
    fn empty_file_is_all_defaults() {
        let config = parse("", ORIGIN).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.server.bind, "127.0.0.1:8484");
        assert_eq!(config.server.token_env, "LOOKOUT_TOKEN");
        assert!(!config.server.status_requires_token);
        assert_eq!(config.server.max_body_bytes, 1_048_576);
        assert_eq!(config.server.max_events_per_request, 1000);
        assert_eq!(config.server.request_timeout, Duration::from_secs(10));
        assert_eq!(config.server.concurrency_limit, 256);
        assert_eq!(config.store.url, "sqlite://lookout.db");
        let t = &config.thresholds;
        assert_eq!(t.stale_processing, Duration::from_secs(600));
        assert_eq!(t.stale_scan_interval, Duration::from_secs(60));
        assert_eq!(t.heartbeat_interval, Duration::from_secs(60));
        assert_eq!(t.delivery_pending, Duration::from_secs(300));
        assert_eq!(t.channel_down, Duration::from_secs(120));
        assert_eq!(t.stall_after, 5);
        assert_eq!(t.deploy_quiet, Duration::from_secs(120));
        assert_eq!(config.boot.crash_loop_threshold, 3);
        assert_eq!(config.boot.crash_loop_window, Duration::from_secs(300));
        assert!(config.boot.services.is_empty());
        assert_eq!(config.notify.fallback_after, Duration::from_secs(120));
        assert!(config.notify.sinks.is_empty());
        assert_eq!(config.repos.len(), 1);
        assert_eq!(config.repos[0].path, PathBuf::from("."));
        assert_eq!(config.gateway, GatewayConfig::default());
        assert!(config.watch.is_empty() && config.jobs.is_empty());
        // Comments and empty tables change nothing.
        assert_eq!(
            parse("# nothing\n[server]\n[notify]\n", ORIGIN).unwrap(),
            Config::default()
        );
    }

    const FULL: &str = r#"
[server]
bind = "0.0.0.0:9000"
token_env = "MY_TOKEN"
status_requires_token = true
max_body_bytes = 2048
max_events_per_request = 50
request_timeout = "1500ms"
concurrency_limit = 8

[store]
url = "postgres://lookout@db/lookout"

[thresholds]
stale_processing = "1h30m"
stale_scan_interval = "30s"
heartbeat_interval = "2m"
delivery_pending = "10m"
channel_down = "1m"
stall_after = 7
deploy_quiet = "5m"

[boot]
crash_loop_threshold = 4
crash_loop_window = "10m"

[[boot.services]]
name = "host"
log_file = "/var/log/host.log"
log_lines = 10
systemd_unit = "host.service"

[notify]
fallback_after = "3m"

[[notify.sinks]]
name = "ops"
kind = "slack"
url_env = "SLACK_WEBHOOK_URL"
groups = ["admin"]
min_severity = "warning"
fallback = "disk"

[[notify.sinks]]
name = "disk"
kind = "file"
path = "alerts.log"

[[notify.sinks]]
kind = "callback"
url = "http://127.0.0.1:3000/lookout"
min_severity = "critical"

[[repos]]
path = "/srv/host"
name = "host"

[gateway]
mode = "litellm"
containers = ["litellm", "litellm-db"]
health_url = "http://127.0.0.1:4000/health"
health_key_env = "LITELLM_KEY"

[[watch]]
name = "gateway"
kind = "http"
url = "http://127.0.0.1:4000/health"
expected_status = 200

[[watch]]
name = "db"
kind = "container"
container = "litellm-db"
cooldown = "1m"
max_tier_failures = 5

[[jobs]]
name = "backup"
cron = "0 3 * * *"
tz = "Europe/London"
command = "backup.sh"
timeout = "20m"
concurrency = "replace"
missed = "catch_up"

[[jobs]]
name = "sweep"
group = "admin"
every = "15m"
image = "local/sweep:1"
concurrency = "allow"
missed = "skip"

[[jobs]]
name = "launch"
at = 2026-12-01T09:00:00+01:00
command = "announce"

[[jobs]]
name = "launch-quoted"
at = "2026-12-01T08:00:00Z"
command = "announce"
"#;

    #[test]
    fn a_full_file_parses_into_the_values_written() {
        let c = parse(FULL, ORIGIN).unwrap();
        assert_eq!(c.server.bind, "0.0.0.0:9000");
        assert!(c.server.status_requires_token);
        assert_eq!(c.server.request_timeout, Duration::from_millis(1500));
        assert_eq!(c.thresholds.stale_processing, Duration::from_secs(5400));
        assert_eq!(c.thresholds.stall_after, 7);
        assert_eq!(c.boot.services[0].log_lines, 10);
        assert_eq!(
            c.boot.services[0].systemd_unit.as_deref(),
            Some("host.service")
        );
        let sinks = &c.notify.sinks;
        assert_eq!(sinks.len(), 3);
        assert_eq!(sinks[0].kind, SinkKind::Slack);
        assert_eq!(sinks[0].min_severity, Severity::Warning);
        assert_eq!(sinks[0].groups.as_deref(), Some(&["admin".to_owned()][..]));
        assert_eq!(sinks[0].fallback.as_deref(), Some("disk"));
        assert_eq!(sinks[2].name(), "callback");
        assert_eq!(sinks[2].min_severity, Severity::Critical);
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
        assert_eq!(c.repos.len(), 1);
        assert_eq!(c.repos[0].name.as_deref(), Some("host"));
        assert_eq!(c.gateway.containers, ["litellm", "litellm-db"]);
        assert_eq!(c.watch[0].kind, WatchKind::Http);
        assert_eq!(c.watch[0].expected_status, Some(200));
        assert_eq!(c.watch[0].probe_interval, Duration::from_secs(5));
        assert_eq!(c.watch[0].stale_after, Duration::from_secs(90));
        assert_eq!(c.watch[1].cooldown, Duration::from_secs(60));
        assert_eq!(c.watch[1].max_tier_failures, 5);
        let jobs = &c.jobs;
        assert_eq!(jobs[0].schedule(), Some(JobSchedule::Cron("0 3 * * *")));
        assert_eq!(jobs[0].action(), Some(JobAction::Command("backup.sh")));
        assert_eq!(jobs[0].tz, "Europe/London");
        assert_eq!(jobs[0].concurrency, ConcurrencyPolicy::Replace);
        assert_eq!(jobs[0].missed, MissedPolicy::CatchUp);
        assert_eq!(jobs[0].timeout, Some(Duration::from_secs(1200)));
        assert_eq!(
            jobs[1].schedule(),
            Some(JobSchedule::Every(Duration::from_secs(900)))
        );
        assert_eq!(jobs[1].action(), Some(JobAction::Image("local/sweep:1")));
        assert_eq!(jobs[1].tz, "UTC");
        let eight_utc: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
        assert_eq!(jobs[2].schedule(), Some(JobSchedule::At(eight_utc)));
        assert_eq!(jobs[3].at, Some(eight_utc));
        assert_eq!(jobs[2].concurrency, ConcurrencyPolicy::Forbid);
        assert_eq!(jobs[2].missed, MissedPolicy::RunOnce);
    }

    #[test]
    fn load_reads_the_file_and_a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lookout.toml");
        std::fs::write(&path, "[server]\nbind = \"127.0.0.1:9999\"\n").unwrap();
        assert_eq!(load(&path).unwrap().server.bind, "127.0.0.1:9999");

        let missing = dir.path().join("missing.toml");
        let e = load(&missing).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "{}: cannot read the configuration file: ",
                missing.display()
            )),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");

        std::fs::write(&path, "[server]\nbnid = 1\n").unwrap();
        assert_eq!(
            load(&path).unwrap_err().to_string(),
            format!(
                "{}: unknown key `server.bnid` at line 2, column 1 — did you mean `bind`?",
                path.display()
            )
        );
    }

    // --- unknown and renamed keys --------------------------------------------------------------

    #[test]
    fn unknown_key_names_path_line_column_and_nearest_key() {
        assert_eq!(
            error("[server]\nbnid = \"0.0.0.0:80\"\n"),
            "config.toml: unknown key `server.bnid` at line 2, column 1 — did you mean `bind`?"
        );
        // Top level (a table header).
        assert_eq!(
            error("[thresholds]\nstale_processing = \"5m\"\n\n[notfy]\nfallback_after = \"1m\"\n"),
            "config.toml: unknown key `notfy` at line 4, column 2 — did you mean `notify`?"
        );
        // Dashes for underscores, any case.
        assert_eq!(
            error("[server]\nMax-Body-Bytes = 4096\n"),
            "config.toml: unknown key `server.Max-Body-Bytes` at line 2, column 1 — did you mean \
             `max_body_bytes`?"
        );
    }

    #[test]
    fn unknown_key_inside_an_array_of_tables_has_its_index() {
        let text = "[[notify.sinks]]\nkind = \"log\"\n\n[[notify.sinks]]\nkind = \"webhook\"\n\
                    urll = \"http://127.0.0.1:9000/hook\"\n";
        assert_eq!(
            error(text),
            "config.toml: unknown key `notify.sinks[1].urll` at line 6, column 1 — did you mean \
             `url`?"
        );
        assert_eq!(
            error("[[jobs]]\nname = \"a\"\ncorn = \"0 3 * * *\"\ncommand = \"x\"\n"),
            "config.toml: unknown key `jobs[0].corn` at line 3, column 1 — did you mean `cron`?"
        );
        // In an inline table, the key's own column.
        assert_eq!(
            error("notify = { sinks = [ { kind = \"log\", nmae = \"x\" } ] }\n"),
            "config.toml: unknown key `notify.sinks[0].nmae` at line 1, column 38 — did you mean \
             `name`?"
        );
    }

    #[test]
    fn a_secret_key_points_to_its_env_sibling_without_echoing_the_secret() {
        let e = error(
            "[gateway]\nhealth_url = \"http://127.0.0.1:4000/health\"\nhealth_key = \"sk-123\"\n",
        );
        assert_eq!(
            e,
            "config.toml: unknown key `gateway.health_key` at line 3, column 1 — did you mean \
             `health_key_env`? Secrets come from the environment: set it to the name of the \
             variable that holds the secret"
        );
        assert!(!e.contains("sk-123"));
        // A secret-looking key with a `*_env` sibling about the same secret.
        assert!(error("[gateway]\napi_key = \"sk-123\"\n").contains(
            "unknown key `gateway.api_key` at line 2, column 1 — did you mean `health_key_env`?"
        ));
    }

    #[test]
    fn a_key_in_the_wrong_table_names_its_home_and_otherwise_the_valid_keys() {
        assert_eq!(
            error("[server]\nstale_processing = \"5m\"\n"),
            "config.toml: unknown key `server.stale_processing` at line 2, column 1 — did you mean \
             `thresholds.stale_processing`?"
        );
        assert_eq!(
            error("[store]\nfoo = 1\n"),
            "config.toml: unknown key `store.foo` at line 2, column 1 (valid keys here: `url`)"
        );
        // A far-off short key suggests nothing rather than something wrong.
        assert!(
            error("[[jobs]]\nname = \"a\"\nurl = \"x\"\n").contains(
                "unknown key `jobs[0].url` at line 3, column 1 (valid keys here: `name`,"
            )
        );
    }

    #[test]
    fn other_names_and_parts_of_a_key_lead_to_it() {
        assert_eq!(
            error("[[notify.sinks]]\ntype = \"log\"\n"),
            "config.toml: unknown key `notify.sinks[0].type` at line 2, column 1 — did you mean \
             `kind`?"
        );
        assert_eq!(
            error("[server]\ntimeout = \"5s\"\n"),
            "config.toml: unknown key `server.timeout` at line 2, column 1 — did you mean \
             `request_timeout`?"
        );
        assert_eq!(
            error("[server]\npassword = \"hunter2\"\n"),
            "config.toml: unknown key `server.password` at line 2, column 1 — did you mean \
             `token_env`? Secrets come from the environment: set it to the name of the variable \
             that holds the secret"
        );
        assert_eq!(
            error("[[watch]]\nname = \"a\"\nkind = 5\n"),
            "config.toml: wrong type for `watch[0].kind` at line 3, column 8: expected a string, \
             found an integer"
        );
    }

    #[test]
    fn renamed_keys_say_what_they_became() {
        assert_eq!(
            error("[thresholds]\nstale_threshold = \"10m\"\n"),
            "config.toml: key `thresholds.stale_threshold` at line 2, column 1 was renamed to \
             `thresholds.stale_processing`"
        );
        let e = error("[server]\ntoken = \"abc123\"\n");
        assert_eq!(
            e,
            "config.toml: key `server.token` at line 2, column 1 was renamed to `server.token_env` \
             — it names the environment variable that holds the token; secrets never go in the file"
        );
        assert!(!e.contains("abc123"));
    }

    // --- values ----------------------------------------------------------------------------------

    #[test]
    fn wrong_type_says_expected_and_found_in_toml_words() {
        let text = "[server]\nbind = \"127.0.0.1:8484\"\ntoken_env = \"LOOKOUT_TOKEN\"\n\
                    max_events_per_request = 10\nmax_body_bytes = \"1MB\"\n";
        assert_eq!(
            error(text),
            "config.toml: wrong type for `server.max_body_bytes` at line 5, column 18: expected an \
             integer, found a string"
        );
        assert_eq!(
            error("[thresholds]\nstale_processing = 600\n"),
            "config.toml: wrong type for `thresholds.stale_processing` at line 2, column 20: \
             expected a duration string such as \"90s\", found an integer"
        );
        assert_eq!(
            error("server = 3\n"),
            "config.toml: wrong type for `server` at line 1, column 10: expected a table, found \
             an integer"
        );
        assert_eq!(
            error("[server]\nstatus_requires_token = \"yes\"\n"),
            "config.toml: wrong type for `server.status_requires_token` at line 2, column 25: \
             expected a boolean (true or false), found a string"
        );
        assert_eq!(
            error("[watch]\nname = \"x\"\n"),
            "config.toml: wrong type for `watch` at line 1, column 1: expected an array, found a \
             table (write `[[watch]]` for each entry)"
        );
        assert_eq!(
            error("[gateway]\ncontainers = \"litellm\"\n"),
            "config.toml: wrong type for `gateway.containers` at line 2, column 14: expected an \
             array, found a string"
        );
    }

    #[test]
    fn a_bad_duration_is_an_error_at_its_key() {
        let text = "# lookout\n\n[server]\nbind = \"127.0.0.1:8484\"\n\n[store]\nurl = \
                    \"sqlite://lookout.db\"\n\n[thresholds]\nstale_processing = \"10y\"\n";
        // Nine lines before it.
        let text = text.replacen("# lookout\n\n", "# lookout\n", 1);
        assert_eq!(
            error(&text),
            "config.toml: `thresholds.stale_processing` at line 9, column 20: unknown unit `y` \
             (ms, s, m, h or d)"
        );
        assert_eq!(
            error(
                "[[watch]]\nname = \"w\"\nkind = \"container\"\ncontainer = \"c\"\nprobe_interval = \"5\"\n"
            ),
            "config.toml: `watch[0].probe_interval` at line 5, column 18: missing unit after 5 \
             (ms, s, m, h or d)"
        );
        assert_eq!(
            error(
                "[[watch]]\nname = \"w\"\nkind = \"container\"\ncontainer = \"c\"\nprobe_interval = \"0s\"\n"
            ),
            "config.toml: `watch[0].probe_interval` at line 5, column 18: must be longer than zero"
        );
    }

    #[test]
    fn out_of_range_names_the_value_line_and_range() {
        assert_eq!(
            error("[server]\nbind = \"127.0.0.1:8484\"\n\nmax_events_per_request = 0\n"),
            "config.toml: `server.max_events_per_request` = 0 at line 4 is out of range (1..=100000)"
        );
        assert_eq!(
            error("[server]\nmax_body_bytes = -1\n"),
            "config.toml: `server.max_body_bytes` = -1 at line 2 is out of range (1024..=67108864)"
        );
        assert_eq!(
            error("[[boot.services]]\nname = \"host\"\nlog_lines = 51\n"),
            "config.toml: `boot.services[0].log_lines` = 51 at line 3 is out of range (1..=50)"
        );
        assert_eq!(
            error(
                "[[watch]]\nname = \"api\"\nkind = \"http\"\nurl = \"http://127.0.0.1/\"\nexpected_status = 70000\n"
            ),
            "config.toml: `watch[0].expected_status` = 70000 at line 5 is out of range (100..=599)"
        );
        assert_eq!(
            error("[thresholds]\nstall_after = 1001\n"),
            "config.toml: `thresholds.stall_after` = 1001 at line 2 is out of range (1..=1000)"
        );
    }

    #[test]
    fn a_wrong_enum_value_lists_the_allowed_ones() {
        assert_eq!(
            error("[[notify.sinks]]\nkind = \"webhok\"\nurl = \"http://127.0.0.1/\"\n"),
            "config.toml: `notify.sinks[0].kind` at line 2, column 8: unknown value `webhok`, \
             expected one of `log`, `webhook`, `slack`, `file`, `callback` — did you mean \
             `webhook`?"
        );
        assert_eq!(
            error("[[jobs]]\nname = \"a\"\nevery = \"1m\"\ncommand = \"x\"\nmissed = \"never\"\n"),
            "config.toml: `jobs[0].missed` at line 5, column 10: unknown value `never`, expected \
             one of `skip`, `run_once`, `catch_up`"
        );
    }

    #[test]
    fn a_missing_required_key_points_at_its_table() {
        assert_eq!(
            error("[[watch]]\nkind = \"process\"\npid_file = \"run/x.pid\"\n"),
            "config.toml: `watch[0]` at line 1, column 1: missing required key `name`"
        );
        assert_eq!(
            error("[[repos]]\npath = \".\"\n\n[[repos]]\nname = \"x\"\n"),
            "config.toml: `repos[1]` at line 4, column 1: missing required key `path`"
        );
    }

    #[test]
    fn at_must_be_an_instant_with_an_offset() {
        let e = error("[[jobs]]\nname = \"a\"\nat = 2026-12-01T09:00:00\ncommand = \"x\"\n");
        assert!(
            e.starts_with(
                "config.toml: `jobs[0].at` at line 3, column 6: not an RFC 3339 instant ("
            ),
            "{e}"
        );
    }

    // --- rules between keys ----------------------------------------------------------------------

    #[test]
    fn a_sink_missing_its_url_or_path_is_an_error() {
        let text = "[[notify.sinks]]\nkind = \"log\"\n\n[[notify.sinks]]\nname = \"ops\"\nkind = \
                    \"webhook\"\n";
        assert_eq!(
            error(text),
            "config.toml: `notify.sinks[1]` at line 4, column 1: a webhook sink needs `url` (or \
             `url_env`, the variable holding it)"
        );
        assert_eq!(
            error("[[notify.sinks]]\nkind = \"file\"\n"),
            "config.toml: `notify.sinks[0]` at line 1, column 1: a file sink needs `path`"
        );
        assert_eq!(
            error("[[notify.sinks]]\nkind = \"slack\"\nurl = \"http://x/\"\nurl_env = \"SLACK\"\n"),
            "config.toml: `notify.sinks[0]` at line 1, column 1: set `url` or `url_env`, not both"
        );
        assert_eq!(
            error("[[notify.sinks]]\nkind = \"log\"\npath = \"a.log\"\n"),
            "config.toml: `notify.sinks[0].path` at line 3, column 8: a log sink takes no `path` \
             (only a file sink does)"
        );
        let e = error(
            "[[notify.sinks]]\nkind = \"slack\"\nurl_env = \"https://hooks.example/T0/B0/xyz\"\n",
        );
        assert_eq!(
            e,
            "config.toml: `notify.sinks[0].url_env` at line 3, column 11: must be the name of an \
             environment variable (letters, digits and `_`), not the secret itself"
        );
        assert!(!e.contains("xyz"));
    }

    #[test]
    fn a_fallback_must_name_another_sink() {
        let text = "[[notify.sinks]]\nname = \"ops\"\nkind = \"slack\"\nurl_env = \
                    \"SLACK_WEBHOOK\"\nfallback = \"pager\"\n";
        assert_eq!(
            error(text),
            "config.toml: `notify.sinks[0].fallback` at line 5, column 12: no sink is named \
             `pager` (sinks: `ops`)"
        );
        assert_eq!(
            error("[[notify.sinks]]\nkind = \"log\"\nfallback = \"log\"\n"),
            "config.toml: `notify.sinks[0].fallback` at line 3, column 12: a sink cannot fall back \
             to itself"
        );
        assert_eq!(
            error("[[notify.sinks]]\nkind = \"log\"\n[[notify.sinks]]\nkind = \"log\"\n"),
            "config.toml: `notify.sinks[1]` at line 3, column 1: another sink is already named \
             `log` (the one at line 1); a sink's name defaults to its kind: give each a `name`"
        );
        assert_eq!(
            error(
                "[[notify.sinks]]\nname = \"a\"\nkind = \"log\"\n[[notify.sinks]]\nname = \"a\"\nkind = \"file\"\npath = \"x\"\n"
            ),
            "config.toml: `notify.sinks[1]` at line 4, column 1: another sink is already named \
             `a` (the one at line 1)"
        );
    }

    #[test]
    fn a_job_has_exactly_one_schedule_and_one_action() {
        let text = "[[jobs]]\nname = \"backup\"\ncron = \"0 3 * * *\"\nevery = \"15m\"\ncommand = \
                    \"backup.sh\"\n";
        assert_eq!(
            error(text),
            "config.toml: `jobs[0]` at line 1, column 1: set exactly one of `cron`, `every` or \
             `at`; found `cron` and `every`"
        );
        assert_eq!(
            error("[[jobs]]\nname = \"backup\"\ncommand = \"backup.sh\"\n"),
            "config.toml: `jobs[0]` at line 1, column 1: set exactly one of `cron`, `every` or \
             `at`; found none"
        );
        assert_eq!(
            error("[[jobs]]\nname = \"b\"\nevery = \"1h\"\ncommand = \"x\"\nargs = [\"y\"]\n"),
            "config.toml: `jobs[0].args` at line 5, column 8: `args` is the container's command of \
             an `image` job; a `command` job takes its arguments in `command`"
        );
        assert_eq!(
            error("[[jobs]]\nname = \"backup\"\nevery = \"15m\"\n"),
            "config.toml: `jobs[0]` at line 1, column 1: set exactly one of `command` or `image`; \
             found none"
        );
        assert_eq!(
            error(
                "[[jobs]]\nname = \"a\"\nevery = \"1m\"\nimage = \"i\"\n\n[[jobs]]\nname = \"a\"\nevery = \"1m\"\nimage = \"i\"\n"
            ),
            "config.toml: `jobs[1]` at line 6, column 1: another job is already named `a` (the \
             one at line 1)"
        );
    }

    #[test]
    fn watch_targets_need_what_their_kind_observes() {
        assert_eq!(
            error("[[watch]]\nname = \"bridge\"\nkind = \"process\"\n"),
            "config.toml: `watch[0]` at line 1, column 1: a process target needs at least one of \
             `pid_file`, `heartbeat_file` or `version_file`"
        );
        assert_eq!(
            error(
                "[[watch]]\nname = \"b\"\nkind = \"process\"\nversion_file = \"v\"\nexpected_version = \"HEAD\"\n"
            ),
            "config.toml: `watch[0].expected_version` at line 5, column 20: expected `git:REPO`, \
             `file:PATH` or `cmd:COMMAND`"
        );
        assert_eq!(
            error(
                "[[watch]]\nname = \"b\"\nkind = \"process\"\npid_file = \"p\"\nexpected_version = \"git:.\"\n"
            ),
            "config.toml: `watch[0].expected_version` at line 5, column 20: needs `version_file`, \
             where the process writes the version it runs"
        );
        assert_eq!(
            error("[[watch]]\nname = \"api\"\nkind = \"http\"\nurl = \"127.0.0.1:80\"\n"),
            "config.toml: `watch[0].url` at line 4, column 7: expected an http:// or https:// URL"
        );
    }

    #[test]
    fn server_and_store_values_are_checked() {
        assert_eq!(
            error("[server]\nbind = \"localhost\"\n"),
            "config.toml: `server.bind` at line 2, column 8: expected ADDRESS:PORT, e.g. \
             127.0.0.1:8484"
        );
        let e = error("[store]\nurl = \"mysql://root:hunter2@db/x\"\n");
        assert_eq!(
            e,
            "config.toml: `store.url` at line 2, column 7: unknown scheme `mysql`; expected \
             sqlite://PATH or postgres://USER@HOST/DB"
        );
        assert!(!e.contains("hunter2"));
        let e = error("[store]\nurl = \"postgres://u:hunter2@db:notaport/x\"\n");
        assert!(
            e.starts_with(
                "config.toml: `store.url` at line 2, column 7: not a valid PostgreSQL URL"
            ),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(
            parse("[store]\nurl = \"postgres://lookout@db/lookout\"\n", ORIGIN)
                .unwrap()
                .store
                .url,
            "postgres://lookout@db/lookout"
        );
    }

    // --- syntax ----------------------------------------------------------------------------------

    #[test]
    fn bad_toml_names_its_line_and_column() {
        assert_eq!(
            error("[server]\nbind = \n"),
            "config.toml: invalid TOML at line 2, column 8: string values must be quoted, expected \
             literal string"
        );
        assert_eq!(
            error("[server]\nbind = 'a'\nbind = 'b'\n"),
            "config.toml: invalid TOML at line 3, column 1: duplicate key `bind`"
        );
        let e = error("[server\nbind = 'a'\n");
        assert!(
            e.starts_with("config.toml: invalid TOML at line 1, column "),
            "{e}"
        );
        for message in [e, error("x = \"unterminated\n")] {
            assert!(!message.contains('\n'), "{message}");
        }
    }

    // --- helpers -------------------------------------------------------------------------------

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("bnid", "bind"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("ünï", "ün"), 1);
        let valid: Vec<String> = ["at", "name", "cron"].map(String::from).to_vec();
        assert_eq!(nearest("corn", &valid).as_deref(), Some("cron"));
        assert_eq!(nearest("url", &valid), None);
        assert_eq!(nearest("x", &valid), None);
    }

    #[test]
    fn locations_are_one_based_and_count_characters() {
        let text = "é = 1\nab = 2\n";
        assert_eq!(Location::of(text, 0), Location { line: 1, column: 1 });
        assert_eq!(Location::of(text, 2), Location { line: 1, column: 2 });
        assert_eq!(Location::of(text, 7), Location { line: 2, column: 1 });
        assert_eq!(Location::of(text, 8), Location { line: 2, column: 2 });
        assert_eq!(
            Location::of(text, text.len()),
            Location { line: 3, column: 1 }
        );
    }

    // --- the schema, the docs and the examples -------------------------------------------------

    /// The raw serde message for an unknown key placed in `table`.
    fn expected_keys_of(table: &str) -> Vec<String> {
        let text = if table.is_empty() {
            "zz_not_a_key = 1\n".to_owned()
        } else if ARRAYS_OF_TABLES.contains(&table) {
            format!("[[{table}]]\nzz_not_a_key = 1\n")
        } else {
            format!("[{table}]\nzz_not_a_key = 1\n")
        };
        let tree = DeTable::parse(&text).unwrap();
        let e = serde_path_to_error::deserialize::<_, Config>(toml::de::Deserializer::from(tree))
            .unwrap_err();
        let message = e.inner().message().to_owned();
        let rest = message
            .strip_prefix("unknown field `zz_not_a_key`, ")
            .unwrap_or_else(|| panic!("{table}: {message}"));
        backticked(rest)
    }

    #[test]
    fn the_schema_table_matches_the_structs() {
        for (table, keys) in SCHEMA {
            let mut from_structs = expected_keys_of(table);
            let mut listed: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
            from_structs.sort();
            listed.sort();
            assert_eq!(from_structs, listed, "keys of `{table}`");
        }
        for (key, _, _) in RANGES {
            let (table, name) = key.rsplit_once('.').unwrap();
            let keys = SCHEMA.iter().find(|(t, _)| *t == table).unwrap().1;
            assert!(keys.contains(&name), "{key}");
        }
        for (old, new, _) in RENAMED {
            let (table, name) = old.rsplit_once('.').unwrap();
            let keys = SCHEMA.iter().find(|(t, _)| *t == table).unwrap().1;
            assert!(!keys.contains(&name) && keys.contains(new), "{old}");
        }
    }

    fn toml_blocks(markdown: &str) -> Vec<String> {
        let mut blocks = Vec::new();
        let mut current: Option<String> = None;
        for line in markdown.lines() {
            match &mut current {
                None if line.trim_start() == "```toml" => current = Some(String::new()),
                Some(block) if line.trim_start() == "```" => {
                    blocks.push(std::mem::take(block));
                    current = None;
                }
                Some(block) => {
                    block.push_str(line);
                    block.push('\n');
                }
                None => {}
            }
        }
        assert!(current.is_none(), "an unclosed ```toml block");
        blocks
    }

    /// Every key path (without indices) written in a TOML text.
    fn key_paths(text: &str) -> std::collections::BTreeSet<String> {
        fn walk(table: &DeTable<'_>, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
            for (key, value) in table.iter() {
                let path = if prefix.is_empty() {
                    key.get_ref().to_string()
                } else {
                    format!("{prefix}.{}", key.get_ref())
                };
                match value.get_ref() {
                    DeValue::Table(t) => walk(t, &path, out),
                    DeValue::Array(a) => {
                        for item in a.iter() {
                            if let DeValue::Table(t) = item.get_ref() {
                                walk(t, &path, out);
                            }
                        }
                    }
                    _ => {}
                }
                out.insert(path);
            }
        }
        let mut out = std::collections::BTreeSet::new();
        walk(DeTable::parse(text).unwrap().get_ref(), "", &mut out);
        out
    }

    const DOC: &str = include_str!("../../../docs/configuration.md");

    #[test]
    fn every_toml_block_of_the_docs_parses_and_together_they_set_every_key() {
        let blocks = toml_blocks(DOC);
        assert!(blocks.len() >= 2, "the docs have TOML examples");
        let mut written = std::collections::BTreeSet::new();
        for (i, block) in blocks.iter().enumerate() {
            if let Err(e) = parse(block, &format!("docs/configuration.md block {i}")) {
                panic!("{e}\n{block}");
            }
            written.extend(key_paths(block));
        }
        for (table, keys) in SCHEMA {
            for key in *keys {
                let path = if table.is_empty() {
                    (*key).to_owned()
                } else {
                    format!("{table}.{key}")
                };
                assert!(
                    written.contains(&path),
                    "`{path}` appears in no TOML example of the docs"
                );
            }
        }
    }

    #[test]
    fn every_key_has_a_row_in_its_section_of_the_docs() {
        let sections: Vec<&str> = DOC.split("\n## ").collect();
        for (table, keys) in SCHEMA.iter().filter(|(t, _)| !t.is_empty()) {
            let headings = [format!("`[{table}]`"), format!("`[[{table}]]`")];
            let section = sections
                .iter()
                .find(|s| {
                    let heading = s.lines().next().unwrap_or_default();
                    headings.iter().any(|h| heading.contains(h.as_str()))
                })
                .unwrap_or_else(|| panic!("no section `{table}` in docs/configuration.md"));
            for key in *keys {
                assert!(
                    section.contains(&format!("| `{key}` |")),
                    "`{table}.{key}` has no row in its section of docs/configuration.md"
                );
            }
        }
    }

    #[test]
    fn the_example_files_parse() {
        let chat = parse(
            include_str!("../../../examples/chat-host.toml"),
            "chat-host.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(chat.gateway.containers, ["litellm", "litellm-db"]);
        assert!(chat.gateway.health_url.is_some());
        assert!(
            chat.notify
                .sinks
                .iter()
                .any(|s| s.kind == SinkKind::Webhook)
        );
        assert!(!chat.repos.is_empty() && !chat.jobs.is_empty());

        let bridge = parse(
            include_str!("../../../examples/bridge-runner.toml"),
            "bridge-runner.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(bridge.watch.len() >= 2);
        for target in &bridge.watch {
            assert_eq!(target.kind, WatchKind::Process);
            assert!(target.pid_file.is_some() && target.heartbeat_file.is_some());
            assert!(target.version_file.is_some() && target.restart_marker.is_some());
            assert!(target.start.is_some());
        }
    }
}
