//! `[[logs]]`: log rules. Each rule follows a file (`file.rs`: across rotation and truncation) or
//! a container's output (`container.rs`: the engine's log stream) and hands every line to its
//! matcher (`matcher.rs`, pure); a match — or `count` of them within `within` — fires the alert
//! `log:<rule>` through the lifecycle with the last matching lines, and a `resolve` line (or, with
//! none, a quiet spell) resolves it. `/status` has a `logs` section with each rule's last match;
//! `lookout doctor` checks each rule's source; `lookout logs test` runs the same matcher over a
//! file ([`test_log_rule`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_config::{Config, LogRule, LogSource, Severity};
use lookout_notify::alerts::{Alert, AlertKey, Alerts};
use lookout_status_collect::{CollectError, Collected, Collector, Finding};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

mod container;
mod file;
mod matcher;

use matcher::{Matcher, Step};

/// The rule of every log rule's alert: `log:<rule name>`.
pub(crate) const RULE: &str = "log";
/// How often a file is looked at (what `tail -F` does).
const POLL: Duration = Duration::from_millis(250);
/// How often a rule without `resolve` looks whether its quiet spell is over.
const TICK: Duration = Duration::from_secs(1);
/// Lines waiting for their rule's matcher; a follower waits when it is full.
const QUEUE: usize = 1024;

/// The alert key of `rule`.
pub(crate) fn key(rule: &LogRule) -> AlertKey {
    AlertKey::new(RULE, &rule.name)
}

/// One rule as `/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RuleStatus {
    name: String,
    source: String,
    severity: Severity,
    /// Whether its source is followed now.
    following: bool,
    /// Why its source is not followed now (no file, no container, no engine).
    problem: Option<String>,
    lines_read: u64,
    matches: u64,
    last_match_at: Option<DateTime<Utc>>,
    last_match: Option<String>,
    firing: bool,
}

/// Every rule's status, in the order of the file.
pub(crate) type Statuses = Arc<Mutex<Vec<RuleStatus>>>;

fn with_status(statuses: &Statuses, index: usize, f: impl FnOnce(&mut RuleStatus)) {
    let mut all = statuses.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = all.get_mut(index) {
        f(s);
    }
}

/// Whether rule `index`'s source is followed now, or why not.
pub(crate) fn set_following(statuses: &Statuses, index: usize, following: Result<(), String>) {
    with_status(statuses, index, |s| {
        let problem = following.err();
        if s.following && problem.is_none() || s.problem.is_some() && s.problem == problem {
            return;
        }
        match &problem {
            Some(p) => {
                tracing::warn!(rule = %s.name, problem = %p, "log rule: source not followed")
            }
            None => tracing::info!(rule = %s.name, source = %s.source, "log rule: following"),
        }
        s.following = problem.is_none();
        s.problem = problem;
    });
}

/// What [`spawn`] started: the task to wait for at stop, and the `/status` section.
pub(crate) struct Logs {
    pub(crate) task: Option<tokio::task::JoinHandle<()>>,
    pub(crate) section: Option<Arc<dyn Collector>>,
}

