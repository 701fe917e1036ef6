//! The alert lifecycle on both stores: one firing and one resolved per condition, reminders at the
//! repeat interval, quiet windows that hold and never drop, folding under a cause, flapping, and
//! state that survives a restart (a new `Alerts` over the same store). Time is passed explicitly:
//! no test waits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_notify::alerts::{
    Alert, AlertKey, AlertPolicy, Alerts, Dependency, FoldRule, Outcome, RecurringQuiet,
};
use lookout_notify::{DeliveryError, Notifier, Outbox, Outgoing, RetryPolicy, Route, Severity};
use lookout_store::Store;

#[derive(Default)]
struct Chat(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl Notifier for Chat {
    fn name(&self) -> &str {
        "chat"
    }
    async fn deliver(&self, n: &Outgoing) -> Result<(), DeliveryError> {
        self.0.lock().unwrap().push(n.text.clone());
        Ok(())
    }
}

struct Harness {
    store: Store,
    outbox: Arc<Outbox>,
    chat: Arc<Chat>,
    alerts: Alerts,
    t0: DateTime<Utc>,
}

impl Harness {
    fn new(store: Store) -> Self {
        let chat = Arc::new(Chat::default());
        let outbox = Arc::new(
            Outbox::new(
                store.clone(),
                vec![(chat.clone() as Arc<dyn Notifier>, Route::all())],
                RetryPolicy::default(),
            )
            .with_dedup_window(Duration::ZERO),
        );
        let alerts = Alerts::new(store.clone(), outbox.clone(), AlertPolicy::default());
        Harness {
            store,
            outbox,
            chat,
            alerts,
            t0: Utc::now(),
        }
    }

    /// A new lifecycle over the same store and outbox: lookoutd restarted.
    fn restart(&mut self) {
        self.alerts = Alerts::new(
            self.store.clone(),
            self.outbox.clone(),
            AlertPolicy::default(),
        );
    }

    fn at(&self, minutes: i64) -> DateTime<Utc> {
        self.t0 + chrono::Duration::minutes(minutes)
    }

    /// Delivers what is due and returns the texts the chat got since the last call.
    async fn said(&self) -> Vec<String> {
        self.outbox
            .deliver_due(Utc::now() + chrono::Duration::days(30))
            .await
            .unwrap();
        std::mem::take(&mut *self.chat.0.lock().unwrap())
    }
}

fn stale(chat: &str) -> Alert {
    Alert::new(
        "interrupted_run",
        chat,
        Severity::Warning,
        format!("2 message(s) in {chat} in flight for 12m"),
    )
}

async fn one_firing_one_resolved_and_reminders(store: Store) {
    let h = Harness::new(store);
    assert_eq!(
        h.alerts.fire(stale("c1"), h.at(0)).await.unwrap(),
        Outcome::Sent
    );
    assert_eq!(
        h.alerts.fire(stale("c1"), h.at(1)).await.unwrap(),
        Outcome::Nothing
    );
    assert_eq!(h.said().await, vec!["2 message(s) in c1 in flight for 12m"]);
    // Four hours later it still holds: one reminder.
    assert_eq!(
        h.alerts.fire(stale("c1"), h.at(241)).await.unwrap(),
        Outcome::Repeated
    );
    assert_eq!(
        h.alerts.fire(stale("c1"), h.at(242)).await.unwrap(),
        Outcome::Nothing
    );
    assert_eq!(
        h.said().await,
        vec!["2 message(s) in c1 in flight for 12m (still firing, since 4h 1m ago)"]
    );
    assert_eq!(
        h.alerts
            .resolve("interrupted_run", "c1", h.at(250))
            .await
            .unwrap(),
        Outcome::Resolved
    );
    assert_eq!(
        h.alerts
            .resolve("interrupted_run", "c1", h.at(251))
            .await
            .unwrap(),
        Outcome::Nothing
    );
    assert_eq!(
        h.said().await,
        vec!["✅ resolved after 4h 10m: 2 message(s) in c1 in flight for 12m"]
    );
}

async fn a_restart_neither_refires_nor_forgets(store: Store) {
    let mut h = Harness::new(store);
    h.alerts
        .sync("interrupted_run", vec![stale("c1"), stale("c2")], h.at(0))
        .await
        .unwrap();
    assert_eq!(h.said().await.len(), 2);
    h.restart();
    // c1 still holds after the restart: not sent again. c2 cleared while lookoutd was down.
    let out = h
        .alerts
        .sync("interrupted_run", vec![stale("c1")], h.at(5))
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![
            (AlertKey::new("interrupted_run", "c1"), Outcome::Nothing),
            (AlertKey::new("interrupted_run", "c2"), Outcome::Resolved),
        ]
    );
    assert_eq!(
        h.said().await,
        vec!["✅ resolved after 5m: 2 message(s) in c2 in flight for 12m"]
    );
}

