//! The tick driver against a real store, on SQLite and PostgreSQL.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use lookout_reconcile_core::host::{Action, HostModel, Repair};
use lookout_reconcile_core::replay::{dry_run, replay};
use lookout_reconcile_core::{
    AlertState, Driver, DriverConfig, ManualClock, ModelAction, TickReport,
};
use lookout_store::Store;
use serde_json::json;

type TestDriver = Driver<HostModel, Store, Arc<FakeEffects>, Arc<ManualClock>>;

fn driver(
    store: &Store,
    effects: &Arc<FakeEffects>,
    clock: &Arc<ManualClock>,
    auto_repair: bool,
) -> TestDriver {
    Driver::new(
        HostModel::default(),
        store.clone(),
        effects.clone(),
        clock.clone(),
        DriverConfig {
            auto_repair,
            ..DriverConfig::default()
        },
    )
}

fn keys(r: &TickReport<Action>) -> Vec<String> {
    r.executed.iter().map(|a| a.key()).collect()
}

async fn cursor_survives_a_restart(store: Store) {
    let (fx, clock) = (
        Arc::new(FakeEffects::default()),
        Arc::new(ManualClock::new(t0())),
    );
    let first: Vec<_> = (0..5)
        .map(|i| {
            ev(
                t0() + mins(i),
                "message_received",
                json!({"channel": "slack", "chat_jid": "c1", "message_id": format!("m{i}"),
                       "timestamp": "2026-11-24T10:00:00Z"}),
            )
        })
        .collect();
    store.append_events(&first).await.unwrap();
    let mut d = driver(&store, &fx, &clock, false);
    let r = d.tick().await.unwrap();
    assert_eq!((r.events, r.cursor, r.pending), (5, 5, 0));
    let live_before = d.state().unwrap().clone();
    drop(d); // "restart"
    store
        .append_events(&[ev(
            t0() + mins(9),
            "channel_disconnected",
            json!({"channel": "slack"}),
        )])
        .await
        .unwrap();
    let mut d = driver(&store, &fx, &clock, false);
    let r = d.tick().await.unwrap();
    // Only the new event is applied: nothing lost, nothing applied twice.
    assert_eq!((r.events, r.cursor), (1, 6));
    let st = d.state().unwrap();
    assert_eq!(st.known_messages, live_before.known_messages);
    assert!(!st.channels["slack"].connected);
    let r = d.tick().await.unwrap();
    assert_eq!(r.events, 0);
}

async fn a_failed_effect_is_retried_and_a_done_one_never_rerun(store: Store) {
    let (fx, clock) = (
        Arc::new(FakeEffects::default()),
        Arc::new(ManualClock::new(t0() + mins(1))),
    );
    store
        .append_events(&[
            ev(
                t0(),
                "message_received",
                json!({"channel": "slack", "chat_jid": "c1", "message_id": "m1",
                       "timestamp": "2026-11-24T10:00:00Z", "group": "family"}),
            ),
            ev(
                t0() + TimeDelta::seconds(5),
                "messages_recovered",
                json!({"channel": "slack", "chat_jid": "c1", "message_ids": ["m1", "m2", "m3", "m3"]}),
            ),
        ])
        .await
        .unwrap();
    fx.failures_left
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let mut d = driver(&store, &fx, &clock, false);
    let r = d.tick().await.unwrap();
    assert_eq!(r.failed.len(), 1, "{r:?}");
    assert_eq!(r.executed.len(), 1);
    let failed_key = r.failed[0].0.key();
    let r = d.tick().await.unwrap();
    assert_eq!(keys(&r), [failed_key], "the failed one is retried");
    assert_eq!(r.already_done, 1);
    let r = d.tick().await.unwrap();
    assert!(r.executed.is_empty() && r.already_done == 2);
    // A restart remembers what is done.
    let mut d = driver(&store, &fx, &clock, false);
    let r = d.tick().await.unwrap();
    assert!(r.executed.is_empty(), "{r:?}");
    assert_eq!(fx.keys().len(), 2);
    assert!(
        fx.texts().contains(
            &"notify family: Recovered 2 missed message(s) from #slack — processing now."
                .to_owned()
        ),
        "{:?}",
        fx.texts()
    );
}