/// Follows every `[[logs]]` rule of `config` until `stop`; nothing when there is none. At start,
/// a rule's alert found firing in the store goes on firing (and resolves as the rule says), and
/// the firing alerts of rules no longer configured are resolved.
pub(crate) fn spawn(config: &Config, alerts: Arc<Alerts>, stop: watch::Receiver<bool>) -> Logs {
    let mut rules = Vec::new();
    for rule in &config.logs {
        match Matcher::new(rule) {
            Ok(m) => rules.push((rule.clone(), m)),
            Err(e) => tracing::error!(error = %e, "log rule not followed"),
        }
    }
    let statuses: Statuses = Arc::new(Mutex::new(
        rules
            .iter()
            .map(|(r, _)| RuleStatus {
                name: r.name.clone(),
                source: r.source().map(|s| s.to_string()).unwrap_or_default(),
                severity: r.severity,
                following: false,
                problem: None,
                lines_read: 0,
                matches: 0,
                last_match_at: None,
                last_match: None,
                firing: false,
            })
            .collect(),
    ));
    if rules.is_empty() && config.logs.is_empty() {
        // Still, alerts of rules removed from the file are resolved.
        let task = tokio::spawn(async move {
            restore(&alerts, &HashSet::new()).await;
        });
        return Logs {
            task: Some(task),
            section: None,
        };
    }
    let socket = config.docker.socket.clone();
    let section: Arc<dyn Collector> = Arc::new(LogsSection {
        statuses: statuses.clone(),
    });
    let task = tokio::spawn(async move {
        let names: HashSet<String> = rules.iter().map(|(r, _)| r.name.clone()).collect();
        let firing = restore(&alerts, &names).await;
        let mut running = tokio::task::JoinSet::new();
        for (index, (rule, mut matcher)) in rules.into_iter().enumerate() {
            if firing.contains(&rule.name) {
                matcher.restore_firing(Utc::now());
                with_status(&statuses, index, |s| s.firing = true);
            }
            let (tx, rx) = mpsc::channel(QUEUE);
            match rule.source() {
                Some(LogSource::File(path)) => {
                    running.spawn(follow_file(
                        path.to_path_buf(),
                        tx,
                        statuses.clone(),
                        index,
                        stop.clone(),
                    ));
                }
                Some(LogSource::Container(name)) => {
                    running.spawn(container::follow(
                        socket.clone(),
                        name.to_owned(),
                        tx,
                        statuses.clone(),
                        index,
                        stop.clone(),
                    ));
                }
                None => continue,
            }
            running.spawn(run_rule(
                rule,
                matcher,
                alerts.clone(),
                rx,
                statuses.clone(),
                index,
                stop.clone(),
            ));
        }
        while running.join_next().await.is_some() {}
    });
    Logs {
        task: Some(task),
        section: Some(section),
    }
}

/// The configured rules (`names`) whose alert fires in the store; the firing alerts of rules not
/// configured any more are resolved.
async fn restore(alerts: &Alerts, names: &HashSet<String>) -> HashSet<String> {
    let now = Utc::now();
    let list = match alerts.list(now).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "log rules: cannot read their alerts at start");
            return HashSet::new();
        }
    };
    let mut firing = HashSet::new();
    for a in list
        .into_iter()
        .filter(|a| a.record.rule == RULE && a.record.firing)
    {
        if names.contains(&a.record.subject) {
            firing.insert(a.record.subject);
        } else if let Err(e) = alerts
            .resolve_key(&AlertKey::new(RULE, &a.record.subject), now)
            .await
        {
            tracing::warn!(error = %e, rule = %a.record.subject, "cannot resolve a removed log rule's alert");
        }
    }
    firing
}

