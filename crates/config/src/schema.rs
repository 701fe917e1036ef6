//! The configuration itself: one struct per table, each with its defaults, and the deserializers
//! of the values TOML has no type for (durations, instants).
//!
//! The structs are the one description of the file: the key table (`keys.rs`) is derived
//! from their serde derives, so a field added here is a key everywhere (suggestions included).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::duration::parse_duration;
pub(crate) use crate::flow::FlowConfig;
pub(crate) use crate::logs::LogRule;
pub use crate::notify::{IncidentsConfig, NotifyConfig, SelfCheckConfig, Sink, SinkKind};
#[cfg(doc)]
use crate::parse;

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
    /// `[ingest]`: what `POST /api/events` accepts.
    pub ingest: IngestConfig,
    /// `[selfcheck]`: the dead man's switch lookoutd pings.
    pub selfcheck: SelfCheckConfig,
    /// `[incidents]`: how long incidents are kept.
    pub incidents: IncidentsConfig,
    /// `[flow]`: quiet channels and unanswered messages.
    pub flow: FlowConfig,
    /// `[[logs]]`: log rules, each a pattern watched for in a file or a container's output.
    pub logs: Vec<LogRule>,
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
            ingest: IngestConfig::default(),
            selfcheck: SelfCheckConfig::default(),
            incidents: IncidentsConfig::default(),
            flow: FlowConfig::default(),
            logs: Vec::new(),
        }
    }
}

/// `[ingest]`: what `POST /api/events` accepts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// An event whose time (`at`, or a time field of its kind) is further ahead of lookoutd's
    /// clock than this is refused with a 400 naming the field.
    #[serde(deserialize_with = "duration")]
    pub max_skew: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_skew: Duration::from_secs(300),
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
    /// Keep each repository's report and recompute it only when a file-system notification says
    /// one of its trees changed (`false`: read every repository on every collection).
    pub watch_repos: bool,
    /// With `watch_repos`, a kept report older than this is recomputed anyway (the safety net for
    /// changes no notification reports).
    #[serde(deserialize_with = "duration")]
    pub rescan_interval: Duration,
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            section_timeout: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(1),
            watch_repos: true,
            rescan_interval: Duration::from_secs(60),
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
    /// Containers followed through the engine's event stream, besides the `[[watch]]` container
    /// targets and the gateway's containers: a name, a name pattern with `*`, or
    /// `label:KEY[=VALUE]`.
    pub watch: Vec<String>,
    /// How many starts of one container within `restart_loop_window` are a restart loop (one
    /// alert, not one per restart).
    pub restart_loop_count: u32,
    /// See `restart_loop_count`.
    #[serde(deserialize_with = "duration")]
    pub restart_loop_window: Duration,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            socket: "unix:///var/run/docker.sock".into(),
            watch: Vec::new(),
            restart_loop_count: 3,
            restart_loop_window: Duration::from_secs(5 * 60),
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
    /// A message with no `batch_dispatched` or `bot_response` for its chat this long is
    /// unanswered (0s: never judged).
    #[serde(deserialize_with = "duration")]
    pub answer_within: Duration,
    /// A `delivery_sent` with no `delivery_confirmed` this long is unconfirmed, for a host that
    /// reports confirmations (0s: never judged).
    #[serde(deserialize_with = "duration")]
    pub confirm_within: Duration,
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
            answer_within: Duration::from_secs(10 * 60),
            confirm_within: Duration::from_secs(5 * 60),
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

/// How serious an alert is; a sink takes those at or above its `min_severity` (lookout-common's).
pub use lookout_common::Severity;

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

pub(crate) fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_str(DurationVisitor)
}

pub(crate) fn optional_duration<'de, D: Deserializer<'de>>(
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
