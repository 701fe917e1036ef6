//! Helpers shared by the integration tests: events, fake effects, an in-memory log.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use lookout_reconcile_core::alerts::{AlertAction, AlertState};
use lookout_reconcile_core::host::{Mark, Notice, Repair};
use lookout_reconcile_core::{Effects, EventSource, LoggedEvent, ReconcileError, Violation};
use lookout_store::{NewEvent, Store};
use serde_json::{Value, json};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap()
}

pub fn mins(m: i64) -> TimeDelta {
    TimeDelta::minutes(m)
}

/// An event of `kind` at `at`, with the subject the vocabulary gives it.
pub fn ev(at: DateTime<Utc>, kind: &str, payload: Value) -> NewEvent {
    let spec = lookout_reconcile_core::vocabulary::spec(kind);
    let subject = spec
        .and_then(|s| s.subject)
        .and_then(|f| payload.get(f))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut e = NewEvent::new(kind, payload).at(at);
    e.subject = subject;
    e
}

/// Fake effects: records what ran; fails while `failures_left` > 0, and for keys starting with
/// one of `fail_prefixes` (`"violations"`: the hand-over of the violations fails).
///
/// The violations handed over are recorded in `handed`, one entry per tick; and `firing` stands in
/// for the host's alert lifecycle (lookoutd's is lookout-notify's): a violation handed over that
/// does not fire yet fires once (recorded in `calls` as `alert:…` with its text), one that fires
/// and is no longer handed over resolves once (`resolved:…`). It outlives a driver, as the
/// lifecycle's state in the store outlives a restart.
#[derive(Default)]
pub struct FakeEffects {
    pub calls: Mutex<Vec<(String, String)>>,
    pub failures_left: AtomicUsize,
    pub fail_prefixes: Mutex<HashSet<String>>,
    pub handed: Mutex<Vec<(DateTime<Utc>, Vec<Violation>)>>,
    pub firing: Mutex<BTreeMap<String, AlertAction>>,
}

impl FakeEffects {
    /// `invariant|subject` of each violation of the `i`-th hand-over (negative: from the end).
    pub fn handed_keys(&self, i: isize) -> Vec<String> {
        let handed = self.handed.lock().unwrap();
        let i = if i < 0 { handed.len() as isize + i } else { i };
        handed[i as usize]
            .1
            .iter()
            .map(Violation::alert_key)
            .collect()
    }
    /// How many hand-overs there were.
    pub fn hand_overs(&self) -> usize {
        self.handed.lock().unwrap().len()
    }
    pub fn keys(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.0.clone())
            .collect()
    }
    pub fn texts(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.1.clone())
            .collect()
    }
    fn record(&self, key: &str, what: String) -> Result<(), ReconcileError> {
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
            || self
                .fail_prefixes
                .lock()
                .unwrap()
                .iter()
                .any(|p| key.starts_with(p))
        {
            return Err(ReconcileError::effect(key, "sink unreachable"));
        }
        self.calls.lock().unwrap().push((key.to_owned(), what));
        Ok(())
    }
}

#[async_trait]
impl Effects for FakeEffects {
    async fn notify(&self, key: &str, n: &Notice) -> Result<(), ReconcileError> {
        self.record(key, format!("notify {}: {}", n.group, n.text))
    }
    async fn mark(&self, key: &str, m: &Mark) -> Result<(), ReconcileError> {
        self.record(key, format!("mark {m:?}"))
    }
    async fn violations(
        &self,
        current: &[Violation],
        now: DateTime<Utc>,
    ) -> Result<(), ReconcileError> {
        if self
            .fail_prefixes
            .lock()
            .unwrap()
            .iter()
            .any(|p| "violations".starts_with(p.as_str()))
        {
            return Err(ReconcileError::effect(
                "violations",
                "lifecycle unreachable",
            ));
        }
        self.handed.lock().unwrap().push((now, current.to_vec()));
        let mut firing = self.firing.lock().unwrap();
        for v in current {
            let key = v.alert_key();
            if let Some(a) = firing.get_mut(&key) {
                a.message.clone_from(&v.message);
                continue;
            }
            let a = AlertAction {
                state: AlertState::Firing,
                invariant: v.invariant.clone(),
                subject: v.subject.clone(),
                message: v.message.clone(),
                first_seen: now,
                send: 1,
            };
            self.record(&a.key(), a.text())?;
            firing.insert(key, a);
        }
        let gone: Vec<String> = firing
            .keys()
            .filter(|k| !current.iter().any(|v| v.alert_key() == **k))
            .cloned()
            .collect();
        for k in gone {
            let mut a = firing[&k].clone();
            (a.state, a.send) = (AlertState::Resolved, 0);
            self.record(&a.key(), a.text())?;
            firing.remove(&k);
        }
        Ok(())
    }
    async fn repair(&self, key: &str, r: &Repair) -> Result<(), ReconcileError> {
        self.record(key, format!("repair {r:?}"))
    }
}

/// An in-memory log (for tests on a paused clock, where sqlx's timeouts would fire).
#[derive(Default)]
pub struct MemSource {
    pub events: Mutex<Vec<LoggedEvent>>,
    pub kv: Mutex<BTreeMap<String, String>>,
}

impl MemSource {
    pub fn push(&self, e: NewEvent) -> i64 {
        let mut events = self.events.lock().unwrap();
        let seq = events.len() as i64 + 1;
        events.push(LoggedEvent {
            seq,
            at: e.at,
            kind: e.kind,
            subject: e.subject,
            payload: e.payload,
        });
        seq
    }
}

#[async_trait]
impl EventSource for MemSource {
    async fn events_after(&self, c: i64, limit: u32) -> Result<Vec<LoggedEvent>, ReconcileError> {
        let ev = self.events.lock().unwrap();
        Ok(ev
            .iter()
            .filter(|e| e.seq > c)
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
        let ev = self.events.lock().unwrap();
        Ok(ev
            .iter()
            .filter(|e| e.at >= from && e.at < to && e.seq > after)
            .take(limit as usize)
            .cloned()
            .collect())
    }
    async fn latest_seq(&self) -> Result<i64, ReconcileError> {
        Ok(self.events.lock().unwrap().len() as i64)
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

/// The stuck-state story: a run starts in a container that later exits, and no `run_finished`
/// ever comes.
pub fn stuck_run_events(base: DateTime<Utc>) -> Vec<NewEvent> {
    let run =
        json!({"run_id": "r1", "group": "family", "run_kind": "message", "container": "agent-1"});
    vec![
        ev(base, "channel_connected", json!({"channel": "slack"})),
        ev(
            base + TimeDelta::seconds(1),
            "container_status",
            json!({"container": "agent-1", "status": "running"}),
        ),
        ev(base + TimeDelta::seconds(2), "run_started", run.clone()),
        ev(base + TimeDelta::seconds(60), "run_heartbeat", run),
        ev(
            base + TimeDelta::seconds(90),
            "container_status",
            json!({"container": "agent-1", "status": "exited"}),
        ),
    ]
}

/// Everything in the store that dry-run or replay must not change.
pub async fn store_snapshot(store: &Store) -> (i64, Vec<(String, String)>) {
    (
        store.latest_event_seq().await.unwrap(),
        store.router_state_all().await.unwrap(),
    )
}
