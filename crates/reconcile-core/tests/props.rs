//! Property tests: applying twice changes nothing; replaying a range equals having applied it live;
//! dry-run never changes the store (real stores, both backends).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use lookout_reconcile_core::host::{HostEvent, HostModel, HostState, apply};
use lookout_reconcile_core::replay::{dry_run, replay};
use lookout_reconcile_core::{
    Driver, DriverConfig, DriverState, EventSource, LoggedEvent, ManualClock, Model, decide,
};
use lookout_store::{NewEvent, Store};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

/// One generated event: a kind and its fields over a small domain, so that events collide.
fn choice() -> impl Strategy<Value = (&'static str, Value)> {
    let run = |r: u8, c: u8, task: Option<u8>| {
        let mut v = json!({"run_id": format!("r{r}"), "group": "g", "run_kind": "task",
                           "container": format!("c{c}")});
        if let Some(t) = task {
            v["task"] = json!(format!("t{t}"));
        }
        v
    };
    let ids = || prop::collection::vec(0u8..12, 1..4);
    prop_oneof![
        (0u8..4, 0u8..3, prop::option::of(0u8..2))
            .prop_map(move |(r, c, t)| ("run_started", run(r, c, t))),
        // Progress over a tiny domain (and sometimes absent), so it repeats and changes (I8).
        (0u8..4, 0u8..3, prop::option::of(0u8..2)).prop_map(move |(r, c, p)| {
            let mut v = run(r, c, None);
            if let Some(p) = p {
                v["progress"] = json!(p);
            }
            ("run_heartbeat", v)
        }),
        (0u8..4, 0u8..3, prop::option::of(0u8..2))
            .prop_map(move |(r, c, t)| ("run_finished", run(r, c, t))),
        (0u8..3, prop::bool::ANY).prop_map(|(c, up)| (
            "container_status",
            json!({"container": format!("c{c}"), "status": if up { "running" } else { "exited" }})
        )),
        (0u8..2, prop::bool::ANY).prop_map(|(ch, up)| (
            if up {
                "channel_connected"
            } else {
                "channel_disconnected"
            },
            json!({"channel": format!("ch{ch}")})
        )),
        (0u8..3, 0u8..12).prop_map(|(chat, m)| (
            "message_received",
            json!({"channel": "ch0", "chat_jid": format!("chat{chat}"), "message_id": format!("m{m}"),
                   "timestamp": "2026-11-24T10:00:00Z"})
        )),
        (0u8..2, 0u8..3, ids()).prop_map(|(ch, chat, ids)| (
            "messages_recovered",
            json!({"channel": format!("ch{ch}"), "chat_jid": format!("chat{chat}"),
                   "message_ids": ids.iter().map(|m| format!("m{m}")).collect::<Vec<_>>()})
        )),
        (0u8..3, ids()).prop_map(|(chat, ids)| (
            "batch_dispatched",
            json!({"chat_jid": format!("chat{chat}"),
                   "message_ids": ids.iter().map(|m| format!("m{m}")).collect::<Vec<_>>()})
        )),
        (0u8..3).prop_map(|chat| (
            "bot_response",
            json!({"chat_jid": format!("chat{chat}"), "timestamp": "2026-11-24T10:00:00Z"})
        )),
        (0u8..3, 0u8..3).prop_map(|(d, k)| (
            ["delivery_queued", "delivery_sent", "delivery_failed"][k as usize],
            json!({"delivery_id": format!("d{d}"), "chat_jid": "chat0", "channel": "ch0"})
        )),
        (0u8..2, 0i64..30).prop_map(|(t, m)| (
            "task_scheduled",
            json!({"task": format!("t{t}"), "group": "g", "next_run": (t0() + TimeDelta::minutes(m)).to_rfc3339()})
        )),
        Just(("deploy", json!({"sha": "abc"}))),
    ]
}

