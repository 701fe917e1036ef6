//! 6. Supervised processes: one hangs, one serves stale code, one cannot be healed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lookout_e2e::{Daemon, Receiver, run};

use super::Measured;
use super::helpers::*;

/// Kills the process named in a pid file when dropped (a bridge the watchdog restarted).
struct KillPidFile(PathBuf);

impl Drop for KillPidFile {
    fn drop(&mut self) {
        if let Ok(p) = std::fs::read_to_string(&self.0) {
            let _ = Command::new("kill")
                .args(["-KILL", p.trim()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

fn read_pid(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn wait_pid(file: &Path, not: Option<u32>, limit: Duration) -> u32 {
    let start = Instant::now();
    loop {
        if let Some(p) = read_pid(file).filter(|p| Some(*p) != not) {
            return p;
        }
        assert!(start.elapsed() < limit, "no new pid in {}", file.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sh(cmd: &str) {
    let ok = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(ok.success(), "sh -c {cmd}");
}

const PROBE: Duration = Duration::from_millis(500);

/// A bridge: writes its pid, optionally its version (git HEAD of `repo`), a heartbeat each 0.2 s,
/// and honours the restart marker by reloading (re-reading its version) when `cooperative`.
fn bridge_start(dir: &Path, repo: Option<&Path>) -> String {
    let version = repo
        .map(|r| format!("git -C {} rev-parse HEAD > bridge.version; ", r.display()))
        .unwrap_or_default();
    let reload = format!("if [ -f restart-bridge ]; then rm -f restart-bridge; {version}fi; ");
    format!(
        "cd {dir} && rm -f restart-bridge && nohup sh -c 'echo $$ > bridge.pid; {version}while true; do {reload}date +%s > bridge.heartbeat; sleep 0.2; done' >/dev/null 2>&1 &",
        dir = dir.display()
    )
}

fn watch_config(dir: &Path, start: &str, extra: &str) -> String {
    format!(
        "[[watch]]\nname = \"bridge\"\nkind = \"process\"\n\
         pid_file = \"{d}/bridge.pid\"\nheartbeat_file = \"{d}/bridge.heartbeat\"\n\
         restart_marker = \"{d}/restart-bridge\"\n\
         start = {start:?}\nprobe_interval = \"500ms\"\nstale_after = \"1s\"\ncooldown = \"1s\"\n{extra}",
        d = dir.display()
    )
}

/// A bridge that hangs (SIGSTOP): its heartbeat goes stale, and the watchdog climbs the ladder —
/// restart marker (tier 1), SIGTERM (tier 2), SIGKILL and the start command (tier 3) — each
/// announced once, then "✅ bridge: healthy again …" once.
pub(crate) fn s6a_hung_process() -> Measured {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    std::fs::create_dir_all(&dir).unwrap();
    let start = bridge_start(&dir, None);
    let pid_file = dir.join("bridge.pid");
    let _cleanup = KillPidFile(pid_file.clone());
    sh(&start);
    let first = wait_pid(&pid_file, None, Duration::from_secs(5));
    let _d = Daemon::start(&[
        "--config",
        &config(tmp.path(), &r, &watch_config(&dir, &start, "")),
    ]);
    std::thread::sleep(PROBE * 2);
    // At any phase of the probe, not right after one.
    random_phase(PROBE);
    lookout_e2e::signal(first, "STOP");
    let stopped = Instant::now();
    let (at, _) = wait_text(&r, Duration::from_secs(30), |t| {
        t.starts_with("🩹 bridge: ")
    });
    let got = r.wait_for(Duration::from_secs(90), |g| {
        texts(g)
            .iter()
            .any(|t| t.starts_with("✅ bridge: healthy again"))
    });
    let t = texts(&got);
    let heals: Vec<&String> = t.iter().filter(|x| x.starts_with("🩹 bridge: ")).collect();
    assert!(heals[0].starts_with("🩹 bridge: heartbeat"), "{heals:?}");
    for (i, tier) in ["(tier 1)", "(tier 2)", "(tier 3)"].iter().enumerate() {
        assert!(
            heals.get(i).is_some_and(|h| h.ends_with(tier)),
            "tier by tier: {heals:?}"
        );
    }
    assert_eq!(heals.len(), 3, "{heals:?}");
    let healed = wait_pid(&pid_file, Some(first), Duration::from_secs(5));
    assert_ne!(healed, first);
    settle(4, PROBE);
    let got = r.received();
    assert_eq!(
        count(&got, |t| t.starts_with("✅ bridge: healthy again after")),
        1,
        "{:?}",
        texts(&got)
    );
    assert!(
        texts(&got)
            .iter()
            .any(|t| t.starts_with("✅ bridge: healthy again after") && t.ends_with("(tier 3)")),
        "{:?}",
        texts(&got)
    );
    assert_no_repeats(&got);
    // The fault is seen once the heartbeat is older than `stale_after`.
    Measured {
        ttk_ms: since(stopped + Duration::from_secs(1), at),
        bound: PROBE * 2,
        bound_text: "2 × probe interval (500 ms here), after stale_after".into(),
    }
}

#[test]
fn s6a_a_hung_bridge_is_healed_through_the_tiers() {
    s6a_hung_process();
}

/// A bridge keeps serving the code it started with after the repository moved on (its version
/// stamp is behind `git:REPO`'s HEAD): "🩹 bridge: … — … (tier 1)" writes the restart marker,
/// the bridge reloads, and "✅ bridge: healthy again after … (tier 1)" follows once.
pub(crate) fn s6b_stale_code() -> Measured {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&dir).unwrap();
    let git = |args: &str| {
        sh(&format!(
            "git -C {} -c user.email=t@example.com -c user.name=t {args} >/dev/null",
            repo.display()
        ))
    };
    sh(&format!("git init -q {}", repo.display()));
    git("commit -q --allow-empty -m v1");
    let start = bridge_start(&dir, Some(&repo));
    let pid_file = dir.join("bridge.pid");
    let _cleanup = KillPidFile(pid_file.clone());
    sh(&start);
    let first = wait_pid(&pid_file, None, Duration::from_secs(5));
    let _d = Daemon::start(&[
        "--config",
        &config(
            tmp.path(),
            &r,
            &watch_config(
                &dir,
                &start,
                &format!(
                    "version_file = \"{}/bridge.version\"\nexpected_version = \"git:{}\"\n",
                    dir.display(),
                    repo.display()
                ),
            ),
        ),
    ]);
    std::thread::sleep(PROBE * 3);
    assert!(
        r.received().is_empty(),
        "healthy at first: {:?}",
        texts(&r.received())
    );
    // A deploy moves HEAD (at any phase of the probe); the running bridge still has v1 loaded.
    random_phase(PROBE);
    git("commit -q --allow-empty -m v2");
    let fault = Instant::now();
    let (at, got) = wait_text(&r, Duration::from_secs(30), |t| {
        t.starts_with("🩹 bridge: ")
    });
    let heal = texts(&got)
        .into_iter()
        .find(|t| t.starts_with("🩹 bridge: "))
        .unwrap();
    assert!(heal.ends_with("(tier 1)"), "{heal}");
    assert!(
        heal.contains("version"),
        "the observation names the version: {heal}"
    );
    let got = r.wait_for(Duration::from_secs(60), |g| {
        texts(g)
            .iter()
            .any(|t| t.starts_with("✅ bridge: healthy again"))
    });
    assert_eq!(
        read_pid(&pid_file),
        Some(first),
        "reloaded in place, not restarted"
    );
    settle(4, PROBE);
    let got2 = r.received();
    assert_eq!(
        got2.len(),
        got.len(),
        "nothing after the recovery: {:?}",
        texts(&got2)
    );
    assert_eq!(
        count(&got2, |t| t.starts_with("🩹 bridge: ")),
        1,
        "{:?}",
        texts(&got2)
    );
    assert_eq!(
        count(&got2, |t| t.starts_with("✅ bridge: healthy again after")
            && t.ends_with("(tier 1)")),
        1,
        "{:?}",
        texts(&got2)
    );
    assert_no_repeats(&got2);
    Measured {
        ttk_ms: since(fault, at),
        bound: PROBE * 2,
        bound_text: "2 × probe interval (500 ms here)".into(),
    }
}

#[test]
fn s6b_a_bridge_serving_stale_code_is_told_to_reload() {
    s6b_stale_code();
}

/// A sidecar whose pid is dead and whose start command exits at once: tier 3 starts it, in vain,
/// `max_tier_failures` (2) times; then one "⛔ sidecar: … circuit open …" alert, and the watchdog
/// stops acting.
pub(crate) fn s6c_unhealable() -> Measured {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("sidecar.pid");
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(&pid_file, format!("{dead_pid}\n")).unwrap();
    let file = config(
        tmp.path(),
        &r,
        &format!(
            "[[watch]]\nname = \"sidecar\"\nkind = \"process\"\npid_file = \"{}\"\n\
             start = \"true\"\nprobe_interval = \"500ms\"\ncooldown = \"1s\"\nmax_tier_failures = 2\n",
            pid_file.display()
        ),
    );
    let d = Daemon::start(&["--config", &file]);
    let fault = Instant::now();
    let (at, got) = wait_text(&r, Duration::from_secs(30), |t| {
        t.starts_with("🩹 sidecar: ")
    });
    let first = texts(&got)
        .into_iter()
        .find(|t| t.starts_with("🩹 sidecar: "))
        .unwrap();
    assert!(
        first.ends_with("(tier 3)"),
        "a dead pid goes straight to tier 3: {first}"
    );
    let circuit = "⛔ sidecar: ";
    let (opened, got) = wait_text(&r, Duration::from_secs(120), |t| t.starts_with(circuit));
    let line = texts(&got)
        .into_iter()
        .find(|t| t.starts_with(circuit))
        .unwrap();
    assert!(
        line.contains("circuit open")
            && line.ends_with("`lookout watchdog reset sidecar` when fixed"),
        "{line}"
    );
    eprintln!(
        "scenario 6c: first heal after {:?}, circuit open after {:?}",
        at - fault,
        opened - fault
    );
    // Open: no more actions.
    let before = count(&got, |t| t.starts_with("🩹 sidecar: "));
    settle(6, PROBE);
    let got = r.received();
    assert_eq!(
        count(&got, |t| t.starts_with("🩹 sidecar: ")),
        before,
        "{:?}",
        texts(&got)
    );
    assert_eq!(
        count(&got, |t| t.starts_with(circuit)),
        1,
        "{:?}",
        texts(&got)
    );
    assert_no_repeats(&got);
    let out = run(
        "lookout",
        &["--url", d.url.as_str(), "watchdog", "explain", "sidecar"],
        tmp.path(),
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("circuit"), "explain says why: {said}");
    Measured {
        ttk_ms: since(fault, at),
        bound: PROBE * 2,
        bound_text: "2 × probe interval (500 ms here)".into(),
    }
}

#[test]
fn s6c_a_process_that_cannot_be_healed_opens_the_circuit_once() {
    s6c_unhealable();
}
