//! Time-to-know of issue #20's failure classes ("alive is not working"), on the real lookoutd:
//! each scenario injects its fault at a random phase of the interval or poll that finds it, takes
//! the fault's own instant (the kill, the container's `FinishedAt`, the append, the first skipped
//! run + the grace) as the start, and asserts the text the chat gets. The tests run each once; the
//! bench runs them `LOOKOUT_TTK_RUNS` times for medians and maxima and fails over a bound:
//! `LOOKOUT_TTK_ONLY=1 cargo bench -p lookout-e2e --bench time_to_know` (scenarios 11–14).
//!
//! `cargo test -p lookout-e2e --test alive`

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use lookout_e2e::engine::{IMAGE, docker, engine};
use lookout_e2e::{Daemon, Receiver};
use serde_json::{Value, json};

/// A scenario's measure: the time-to-know in ms (negative: early), its bound and the bound's words.
pub(crate) type Ttk = (f64, Duration, String);

/// How often a host run is looked at in these scenarios (`thresholds.heartbeat_interval`).
const INTERVAL: Duration = Duration::from_secs(1);
/// What the bounds allow beyond the product's own figure, for delivery on a loaded 2-core box.
const ALLOWANCE: Duration = Duration::from_secs(1);

fn config(dir: &Path, hook: &str, body: &str) -> String {
    let file = dir.join("lookout.toml");
    std::fs::write(
        &file,
        format!("{body}\n[[notify.sinks]]\nkind = \"webhook\"\nurl = \"{hook}\"\n"),
    )
    .unwrap();
    file.to_str().unwrap().to_owned()
}

