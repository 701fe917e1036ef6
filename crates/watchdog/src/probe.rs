//! Probing one target: the detection rules. Each takes `now` and what the supervisor remembers
//! between probes, and returns an [`Observation`].

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::control::{ContainerControl, HttpProbe, HttpProbeError, ProcessControl};
use crate::observe::{Finding, Health, Observation};
use crate::target::{ContainerSpec, ExpectedVersion, HttpSpec, Policy, ProcessSpec};

/// How long `cmd:` may take to answer the expected version.
const EXPECTED_VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// What a process probe needs besides the spec.
#[derive(Debug, Clone)]
pub(crate) struct ProcessContext {
    /// The latest heartbeat fed in as an event.
    pub heartbeat_event: Option<DateTime<Utc>>,
    /// When the watchdog first saw the target (the start-up grace runs from here).
    pub first_seen: DateTime<Utc>,
    /// When the watchdog last started it.
    pub started_at: Option<DateTime<Utc>>,
    /// A heartbeat file dated ahead of the clock: its mtime, and when the watchdog first saw that
    /// mtime (what the heartbeat is read as, so it ages like any other).
    pub future_mtime: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

fn read_trimmed(path: &Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(path)?.trim().to_owned())
}

/// A heartbeat file's mtime as the heartbeat's time. One dated ahead of the clock (a clock step, a
/// `touch -d`) is read as the moment the watchdog first saw that mtime, with a note: it then ages
/// like any heartbeat, so it can never keep its target fresh forever.
fn not_ahead(
    mtime: DateTime<Utc>,
    ctx: &mut ProcessContext,
    obs: &mut Observation,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    if mtime <= now {
        ctx.future_mtime = None;
        return mtime;
    }
    let seen = match ctx.future_mtime {
        Some((m, seen)) if m == mtime => seen,
        _ => {
            tracing::warn!(
                mtime = %mtime.to_rfc3339(),
                now = %now.to_rfc3339(),
                "heartbeat file dated ahead of the clock; read as written now"
            );
            now
        }
    };
    ctx.future_mtime = Some((mtime, seen));
    obs.notes.push(format!(
        "heartbeat file dated {} ahead of the clock ({}): read as written at {}",
        lookout_common::human_age(mtime - now),
        mtime.to_rfc3339(),
        seen.to_rfc3339()
    ));
    seen
}

fn mtime(path: &Path) -> Option<DateTime<Utc>> {
    let m = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(DateTime::<Utc>::from(m))
}

/// Resolves the version a process should run. Blocking (git2, a command).
pub(crate) fn expected_version(e: &ExpectedVersion) -> Result<String, String> {
    match e {
        ExpectedVersion::GitHead(repo) => {
            let r = git2::Repository::open(repo).map_err(|e| e.message().to_owned())?;
            let head = r
                .head()
                .and_then(|h| h.peel_to_commit())
                .map_err(|e| e.message().to_owned())?;
            Ok(head.id().to_string())
        }
        ExpectedVersion::File(path) => read_trimmed(path).map_err(|e| e.to_string()),
        ExpectedVersion::Command(cmd) => {
            let mut child = std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| e.to_string())?;
            let deadline = std::time::Instant::now() + EXPECTED_VERSION_TIMEOUT;
            loop {
                match child.try_wait().map_err(|e| e.to_string())? {
                    Some(_) => break,
                    None if std::time::Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(format!(
                            "command timed out after {}s",
                            EXPECTED_VERSION_TIMEOUT.as_secs()
                        ));
                    }
                    None => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!("command exited with {}", out.status));
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
    }
}

/// Versions match when equal, or when one is an abbreviation (7+ characters) of the other, as
/// short and full git SHAs are.
fn versions_match(running: &str, expected: &str) -> bool {
    if running == expected {
        return true;
    }
    let (short, long) = if running.len() < expected.len() {
        (running, expected)
    } else {
        (expected, running)
    };
    short.len() >= 7 && long.starts_with(short)
}

fn secs(d: chrono::Duration) -> u64 {
    u64::try_from(d.num_seconds()).unwrap_or(0)
}