/// The violations that hold are handed over on every tick, a restart included; one that clears is
/// no longer handed over. The tick report shows the alert beginning once and ending once, with no
/// hourly re-send (reminders are the host lifecycle's); the lifecycle stand-in fires once and
/// resolves once.
async fn every_tick_hands_the_violations_over_and_a_cleared_one_no_more(store: Store) {
    let (fx, clock) = (
        Arc::new(FakeEffects::default()),
        Arc::new(ManualClock::new(t0())),
    );
    store
        .append_event(&ev(
            t0(),
            "channel_disconnected",
            json!({"channel": "slack", "reason": "timeout"}),
        ))
        .await
        .unwrap();
    let mut d = driver(&store, &fx, &clock, false);
    assert!(d.tick().await.unwrap().executed.is_empty(), "within 2m");
    assert_eq!(
        fx.handed_keys(-1),
        Vec::<String>::new(),
        "an empty set is handed over too"
    );
    clock.advance(Duration::from_secs(150));
    let r = d.tick().await.unwrap();
    assert_eq!(r.violations[0].invariant, "I5");
    let [Action::Alert(a)] = r.executed.as_slice() else {
        panic!("{r:?}")
    };
    assert_eq!((a.state, a.send), (AlertState::Firing, 1));
    assert_eq!(fx.handed_keys(-1), ["I5|slack"]);
    for m in 0..5 {
        clock.advance(Duration::from_secs(60));
        let r = d.tick().await.unwrap();
        assert!(r.executed.is_empty(), "{r:?}");
        assert_eq!(fx.handed_keys(-1), ["I5|slack"], "tick {m}");
        // Handed over with the line of now, not the one of its first tick.
        let message = fx.handed.lock().unwrap().last().unwrap().1[0]
            .message
            .clone();
        assert_eq!(message, r.violations[0].message);
    }
    // A restart hands it over again, and does not report it as begun again.
    let mut d = driver(&store, &fx, &clock, false);
    assert!(d.tick().await.unwrap().executed.is_empty());
    assert_eq!(fx.handed_keys(-1), ["I5|slack"]);
    // An hour later: still handed over, no re-send.
    clock.advance(Duration::from_secs(3600));
    let r = d.tick().await.unwrap();
    assert!(r.executed.is_empty(), "{r:?}");
    assert_eq!(fx.handed_keys(-1), ["I5|slack"]);
    store
        .append_event(&ev(
            clock_now(&clock),
            "channel_connected",
            json!({"channel": "slack"}),
        ))
        .await
        .unwrap();
    let r = d.tick().await.unwrap();
    let [Action::Alert(a)] = r.executed.as_slice() else {
        panic!("{r:?}")
    };
    assert_eq!(a.state, AlertState::Resolved);
    assert_eq!(
        fx.handed_keys(-1),
        Vec::<String>::new(),
        "cleared: not handed over"
    );
    clock.advance(Duration::from_secs(3600 * 2));
    assert!(d.tick().await.unwrap().executed.is_empty());
    assert_eq!(fx.handed_keys(-1), Vec::<String>::new());
    assert_eq!(fx.hand_overs(), 11, "one hand-over per tick");
    let texts = fx.texts();
    assert_eq!(fx.keys().len(), 2, "{texts:?}");
    assert!(
        texts[0].starts_with("🚨 [I5] channel #slack disconnected for 2m"),
        "{texts:?}"
    );
    assert!(
        texts[1].starts_with("✅ [I5] resolved: slack (was: channel #slack disconnected for 1h"),
        "{texts:?}"
    );
}

