//! The ladder's rules with fakes and a paused clock: no real process, no real sleep.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lookout_watchdog::*;

mod common;
use common::*;

#[tokio::test(start_paused = true)]
async fn healthy_is_a_no_op() {
    let s = setup().await;
    for _ in 0..10 {
        s.beat();
        assert_eq!(s.round().await, "healthy");
        advance(5).await;
    }
    assert!(s.texts().is_empty());
    assert!(s.process.calls().is_empty());
    assert!(!s.path("restart-bridge").exists());
}

#[tokio::test(start_paused = true)]
async fn stale_heartbeat_acts_at_tier_1() {
    let s = setup().await;
    assert_eq!(s.round().await, "healthy");
    advance(95).await;
    let out = s.round().await;
    assert!(out.starts_with("acted tier 1"), "{out}");
    assert!(s.path("restart-bridge").exists());
    let reports = s.reporter.reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0].notification.text,
        format!(
            "🩹 bridge: heartbeat 95s old (stale after 90s) — wrote the restart marker {} (tier 1)",
            s.path("restart-bridge").display()
        )
    );
    assert_eq!(reports[0].event.kind.as_str(), "watchdog_action");
    assert_eq!(reports[0].event.tier, Some(1));
    assert_eq!(reports[0].event.to_json()["kind"], "watchdog_action");
    assert!(s.process.calls().is_empty(), "tier 1 sends no signal");
}

#[tokio::test(start_paused = true)]
async fn version_mismatch_acts_at_tier_1() {
    let s = setup().await;
    std::fs::write(s.path("expected"), "v3\n").unwrap();
    let out = s.round().await;
    assert!(out.starts_with("acted tier 1"), "{out}");
    assert!(
        s.texts()[0]
            .starts_with("🩹 bridge: running version v2, expected v3 — wrote the restart marker"),
        "{:?}",
        s.texts()
    );
}

#[tokio::test(start_paused = true)]
async fn missing_version_stamp_is_not_a_failure() {
    let s = setup().await;
    std::fs::remove_file(s.path("bridge.version")).unwrap();
    assert_eq!(s.round().await, "healthy");
    let why = s.watchdog.explain("bridge").unwrap();
    let obs = why.observation.unwrap();
    assert_eq!(obs.health, Health::Healthy);
    assert!(
        obs.notes.iter().any(|n| n.contains("no version stamp")),
        "{:?}",
        obs.notes
    );
    assert!(s.texts().is_empty());
}

#[tokio::test(start_paused = true)]
async fn missing_heartbeat_at_first_start_has_a_grace() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bridge.pid"), "41\n").unwrap();
    let clock = Arc::new(TokioClock::starting_at(t0()));
    let w = Watchdog::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryReporter::new()),
    )
    .clock(clock)
    .process_control(FakeProcess::with_alive(41))
    .build();
    let mut spec = process_spec(dir.path());
    spec.expected_version = None;
    w.add_target(Target::new("bridge", TargetSpec::Process(spec)))
        .await
        .unwrap();
    let r = w.probe_round().await;
    assert_eq!(r.outcome("bridge").unwrap().outcome, "healthy");
    assert!(w.explain("bridge").unwrap().observation.unwrap().notes[0].contains("grace"));
    advance(85).await;
    assert_eq!(
        w.probe_round().await.outcome("bridge").unwrap().outcome,
        "healthy"
    );
    advance(10).await;
    let out = w
        .probe_round()
        .await
        .outcome("bridge")
        .unwrap()
        .outcome
        .clone();
    assert!(out.starts_with("acted tier 1"), "{out}");
}