/// Probes a process. Blocking: run it off the async threads.
pub(crate) fn probe_process(
    spec: &ProcessSpec,
    policy: &Policy,
    control: &dyn ProcessControl,
    ctx: &mut ProcessContext,
    now: DateTime<Utc>,
) -> Observation {
    let mut obs = Observation::healthy(now);
    // Pid.
    if let Some(pid_file) = &spec.pid_file {
        match read_trimmed(pid_file)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        {
            None => obs.findings.push(Finding::PidMissing),
            Some(pid) if control.alive(pid) => obs.pid = Some(pid),
            Some(pid) => obs.findings.push(Finding::PidDead { pid }),
        }
    }
    // Heartbeat: the latest of the file's mtime and the events, but never one from before the
    // watchdog's own last start (that one is the old process's).
    if spec.heartbeat_file.is_some() || spec.heartbeat_events {
        let file = spec
            .heartbeat_file
            .as_deref()
            .and_then(mtime)
            .map(|m| not_ahead(m, ctx, &mut obs, now));
        let latest = file.max(ctx.heartbeat_event);
        let latest = match (latest, ctx.started_at) {
            (Some(hb), Some(start)) if hb < start => None,
            (hb, _) => hb,
        };
        let grace_from = ctx.started_at.unwrap_or(ctx.first_seen).max(ctx.first_seen);
        let grace_until =
            grace_from + chrono::Duration::from_std(policy.heartbeat_grace).unwrap_or_default();
        match latest {
            Some(hb) => {
                let age = now - hb;
                if age > chrono::Duration::from_std(policy.stale_after).unwrap_or_default() {
                    obs.findings.push(Finding::HeartbeatStale {
                        age_secs: secs(age),
                        limit_secs: policy.stale_after.as_secs(),
                    });
                }
            }
            None if now < grace_until => obs.notes.push(format!(
                "no heartbeat yet: within the start-up grace until {}",
                grace_until.to_rfc3339()
            )),
            None => obs.findings.push(Finding::HeartbeatMissing),
        }
    }
    // Version stamp.
    if let Some(expected) = &spec.expected_version {
        match spec.version_file.as_deref().map(read_trimmed) {
            None => obs
                .notes
                .push("no version file configured: version not checked".into()),
            Some(Err(_)) => obs
                .notes
                .push("no version stamp: version not checked (not a failure)".into()),
            Some(Ok(running)) if running.is_empty() => obs
                .notes
                .push("empty version stamp: version not checked (not a failure)".into()),
            Some(Ok(running)) => match expected_version(expected) {
                Ok(want) if versions_match(&running, &want) => {}
                Ok(want) => obs.findings.push(Finding::VersionMismatch {
                    running,
                    expected: want,
                }),
                Err(e) => obs.notes.push(format!(
                    "expected version unavailable ({e}): version not checked"
                )),
            },
        }
    }
    obs.settle();
    obs
}

/// What a container probe remembers between probes: a baseline of the restart count.
#[derive(Debug, Clone, Default)]
pub(crate) struct RestartBaseline {
    pub at: Option<DateTime<Utc>>,
    pub count: u64,
}

/// Probes a container.
pub(crate) async fn probe_container(
    spec: &ContainerSpec,
    policy: &Policy,
    control: &dyn ContainerControl,
    baseline: &mut RestartBaseline,
    now: DateTime<Utc>,
) -> Observation {
    let mut obs = Observation::healthy(now);
    match control.inspect(&spec.container).await {
        Err(e) => {
            obs.health = Health::Unknown;
            obs.notes.push(e.to_string());
            obs.upstream = Some("docker engine".into());
        }
        Ok(state) => {
            let window = chrono::Duration::from_std(policy.restart_loop_window).unwrap_or_default();
            match baseline.at {
                Some(at) if now - at <= window && state.restart_count >= baseline.count => {}
                _ => {
                    baseline.at = Some(now);
                    baseline.count = state.restart_count;
                }
            }
            let grown = state.restart_count.saturating_sub(baseline.count);
            if state.status == "restarting" || grown >= u64::from(policy.restart_loop_count.max(1))
            {
                obs.findings.push(Finding::ContainerRestartLoop {
                    restarts: grown.max(1),
                });
            }
            if state.status != "running" && state.status != "restarting" {
                obs.findings.push(Finding::ContainerNotRunning {
                    state: state.status.clone(),
                    exit_code: state.exit_code.filter(|_| state.status == "exited"),
                });
            }
            if state.health.as_deref() == Some("unhealthy") {
                obs.findings.push(Finding::ContainerUnhealthy);
            }
        }
    }
    obs.settle();
    obs
}

