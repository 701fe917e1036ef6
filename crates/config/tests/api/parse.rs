//! Defaults, complete files, `load`, and the example files.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_config::{
    ConcurrencyPolicy, Config, GatewayConfig, JobAction, JobSchedule, MissedPolicy, Severity,
    SinkKind, WatchKind, load, parse,
};

use crate::ORIGIN;

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

#[test]
fn the_example_files_parse() {
    let chat = parse(
        include_str!("../../../../examples/chat-host.toml"),
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
        include_str!("../../../../examples/bridge-runner.toml"),
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
