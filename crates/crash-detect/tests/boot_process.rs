//! Real processes: a child begins a `BootGuard` and dies three ways (panic, `exit(1)`, SIGKILL), then
//! a fourth start reaches ready and reports all three, with the panic's message.
//!
//! The child is this test binary run again with `--ignored --exact boot_child` and the
//! `LOOKOUT_BOOT_CHILD` variable naming how to die.

use std::process::Command;

use lookout_crash_detect::{BootGuard, BootOptions, CauseSource};

const MODE: &str = "LOOKOUT_BOOT_CHILD";
const DIR: &str = "LOOKOUT_BOOT_CHILD_DIR";

/// The child's body; ignored in normal runs, run only by the parent below.
#[test]
#[ignore = "a child process of boot_crashes_are_counted_with_their_causes"]
fn boot_child() {
    let (Ok(mode), Ok(dir)) = (std::env::var(MODE), std::env::var(DIR)) else {
        return;
    };
    let options = BootOptions {
        systemd_unit: Some("lookout-test-nonexistent.service".into()),
        ..BootOptions::default()
    };
    let (guard, _) = BootGuard::begin_with(dir.as_ref(), "agent-host", "2.0.0", options).unwrap();
    match mode.as_str() {
        "panic" => panic!("config error: unknown key `caldav.nextcloud.password`"),
        "exit" => std::process::exit(1),
        "sigkill" => {
            let pid = std::process::id().to_string();
            Command::new("kill").args(["-KILL", &pid]).status().unwrap();
            std::thread::sleep(std::time::Duration::from_secs(10));
            unreachable!("SIGKILL did not arrive");
        }
        "ready" => {
            let report = guard.ready().unwrap();
            println!("REPORT {}", serde_json::to_string(&report).unwrap());
            println!("MESSAGE {}", report.message().unwrap_or_default());
        }
        other => panic!("unknown mode {other}"),
    }
}

fn child(dir: &std::path::Path, mode: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "boot_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MODE, mode)
        .env(DIR, dir)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

#[test]
fn boot_crashes_are_counted_with_their_causes() {
    let dir = tempfile::tempdir().unwrap();
    let out = child(dir.path(), "panic");
    assert!(!out.status.success());
    let out = child(dir.path(), "exit");
    assert_eq!(out.status.code(), Some(1));
    let out = child(dir.path(), "sigkill");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9), "{out:?}");

    let out = child(dir.path(), "ready");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(
        stdout
            .lines()
            .find_map(|l| l.split_once("REPORT ").map(|x| x.1))
            .expect("report line"),
    )
    .unwrap();
    assert_eq!(report["failed_starts"], 3);
    let failures = report["failures"].as_array().unwrap();
    let cause0 = failures[0]["cause"].as_str().unwrap();
    assert!(
        cause0.starts_with("panic at crates/crash-detect/tests/boot_process.rs:")
            && cause0.ends_with("config error: unknown key `caldav.nextcloud.password`"),
        "{cause0}"
    );
    assert_eq!(
        failures[0]["cause_source"],
        serde_json::json!(CauseSource::Panic)
    );
    // exit(1) and SIGKILL left no cause (no log file configured, systemd not running the test).
    assert!(failures[1]["cause"].is_null());
    assert!(
        failures[2]["cause"].is_null(),
        "a SIGKILL'd start is still counted"
    );
    let pids: Vec<u64> = failures
        .iter()
        .map(|f| f["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 3);
    assert!(
        pids.windows(2).all(|w| w[0] != w[1]),
        "three different processes"
    );
    let message = stdout
        .lines()
        .find_map(|l| l.split_once("MESSAGE ").map(|x| x.1))
        .unwrap();
    assert!(
        message.starts_with("⚠️ Service recovered after 3 failed start(s). Last failure: unknown"),
        "{message}"
    );
    assert!(report["restart_counter"]["unavailable"].is_string());
}
