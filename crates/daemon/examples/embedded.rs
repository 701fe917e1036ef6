//! lookoutd embedded in a host's own process: `lookout_daemon::run_until` with a temporary state
//! directory (its SQLite store and boot records go there) and a configuration file written next to
//! it, listening on a free port of 127.0.0.1. The example waits for `GET /health`, reports one
//! event through `POST /api/events` and reads it back with `GET /api/events`, glances at
//! `/metrics`, then stops the daemon through its shutdown future and checks that it stopped
//! cleanly. Nothing leaves 127.0.0.1.
//!
//! Run it with:
//!
//! ```text
//! cargo run -p lookout-daemon --example embedded
//! ```

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A port nobody listens on now: bind port 0, read what the kernel chose, let it go. (`run_until`
/// accepts `127.0.0.1:0` too, but does not say which port it got.)
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

#[tokio::main]
async fn main() {
    let start = Instant::now();
    let state = tempfile::tempdir().expect("a temporary state directory");
    // No bearer token (whatever the environment holds): the API is on loopback only.
    let config = state.path().join("lookout.toml");
    std::fs::write(
        &config,
        "[server]\ntoken_env = \"LOOKOUT_EXAMPLE_NO_TOKEN\"\n",
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let options = lookout_daemon::Options {
        config: Some(config),
        state_dir: Some(state.path().to_path_buf()),
        bind: Some(addr.clone()),
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut daemon = tokio::spawn(lookout_daemon::run_until(options, async move {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let base = format!("http://{addr}");

    // Wait until it answers (or fails to start, which ends its task early).
    let health: Value = loop {
        assert!(
            start.elapsed() < Duration::from_secs(12),
            "lookoutd did not answer /health in time"
        );
        if daemon.is_finished() {
            let result = (&mut daemon).await.expect("the daemon task");
            panic!("lookoutd stopped before answering: {result:?}");
        }
        match http.get(format!("{base}/health")).send().await {
            Ok(r) if r.status().is_success() => break r.json().await.unwrap(),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    println!(
        "lookoutd answers on {addr} after {} ms: {health}",
        start.elapsed().as_millis()
    );
    assert_eq!(health["status"], "ok");

    // The host reports a fact; the log has it.
    let posted: Value = http
        .post(format!("{base}/api/events"))
        .json(&json!({"kind": "channel_disconnected", "channel": "slack", "reason": "timeout"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    println!("POST /api/events -> {posted}");
    let seq = posted["seqs"][0].as_i64().expect("one seq");
    let events: Value = http
        .get(format!("{base}/api/events?kind=channel_disconnected"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let got = &events["events"][0];
    println!(
        "GET /api/events?kind=channel_disconnected -> seq {} subject {} payload {}",
        got["seq"], got["subject"], got["payload"]
    );
    assert_eq!(got["seq"], seq);
    assert_eq!(got["subject"], "slack");

    // A bad event is refused whole, naming its field.
    let refused = http
        .post(format!("{base}/api/events"))
        .json(&json!({"kind": "channel_disconnected"}))
        .send()
        .await
        .unwrap();
    let status = refused.status();
    let body: Value = refused.json().await.unwrap();
    println!(
        "POST of an event without `channel` -> {status}: {}",
        body["error"]
    );
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let families: Vec<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    println!(
        "/metrics: {} families, e.g. {}",
        families.len(),
        families
            .iter()
            .take(3)
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(families.iter().any(|f| f.starts_with("lookout_")));

    // Stop it the way an embedding host does: resolve the shutdown future.
    let _ = stop.send(());
    let result = tokio::time::timeout(Duration::from_secs(12), daemon)
        .await
        .expect("lookoutd stops within 12 s")
        .expect("the daemon task");
    result.expect("lookoutd stopped cleanly");
    assert!(state.path().join("lookout.db").exists());
    assert!(http.get(format!("{base}/health")).send().await.is_err());
    println!(
        "stopped cleanly after {:.1}s; its state directory held lookout.db",
        start.elapsed().as_secs_f32()
    );
}