async fn quiet_windows_hold_and_never_drop(store: Store) {
    let h = Harness::new(store);
    // Fired before the window, resolved inside: the resolved is sent.
    h.alerts.fire(stale("before"), h.at(0)).await.unwrap();
    h.alerts
        .quiet(
            "q1".into(),
            Duration::from_secs(30 * 60),
            None,
            "manual".into(),
            h.at(1),
        )
        .await
        .unwrap();
    assert_eq!(
        h.alerts
            .resolve("interrupted_run", "before", h.at(2))
            .await
            .unwrap(),
        Outcome::Resolved
    );
    // Fired inside and cleared inside: nothing.
    assert_eq!(
        h.alerts.fire(stale("inside"), h.at(3)).await.unwrap(),
        Outcome::Held
    );
    h.alerts
        .resolve("interrupted_run", "inside", h.at(4))
        .await
        .unwrap();
    // Fired inside and still firing at the end: one firing, when the window ends.
    assert_eq!(
        h.alerts.fire(stale("lasting"), h.at(5)).await.unwrap(),
        Outcome::Held
    );
    let list = h.alerts.list(h.at(6)).await.unwrap();
    assert_eq!(
        list.iter()
            .find(|v| v.record.subject == "lasting")
            .unwrap()
            .status,
        "held"
    );
    assert!(h.alerts.tick(h.at(20)).await.unwrap().is_empty());
    assert_eq!(
        h.alerts.tick(h.at(32)).await.unwrap(),
        vec![(AlertKey::new("interrupted_run", "lasting"), Outcome::Sent)]
    );
    assert!(h.alerts.tick(h.at(33)).await.unwrap().is_empty());
    assert_eq!(
        h.said().await,
        vec![
            "2 message(s) in before in flight for 12m",
            "✅ resolved after 2m: 2 message(s) in before in flight for 12m",
            "2 message(s) in lasting in flight for 12m",
        ]
    );
}

async fn a_matcher_holds_only_its_keys(store: Store) {
    let h = Harness::new(store);
    h.alerts
        .quiet(
            "deploy-1".into(),
            Duration::from_secs(120),
            Some("watchdog|crash_loop".into()),
            "deploy abc1234".into(),
            h.at(0),
        )
        .await
        .unwrap();
    let restart = Alert::new(
        "watchdog_circuit",
        "bridge",
        Severity::Critical,
        "circuit open",
    );
    assert_eq!(
        h.alerts.fire(restart, h.at(1)).await.unwrap(),
        Outcome::Held
    );
    assert_eq!(
        h.alerts.fire(stale("c1"), h.at(1)).await.unwrap(),
        Outcome::Sent
    );
}

struct Nightly;
impl RecurringQuiet for Nightly {
    fn window_at(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        // Always inside, for the test: the daemon evaluates the real cron.
        Some((now, now + chrono::Duration::minutes(1)))
    }
    fn name(&self) -> &str {
        "nightly-backup"
    }
    fn matcher(&self) -> Option<&str> {
        Some("task-overdue")
    }
}

async fn recurring_windows_from_config_hold_too(store: Store) {
    let h = Harness::new(store);
    h.alerts.set_recurring(vec![Arc::new(Nightly)]);
    let overdue = Alert::new(
        "task-overdue",
        "backup",
        Severity::Critical,
        "task backup overdue",
    );
    assert_eq!(
        h.alerts.fire(overdue, h.at(0)).await.unwrap(),
        Outcome::Held
    );
    h.alerts.set_recurring(vec![]);
    assert_eq!(h.alerts.tick(h.at(1)).await.unwrap().len(), 1);
}