#[tokio::test(start_paused = true)]
async fn cooldown_suppresses_a_second_action() {
    let s = setup().await;
    advance(95).await;
    assert!(s.round().await.starts_with("acted tier 1"));
    // Inside the quiet period: results do not count.
    advance(5).await;
    assert!(s.round().await.starts_with("settling"));
    // Past the quiet period, inside the cooldown.
    for _ in 0..6 {
        advance(5).await;
        let out = s.round().await;
        assert!(out.starts_with("tier 2 waits for Cooldown"), "{out}");
    }
    assert_eq!(s.texts().len(), 1);
    assert!(s.process.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn tier_2_after_tier_1_did_not_help_then_tier_3_kills_and_starts() {
    let s = setup().await;
    advance(95).await;
    assert!(s.round().await.starts_with("acted tier 1"));
    advance(45).await;
    let out = s.round().await;
    assert!(
        out.starts_with("acted tier 2: sent SIGTERM to pid 41"),
        "{out}"
    );
    assert_eq!(s.process.calls(), vec!["Term 41"]);
    // The process ignores SIGTERM: tier 3 after the next cooldown.
    advance(30).await;
    assert!(s.round().await.contains("waits for Cooldown"));
    advance(15).await;
    let out = s.round().await;
    assert!(
        out.starts_with(
            "acted tier 3: sent SIGKILL to pid 41 and ran the start command (pid 1000)"
        ),
        "{out}"
    );
    assert_eq!(
        s.process.calls(),
        vec!["Term 41", "Kill 41", "spawn start-bridge"]
    );
    let texts = s.texts();
    assert_eq!(texts.len(), 3);
    assert!(texts[2].ends_with("(tier 3)"), "{}", texts[2]);
    assert_eq!(s.watchdog.state("bridge").unwrap().restarts, 1);
}

#[tokio::test(start_paused = true)]
async fn no_pid_goes_straight_to_tier_3() {
    let s = setup().await;
    std::fs::remove_file(s.path("bridge.pid")).unwrap();
    let out = s.round().await;
    assert!(
        out.starts_with("acted tier 3: ran the start command"),
        "{out}"
    );
    assert_eq!(s.process.calls(), vec!["spawn start-bridge"]);
    assert!(
        !s.path("restart-bridge").exists(),
        "no marker for a process that is gone"
    );
    assert!(
        s.texts()[0].starts_with("🩹 bridge: pid file missing — ran the start command"),
        "{:?}",
        s.texts()
    );
}

#[tokio::test(start_paused = true)]
async fn dead_pid_is_never_signalled() {
    let s = setup().await;
    s.process.alive.lock().unwrap().clear();
    let out = s.round().await;
    assert!(out.starts_with("acted tier 3"), "{out}");
    assert_eq!(s.process.calls(), vec!["spawn start-bridge"]);
    assert!(s.texts()[0].contains("pid 41 not alive"));
}

#[tokio::test(start_paused = true)]
async fn circuit_opens_after_n_top_tier_failures_and_stops_acting() {
    let s = setup().await;
    // Gone, and the start command never brings it back.
    std::fs::remove_file(s.path("bridge.pid")).unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..120 {
        outcomes.push(s.round().await);
        advance(5).await;
    }
    let acted = outcomes.iter().filter(|o| o.starts_with("acted")).count();
    assert_eq!(acted, 3, "three top-tier attempts: {outcomes:?}");
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| o.starts_with("circuit opened"))
            .count(),
        1
    );
    assert!(outcomes.last().unwrap() == "circuit open");
    let reports = s.reporter.reports();
    let open = reports.last().unwrap();
    assert_eq!(open.notification.severity, Severity::Critical);
    assert_eq!(open.notification.key, "watchdog_circuit:bridge");
    assert!(
        open.notification
            .text
            .contains("circuit open, the top tier failed 3 times in a row; the watchdog stopped acting (tier 4)"),
        "{}",
        open.notification.text
    );
    assert_eq!(open.event.kind, EventKind::WatchdogCircuitOpen);
    assert_eq!(s.watchdog.metrics().circuits_open(), 1);

    // A manual reset closes it, announced once, and the ladder acts again.
    s.watchdog.reset("bridge").await.unwrap();
    assert_eq!(s.watchdog.metrics().circuits_open(), 0);
    let closed = s.reporter.reports().last().unwrap().clone();
    assert!(closed.notification.resolves);
    assert_eq!(closed.notification.key, "watchdog_circuit:bridge");
    assert!(s.round().await.starts_with("acted tier 3"));
}

