//! Boot rules, with a clock given to each call and a fake systemd.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use lookout_crash_detect::systemd::{SystemdProbe, UnitState};
use lookout_crash_detect::{BootBook, BootOptions, CauseSource, CrashDetectError, RestartCounter};

struct FakeSystemd(Mutex<Result<UnitState, String>>);

impl SystemdProbe for FakeSystemd {
    fn unit_state(&self, _unit: &str) -> Result<UnitState, String> {
        self.0.lock().unwrap().clone()
    }
}

fn no_systemd() -> Arc<FakeSystemd> {
    Arc::new(FakeSystemd(Mutex::new(Err(
        "not running under systemd".into()
    ))))
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

fn book(dir: &std::path::Path) -> BootBook {
    BootBook::new(
        dir,
        BootOptions {
            systemd: no_systemd(),
            ..BootOptions::default()
        },
    )
}

#[test]
fn a_first_start_has_nothing_to_report() {
    let dir = tempfile::tempdir().unwrap();
    let b = book(dir.path());
    let out = b.begin("host", Some(10), Some("1.0"), t(0)).unwrap();
    assert_eq!(out.failed_starts, 0);
    assert!(out.previous_failed.is_none() && out.crash_loop.is_none());
    let current = b.current("host").unwrap().unwrap();
    assert_eq!(
        (current.pid, current.version.as_deref()),
        (Some(10), Some("1.0"))
    );
    let report = b.ready("host", t(1)).unwrap();
    assert_eq!(report.failed_starts, 0);
    assert_eq!(report.message(), None, "a ready with N = 0 adds nothing");
    assert!(
        b.current("host").unwrap().is_none(),
        "ready removes the breadcrumb"
    );
}

#[test]
fn a_breadcrumb_left_behind_is_a_failed_start_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let b = book(dir.path());
    b.begin("host", Some(10), Some("1.0"), t(0)).unwrap();
    b.record_cause(
        "host",
        "unknown key `caldav.nextcloud.password`",
        CauseSource::Reported,
    )
    .unwrap();
    let out = b.begin("host", Some(11), Some("1.0"), t(10)).unwrap();
    assert_eq!(out.failed_starts, 1);
    let prev = out.previous_failed.unwrap();
    assert_eq!(prev.pid, Some(10));
    assert_eq!(prev.started_at, t(0));
    assert_eq!(prev.detected_at, t(10));
    assert_eq!(
        prev.cause.as_deref(),
        Some("unknown key `caldav.nextcloud.password`")
    );
    assert_eq!(prev.cause_source, Some(CauseSource::Reported));
    let report = b.ready("host", t(12)).unwrap();
    assert_eq!(report.failed_starts, 1);
    assert_eq!(
        (report.first_failure_at, report.last_failure_at),
        (Some(t(0)), Some(t(0)))
    );
    assert_eq!(
        report.message().unwrap(),
        "⚠️ Service recovered after 1 failed start(s). Last failure: unknown key `caldav.nextcloud.password`"
    );
    // The next cycle starts clean.
    b.begin("host", Some(12), None, t(20)).unwrap();
    assert_eq!(b.ready("host", t(21)).unwrap().failed_starts, 0);
}

#[test]
fn without_a_recorded_cause_the_log_tail_then_systemd_speak() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("host.log");
    let systemd = Arc::new(FakeSystemd(Mutex::new(Ok(UnitState {
        n_restarts: Some(4),
        exec_main_status: Some(1),
        exec_main_code: Some(1),
        result: Some("exit-code".into()),
    }))));
    let b = BootBook::new(
        dir.path(),
        BootOptions {
            log_file: Some(log.clone()),
            log_lines: 2,
            systemd: systemd.clone(),
            ..BootOptions::default()
        },
    );
    // A start in the past; the log is written after it: its last lines are the cause.
    let start = Utc::now() - chrono::Duration::seconds(30);
    b.begin("host", Some(1), None, start).unwrap();
    std::fs::write(
        &log,
        "booting\nloading config\n\nerror: unknown key `foo.bar`\n",
    )
    .unwrap();
    let out = b.begin("host", Some(2), None, Utc::now()).unwrap();
    let prev = out.previous_failed.unwrap();
    assert_eq!(
        prev.cause.as_deref(),
        Some("loading config | error: unknown key `foo.bar`")
    );
    assert_eq!(prev.cause_source, Some(CauseSource::LogFile));
    // A log not written since the start is not that start's words: systemd's exit record is used.
    let out = b
        .begin(
            "host",
            Some(3),
            None,
            Utc::now() + chrono::Duration::seconds(60),
        )
        .unwrap();
    let prev = out.previous_failed.unwrap();
    assert_eq!(
        prev.cause.as_deref(),
        Some("exited with status 1 (systemd result: exit-code)")
    );
    assert_eq!(prev.cause_source, Some(CauseSource::Systemd));
    let report = b
        .ready("host", Utc::now() + chrono::Duration::seconds(61))
        .unwrap();
    assert_eq!(report.restart_counter, RestartCounter::Known(4));
    // Nothing at all: the report says the cause is unknown and why that happens.
    *systemd.0.lock().unwrap() = Err("not running under systemd".into());
    let b = book(dir.path());
    b.begin("other", None, None, t(0)).unwrap();
    b.begin("other", None, None, t(1)).unwrap();
    let report = b.ready("other", t(2)).unwrap();
    assert_eq!(report.last_cause, None);
    assert!(
        report
            .message()
            .unwrap()
            .contains("Last failure: unknown — the process ended without recording a cause")
    );
    assert_eq!(
        report.restart_counter,
        RestartCounter::Unavailable("not running under systemd".into())
    );
}