async fn folded_under_a_cause_and_surfacing_when_it_outlasts_it(store: Store) {
    let h = Harness::new(store);
    let engine = Alert::new(
        "docker",
        "engine",
        Severity::Critical,
        "docker engine unreachable",
    );
    h.alerts.fire(engine, h.at(0)).await.unwrap();
    for c in ["a", "b", "c"] {
        let a = Alert::new(
            "container",
            c,
            Severity::Warning,
            format!("container {c} exited"),
        )
        .caused_by(AlertKey::new("docker", "engine"));
        assert_eq!(h.alerts.fire(a, h.at(1)).await.unwrap(), Outcome::Folded);
    }
    let list = h.alerts.list(h.at(2)).await.unwrap();
    let folded: Vec<_> = list.iter().filter(|v| v.status == "folded").collect();
    assert_eq!(folded.len(), 3);
    assert_eq!(
        folded[0].folded_under,
        Some(AlertKey::new("docker", "engine"))
    );
    // Two clear with the cause; `c` outlasts it and surfaces on its own.
    h.alerts.resolve("container", "a", h.at(3)).await.unwrap();
    h.alerts.resolve("container", "b", h.at(3)).await.unwrap();
    h.alerts.resolve("docker", "engine", h.at(4)).await.unwrap();
    assert_eq!(
        h.alerts.tick(h.at(5)).await.unwrap(),
        vec![(AlertKey::new("container", "c"), Outcome::Sent)]
    );
    assert_eq!(
        h.said().await,
        vec![
            "docker engine unreachable",
            "✅ resolved after 4m: docker engine unreachable — also affected while it lasted: container a, b, c (1 still firing)",
            "container c exited (outlasted docker:engine)",
        ]
    );
}

async fn a_cause_reminder_names_what_is_folded_under_it(store: Store) {
    let h = Harness::new(store);
    let cause = || {
        Alert::new(
            "gateway_down",
            "gateway",
            Severity::Critical,
            "gateway down",
        )
    };
    h.alerts.fire(cause(), h.at(0)).await.unwrap();
    for (rule, subject) in [
        ("task-failed", "report"),
        ("task-overdue", "digest"),
        ("task-failed", "nightly"),
    ] {
        let a = Alert::new(
            rule,
            subject,
            Severity::Warning,
            format!("{subject} failed"),
        )
        .caused_by(AlertKey::new("gateway_down", "gateway"));
        assert_eq!(h.alerts.fire(a, h.at(1)).await.unwrap(), Outcome::Folded);
    }
    // Four hours on, the cause is reminded, with what it holds back now.
    assert_eq!(
        h.alerts.fire(cause(), h.at(241)).await.unwrap(),
        Outcome::Repeated
    );
    assert_eq!(
        h.said().await,
        vec![
            "gateway down",
            "gateway down (still firing, since 4h 1m ago) — also affected: task-failed nightly, \
             report; task-overdue digest",
        ]
    );
}

async fn flapping_is_one_line_and_one_summary(store: Store) {
    let h = Harness::new(store);
    let mut outcomes = Vec::new();
    for i in 0..8 {
        let now = h.at(i);
        outcomes.push(if i % 2 == 0 {
            h.alerts.fire(stale("c1"), now).await.unwrap()
        } else {
            h.alerts
                .resolve("interrupted_run", "c1", now)
                .await
                .unwrap()
        });
    }
    assert_eq!(
        outcomes,
        vec![
            Outcome::Sent,
            Outcome::Resolved,
            Outcome::Sent,
            Outcome::Resolved,
            Outcome::FlappingStarted,
            Outcome::Flapping,
            Outcome::Flapping,
            Outcome::Flapping,
        ]
    );
    // Settles after ten quiet minutes: one summary, with the state it settled in.
    assert!(h.alerts.tick(h.at(12)).await.unwrap().is_empty());
    assert_eq!(
        h.alerts.tick(h.at(18)).await.unwrap(),
        vec![(AlertKey::new("interrupted_run", "c1"), Outcome::Settled)]
    );
    let said = h.said().await;
    assert_eq!(said.len(), 6, "{said:?}");
    assert_eq!(said[4], "🔁 c1 flapping (5 changes in 10m)");
    assert_eq!(
        said[5],
        "🔁 c1 settled: resolved — 2 message(s) in c1 in flight for 12m"
    );
}