#[tokio::test(start_paused = true)]
async fn too_many_heals_in_a_period_open_the_circuit() {
    let s = setup_with(
        |p| {
            p.max_heals = 2;
            p.heal_period = Duration::from_secs(3600);
        },
        None,
    )
    .await;
    // Fails (version), heals at tier 1, looks healthy, fails again … three times.
    for _ in 0..3 {
        std::fs::write(s.path("expected"), "v3\n").unwrap();
        assert!(s.round().await.starts_with("acted tier 1"));
        std::fs::write(s.path("expected"), "v2\n").unwrap();
        advance(15).await;
        s.beat();
        assert_eq!(s.round().await, "healthy");
        advance(5).await;
    }
    std::fs::write(s.path("expected"), "v3\n").unwrap();
    let out = s.round().await;
    assert!(
        out.starts_with("circuit opened: 3 heals within 3600s"),
        "{out}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_healthy_probe_resets_the_ladder_and_recovery_is_announced_once() {
    let s = setup().await;
    advance(95).await;
    assert!(s.round().await.starts_with("acted tier 1"));
    advance(15).await;
    s.beat();
    assert_eq!(s.round().await, "healthy");
    advance(5).await;
    s.beat();
    assert_eq!(s.round().await, "healthy");
    let texts = s.texts();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert_eq!(
        texts[1],
        "✅ bridge: healthy again after cooperative restart (restart marker) (tier 1)"
    );
    assert!(s.reporter.reports()[1].notification.resolves);
    let st = s.watchdog.state("bridge").unwrap();
    assert_eq!((st.next_tier, st.last_action.is_none()), (0, true));
    // The next failure starts at tier 1 again.
    std::fs::remove_file(s.path("restart-bridge")).unwrap();
    advance(95).await;
    assert!(s.round().await.starts_with("acted tier 1"));
}

#[tokio::test(start_paused = true)]
async fn state_survives_a_restart_without_acting_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn HealStateStore> =
        Arc::new(JsonFileStore::new(dir.path().join("watchdog")).unwrap());
    let s = setup_with(|_| {}, Some(store.clone())).await;
    advance(95).await;
    assert!(s.round().await.starts_with("acted tier 1"));
    advance(45).await;
    assert!(s.round().await.starts_with("acted tier 2"));
    assert!(dir.path().join("watchdog/bridge.json").exists());
    let saved = store.load("bridge").unwrap().unwrap();
    assert_eq!(saved.next_tier, 2);
    let spec = process_spec(s.dir.path());
    let policy = Policy::for_kind(TargetKind::Process);

    // lookoutd restarts 20 s later: inside tier 2's cooldown, so nothing is repeated.
    advance(20).await;
    let (w2, rep2) = s.restarted(spec, policy).await;
    // The daemon feeds in the last heartbeat it has in its log.
    w2.heartbeat("bridge", t0()).unwrap();
    assert_eq!(w2.state("bridge").unwrap().next_tier, 2);
    let out = w2
        .probe_round()
        .await
        .outcome("bridge")
        .unwrap()
        .outcome
        .clone();
    assert!(out.starts_with("tier 3 waits for Cooldown"), "{out}");
    assert!(rep2.reports().is_empty());
    assert_eq!(s.process.calls(), vec!["Term 41"], "SIGTERM not sent twice");
    // And it continues at tier 3, not at tier 1.
    advance(25).await;
    let out = w2
        .probe_round()
        .await
        .outcome("bridge")
        .unwrap()
        .outcome
        .clone();
    assert!(out.starts_with("acted tier 3"), "{out}");
}

#[tokio::test(start_paused = true)]
async fn restarts_back_off_10s_doubling_then_reset_after_healthy() {
    let s = setup_with(
        |p| {
            p.cooldown = Duration::from_secs(1);
            p.quiet_after_heal = Duration::ZERO;
            p.probe_interval = Duration::from_secs(1);
            p.max_top_tier_failures = 1000;
            p.max_heals = 1000;
        },
        None,
    )
    .await;
    // Crash loop: dies right after every start.
    std::fs::remove_file(s.path("bridge.pid")).unwrap();
    let start = s.now();
    let mut restarts = Vec::new();
    for _ in 0..400 {
        if s.round().await.starts_with("acted") {
            restarts.push((s.now() - start).num_seconds());
        }
        advance(1).await;
    }
    assert_eq!(restarts, vec![0, 10, 30, 70, 150, 310]);
    // The explain says when the next one may run.
    let why = s.watchdog.explain("bridge").unwrap();
    assert_eq!(why.backoff.restarts, 6);
    assert_eq!(why.backoff.next_delay_secs, 300);
    assert_eq!(why.next.waiting_for, Some(WaitReason::Backoff));

    // Healthy for 10 minutes resets the backoff.
    std::fs::write(s.path("bridge.pid"), "1005\n").unwrap();
    for _ in 0..601 {
        s.beat();
        s.round().await;
        advance(1).await;
    }
    assert_eq!(s.watchdog.state("bridge").unwrap().restarts, 0);
}