#[test]
fn a_crash_loop_alerts_once_at_the_nth_failed_start() {
    let dir = tempfile::tempdir().unwrap();
    let b = book(dir.path());
    b.begin("host", None, None, t(0)).unwrap();
    b.record_cause("host", "boom 1", CauseSource::Panic)
        .unwrap();
    let o = b.begin("host", None, None, t(10)).unwrap(); // 1 failed
    assert!(o.crash_loop.is_none());
    b.record_cause("host", "boom 2", CauseSource::Panic)
        .unwrap();
    let o = b.begin("host", None, None, t(20)).unwrap(); // 2 failed
    assert!(o.crash_loop.is_none());
    b.record_cause("host", "boom 3", CauseSource::Panic)
        .unwrap();
    let o = b.begin("host", None, None, t(30)).unwrap(); // 3 failed: the loop
    let cl = o.crash_loop.expect("alert at the third failed start");
    assert_eq!(cl.failed_starts, 3);
    assert_eq!(
        cl.message(),
        "🔁 host is crash-looping: 3 failed start(s) in 5m with no ready. Last failure: boom 3"
    );
    let o = b.begin("host", None, None, t(40)).unwrap(); // 4 failed: already alerted
    assert!(o.crash_loop.is_none(), "once per loop");
    assert_eq!(o.failed_starts, 4);
    // A ready ends the loop; a new loop alerts again.
    assert_eq!(b.ready("host", t(50)).unwrap().failed_starts, 4);
    for i in 0..3 {
        assert!(
            b.begin("host", None, None, t(100 + i * 10))
                .unwrap()
                .crash_loop
                .is_none()
        );
    }
    assert!(
        b.begin("host", None, None, t(130))
            .unwrap()
            .crash_loop
            .is_some()
    );
}

#[test]
fn failures_spread_wider_than_the_window_are_no_loop() {
    let dir = tempfile::tempdir().unwrap();
    let b = BootBook::new(
        dir.path(),
        BootOptions {
            crash_loop_threshold: 3,
            crash_loop_window: Duration::from_secs(60),
            systemd: no_systemd(),
            ..BootOptions::default()
        },
    );
    for i in 0..6 {
        let o = b.begin("host", None, None, t(i * 45)).unwrap();
        assert!(
            o.crash_loop.is_none(),
            "start {i}: at most 2 failures inside any 60 s"
        );
    }
}

#[test]
fn a_reported_failure_counts_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let b = book(dir.path());
    let mut last = None;
    for i in 0..3 {
        b.begin("host", Some(i), None, t(i as i64 * 5)).unwrap();
        last = Some(
            b.fail("host", &format!("exit {i}"), t(i as i64 * 5 + 1))
                .unwrap(),
        );
    }
    let o = last.unwrap();
    assert_eq!(o.failed_starts, 3);
    assert_eq!(
        o.crash_loop.unwrap().last_cause,
        "exit 2",
        "the loop is known when the third failure is reported, not at the next start"
    );
    // The failure was moved out of the breadcrumb: the next start does not count it twice.
    let o = b.begin("host", Some(9), None, t(30)).unwrap();
    assert_eq!(o.failed_starts, 3);
    assert!(o.previous_failed.is_none());
}

#[test]
fn a_failure_reported_with_no_start_in_progress_counts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = book(dir.path());
    b.begin("host", None, None, t(0)).unwrap();
    b.ready("host", t(1)).unwrap();
    // ExecStopPost on a clean stop, or a repeated report: not a failed start.
    for i in 0..5 {
        let o = b.fail("host", "stopped", t(2 + i)).unwrap();
        assert_eq!(
            (
                o.failed_starts,
                o.previous_failed.is_none(),
                o.crash_loop.is_none()
            ),
            (0, true, true)
        );
    }
}

#[test]
fn state_files_are_replaced_atomically_and_corruption_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let b = book(dir.path());
    for i in 0..5 {
        b.begin("host", None, None, t(i)).unwrap();
    }
    let files: Vec<String> = std::fs::read_dir(dir.path().join("boot"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files,
        vec!["host.json".to_string()],
        "no temp file left behind"
    );
    std::fs::write(dir.path().join("boot/host.json"), b"{ not json").unwrap();
    let err = b.begin("host", None, None, t(9)).unwrap_err();
    assert!(matches!(err, CrashDetectError::Corrupt { .. }));
    assert!(
        err.to_string().contains("boot/host.json is corrupt"),
        "{err}"
    );
}

#[test]
fn service_names_must_be_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let b = book(dir.path());
    for bad in ["", "../etc/passwd", "a/b", ".hidden", "sp ace"] {
        let err = b.begin(bad, None, None, t(0)).unwrap_err();
        assert!(
            matches!(err, CrashDetectError::InvalidService(_)),
            "{bad}: {err}"
        );
    }
    b.begin("bridge@1.service", None, None, t(0)).unwrap();
}