fn post(d: &Daemon, body: &Value) {
    let code = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::Client::new()
                .post(format!("{}/api/events", d.url))
                .json(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    assert_eq!(code, 200, "POST /api/events {body}");
}

fn texts(got: &[Value]) -> Vec<String> {
    got.iter()
        .map(|b| b["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The first text starting with `start`, waited for up to `limit`; with the instant it was seen.
fn wait_text(r: &Receiver, limit: Duration, start: &str) -> (String, Instant) {
    let got = r.wait_for(limit, |g| texts(g).iter().any(|t| t.starts_with(start)));
    let at = Instant::now();
    let text = texts(&got)
        .into_iter()
        .find(|t| t.starts_with(start))
        .unwrap();
    (text, at)
}

/// Sleeps a random part of `period`: the fault lands at any phase of what finds it.
fn random_phase(period: Duration) {
    use std::hash::{BuildHasher, Hasher};
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    std::thread::sleep(period.mul_f64((r % 10_000) as f64 / 10_000.0));
}

/// Signed milliseconds from `fault` to `at`.
fn since(fault: Instant, at: Instant) -> f64 {
    if at >= fault {
        (at - fault).as_secs_f64() * 1e3
    } else {
        -((fault - at).as_secs_f64() * 1e3)
    }
}

/// Scenario 11: a host's run in a process (no container, no heartbeats) killed: "💀 … lost" within one
/// interval and the finish grace (half an interval, at most 5 s, for the host's own `run_finished`).
pub(crate) fn lost_run_process() -> Ttk {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let file = config(
        tmp.path(),
        &r.url,
        &format!(
            "[thresholds]\nheartbeat_interval = \"{}s\"\n",
            INTERVAL.as_secs()
        ),
    );
    let d = Daemon::start(&["--config", &file]);
    let mut agent = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    post(
        &d,
        &json!({"kind": "run_started", "run_id": "p1", "group": "main", "run_kind": "task",
                "task": "sync", "pid": agent.id(), "heartbeats": false}),
    );
    // Seen running once, then killed at a random phase of the interval.
    wait_text(&r, Duration::from_secs(20), "⏱ sync still running");
    random_phase(INTERVAL);
    agent.kill().unwrap();
    let fault = Instant::now();
    agent.wait().unwrap();
    let (text, at) = wait_text(&r, Duration::from_secs(20), "💀 sync lost");
    assert!(
        text.contains(&format!("its process {} is gone", agent.id())),
        "{text}"
    );
    (
        since(fault, at),
        INTERVAL + INTERVAL / 2 + ALLOWANCE,
        format!(
            "1 interval ({}s) + its finish grace ({} ms) + 1 s delivery",
            INTERVAL.as_secs(),
            (INTERVAL / 2).as_millis()
        ),
    )
}

/// Scenario 12: a followed container dies (exit 3) at a random moment: "🛑 … died" once the restart
/// grace shows it stays down.
pub(crate) fn container_death() -> Ttk {
    assert!(engine(), "the Docker engine and the test image");
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let tag = format!("{}-{}", std::process::id(), rand_suffix());
    let label = format!("lookout.ttk={tag}");
    let file = config(
        tmp.path(),
        &r.url,
        &format!("[docker]\nwatch = [\"label:{label}\"]\n"),
    );
    let d = Daemon::start(&["--config", &file]);
    let start = Instant::now();
    while !d.logs().contains("following the Docker engine's events") {
        assert!(start.elapsed() < Duration::from_secs(20), "{}", d.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    let name = format!("lookout-ttk-dies-{tag}");
    // Dies between 1 and 2 s after it starts: any phase of lookoutd's 1 s settle tick.
    let life = 1.0 + (rand_suffix() % 1000) as f64 / 1000.0;
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &label,
        IMAGE,
        "sh",
        "-c",
        &format!("echo about to fail; sleep {life:.3}; exit 3"),
    ]);
    let (text, _) = wait_text(&r, Duration::from_secs(30), &format!("🛑 container {name}"));
    let seen = SystemTime::now();
    // The fault's own instant: when the engine saw the container exit (the same clock).
    let finished = docker(&["inspect", "-f", "{{.State.FinishedAt}}", &name]);
    let _ = docker(&["rm", "-f", &name]);
    let finished: chrono::DateTime<chrono::Utc> = finished.parse().unwrap();
    let seen: chrono::DateTime<chrono::Utc> = seen.into();
    assert!(text.contains("died (exit code 3)"), "{text}");
    assert!(text.contains("last output:\nabout to fail"), "{text}");
    let grace = Duration::from_secs(5);
    (
        (seen - finished).num_microseconds().unwrap() as f64 / 1e3,
        grace + Duration::from_secs(1) + ALLOWANCE,
        "restart grace (5 s) + 1 settle tick (1 s) + 1 s delivery".into(),
    )
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % 1_000_000
}

/// Scenario 13: a line matching a log rule appended to a followed file at a random phase of its poll.
pub(crate) fn log_rule_match() -> Ttk {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("host.log");
    std::fs::write(&log, "starting\n").unwrap();
    let file = config(
        tmp.path(),
        &r.url,
        &format!(
            "[[logs]]\nname = \"socket-mode\"\nfile = \"{}\"\npattern = 'Socket Mode disconnected'\nseverity = \"warning\"\n",
            log.display()
        ),
    );
    let d = Daemon::start(&["--config", &file]);
    // Followed from its end once lookoutd has opened it: wait for the doctor to say so.
    let start = Instant::now();
    loop {
        let doctor: Value = reqwest_get(&format!("{}/status?sections=logs", d.url));
        if doctor["sections"]["logs"]["list"][0]["following"] == true {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{doctor}");
        std::thread::sleep(Duration::from_millis(50));
    }
    random_phase(Duration::from_millis(250));
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"slack: Socket Mode disconnected (reason: refresh)\n")
        .unwrap();
    f.flush().unwrap();
    let fault = Instant::now();
    let got = r.wait_for(Duration::from_secs(20), |g| {
        texts(g).iter().any(|t| t.contains("socket-mode"))
    });
    let at = Instant::now();
    let text = texts(&got)
        .into_iter()
        .find(|t| t.contains("socket-mode"))
        .unwrap();
    assert!(text.contains("Socket Mode disconnected"), "{text}");
    (
        since(fault, at),
        Duration::from_millis(250) + ALLOWANCE,
        "1 poll (250 ms) + 1 s delivery".into(),
    )
}

fn reqwest_get(url: &str) -> Value {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}

/// Scenario 14: a `forbid` job whose first run hangs: one skip line, then one overdue alert once the grace
/// passed from the first skipped run, within one scheduler tick.
pub(crate) fn blocked_job_overdue() -> Ttk {
    const EVERY: Duration = Duration::from_secs(2);
    // The scheduler ticks at the job's instants: a grace of 3 s and a random fraction of a
    // second makes the moment it passes land at any phase of the tick.
    let grace = Duration::from_millis(3000 + rand_suffix() % 1000);
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let file = config(
        tmp.path(),
        &r.url,
        &format!(
            "[thresholds]\noverdue_grace = \"{}ms\"\n\n[[jobs]]\nname = \"hog\"\nevery = \"{}s\"\ncommand = \"sleep 60\"\nconcurrency = \"forbid\"\n",
            grace.as_millis(),
            EVERY.as_secs()
        ),
    );
    let d = Daemon::start(&["--config", &file]);
    let (skip, _) = wait_text(&r, Duration::from_secs(30), "⏭ hog: skipped, run #");
    assert!(skip.contains("still running since"), "{skip}");
    let (overdue, _) = wait_text(&r, Duration::from_secs(30), "⏰ hog is overdue / stuck");
    let seen: chrono::DateTime<chrono::Utc> = SystemTime::now().into();
    assert!(overdue.contains("run(s) skipped"), "{overdue}");
    // The fault: the grace passed from the instant the first skipped run was due (the
    // scheduler's own record of it), on the same wall clock.
    let history = reqwest_get(&format!("{}/api/tasks/hog/history", d.url));
    let first_skipped = history["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "skipped")
        .filter_map(|r| r["scheduled_for"].as_str())
        .filter_map(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
        .min()
        .unwrap_or_else(|| panic!("a skipped run in {history}"));
    let fault = first_skipped + chrono::TimeDelta::from_std(grace).unwrap();
    // One skip line, whatever the number of periods skipped.
    std::thread::sleep(EVERY * 2);
    let all = texts(&r.received());
    assert_eq!(
        all.iter()
            .filter(|t| t.starts_with("⏭ hog: skipped"))
            .count(),
        1,
        "{all:#?}"
    );
    assert_eq!(
        all.iter().filter(|t| t.starts_with("⏰ hog")).count(),
        1,
        "{all:#?}"
    );
    drop(d);
    (
        (seen - fault).num_microseconds().unwrap() as f64 / 1e3,
        Duration::from_secs(1) + ALLOWANCE,
        "overdue_grace + 1 scheduler tick (1 s) + 1 s delivery".into(),
    )
}

/// As a test, beside the rest of the suite on a loaded 2-core box: the bound with 3 s more (the
/// bench, run alone, holds each run to the bound itself).
#[allow(dead_code)] // each is a test here and a scenario in the bench
fn within((ttk, bound, text): Ttk) {
    eprintln!("time-to-know {ttk:.0} ms (bound {text})");
    assert!(
        ttk <= (bound + Duration::from_secs(3)).as_secs_f64() * 1e3,
        "{ttk:.0} ms is over {text}, even with 3 s for a loaded machine"
    );
}

#[test]
fn a_run_in_a_killed_process_is_known_lost_within_an_interval() {
    within(lost_run_process());
}

#[test]
fn a_followed_container_that_dies_is_known_within_its_restart_grace() {
    if !engine() {
        return;
    }
    within(container_death());
}

#[test]
fn a_matching_log_line_is_known_within_a_poll() {
    within(log_rule_match());
}

#[test]
fn a_forbid_job_behind_a_hung_run_is_one_skip_line_and_one_overdue_alert() {
    within(blocked_job_overdue());
}