/// A hand-over that fails is not recorded: the next tick hands the same set over again, and the
/// alert it begins is reported once it got through.
async fn a_failed_hand_over_is_handed_over_again(store: Store) {
    let (fx, clock) = (
        Arc::new(FakeEffects::default()),
        Arc::new(ManualClock::new(t0() + mins(10))),
    );
    store
        .append_event(&ev(
            t0(),
            "channel_disconnected",
            json!({"channel": "slack", "reason": "timeout"}),
        ))
        .await
        .unwrap();
    fx.fail_prefixes.lock().unwrap().insert("violations".into());
    let mut d = driver(&store, &fx, &clock, false);
    let r = d.tick().await.unwrap();
    assert!(r.executed.is_empty(), "{r:?}");
    let [(Action::Alert(a), why)] = r.failed.as_slice() else {
        panic!("{r:?}")
    };
    assert_eq!((a.state, a.invariant.as_str()), (AlertState::Firing, "I5"));
    assert!(why.contains("lifecycle unreachable"), "{why}");
    assert_eq!(fx.hand_overs(), 0);
    // A restart before it got through: still to begin.
    let mut d = driver(&store, &fx, &clock, false);
    assert_eq!(d.tick().await.unwrap().failed.len(), 1);
    fx.fail_prefixes.lock().unwrap().clear();
    clock.advance(Duration::from_secs(1));
    let r = d.tick().await.unwrap();
    let [Action::Alert(a)] = r.executed.as_slice() else {
        panic!("{r:?}")
    };
    assert_eq!(a.state, AlertState::Firing);
    assert!(r.failed.is_empty());
    assert_eq!(fx.handed_keys(-1), ["I5|slack"]);
    assert_eq!(
        fx.texts(),
        ["🚨 [I5] channel #slack disconnected for 10m (timeout)"]
    );
}

