//! lookoutd as a real process: starts with no config, answers /health, stops cleanly on signals, and
//! refuses bad input with one line and a non-zero exit, leaving nothing half-created.

use std::path::Path;
use std::time::Duration;

use lookout_e2e::{Daemon, binary, free_port, run, stderr_lines};

fn get(url: &str) -> (u16, serde_json::Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let r = client.get(url).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    })
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn starts_on_its_embedded_default_and_answers_health() {
    // No flags at all but the port: state in ./.lookout, SQLite inside it.
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = std::process::Command::new(binary("lookoutd"));
    cmd.args(["--bind", &format!("127.0.0.1:{port}")])
        .current_dir(cwd.path())
        .env_remove("LOOKOUT_STATE_DIR")
        .env_remove("LOOKOUT_STORE_URL")
        .env_remove("XDG_STATE_HOME");
    let state_dir = cwd.path().join(".lookout");
    let d = Daemon::spawn(cmd, port, state_dir.clone(), cwd);
    let (status, body) = get(&format!("http://127.0.0.1:{port}/health"));
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_seconds"].is_u64());
    assert!(body["started_at"].as_str().unwrap().contains('T'));
    assert!(state_dir.join("lookout.db").exists());
    let out = d.stop_with("TERM", Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn xdg_state_home_is_the_default_state_dir_when_set() {
    let cwd = tempfile::tempdir().unwrap();
    let xdg = cwd.path().join("xdg");
    let port = free_port();
    let mut cmd = std::process::Command::new(binary("lookoutd"));
    cmd.args(["--bind", &format!("127.0.0.1:{port}")])
        .current_dir(cwd.path())
        .env("XDG_STATE_HOME", &xdg)
        .env_remove("LOOKOUT_STATE_DIR")
        .env_remove("LOOKOUT_STORE_URL");
    let in_cwd = cwd.path().join(".lookout");
    let d = Daemon::spawn(cmd, port, xdg.join("lookout"), cwd);
    assert!(xdg.join("lookout/lookout.db").exists());
    assert!(!in_cwd.exists());
    let out = d.stop_with("INT", Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unknown_routes_get_a_json_404() {
    let d = Daemon::start(&[]);
    let (status, body) = get(&format!("{}/nope", d.url));
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not found");
    assert_eq!(body["path"], "/nope");
}

#[test]
fn sigterm_and_sigint_stop_it_gracefully() {
    for sig in ["TERM", "INT"] {
        let d = Daemon::start(&[]);
        let out = d.stop_with(sig, Duration::from_secs(10));
        assert!(out.status.success(), "SIG{sig}: {:?}", out.status);
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.contains(&format!("SIG{sig}")), "{log}");
        assert!(log.contains("lookoutd stopped"), "{log}");
    }
}

#[test]
fn a_taken_port_is_one_line_and_creates_nothing() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        "lookoutd",
        &["--bind", &addr, "--state-dir", "state"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("lookoutd: error: cannot listen on {addr}")),
        "{lines:?}"
    );
    assert!(lines[0].contains("--bind"), "says how to fix it: {lines:?}");
    assert!(
        entries(tmp.path()).is_empty(),
        "nothing created: {:?}",
        entries(tmp.path())
    );
}

#[test]
fn a_malformed_store_url_is_one_line_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    for (url, expect) in [
        ("mysql://root:hunter2@db/lookout", "unknown scheme `mysql`"),
        ("sqlite://", "names no file"),
        ("postgres://u:pw@host:port/db", "not a valid PostgreSQL URL"),
    ] {
        let out = run(
            "lookoutd",
            &[
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--state-dir",
                "state",
                "--store-url",
                url,
            ],
            tmp.path(),
        );
        assert_eq!(out.status.code(), Some(2), "{url}");
        let lines = stderr_lines(&out);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("lookoutd: error: invalid store URL"),
            "{lines:?}"
        );
        assert!(lines[0].contains(expect), "{lines:?}");
        assert!(
            !lines[0].contains("hunter2"),
            "no secret printed: {lines:?}"
        );
    }
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
}

#[test]
fn an_unwritable_state_dir_is_one_line_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a-file"), b"").unwrap();
    let port = free_port().to_string();
    let bind = format!("127.0.0.1:{port}");
    // A path through a regular file cannot be created, whoever runs the test (root included).
    let out = run(
        "lookoutd",
        &["--bind", &bind, "--state-dir", "a-file/state"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("lookoutd: error: state directory a-file/state: cannot create it"),
        "{lines:?}"
    );
    // The state dir is an existing file.
    let out = run(
        "lookoutd",
        &["--bind", &bind, "--state-dir", "a-file"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("state directory a-file"), "{lines:?}");
    // A directory without write permission: only meaningful when not root (root ignores modes).
    if !is_root() {
        use std::os::unix::fs::PermissionsExt;
        let ro = tmp.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let out = run(
            "lookoutd",
            &["--bind", &bind, "--state-dir", "ro"],
            tmp.path(),
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr_lines(&out)[0].contains("is not writable"),
            "{:?}",
            stderr_lines(&out)
        );
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(entries(&ro).is_empty());
    } else {
        eprintln!(
            "note: running as root, so the mode-0555 case is not exercised (root can write there)"
        );
    }
    assert_eq!(entries(tmp.path()), vec!["a-file".to_string()]);
}

#[test]
fn a_store_that_cannot_be_opened_leaves_no_state_dir_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let bind = format!("127.0.0.1:{}", free_port());
    let out = run(
        "lookoutd",
        &[
            "--bind",
            &bind,
            "--state-dir",
            "new/state",
            "--store-url",
            "postgres://lookout:s3cret@127.0.0.1:1/lookout",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "lookoutd: error: cannot open store `postgres://lookout:***@127.0.0.1:1/lookout`"
        ),
        "{lines:?}"
    );
    assert!(!lines[0].contains("s3cret"));
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    // A SQLite file that is not a database: the error names it, and the existing file is kept.
    std::fs::create_dir(tmp.path().join("state")).unwrap();
    std::fs::write(
        tmp.path().join("state/lookout.db"),
        b"this is not a database, it is a text file of some length",
    )
    .unwrap();
    let out = run(
        "lookoutd",
        &["--bind", &bind, "--state-dir", "state"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("state/lookout.db"), "{lines:?}");
    assert!(
        tmp.path().join("state/lookout.db").exists(),
        "never deletes what it did not create"
    );
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