/// Probes an endpoint; `in_row` counts failed probes in a row across calls.
pub(crate) async fn probe_http(
    spec: &HttpSpec,
    probe: &dyn HttpProbe,
    in_row: &mut u32,
    now: DateTime<Utc>,
) -> Observation {
    let mut obs = Observation::healthy(now);
    let result = probe
        .get(&spec.url, None, spec.timeout)
        .await
        .map(|a| a.status);
    let failure = match &result {
        Ok(s)
            if spec
                .expected_status
                .map_or((200..300).contains(s), |e| e == *s) =>
        {
            None
        }
        Ok(s) => Some(format!("status {s}")),
        Err(e) => Some(e.to_string()),
    };
    match failure {
        None => *in_row = 0,
        Some(last) => {
            *in_row += 1;
            if let Err(HttpProbeError::Connect(_) | HttpProbeError::Timeout(_)) = &result {
                obs.upstream = host_of(&spec.url).map(|h| format!("host {h}"));
            }
            if *in_row >= spec.failures_in_row.max(1) {
                obs.findings.push(Finding::EndpointFailing {
                    in_row: *in_row,
                    last,
                });
            } else {
                obs.notes.push(format!(
                    "probe failed ({last}): {} of {} in a row",
                    in_row, spec.failures_in_row
                ));
            }
        }
    }
    obs.settle();
    obs
}

/// The `host:port` of a URL, without credentials.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty()).then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    // A heartbeat file dated a day ahead (`touch -d tomorrow`, a clock step) must not keep its
    // target fresh forever: it reads as written when first seen, and goes stale `stale_after`
    // later like any other; touched again with a real time, it is a real heartbeat again.
    #[test]
    fn a_heartbeat_file_dated_ahead_ages_from_when_it_was_first_seen() {
        use crate::control::NixProcessControl;
        use crate::target::{Policy, TargetKind};
        let dir = tempfile::tempdir().unwrap();
        let beat = dir.path().join("heartbeat");
        std::fs::write(&beat, "").unwrap();
        let t0 = Utc::now();
        let set_mtime = |t: DateTime<Utc>| {
            std::fs::File::options()
                .write(true)
                .open(&beat)
                .unwrap()
                .set_modified(t.into())
                .unwrap();
        };
        set_mtime(t0 + chrono::Duration::days(1));
        let spec = ProcessSpec {
            heartbeat_file: Some(beat.clone()),
            ..ProcessSpec::default()
        };
        let policy = Policy::for_kind(TargetKind::Process); // stale after 90 s
        let mut ctx = ProcessContext {
            heartbeat_event: None,
            first_seen: t0,
            started_at: None,
            future_mtime: None,
        };
        let stale = |o: &Observation| {
            o.findings
                .iter()
                .any(|f| matches!(f, Finding::HeartbeatStale { .. }))
        };
        let probe = |ctx: &mut ProcessContext, at| {
            probe_process(&spec, &policy, &NixProcessControl, ctx, at)
        };
        let first = probe(&mut ctx, t0);
        assert!(!stale(&first));
        assert!(
            first
                .notes
                .iter()
                .any(|n| n.starts_with("heartbeat file dated 1d 0h ahead")),
            "{:?}",
            first.notes
        );
        let later = probe(&mut ctx, t0 + chrono::Duration::seconds(60));
        assert!(!stale(&later), "60 s after it was first seen");
        let stale_now = probe(&mut ctx, t0 + chrono::Duration::seconds(120));
        assert!(
            stale(&stale_now),
            "120 s after: stale, though its mtime is tomorrow"
        );
        // Touched with a real time: fresh again, and no longer noted.
        let t1 = t0 + chrono::Duration::seconds(121);
        set_mtime(t1);
        let fresh = probe(&mut ctx, t1 + chrono::Duration::seconds(1));
        assert!(!stale(&fresh));
        assert_eq!(ctx.future_mtime, None);
    }

    #[test]
    fn short_and_full_shas_match() {
        assert!(versions_match("abc1234", "abc1234def"));
        assert!(versions_match("abc1234def", "abc1234def"));
        assert!(!versions_match("abc", "abcdef"));
        assert!(!versions_match("abc1235", "abc1234def"));
    }

    #[test]
    fn host_of_drops_credentials() {
        assert_eq!(
            host_of("http://u:p@127.0.0.1:4000/health").as_deref(),
            Some("127.0.0.1:4000")
        );
    }

    #[test]
    fn expected_version_from_git_file_and_command() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@example.invalid").unwrap();
        let tree = repo
            .find_tree(repo.index().unwrap().write_tree().unwrap())
            .unwrap();
        let id = repo
            .commit(Some("HEAD"), &sig, &sig, "one", &tree, &[])
            .unwrap();
        assert_eq!(
            expected_version(&ExpectedVersion::GitHead(dir.path().into())).unwrap(),
            id.to_string()
        );
        let f = dir.path().join("v");
        std::fs::write(&f, "1.2.3\n").unwrap();
        assert_eq!(
            expected_version(&ExpectedVersion::File(f)).unwrap(),
            "1.2.3"
        );
        assert_eq!(
            expected_version(&ExpectedVersion::Command("echo 7".into())).unwrap(),
            "7"
        );
        assert!(expected_version(&ExpectedVersion::Command("exit 3".into())).is_err());
    }
}