async fn a_flapping_alert_inside_a_quiet_window_stays_one_line(store: Store) {
    let h = Harness::new(store);
    h.alerts
        .quiet(
            "q".into(),
            Duration::from_secs(3600),
            None,
            "manual".into(),
            h.at(0),
        )
        .await
        .unwrap();
    for i in 0..6 {
        if i % 2 == 0 {
            h.alerts.fire(stale("c1"), h.at(i)).await.unwrap();
        } else {
            h.alerts
                .resolve("interrupted_run", "c1", h.at(i))
                .await
                .unwrap();
        }
    }
    // Held firings were never sent; the flapping line is the one thing said.
    assert_eq!(h.said().await, vec!["🔁 c1 flapping (5 changes in 10m)"]);
}

const ENGINE: Dependency = Dependency("docker engine");
const GATEWAY: Dependency = Dependency("gateway");

fn table() -> Vec<FoldRule> {
    vec![
        FoldRule {
            cause: AlertKey::new("docker", "engine"),
            folds: &["container", "task-failed"],
            when: ENGINE,
            drops_messages: true,
        },
        FoldRule {
            cause: AlertKey::new("gateway_down", "gateway"),
            folds: &["task-failed", "task-overdue"],
            when: GATEWAY,
            drops_messages: false,
        },
    ]
}

fn cause(rule: &str, subject: &str) -> Alert {
    Alert::new(
        rule,
        subject,
        Severity::Critical,
        format!("{rule} {subject} down"),
    )
}

async fn the_fold_table_finds_the_firing_cause_of_what_depends_on_it(store: Store) {
    let h = Harness::new(store);
    h.alerts.set_folding(table());
    let task = |name: &str| {
        Alert::new(
            "task-failed",
            name,
            Severity::Warning,
            format!("{name} failed"),
        )
    };
    // No cause fires: sent, with the first cause that applies kept for later.
    h.alerts
        .fire(task("a").depends_on(GATEWAY), h.at(0))
        .await
        .unwrap();
    assert_eq!(h.said().await, vec!["a failed"]);
    assert_eq!(
        h.store
            .alert_get("task-failed:a")
            .await
            .unwrap()
            .unwrap()
            .cause
            .as_deref(),
        Some("gateway_down:gateway")
    );
    h.alerts
        .fire(cause("gateway_down", "gateway"), h.at(1))
        .await
        .unwrap();
    assert_eq!(
        h.alerts.firing_causes("task-failed").await.unwrap(),
        vec![table()[1].clone()]
    );
    assert!(
        h.alerts
            .firing_causes("container")
            .await
            .unwrap()
            .is_empty()
    );
    // A subject that needs both: the first rule whose cause fires (the engine is up).
    assert_eq!(
        h.alerts
            .fire(task("b").depends_on(ENGINE).depends_on(GATEWAY), h.at(2))
            .await
            .unwrap(),
        Outcome::Folded
    );
    // A subject that needs neither, or a rule the table does not fold: its own alert.
    assert_eq!(
        h.alerts.fire(task("c"), h.at(2)).await.unwrap(),
        Outcome::Sent
    );
    let other = Alert::new("I5", "slack", Severity::Critical, "slack down").depends_on(GATEWAY);
    assert_eq!(h.alerts.fire(other, h.at(2)).await.unwrap(), Outcome::Sent);
    let list = h.alerts.list(h.at(3)).await.unwrap();
    let b = list.iter().find(|v| v.record.subject == "b").unwrap();
    assert_eq!(b.status, "folded");
    assert_eq!(
        b.folded_under,
        Some(AlertKey::new("gateway_down", "gateway"))
    );
    // The engine fires too: now it is the first that fires for `d`.
    h.alerts
        .fire(cause("docker", "engine"), h.at(4))
        .await
        .unwrap();
    h.alerts
        .fire(task("d").depends_on(ENGINE).depends_on(GATEWAY), h.at(5))
        .await
        .unwrap();
    let list = h.alerts.list(h.at(6)).await.unwrap();
    let d = list.iter().find(|v| v.record.subject == "d").unwrap();
    assert_eq!(d.folded_under, Some(AlertKey::new("docker", "engine")));
    // An empty table folds nothing.
    h.alerts.set_folding(Vec::new());
    assert_eq!(
        h.alerts
            .fire(task("e").depends_on(ENGINE), h.at(7))
            .await
            .unwrap(),
        Outcome::Sent
    );
    assert_eq!(
        h.said().await,
        vec![
            "gateway_down gateway down",
            "c failed",
            "slack down",
            "docker engine down",
            "e failed"
        ]
    );
}

