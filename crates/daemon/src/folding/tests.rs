//! The fold table through the daemon's own raisers (the watchdog's and the scheduler's reporters,
//! the gateway check, the boot records) over a real SQLite store, with the lifecycle lookoutd
//! builds (`alerts::lifecycle`) and a manual clock: one test per rule of the table shows an alert
//! folded under its firing cause and sent on its own once it outlasts it; the crash-loop tests
//! (`crash_loops`) show a quiet window holding a crash loop.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_common::{Clock, ManualClock};
use lookout_notify::alerts::{Alert, AlertKey, Alerts, Outcome};
use lookout_notify::{Outbox, Severity};
use lookout_status_collect::{Collected, Finding};
use lookout_store::{NewEvent, NewTask, OwnerKind, Store};
use serde_json::{Value, json};

use super::*;
use crate::testing::Alerting;

/// lookoutd's alerting (`crate::testing`) and its configuration, with a manual clock.
struct World {
    store: Store,
    outbox: Arc<Outbox>,
    alerts: Arc<Alerts>,
    clock: Arc<ManualClock>,
    config: lookout_config::Config,
    alerting: Alerting,
}

impl World {
    async fn new(config: &str) -> World {
        let config = lookout_config::parse(config, "lookout.toml").expect("test config");
        let alerting = Alerting::new(&config).await;
        World {
            store: alerting.store.clone(),
            outbox: alerting.outbox.clone(),
            alerts: alerting.alerts.clone(),
            clock: Arc::new(ManualClock::new(
                "2026-11-24T10:00:00Z".parse::<DateTime<Utc>>().unwrap(),
            )),
            config,
            alerting,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn later(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    /// Delivers what is due; the (key, text, payload) of each message sent since the last call.
    async fn sent(&self) -> Vec<(String, String, Value)> {
        self.alerting.sent().await
    }

    /// The texts sent since the last call.
    async fn said(&self) -> Vec<String> {
        self.sent().await.into_iter().map(|(_, t, _)| t).collect()
    }

    /// How `lookout alerts list` shows `key`: its status and the cause it is folded under.
    async fn shown(&self, key: &AlertKey) -> (&'static str, Option<AlertKey>) {
        let list = self.alerts.list(self.now()).await.unwrap();
        let v = list
            .into_iter()
            .find(|v| v.record.key == key.to_string())
            .unwrap_or_else(|| panic!("{key} is listed"));
        (v.status, v.folded_under)
    }

    async fn tick(&self) -> Vec<(AlertKey, Outcome)> {
        self.alerts.tick(self.now()).await.unwrap()
    }

    /// The Docker engine's alert fires (the watchdog's shared circuit opened).
    async fn engine_down(&self) {
        let a = Alert::keyed(
            engine_down(),
            Severity::Critical,
            "🧯 docker engine unreachable: 3 targets held",
        );
        assert_eq!(
            self.alerts.fire(a, self.now()).await.unwrap(),
            Outcome::Sent
        );
    }

    async fn engine_back(&self) -> Outcome {
        self.alerts
            .resolve_key(&engine_down(), self.now())
            .await
            .unwrap()
    }

    /// A task or job in the store, with a run claimed now: the run's id.
    async fn task_run(&self, name: &str, runner: &str) -> i64 {
        let now = self.now();
        self.store
            .upsert_task(
                &NewTask {
                    kind: OwnerKind::HostJob,
                    id: name.into(),
                    name: name.into(),
                    group: None,
                    schedule_kind: "interval".into(),
                    schedule_value: "60s".into(),
                    tz: "UTC".into(),
                    runner: runner.into(),
                    policy: "{}".into(),
                    next_run: Some(now),
                },
                now,
            )
            .await
            .unwrap();
        self.store
            .claim_manual_run(OwnerKind::HostJob, name, now, "test")
            .await
            .unwrap()
            .expect("a new run")
    }

    fn task_reporter(&self) -> crate::jobs::OutboxReporter {
        crate::jobs::OutboxReporter::new(
            self.outbox.clone(),
            self.alerts.clone(),
            self.store.clone(),
            self.config.gateway.clone(),
            self.clock.clone(),
        )
    }

    fn watch_reporter(&self) -> crate::watch::DaemonReporter {
        crate::watch::DaemonReporter::new(
            self.outbox.clone(),
            self.alerts.clone(),
            self.store.clone(),
            &self.config,
            self.clock.clone(),
        )
    }
}

const CONTAINER: &str = r#"{"kind":"container","image":"lookout-test/busybox"}"#;
const SHELL: &str = r#"{"kind":"shell","command":"exit 3"}"#;

/// A scheduler's message about run `run`'s `step`.
fn run_message(
    run: i64,
    step: &str,
    severity: Severity,
    text: &str,
) -> lookout_scheduler::Notification {
    lookout_scheduler::Notification {
        severity,
        group: None,
        dedup_key: format!("task-run:{run}:{step}"),
        text: text.into(),
        resolves: false,
    }
}

fn overdue(task: &str, resolves: bool) -> lookout_scheduler::Notification {
    lookout_scheduler::Notification {
        severity: Severity::Critical,
        group: None,
        dedup_key: format!("task-overdue:{task}"),
        text: format!("⏰ {task} overdue by 5m"),
        resolves,
    }
}

/// A watchdog circuit report: `key` opens (or, `resolves`, closes).
fn circuit(key: &str, resolves: bool, text: &str) -> lookout_watchdog::Report {
    use lookout_watchdog::EventKind::*;
    let key_ = AlertKey::parse(key).unwrap();
    let shared = key_.rule == rule::WATCHDOG_SHARED;
    let kind = match (shared, resolves) {
        (true, false) => WatchdogSharedCircuitOpen,
        (true, true) => WatchdogSharedCircuitClosed,
        (false, false) => WatchdogCircuitOpen,
        (false, true) => WatchdogCircuitClosed,
    };
    lookout_watchdog::Report {
        event: lookout_watchdog::WatchdogEvent {
            kind,
            target: key_.subject,
            tier: None,
            observation: text.into(),
            action: "none".into(),
            ok: true,
            targets: Vec::new(),
            at: Utc::now(),
        },
        notification: lookout_watchdog::Notification {
            severity: Severity::Critical,
            key: key.into(),
            resolves,
            text: text.into(),
        },
    }
}

/// One collection of the gateway's section.
fn gateway(containers: Value, findings: Vec<Finding>, health_error: Option<&str>) -> Collected {
    Collected {
        data: json!({"containers": containers, "health_error": health_error}),
        findings,
    }
}

fn gateway_500() -> Collected {
    gateway(json!({}), vec![], Some("health endpoint answered HTTP 500"))
}

fn gateway_up() -> Collected {
    gateway(json!({}), vec![], None)
}

const GATEWAY_500: &str = "🔌 LLM gateway down: gateway health endpoint answered HTTP 500";

const WATCH: &str = "[[watch]]\nname = \"agent-1\"\nkind = \"container\"\ncontainer = \"agent-1\"\n\n\
    [[watch]]\nname = \"bridge\"\nkind = \"process\"\npid_file = \"/nonexistent/bridge.pid\"\n";

const NEEDS_GATEWAY: &str =
    "[gateway]\nhealth_url = \"http://127.0.0.1:9/health\"\nneeded_by = [\"report\", \"digest\"]\n";

#[test]
fn the_table_names_each_cause_and_what_it_folds() {
    let t = rules();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].cause.to_string(), "watchdog_shared:docker engine");
    assert_eq!(
        t[0].folds,
        &[
            "watchdog_circuit",
            "task-failed",
            "gateway_down",
            "container_died",
            "container_unhealthy",
            "container_restart_loop"
        ]
    );
    assert!(t[0].drops_messages);
    assert_eq!(t[1].cause.to_string(), "gateway_down:gateway");
    assert_eq!(t[1].folds, &["task-failed", "task-overdue", "unanswered"]);
    assert!(!t[1].drops_messages);
    // A task that needs both: the engine's rule comes first.
    assert!(t[0].applies(rule::TASK_FAILED, &[GATEWAY, DOCKER_ENGINE]));
    assert!(t[1].applies(rule::TASK_FAILED, &[GATEWAY, DOCKER_ENGINE]));
    assert!(!t[1].applies(rule::WATCHDOG_CIRCUIT, &[GATEWAY]));
    let off = lookout_config::parse("[alerts]\nfold = false\n", "lookout.toml").unwrap();
    assert!(table(&off).is_empty());
}

// ---------------------------------------------------------------------------------------------
// The Docker engine down.

#[tokio::test]
async fn engine_down_folds_the_circuits_of_container_targets_until_it_resolves() {
    use lookout_watchdog::Reporter;
    let w = World::new(WATCH).await;
    let r = w.watch_reporter();
    r.report(circuit(
        "watchdog_shared:docker engine",
        false,
        "🧯 docker engine unreachable",
    ))
    .await;
    assert_eq!(w.said().await, ["🧯 docker engine unreachable"]);
    let agent = AlertKey::new("watchdog_circuit", "agent-1");
    r.report(circuit(
        "watchdog_circuit:agent-1",
        false,
        "⛔ agent-1: circuit open",
    ))
    .await;
    assert!(w.said().await.is_empty(), "folded, not sent");
    assert_eq!(w.shown(&agent).await, ("folded", Some(engine_down())));
    // A process target does not depend on the engine: its circuit is its own alert.
    r.report(circuit(
        "watchdog_circuit:bridge",
        false,
        "⛔ bridge: circuit open",
    ))
    .await;
    assert_eq!(w.said().await, ["⛔ bridge: circuit open"]);
    assert_eq!(
        w.shown(&AlertKey::new("watchdog_circuit", "bridge")).await,
        ("firing", None)
    );

    w.later(60);
    r.report(circuit(
        "watchdog_shared:docker engine",
        true,
        "✅ docker engine back",
    ))
    .await;
    assert_eq!(
        w.said().await,
        [
            "✅ resolved after 1m: 🧯 docker engine unreachable — also affected while it lasted: \
          watchdog_circuit agent-1 (1 still firing)"
        ]
    );
    // The target's circuit outlasted the engine: now it speaks for itself, once.
    assert_eq!(w.tick().await, [(agent.clone(), Outcome::Sent)]);
    assert_eq!(
        w.said().await,
        ["⛔ agent-1: circuit open (outlasted watchdog_shared:docker engine)"]
    );
    assert!(w.tick().await.is_empty());
    assert_eq!(w.shown(&agent).await, ("firing", None));
}

#[tokio::test]
async fn engine_down_folds_container_task_failures_and_drops_their_run_messages() {
    use lookout_scheduler::Reporter;
    let w = World::new("").await;
    let r = w.task_reporter();
    let nightly = w.task_run("nightly", CONTAINER).await;
    let report = w.task_run("report", SHELL).await;
    w.engine_down().await;
    assert_eq!(
        w.said().await,
        ["🧯 docker engine unreachable: 3 targets held"]
    );

    // A container task cannot run without its engine: its start is noise, its failure folds.
    r.notify(run_message(
        nightly,
        "started",
        Severity::Info,
        "⏱ nightly starting",
    ))
    .await;
    r.notify(run_message(
        nightly,
        "finished",
        Severity::Warning,
        "❌ nightly failed: no engine",
    ))
    .await;
    assert!(w.said().await.is_empty(), "dropped and folded");
    let failed = AlertKey::new("task-failed", "nightly");
    assert_eq!(w.shown(&failed).await, ("folded", Some(engine_down())));
    // A shell job does not depend on the engine: its messages are sent as they come.
    r.notify(run_message(
        report,
        "started",
        Severity::Info,
        "⏱ report starting",
    ))
    .await;
    r.notify(run_message(
        report,
        "finished",
        Severity::Warning,
        "❌ report failed",
    ))
    .await;
    assert_eq!(w.said().await, ["⏱ report starting", "❌ report failed"]);

    w.later(120);
    assert_eq!(w.engine_back().await, Outcome::Resolved);
    assert_eq!(
        w.said().await,
        [
            "✅ resolved after 2m: 🧯 docker engine unreachable: 3 targets held — also affected \
          while it lasted: task-failed nightly (1 still firing)"
        ]
    );
    assert_eq!(w.tick().await, [(failed.clone(), Outcome::Sent)]);
    assert_eq!(
        w.said().await,
        ["❌ nightly failed: no engine (outlasted watchdog_shared:docker engine)"]
    );
    // Its next run succeeds: the failure is over, and the success is said.
    w.later(60);
    r.notify(run_message(
        nightly,
        "finished",
        Severity::Info,
        "✅ nightly done",
    ))
    .await;
    assert_eq!(
        w.said().await,
        [
            "✅ resolved after 3m: ❌ nightly failed: no engine",
            "✅ nightly done"
        ]
    );
    assert_eq!(w.shown(&failed).await, ("resolved", None));
}

#[tokio::test]
async fn engine_down_folds_the_gateway_while_its_containers_cannot_be_inspected() {
    let w = World::new("[gateway]\ncontainers = [\"litellm\"]\n").await;
    w.engine_down().await;
    w.said().await;
    let no_engine = Ok(gateway(
        json!({"litellm": {"state": "engine_unreachable"}}),
        vec![Finding::fail("docker engine unreachable: no socket")],
        None,
    ));
    assert_eq!(
        crate::gateway::record(&w.alerts, &no_engine, w.now())
            .await
            .unwrap(),
        Outcome::Folded
    );
    assert!(w.said().await.is_empty());
    assert_eq!(
        w.shown(&gateway_down()).await,
        ("folded", Some(engine_down()))
    );

    w.later(60);
    assert_eq!(w.engine_back().await, Outcome::Resolved);
    assert_eq!(
        w.said().await,
        [
            "✅ resolved after 1m: 🧯 docker engine unreachable: 3 targets held — also affected \
          while it lasted: gateway_down gateway (1 still firing)"
        ]
    );
    assert_eq!(w.tick().await, [(gateway_down(), Outcome::Sent)]);
    assert_eq!(
        w.said().await,
        ["🔌 LLM gateway down: docker engine unreachable: no socket \
          (outlasted watchdog_shared:docker engine)"]
    );
    w.later(60);
    assert_eq!(
        crate::gateway::record(&w.alerts, &Ok(gateway_up()), w.now())
            .await
            .unwrap(),
        Outcome::Resolved
    );
    assert_eq!(
        w.said().await,
        ["✅ resolved after 2m: 🔌 LLM gateway down: docker engine unreachable: no socket"]
    );
}

#[tokio::test]
async fn a_gateway_down_for_its_own_reason_is_not_folded_under_the_engine() {
    let w = World::new("[gateway]\ncontainers = [\"litellm\"]\n").await;
    w.engine_down().await;
    w.said().await;
    // The engine answers for the gateway's container: its failing health endpoint is its own.
    let own = Ok(gateway(
        json!({"litellm": {"state": "running"}}),
        vec![],
        Some("health endpoint answered HTTP 500"),
    ));
    assert_eq!(
        crate::gateway::record(&w.alerts, &own, w.now())
            .await
            .unwrap(),
        Outcome::Sent
    );
    assert_eq!(w.said().await, [GATEWAY_500]);
}

// ---------------------------------------------------------------------------------------------
// The gateway down.

#[tokio::test]
async fn gateway_down_folds_the_failures_of_the_tasks_that_need_it_until_it_resolves() {
    use lookout_scheduler::Reporter;
    let w = World::new(NEEDS_GATEWAY).await;
    let r = w.task_reporter();
    let report = w.task_run("report", SHELL).await;
    let other = w.task_run("other", SHELL).await;
    assert_eq!(
        crate::gateway::record(&w.alerts, &Ok(gateway_500()), w.now())
            .await
            .unwrap(),
        Outcome::Sent
    );
    assert_eq!(w.said().await, [GATEWAY_500]);

    // A task that needs the gateway may get through: its start is said; its failure folds.
    r.notify(run_message(
        report,
        "started",
        Severity::Info,
        "⏱ report starting",
    ))
    .await;
    r.notify(run_message(
        report,
        "finished",
        Severity::Warning,
        "❌ report failed: no model",
    ))
    .await;
    assert_eq!(w.said().await, ["⏱ report starting"]);
    let failed = AlertKey::new("task-failed", "report");
    assert_eq!(w.shown(&failed).await, ("folded", Some(gateway_down())));
    // A task that does not need it fails on its own.
    r.notify(run_message(
        other,
        "finished",
        Severity::Warning,
        "❌ other failed",
    ))
    .await;
    assert_eq!(w.said().await, ["❌ other failed"]);

    w.later(60);
    assert_eq!(
        crate::gateway::record(&w.alerts, &Ok(gateway_up()), w.now())
            .await
            .unwrap(),
        Outcome::Resolved
    );
    assert_eq!(
        w.said().await,
        [format!(
            "✅ resolved after 1m: {GATEWAY_500} — also affected while it lasted: task-failed \
             report (1 still firing)"
        )]
    );
    assert_eq!(w.tick().await, [(failed.clone(), Outcome::Sent)]);
    assert_eq!(
        w.said().await,
        ["❌ report failed: no model (outlasted gateway_down:gateway)"]
    );
}

#[tokio::test]
async fn gateway_down_folds_the_overdue_alerts_of_the_tasks_that_need_it_until_it_resolves() {
    use lookout_scheduler::Reporter;
    let w = World::new(NEEDS_GATEWAY).await;
    let r = w.task_reporter();
    crate::gateway::record(&w.alerts, &Ok(gateway_500()), w.now())
        .await
        .unwrap();
    assert_eq!(w.said().await, [GATEWAY_500]);

    r.notify(overdue("digest", false)).await;
    assert!(w.said().await.is_empty(), "folded");
    let digest = AlertKey::new("task-overdue", "digest");
    assert_eq!(w.shown(&digest).await, ("folded", Some(gateway_down())));
    // `report` needs it too, and is back on time before the gateway: cleared unseen.
    r.notify(overdue("report", false)).await;
    r.notify(overdue("report", true)).await;
    // A task that does not need the gateway is overdue on its own.
    r.notify(overdue("backup", false)).await;
    assert_eq!(w.said().await, ["⏰ backup overdue by 5m"]);

    w.later(300);
    crate::gateway::record(&w.alerts, &Ok(gateway_up()), w.now())
        .await
        .unwrap();
    assert_eq!(
        w.said().await,
        [format!(
            "✅ resolved after 5m: {GATEWAY_500} — also affected while it lasted: task-overdue \
             digest, report (1 still firing)"
        )]
    );
    assert_eq!(w.tick().await, [(digest.clone(), Outcome::Sent)]);
    assert_eq!(
        w.said().await,
        ["⏰ digest overdue by 5m (outlasted gateway_down:gateway)"]
    );
    w.later(60);
    r.notify(overdue("digest", true)).await;
    assert_eq!(
        w.said().await,
        ["✅ resolved after 6m: ⏰ digest overdue by 5m"]
    );
}

#[tokio::test]
async fn with_folding_off_every_alert_speaks_for_itself() {
    use lookout_scheduler::Reporter;
    use lookout_watchdog::Reporter as _;
    let w = World::new(&format!(
        "[alerts]\nfold = false\n\n{NEEDS_GATEWAY}\n{WATCH}"
    ))
    .await;
    assert!(w.alerts.folding().is_empty());
    w.engine_down().await;
    crate::gateway::record(&w.alerts, &Ok(gateway_500()), w.now())
        .await
        .unwrap();
    w.said().await;
    w.watch_reporter()
        .report(circuit(
            "watchdog_circuit:agent-1",
            false,
            "⛔ agent-1: circuit open",
        ))
        .await;
    w.task_reporter().notify(overdue("digest", false)).await;
    assert_eq!(
        w.said().await,
        ["⛔ agent-1: circuit open", "⏰ digest overdue by 5m"]
    );
}

// ---------------------------------------------------------------------------------------------
// Crash loops go through the lifecycle: a quiet window holds them.

mod crash_loops;

#[tokio::test]
async fn engine_down_folds_the_deaths_of_followed_containers() {
    let w = World::new(WATCH).await;
    w.engine_down().await;
    assert_eq!(
        w.said().await,
        ["🧯 docker engine unreachable: 3 targets held"]
    );
    // What the engine's event stream raises for a followed container that died meanwhile.
    let died = crate::docker_events::alert(
        crate::docker_events::DIED,
        "litellm",
        Severity::Critical,
        "💥 container litellm died (exit code 137)".into(),
    );
    assert_eq!(w.alerts.fire(died, w.now()).await.unwrap(), Outcome::Folded);
    assert!(w.said().await.is_empty(), "folded, not sent");
    let key = AlertKey::new(crate::docker_events::DIED, "litellm");
    assert_eq!(w.shown(&key).await, ("folded", Some(engine_down())));
    w.later(30);
    assert_eq!(w.engine_back().await, Outcome::Resolved);
    let said = w.said().await;
    assert!(
        said[0].contains("also affected while it lasted: container_died litellm"),
        "{said:?}"
    );
}

#[tokio::test]
async fn gateway_down_folds_the_unanswered_chats() {
    let w = World::new(NEEDS_GATEWAY).await;
    crate::gateway::record(&w.alerts, &Ok(gateway_500()), w.now())
        .await
        .unwrap();
    assert_eq!(w.said().await, [GATEWAY_500]);
    // What the flow checks raise for a chat nobody answered (the agent needs the gateway).
    let chat = lookout_reconcile_core::flow::UnansweredChat {
        chat: "tg:42".into(),
        waiting: lookout_reconcile_core::flow::Unanswered {
            channel: "telegram".into(),
            group: None,
            oldest: w.now(),
            latest: w.now(),
            count: 2,
        },
        age: chrono::TimeDelta::minutes(12),
        text: "💬 2 message(s) in chat tg:42 unanswered for 12m".into(),
    };
    let current = vec![crate::flow::unanswered_alert(&chat)];
    w.alerts
        .sync(crate::flow::rule::UNANSWERED, current, w.now())
        .await
        .unwrap();
    assert!(w.said().await.is_empty(), "folded under the gateway");
    let key = AlertKey::new("unanswered", "tg:42");
    assert_eq!(w.shown(&key).await, ("folded", Some(gateway_down())));
}
