//! `GET /api/doctor`: every check the running configuration implies, each with a fix a person can
//! apply. Checks only look; none sends a notification or changes anything.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lookout_config::{Config, SinkKind, WatchKind};
use lookout_store::Store;
use serde::Serialize;

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    pub(crate) name: String,
    /// `ok`, `warn` or `fail`.
    pub(crate) status: &'static str,
    pub(crate) detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fix: Option<String>,
}

fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status: "ok",
        detail: detail.into(),
        fix: None,
    }
}

fn bad(
    status: &'static str,
    name: impl Into<String>,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// What the checks need.
pub(crate) struct DoctorInput<'a> {
    pub(crate) config: &'a Config,
    pub(crate) config_path: Option<&'a Path>,
    pub(crate) state_dir: &'a Path,
    pub(crate) store: &'a Store,
    /// The self-check's last ping, when `[selfcheck]` pings.
    pub(crate) selfcheck: Option<crate::selfcheck::LastPing>,
    /// The Docker event stream's state, when containers are followed.
    pub(crate) docker_stream: Option<crate::docker_stream::StreamState>,
    /// The host's open runs lookoutd follows.
    pub(crate) host_runs: Vec<crate::host_runs::RunStatus>,
}

pub(crate) async fn run(input: DoctorInput<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    let c = input.config;
    checks.push(match input.config_path {
        Some(p) => match crate::checks::load_config(p) {
            Ok(_) => ok("config", format!("{} is valid", p.display())),
            Err(e) => bad("fail", "config", e.to_string(), "fix the key named, then `kill -HUP` lookoutd (the running configuration stays until then)"),
        },
        None => ok("config", "no file: every key has its default (docs/configuration.md)"),
    });
    checks.push(match input.store.ping().await {
        Ok(()) => match migrated(input.store).await {
            Ok((applied, embedded)) if applied >= embedded => ok(
                "store",
                format!(
                    "{} reachable, {applied} migrations applied",
                    input.store.display_url()
                ),
            ),
            Ok((applied, embedded)) => bad(
                "fail",
                "store",
                format!("{applied} of {embedded} migrations applied"),
                "restart lookoutd: it applies the missing migrations at start",
            ),
            Err(e) => bad(
                "warn",
                "store",
                format!("reachable; migrations unknown: {e}"),
                "check the database user may read _sqlx_migrations",
            ),
        },
        Err(e) => bad(
            "fail",
            "store",
            e.to_string(),
            "check store.url and that the database is up",
        ),
    });
    checks.push(writable("state directory", input.state_dir));
    for (i, s) in c.notify.sinks.iter().enumerate() {
        let name = format!("sink {} ({})", s.name(), s.kind.as_str());
        checks.push(sink(i, s, name).await);
    }
    if let Some(check) = selfcheck(c, input.selfcheck) {
        checks.push(check);
    }
    checks.extend(crate::flow::doctor(input.store, c, chrono::Utc::now()).await);
    match input.store.dead_notification_count().await {
        Ok(0) => {}
        Ok(n) => checks.push(bad(
            "warn",
            "notifications",
            format!("{n} notification(s) could not be delivered"),
            "see the dead letters in /status; fix the sink they were for",
        )),
        Err(e) => checks.push(bad(
            "warn",
            "notifications",
            e.to_string(),
            "check the store",
        )),
    }
    for r in &c.repos {
        let name = format!(
            "repo {}",
            r.name
                .clone()
                .unwrap_or_else(|| r.path.display().to_string())
        );
        checks.push(if r.path.join(".git").exists() {
            ok(name, format!("{} is a git repository", r.path.display()))
        } else {
            bad("warn", name, format!("{} has no .git", r.path.display()), "fix the [[repos]] path (the default is the directory lookoutd runs in), or list the repositories to watch")
        });
    }
    let wants_docker = !c.gateway.containers.is_empty()
        || !c.docker.watch.is_empty()
        || c.watch
            .iter()
            .any(|w| matches!(w.kind, WatchKind::Container))
        || c.jobs.iter().any(|j| j.image.is_some())
        || c.logs.iter().any(|l| l.container.is_some());
    if wants_docker {
        let sock = PathBuf::from(c.docker.socket.trim_start_matches("unix://"));
        checks.push(match tokio::net::UnixStream::connect(&sock).await {
            Ok(_) => ok("docker", format!("{} accepts connections", sock.display())),
            Err(e) => bad(
                "fail",
                "docker",
                format!("{}: {e}", sock.display()),
                "start the Docker engine, give lookoutd access to its socket (the docker group), or set docker.socket",
            ),
        });
    }
    if let Some(stream) = &input.docker_stream {
        checks.push(crate::docker_stream::doctor(stream));
    }
    if let Some(check) = crate::host_runs::doctor(&input.host_runs) {
        checks.push(check);
    }
    if c.gateway.is_checked() {
        // The same collection and the same rule as the `gateway_down` alert.
        let section = crate::status::gateway_section(c);
        let limit = c.gateway.health_timeout + Duration::from_secs(5);
        let collected =
            tokio::time::timeout(limit, lookout_status_collect::Collector::collect(&section))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {}s", limit.as_secs()).into()));
        checks.push(match crate::gateway::down_reasons(&collected) {
            None => ok("gateway", "its containers run and its health endpoint answers healthy"),
            Some(reasons) => bad(
                "fail",
                "gateway",
                reasons.join("; "),
                "check the gateway's containers (`docker ps -a`, `docker logs`), its health URL and the key in gateway.health_key_env",
            ),
        });
    }
    for w in c
        .watch
        .iter()
        .filter(|w| matches!(w.kind, WatchKind::Process))
    {
        let name = format!("watch {}", w.name);
        let missing: Vec<String> = [&w.pid_file, &w.heartbeat_file]
            .into_iter()
            .flatten()
            .filter(|p| !p.exists())
            .map(|p| p.display().to_string())
            .collect();
        checks.push(if missing.is_empty() {
            ok(name, "its pid and heartbeat files are there")
        } else {
            bad(
                "warn",
                name,
                format!("missing: {}", missing.join(", ")),
                "start the target, or fix the paths in its [[watch]] entry",
            )
        });
    }
    for rule in &c.logs {
        checks.push(crate::logs::doctor(rule, &c.docker.socket).await);
    }
    checks
}