/// A driver state saved by the version with its own alert book (an `alerts` field, one alert
/// firing) loads: cursor, state and done keys are kept, the book is ignored, and the first tick
/// hands the violation over (the host's lifecycle already fires it: nothing is sent twice).
async fn a_state_saved_with_an_alert_book_still_loads(store: Store) {
    let (fx, clock) = (
        Arc::new(FakeEffects::default()),
        Arc::new(ManualClock::new(t0() + mins(5))),
    );
    store
        .append_event(&ev(
            t0(),
            "channel_disconnected",
            json!({"channel": "slack", "reason": "timeout"}),
        ))
        .await
        .unwrap();
    // The state the previous version saved after its first tick, written out as it wrote it.
    let mut d = driver(&store, &fx, &clock, false);
    d.tick().await.unwrap();
    assert_eq!(
        fx.texts().len(),
        1,
        "the lifecycle fires it: {:?}",
        fx.texts()
    );
    let state = serde_json::to_value(&d.driver_state().unwrap().state).unwrap();
    drop(d);
    let old = json!({
        "cursor": 1,
        "state": state,
        "alerts": {"firing": {"I5|slack": {
            "invariant": "I5", "subject": "slack",
            "message": "channel #slack disconnected for 5m (timeout)",
            "first_seen": "2026-11-24T10:05:00Z", "last_sent": "2026-11-24T10:05:00Z", "sends": 1}}},
        "done": ["alert:I5:slack:1795514700000000:1", "repair:run_to_idle:r9:0"],
    });
    store
        .router_state_set(
            lookout_reconcile_core::driver::DEFAULT_STATE_KEY,
            &old.to_string(),
        )
        .await
        .unwrap();
    let loaded = lookout_reconcile_core::driver::load_state::<
        lookout_reconcile_core::HostState,
        Store,
    >(&store, lookout_reconcile_core::driver::DEFAULT_STATE_KEY)
    .await
    .expect("an old state loads");
    assert_eq!(loaded.cursor, 1);
    assert_eq!(serde_json::to_value(&loaded.state).unwrap(), state);
    assert!(loaded.violating.is_empty());
    assert_eq!(loaded.done.len(), 2);
    // Started on it: nothing re-applied, the violation handed over, nothing sent twice.
    clock.advance(Duration::from_secs(60));
    let mut d = driver(&store, &fx, &clock, false);
    let r = d.tick().await.unwrap();
    assert_eq!((r.events, r.cursor), (0, 1));
    assert_eq!(fx.handed_keys(-1), ["I5|slack"]);
    assert_eq!(fx.texts().len(), 1, "{:?}", fx.texts());
    // Saved in the new form: no book any more.
    let saved: serde_json::Value = serde_json::from_str(
        &store
            .router_state_get(lookout_reconcile_core::driver::DEFAULT_STATE_KEY)
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert!(saved.get("alerts").is_none(), "{saved}");
    assert_eq!(saved["violating"]["I5|slack"]["invariant"], "I5");
}

fn clock_now(c: &ManualClock) -> chrono::DateTime<chrono::Utc> {
    lookout_reconcile_core::Clock::now(c)
}

async fn a_stuck_run_is_repaired_as_replay_and_dry_run_say(store: Store) {
    let events = stuck_run_events(t0());
    store.append_events(&events).await.unwrap();
    let now = t0() + mins(5);
    // Replay of the range finds the orphaned run and its repair.
    let model = HostModel::default();
    let rp = replay(&model, &store, t0(), now).await.unwrap();
    assert_eq!(rp.events, events.len());
    assert!(
        rp.violations
            .iter()
            .any(|v| v.invariant == "I1" && v.subject == "r1")
    );
    let repair = rp
        .actions
        .iter()
        .find(|a| a.is_repair())
        .expect("a repair")
        .clone();
    let Action::Repair(Repair::RunToIdle {
        run_id, container, ..
    }) = &repair
    else {
        panic!()
    };
    assert_eq!((run_id.as_str(), container.as_str()), ("r1", "agent-1"));

    // Dry-run on the live state says what the next tick executes.
    let (fx, clock) = (
        Arc::new(FakeEffects::default()),
        Arc::new(ManualClock::new(now)),
    );
    let config = DriverConfig {
        auto_repair: true,
        ..DriverConfig::default()
    };
    let before = store_snapshot(&store).await;
    let dry = dry_run(&model, &store, &config, now).await.unwrap();
    assert_eq!(store_snapshot(&store).await, before, "dry-run wrote");
    assert!(dry.actions.contains(&repair));
    let mut d = driver(&store, &fx, &clock, true);
    let r = d.tick().await.unwrap();
    assert_eq!(r.executed, dry.actions);
    assert!(fx.keys().contains(&repair.key()));
    // The host reports the repair; the violation resolves, and the repair is not repeated.
    store
        .append_event(&ev(
            now,
            "run_finished",
            json!({"run_id": "r1", "group": "family", "run_kind": "message", "outcome": "repaired"}),
        ))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(10));
    let r = d.tick().await.unwrap();
    assert!(r.violations.is_empty());
    assert!(r.executed.iter().all(|a| !a.is_repair()));
    assert!(
        r.executed
            .iter()
            .any(|a| matches!(a, Action::Alert(x) if x.state == AlertState::Resolved))
    );
}

async fn repairs_wait_for_auto_repair(store: Store) {
    store.append_events(&stuck_run_events(t0())).await.unwrap();
    let (fx, clock) = (
        Arc::new(FakeEffects::default()),
        Arc::new(ManualClock::new(t0() + mins(5))),
    );
    let dry = dry_run(
        &HostModel::default(),
        &store,
        &DriverConfig::default(),
        t0() + mins(5),
    )
    .await
    .unwrap();
    assert_eq!(dry.not_executed.len(), 1);
    let mut d = driver(&store, &fx, &clock, false);
    let r = d.tick().await.unwrap();
    assert_eq!(r.skipped.len(), 1);
    assert!(r.executed.iter().all(|a| !a.is_repair()));
    assert_eq!(r.executed.len(), 1, "the I1 alert still goes out");
}

