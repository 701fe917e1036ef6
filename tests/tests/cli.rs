//! lookout as a real process, against a real lookoutd.

use lookout_e2e::{Daemon, run};

#[test]
fn help_lists_the_commands_of_the_product() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run("lookout", &["--help"], tmp.path());
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "status",
        "health",
        "doctor",
        "dry-run",
        "replay",
        "tasks",
        "events",
        "boot",
        "watchdog",
        "alerts",
        "quiet",
        "stale-scan",
        "config",
        "emit",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{cmd} "))),
            "`{cmd}` missing from:\n{help}"
        );
    }
    let out = run("lookout", &["tasks", "--help"], tmp.path());
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in [
        "list", "add", "pause", "resume", "run", "history", "preview",
    ] {
        assert!(help.contains(sub), "tasks {sub} missing:\n{help}");
    }
}

#[test]
fn health_talks_to_the_daemon() {
    let d = Daemon::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let out = run("lookout", &["--url", &d.url, "health"], tmp.path());
    assert!(out.status.success(), "{:?}", out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!(
            "lookoutd {} at {}: ok (up ",
            env!("CARGO_PKG_VERSION"),
            d.url
        )),
        "{text}"
    );

    let out = run(
        "lookout",
        &["--url", &d.url, "health", "--json"],
        tmp.path(),
    );
    assert!(out.status.success());
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["status"], "ok");
}

#[test]
fn health_without_a_daemon_says_so_and_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", lookout_e2e::free_port());
    let out = run("lookout", &["--url", &url, "health"], tmp.path());
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("lookout: error: cannot reach lookoutd at {url}")),
        "{err}"
    );
    let out = run(
        "lookout",
        &["--url", "127.0.0.1:8484", "health"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_command_reaching_a_daemon_that_is_not_there_says_so_with_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", lookout_e2e::free_port());
    for args in [
        &["watchdog", "list"][..],
        &["alerts", "list"],
        &["quiet", "list"],
        &["tasks", "list"],
        &["dry-run"],
    ] {
        let mut all = vec!["--url", url.as_str()];
        all.extend_from_slice(args);
        let out = run("lookout", &all, tmp.path());
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach lookoutd"));
    }
}

#[test]
fn emit_sends_one_event_from_arguments_or_stdin_and_names_a_bad_one() {
    let d = Daemon::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let url_owned = d.url.clone();
    let url = url_owned.as_str();
    let out = run(
        "lookout",
        &[
            "--url",
            url,
            "emit",
            "run_started",
            "run_id=r1",
            "group=main",
            "run_kind=task",
            "task=nightly",
        ],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("stored run_started: seq "));
    // Only the run id: group and task are remembered from run_started.
    let out = run(
        "lookout",
        &[
            "--url",
            url,
            "emit",
            "run_finished",
            "run_id=r1",
            "outcome=failed",
            "error=exit 3",
            "progress:=12",
        ],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A finish for a run never started is stored, with a warning.
    let out = run(
        "lookout",
        &["--url", url, "emit", "run_finished", "run_id=ghost"],
        tmp.path(),
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning:"));
    // Fields from stdin, the arguments winning.
    let mut child = std::process::Command::new(lookout_e2e::binary("lookout"))
        .args([
            "--url",
            url,
            "emit",
            "deploy",
            "--stdin-json",
            "commit_message=from args",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        br#"{"sha": "abc1234", "commit_message": "from stdin"}"#,
    )
    .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let out = run(
        "lookout",
        &["--url", url, "events", "tail", "--json"],
        tmp.path(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let finished = events
        .iter()
        .find(|e| e["kind"] == "run_finished" && e["payload"]["run_id"] == "r1")
        .unwrap_or_else(|| panic!("no run_finished in {text}"));
    assert_eq!(finished["payload"]["error"], "exit 3");
    assert_eq!(finished["payload"]["progress"], 12);
    let deploy = events.iter().find(|e| e["kind"] == "deploy").unwrap();
    assert_eq!(deploy["payload"]["sha"], "abc1234");
    assert_eq!(deploy["payload"]["commit_message"], "from args");

    // Bad input: named, exit 2, nothing sent; lookoutd's own 400 names the field.
    let out = run(
        "lookout",
        &["--url", url, "emit", "deploy", "sha"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`sha`"));
    let out = run(
        "lookout",
        &["--url", url, "emit", "run_started", "run_id=r2"],
        tmp.path(),
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("group"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No daemon: exit 3.
    drop(d);
    let out = run(
        "lookout",
        &["--url", url, "emit", "heartbeat", "target=x"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(3));
}
