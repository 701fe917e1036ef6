//! The checks serde cannot make, run after deserializing: values with more shape than their type
//! (an address, a URL, the name of an environment variable), ranges, and the rules between keys.
//! One function per table, called in a fixed order; the first rule broken is the error.

use std::time::Duration;

use crate::error::{AtLine, ConfigError, KeyPath};
use crate::keys::range_of;
use crate::schema::{
    AlertsConfig, BootConfig, Config, GatewayConfig, Job, NotifyConfig, Quiet, Repo, ServerConfig,
    Sink, Thresholds, Watch, WatchKind,
};
use crate::source::Source;

mod logs;
mod sinks;

type Checked = Result<(), ConfigError>;

/// Checks the rules of `config`, read from `src`: the first broken rule of every table, so one
/// run names all the tables to fix (a rule between tables reads the table it is about).
pub(crate) fn validate(config: &Config, src: &Source<'_, '_>) -> Checked {
    let root = KeyPath::default();
    let checked = [
        server(src, root.key("server"), &config.server),
        thresholds(src, root.key("thresholds"), &config.thresholds),
        src.positive(root.key("ingest").key("max_skew"), config.ingest.max_skew),
        alerts(src, root.key("alerts"), &config.alerts),
        quiet(src, root.key("quiet"), &config.quiet),
        boot(src, root.key("boot"), &config.boot),
        notify(src, root.key("notify"), &config.notify),
        sinks::selfcheck(src, root.key("selfcheck"), &config.selfcheck),
        src.positive(root.key("incidents").key("keep"), config.incidents.keep),
        repos(src, root.key("repos"), &config.repos),
        gateway(src, root.key("gateway"), &config.gateway),
        watch(src, root.key("watch"), &config.watch),
        jobs(src, root.key("jobs"), &config.jobs),
        logs::rules(src, root.key("logs"), &config.logs),
        docker(src, root.key("docker"), &config.docker),
    ];
    match ConfigError::from_all(checked.into_iter().filter_map(Result::err).collect()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `[docker]`: what `watch` can follow (a container name, a name pattern with `*`, or
/// `label:KEY[=VALUE]`), and a restart loop of at least two starts within a window.
fn docker(src: &Source<'_, '_>, docker: KeyPath, d: &crate::schema::DockerConfig) -> Checked {
    src.non_empty(docker.key("socket"), &d.socket)?;
    for (i, entry) in d.watch.iter().enumerate() {
        let at = docker.key("watch").index(i);
        let why = match entry.strip_prefix("label:") {
            Some(label) => match label.split_once('=').map_or(label, |(k, _)| k) {
                "" => Some(
                    "`label:` needs a label key, e.g. label:com.example.agent or label:role=agent",
                ),
                k if k.contains(char::is_whitespace) => Some("a label key has no spaces"),
                _ => None,
            },
            None if entry.trim().is_empty() => Some("must not be empty"),
            // Docker's container names: [a-zA-Z0-9][a-zA-Z0-9_.-]*, here with `*` for any run.
            None if !entry
                .trim_start_matches('/')
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-*".contains(c)) =>
            {
                Some(
                    "a container name has only letters, digits, `_`, `.` and `-` (and `*` for any run of them); a label is written label:KEY or label:KEY=VALUE",
                )
            }
            None => None,
        };
        if let Some(why) = why {
            return Err(src.invalid(at, why));
        }
    }
    src.range(
        docker.key("restart_loop_count"),
        d.restart_loop_count.into(),
    )?;
    src.positive(docker.key("restart_loop_window"), d.restart_loop_window)
}

/// `[server]`
fn server(src: &Source<'_, '_>, server: KeyPath, s: &ServerConfig) -> Checked {
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
    src.env_name(server.key("token_env"), &s.token_env)?;
    src.range(server.key("max_body_bytes"), s.max_body_bytes as u64)?;
    src.range(
        server.key("max_events_per_request"),
        s.max_events_per_request as u64,
    )?;
    src.positive(server.key("request_timeout"), s.request_timeout)?;
    src.range(server.key("concurrency_limit"), s.concurrency_limit as u64)
}

/// `[thresholds]`
fn thresholds(src: &Source<'_, '_>, thresholds: KeyPath, t: &Thresholds) -> Checked {
    src.positive(thresholds.key("stale_processing"), t.stale_processing)?;
    src.positive(thresholds.key("stale_scan_interval"), t.stale_scan_interval)?;
    src.positive(thresholds.key("heartbeat_interval"), t.heartbeat_interval)?;
    src.range(thresholds.key("stall_after"), t.stall_after.into())
}

/// `[alerts]`
fn alerts(src: &Source<'_, '_>, alerts: KeyPath, a: &AlertsConfig) -> Checked {
    src.range(alerts.key("flap_changes"), a.flap_changes.into())?;
    src.positive(alerts.key("repeat_interval"), a.repeat_interval)?;
    src.positive(alerts.key("flap_window"), a.flap_window)
}

/// `[[quiet]]`
fn quiet(src: &Source<'_, '_>, quiet: KeyPath, windows: &[Quiet]) -> Checked {
    for (i, q) in windows.iter().enumerate() {
        src.positive(quiet.index(i).key("duration"), q.duration)?;
    }
    Ok(())
}

/// `[boot]` and `[[boot.services]]`
fn boot(src: &Source<'_, '_>, boot: KeyPath, b: &BootConfig) -> Checked {
    src.range(
        boot.key("crash_loop_threshold"),
        b.crash_loop_threshold.into(),
    )?;
    src.positive(boot.key("crash_loop_window"), b.crash_loop_window)?;
    let services = boot.key("services");
    for (i, service) in b.services.iter().enumerate() {
        src.non_empty(services.index(i).key("name"), &service.name)?;
        src.range(services.index(i).key("log_lines"), service.log_lines as u64)?;
    }
    let names: Vec<&str> = b.services.iter().map(|s| s.name.as_str()).collect();
    src.unique(services, &names, "service", |_| "")
}

/// `[notify]` and `[[notify.sinks]]`: what each kind of sink needs, unique names, fallbacks.
fn notify(src: &Source<'_, '_>, notify: KeyPath, n: &NotifyConfig) -> Checked {
    let sinks = notify.key("sinks");
    for (i, sink) in n.sinks.iter().enumerate() {
        self::sinks::sink(src, sinks.index(i), sink)?;
    }
    let names: Vec<&str> = n.sinks.iter().map(Sink::name).collect();
    src.unique(sinks.clone(), &names, "sink", |i| {
        if n.sinks[i].name.is_none() {
            "; a sink's name defaults to its kind: give each a `name`"
        } else {
            ""
        }
    })?;
    for (i, sink) in n.sinks.iter().enumerate() {
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
    Ok(())
}

/// `[[repos]]`
fn repos(src: &Source<'_, '_>, repos: KeyPath, list: &[Repo]) -> Checked {
    for (i, repo) in list.iter().enumerate() {
        src.non_empty(repos.index(i).key("path"), &repo.path.to_string_lossy())?;
    }
    Ok(())
}

/// `[gateway]`
fn gateway(src: &Source<'_, '_>, gateway: KeyPath, g: &GatewayConfig) -> Checked {
    if let Some(url) = &g.health_url {
        src.http_url(gateway.key("health_url"), url)?;
    }
    if let Some(var) = &g.health_key_env {
        src.env_name(gateway.key("health_key_env"), var)?;
    }
    src.positive(gateway.key("probe_interval"), g.probe_interval)?;
    for (i, name) in g.needed_by.iter().enumerate() {
        src.non_empty(gateway.key("needed_by").index(i), name)?;
    }
    Ok(())
}

/// `[[watch]]`: what each kind of target needs, and unique names.
fn watch(src: &Source<'_, '_>, watch: KeyPath, targets: &[Watch]) -> Checked {
    for (i, target) in targets.iter().enumerate() {
        watch_target(src, watch.index(i), target)?;
    }
    let names: Vec<&str> = targets.iter().map(|w| w.name.as_str()).collect();
    src.unique(watch, &names, "target", |_| "")
}

/// One `[[watch]]` entry, at `at`.
fn watch_target(src: &Source<'_, '_>, at: KeyPath, target: &Watch) -> Checked {
    src.non_empty(at.key("name"), &target.name)?;
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
            Some(url) => src.http_url(at.key("url"), url)?,
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
        src.range(at.key("expected_status"), status.into())?;
    }
    src.positive(at.key("probe_interval"), target.probe_interval)?;
    src.positive(at.key("stale_after"), target.stale_after)?;
    src.range(at.key("max_tier_failures"), target.max_tier_failures.into())
}

/// `[[jobs]]`: one schedule and one action each, and unique names.
fn jobs(src: &Source<'_, '_>, jobs: KeyPath, list: &[Job]) -> Checked {
    for (i, job) in list.iter().enumerate() {
        self::job(src, jobs.index(i), job)?;
    }
    let names: Vec<&str> = list.iter().map(|j| j.name.as_str()).collect();
    src.unique(jobs, &names, "job", |_| "")
}

/// One `[[jobs]]` entry, at `at`.
fn job(src: &Source<'_, '_>, at: KeyPath, job: &Job) -> Checked {
    src.non_empty(at.key("name"), &job.name)?;
    let schedules = set_keys(&[
        ("cron", job.cron.is_some()),
        ("every", job.every.is_some()),
        ("at", job.at.is_some()),
    ]);
    src.exactly_one(&at, &schedules, "`cron`, `every` or `at`")?;
    let actions = set_keys(&[
        ("command", job.command.is_some()),
        ("image", job.image.is_some()),
    ]);
    src.exactly_one(&at, &actions, "`command` or `image`")?;
    if job.args.is_some() && job.image.is_none() {
        return Err(src.invalid(
            at.key("args"),
            "`args` is the container's command of an `image` job; a `command` job takes its \
             arguments in `command`"
                .to_owned(),
        ));
    }
    if let Some(cron) = &job.cron {
        src.non_empty(at.key("cron"), cron)?;
    }
    if let Some(every) = job.every {
        src.positive(at.key("every"), every)?;
    }
    if let Some(timeout) = job.timeout {
        src.positive(at.key("timeout"), timeout)?;
    }
    Ok(())
}

/// The keys of `keys` that are set, in order.
fn set_keys<'k>(keys: &[(&'k str, bool)]) -> Vec<&'k str> {
    keys.iter()
        .filter(|(_, set)| *set)
        .map(|(key, _)| *key)
        .collect()
}

