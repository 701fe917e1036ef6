//! Boot records end to end: `lookout boot` against a running lookoutd, lookoutd's own breadcrumb
//! across a SIGKILL and a failed start, and the interrupted-run scan over the daemon's store.

use std::time::Duration;

use lookout_e2e::{Daemon, run, run_env};
use lookout_store::{Direction, NewMessage, Store};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Opens the daemon's own SQLite store beside it (WAL allows a second process).
fn daemon_store(d: &Daemon) -> String {
    format!("sqlite://{}", d.state_dir.join("lookout.db").display())
}

#[test]
fn lookout_boot_counts_failed_starts_alerts_a_crash_loop_and_reports_recovery() {
    let d = Daemon::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let boot = |args: &[&str]| {
        let mut all = vec!["--url", d.url.as_str(), "boot"];
        all.extend_from_slice(args);
        let out = run("lookout", &all, tmp.path());
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    };
    assert_eq!(
        boot(&[
            "begin",
            "--service",
            "agent-host",
            "--version",
            "3.1",
            "--pid",
            "100"
        ]),
        ""
    );
    // The host died without a word: the next begin finds the breadcrumb.
    let out = boot(&["begin", "--service", "agent-host", "--pid", "101"]);
    assert!(
        out.starts_with("previous start failed (1 failed start(s) since the last ready): unknown"),
        "{out}"
    );
    // systemd's ExecStopPost reports the second failure with its cause.
    boot(&[
        "fail",
        "--service",
        "agent-host",
        "--cause",
        "config: unknown key `caldav.nextcloud.password`",
    ]);
    boot(&["begin", "--service", "agent-host", "--pid", "102"]);
    let out = boot(&[
        "fail",
        "--service",
        "agent-host",
        "--cause",
        "config: unknown key `caldav.nextcloud.password`",
    ]);
    assert!(
        out.contains("🔁 crash loop: 3 failed start(s) with no ready. Last failure: config: unknown key `caldav.nextcloud.password`"),
        "{out}"
    );
    assert_eq!(
        boot(&["begin", "--service", "agent-host", "--pid", "103"]),
        ""
    );
    let out = boot(&["ready", "--service", "agent-host"]);
    assert_eq!(
        out.trim(),
        "⚠️ Service recovered after 3 failed start(s). Last failure: config: unknown key `caldav.nextcloud.password`"
    );
    // A clean start and ready says nothing.
    boot(&["begin", "--service", "agent-host"]);
    assert_eq!(boot(&["ready", "--service", "agent-host"]), "");

    rt().block_on(async {
        let store = Store::open(&daemon_store(&d)).await.unwrap();
        let attempts = store.boot_attempts("agent-host", 10).await.unwrap();
        let failed = attempts
            .iter()
            .filter(|a| a.outcome == lookout_store::BootOutcome::Failed)
            .count();
        let ready = attempts.len() - failed;
        assert_eq!((failed, ready), (3, 2));
        let alerts = store.recent_notifications(20).await.unwrap();
        let crash: Vec<_> = alerts
            .iter()
            .filter(|n| n.dedup_key.as_deref() == Some("crash_loop:agent-host"))
            .collect();
        assert_eq!(crash.len(), 1, "one crash-loop alert: {alerts:?}");
        assert_eq!(crash[0].severity, "critical");
        assert!(
            crash[0]
                .text
                .starts_with("🔁 agent-host is crash-looping: 3 failed start(s) in 5m")
        );
        let events = store.events_after(0, 1000).await.unwrap();
        let kinds: Vec<&str> = events
            .iter()
            .filter(|e| e.subject.as_deref() == Some("agent-host"))
            .map(|e| e.kind.as_str())
            .collect();
        assert_eq!(kinds.iter().filter(|k| **k == "boot_started").count(), 5);
        assert_eq!(kinds.iter().filter(|k| **k == "boot_failed").count(), 3);
        assert_eq!(kinds.iter().filter(|k| **k == "boot_ready").count(), 2);
    });
}

#[test]
fn lookoutd_reports_its_own_failed_starts_with_their_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    // A first start that reaches ready, then is killed: a crash while serving is not a failed start.
    let d = Daemon::start_opts(Some(&state), &[], &[]);
    let out = d.stop_with("KILL", Duration::from_secs(5));
    assert!(!out.status.success());
    // A start that cannot open its store writes the cause into its breadcrumb before exiting.
    let out = run(
        "lookoutd",
        &[
            "--state-dir",
            state.to_str().unwrap(),
            "--bind",
            &format!("127.0.0.1:{}", lookout_e2e::free_port()),
            "--store-url",
            "postgres://lookout:pw@127.0.0.1:1/lookout",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    // The next good start counts the one failed start, and names its cause.
    let d = Daemon::start_opts(Some(&state), &[], &[]);
    rt().block_on(async {
        let store = Store::open(&daemon_store(&d)).await.unwrap();
        let alerts = store.recent_notifications(10).await.unwrap();
        let recovered = alerts
            .iter()
            .find(|n| n.dedup_key.as_deref() == Some("boot_recovered:lookoutd"))
            .expect("recovery alert");
        assert!(
            recovered.text.starts_with("lookoutd: ⚠️ Service recovered after 1 failed start(s). Last failure: cannot open store `postgres://lookout:***@127.0.0.1:1/lookout`"),
            "{}",
            recovered.text
        );
        assert!(!recovered.text.contains(":pw@"), "no secret in the cause");
        let attempts = store.boot_attempts("lookoutd", 10).await.unwrap();
        let outcomes: Vec<_> = attempts.iter().rev().map(|a| a.outcome).collect();
        use lookout_store::BootOutcome::{Failed, Ready};
        assert_eq!(outcomes, vec![Ready, Failed, Ready], "{attempts:?}");
    });
    let out = d.stop_with("TERM", Duration::from_secs(10));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("Service recovered after 1 failed start(s)"),
        "{log}"
    );
}

