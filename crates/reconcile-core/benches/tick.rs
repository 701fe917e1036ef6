//! A tick over 10,000 pending events in a SQLite store (file, WAL): drain, decode, apply, check
//! invariants, reconcile, execute (no-op effects), persist the driver state.
//!
//! `cargo bench -p lookout-reconcile-core --bench tick`

mod common;

use std::time::Instant;

use async_trait::async_trait;
use common::*;
use lookout_reconcile_core::host::{HostModel, Mark, Notice, Repair};
use lookout_reconcile_core::{
    Driver, DriverConfig, Effects, ManualClock, ReconcileError, Violation,
};
use lookout_store::NewEvent;

struct NoEffects;

#[async_trait]
impl Effects for NoEffects {
    async fn notify(&self, _: &str, _: &Notice) -> Result<(), ReconcileError> {
        Ok(())
    }
    async fn mark(&self, _: &str, _: &Mark) -> Result<(), ReconcileError> {
        Ok(())
    }
    async fn violations(
        &self,
        _: &[Violation],
        _: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), ReconcileError> {
        Ok(())
    }
    async fn repair(&self, _: &str, _: &Repair) -> Result<(), ReconcileError> {
        Ok(())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    const N: usize = 10_000;
    const SAMPLES: usize = 15;
    let dir = tempfile::tempdir().unwrap();
    let store = lookout_store::Store::open(&format!(
        "sqlite://{}",
        dir.path().join("lookout.db").display()
    ))
    .await
    .unwrap();
    let events: Vec<NewEvent> = stream(N, chrono::TimeDelta::milliseconds(100))
        .map(|(at, kind, p)| NewEvent::new(kind, p).at(at))
        .collect();
    for chunk in events.chunks(1000) {
        store.append_events(chunk).await.unwrap();
    }
    let now = events.last().unwrap().at;
    let mut times = Vec::new();
    for s in 0..SAMPLES {
        // A fresh state key: the driver starts at cursor 0 with all 10,000 events pending.
        let mut d = Driver::new(
            HostModel::default(),
            store.clone(),
            NoEffects,
            ManualClock::new(now),
            DriverConfig {
                state_key: format!("bench.tick.{s}"),
                ..DriverConfig::default()
            },
        );
        let t = Instant::now();
        let r = d.tick().await.unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r.events, N);
    }
    println!(
        "tick over {N} pending events (SQLite, {SAMPLES} samples): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        median(times.clone()),
        times.iter().cloned().fold(f64::MAX, f64::min),
        times.iter().cloned().fold(0.0, f64::max)
    );
}