/// Polls the file at `path` every [`POLL`] (at once while it is behind), its lines into `lines`.
async fn follow_file(
    path: std::path::PathBuf,
    lines: mpsc::Sender<String>,
    statuses: Statuses,
    index: usize,
    mut stop: watch::Receiver<bool>,
) {
    let mut follower = Some(file::FileFollower::new(path));
    loop {
        let Some(mut f) = follower.take() else { return };
        // Reading a file blocks: on the blocking pool, one poll at a time.
        let Ok((f, polled)) = tokio::task::spawn_blocking(move || {
            let polled = f.poll();
            (f, polled)
        })
        .await
        else {
            return;
        };
        let behind = f.behind();
        match polled {
            Ok(read) => {
                set_following(&statuses, index, Ok(()));
                for line in read {
                    if lines.send(line).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => set_following(
                &statuses,
                index,
                Err(format!("{}: {e}", f.path().display())),
            ),
        }
        follower = Some(f);
        if *stop.borrow() {
            return;
        }
        if behind {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.wait_for(|v| *v) => return,
        }
    }
}

/// One rule: its lines through its matcher, what that decides to the lifecycle.
async fn run_rule(
    rule: LogRule,
    mut matcher: Matcher,
    alerts: Arc<Alerts>,
    mut lines: mpsc::Receiver<String>,
    statuses: Statuses,
    index: usize,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (step, now) = tokio::select! {
            biased;
            _ = stop.wait_for(|v| *v) => return,
            // Before the lines: a log that keeps its queue full must not starve the quiet-spell
            // resolve (the tick is ready once a second at most).
            _ = tick.tick() => {
                let now = Utc::now();
                (matcher.tick(now), now)
            }
            line = lines.recv() => {
                let Some(line) = line else { return };
                let now = Utc::now();
                let before = matcher.matched();
                let step = matcher.line(&line, now);
                with_status(&statuses, index, |s| {
                    s.lines_read += 1;
                    if matcher.matched() > before {
                        s.matches += 1;
                        s.last_match_at = Some(now);
                        s.last_match = Some(matcher::cut(&line));
                    }
                });
                (step, now)
            }
        };
        let Some(step) = step else { continue };
        with_status(&statuses, index, |s| s.firing = matcher.firing());
        let outcome = match &step {
            Step::Fire(f) => alerts.fire(alert(&rule, f), now).await,
            Step::Resolve(_) => alerts.resolve_key(&key(&rule), now).await,
        };
        match outcome {
            Ok(o) => tracing::info!(rule = %rule.name, ?step, outcome = ?o, "log rule"),
            Err(e) => {
                tracing::error!(rule = %rule.name, error = %e, "cannot record a log rule's alert")
            }
        }
    }
}

/// The alert of `rule` for `firing`.
fn alert(rule: &LogRule, firing: &matcher::Firing) -> Alert {
    let a = Alert::keyed(key(rule), rule.severity, matcher::alert_text(rule, firing)).details(
        serde_json::json!({
            "source": rule.source().map(|s| s.to_string()),
            "matches": firing.matches,
            "lines": firing.lines,
        }),
    );
    match &rule.group {
        Some(g) => a.group(g.clone()),
        None => a,
    }
}

/// `/status`'s `logs` section: each rule, its source and its last match.
struct LogsSection {
    statuses: Statuses,
}

#[async_trait::async_trait]
impl Collector for LogsSection {
    fn name(&self) -> &'static str {
        "logs"
    }

    async fn collect(&self) -> Result<Collected, CollectError> {
        let rules = self
            .statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok(section(&rules))
    }
}

/// The section for `rules`: a firing rule is a finding as loud as its severity (`info` none), a
/// source not followed a warning.
fn section(rules: &[RuleStatus]) -> Collected {
    let last = rules
        .iter()
        .filter(|r| r.last_match_at.is_some())
        .max_by_key(|r| r.last_match_at);
    let mut c = Collected::new(serde_json::json!({
        "rules": rules.len(),
        "firing": rules.iter().filter(|r| r.firing).count(),
        "last_match": last.map(|r| format!("{}: {}", r.name, r.last_match.as_deref().unwrap_or(""))),
        "list": rules,
    }));
    for r in rules {
        if r.firing {
            let reason = format!(
                "log rule {} firing: {}",
                r.name,
                r.last_match
                    .as_deref()
                    .unwrap_or("(matched before the start)")
            );
            match r.severity {
                Severity::Critical => c = c.with(Finding::fail(reason)),
                Severity::Warning => c = c.with(Finding::warn(reason)),
                Severity::Info => {}
            }
        }
        if let Some(p) = &r.problem {
            c = c.with(Finding::warn(format!(
                "log rule {} not followed: {p}",
                r.name
            )));
        }
    }
    c
}

