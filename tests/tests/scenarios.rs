//! The failure scenarios of product.md end to end (issue #9): each starts a real lookoutd with its
//! intervals shortened through its config, a webhook receiver standing in for the chat, drives a
//! simulated host through the incident (events, real child processes, the CLI) and measures the
//! **time-to-know**: from the fault to the notification at the receiver. Each asserts the exact text
//! of what the user is told, and that nothing is sent twice.
//!
//! `cargo test -p lookout-e2e --test scenarios`; the medians of 5 runs against the bounds:
//! `cargo bench -p lookout-e2e --bench time_to_know` (which runs these same functions).

use std::path::Path;
use std::time::{Duration, Instant};

use lookout_e2e::{Daemon, Receiver, run};
use serde_json::{Value, json};

// Paths relative to this file, so that the bench that includes it (`#[path]`) finds them too.
#[path = "scenarios/healing.rs"]
mod healing;
#[path = "scenarios/helpers.rs"]
mod helpers;
use helpers::*;

/// One measured scenario.
#[allow(dead_code)] // `bound_text` is read by the bench
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    /// From the fault to the notification at the receiver, in milliseconds; negative when the
    /// notification came before the moment taken as the fault (reported as early, never clamped).
    pub(crate) ttk_ms: f64,
    /// The bound of product.md, as configured in the scenario.
    pub(crate) bound: Duration,
    /// The bound as product.md words it, with the scenario's configured value.
    pub(crate) bound_text: String,
}

/// A scenario: it runs the incident and answers its measure.
pub(crate) type Scenario = fn() -> Measured;

/// The scenarios, by name, as the bench runs them.
#[allow(dead_code)] // used by the bench
pub(crate) const SCENARIOS: &[(&str, Scenario)] = &[
    ("1 recovered messages", s1_recovered_messages),
    ("2 long task heartbeats", s2_long_task_heartbeats),
    ("3 boot crash loop, recovered", s3_crash_loop_recovered),
    ("4 crash loop, never recovers", s4_crash_loop_never_recovers),
    ("5 interrupted run", s5_interrupted_run),
    ("6a hung process (SIGSTOP)", healing::s6a_hung_process),
    ("6b stale code (git HEAD)", healing::s6b_stale_code),
    ("6c unhealable (circuit)", healing::s6c_unhealable),
    ("7 overdue while lookoutd down", s7_overdue_while_down),
    ("8a delivery stuck", s8a_delivery_stuck),
    ("8b channel down", s8b_channel_down),
    ("9 invariant repaired + replay", s9_invariant_repaired),
];

const TICK: Duration = Duration::from_millis(250);
const RECONCILE: &str = "[reconcile]\ntick = \"250ms\"\n";

// ---------------------------------------------------------------------------------------------
// 1. An inbound message dropped during a reconnect, recovered by the channel's reconciliation.

/// A channel reconnect drops two messages; the host's reconciliation finds them
/// (`messages_recovered`) and the group is told once, even when a second reconciliation reports
/// the same ids again.
pub(crate) fn s1_recovered_messages() -> Measured {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&["--config", &config(tmp.path(), &r, RECONCILE)]);
    events(
        &d,
        json!([
            {"kind": "channel_connected", "channel": "whatsapp"},
            {"kind": "message_received", "channel": "whatsapp", "chat_jid": "family@g.us",
             "message_id": "m1", "timestamp": ago(60), "group": "family"},
            {"kind": "channel_disconnected", "channel": "whatsapp", "reason": "stream reset"},
            {"kind": "channel_connected", "channel": "whatsapp"},
        ]),
    );
    let fault = Instant::now();
    events(
        &d,
        json!({"kind": "messages_recovered", "channel": "whatsapp", "chat_jid": "family@g.us",
               "message_ids": ["m2", "m3"]}),
    );
    let want = "Recovered 2 missed message(s) from #whatsapp — processing now.";
    let (at, got) = wait_text(&r, Duration::from_secs(20), |t| t == want);
    let body = got.iter().find(|b| b["text"] == want).unwrap();
    assert_eq!(body["group"], "family", "to the affected group: {body}");
    // A second reconciliation reporting the same ids is no news; m1 was never missing.
    events(
        &d,
        json!({"kind": "messages_recovered", "channel": "whatsapp", "chat_jid": "family@g.us",
               "message_ids": ["m1", "m2", "m3"]}),
    );
    settle(6, TICK);
    let got = r.received();
    assert_eq!(
        count(&got, |t| t.starts_with("Recovered ")),
        1,
        "{:?}",
        texts(&got)
    );
    assert_no_repeats(&got);
    Measured {
        ttk_ms: since(fault, at),
        bound: Duration::from_secs(10),
        bound_text: "10 s".into(),
    }
}