fn events() -> impl Strategy<Value = Vec<(i64, (&'static str, Value))>> {
    prop::collection::vec((0i64..90, choice()), 1..40)
}

fn timed(base: DateTime<Utc>, evs: &[(i64, (&'static str, Value))]) -> Vec<NewEvent> {
    let mut at = base;
    evs.iter()
        .map(|(dt, (kind, payload))| {
            at += TimeDelta::seconds(*dt);
            ev(at, kind, payload.clone())
        })
        .collect()
}

fn host_events(evs: &[NewEvent]) -> Vec<HostEvent> {
    let model = HostModel::default();
    evs.iter()
        .enumerate()
        .map(|(i, e)| {
            model.decode(&LoggedEvent {
                seq: i as i64 + 1,
                at: e.at,
                kind: e.kind.clone(),
                subject: e.subject.clone(),
                payload: e.payload.clone(),
            })
        })
        .collect()
}

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]

    /// Applying an event twice (at once, or the whole history again) changes nothing.
    #[test]
    fn applying_twice_changes_nothing(evs in events()) {
        let hev = host_events(&timed(t0(), &evs));
        let mut once = HostState::default();
        for e in &hev {
            apply(&mut once, e);
        }
        let mut twice = HostState::default();
        for e in &hev {
            apply(&mut twice, e);
            apply(&mut twice, e);
        }
        for e in &hev {
            apply(&mut twice, e);
        }
        prop_assert_eq!(&once, &twice);
        let model = HostModel::default();
        let now = t0() + TimeDelta::hours(2);
        prop_assert_eq!(
            decide(&model, &once, &Default::default(), now),
            decide(&model, &twice, &Default::default(), now)
        );
    }

    /// The persisted state survives its JSON round trip unchanged.
    #[test]
    fn the_state_round_trips_through_json(evs in events()) {
        let mut st = HostState::default();
        for e in &host_events(&timed(t0(), &evs)) {
            apply(&mut st, e);
        }
        let back: HostState = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
        prop_assert_eq!(st, back);
    }
}

/// Each case gets its own day in the shared store, and a driver that starts at the log's end.
async fn replay_equals_live_and_dry_run_writes_nothing(store: Store) {
    let handle = tokio::runtime::Handle::current();
    let case = AtomicI64::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&events(), |evs| {
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let n = case.fetch_add(1, Ordering::SeqCst);
                let base = t0() + TimeDelta::days(n + 1);
                let key = format!("reconcile.prop.{n}");
                let start = store.latest_event_seq().await.unwrap();
                let seeded = DriverState::<HostState> {
                    cursor: start,
                    ..DriverState::default()
                };
                store
                    .save(&key, &serde_json::to_string(&seeded).unwrap())
                    .await
                    .unwrap();
                let new = timed(base, &evs);
                store.append_events(&new).await.unwrap();
                let end = new.last().unwrap().at + TimeDelta::seconds(1);
                let config = DriverConfig {
                    max_events_per_tick: 7,
                    state_key: key.clone(),
                    auto_repair: true,
                    ..DriverConfig::default()
                };
                let model = HostModel::default();

                // Dry-run before the driver ran (everything pending) writes nothing.
                let before = store_snapshot(&store).await;
                let dry = dry_run(&model, &store, &config, end).await.unwrap();
                assert_eq!(store_snapshot(&store).await, before);
                assert_eq!(dry.pending_applied, new.len());

                // Live: the driver, in ticks of 7 events.
                let mut d = Driver::new(
                    model.clone(),
                    store.clone(),
                    Arc::new(FakeEffects::default()),
                    Arc::new(ManualClock::new(end)),
                    config.clone(),
                );
                while d.tick().await.unwrap().pending > 0 {}
                let rp = replay(&model, &store, base, end).await.unwrap();
                assert_eq!(rp.events, new.len());
                assert_eq!(&rp.state, d.state().unwrap());

                // Dry-run after it (nothing pending) writes nothing either.
                let before = store_snapshot(&store).await;
                dry_run(&model, &store, &config, end + TimeDelta::hours(3))
                    .await
                    .unwrap();
                assert_eq!(store_snapshot(&store).await, before);
            })
        });
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

lookout_store::store_tests!(replay_equals_live_and_dry_run_writes_nothing);