async fn a_resolve_the_raiser_reports_sends_nothing(store: Store) {
    let h = Harness::new(store);
    let looping = AlertKey::new("crash_loop", "host");
    let a = Alert::keyed(
        looping.clone(),
        Severity::Critical,
        "🔁 host is crash-looping",
    )
    .details(serde_json::json!({"failed_starts": 3}));
    assert_eq!(h.alerts.fire(a, h.at(0)).await.unwrap(), Outcome::Sent);
    assert_eq!(
        h.alerts.resolve_reported(&looping, h.at(1)).await.unwrap(),
        Outcome::ResolvedByRaiser
    );
    assert_eq!(
        h.alerts.resolve_reported(&looping, h.at(2)).await.unwrap(),
        Outcome::Nothing
    );
    assert_eq!(h.said().await, vec!["🔁 host is crash-looping"]);
    let list = h.alerts.list(h.at(3)).await.unwrap();
    assert_eq!(list[0].status, "resolved");
    // Its next firing is a new alert, sent again.
    let again = Alert::keyed(
        looping.clone(),
        Severity::Critical,
        "🔁 host is crash-looping",
    );
    assert_eq!(h.alerts.fire(again, h.at(30)).await.unwrap(), Outcome::Sent);
    let stored = h.store.recent_notifications(10).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(
        stored
            .iter()
            .all(|n| n.dedup_key.as_deref() == Some("crash_loop:host"))
    );
}

// The lifecycle is where conditions are deduplicated; the outbox's window (5 minutes by default)
// is for one-off messages only. A condition that fires, resolves and fires again with the same
// text within minutes is said each time: the outbox must not swallow the second firing.
async fn the_outbox_never_swallows_a_condition_the_lifecycle_decided(store: Store) {
    let chat = Arc::new(Chat::default());
    let outbox = Arc::new(Outbox::new(
        store.clone(),
        vec![(chat.clone() as Arc<dyn Notifier>, Route::all())],
        RetryPolicy::default(),
    ));
    let alerts = Alerts::new(store.clone(), outbox.clone(), AlertPolicy::default());
    let t0 = Utc::now();
    let at = |m: i64| t0 + chrono::Duration::minutes(m);
    assert_eq!(
        alerts.fire(stale("c1"), at(0)).await.unwrap(),
        Outcome::Sent
    );
    assert_eq!(
        alerts
            .resolve("interrupted_run", "c1", at(1))
            .await
            .unwrap(),
        Outcome::Resolved
    );
    assert_eq!(
        alerts.fire(stale("c1"), at(2)).await.unwrap(),
        Outcome::Sent
    );
    // A one-off message repeated within the window is still sent once.
    let once =
        || lookout_notify::Message::new(Severity::Info, "🩹 healed").key("watchdog_heal:bridge");
    assert!(outbox.send(once()).await.unwrap().is_some());
    assert!(outbox.send(once()).await.unwrap().is_none());
    outbox
        .deliver_due(Utc::now() + chrono::Duration::days(30))
        .await
        .unwrap();
    assert_eq!(
        *chat.0.lock().unwrap(),
        vec![
            "2 message(s) in c1 in flight for 12m",
            "✅ resolved after 1m: 2 message(s) in c1 in flight for 12m",
            "2 message(s) in c1 in flight for 12m",
            "🩹 healed",
        ]
    );
}

lookout_store::store_tests!(
    one_firing_one_resolved_and_reminders,
    a_restart_neither_refires_nor_forgets,
    quiet_windows_hold_and_never_drop,
    a_matcher_holds_only_its_keys,
    recurring_windows_from_config_hold_too,
    folded_under_a_cause_and_surfacing_when_it_outlasts_it,
    a_cause_reminder_names_what_is_folded_under_it,
    flapping_is_one_line_and_one_summary,
    a_flapping_alert_inside_a_quiet_window_stays_one_line,
    the_fold_table_finds_the_firing_cause_of_what_depends_on_it,
    a_resolve_the_raiser_reports_sends_nothing,
    the_outbox_never_swallows_a_condition_the_lifecycle_decided,
);
