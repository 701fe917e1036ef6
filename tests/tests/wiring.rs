//! The scheduler, the reconciler, the watchdog, `/metrics` and systemd's notify socket, wired in the
//! real lookoutd and driven through its HTTP API and the real CLI.

use std::time::Duration;

use lookout_e2e::{Daemon, Receiver, run};
use serde_json::{Value, json};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn texts(got: &[Value]) -> Vec<String> {
    got.iter()
        .map(|b| b["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn config(dir: &std::path::Path, body: &str) -> String {
    let p = dir.join("lookout.toml");
    std::fs::write(&p, body).unwrap();
    p.to_str().unwrap().to_owned()
}

async fn post(url: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[test]
fn tasks_preview_needs_no_daemon_and_points_at_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        "lookout",
        &[
            "--url",
            "not a url",
            "tasks",
            "preview",
            "30 2 * * *",
            "--tz",
            "America/New_York",
            "--from",
            "2026-03-07T00:00:00-05:00",
            "--count",
            "3",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2026-03-07T02:30:00-05:00\n2026-03-08T03:00:00-04:00\n2026-03-09T02:30:00-04:00\n",
        "the spring-forward day runs once, at the first minute after the gap"
    );
    let out = run(
        "lookout",
        &[
            "tasks",
            "preview",
            "@hourly",
            "--from",
            "2026-11-01T00:30:00Z",
            "--count",
            "2",
            "--json",
        ],
        tmp.path(),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        json!(["2026-11-01T01:00:00+00:00", "2026-11-01T02:00:00+00:00"])
    );
    let out = run("lookout", &["tasks", "preview", "0 25 * * *"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("field 2, at character 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_task_added_through_the_cli_runs_says_so_and_shows_in_status_and_history() {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let file = config(
        tmp.path(),
        &format!(
            "[[notify.sinks]]\nkind = \"webhook\"\nurl = \"{}\"\n\n\
             [[jobs]]\nname = \"backup-db\"\nevery = \"1h\"\ncommand = \"echo backed up\"\n",
            r.url
        ),
    );
    let d = Daemon::start(&["--config", &file]);
    let url = d.url.as_str();
    let out = run(
        "lookout",
        &[
            "--url",
            url,
            "tasks",
            "add",
            "--name",
            "daily-report",
            "--group",
            "admin",
            "--cron",
            "0 9 * * *",
            "--tz",
            "Europe/London",
            "--command",
            "echo 23 API calls",
        ],
        tmp.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("added daily-report (cron 0 9 * * *)")
    );
    let out = run(
        "lookout",
        &["--url", url, "tasks", "run", "daily-report"],
        tmp.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = r.wait_for(Duration::from_secs(20), |g| {
        texts(g)
            .iter()
            .any(|t| t.starts_with("✅ daily-report finished"))
    });
    let t = texts(&got);
    assert!(t.iter().any(|x| x == "⏱ daily-report starting"), "{t:?}");
    assert!(
        t.iter()
            .any(|x| x.starts_with("✅ daily-report finished in") && x.contains("23 API calls")),
        "{t:?}"
    );
    assert_eq!(
        got.iter()
            .find(|b| b["text"] == "⏱ daily-report starting")
            .unwrap()["group"],
        "admin"
    );

    let out = run(
        "lookout",
        &["--url", url, "tasks", "list", "--json"],
        tmp.path(),
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"daily-report") && names.contains(&"backup-db"),
        "{names:?}"
    );
    let out = run(
        "lookout",
        &["--url", url, "tasks", "history", "daily-report", "--json"],
        tmp.path(),
    );
    let h: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(h["runs"][0]["outcome"], "ok", "{h}");
    rt().block_on(async {
        let s: Value = reqwest::get(format!("{url}/status?sections=tasks,host_jobs"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(s["sections"]["tasks"][0]["name"], "daily-report", "{s}");
        assert_eq!(s["sections"]["tasks"][0]["overdue"], false);
        assert_eq!(s["sections"]["host_jobs"][0]["name"], "backup-db");
        // The run's events are in the log, in the product's vocabulary.
        let ev: Value = reqwest::get(format!("{url}/api/events?kind=run_finished"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(ev.to_string().contains("daily-report"), "{ev}");
        let (code, body) = post(
            &format!("{url}/api/tasks"),
            &json!({"name": "bad", "group": "g", "cron": "0 25 * * *", "command": "true"}),
        )
        .await;
        assert_eq!(code, 422);
        assert!(
            body["error"].as_str().unwrap().contains("hour field"),
            "{body}"
        );
        let (code, _) = post(&format!("{url}/api/tasks/nope/run"), &json!({})).await;
        assert_eq!(code, 404);
    });
}

#[test]
fn dry_run_and_replay_show_the_repair_of_a_run_whose_container_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&[]);
    let url = d.url.as_str();
    let ago = |m: i64| (chrono::Utc::now() - chrono::Duration::minutes(m)).to_rfc3339();
    let from = ago(30);
    rt().block_on(async {
        let (code, _) = post(
            &format!("{url}/api/events"),
            &json!([
                {"kind": "run_started", "run_id": "r1", "group": "admin", "run_kind": "message",
                 "container": "agent-admin", "at": ago(10)},
                {"kind": "container_status", "container": "agent-admin", "status": "running", "at": ago(10)},
                {"kind": "container_status", "container": "agent-admin", "status": "exited", "at": ago(5)},
                {"kind": "run_started", "run_id": "r2", "group": "family", "run_kind": "message", "at": ago(9)},
                {"kind": "run_finished", "run_id": "r2", "group": "family", "run_kind": "message",
                 "outcome": "ok", "at": ago(8)},
            ]),
        )
        .await;
        assert_eq!(code, 200);
        let mut dry = Value::Null;
        for _ in 0..100 {
            (_, dry) = post(&format!("{url}/debug/reconcile-dry-run"), &json!({})).await;
            if dry["actions"].as_array().is_some_and(|a| !a.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let repair = dry["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "repair")
            .cloned()
            .unwrap_or_else(|| panic!("{dry}"));
        assert_eq!(repair["run_id"], "r1");
        assert_eq!(dry["not_executed"].as_array().unwrap().len(), 1, "auto_repair is off: {dry}");
        assert!(dry["violations"].to_string().contains("I1"), "{dry}");

        // The run the host reported as started shows in the queue section; the groups section
        // counts the groups runs were reported in, and those with a run going on.
        let q: Value = reqwest::get(format!("{url}/status?sections=queue,groups"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(q["sections"]["queue"]["active_containers"], 1, "{q}");
        assert_eq!(q["sections"]["queue"]["per_group"]["admin"]["active"], true);
        assert_eq!(
            q["sections"]["groups"],
            json!({"total": 2, "active_sessions": 1}),
            "{q}"
        );
        let to = chrono::Utc::now().to_rfc3339();
        let (code, rep) = post(
            &format!("{url}/debug/replay-events"),
            &json!({"from": from, "to": to}),
        )
        .await;
        assert_eq!(code, 200, "{rep}");
        // The run's three events, and lookoutd's own boot record of this start.
        assert!(rep["events"].as_u64().unwrap() >= 3, "{rep}");
        assert!(
            rep["actions"].as_array().unwrap().iter().any(|a| a["type"] == "repair" && a["run_id"] == "r1"),
            "{rep}"
        );
        for (body, field) in [
            (json!({"from": to, "to": from}), "range"),
            (json!({"from": "yesterday", "to": to}), "from"),
            (json!({"from": "2020-01-01T00:00:00Z", "to": to}), "range"),
        ] {
            let (code, e) = post(&format!("{url}/debug/replay-events"), &body).await;
            assert_eq!(code, 422, "{e}");
            assert_eq!(e["field"], field, "{e}");
        }
    });
    let out = run("lookout", &["--url", url, "dry-run"], tmp.path());
    assert_eq!(out.status.code(), Some(1), "it would act");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("repair") && text.contains("run r1"), "{text}");
    let out = run(
        "lookout",
        &[
            "--url",
            url,
            "replay",
            "--from",
            &from,
            "--to",
            &chrono::Utc::now().to_rfc3339(),
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("replayed "));
}

#[test]
fn metrics_are_prometheus_text_with_units_and_totals() {
    let d = Daemon::start(&[]);
    let body = rt().block_on(async {
        // One tick at least.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let r = reqwest::get(format!("{}/metrics", d.url)).await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        r.text().await.unwrap()
    });
    for name in [
        "lookout_reconcile_ticks_total",
        "lookout_reconcile_tick_duration_seconds_bucket",
        "lookout_reconcile_pending_events",
        "lookout_scheduler_runs_started_total{owner=\"task\"}",
        "lookout_scheduler_runs_started_total{owner=\"host_job\"}",
    ] {
        assert!(body.contains(name), "{name} missing:\n{body}");
    }
    assert!(body.trim_end().ends_with("# EOF"));
    // promtool's own check, where Debian's prometheus package is installed (CI installs it).
    if let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        // promtool reads the classic text format: the OpenMetrics end marker is not part of it.
        let classic = body.replace("# EOF\n", "");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(classic.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Read as classic text, an OpenMetrics counter's HELP names the family without `_total`,
        // which promtool reports as "no help text"; anything else it says is a real problem.
        let problems: Vec<&str> = said
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.ends_with("no help text"))
            .collect();
        assert!(problems.is_empty(), "promtool check metrics:\n{said}");
    } else {
        assert!(!lookout_common::in_ci(), "CI=true but promtool is missing");
        eprintln!("promtool not installed: the exposition was checked by name only");
    }
}

#[test]
fn a_hung_process_is_healed_through_the_tiers_and_explained() {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let start = format!(
        "cd {dir} && nohup sh -c 'echo $$ > bridge.pid; while true; do date +%s > bridge.heartbeat; sleep 0.2; done' >/dev/null 2>&1 &",
        dir = run_dir.display()
    );
    let file = config(
        tmp.path(),
        &format!(
            "[[notify.sinks]]\nkind = \"webhook\"\nurl = \"{url}\"\n\n\
             [[watch]]\nname = \"bridge\"\nkind = \"process\"\n\
             pid_file = \"{dir}/bridge.pid\"\nheartbeat_file = \"{dir}/bridge.heartbeat\"\n\
             start = {start:?}\nprobe_interval = \"200ms\"\nstale_after = \"1s\"\ncooldown = \"1s\"\n",
            url = r.url,
            dir = run_dir.display(),
        ),
    );
    // The bridge is started by the test, as a host's own unit would.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&start)
        .status()
        .unwrap();
    assert!(status.success());
    let pid_file = run_dir.join("bridge.pid");
    for _ in 0..50 {
        if pid_file.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let first: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let d = Daemon::start(&["--config", &file]);
    std::thread::sleep(Duration::from_millis(600));
    lookout_e2e::signal(first as u32, "STOP");
    let got = r.wait_for(Duration::from_secs(30), |g| {
        texts(g).iter().any(|t| t.contains("(tier 3)"))
    });
    let t = texts(&got);
    assert!(
        t.iter().any(|x| x.starts_with("🩹 bridge: heartbeat")),
        "{t:?}"
    );
    // A new bridge runs, the hung one is gone.
    let healed = (0..100).find_map(|_| {
        std::thread::sleep(Duration::from_millis(100));
        let p: i32 = std::fs::read_to_string(&pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        (p != first).then_some(p)
    });
    let healed = healed.expect("the start command wrote a new pid");
    assert!(
        !std::path::Path::new(&format!("/proc/{first}")).exists()
            || std::fs::read_to_string(format!("/proc/{first}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "the hung process was killed"
    );
    let out = run(
        "lookout",
        &["--url", d.url.as_str(), "watchdog", "explain", "bridge"],
        tmp.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("bridge (process)"));
    let out = run(
        "lookout",
        &["--url", d.url.as_str(), "watchdog", "list", "--json"],
        tmp.path(),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["targets"][0]["target"], "bridge");
    let out = run(
        "lookout",
        &["--url", d.url.as_str(), "watchdog", "reset", "nope"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    lookout_e2e::signal(healed as u32, "KILL");
}

#[test]
fn lookoutd_tells_systemd_it_is_ready_and_keeps_its_watchdog_fed() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("notify.sock");
    let rx = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _d = Daemon::start_opts(
        None,
        &[],
        &[
            ("NOTIFY_SOCKET", sock.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut got = Vec::new();
    let mut buf = [0u8; 128];
    while got.iter().filter(|m: &&String| *m == "WATCHDOG=1").count() < 2 {
        let n = rx.recv(&mut buf).expect("a notification within 10 s");
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(got[0], "READY=1", "{got:?}");
}