#[test]
fn s1_an_inbound_message_dropped_in_a_reconnect_is_recovered_and_announced_once() {
    s1_recovered_messages();
}

// ---------------------------------------------------------------------------------------------
// 2. A scheduled task running 5 intervals in a container: a heartbeat each interval, then the end.

/// A `[[jobs]]` host job that runs ~5 heartbeat intervals (1 s here) in a container of
/// `lookout-test/busybox` (a plain shell when Docker is missing outside CI): "⏱ … still running"
/// each interval, then one "✅ … finished in …" line. The time-to-know is the latest any heartbeat
/// arrives after its condition held — the run active for another whole interval (k intervals after
/// the run's recorded start, for the k-th heartbeat).
pub(crate) fn s2_long_task_heartbeats() -> Measured {
    let interval = Duration::from_secs(1);
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("nightly-agent-{}", std::process::id() % 100_000);
    let steps = "for i in 1 2 3 4 5; do echo step $i; sleep 1; done; echo 5 steps done";
    let command = match docker_image() {
        Ok(()) => format!(
            "docker run --rm --name lookout-s2-{}-{} {IMAGE} sh -c '{steps}'",
            std::process::id(),
            lookout_e2e::free_port()
        ),
        Err(reason) => {
            eprintln!("scenario 2 runs its task as a shell command, not in a container: {reason}");
            format!("sh -c '{steps}'")
        }
    };
    // Due two seconds after the config is written: lookoutd is up by then.
    let at = (chrono::Utc::now() + chrono::Duration::seconds(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let file = config(
        tmp.path(),
        &r,
        &format!(
            "[thresholds]\nheartbeat_interval = \"1s\"\n\n\
             [[jobs]]\nname = \"{name}\"\ngroup = \"admin\"\nat = \"{at}\"\ncommand = {command:?}\n"
        ),
    );
    let d = Daemon::start(&["--config", &file]);
    // Arrival time of each body (wall clock, to compare with the run's recorded start), polled
    // finely.
    let mut arrivals: Vec<(chrono::DateTime<chrono::Utc>, Value)> = Vec::new();
    let start = Instant::now();
    let finish = format!("✅ {name} finished in ");
    loop {
        let got = r.received();
        let now = chrono::Utc::now();
        for b in got.into_iter().skip(arrivals.len()) {
            arrivals.push((now, b));
        }
        if arrivals.iter().any(|(_, b)| {
            b["text"]
                .as_str()
                .is_some_and(|t| t.starts_with(&finish) || t.starts_with('❌'))
        }) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no finish line: {arrivals:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    settle(4, TICK);
    let got = r.received();
    let t = texts(&got);
    let starting = format!("⏱ {name} starting");
    let beat = format!("⏱ {name} still running (");
    assert_eq!(count(&got, |x| x == starting), 1, "{t:?}");
    let beats: Vec<&String> = t.iter().filter(|x| x.starts_with(&beat)).collect();
    assert!(
        beats.len() >= 4,
        "a heartbeat each interval of a ~5 s run: {t:?}"
    );
    assert!(
        beats
            .iter()
            .all(|b| b.contains(" elapsed") && b.contains(")")),
        "{beats:?}"
    );
    assert!(
        beats.iter().any(|b| b.contains("— last output: step ")),
        "the heartbeat says what the task last printed: {beats:?}"
    );
    let fin: Vec<&String> = t.iter().filter(|x| x.starts_with(&finish)).collect();
    assert_eq!(fin.len(), 1, "one finish line, and a success: {t:?}");
    assert!(fin[0].ends_with("5 steps done"), "{}", fin[0]);
    assert!(got.iter().all(|b| b["group"] == "admin"), "{got:?}");
    assert_no_repeats(&got);
    // The run's start as the scheduler recorded it; heartbeat k is owed once the run has been
    // active k intervals.
    let out = lookout_e2e::run(
        "lookout",
        &["--url", d.url.as_str(), "tasks", "history", &name, "--json"],
        tmp.path(),
    );
    let history: Value = serde_json::from_slice(&out.stdout).unwrap();
    let started: chrono::DateTime<chrono::Utc> = history["runs"][0]["started_at"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{history}"));
    let beat_arrivals: Vec<chrono::DateTime<chrono::Utc>> = arrivals
        .iter()
        .filter(|(_, b)| b["text"].as_str().is_some_and(|x| x.starts_with(&beat)))
        .map(|(at, _)| *at)
        .collect();
    let late = beat_arrivals
        .iter()
        .enumerate()
        .map(|(k, at)| {
            let owed = started + chrono::Duration::from_std(interval * (k as u32 + 1)).unwrap();
            // Signed: a heartbeat before it was owed is early, not "0 ms late".
            (*at - owed).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3
        })
        .fold(f64::MIN, f64::max);
    Measured {
        ttk_ms: late,
        bound: interval,
        bound_text: "1 interval (1 s here)".into(),
    }
}

#[test]
fn s2_a_long_container_task_sends_a_heartbeat_each_interval_then_its_result() {
    let m = s2_long_task_heartbeats();
    // Every heartbeat within one interval of being owed.
    assert!(m.ttk_ms <= m.bound.as_secs_f64() * 1e3, "{m:?}");
}

// ---------------------------------------------------------------------------------------------
// 3. A host crash-looping 3 times on a renamed config key, then starting.

/// The cause a host's own start-up would die with: `lookout config check` on a file whose key
/// was renamed.
fn renamed_key_cause(dir: &Path) -> String {
    let file = dir.join("host.toml");
    std::fs::write(&file, "[thresholds]\nstale_threshold = \"10m\"\n").unwrap();
    let out = run("lookout", &["config", "check", file.to_str().unwrap()], dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().next().unwrap().trim().to_owned();
    assert!(
        line.contains("key `thresholds.stale_threshold` at line 2, column 1 was renamed to `thresholds.stale_processing`"),
        "{line}"
    );
    line.trim_start_matches("lookout: error: ").to_owned()
}

/// Three starts die on a renamed config key (systemd's `ExecStopPost` reports each with
/// `lookout boot fail --cause`); the fourth reaches ready: the boot report and the notification
/// say "⚠️ Service recovered after 3 failed start(s). Last failure: <cause>".
pub(crate) fn s3_crash_loop_recovered() -> Measured {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&["--config", &config(tmp.path(), &r, "")]);
    let cause = renamed_key_cause(tmp.path());
    let svc = ["--service", "agent-host"];
    for pid in ["100", "101", "102"] {
        cli(
            &d,
            tmp.path(),
            &[&["boot", "begin", "--pid", pid], &svc[..]].concat(),
        );
        cli(
            &d,
            tmp.path(),
            &[&["boot", "fail", "--cause", &cause], &svc[..]].concat(),
        );
    }
    cli(
        &d,
        tmp.path(),
        &[&["boot", "begin", "--pid", "103"], &svc[..]].concat(),
    );
    let fault = Instant::now();
    let report = cli(&d, tmp.path(), &[&["boot", "ready"], &svc[..]].concat());
    let want = format!("⚠️ Service recovered after 3 failed start(s). Last failure: {cause}");
    assert_eq!(report.trim(), want, "the boot report");
    let sent = format!("agent-host: {want}");
    let (at, _) = wait_text(&r, Duration::from_secs(20), |t| t == sent);
    // A clean start says nothing more.
    cli(&d, tmp.path(), &[&["boot", "begin"], &svc[..]].concat());
    assert_eq!(
        cli(&d, tmp.path(), &[&["boot", "ready"], &svc[..]].concat()),
        ""
    );
    settle(4, TICK);
    let got = r.received();
    assert_eq!(count(&got, |t| t == sent), 1, "{:?}", texts(&got));
    assert_eq!(count(&got, |t| t.contains("Service recovered")), 1);
    assert_no_repeats(&got);
    Measured {
        ttk_ms: since(fault, at),
        bound: Duration::from_secs(2),
        bound_text: "at boot (the ready call; 2 s taken)".into(),
    }
}

#[test]
fn s3_a_host_that_crash_looped_on_a_renamed_key_reports_its_recovery_with_the_cause() {
    s3_crash_loop_recovered();
}

// ---------------------------------------------------------------------------------------------
// 4. A crash loop that never recovers.

/// A host dies at start again and again: once with no word (its breadcrumb is found by the next
/// start), then with its cause. At the 3rd failed start (the configured threshold) one alert
/// names the service and the cause; a 4th failure does not repeat it.
pub(crate) fn s4_crash_loop_never_recovers() -> Measured {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&[
        "--config",
        &config(
            tmp.path(),
            &r,
            "[boot]\ncrash_loop_threshold = 3\ncrash_loop_window = \"5m\"\n",
        ),
    ]);
    let cause = "config: unknown key `caldav.nextcloud.password`";
    let svc = ["--service", "chat-host"];
    cli(
        &d,
        tmp.path(),
        &[&["boot", "begin", "--pid", "200"], &svc[..]].concat(),
    );
    // Died without a word: the next begin finds the breadcrumb.
    let out = cli(
        &d,
        tmp.path(),
        &[&["boot", "begin", "--pid", "201"], &svc[..]].concat(),
    );
    assert!(
        out.starts_with("previous start failed (1 failed start(s)"),
        "{out}"
    );
    cli(
        &d,
        tmp.path(),
        &[&["boot", "fail", "--cause", cause], &svc[..]].concat(),
    );
    cli(
        &d,
        tmp.path(),
        &[&["boot", "begin", "--pid", "202"], &svc[..]].concat(),
    );
    let fault = Instant::now();
    cli(
        &d,
        tmp.path(),
        &[&["boot", "fail", "--cause", cause], &svc[..]].concat(),
    );
    let want = format!(
        "🔁 chat-host is crash-looping: 3 failed start(s) in 5m with no ready. Last failure: {cause}"
    );
    let (at, got) = wait_text(&r, Duration::from_secs(20), |t| t == want);
    let body = got.iter().find(|b| b["text"] == want.as_str()).unwrap();
    assert_eq!(body["severity"], "critical", "{body}");
    // It keeps failing: one alert per loop, not one per start.
    cli(
        &d,
        tmp.path(),
        &[&["boot", "begin", "--pid", "203"], &svc[..]].concat(),
    );
    cli(
        &d,
        tmp.path(),
        &[&["boot", "fail", "--cause", cause], &svc[..]].concat(),
    );
    settle(4, TICK);
    let got = r.received();
    assert_eq!(
        count(&got, |t| t.starts_with("🔁 chat-host is crash-looping")),
        1,
        "{:?}",
        texts(&got)
    );
    assert_eq!(count(&got, |t| t.contains("Service recovered")), 0);
    assert_no_repeats(&got);
    Measured {
        ttk_ms: since(fault, at),
        bound: Duration::from_secs(2),
        bound_text: "at the N-th start (2 s taken)".into(),
    }
}

#[test]
fn s4_a_crash_loop_that_never_recovers_alerts_once_at_the_nth_start_with_its_cause() {
    s4_crash_loop_never_recovers();
}

// ---------------------------------------------------------------------------------------------
// 5. A run interrupted by a crash: its batch stays in flight past the stale threshold.

/// Two messages are dispatched to a run that crashes: no `bot_response` comes. Past
/// `stale_processing` (2 s here) the next scan (each 1 s) alerts once with the chat and count.
pub(crate) fn s5_interrupted_run() -> Measured {
    let stale = Duration::from_secs(2);
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&[
        "--config",
        &config(
            tmp.path(),
            &r,
            &format!(
                "{RECONCILE}\n[thresholds]\nstale_processing = \"2s\"\nstale_scan_interval = \"1s\"\n"
            ),
        ),
    ]);
    events(
        &d,
        json!([
            {"kind": "message_received", "channel": "whatsapp", "chat_jid": "family@g.us",
             "message_id": "a1", "timestamp": ago(1)},
            {"kind": "message_received", "channel": "whatsapp", "chat_jid": "family@g.us",
             "message_id": "a2", "timestamp": ago(1)},
        ]),
    );
    let dispatched = Instant::now();
    events(
        &d,
        json!({"kind": "batch_dispatched", "chat_jid": "family@g.us", "message_ids": ["a1", "a2"],
               "run_id": "run-7"}),
    );
    let prefix = "⚠️ Interrupted run: 2 message(s) in chat family@g.us (#whatsapp) in flight for ";
    let (at, got) = wait_text(&r, Duration::from_secs(30), |t| t.starts_with(prefix));
    let t = texts(&got);
    let line = t.iter().find(|x| x.starts_with(prefix)).unwrap();
    assert!(line.ends_with("s with no response"), "{line}");
    let fault = dispatched + stale;
    // More scans: the same interruption is not announced again.
    settle(3, Duration::from_secs(1));
    let got = r.received();
    assert_eq!(
        count(&got, |t| t.starts_with("⚠️ Interrupted run")),
        1,
        "{:?}",
        texts(&got)
    );
    assert_eq!(
        count(&got, |t| t.starts_with("🚨 [I2]")),
        0,
        "the reconciler's I2 is folded into the scan's alert"
    );
    assert_no_repeats(&got);
    Measured {
        ttk_ms: since(fault, at),
        bound: Duration::from_secs(1),
        bound_text: "each scan (1 s here)".into(),
    }
}

#[test]
fn s5_a_batch_left_in_flight_by_a_crash_is_alerted_with_its_chat_and_count() {
    s5_interrupted_run();
}

// ---------------------------------------------------------------------------------------------
// 7. A task overdue because lookoutd was down at its time.

/// The host's scheduler reports a task's next run (`task_scheduled`, due in 2 s, grace 1 s);
/// lookoutd is stopped before it is due and started again after due + grace with no run in the
/// log: one "🚨 [I7] task … was due at … and has not run …" alert within a tick of the start,
/// and one "✅ [I7] resolved" when the run starts.
pub(crate) fn s7_overdue_while_down() -> Measured {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let file = config(tmp.path(), &r, RECONCILE);
    let d = Daemon::start_opts(Some(&state), &["--config", &file], &[]);
    let due = chrono::Utc::now() + chrono::Duration::seconds(2);
    events(
        &d,
        json!({"kind": "task_scheduled", "task": "daily-report", "group": "admin",
               "next_run": due.to_rfc3339(), "grace_secs": 1}),
    );
    settle(3, TICK);
    let out = d.stop_with("TERM", Duration::from_secs(10));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Down past due + grace.
    while chrono::Utc::now() < due + chrono::Duration::milliseconds(1500) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let d = Daemon::start_opts(Some(&state), &["--config", &file], &[]);
    let up = Instant::now();
    let prefix = format!(
        "🚨 [I7] task daily-report (group admin) was due at {} and has not run (",
        due.to_rfc3339()
    );
    let (at, _) = wait_text(&r, Duration::from_secs(20), |t| t.starts_with(&prefix));
    settle(4, TICK);
    events(
        &d,
        json!({"kind": "run_started", "run_id": "dr-1", "group": "admin", "run_kind": "task",
               "task": "daily-report"}),
    );
    let (_, got) = wait_text(&r, Duration::from_secs(20), |t| {
        resolved(t, "I7", "task daily-report (group admin) was due at")
    });
    settle(4, TICK);
    let got2 = r.received();
    assert_eq!(got2.len(), got.len(), "{:?}", texts(&got2));
    assert_eq!(
        count(&got2, |t| t.starts_with("🚨 [I7]")),
        1,
        "{:?}",
        texts(&got2)
    );
    assert_eq!(
        count(&got2, |t| t.starts_with("✅") && t.contains("[I7]")),
        1
    );
    assert_no_repeats(&got2);
    Measured {
        ttk_ms: since(up, at),
        bound: TICK,
        bound_text: "1 tick (250 ms here), from lookoutd's start".into(),
    }
}

#[test]
fn s7_a_task_due_while_lookoutd_was_down_is_alerted_once_when_it_comes_back() {
    s7_overdue_while_down();
}

// ---------------------------------------------------------------------------------------------
// 8. A delivery stuck pending; a channel disconnected for too long.

/// A delivery queued 10 minutes ago and never sent (limit 5 m): "🚨 [I4] delivery … pending for
/// 10m (last error: …)" within a tick; one "✅ [I4] resolved" when it is sent.
pub(crate) fn s8a_delivery_stuck() -> Measured {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&["--config", &config(tmp.path(), &r, RECONCILE)]);
    // At any phase of the reconciler's tick, not right after the daemon's first one.
    random_phase(TICK);
    let fault = Instant::now();
    events(
        &d,
        json!([
            {"kind": "delivery_queued", "delivery_id": "dl-1", "chat_jid": "family@g.us", "at": ago(600)},
            {"kind": "delivery_failed", "delivery_id": "dl-1", "chat_jid": "family@g.us",
             "error": "429 rate limited", "at": ago(590)},
        ]),
    );
    let want =
        "🚨 [I4] delivery dl-1 to family@g.us pending for 10m (last error: 429 rate limited)";
    let (at, _) = wait_text(&r, Duration::from_secs(20), |t| t == want);
    settle(4, TICK);
    events(
        &d,
        json!({"kind": "delivery_sent", "delivery_id": "dl-1", "chat_jid": "family@g.us"}),
    );
    let (_, got) = wait_text(&r, Duration::from_secs(20), |t| {
        resolved(t, "I4", "delivery dl-1 to family@g.us pending for")
    });
    settle(4, TICK);
    let got2 = r.received();
    assert_eq!(got2.len(), got.len(), "{:?}", texts(&got2));
    assert_eq!(count(&got2, |t| t.starts_with("🚨 [I4]")), 1);
    assert_no_repeats(&got2);
    Measured {
        ttk_ms: since(fault, at),
        bound: TICK,
        bound_text: "1 tick (250 ms here)".into(),
    }
}

#[test]
fn s8a_a_delivery_stuck_pending_is_alerted_once_and_resolved_once() {
    s8a_delivery_stuck();
}

/// A channel disconnected 10 minutes ago (limit 2 m): "🚨 [I5] channel #slack disconnected for
/// 10m (…)" within a tick; its pending delivery is folded in ("also affected"), not alerted alone.
pub(crate) fn s8b_channel_down() -> Measured {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&["--config", &config(tmp.path(), &r, RECONCILE)]);
    // At any phase of the reconciler's tick, not right after the daemon's first one.
    random_phase(TICK);
    let fault = Instant::now();
    events(
        &d,
        json!([
            {"kind": "message_received", "channel": "slack", "chat_jid": "C042", "message_id": "s1",
             "timestamp": ago(900), "at": ago(900)},
            {"kind": "channel_disconnected", "channel": "slack", "reason": "token revoked", "at": ago(600)},
            {"kind": "delivery_queued", "delivery_id": "dl-9", "chat_jid": "C042", "channel": "slack", "at": ago(590)},
        ]),
    );
    let prefix = "🚨 [I5] channel #slack disconnected for 10m (token revoked)";
    let (at, got) = wait_text(&r, Duration::from_secs(20), |t| t.starts_with(prefix));
    let line = texts(&got)
        .into_iter()
        .find(|t| t.starts_with(prefix))
        .unwrap();
    settle(4, TICK);
    // Back: the host reconnects and flushes its queue.
    events(
        &d,
        json!([
            {"kind": "channel_connected", "channel": "slack"},
            {"kind": "delivery_sent", "delivery_id": "dl-9", "chat_jid": "C042"},
        ]),
    );
    let (_, got) = wait_text(&r, Duration::from_secs(20), |t| {
        resolved(t, "I5", "channel #slack disconnected for")
    });
    settle(4, TICK);
    let got2 = r.received();
    assert_eq!(got2.len(), got.len(), "{:?}", texts(&got2));
    assert_eq!(count(&got2, |t| t.starts_with("🚨 [I5]")), 1);
    // Its pending delivery is folded into the channel's alert, never alerted alone.
    assert!(
        line.contains("also affected: 1 pending deliveries"),
        "the delivery is folded into the channel's alert: {line}"
    );
    assert_eq!(
        count(&got2, |t| t.starts_with("🚨 [I4]")),
        0,
        "{:?}",
        texts(&got2)
    );
    assert_no_repeats(&got2);
    Measured {
        ttk_ms: since(fault, at),
        bound: TICK,
        bound_text: "1 tick (250 ms here)".into(),
    }
}

#[test]
fn s8b_a_channel_down_too_long_is_alerted_once_and_resolved_once() {
    s8b_channel_down();
}

// ---------------------------------------------------------------------------------------------
// 9. An invariant violated, repaired automatically, then replayed.

/// A run is working while its container has exited (I1). With `auto_repair`, lookoutd alerts
/// "🚨 [I1] run r1 … is working but its container agent-admin is exited …", ends the run
/// (`run_finished`, outcome `repaired`); `POST /debug/replay-events` over
/// the range up to the repair shows the repair action.
pub(crate) fn s9_invariant_repaired() -> Measured {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&[
        "--config",
        &config(tmp.path(), &r, &format!("{RECONCILE}auto_repair = true\n")),
    ]);
    random_phase(TICK);
    let from = ago(1800);
    let fault = Instant::now();
    events(
        &d,
        json!([
            {"kind": "run_started", "run_id": "r1", "group": "admin", "run_kind": "message",
             "container": "agent-admin", "at": ago(600)},
            {"kind": "container_status", "container": "agent-admin", "status": "running", "at": ago(600)},
            {"kind": "container_status", "container": "agent-admin", "status": "exited", "at": ago(300)},
        ]),
    );
    let want =
        "🚨 [I1] run r1 (group admin) is working but its container agent-admin is exited (for 5m)";
    let (at, _) = wait_text(&r, Duration::from_secs(20), |t| t == want);
    // The repair is a fact in the log: the run ends, marked repaired.
    let mut repaired = None;
    for _ in 0..200 {
        let ev = get(&format!("{}/api/events?kind=run_finished", d.url));
        repaired = ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["payload"]["outcome"] == "repaired")
            .cloned();
        if repaired.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let repaired = repaired.expect("a run_finished with outcome repaired");
    assert_eq!(repaired["payload"]["run_id"], "r1", "{repaired}");
    assert_eq!(
        repaired["payload"]["note"],
        "container agent-admin is gone; lookoutd set the run idle"
    );
    let repaired_at =
        chrono::DateTime::parse_from_rfc3339(repaired["at"].as_str().unwrap()).unwrap();
    // Replayed up to just before the repair: the repair is what the reconciler decides, with the
    // violation that calls for it.
    let before = (repaired_at - chrono::Duration::milliseconds(1)).to_rfc3339();
    let (code, rep) = post(
        &format!("{}/debug/replay-events", d.url),
        &json!({"from": from, "to": before}),
    );
    assert_eq!(code, 200, "{rep}");
    assert!(
        rep["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["type"] == "repair" && a["run_id"] == "r1"),
        "{rep}"
    );
    assert!(rep["violations"].to_string().contains("I1"), "{rep}");
    // The whole range replays too, repair event included: the run is over, the violation gone.
    let (code, all) = post(
        &format!("{}/debug/replay-events", d.url),
        &json!({"from": from, "to": chrono::Utc::now().to_rfc3339()}),
    );
    assert_eq!(code, 200, "{all}");
    assert!(all["events"].as_u64().unwrap() >= 4, "{all}");
    assert!(!all["violations"].to_string().contains("I1"), "{all}");
    // And live: the alert is resolved, once.
    wait_text(&r, Duration::from_secs(20), |t| resolved(t, "I1", "r1"));
    settle(4, TICK);
    let got = r.received();
    assert_eq!(
        count(&got, |t| t.starts_with("🚨 [I1]")),
        1,
        "{:?}",
        texts(&got)
    );
    assert_eq!(
        count(&got, |t| t.starts_with("🚨 [I3]")),
        0,
        "an orphaned run is not also silent"
    );
    assert_eq!(
        count(&got, |t| resolved(t, "I1", "r1")),
        1,
        "{:?}",
        texts(&got)
    );
    assert_no_repeats(&got);
    Measured {
        ttk_ms: since(fault, at),
        bound: TICK,
        bound_text: "1 tick (250 ms here)".into(),
    }
}

#[test]
fn s9_an_orphaned_run_is_repaired_automatically_and_the_replay_shows_the_repair() {
    s9_invariant_repaired();
}
