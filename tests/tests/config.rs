//! lookoutd's configuration file on the real daemon, and notifications reaching a real receiver.

use std::time::Duration;

use lookout_e2e::{Daemon, Receiver, run, stderr_lines};

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn webhook_config(url: &str) -> String {
    format!("[[notify.sinks]]\nname = \"chat\"\nkind = \"webhook\"\nurl = \"{url}\"\n")
}

/// Two starts of `service` without a ready, then a ready: one "recovered" notification.
fn recovered_boot(d: &Daemon, service: &str) {
    let tmp = tempfile::tempdir().unwrap();
    for args in [["begin"], ["begin"], ["ready"]] {
        let out = run(
            "lookout",
            &[
                "--url",
                d.url.as_str(),
                "boot",
                args[0],
                "--service",
                service,
            ],
            tmp.path(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_bad_config_stops_the_start_with_one_line_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // The seed's incident: a renamed key.
    let file = write(
        tmp.path(),
        "lookout.toml",
        "[thresholds]\nstale_threshold = \"10m\"\n",
    );
    let out = run(
        "lookoutd",
        &["--config", &file, "--state-dir", "state"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("lookoutd: error: {file}: key `thresholds.stale_threshold` at line 2, column 1 was renamed to `thresholds.stale_processing`")),
        "{lines:?}"
    );
    let file = write(
        tmp.path(),
        "typo.toml",
        "[server]\nbnid = \"127.0.0.1:1\"\n",
    );
    let out = run(
        "lookoutd",
        &["--config", &file, "--state-dir", "state"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_lines(&out)[0]
            .ends_with("unknown key `server.bnid` at line 2, column 1 — did you mean `bind`?")
    );
    let out = run(
        "lookoutd",
        &["--config", "missing.toml", "--state-dir", "state"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!tmp.path().join("state").exists());
    // `lookout config check` says the same.
    let out = run("lookout", &["config", "check", &file], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `bind`?"));
    let good = write(
        tmp.path(),
        "good.toml",
        "[server]\nbind = \"127.0.0.1:9999\"\n",
    );
    let out = run("lookout", &["config", "check", &good], tmp.path());
    assert!(out.status.success());
}

#[test]
fn two_typos_are_both_named_by_config_check_and_by_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(
        tmp.path(),
        "two.toml",
        "[server]\nbnid = \"127.0.0.1:1\"\n[thresholds]\nchanel_down = \"5m\"\n",
    );
    let want = [
        format!("{file}: unknown key `server.bnid` at line 2, column 1 — did you mean `bind`?"),
        format!(
            "{file}: unknown key `thresholds.chanel_down` at line 4, column 1 — did you mean \
             `channel_down`?"
        ),
    ];
    let out = run("lookout", &["config", "check", &file], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in &want {
        assert!(stderr.contains(line.as_str()), "{line} in {stderr}");
    }
    let out = run(
        "lookoutd",
        &["--config", &file, "--state-dir", "state"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], format!("lookoutd: error: {}", want[0]));
    assert_eq!(lines[1], want[1]);
    assert!(!tmp.path().join("state").exists());
}

#[test]
fn flags_override_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    // The file names a port that is taken; --bind (given by Daemon::start_opts) wins.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let file = write(
        tmp.path(),
        "lookout.toml",
        &format!("[server]\nbind = \"{}\"\n", holder.local_addr().unwrap()),
    );
    let d = Daemon::start_opts(None, &["--config", &file], &[]);
    assert!(lookout_e2e::health_ok(d.url.trim_start_matches("http://")));
}

#[test]
fn alerts_reach_a_webhook_named_in_the_config() {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "lookout.toml", &webhook_config(&r.url));
    let d = Daemon::start_opts(None, &["--config", &file], &[]);
    recovered_boot(&d, "agent-host");
    let got = r.wait_for(Duration::from_secs(10), |g| !g.is_empty());
    assert_eq!(got.len(), 1);
    assert!(
        got[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("agent-host: ⚠️ Service recovered after 1 failed start(s)."),
        "{got:?}"
    );
    assert_eq!(got[0]["key"], "boot_recovered:agent-host");
    assert!(got[0]["id"].as_str().unwrap().starts_with("n-"));
}

#[test]
fn a_pending_notification_survives_a_killed_lookoutd() {
    let port = lookout_e2e::free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let file = write(tmp.path(), "lookout.toml", &webhook_config(&url));
    // The receiver is down: the alert is stored and retried.
    let d = Daemon::start_opts(Some(&state), &["--config", &file], &[]);
    recovered_boot(&d, "agent-host");
    std::thread::sleep(Duration::from_millis(300));
    let _ = d.stop_with("KILL", Duration::from_secs(5));
    // The receiver comes up; lookoutd restarts and delivers what was pending.
    let r = Receiver::start_on(port);
    let d = Daemon::start_opts(Some(&state), &["--config", &file], &[]);
    let got = r.wait_for(Duration::from_secs(15), |g| {
        g.iter().any(|b| b["key"] == "boot_recovered:agent-host")
    });
    std::thread::sleep(Duration::from_millis(500));
    let agent: Vec<_> = r
        .received()
        .into_iter()
        .filter(|b| b["key"] == "boot_recovered:agent-host")
        .collect();
    assert_eq!(agent.len(), 1, "delivered once: {got:?}");
    drop(d);
}

/// Waits until the configuration lookoutd runs (as `/api/doctor` checks it) has its sink on `port`.
fn wait_until_running_sink(d: &Daemon, port: u16) {
    let start = std::time::Instant::now();
    let needle = format!("127.0.0.1:{port}");
    loop {
        let tmp = tempfile::tempdir().unwrap();
        let out = run(
            "lookout",
            &["--url", d.url.as_str(), "doctor", "--json"],
            tmp.path(),
        );
        if String::from_utf8_lossy(&out.stdout).contains(&needle) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the reload was not applied"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sighup_reloads_a_good_file_and_refuses_a_bad_one() {
    let a = Receiver::start();
    let b = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "lookout.toml", &webhook_config(&a.url));
    let d = Daemon::start_opts(None, &["--config", &file], &[]);
    recovered_boot(&d, "one");
    a.wait_for(Duration::from_secs(10), |g| g.len() == 1);

    write(tmp.path(), "lookout.toml", &webhook_config(&b.url));
    lookout_e2e::signal(d.pid(), "HUP");
    wait_until_running_sink(&d, b.port);
    recovered_boot(&d, "two");
    b.wait_for(Duration::from_secs(10), |g| g.len() == 1);

    // A bad file is refused: the running configuration (sink b) stays.
    write(
        tmp.path(),
        "lookout.toml",
        "[[notify.sinks]]\nkind = \"webhook\"\nurll = \"x\"\n",
    );
    lookout_e2e::signal(d.pid(), "HUP");
    std::thread::sleep(Duration::from_millis(500));
    recovered_boot(&d, "three");
    b.wait_for(Duration::from_secs(10), |g| g.len() == 2);
    assert_eq!(a.received().len(), 1);
    let out = d.stop_with("TERM", Duration::from_secs(10));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(log.contains("configuration reload refused"), "{log}");
    assert!(
        log.contains("unknown key `notify.sinks[0].urll` at line 3"),
        "{log}"
    );
}

#[test]
fn sighup_without_a_config_file_does_not_stop_lookoutd() {
    let d = Daemon::start(&[]);
    lookout_e2e::signal(d.pid(), "HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        lookout_e2e::health_ok(d.url.trim_start_matches("http://")),
        "still serving after SIGHUP"
    );
    let out = d.stop_with("TERM", Duration::from_secs(10));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to reload"));
}

/// Waits until lookoutd's log holds `needle` `n` times.
fn wait_log(d: &Daemon, needle: &str, n: usize) {
    let start = std::time::Instant::now();
    while d.logs().matches(needle).count() < n {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no {needle:?} (x{n}) in the log: {}",
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `[[quiet]]` windows follow a reload: a bad cron is refused with its key path, a good window
/// holds the next alert it matches.
#[test]
fn sighup_reloads_the_quiet_windows() {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = format!(
        "[thresholds]\nstale_processing = \"2s\"\nstale_scan_interval = \"500ms\"\n\n{}",
        webhook_config(&r.url)
    );
    let file = write(tmp.path(), "lookout.toml", &base);
    let d = Daemon::start_opts(None, &["--config", &file], &[]);

    let window = |cron: &str| {
        format!(
            "{base}\n[[quiet]]\nname = \"always\"\ncron = \"{cron}\"\nduration = \"2m\"\nmatch = \"interrupted_run\"\n"
        )
    };
    write(tmp.path(), "lookout.toml", &window("61 * * * *"));
    lookout_e2e::signal(d.pid(), "HUP");
    wait_log(&d, "configuration reload refused", 1);
    assert!(
        d.logs().contains("`quiet[0].cron` (window `always`)"),
        "{}",
        d.logs()
    );

    // Every minute, for two minutes: always open.
    write(tmp.path(), "lookout.toml", &window("* * * * *"));
    lookout_e2e::signal(d.pid(), "HUP");
    wait_log(&d, "configuration reloaded", 1);

    let at = |secs: i64| (chrono::Utc::now() - chrono::Duration::seconds(secs)).to_rfc3339();
    let batch = serde_json::json!([
        {"kind": "message_received", "channel": "whatsapp", "chat_jid": "quiet-chat", "message_id": "q-1", "timestamp": at(30)},
        {"kind": "batch_dispatched", "chat_jid": "quiet-chat", "message_ids": ["q-1"], "run_id": "r-q", "at": at(20)},
    ]);
    let status = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::Client::new()
                .post(format!("{}/api/events", d.url))
                .json(&batch)
                .send()
                .await
                .unwrap()
                .status()
        });
    assert_eq!(status, 200);
    let mut listed = serde_json::Value::Null;
    for _ in 0..200 {
        let out = run(
            "lookout",
            &["--url", d.url.as_str(), "alerts", "list", "--json"],
            tmp.path(),
        );
        listed = serde_json::from_slice(&out.stdout).unwrap();
        if listed["alerts"].as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        listed["alerts"][0]["key"], "interrupted_run:quiet-chat",
        "{listed}"
    );
    assert_eq!(listed["alerts"][0]["status"], "held", "{listed}");
    assert!(
        r.received().is_empty(),
        "held, not sent: {:?}",
        r.received()
    );
}
