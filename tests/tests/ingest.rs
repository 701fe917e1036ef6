//! `POST /api/events` on a real lookoutd: single and batch, every rejection with its exact status and
//! body, idempotent retries, the container_status noise filter, and the tables the events feed
//! (the interrupted-run scan, boot records). Plus `lookout events send|tail`.

use std::time::Duration;

use lookout_e2e::{Daemon, run};
use serde_json::{Value, json};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn post(d: &Daemon, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/events", d.url))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn all_events(d: &Daemon) -> Vec<Value> {
    let r: Value = reqwest::get(format!("{}/api/events?limit=1000", d.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["events"].as_array().unwrap().clone()
}

fn ago(mins: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(mins)).to_rfc3339()
}

#[test]
fn single_and_batch_are_stored_and_answered_with_their_seqs() {
    let d = Daemon::start(&[]);
    rt().block_on(async {
        let (status, body) = post(&d, r#"{"kind": "channel_connected", "channel": "slack"}"#).await;
        assert_eq!(status, 200, "{body}");
        let first = body["seqs"][0].as_i64().unwrap();
        let (status, body) = post(
            &d,
            &json!([
                {"kind": "channel_disconnected", "channel": "slack", "reason": "timeout"},
                {"kind": "deploy", "sha": "abc123", "commit_message": "fix routing", "at": "2026-11-24T10:00:00+01:00"},
            ])
            .to_string(),
        )
        .await;
        assert_eq!(status, 200);
        let seqs: Vec<i64> = body["seqs"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        assert_eq!(seqs.len(), 2);
        assert!(seqs[0] > first && seqs[1] > seqs[0]);
        let events = all_events(&d).await;
        let deploy = events.iter().find(|e| e["kind"] == "deploy").unwrap();
        assert_eq!(deploy["subject"], "abc123");
        assert_eq!(deploy["at"], "2026-11-24T09:00:00Z");
        assert_eq!(deploy["payload"]["commit_message"], "fix routing");
        let disc = events.iter().find(|e| e["kind"] == "channel_disconnected").unwrap();
        assert_eq!(disc["payload"]["reason"], "timeout", "extra fields are kept");
    });
}

#[test]
fn bad_requests_are_rejected_whole_with_the_exact_reason() {
    let d = Daemon::start(&[]);
    rt().block_on(async {
        let before = all_events(&d).await.len();
        let (s, b) = post(&d, "{\"kind\": \"deploy\",\n \"sha\": }").await;
        assert_eq!(s, 400);
        assert!(b["error"].as_str().unwrap().starts_with("malformed JSON at line 2, column"), "{b}");

        let (s, b) = post(&d, r#"[{"kind": "deploy", "sha": "a"}, {"kind": "deploi", "sha": "b"}]"#).await;
        assert_eq!(s, 400);
        assert_eq!((b["index"].as_u64(), b["field"].as_str()), (Some(1), Some("kind")));
        assert!(b["error"].as_str().unwrap().starts_with("event 1: unknown kind `deploi`; known kinds:"), "{b}");

        let batch = json!([
            {"kind": "message_received", "channel": "wa", "chat_jid": "c1", "message_id": "m1", "timestamp": ago(1)},
            {"kind": "message_received", "channel": "wa", "chat_jid": "c1", "message_id": "m2", "timestamp": ago(1)},
            {"kind": "message_received", "channel": "wa", "message_id": "m3", "timestamp": ago(1)},
        ]);
        let (s, b) = post(&d, &batch.to_string()).await;
        assert_eq!(s, 400);
        assert_eq!(
            b,
            json!({
                "error": "event 2: missing field `chat_jid` (message_received needs channel, chat_jid, message_id, timestamp)",
                "index": 2,
                "field": "chat_jid"
            })
        );
        let (s, b) = post(&d, "42").await;
        assert_eq!(s, 400);
        assert_eq!(b["error"], "expected an event object or an array of them, found a number");
        assert_eq!(all_events(&d).await.len(), before, "nothing of a rejected request is stored");
    });
}

#[test]
fn a_time_too_far_ahead_is_refused_naming_its_field_and_nothing_is_stored() {
    let d = Daemon::start(&[]);
    rt().block_on(async {
        // A heartbeat dated 2099 would keep its target fresh forever: the whole batch is refused.
        let batch = json!([
            {"kind": "heartbeat", "target": "bridge"},
            {"kind": "heartbeat", "target": "bridge", "at": "2099-01-01T00:00:00Z"},
        ]);
        let (s, b) = post(&d, &batch.to_string()).await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(
            (b["index"].clone(), b["field"].clone()),
            (json!(1), json!("at"))
        );
        let error = b["error"].as_str().unwrap();
        assert!(
            error.starts_with("event 1: field `at` is ")
                && error.contains("d ")
                && error.ends_with("times more than 5m ahead are refused (ingest.max_skew)"),
            "{error}"
        );
        // A time field of the kind, too; a few seconds ahead (clocks differ) is fine.
        let ahead = |mins: i64| (chrono::Utc::now() + chrono::Duration::minutes(mins)).to_rfc3339();
        let msg = |ts: String| {
            json!({"kind": "message_received", "channel": "slack", "chat_jid": "c1",
                   "message_id": format!("m-{ts}"), "timestamp": ts})
            .to_string()
        };
        let (s, b) = post(&d, &msg(ahead(10))).await;
        assert_eq!((s, b["field"].clone()), (400, json!("timestamp")), "{b}");
        // lookoutd logs its own boot; none of the host's events is there.
        let hosts = |events: Vec<Value>| {
            events
                .into_iter()
                .filter(|e| e["kind"] == "heartbeat" || e["kind"] == "message_received")
                .count()
        };
        assert_eq!(
            hosts(all_events(&d).await),
            0,
            "nothing of a refused request is stored"
        );
        let (s, b) = post(&d, &msg(ahead(0))).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(hosts(all_events(&d).await), 1);
    });
}

#[test]
fn a_runs_heartbeats_and_finish_need_only_its_run_id() {
    let d = Daemon::start(&[]);
    rt().block_on(async {
        let started = json!({"kind": "run_started", "run_id": "r1", "group": "ops",
                             "run_kind": "task", "task": "backup", "container": "c1"});
        let (s, b) = post(&d, &started.to_string()).await;
        assert_eq!(s, 200, "{b}");
        // Later, and in one request with its own start: the group, kind and task are filled in.
        let (s, b) = post(
            &d,
            &json!([
                {"kind": "run_heartbeat", "run_id": "r1", "progress": 3},
                {"kind": "run_started", "run_id": "r2", "group": "family", "run_kind": "message"},
                {"kind": "run_finished", "run_id": "r2", "outcome": "ok"},
            ])
            .to_string(),
        )
        .await;
        assert_eq!((s, b.get("warnings")), (200, None), "{b}");
        let events = all_events(&d).await;
        let of = |kind: &str, run: &str| {
            events
                .iter()
                .find(|e| e["kind"] == kind && e["payload"]["run_id"] == run)
                .unwrap_or_else(|| panic!("{kind} of {run} in {events:#?}"))
                .clone()
        };
        let beat = of("run_heartbeat", "r1");
        assert_eq!(
            (&beat["payload"]["group"], &beat["payload"]["run_kind"], &beat["payload"]["task"]),
            (&json!("ops"), &json!("task"), &json!("backup"))
        );
        assert_eq!(beat["payload"]["progress"], 3);
        let done = of("run_finished", "r2");
        assert_eq!(
            (&done["payload"]["group"], &done["payload"]["run_kind"]),
            (&json!("family"), &json!("message"))
        );
        // A run never started: accepted, and said so.
        let (s, b) = post(&d, r#"{"kind": "run_heartbeat", "run_id": "ghost"}"#).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(
            b["warnings"],
            json!(["event 0: run `ghost` has no run_started; its run_heartbeat is stored without the run's group and kind"])
        );
        // What it says is still checked.
        let (s, b) = post(&d, r#"{"kind": "run_finished", "run_id": "r1", "run_kind": "cron"}"#).await;
        assert_eq!((s, b["field"].clone()), (400, json!("run_kind")), "{b}");
    });
}

#[test]
fn limits_answer_413_with_the_limit() {
    let d = Daemon::start(&[]);
    rt().block_on(async {
        let one = json!({"kind": "heartbeat", "target": "bridge"});
        let many = Value::Array(vec![one.clone(); 1001]);
        let (s, b) = post(&d, &many.to_string()).await;
        assert_eq!(s, 413);
        assert_eq!(
            b,
            json!({"error": "1001 events in one request; the limit is 1000", "limit": 1000})
        );
        let huge =
            json!({"kind": "heartbeat", "target": "bridge", "blob": "x".repeat(2 * 1024 * 1024)});
        let (s, b) = post(&d, &huge.to_string()).await;
        assert_eq!(s, 413);
        assert_eq!(b["limit"], 1_048_576);
        assert_eq!(
            b["error"],
            "request body larger than the limit of 1048576 bytes"
        );
        let fine = Value::Array(vec![one; 1000]);
        assert_eq!(post(&d, &fine.to_string()).await.0, 200);
    });
}

#[test]
fn a_retry_with_the_same_idempotency_key_is_stored_once() {
    let d = Daemon::start(&[]);
    rt().block_on(async {
        let ev = json!({"kind": "run_started", "run_id": "r1", "group": "admin", "run_kind": "task",
                        "task": "daily-report", "idempotency_key": "host-a:r1:start"});
        let (_, a) = post(&d, &ev.to_string()).await;
        let (_, b) = post(&d, &json!([ev, {"kind": "run_heartbeat", "run_id": "r1", "group": "admin", "run_kind": "task"}]).to_string()).await;
        assert_eq!(a["seqs"][0], b["seqs"][0]);
        let runs = all_events(&d).await.into_iter().filter(|e| e["kind"] == "run_started").count();
        assert_eq!(runs, 1);
    });
}

#[test]
fn repeated_container_status_is_not_stored() {
    let d = Daemon::start(&[]);
    rt().block_on(async {
        let st =
            |c: &str, s: &str| json!({"kind": "container_status", "container": c, "status": s});
        let (_, a) = post(
            &d,
            &json!([
                st("agent-1", "running"),
                st("agent-1", "running"),
                st("agent-2", "running")
            ])
            .to_string(),
        )
        .await;
        assert_eq!(
            a["seqs"][0], a["seqs"][1],
            "a repeat in the batch answers with the first seq"
        );
        for _ in 0..5 {
            let (_, b) = post(&d, &st("agent-1", "running").to_string()).await;
            assert_eq!(b["seqs"][0], a["seqs"][0]);
        }
        post(
            &d,
            &json!([
                st("agent-1", "exited"),
                st("agent-1", "exited"),
                st("agent-1", "running")
            ])
            .to_string(),
        )
        .await;
        let statuses: Vec<(String, String)> = all_events(&d)
            .await
            .into_iter()
            .filter(|e| e["kind"] == "container_status")
            .map(|e| {
                (
                    e["subject"].as_str().unwrap().into(),
                    e["payload"]["status"].as_str().unwrap().into(),
                )
            })
            .collect();
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            statuses,
            vec![
                s("agent-1", "running"),
                s("agent-2", "running"),
                s("agent-1", "exited"),
                s("agent-1", "running")
            ]
        );
    });
}

#[test]
fn message_events_feed_the_interrupted_run_scan() {
    let d = Daemon::start_opts(
        None,
        &["--stale-processing", "10m", "--stale-scan-interval", "1h"],
        &[],
    );
    let tmp = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let events = json!([
            {"kind": "message_received", "channel": "whatsapp", "chat_jid": "family", "message_id": "1", "timestamp": ago(30)},
            {"kind": "message_received", "channel": "whatsapp", "chat_jid": "family", "message_id": "2", "timestamp": ago(29)},
            {"kind": "batch_dispatched", "chat_jid": "family", "message_ids": ["1", "2"], "run_id": "r9", "at": ago(20)},
        ]);
        assert_eq!(post(&d, &events.to_string()).await.0, 200);
    });
    let out = run(
        "lookout",
        &["--url", d.url.as_str(), "stale-scan", "--json"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["findings"][0]["chat_jid"], "family");
    assert_eq!(body["findings"][0]["count"], 2);
    rt().block_on(async {
        let resp = json!({"kind": "bot_response", "chat_jid": "family", "timestamp": ago(0), "run_id": "r9"});
        assert_eq!(post(&d, &resp.to_string()).await.0, 200);
    });
    let out = run(
        "lookout",
        &["--url", d.url.as_str(), "stale-scan"],
        tmp.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn boot_events_drive_the_boot_records_once() {
    let d = Daemon::start(&[]);
    rt().block_on(async {
        let started = |key: &str| json!({"kind": "boot_started", "service": "py-host", "version": "1.4", "idempotency_key": key});
        post(&d, &started("a").to_string()).await;
        post(&d, &started("a").to_string()).await; // a retry: not a second start
        post(&d, &started("b").to_string()).await; // a real second start: the first failed
        let (s, _) = post(&d, &json!({"kind": "boot_ready", "service": "py-host"}).to_string()).await;
        assert_eq!(s, 200);
        let store = lookout_store::Store::open(&format!("sqlite://{}", d.state_dir.join("lookout.db").display()))
            .await
            .unwrap();
        let attempts = store.boot_attempts("py-host", 10).await.unwrap();
        assert_eq!(attempts.len(), 2, "one failed start and one ready: {attempts:?}");
        let alerts = store.recent_notifications(10).await.unwrap();
        assert!(alerts.iter().any(|n| n.text.starts_with("py-host: ⚠️ Service recovered after 1 failed start(s).")), "{alerts:?}");
        let kinds: Vec<String> = all_events(&d).await.iter().filter(|e| e["subject"] == "py-host").map(|e| e["kind"].as_str().unwrap().to_owned()).collect();
        // The retry is not stored again; the failure is found by (and logged after) the second start.
        assert_eq!(kinds, ["boot_started", "boot_started", "boot_failed", "boot_ready"]);
    });
}

#[test]
fn lookout_events_send_and_tail() {
    let d = Daemon::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        "lookout",
        &[
            "--url",
            d.url.as_str(),
            "events",
            "send",
            "--data",
            r#"[{"kind":"heartbeat","target":"bridge"},{"kind":"deploy","sha":"f00"}]"#,
        ],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("stored 2 event(s): seq "));
    std::fs::write(
        tmp.path().join("ev.json"),
        r#"{"kind":"version_stamp","target":"bridge","sha":"f00"}"#,
    )
    .unwrap();
    let out = run(
        "lookout",
        &[
            "--url",
            d.url.as_str(),
            "events",
            "send",
            "--file",
            "ev.json",
        ],
        tmp.path(),
    );
    assert!(out.status.success());
    let out = run(
        "lookout",
        &[
            "--url",
            d.url.as_str(),
            "events",
            "send",
            "--data",
            r#"{"kind":"heartbeat"}"#,
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("event 0: missing field `target`"));
    let out = run(
        "lookout",
        &["--url", d.url.as_str(), "events", "send", "--data", "{oops"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));

    let out = run(
        "lookout",
        &[
            "--url",
            d.url.as_str(),
            "events",
            "tail",
            "--kind",
            "deploy",
            "--json",
        ],
        tmp.path(),
    );
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["payload"]["sha"], "f00");

    // --follow prints what arrives later.
    let mut follow = std::process::Command::new(lookout_e2e::binary("lookout"))
        .args([
            "--url",
            d.url.as_str(),
            "events",
            "tail",
            "--kind",
            "channel_connected",
            "--follow",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = run(
        "lookout",
        &[
            "--url",
            d.url.as_str(),
            "events",
            "send",
            "--data",
            r#"{"kind":"channel_connected","channel":"matrix"}"#,
        ],
        tmp.path(),
    );
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(1500));
    follow.kill().unwrap();
    let out = follow.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"channel\":\"matrix\""), "{text}");
}
