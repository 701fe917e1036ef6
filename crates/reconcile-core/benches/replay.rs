//! Replay of 1,000,000 events in memory: apply every (already typed) event to a fresh state, then
//! check invariants and reconcile once at the end (`replay_events`). Typing the stored JSON
//! (`HostEvent::from_logged`) is measured separately on 100,000 records and extrapolated.
//!
//! `cargo bench -p lookout-reconcile-core --bench replay`

mod common;

use std::time::Instant;

use chrono::TimeDelta;
use common::*;
use lookout_reconcile_core::host::{Event, HostEvent, HostModel};
use lookout_reconcile_core::{LoggedEvent, replay_events};

fn main() {
    const N: usize = 1_000_000;
    const SAMPLES: usize = 5;
    let step = TimeDelta::milliseconds(10);
    let events: Vec<HostEvent> = stream(N, step)
        .enumerate()
        .map(|(i, (at, kind, p))| HostEvent {
            seq: i as i64 + 1,
            at,
            fact: Event::from_payload(kind, &p),
        })
        .collect();
    let now = events.last().unwrap().at + TimeDelta::seconds(1);
    let model = HostModel::default();
    let mut times = Vec::new();
    for _ in 0..SAMPLES {
        let evs = events.clone(); // cloned outside the timed part
        let t = Instant::now();
        let (state, d) = replay_events(&model, evs, now);
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(state.last_seq, N as i64);
        std::hint::black_box(d);
    }
    println!(
        "replay of {N} typed events in memory (apply + one check/reconcile, {SAMPLES} samples): median {:.3} s",
        median(times)
    );

    const M: usize = 100_000;
    let stored: Vec<LoggedEvent> = stream(M, step)
        .enumerate()
        .map(|(i, (at, kind, payload))| LoggedEvent {
            seq: i as i64 + 1,
            at,
            kind: kind.to_owned(),
            subject: None,
            payload,
        })
        .collect();
    let mut times = Vec::new();
    for _ in 0..SAMPLES {
        let t = Instant::now();
        let typed: Vec<HostEvent> = stored.iter().map(HostEvent::from_logged).collect();
        times.push(t.elapsed().as_secs_f64());
        std::hint::black_box(typed);
    }
    let m = median(times);
    println!(
        "typing {M} stored records (JSON payload -> HostEvent): median {:.1} ms (≈ {:.2} s per 1,000,000)",
        m * 1e3,
        m * (N / M) as f64
    );
}