/// `lookout doctor`'s check of one rule: its file is there and readable, or its container is
/// known to the engine.
pub(crate) async fn doctor(rule: &LogRule, socket: &str) -> crate::doctor::Check {
    let name = format!("log rule {}", rule.name);
    let check = |status: &'static str, detail: String, fix: Option<&str>| crate::doctor::Check {
        name: name.clone(),
        status,
        detail,
        fix: fix.map(str::to_owned),
    };
    match rule.source() {
        None => check(
            "fail",
            "no source".into(),
            Some("set `file` or `container`"),
        ),
        Some(LogSource::File(path)) => match std::fs::File::open(path) {
            Ok(f) => {
                let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                check(
                    "ok",
                    format!("{} is readable ({size} bytes)", path.display()),
                    None,
                )
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => check(
                "warn",
                format!(
                    "{}: not there (followed from its start once it is)",
                    path.display()
                ),
                Some(
                    "check the path (relative paths are from the directory lookoutd runs in), or start the host that writes it",
                ),
            ),
            Err(e) => check(
                "fail",
                format!("{}: {e}", path.display()),
                Some("give lookoutd's user read access to the file (and its directories)"),
            ),
        },
        Some(LogSource::Container(c)) => {
            use lookout_status_collect::gateway::{ContainerRuntime, docker_runtime};
            let engine = docker_runtime(socket);
            let inspected = tokio::time::timeout(Duration::from_secs(6), engine.inspect(c)).await;
            match inspected {
                Ok(Ok(state)) if state.status == "not_found" => check(
                    "warn",
                    format!("no container {c} (its output is followed once it exists)"),
                    Some("check the container's name (`docker ps -a`)"),
                ),
                Ok(Ok(state)) => check("ok", format!("container {c} is {}", state.status), None),
                Ok(Err(e)) => check(
                    "fail",
                    format!("container {c}: {e}"),
                    Some(
                        "start the Docker engine, give lookoutd access to its socket, or set docker.socket",
                    ),
                ),
                Err(_) => check(
                    "fail",
                    format!("container {c}: the engine did not answer within 6 s"),
                    Some("check the Docker engine (`systemctl status docker`)"),
                ),
            }
        }
    }
}

/// What `lookout logs test` shows: each line of a text that a rule's patterns match, and what
/// lookoutd would do on it. The lines are read as if they came together (a log file has no
/// timestamps lookoutd reads), so `within` is not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogTest {
    /// Lines read.
    pub read: usize,
    /// Lines the `pattern` matched.
    pub matched: usize,
    /// Lines the `resolve` pattern matched.
    pub resolving: usize,
    /// Each line either pattern matched, in order.
    pub lines: Vec<LogTestLine>,
}

/// One line a rule's pattern or `resolve` pattern matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogTestLine {
    /// Its number in the text, from 1.
    pub number: usize,
    /// The line.
    pub text: String,
    /// Whether `resolve` matched it (else `pattern` did).
    pub resolve: bool,
    /// The alert text lookoutd would send on this line (the one that makes `count`).
    pub fires: Option<String>,
    /// Whether this line resolves the alert fired by an earlier one.
    pub resolves: bool,
}

/// Runs `rule`'s matcher — lookoutd's own — over every line of `text`.
pub fn test_log_rule(rule: &LogRule, text: &[u8]) -> Result<LogTest, String> {
    let mut m = Matcher::new(rule)?;
    let now = Utc::now();
    let mut out = LogTest {
        read: 0,
        matched: 0,
        resolving: 0,
        lines: Vec::new(),
    };
    for (i, line) in file::lines_of(text).into_iter().enumerate() {
        out.read += 1;
        let resolve = m.is_resolve(&line);
        let before = m.matched();
        let step = m.line(&line, now);
        let matched = m.matched() > before;
        if !resolve && !matched {
            continue;
        }
        out.matched += usize::from(matched);
        out.resolving += usize::from(resolve);
        out.lines.push(LogTestLine {
            number: i + 1,
            fires: match &step {
                Some(Step::Fire(f)) if f.first => Some(matcher::alert_text(rule, f)),
                _ => None,
            },
            resolves: matches!(step, Some(Step::Resolve(_))),
            resolve,
            text: line,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
