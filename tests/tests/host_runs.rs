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