#[tokio::test(start_paused = true)]
async fn three_targets_failing_with_one_cause_open_one_shared_circuit() {
    let dir = tempfile::tempdir().unwrap();
    let process = FakeProcess::with_alive(41);
    let reporter = Arc::new(MemoryReporter::new());
    let clock = Arc::new(TokioClock::starting_at(t0()));
    let w = Watchdog::builder(Arc::new(MemoryStore::new()), reporter.clone())
        .clock(clock.clone())
        .process_control(process.clone())
        .build();
    for n in ["agent-a", "agent-b", "agent-c", "other"] {
        let spec = ProcessSpec {
            heartbeat_events: true,
            restart_marker: Some(dir.path().join(n)),
            start: Some(format!("start {n}")),
            ..ProcessSpec::default()
        };
        let mut t = Target::new(n, TargetSpec::Process(spec));
        if n != "other" {
            t = t.with_upstream("gateway");
        }
        w.add_target(t).await.unwrap();
        w.heartbeat(n, clock.now()).unwrap();
    }
    w.probe_round().await;
    advance(95).await;
    // All four are stale; three share the gateway.
    let r = w.probe_round().await;
    assert_eq!(r.shared_circuits.len(), 1);
    assert_eq!(
        r.shared_circuits[0].targets,
        vec!["agent-a", "agent-b", "agent-c"]
    );
    for n in ["agent-a", "agent-b", "agent-c"] {
        assert_eq!(
            r.outcome(n).unwrap().outcome,
            "held by the shared circuit (gateway)"
        );
        assert!(!dir.path().join(n).exists(), "{n} not healed one by one");
    }
    assert!(
        r.outcome("other")
            .unwrap()
            .outcome
            .starts_with("acted tier 1")
    );
    let alerts: Vec<_> = reporter
        .reports()
        .into_iter()
        .filter(|r| r.notification.severity == Severity::Critical)
        .collect();
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0]
            .notification
            .text
            .starts_with("⛔ 3 targets failing together, shared cause: gateway"),
        "{}",
        alerts[0].notification.text
    );
    let why = w.explain("agent-b").unwrap();
    assert_eq!(why.circuit.state, CircuitState::SharedOpen);
    assert!(why.circuit.reason.unwrap().contains("gateway"));
    // Still failing: no second alert.
    advance(5).await;
    w.probe_round().await;
    assert_eq!(
        reporter
            .reports()
            .iter()
            .filter(|r| r.notification.severity == Severity::Critical)
            .count(),
        1
    );
    assert_eq!(w.metrics().circuits_open(), 1);
    // The gateway comes back: closed, announced once.
    for n in ["agent-a", "agent-b", "agent-c"] {
        w.heartbeat(n, clock.now()).unwrap();
    }
    advance(5).await;
    let r = w.probe_round().await;
    assert!(r.shared_circuits.is_empty());
    let closed: Vec<_> = reporter
        .reports()
        .into_iter()
        .filter(|r| r.event.kind == EventKind::WatchdogSharedCircuitClosed)
        .collect();
    assert_eq!(closed.len(), 1);
    assert!(closed[0].notification.resolves);
    assert_eq!(w.metrics().circuits_open(), 0);
    assert!(process.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failing_endpoint_alerts_after_n_probes_in_a_row() {
    let http = Arc::new(FakeHttp::default());
    let reporter = Arc::new(MemoryReporter::new());
    let w = Watchdog::builder(Arc::new(MemoryStore::new()), reporter.clone())
        .clock(Arc::new(TokioClock::starting_at(t0())))
        .http_probe(http.clone())
        .build();
    w.add_target(Target::new(
        "gateway",
        TargetSpec::Http(HttpSpec::new("http://127.0.0.1:4000/health")),
    ))
    .await
    .unwrap();
    assert_eq!(w.probe_round().await.outcomes[0].health, Health::Healthy);
    http.fail.store(true, Ordering::SeqCst);
    let mut outs = Vec::new();
    for _ in 0..4 {
        advance(5).await;
        outs.push(w.probe_round().await.outcomes[0].outcome.clone());
    }
    assert_eq!(outs[0], "healthy", "one failure is a note, not a failure");
    assert_eq!(outs[1], "healthy");
    assert!(
        outs[2].starts_with("circuit opened: no healing tier"),
        "{outs:?}"
    );
    assert_eq!(outs[3], "circuit open");
    let texts = reporter.texts();
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].contains("endpoint failed 3 probes in a row"),
        "{}",
        texts[0]
    );
}

