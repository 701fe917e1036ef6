//! The `container_status` noise filter on a simulated hour: 50 agents, each reporting its container
//! every 5 s (720 reports an hour each, 36,000 in all). Each agent's container lives in cycles,
//! running then exited, with deterministic pseudo-random lengths, in two scenarios:
//! - typical: a container stays up for an agent session (20–60 min), then is down 1–5 min;
//! - churny: every container restarts every 10–20 min (running 8–15 min, down 2–5 min).
//!
//! `cargo bench -p lookout-reconcile-core --bench container_filter`

mod common;

use std::time::Instant;

use common::median;
use lookout_reconcile_core::ContainerStatusFilter;

fn main() {
    scenario("typical", (20 * 60, 60 * 60), (60, 5 * 60));
    scenario("churny", (8 * 60, 15 * 60), (2 * 60, 5 * 60));
}

fn scenario(name: &str, up: (u64, u64), down: (u64, u64)) {
    const AGENTS: usize = 50;
    const REPORTS: usize = 3600 / 5;
    // A small LCG: the same hour every run.
    let mut seed: u64 = 0x5EED;
    let mut next = |lo: u64, hi: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (seed >> 33) % (hi - lo + 1)
    };
    let mut reports: Vec<(String, &'static str)> = Vec::with_capacity(AGENTS * REPORTS);
    let mut schedules: Vec<Vec<(u64, &'static str)>> = Vec::new();
    for _ in 0..AGENTS {
        // (until second, status) segments covering the hour.
        let mut t = next(0, 600); // agents start at different moments
        let mut segs = vec![(t, "exited")];
        while t < 3600 {
            t += next(up.0, up.1);
            segs.push((t, "running"));
            t += next(down.0, down.1);
            segs.push((t, "exited"));
        }
        schedules.push(segs);
    }
    for r in 0..REPORTS {
        let sec = (r * 5) as u64;
        for (a, segs) in schedules.iter().enumerate() {
            let status = segs
                .iter()
                .find(|(until, _)| sec < *until)
                .map_or("exited", |s| s.1);
            reports.push((format!("agent-{a}"), status));
        }
    }
    let mut times = Vec::new();
    let mut admitted = 0;
    for _ in 0..9 {
        let mut f = ContainerStatusFilter::new();
        let t = Instant::now();
        admitted = reports.iter().filter(|(c, s)| f.admit(c, s)).count();
        times.push(t.elapsed().as_secs_f64());
    }
    let total = reports.len();
    println!(
        "container_status filter, {name}: 50 agents x 720 reports (1 h every 5 s): {total} reports -> \
         {admitted} rows stored ({:.2}% fewer); {:.0} ns per report (median of 9)",
        100.0 * (1.0 - admitted as f64 / total as f64),
        median(times) * 1e9 / total as f64
    );
}
