//! SIGKILL while hosts are posting: after a restart, every event that got a 2xx is in the log
//! exactly once, and applied exactly once (the messages table counts each message once, and the
//! reconciler's cursor reaches the end of the log without a failed tick).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lookout_e2e::Daemon;
use serde_json::{Value, json};

#[test]
fn acknowledged_events_survive_a_sigkill_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let d = Daemon::start_opts(Some(&state), &[], &[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let url = format!("{}/api/events", d.url);
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let mut clients = Vec::new();
        for c in 0..8 {
            let (http, url, acked) = (http.clone(), url.clone(), acked.clone());
            clients.push(tokio::spawn(async move {
                for b in 0.. {
                    let ids: Vec<String> = (0..20).map(|i| format!("m{c}-{b}-{i}")).collect();
                    let batch: Vec<Value> = ids
                        .iter()
                        .map(|id| {
                            json!({"kind": "message_received", "channel": "wa",
                                         "chat_jid": format!("chat-{c}"), "message_id": id,
                                         "timestamp": "2026-11-24T10:00:00Z"})
                        })
                        .collect();
                    match http.post(&url).json(&batch).send().await {
                        Ok(r) if r.status().is_success() => acked.lock().unwrap().extend(ids),
                        // The daemon is gone: this batch is unacknowledged; stop.
                        _ => break,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        lookout_e2e::signal(d.pid(), "KILL");
        for c in clients {
            c.await.unwrap();
        }
    });
    drop(d.stop_with("KILL", Duration::from_secs(10)));
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 100, "the clients got going: {}", acked.len());

    let d = Daemon::start_opts(Some(&state), &[], &[]);
    let body = rt.block_on(async {
        // Every stored message_received, by message id.
        let store =
            lookout_store::Store::open(&format!("sqlite://{}", state.join("lookout.db").display()))
                .await
                .unwrap();
        let mut per_id: HashMap<String, usize> = HashMap::new();
        let mut cursor = 0;
        loop {
            let page = store.events_after(cursor, 10_000).await.unwrap();
            let Some(last) = page.last() else { break };
            cursor = last.seq;
            for e in page.iter().filter(|e| e.kind == "message_received") {
                *per_id
                    .entry(e.payload["message_id"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
        let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "stored twice: {twice:?}");
        let stored: HashSet<&String> = per_id.keys().collect();
        let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(id)).collect();
        assert!(
            lost.is_empty(),
            "{} acknowledged event(s) lost: {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        // Applied once: the projection counts each stored message once, and the reconciler
        // catches up to the end of the log.
        let latest = store.latest_event_seq().await.unwrap();
        let mut status = Value::Null;
        for _ in 0..200 {
            status = reqwest::get(format!("{}/status?sections=messages", d.url))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if status["sections"]["messages"]["total_inbound"] == json!(per_id.len()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            status["sections"]["messages"]["total_inbound"],
            json!(per_id.len()),
            "{status}"
        );
        let mut dry = Value::Null;
        for _ in 0..100 {
            dry = reqwest::Client::new()
                .post(format!("{}/debug/reconcile-dry-run", d.url))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if dry["persisted_cursor"].as_i64() >= Some(latest) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (acked.len(), per_id.len(), dry, latest)
    });
    let (acked, stored, dry, latest) = body;
    // The reconciler reached the end of the log as it was after the restart (lookoutd may have
    // appended its own events since), not merely some point in it.
    assert!(
        dry["persisted_cursor"].as_i64().unwrap() >= latest,
        "the reconciler resumed and caught up to seq {latest}: {dry}"
    );
    let metrics = rt.block_on(async {
        reqwest::get(format!("{}/metrics", d.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(
        metrics.contains("lookout_reconcile_tick_errors_total 0"),
        "no failed tick after the restart"
    );
    println!("acknowledged {acked}, stored {stored} (the rest committed as the kill landed)");
}