#[tokio::test(start_paused = true)]
async fn container_ladder_and_an_unreachable_engine() {
    let engine = Arc::new(FakeEngine::default());
    let reporter = Arc::new(MemoryReporter::new());
    let w = Watchdog::builder(Arc::new(MemoryStore::new()), reporter.clone())
        .clock(Arc::new(TokioClock::starting_at(t0())))
        .container_control(engine.clone())
        .build();
    w.add_target(Target::new(
        "litellm",
        TargetSpec::Container(ContainerSpec {
            container: "litellm".into(),
        }),
    ))
    .await
    .unwrap();
    // Engine unreachable: its own observation, no action, no alert.
    let r = w.probe_round().await;
    assert_eq!(r.outcomes[0].health, Health::Unknown);
    assert!(engine.calls.lock().unwrap().is_empty());
    assert!(reporter.reports().is_empty());
    // Exited: restart, then stop + start.
    *engine.state.lock().unwrap() = container("exited", None, 0);
    advance(5).await;
    assert!(
        w.probe_round().await.outcomes[0]
            .outcome
            .starts_with("acted tier 1: restarted container litellm")
    );
    advance(45).await;
    assert!(
        w.probe_round().await.outcomes[0]
            .outcome
            .starts_with("acted tier 2: stopped and started")
    );
    assert_eq!(
        *engine.calls.lock().unwrap(),
        vec!["restart litellm", "stop litellm", "start litellm"]
    );
    assert!(reporter.texts()[0].starts_with(
        "🩹 litellm: container exited (exit code 1) — restarted container litellm (tier 1)"
    ));
    // Healthy, then unhealthy by its health check, then a restart loop.
    *engine.state.lock().unwrap() = container("running", Some("healthy"), 0);
    advance(60).await;
    assert_eq!(w.probe_round().await.outcomes[0].outcome, "healthy");
    *engine.state.lock().unwrap() = container("running", Some("unhealthy"), 0);
    advance(5).await;
    assert!(
        w.probe_round().await.outcomes[0]
            .outcome
            .starts_with("acted tier 1")
    );
    *engine.state.lock().unwrap() = container("running", None, 4);
    advance(60).await;
    let r = w.probe_round().await;
    assert!(r.outcomes[0].outcome.starts_with("acted tier 2"), "{:?}", r);
    assert!(
        reporter
            .texts()
            .last()
            .unwrap()
            .contains("restarting in a loop")
    );
}