#[test]
fn the_api_needs_the_token_when_one_is_set_and_refuses_exposure_without_one() {
    let d = Daemon::start_opts(None, &[], &[("LOOKOUT_TOKEN", "s3cr3t-token")]);
    let tmp = tempfile::tempdir().unwrap();
    let args = ["--url", d.url.as_str(), "boot", "begin", "--service", "x"];
    let out = run("lookout", &args, tmp.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401") && err.contains("bearer token"), "{err}");
    let out = run_env("lookout", &args, tmp.path(), &[("LOOKOUT_TOKEN", "wrong")]);
    assert_eq!(out.status.code(), Some(1));
    let out = run_env(
        "lookout",
        &args,
        tmp.path(),
        &[("LOOKOUT_TOKEN", "s3cr3t-token")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // /health stays open.
    assert!(
        run("lookout", &["--url", d.url.as_str(), "health"], tmp.path())
            .status
            .success()
    );
    let log = d.stop_with("TERM", Duration::from_secs(10));
    assert!(
        !String::from_utf8_lossy(&log.stderr).contains("s3cr3t-token"),
        "the token is never logged"
    );

    // No token and a non-loopback address: refused before anything is bound or created.
    let out = run(
        "lookoutd",
        &[
            "--bind",
            &format!("0.0.0.0:{}", lookout_e2e::free_port()),
            "--state-dir",
            "s",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without a bearer token: set LOOKOUT_TOKEN"),
        "{err}"
    );
    assert!(!tmp.path().join("s").exists());
}

#[test]
fn bad_boot_requests_get_a_json_error_naming_the_field() {
    let d = Daemon::start(&[]);
    rt().block_on(async {
        let c = reqwest::Client::new();
        let post = |path: &str, body: &str| {
            c.post(format!("{}{path}", d.url))
                .header("content-type", "application/json")
                .body(body.to_owned())
                .send()
        };
        let r = post("/api/boot/begin", r#"{"service": "../etc"}"#)
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["field"], "service");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("invalid service name `../etc`")
        );

        let r = post("/api/boot/begin", r#"{"version": "1"}"#)
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("missing field `service`"),
            "{body}"
        );

        let r = post("/api/boot/fail", r#"{"service": "x", "cause": "  "}"#)
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["field"],
            "cause"
        );

        let r = post("/api/boot/ready", r#"{"service": "x", "sevrice": 1}"#)
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("unknown field `sevrice`"),
            "{body}"
        );

        let r = post("/api/boot/ready", "{not json").await.unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    });
}

#[test]
fn stale_scan_finds_interrupted_runs_in_the_daemons_store() {
    let d = Daemon::start_opts(
        None,
        &["--stale-processing", "10m", "--stale-scan-interval", "1h"],
        &[],
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        "lookout",
        &["--url", d.url.as_str(), "stale-scan"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).starts_with("no interrupted runs: nothing in flight longer than 10m"),
        "{}",
        stdout(&out)
    );

    rt().block_on(async {
        let store = Store::open(&daemon_store(&d)).await.unwrap();
        let now = chrono::Utc::now();
        let m = |chat: &str, id: &str| NewMessage {
            channel: "telegram".into(),
            chat_jid: chat.into(),
            message_id: id.into(),
            sender: None,
            direction: Direction::Inbound,
            timestamp: now - chrono::Duration::minutes(30),
        };
        store
            .record_messages(&[m("family", "1"), m("family", "2"), m("work", "3")])
            .await
            .unwrap();
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        store
            .mark_batch_processing(
                "family",
                &ids(&["1", "2"]),
                now - chrono::Duration::minutes(25),
            )
            .await
            .unwrap();
        store
            .mark_batch_processing("work", &ids(&["3"]), now - chrono::Duration::minutes(1))
            .await
            .unwrap();
    });
    let out = run(
        "lookout",
        &["--url", d.url.as_str(), "stale-scan"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1), "stale runs found: exit 1");
    let text = stdout(&out);
    assert!(text.lines().nth(1).unwrap().starts_with("family"), "{text}");
    assert!(
        !text.contains("work"),
        "a batch dispatched 1 minute ago is not stale: {text}"
    );
    let out = run(
        "lookout",
        &["--url", d.url.as_str(), "stale-scan", "--json"],
        tmp.path(),
    );
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["findings"][0]["count"], 2);
    assert_eq!(
        body["messages"][0],
        "⚠️ Interrupted run: 2 message(s) in chat family (#telegram) in flight for 25m with no response"
    );
    // Scanned twice, alerted once; and nothing was changed by detection.
    rt().block_on(async {
        let store = Store::open(&daemon_store(&d)).await.unwrap();
        let alerts = store.recent_notifications(20).await.unwrap();
        let n = alerts
            .iter()
            .filter(|a| a.dedup_key.as_deref() == Some("interrupted_run:family"))
            .count();
        assert_eq!(n, 1);
        assert_eq!(store.message_stats().await.unwrap().in_flight, 3);
    });
}