/// The checks of single values, each an error at the value's `path`.
impl Source<'_, '_> {
    /// An integer within its range (`keys::RANGES`).
    fn range(&self, path: KeyPath, value: u64) -> Checked {
        match range_of(&path) {
            Some((min, max)) if value < min || value > max => Err(ConfigError::OutOfRange {
                origin: self.origin.to_owned(),
                value: value.to_string(),
                at: AtLine(self.at_value(&path).0.map(|l| l.line)),
                path,
                min,
                max,
            }),
            _ => Ok(()),
        }
    }

    fn positive(&self, path: KeyPath, value: Duration) -> Checked {
        if value.is_zero() {
            Err(self.invalid(path, "must be longer than zero"))
        } else {
            Ok(())
        }
    }

    /// The name of an environment variable, not the secret it holds.
    fn env_name(&self, path: KeyPath, value: &str) -> Checked {
        let mut chars = value.chars();
        let ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            Ok(())
        } else {
            Err(self.invalid(
                path,
                "must be the name of an environment variable (letters, digits and `_`), not the \
                 secret itself",
            ))
        }
    }

    fn http_url(&self, path: KeyPath, value: &str) -> Checked {
        if value.starts_with("http://") || value.starts_with("https://") {
            Ok(())
        } else {
            Err(self.invalid(path, "expected an http:// or https:// URL"))
        }
    }

    fn non_empty(&self, path: KeyPath, value: &str) -> Checked {
        if value.trim().is_empty() {
            Err(self.invalid(path, "must not be empty"))
        } else {
            Ok(())
        }
    }

    /// Names that must be unique within one array of tables; `hint` adds to the message for an
    /// entry.
    fn unique(
        &self,
        table: KeyPath,
        names: &[&str],
        what: &str,
        hint: impl Fn(usize) -> &'static str,
    ) -> Checked {
        for (i, name) in names.iter().enumerate() {
            if let Some(first) = names[..i].iter().position(|n| n == name) {
                let line = self
                    .at_value(&table.index(first))
                    .0
                    .map(|l| format!(" at line {}", l.line))
                    .unwrap_or_default();
                return Err(self.invalid(
                    table.index(i),
                    format!(
                        "another {what} is already named `{name}` (the one{line}){}",
                        hint(i)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Exactly one of `choices` set in `table`; `set` lists those that are.
    fn exactly_one(&self, table: &KeyPath, set: &[&str], choices: &str) -> Checked {
        let found = match set {
            [_] => return Ok(()),
            [] => "found none".to_owned(),
            [first, rest @ ..] => {
                let rest: Vec<String> = rest.iter().map(|k| format!("`{k}`")).collect();
                format!("found `{first}` and {}", rest.join(" and "))
            }
        };
        Err(self.invalid(
            table.clone(),
            format!("set exactly one of {choices}; {found}"),
        ))
    }
}
