//! A host's own run, followed by lookoutd: "still running" lines every interval with no timer in
//! the host, a finish line at the end, and no "no heartbeat" alarm for a run that promised none.

use std::time::Duration;

use lookout_e2e::{Daemon, Receiver};

fn post(url: &str, body: serde_json::Value) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(url)
            .json(&body)
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        r.json().await.unwrap()
    })
}

fn get(url: &str) -> serde_json::Value {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::Client::new()
                .get(url)
                .timeout(Duration::from_secs(20))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
}

fn texts(got: &[serde_json::Value], part: &str) -> Vec<String> {
    got.iter()
        .filter_map(|m| m["text"].as_str())
        .filter(|t| t.contains(part))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_silent_one_shot_run_gets_still_running_lines_and_its_finish_and_no_false_alarm() {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("lookout.toml");
    std::fs::write(
        &file,
        format!(
            "[thresholds]\nheartbeat_interval = \"1s\"\n\n\
             [[notify.sinks]]\nkind = \"webhook\"\nurl = \"{}\"\n",
            r.url
        ),
    )
    .unwrap();
    let d = Daemon::start(&["--config", file.to_str().unwrap()]);
    let events = format!("{}/api/events", d.url);
    // The seed's case: a scheduled task in a one-shot container that sends no heartbeat.
    post(
        &events,
        serde_json::json!({"kind": "run_started", "run_id": "r1", "group": "main",
            "run_kind": "task", "task": "nightly", "heartbeats": false}),
    );
    let got = r.wait_for(Duration::from_secs(30), |got| {
        texts(got, "⏱ nightly still running").len() >= 3
    });
    let lines = texts(&got, "⏱ nightly still running");
    assert_eq!(lines[0], "⏱ nightly still running (1s elapsed)");
    assert!(lines.iter().all(|l| l.ends_with(" elapsed)")), "{lines:?}");
    assert!(
        got.iter()
            .filter(|m| m["text"].as_str().unwrap_or("").contains("still running"))
            .all(|m| m["group"] == "main"),
        "routed to the run's group: {got:?}"
    );
    // Three intervals and more without a heartbeat: a run that promised none is not silent.
    assert!(texts(&got, "[I3]").is_empty(), "{got:?}");
    post(
        &events,
        serde_json::json!({"kind": "run_finished", "run_id": "r1", "outcome": "success"}),
    );
    let got = r.wait_for(Duration::from_secs(30), |got| {
        !texts(got, "✅ nightly finished after").is_empty()
    });
    let after = texts(&got, "⏱ nightly still running").len();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        texts(&r.received(), "⏱ nightly still running").len(),
        after,
        "no line after the finish"
    );
    assert!(texts(&r.received(), "[I3]").is_empty());
}

#[test]
fn a_run_in_a_real_process_is_said_active_then_lost_when_the_process_is_killed() {
    // A host whose runs are processes (no container, no heartbeats) gives their pid: lookoutd
    // looks at it itself.
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("lookout.toml");
    std::fs::write(
        &file,
        format!(
            "[thresholds]\nheartbeat_interval = \"1s\"\n\n\
             [[notify.sinks]]\nkind = \"webhook\"\nurl = \"{}\"\n",
            r.url
        ),
    )
    .unwrap();
    let d = Daemon::start(&["--config", file.to_str().unwrap()]);
    let events = format!("{}/api/events", d.url);
    let mut agent = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    post(
        &events,
        serde_json::json!({"kind": "run_started", "run_id": "p1", "group": "main",
            "run_kind": "task", "task": "sync", "pid": agent.id()}),
    );
    let got = r.wait_for(Duration::from_secs(30), |got| {
        texts(got, "⏱ sync still running").len() >= 3
    });
    let lines = texts(&got, "⏱ sync still running");
    assert!(
        lines
            .iter()
            .all(|l| l.ends_with("elapsed, process active)")),
        "{lines:?}"
    );
    // It promised heartbeats (the default) and sent none for 3 intervals: its process runs, so
    // it is not silent.
    assert!(texts(&got, "no heartbeat").is_empty(), "{got:?}");
    // /status shows the run and what it is watched through.
    let status = get(&format!("{}/status?sections=runs", d.url));
    let run = &status["sections"]["runs"]["list"][0];
    assert_eq!(run["run_id"], "p1", "{status}");
    assert_eq!(run["watched"], format!("process {}", agent.id()), "{run}");
    assert_eq!(run["state"], "active", "{run}");
    let doctor = get(&format!("{}/api/doctor", d.url));
    let line = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "host runs")
        .cloned()
        .unwrap_or_else(|| panic!("a host runs line: {doctor}"));
    assert_eq!(line["status"], "ok", "{line}");
    let killed = std::time::Instant::now();
    agent.kill().unwrap();
    agent.wait().unwrap(); // reaped: the pid is gone, as when the host's own child ends
    let got = r.wait_for(Duration::from_secs(15), |got| {
        !texts(got, "💀 sync lost").is_empty()
    });
    let took = killed.elapsed();
    let lost = &texts(&got, "💀 sync lost")[0];
    assert!(
        lost.contains(&format!("its process {} is gone", agent.id())),
        "{lost}"
    );
    eprintln!("a killed process's run known lost {took:?} after the kill (interval 1 s)");
    assert!(
        took < Duration::from_secs(5),
        "within an interval and slack: {took:?}"
    );
    // The run is closed in the log: no line after the loss.
    let after = texts(&r.received(), "⏱ sync still running").len();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(texts(&r.received(), "⏱ sync still running").len(), after);
}
