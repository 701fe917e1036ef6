//! The host model through its public API (`lookout_reconcile_core::host`): each invariant I1–I8
//! fires past its limit and not before, root causes fold what follows from them, recovered
//! messages are noticed once, and a state saved before I8 still loads.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use lookout_reconcile_core::host::{
    Action, Event, HostEvent, HostState, Limits, PROGRESS_TEXT_MAX, apply, check_invariants,
    reconcile,
};
use serde_json::{Value, json};

fn t(m: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap() + TimeDelta::minutes(m)
}

fn state(events: &[(i64, &str, Value)]) -> HostState {
    let mut s = HostState::default();
    for (i, (m, kind, p)) in events.iter().enumerate() {
        apply(
            &mut s,
            &HostEvent {
                seq: i as i64 + 1,
                at: t(*m),
                fact: Event::from_payload(kind, p),
            },
        );
    }
    s
}

fn ids(s: &HostState, limits: &Limits, now: i64) -> Vec<(String, String)> {
    check_invariants(s, limits, t(now))
        .into_iter()
        .map(|v| (v.invariant, v.subject))
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[test]
fn each_invariant_fires_past_its_limit_and_not_before() {
    let run = json!({"run_id": "r1", "group": "g", "run_kind": "task", "task": "daily"});
    let s = state(&[
        (
            0,
            "batch_dispatched",
            json!({"chat_jid": "c1", "message_ids": ["m1"]}),
        ),
        (0, "run_started", run.clone()),
        (
            0,
            "delivery_queued",
            json!({"delivery_id": "d1", "chat_jid": "c1"}),
        ),
        (0, "channel_disconnected", json!({"channel": "slack"})),
        (
            0,
            "container_status",
            json!({"container": "a", "status": "running"}),
        ),
        (
            0,
            "container_status",
            json!({"container": "b", "status": "running"}),
        ),
        (
            0,
            "task_scheduled",
            json!({"task": "weekly", "next_run": t(1).to_rfc3339()}),
        ),
    ]);
    let limits = Limits {
        max_concurrent: Some(1),
        ..Limits::default()
    };
    assert_eq!(ids(&s, &limits, 1), [pair("I6", "containers")]);
    assert_eq!(
        ids(&s, &limits, 11),
        [
            pair("I2", "c1"),
            pair("I3", "r1"),
            pair("I4", "d1"),
            pair("I5", "slack"),
            pair("I6", "containers"),
            pair("I7", "weekly"),
        ]
    );
    // Answers, heartbeats, sends, reconnects and runs clear them.
    let mut s = s;
    for (i, (kind, p)) in [
        (
            "bot_response",
            json!({"chat_jid": "c1", "timestamp": t(11).to_rfc3339()}),
        ),
        ("run_heartbeat", run),
        (
            "delivery_sent",
            json!({"delivery_id": "d1", "chat_jid": "c1"}),
        ),
        ("channel_connected", json!({"channel": "slack"})),
        (
            "container_status",
            json!({"container": "b", "status": "exited"}),
        ),
        (
            "run_started",
            json!({"run_id": "r2", "group": "g", "run_kind": "task", "task": "weekly"}),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        apply(
            &mut s,
            &HostEvent {
                seq: 100 + i as i64,
                at: t(11),
                fact: Event::from_payload(kind, &p),
            },
        );
    }
    assert!(
        ids(&s, &limits, 12).is_empty(),
        "{:?}",
        ids(&s, &limits, 12)
    );
}

#[test]
fn a_channel_down_folds_its_stuck_deliveries() {
    let s = state(&[
        (
            0,
            "delivery_queued",
            json!({"delivery_id": "d1", "chat_jid": "c1", "channel": "wa"}),
        ),
        (0, "channel_disconnected", json!({"channel": "wa"})),
    ]);
    let v = check_invariants(&s, &Limits::default(), t(10));
    assert_eq!(v.len(), 1);
    assert!(
        v[0].message
            .ends_with("also affected: 1 pending deliveries"),
        "{}",
        v[0].message
    );
}

#[test]
fn recovered_messages_are_deduplicated_by_id() {
    let s = state(&[
        (
            0,
            "message_received",
            json!({"channel": "wa", "chat_jid": "c1", "message_id": "m1", "group": "fam"}),
        ),
        (
            1,
            "messages_recovered",
            json!({"channel": "wa", "chat_jid": "c1", "message_ids": ["m1", "m2"]}),
        ),
        (
            2,
            "messages_recovered",
            json!({"channel": "wa", "chat_jid": "c1", "message_ids": ["m2"]}),
        ),
    ]);
    let texts: Vec<String> = reconcile(&s, &Limits::default(), t(3))
        .into_iter()
        .filter_map(|a| match a {
            Action::Notify(n) => Some(format!("{}: {}", n.group, n.text)),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        ["fam: Recovered 1 missed message(s) from #wa — processing now."]
    );
    // A day later the notice is no longer acted on.
    assert!(reconcile(&s, &Limits::default(), t(3 + 25 * 60)).is_empty());
}

#[test]
fn an_orphaned_run_waits_for_its_grace_and_is_not_also_silent() {
    let s = state(&[
        (
            0,
            "run_started",
            json!({"run_id": "r1", "group": "g", "run_kind": "message", "container": "k"}),
        ),
        (
            1,
            "container_status",
            json!({"container": "k", "status": "exited"}),
        ),
    ]);
    assert!(ids(&s, &Limits::default(), 1).is_empty());
    assert_eq!(ids(&s, &Limits::default(), 20), [pair("I1", "r1")]);
}

fn run_event(progress: Option<Value>) -> Value {
    let mut v = json!({"run_id": "r1", "group": "ops", "run_kind": "task", "task": "backup"});
    if let Some(p) = progress {
        v["progress"] = p;
    }
    v
}

/// `run_started` at minute 0, then a heartbeat every minute `1..=last` with `progress(m)`.
fn beating(last: i64, progress: impl Fn(i64) -> Option<Value>) -> Vec<(i64, &'static str, Value)> {
    let mut ev = vec![(0, "run_started", run_event(None))];
    for m in 1..=last {
        ev.push((m, "run_heartbeat", run_event(progress(m))));
    }
    ev
}

fn stalled_at(s: &HostState, now: i64) -> Vec<String> {
    check_invariants(s, &Limits::default(), t(now))
        .into_iter()
        .filter(|v| v.invariant == "I8")
        .map(|v| v.message)
        .collect()
}

#[test]
fn fixed_progress_is_stalled_after_stall_after_and_not_before() {
    // First progress at minute 1 (that is its change); the same value every minute after.
    let s = state(&beating(7, |_| Some(json!({"step": 3, "tool": "grep"}))));
    assert_eq!(s.runs["r1"].progress_changed_at, Some(t(1)));
    for now in [1, 2, 5] {
        assert_eq!(ids(&s, &Limits::default(), now), [], "at {now}m");
    }
    let just_before = check_invariants(&s, &Limits::default(), t(6) - TimeDelta::seconds(1));
    assert!(just_before.is_empty(), "{just_before:?}");
    assert_eq!(ids(&s, &Limits::default(), 6), [pair("I8", "r1")]);
    assert_eq!(
        stalled_at(&s, 6),
        [r#"⏳ backup alive but stalled: no progress for 5m (last: {"step":3,"tool":"grep"})"#]
    );
    // The alert a person reads is product.md's text, as is: as the lifecycle is handed it, and
    // as dry-run shows the alert that begins.
    let vs = check_invariants(&s, &Limits::default(), t(6));
    let begins = lookout_reconcile_core::Violating::default().diff(&vs, t(6));
    for text in [vs[0].alert_text(), begins[0].text()] {
        assert_eq!(
            text,
            r#"⏳ backup alive but stalled: no progress for 5m (last: {"step":3,"tool":"grep"})"#
        );
    }
    // The threshold is the limit's, whatever it is.
    let short = Limits {
        stall_after: Duration::from_secs(120),
        ..Limits::default()
    };
    assert_eq!(ids(&s, &short, 2), []);
    assert_eq!(ids(&s, &short, 3), [pair("I8", "r1")]);
}

#[test]
fn a_message_run_is_named_by_its_run_id_and_long_progress_is_cut() {
    let long = "x".repeat(150);
    let s = state(&[
        (
            0,
            "run_started",
            json!({"run_id": "m-42", "group": "g", "run_kind": "message", "progress": long}),
        ),
        (
            5,
            "run_heartbeat",
            json!({"run_id": "m-42", "group": "g", "run_kind": "message", "progress": long}),
        ),
    ]);
    assert_eq!(
        stalled_at(&s, 5),
        [format!(
            "⏳ m-42 alive but stalled: no progress for 5m (last: {}…)",
            "x".repeat(PROGRESS_TEXT_MAX)
        )]
    );
}

#[test]
fn progress_that_moves_resolves_the_stall_once() {
    let mut events = beating(7, |_| Some(json!(3)));
    events.push((8, "run_heartbeat", run_event(Some(json!(4)))));
    let stuck = state(&events[..8]);
    let moved = state(&events);
    // Handed over at 7 (its alert begins), no longer at 8 (it ends), once.
    let mut seen = lookout_reconcile_core::Violating::default();
    let at7 = check_invariants(&stuck, &Limits::default(), t(7));
    let fired = seen.diff(&at7, t(7));
    assert_eq!(fired.len(), 1);
    seen.record(&at7, t(7));
    assert_eq!(ids(&moved, &Limits::default(), 8), []);
    let at8 = check_invariants(&moved, &Limits::default(), t(8));
    let resolved = seen.diff(&at8, t(8));
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        resolved[0].text(),
        "✅ [I8] resolved: r1 (was: ⏳ backup alive but stalled: no progress for 6m (last: 3))"
    );
    seen.record(&at8, t(8));
    assert!(seen.diff(&[], t(9)).is_empty());
    // Progress moved at 8: stalled again only 5 minutes later.
    for m in 9..=13 {
        events.push((m, "run_heartbeat", run_event(Some(json!(4)))));
    }
    let again = state(&events);
    assert_eq!(ids(&again, &Limits::default(), 12), []);
    assert_eq!(ids(&again, &Limits::default(), 13), [pair("I8", "r1")]);
}

#[test]
fn progress_compares_as_json_and_absent_progress_changes_nothing() {
    // "3" (a string) and 3 (a number) are different values: a change.
    let s = state(&[
        (0, "run_heartbeat", run_event(Some(json!("3")))),
        (4, "run_heartbeat", run_event(Some(json!(3)))),
        (6, "run_heartbeat", run_event(None)),
        (7, "run_heartbeat", run_event(Some(Value::Null))),
    ]);
    let run = &s.runs["r1"];
    assert_eq!(run.progress_changed_at, Some(t(4)));
    assert_eq!(run.progress_value, Some(json!(3)));
    assert_eq!(ids(&s, &Limits::default(), 8), []);
    assert_eq!(ids(&s, &Limits::default(), 9), [pair("I8", "r1")]);
    // Objects compare as JSON values: key order is no change.
    let s = state(&[
        (
            0,
            "run_heartbeat",
            run_event(Some(json!({"a": 1, "b": [2]}))),
        ),
        (
            4,
            "run_heartbeat",
            run_event(Some(serde_json::from_str(r#"{"b":[2],"a":1}"#).unwrap())),
        ),
    ]);
    assert_eq!(s.runs["r1"].progress_changed_at, Some(t(0)));
}

#[test]
fn the_run_ending_resolves_the_stall() {
    let mut events = beating(6, |_| Some(json!("step 3")));
    assert_eq!(
        ids(&state(&events), &Limits::default(), 6),
        [pair("I8", "r1")]
    );
    events.push((6, "run_finished", run_event(None)));
    assert_eq!(ids(&state(&events), &Limits::default(), 6), []);
}

#[test]
fn a_run_that_reports_no_progress_is_never_stalled() {
    let none = state(&beating(60, |_| None));
    let null = state(&beating(60, |_| Some(Value::Null)));
    for s in [&none, &null] {
        assert_eq!(s.runs["r1"].progress_changed_at, None);
        assert_eq!(ids(s, &Limits::default(), 60), []);
    }
}

#[test]
fn a_silent_run_is_i3_not_i8() {
    // Same progress every minute until minute 2, then nothing: silent, never stalled.
    let s = state(&beating(2, |_| Some(json!(1))));
    assert_eq!(ids(&s, &Limits::default(), 5), []);
    assert_eq!(ids(&s, &Limits::default(), 6), [pair("I3", "r1")]);
    assert_eq!(ids(&s, &Limits::default(), 30), [pair("I3", "r1")]);
    // Stalled first, then silent: the I8 hands over to I3 (never both), whose line says so.
    let s = state(&beating(7, |_| Some(json!(1))));
    assert_eq!(ids(&s, &Limits::default(), 10), [pair("I8", "r1")]);
    assert_eq!(ids(&s, &Limits::default(), 11), [pair("I3", "r1")]);
    let v = check_invariants(&s, &Limits::default(), t(11));
    assert_eq!(
        v[0].message,
        "run r1 (task backup) has sent no heartbeat for 4m; no progress for 10m (last: 1)"
    );
    // An orphaned run is I1 only.
    let mut events = beating(7, |_| Some(json!(1)));
    events[0].2["container"] = json!("k");
    events.push((
        7,
        "container_status",
        json!({"container": "k", "status": "exited"}),
    ));
    assert_eq!(
        ids(&state(&events), &Limits::default(), 8),
        [pair("I1", "r1")]
    );
}

#[test]
fn a_state_saved_before_i8_still_loads() {
    // A driver state as the previous version saved it: no progress_value, no
    // progress_changed_at, and Limits without stall_after.
    let old = r#"{"cursor": 3, "alerts": {"firing": {}}, "done": [], "state": {
        "last_seq": 3, "last_event_at": "2026-11-24T10:02:00Z", "channels": {}, "chats": {},
        "runs": {"r1": {"group": "ops", "run_kind": "task", "task": "backup", "container": null,
                        "started_at": "2026-11-24T10:00:00Z",
                        "last_heartbeat_at": "2026-11-24T10:02:00Z", "progress": "3"}},
        "containers": {}, "deliveries": {}, "tasks": {}, "boots": {}, "targets": {},
        "last_deploy": null, "known_messages": {}, "notices": {}}}"#;
    let mut d: lookout_reconcile_core::driver::DriverState<HostState> =
        serde_json::from_str(old).expect("an old state loads");
    let run = &d.state.runs["r1"];
    assert_eq!(
        (run.progress_value.as_ref(), run.progress_changed_at),
        (None, None)
    );
    assert_eq!(ids(&d.state, &Limits::default(), 3), []);
    // The next report counts as the first change: no instant stall after an upgrade.
    apply(
        &mut d.state,
        &HostEvent {
            seq: 4,
            at: t(3),
            fact: Event::from_payload("run_heartbeat", &run_event(Some(json!("3")))),
        },
    );
    assert_eq!(d.state.runs["r1"].progress_changed_at, Some(t(3)));
    assert_eq!(ids(&d.state, &Limits::default(), 6), []);
    let old_limits: Limits = serde_json::from_value(json!({
        "stale_processing": {"secs": 600, "nanos": 0}, "heartbeat": {"secs": 180, "nanos": 0},
        "delivery_pending": {"secs": 300, "nanos": 0}, "channel_down": {"secs": 120, "nanos": 0},
        "max_concurrent": null, "task_grace": {"secs": 300, "nanos": 0},
        "orphan_grace": {"secs": 30, "nanos": 0}}))
    .unwrap();
    assert_eq!(old_limits, Limits::default());
}

#[test]
fn a_run_started_with_heartbeats_false_is_never_silent() {
    // A one-shot container cannot send heartbeats: its host says so, and no I3 follows.
    let mut started = run_event(None);
    started["heartbeats"] = json!(false);
    let s = state(&[(0, "run_started", started)]);
    assert!(!s.runs["r1"].heartbeats);
    assert_eq!(ids(&s, &Limits::default(), 120), []);
    // The same run without the promise is silent after 3 intervals.
    let s = state(&[(0, "run_started", run_event(None))]);
    assert_eq!(ids(&s, &Limits::default(), 4), [pair("I3", "r1")]);
}

#[test]
fn a_run_in_a_container_is_watched_through_it_never_called_silent() {
    // The seed's headline: a scheduled task's run in a one-shot container, no heartbeats, its
    // container alive. Not I3 (lookoutd watches the container); I1 once the container is gone.
    let mut started = run_event(None);
    started["container"] = json!("agent-7");
    let mut events = vec![
        (0, "run_started", started),
        (
            0,
            "container_status",
            json!({"container": "agent-7", "status": "running"}),
        ),
    ];
    assert_eq!(ids(&state(&events), &Limits::default(), 30), []);
    events.push((
        31,
        "container_status",
        json!({"container": "agent-7", "status": "exited"}),
    ));
    assert_eq!(
        ids(&state(&events), &Limits::default(), 32),
        [pair("I1", "r1")]
    );
}

#[test]
fn a_run_with_a_pid_is_watched_through_its_process_never_called_silent() {
    // A host whose runs are processes says which: lookoutd looks at the pid, so missing
    // heartbeats are not I3. A pid given only in a later heartbeat counts too.
    let mut started = run_event(None);
    started["pid"] = json!(4242);
    let s = state(&[(0, "run_started", started)]);
    assert_eq!(s.runs["r1"].pid, Some(4242));
    assert_eq!(ids(&s, &Limits::default(), 30), []);
    let mut beat = run_event(None);
    beat["pid"] = json!(4243);
    let s = state(&[
        (0, "run_started", run_event(None)),
        (1, "run_heartbeat", beat),
    ]);
    assert_eq!(s.runs["r1"].pid, Some(4243));
    assert_eq!(ids(&s, &Limits::default(), 30), []);
    // A pid that is not one is refused at ingest, naming the field.
    let mut bad = run_event(None);
    bad["kind"] = json!("run_started");
    bad["pid"] = json!("4242");
    let e = lookout_reconcile_core::vocabulary::decode(bad).unwrap_err();
    assert_eq!(e.field, "pid");
}