async fn migrated(store: &Store) -> Result<(i64, i64), String> {
    let embedded = match store.backend() {
        lookout_store::Backend::Sqlite => lookout_store::SQLITE_MIGRATOR.iter().count(),
        lookout_store::Backend::Postgres => lookout_store::POSTGRES_MIGRATOR.iter().count(),
    } as i64;
    let applied = store
        .applied_migrations()
        .await
        .map_err(|e| e.to_string())?;
    Ok((applied, embedded))
}

fn writable(name: &str, dir: &Path) -> Check {
    let probe = dir.join(format!(".lookout-doctor-{}", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            ok(name, format!("{} is writable", dir.display()))
        }
        Err(e) => bad(
            "fail",
            name,
            format!("{}: {e}", dir.display()),
            "create the directory or give lookoutd's user write access",
        ),
    }
}

/// Connects to the URL's host and port (2 s); sends nothing.
/// One sink's check: what it needs from the environment is set, and its server accepts
/// connections (nothing is sent: `lookout notify test SINK` does that).
async fn sink(i: usize, s: &lookout_config::Sink, name: String) -> Check {
    let unset = |key: &str, var: &str| {
        bad(
            "fail",
            name.clone(),
            format!("`{var}` ({key}) is not set in lookoutd's environment"),
            format!("export {var} for lookoutd (notify.sinks[{i}].{key}), then restart"),
        )
    };
    for (key, var) in [
        ("token_env", &s.token_env),
        ("username_env", &s.username_env),
        ("password_env", &s.password_env),
        ("urls_env", &s.urls_env),
        ("url_env", &s.url_env),
    ] {
        if let Some(var) = var.as_deref().filter(|v| std::env::var(v).is_err()) {
            return unset(key, var);
        }
    }
    let server = match s.kind {
        SinkKind::Log => return ok(name, "lookoutd's log"),
        SinkKind::File => {
            let Some(p) = &s.path else {
                return bad(
                    "fail",
                    name,
                    "no path",
                    format!("set notify.sinks[{i}].path"),
                );
            };
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
            return writable(&name, dir.unwrap_or(Path::new(".")));
        }
        SinkKind::Apprise => {
            let program = s.command.as_deref().unwrap_or("apprise");
            return match crate::checks::find_program(program) {
                Some(path) => ok(name, format!("{} is there", path.display())),
                None => bad(
                    "fail",
                    name,
                    format!("the Apprise program `{program}` is not found"),
                    "install it (`apt-get install apprise` or `pip install apprise`), or set its path in `command`",
                ),
            };
        }
        SinkKind::Telegram => s
            .api_url
            .clone()
            .unwrap_or_else(|| crate::wiring::TELEGRAM_API_URL.to_owned()),
        SinkKind::Email => {
            // smtp:// (STARTTLS) on 587, smtps:// on 465, smtp+plain:// on 25, unless a port is given.
            let url = s.smtp_url.clone().unwrap_or_default();
            let (scheme, rest) = url.split_once("://").unwrap_or(("smtp", &url));
            let host = rest.split(['/', '?']).next().unwrap_or(rest);
            let has_port = host
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
            let port = match scheme {
                "smtps" => 465,
                "smtp+plain" => 25,
                _ => 587,
            };
            if has_port {
                format!("tcp://{host}")
            } else {
                format!("tcp://{host}:{port}")
            }
        }
        SinkKind::Webhook
        | SinkKind::Slack
        | SinkKind::Callback
        | SinkKind::Ntfy
        | SinkKind::Discord => {
            match s
                .url
                .clone()
                .or_else(|| s.url_env.as_ref().and_then(|v| std::env::var(v).ok()))
            {
                Some(u) => u,
                None => return bad("fail", name, "no URL", format!("set notify.sinks[{i}].url")),
            }
        }
    };
    match reachable(&server).await {
        Ok(addr) => ok(name, format!("{addr} accepts connections")),
        Err(e) => bad(
            "fail",
            name,
            e,
            "start the receiver or fix the URL; notifications wait in the outbox meanwhile",
        ),
    }
}

