//! Event-append throughput: one transaction per event against batches of 100, on SQLite (WAL,
//! synchronous=FULL) and PostgreSQL (a throwaway cluster with its default, durable settings).
//!
//! `cargo bench -p lookout-store --bench append` prints the median of several rounds of each.
//! `LOOKOUT_BENCH_ROUNDS` (default 5) and `LOOKOUT_BENCH_EVENTS` (batched events per round, default
//! 100,000) change the work.
#![allow(missing_docs)]

use std::time::Instant;

use chrono::Utc;
use lookout_store::testing::{PgCluster, PgDurability};
use lookout_store::{NewEvent, Store};
use serde_json::json;

/// A realistic event: ~200 bytes of payload.
fn event(i: usize) -> NewEvent {
    NewEvent::new(
        "run_heartbeat",
        json!({
            "run_id": format!("run-{:06}", i / 100),
            "group": "code-improver",
            "run_kind": "task",
            "task": "daily-report",
            "container": "lookout-agent-code-improver-1",
            "progress": {"step": i % 100, "last_tool": "git.commit", "tokens": 12345 + i},
        }),
    )
    .with_subject(format!("run-{:06}", i / 100))
    .at(Utc::now())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

async fn single(store: &Store, n: usize) -> f64 {
    let events: Vec<NewEvent> = (0..n).map(event).collect();
    let t = Instant::now();
    for e in &events {
        store.append_event(e).await.unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

async fn batched(store: &Store, n: usize, batch: usize) -> f64 {
    let events: Vec<NewEvent> = (0..n).map(event).collect();
    let t = Instant::now();
    for chunk in events.chunks(batch) {
        store.append_events(chunk).await.unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

async fn measure(name: &str, store: &Store, rounds: usize, n_batched: usize) {
    let n_single = (n_batched / 20).max(500);
    // Warm-up: connections open, statements cached.
    batched(store, 1_000, 100).await;
    let mut s = Vec::new();
    let mut b = Vec::new();
    for _ in 0..rounds {
        s.push(single(store, n_single).await);
        b.push(batched(store, n_batched, 100).await);
    }
    let (s, b) = (median(s), median(b));
    println!(
        "{name:<10} one tx per event: {s:>9.0} events/s (median of {rounds} × {n_single}) | \
         batches of 100: {b:>9.0} events/s (median of {rounds} × {n_batched}) | ratio {:.1}×",
        b / s
    );
}

fn main() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let rounds = env("LOOKOUT_BENCH_ROUNDS", 5);
    let n = env("LOOKOUT_BENCH_EVENTS", 100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let store = Store::open(&url).await.unwrap();
        measure("sqlite", &store, rounds, n).await;
        store.close().await;

        match PgCluster::start(PgDurability::Durable) {
            Ok(cluster) => {
                let store = Store::open(&cluster.admin_url()).await.unwrap();
                measure("postgres", &store, rounds, n).await;
                store.close().await;
            }
            Err(e) => println!("postgres   skipped: {e}"),
        }
    });
}
