//! Boot breadcrumbs and a crash loop, in a temporary state directory: a service (`bridge`) fails
//! to start twice — once saying why (`BootBook::fail`, what `lookout boot fail` does), once dying
//! silently with its last words in its log file — so the third start, made by a `BootGuard` as a
//! Rust service would, sees the crash loop (threshold 2 here) with the cause, then reaches ready
//! and gets the "recovered after 2 failed start(s)" report. systemd is faked, so the example runs
//! the same on any machine.
//!
//! Run it with:
//!
//! ```text
//! cargo run -p lookout-crash-detect --example boot_guard
//! ```

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lookout_crash_detect::systemd::{SystemdProbe, UnitState};
use lookout_crash_detect::{BootBook, BootGuard, BootOptions, CauseSource, RestartCounter};

/// systemd as a test would see it: the unit was restarted twice, its last exit was a failure.
struct FakeSystemd;

impl SystemdProbe for FakeSystemd {
    fn unit_state(&self, _unit: &str) -> Result<UnitState, String> {
        Ok(UnitState {
            n_restarts: Some(2),
            exec_main_status: Some(1),
            exec_main_code: Some(1),
            result: Some("exit-code".into()),
        })
    }
}

fn main() {
    let state = tempfile::tempdir().expect("a temporary state directory");
    let log = state.path().join("bridge.log");
    let options = BootOptions {
        crash_loop_threshold: 2,
        crash_loop_window: Duration::from_secs(5 * 60),
        log_file: Some(log.clone()),
        log_lines: 2,
        systemd_unit: Some("bridge.service".into()),
        systemd: Arc::new(FakeSystemd),
    };
    let book = BootBook::new(state.path(), options.clone());
    let t0 = Utc::now() - chrono::Duration::seconds(60);

    // Start 1 fails and says why (as a unit's ExecStopPost would, through `lookout boot fail`).
    let first = book.begin("bridge", Some(4101), Some("1.2.0"), t0).unwrap();
    println!(
        "start 1 begins: {} failed start(s) before it",
        first.failed_starts
    );
    assert_eq!(first.failed_starts, 0);
    let failed = book
        .fail(
            "bridge",
            "unknown key `caldav.password`",
            t0 + chrono::Duration::seconds(2),
        )
        .unwrap();
    println!(
        "start 1 reported failed: {} failed start(s), crash loop: {}",
        failed.failed_starts,
        failed.crash_loop.is_some()
    );
    assert_eq!(failed.failed_starts, 1);
    assert!(failed.crash_loop.is_none());

    // Start 2 dies without a word; only its log file knows.
    book.begin(
        "bridge",
        Some(4102),
        Some("1.2.0"),
        t0 + chrono::Duration::seconds(5),
    )
    .unwrap();
    std::fs::write(
        &log,
        "INFO connecting to imap.example.invalid\nERROR imap: connection refused\nFATAL giving up\n",
    )
    .unwrap();
    println!(
        "start 2 begins and dies; its breadcrumb stays (pid {:?})",
        book.current("bridge").unwrap().and_then(|s| s.pid)
    );

    // Start 3: the service itself, through BootGuard (which also installs a panic hook).
    let (guard, outcome) = BootGuard::begin_with(state.path(), "bridge", "1.2.1", options).unwrap();
    let previous = outcome
        .previous_failed
        .as_ref()
        .expect("start 2 never got ready");
    println!(
        "start 3 begins: start 2 (pid {:?}) failed, cause from {:?}: {}",
        previous.pid,
        previous.cause_source,
        previous.cause_text()
    );
    assert_eq!(previous.cause_source, Some(CauseSource::LogFile));
    assert_eq!(
        previous.cause.as_deref(),
        Some("ERROR imap: connection refused | FATAL giving up")
    );
    let crash_loop = outcome.crash_loop.expect("two failed starts in the window");
    println!("crash loop alert: {}", crash_loop.message());
    assert_eq!(crash_loop.failed_starts, 2);

    // Start 3 reaches ready: the boot message says what happened before it.
    let report = guard.ready().unwrap();
    let message = report.message().expect("there were failed starts");
    println!("ready: {message}");
    println!(
        "  failed starts: {}, causes: {:?}, systemd restarts: {:?}",
        report.failed_starts,
        report
            .failures
            .iter()
            .map(|f| f.cause_text())
            .collect::<Vec<_>>(),
        report.restart_counter
    );
    assert_eq!(report.failed_starts, 2);
    assert!(message.starts_with("⚠️ Service recovered after 2 failed start(s)"));
    assert_eq!(report.restart_counter, RestartCounter::Known(2));
    assert_eq!(
        report.failures[0].cause.as_deref(),
        Some("unknown key `caldav.password`")
    );
    assert!(book.current("bridge").unwrap().is_none());

    // The next clean start has nothing to report.
    let clean = book
        .begin("bridge", Some(4104), Some("1.2.1"), Utc::now())
        .unwrap();
    let quiet = book.ready("bridge", Utc::now()).unwrap();
    println!(
        "a clean start: {} failed start(s), message: {:?}",
        clean.failed_starts,
        quiet.message()
    );
    assert_eq!(clean.failed_starts, 0);
    assert!(quiet.message().is_none());
}
