//! The reconciler over an event source written in the example: a `Vec` of `LoggedEvent`s in
//! memory implementing `EventSource` (no store: what a host without lookout-store supplies), with
//! Lookout's host model and `Effects` that print what they are asked to do. The log tells two
//! stories — a run whose container exited with no `run_finished` (invariant I1, an orphaned run,
//! with its repair) and a channel disconnected for minutes (I5). A dry run shows what the next
//! tick would do without doing it; the tick executes it (the repair, since `auto_repair` is on)
//! and hands the violations over to the effects, whose alert lifecycle — here a line printed per
//! hand-over — fires them (both alerts begin); the host then reports the run finished and the
//! channel back, and the next tick hands over an empty set (both alerts end). Time is a
//! `ManualClock`, so the run is instant and the same every time.
//!
//! Run it with:
//!
//! ```text
//! cargo run -p lookout-reconcile-core --example custom_source
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use lookout_reconcile_core::alerts::AlertState;
use lookout_reconcile_core::host::{Mark, Notice, Repair};
use lookout_reconcile_core::{
    Action, Driver, DriverConfig, Effects, EventSource, HostModel, Limits, LoggedEvent,
    ManualClock, ReconcileError, Violation, dry_run,
};
use serde_json::{Value, json};

/// The event log as a vector, and the driver's key/value space as a map.
#[derive(Default)]
struct VecSource {
    events: Mutex<Vec<LoggedEvent>>,
    kv: Mutex<BTreeMap<String, String>>,
}

impl VecSource {
    fn push(&self, at: DateTime<Utc>, kind: &str, subject: &str, payload: Value) -> i64 {
        let mut events = self.events.lock().unwrap();
        let seq = events.len() as i64 + 1;
        events.push(LoggedEvent {
            seq,
            at,
            kind: kind.to_owned(),
            subject: Some(subject.to_owned()),
            payload,
        });
        seq
    }
}