/// The self-check's last ping: a failed one, or none for two intervals, is a warning (the switch
/// outside is about to fire).
fn selfcheck(c: &Config, last: Option<crate::selfcheck::LastPing>) -> Option<Check> {
    if c.selfcheck.ping_url.is_none() && c.selfcheck.ping_url_env.is_none() {
        return None;
    }
    let interval = c.selfcheck.ping_interval;
    let fix = "check that the switch's URL answers (curl it), and lookoutd's log for `selfcheck`";
    Some(match last {
        None => bad("warn", "selfcheck", "no ping yet", fix),
        Some(p) => {
            let age = chrono::Utc::now() - p.at;
            let ago = lookout_common::human_age(age);
            match p.error {
                Some(e) => bad(
                    "warn",
                    "selfcheck",
                    format!("last ping {ago} ago failed: {e}"),
                    fix,
                ),
                None if age.to_std().is_ok_and(|a| a > interval * 2) => bad(
                    "warn",
                    "selfcheck",
                    format!("last ping {ago} ago (every {}s)", interval.as_secs()),
                    fix,
                ),
                None if p.failing => bad(
                    "warn",
                    "selfcheck",
                    format!("last ping {ago} ago reported a failure: {}", p.detail),
                    "see lookoutd's log: a loop stalled or the store did not answer",
                ),
                None => ok(
                    "selfcheck",
                    format!("last ping {ago} ago succeeded ({})", p.detail),
                ),
            }
        }
    })
}

async fn reachable(url: &str) -> Result<String, String> {
    let rest = url.split_once("://").map(|x| x.1).unwrap_or(url);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map(|x| x.1).unwrap_or(authority);
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else if url.starts_with("https") {
        format!("{authority}:443")
    } else {
        format!("{authority}:80")
    };
    match tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    {
        Ok(Ok(_)) => Ok(addr),
        Ok(Err(e)) => Err(format!("{addr}: {e}")),
        Err(_) => Err(format!("{addr}: no answer within 2 s")),
    }
}
