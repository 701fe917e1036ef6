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