async fn a_stalled_run_fires_once_and_resolves_once(store: Store) {
    let (fx, clock) = (
        Arc::new(FakeEffects::default()),
        Arc::new(ManualClock::new(t0())),
    );
    let beat = |progress: &str| {
        json!({"run_id": "r1", "group": "ops", "run_kind": "task", "task": "backup",
               "progress": progress})
    };
    store
        .append_event(&ev(
            t0(),
            "run_started",
            json!({"run_id": "r1", "group": "ops", "run_kind": "task", "task": "backup"}),
        ))
        .await
        .unwrap();
    let mut d = driver(&store, &fx, &clock, false);
    // A heartbeat a minute, with the same progress from minute 1: stalled at minute 6.
    for m in 1..=12 {
        let progress = if m <= 9 { "step 3" } else { "step 4" };
        clock.set(t0() + mins(m));
        store
            .append_event(&ev(t0() + mins(m), "run_heartbeat", beat(progress)))
            .await
            .unwrap();
        if m == 7 {
            d = driver(&store, &fx, &clock, false); // a restart while it fires
        }
        let r = d.tick().await.unwrap();
        let stalled = r.violations.iter().any(|v| v.invariant == "I8");
        assert_eq!(stalled, (6..=9).contains(&m), "minute {m}: {r:?}");
        assert!(r.violations.iter().all(|v| v.invariant == "I8"), "{r:?}");
    }
    // The run ends later: nothing more to say about it.
    clock.set(t0() + mins(13));
    store
        .append_event(&ev(
            t0() + mins(13),
            "run_finished",
            json!({"run_id": "r1", "group": "ops", "run_kind": "task", "task": "backup",
                   "outcome": "ok"}),
        ))
        .await
        .unwrap();
    d.tick().await.unwrap();
    clock.advance(Duration::from_secs(2 * 3600));
    d.tick().await.unwrap();
    assert_eq!(
        fx.texts(),
        [
            "⏳ backup alive but stalled: no progress for 5m (last: step 3)",
            "✅ [I8] resolved: r1 (was: ⏳ backup alive but stalled: no progress for 8m (last: step 3))",
        ]
    );
    let keys = fx.keys();
    assert!(keys[0].starts_with("alert:I8:r1:") && keys[1].starts_with("resolved:I8:r1:"));
}

async fn a_stalled_run_that_ends_resolves_once(store: Store) {
    let (fx, clock) = (
        Arc::new(FakeEffects::default()),
        Arc::new(ManualClock::new(t0())),
    );
    let run = json!({"run_id": "m-7", "group": "fam", "run_kind": "message", "progress": 12});
    let mut d = driver(&store, &fx, &clock, false);
    for m in 0..=7 {
        clock.set(t0() + mins(m));
        store
            .append_event(&ev(t0() + mins(m), "run_heartbeat", run.clone()))
            .await
            .unwrap();
        d.tick().await.unwrap();
    }
    store
        .append_event(&ev(t0() + mins(7), "run_finished", run.clone()))
        .await
        .unwrap();
    for _ in 0..3 {
        clock.advance(Duration::from_secs(60));
        d.tick().await.unwrap();
    }
    assert_eq!(
        fx.texts(),
        [
            "⏳ m-7 alive but stalled: no progress for 5m (last: 12)",
            "✅ [I8] resolved: m-7 (was: ⏳ m-7 alive but stalled: no progress for 7m (last: 12))",
        ]
    );
}

use chrono::TimeDelta;

lookout_store::store_tests!(
    cursor_survives_a_restart,
    a_failed_effect_is_retried_and_a_done_one_never_rerun,
    every_tick_hands_the_violations_over_and_a_cleared_one_no_more,
    a_failed_hand_over_is_handed_over_again,
    a_state_saved_with_an_alert_book_still_loads,
    a_stuck_run_is_repaired_as_replay_and_dry_run_say,
    repairs_wait_for_auto_repair,
    a_stalled_run_fires_once_and_resolves_once,
    a_stalled_run_that_ends_resolves_once,
);