#[async_trait]
impl EventSource for VecSource {
    async fn events_after(
        &self,
        cursor: i64,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>, ReconcileError> {
        let events = self.events.lock().unwrap();
        Ok(events
            .iter()
            .filter(|e| e.seq > cursor)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>, ReconcileError> {
        let events = self.events.lock().unwrap();
        Ok(events
            .iter()
            .filter(|e| e.at >= from && e.at < to && e.seq > after)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn latest_seq(&self) -> Result<i64, ReconcileError> {
        Ok(self.events.lock().unwrap().last().map_or(0, |e| e.seq))
    }

    async fn load(&self, key: &str) -> Result<Option<String>, ReconcileError> {
        Ok(self.kv.lock().unwrap().get(key).cloned())
    }

    async fn save(&self, key: &str, value: &str) -> Result<(), ReconcileError> {
        self.kv
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }
}

/// The host's side effects: printed, and remembered by idempotency key.
#[derive(Default)]
struct Printed {
    done: Mutex<Vec<String>>,
}

impl Printed {
    fn record(&self, key: &str, line: String) {
        println!("    effect {line}");
        self.done.lock().unwrap().push(key.to_owned());
    }
}

#[async_trait]
impl Effects for Printed {
    async fn notify(&self, key: &str, notice: &Notice) -> Result<(), ReconcileError> {
        self.record(key, format!("notify {}: {}", notice.group, notice.text));
        Ok(())
    }

    async fn mark(&self, key: &str, mark: &Mark) -> Result<(), ReconcileError> {
        self.record(key, format!("mark {mark:?}"));
        Ok(())
    }

    async fn violations(
        &self,
        current: &[Violation],
        now: DateTime<Utc>,
    ) -> Result<(), ReconcileError> {
        // A host's alert lifecycle takes the whole set on every tick: fires what is new in it,
        // resolves what left it. Printed here.
        println!("    violations at {now}: {}", current.len());
        for v in current {
            println!("      {}", v.alert_text());
        }
        Ok(())
    }

    async fn repair(&self, key: &str, repair: &Repair) -> Result<(), ReconcileError> {
        let Repair::RunToIdle {
            run_id, container, ..
        } = repair;
        self.record(
            key,
            format!("repair: run {run_id} to idle (container {container} is gone)"),
        );
        Ok(())
    }
}

fn describe(action: &Action) -> String {
    match action {
        Action::Alert(a) => format!("{:?} alert {} on {}", a.state, a.invariant, a.subject),
        Action::Repair(Repair::RunToIdle { run_id, .. }) => format!("repair run {run_id} to idle"),
        Action::Notify(n) => format!("notify {}", n.group),
        Action::Mark(_) => "mark".to_owned(),
    }
}

#[tokio::main]
async fn main() {
    let t0: DateTime<Utc> = "2026-11-24T10:00:00Z".parse().unwrap();
    let source = VecSource::default();
    let run = json!({"run_id": "r1", "group": "ops", "run_kind": "task", "container": "agent-1"});
    source.push(
        t0,
        "channel_connected",
        "slack",
        json!({"channel": "slack"}),
    );
    source.push(t0, "run_started", "r1", run.clone());
    source.push(
        t0 + TimeDelta::seconds(20),
        "container_status",
        "agent-1",
        json!({"container": "agent-1", "status": "exited"}),
    );
    source.push(
        t0 + TimeDelta::seconds(30),
        "channel_disconnected",
        "slack",
        json!({"channel": "slack", "reason": "timeout"}),
    );
    println!("log: {} events", source.latest_seq().await.unwrap());

    let limits = Limits {
        heartbeat: Duration::from_secs(3600), // keep I3 (no heartbeat) out of this story
        ..Limits::default()
    };
    let config = DriverConfig {
        auto_repair: true,
        ..DriverConfig::default()
    };
    let clock = Arc::new(ManualClock::new(t0 + TimeDelta::minutes(4)));
    let effects = Arc::new(Printed::default());

    // Dry run: what the next tick would do, decided at `now`; nothing executed, nothing saved.
    let model = HostModel::new(limits.clone());
    let dry = dry_run(&model, &source, &config, t0 + TimeDelta::minutes(4))
        .await
        .unwrap();
    println!(
        "dry run at +4m: {} pending event(s) applied, {} violation(s), {} action(s):",
        dry.pending_applied,
        dry.violations.len(),
        dry.actions.len()
    );
    for v in &dry.violations {
        println!("    {} {}: {}", v.invariant, v.subject, v.message);
    }
    for a in &dry.actions {
        println!("    would: {}", describe(a));
    }
    let invariants: Vec<&str> = dry
        .violations
        .iter()
        .map(|v| v.invariant.as_str())
        .collect();
    assert_eq!(invariants, ["I1", "I5"], "{:#?}", dry.violations);
    assert!(dry.actions.iter().any(|a| matches!(a, Action::Repair(_))));
    assert!(
        source.kv.lock().unwrap().is_empty(),
        "a dry run writes nothing"
    );
    assert!(effects.done.lock().unwrap().is_empty());

    // The tick does it: alerts for both, and the repair.
    let mut driver = Driver::new(
        HostModel::new(limits),
        source,
        effects.clone(),
        clock.clone(),
        config,
    );
    println!("tick at +4m:");
    let first = driver.tick().await.unwrap();
    println!(
        "  applied {} event(s), cursor {}, executed {}, failed {}",
        first.events,
        first.cursor,
        first.executed.len(),
        first.failed.len()
    );
    assert_eq!(first.events, 4);
    assert_eq!(first.executed.len(), dry.actions.len());
    assert!(first.failed.is_empty());

    // Nothing new: decided again, done already, not re-run.
    let again = driver.tick().await.unwrap();
    println!(
        "tick again: executed {}, already done {}",
        again.executed.len(),
        again.already_done
    );
    assert!(again.executed.is_empty());

    // The host reports what the repair did, and the channel comes back.
    let mut finished = run.clone();
    finished["outcome"] = json!("repaired");
    let src = driver.source();
    src.push(t0 + TimeDelta::minutes(4), "run_finished", "r1", finished);
    src.push(
        t0 + TimeDelta::minutes(5),
        "channel_connected",
        "slack",
        json!({"channel": "slack"}),
    );
    clock.advance(Duration::from_secs(120));
    println!("tick at +6m:");
    let third = driver.tick().await.unwrap();
    println!(
        "  applied {} event(s), violations left {}, executed {}",
        third.events,
        third.violations.len(),
        third.executed.len()
    );
    assert!(third.violations.is_empty());
    let resolved = third
        .executed
        .iter()
        .filter(|a| matches!(a, Action::Alert(x) if x.state == AlertState::Resolved))
        .count();
    assert_eq!(resolved, 2, "{:#?}", third.executed);
    let saved = driver.source().kv.lock().unwrap().len();
    println!(
        "effects run: {}, driver state saved under {saved} key(s)",
        effects.done.lock().unwrap().len()
    );
    assert_eq!(saved, 1);
}