#[tokio::test(start_paused = true)]
async fn explain_says_what_was_seen_what_comes_next_and_why_the_circuit_is_open() {
    let s = setup().await;
    let why = s.watchdog.explain("bridge").unwrap();
    assert!(why.observation.is_none());
    assert_eq!(why.next.summary.split(' ').next(), Some("tier"));
    s.round().await;
    let why = s.watchdog.explain("bridge").unwrap();
    assert_eq!(why.observation.as_ref().unwrap().health, Health::Healthy);
    assert_eq!(why.next.tier, Some(1));
    assert!(why.next.if_failing);
    assert_eq!(why.ladder.len(), 3);

    advance(95).await;
    s.round().await;
    let acted_at = s.now();
    advance(20).await;
    s.round().await;
    let why = s.watchdog.explain("bridge").unwrap();
    assert_eq!(why.seen, vec!["heartbeat 115s old (stale after 90s)"]);
    assert_eq!(why.last_action.as_ref().unwrap().tier, 1);
    assert_eq!(why.next.tier, Some(2));
    assert_eq!(why.next.action, Some(Action::Terminate));
    assert_eq!(why.next.waiting_for, Some(WaitReason::Cooldown));
    assert_eq!(why.next.at, Some(acted_at + chrono::Duration::seconds(45)));
    assert!(!why.next.if_failing);
    assert_eq!(why.circuit.state, CircuitState::Closed);
    let json = serde_json::to_value(&why).unwrap();
    assert_eq!(json["next"]["waiting_for"], "cooldown");
    assert_eq!(json["circuit"]["state"], "closed");

    // Drive it to an open circuit.
    std::fs::remove_file(s.path("bridge.pid")).unwrap();
    for _ in 0..100 {
        advance(5).await;
        s.round().await;
    }
    let why = s.watchdog.explain("bridge").unwrap();
    assert_eq!(why.circuit.state, CircuitState::Open);
    assert_eq!(
        why.circuit.reason.as_deref(),
        Some("the top tier failed 3 times in a row")
    );
    assert!(
        why.circuit
            .closes
            .unwrap()
            .contains("lookout watchdog reset bridge")
    );
    assert_eq!(why.next.summary, "nothing: the circuit is open");
}

#[tokio::test(start_paused = true)]
async fn metrics_count_probes_and_actions() {
    let s = setup().await;
    let mut registry = prometheus_client::registry::Registry::default();
    s.watchdog.register(&mut registry);
    s.round().await;
    advance(95).await;
    s.round().await;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("lookout_watchdog_probes_total{target=\"bridge\",result=\"healthy\"} 1"),
        "{text}"
    );
    assert!(text.contains("lookout_watchdog_probes_total{target=\"bridge\",result=\"failing\"} 1"));
    assert!(text.contains("lookout_watchdog_heal_actions_total{target=\"bridge\",tier=\"1\"} 1"));
    assert!(text.contains("lookout_watchdog_circuits_open 0"));
}

#[tokio::test(start_paused = true)]
async fn no_action_without_a_saved_state() {
    let s = setup_with(|_| {}, Some(Arc::new(BrokenStore))).await;
    std::fs::remove_file(s.path("bridge.pid")).unwrap();
    let out = s.round().await;
    assert!(out.starts_with("not acting: heal state not saved"), "{out}");
    assert!(s.process.calls().is_empty());
    assert!(s.texts().is_empty());
    // The decision was forgotten: the ladder has not moved.
    assert_eq!(s.watchdog.state("bridge").unwrap().next_tier, 0);
}

#[tokio::test(start_paused = true)]
async fn heartbeats_for_unknown_targets_and_removal() {
    let s = setup().await;
    assert!(matches!(
        s.watchdog.heartbeat("nope", s.now()),
        Err(WatchdogError::UnknownTarget(_))
    ));
    assert!(s.watchdog.explain("nope").is_err());
    assert!(s.watchdog.reset("nope").await.is_err());
    assert!(s.watchdog.remove_target("bridge").await.unwrap());
    assert!(s.watchdog.targets().is_empty());
    assert!(s.watchdog.probe_round().await.outcomes.is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_run_loop_probes_once_per_interval() {
    let s = setup().await;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let w = s.watchdog.clone();
    let task = tokio::spawn(async move {
        w.run(async {
            let _ = rx.await;
        })
        .await
    });
    // Keep beating for a minute, then hang: tier 1 within stale + interval.
    // Sleeping (not `advance`) lets the paused clock move only when the loop is idle, so a probe
    // in flight (on a blocking thread) is not overtaken.
    for _ in 0..12 {
        s.beat();
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let hang = s.now();
    while s.reporter.reports().is_empty() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let acted = s.reporter.reports()[0].event.at;
    let _ = tx.send(());
    task.await.unwrap();
    let latency = (acted - hang).num_seconds();
    assert!(
        (86..=95).contains(&latency),
        "acted {latency}s after the hang"
    );
    let mut registry = prometheus_client::registry::Registry::default();
    s.watchdog.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    // One probe per 5 s: about 12 healthy probes in the first minute.
    let healthy: u64 = text
        .lines()
        .find(|l| {
            l.starts_with("lookout_watchdog_probes_total{target=\"bridge\",result=\"healthy\"}")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((12..=32).contains(&healthy), "{healthy}");
}
