//! Ingest under load: 200 concurrent clients post batches of 50 events for 30 s to a release
//! lookoutd on SQLite. Reports errors, acknowledged against stored events (nothing may be lost),
//! request latency (median, p99, max), and `/health` latency sampled meanwhile.
//!
//! `cargo bench -p lookout-e2e --bench ingest_load` (`LOOKOUT_LOAD_SECS`, `LOOKOUT_LOAD_CLIENTS`,
//! `LOOKOUT_LOAD_BATCH` change the run).
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lookout_e2e::Daemon;
use serde_json::json;

fn env(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn main() {
    let secs = env("LOOKOUT_LOAD_SECS", 30);
    let clients = env("LOOKOUT_LOAD_CLIENTS", 200);
    let batch = env("LOOKOUT_LOAD_BATCH", 50);
    let d = Daemon::start(&[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients as usize)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        let t0 = Instant::now();
        for c in 0..clients {
            let (http, stop, acked, errors, url) =
                (http.clone(), stop.clone(), acked.clone(), errors.clone(), format!("{}/api/events", d.url));
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let events: Vec<_> = (0..batch)
                        .map(|i| {
                            json!({"kind": "run_heartbeat", "run_id": format!("load-{c}"), "group": "load",
                                   "run_kind": "task", "progress": {"step": n * batch + i}})
                        })
                        .collect();
                    n += 1;
                    let t = Instant::now();
                    match http.post(&url).json(&events).send().await {
                        Ok(r) if r.status().is_success() => {
                            let body: serde_json::Value = r.json().await.unwrap();
                            acked.fetch_add(body["seqs"].as_array().unwrap().len() as u64, Ordering::Relaxed);
                            lat.push(t.elapsed());
                        }
                        Ok(r) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!("error: {}", r.status());
                        }
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!("error: {e}");
                        }
                    }
                }
                lat
            }));
        }
        // /health and /status meanwhile, every 100 ms each.
        let sample = |path: &str| {
            let (http, stop, url) = (http.clone(), stop.clone(), format!("{}{path}", d.url));
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                        lat.push(t.elapsed());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                lat
            })
        };
        let health = sample("/health");
        let status = sample("/status");
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await.unwrap());
        }
        let wall = t0.elapsed().as_secs_f64();
        let mut hl = health.await.unwrap();
        let mut sl = status.await.unwrap();
        sl.sort();
        lat.sort();
        hl.sort();
        let acked = acked.load(Ordering::Relaxed);
        let store = lookout_store::Store::open(&format!("sqlite://{}", d.state_dir.join("lookout.db").display()))
            .await
            .unwrap();
        let stored = store
            .events_between(
                chrono::DateTime::<chrono::Utc>::MIN_UTC,
                chrono::DateTime::<chrono::Utc>::MAX_UTC,
                0,
                u32::MAX,
            )
            .await
            .unwrap()
            .iter()
            .filter(|e| e.kind == "run_heartbeat")
            .count() as u64;
        println!(
            "ingest load: {clients} clients × batches of {batch} for {wall:.1} s (SQLite, synchronous=FULL)\n\
             requests {} | errors {} | events acknowledged {acked} | stored {stored} | lost {}\n\
             throughput {:.0} events/s | request latency median {:.1} ms, p99 {:.1} ms, max {:.1} ms\n\
             /health meanwhile: {} samples, median {:.1} ms, p99 {:.1} ms\n\
             /status meanwhile: {} samples, median {:.1} ms, p99 {:.1} ms",
            lat.len(),
            errors.load(Ordering::Relaxed),
            acked.saturating_sub(stored),
            acked as f64 / wall,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&lat, 1.0),
            hl.len(),
            pct(&hl, 0.5),
            pct(&hl, 0.99),
            sl.len(),
            pct(&sl, 0.5),
            pct(&sl, 0.99),
        );
        assert_eq!(acked, stored, "every acknowledged event is in the log");
    });
}
