//! The container-event policy, on events as the engine sends them (no engine needed).

use super::*;

fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
}

fn fired(d: &[Decision]) -> Vec<String> {
    d.iter()
        .filter_map(|d| match d {
            Decision::Fire { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn names_patterns_and_labels_say_which_containers_are_followed() {
    let c = lookout_config::parse(
        "[docker]\nwatch = [\"litellm*\", \"label:lookout.watch=true\", \"label:team\"]\n\n\
         [gateway]\ncontainers = [\"proxy\"]\n",
        "t.toml",
    )
    .unwrap();
    let w = Watched::from_config(&c);
    let none = HashMap::new();
    assert!(w.matches("litellm", &none) && w.matches("litellm-db", &none));
    assert!(
        w.matches("proxy", &none),
        "the gateway's containers are followed"
    );
    assert!(!w.matches("pynchy", &none));
    let labelled = HashMap::from([("lookout.watch".to_owned(), "true".to_owned())]);
    assert!(w.matches("pynchy", &labelled));
    let wrong = HashMap::from([("lookout.watch".to_owned(), "false".to_owned())]);
    assert!(!w.matches("pynchy", &wrong));
    let team = HashMap::from([("team".to_owned(), "x".to_owned())]);
    assert!(w.matches("anything", &team));
    assert!(wildcard("a*b*c", "axxbyyc") && !wildcard("a*b*c", "axxc"));
    assert!(wildcard("*", "") && wildcard("x*", "x") && !wildcard("x", "xy"));
}

fn dies(p: &mut ContainerEvents, name: &str, code: i64, at: i64) -> Vec<String> {
    assert!(
        p.on(
            name,
            EngineEvent::Die {
                exit_code: Some(code)
            },
            t(at)
        )
        .is_empty()
    );
    p.due(t(at) + chrono::TimeDelta::from_std(RESTART_GRACE).unwrap())
        .into_iter()
        .flat_map(|(_, d)| fired(&[d]))
        .collect()
}

#[test]
fn a_watchdog_targets_death_waits_for_the_watchdogs_restart() {
    let grace = watchdog_grace(Duration::from_secs(5));
    assert_eq!(grace, Duration::from_secs(20));
    let mut p = ContainerEvents::new(3, Duration::from_secs(300)).with_grace("agent-1", grace);
    p.on("agent-1", EngineEvent::Die { exit_code: Some(1) }, t(0));
    p.on("db", EngineEvent::Die { exit_code: Some(1) }, t(0));
    let due: Vec<String> = p.due(t(6)).into_iter().map(|(n, _)| n).collect();
    assert_eq!(due, ["db"], "a plain container after the 5 s grace");
    // The watchdog restarted it within its grace: never said.
    p.on("agent-1", EngineEvent::Start, t(15));
    assert!(p.due(t(30)).is_empty());
    // Down for longer than the watchdog's grace: said.
    p.on("agent-1", EngineEvent::Die { exit_code: Some(1) }, t(40));
    assert!(p.due(t(59)).is_empty());
    assert_eq!(p.due(t(60)).len(), 1);
}

#[test]
fn a_death_is_one_alert_an_oom_says_so_and_a_start_resolves_it() {
    let mut p = ContainerEvents::new(3, Duration::from_secs(300));
    assert!(dies(&mut p, "db", 0, 0).is_empty(), "a clean exit");
    assert!(
        p.on(
            "db",
            EngineEvent::Kill {
                signal: Some("9".into())
            },
            t(1)
        )
        .is_empty()
    );
    assert!(
        p.due(t(2)).is_empty(),
        "within the restart grace nothing is said"
    );
    assert_eq!(
        dies(&mut p, "db", 137, 1),
        ["🛑 container db died (exit code 137, signal 9)"]
    );
    assert_eq!(
        p.on("db", EngineEvent::Start, t(10)),
        [Decision::Resolve { rule: DIED }]
    );
    p.on("db", EngineEvent::Oom, t(20));
    assert_eq!(
        dies(&mut p, "db", 137, 20),
        ["🛑 container db was killed for memory (OOM), exit code 137"]
    );
    // Died and restarted by the engine at once: a restart, not an alert.
    assert!(
        p.on("db", EngineEvent::Die { exit_code: Some(1) }, t(40))
            .is_empty()
    );
    p.on("db", EngineEvent::Start, t(41));
    assert!(p.due(t(60)).is_empty());
    let d = p.on("db", EngineEvent::Health { healthy: false }, t(70));
    assert_eq!(
        fired(&d),
        ["🩺 container db is unhealthy (its health check fails)"]
    );
    assert_eq!(
        p.on("db", EngineEvent::Health { healthy: true }, t(80)),
        [Decision::Resolve { rule: UNHEALTHY }]
    );
    assert_eq!(
        EngineEvent::parse("health_status: unhealthy", &HashMap::new()),
        Some(EngineEvent::Health { healthy: false })
    );
    assert_eq!(
        EngineEvent::parse(
            "die",
            &HashMap::from([("exitCode".to_owned(), "3".to_owned())])
        ),
        Some(EngineEvent::Die { exit_code: Some(3) })
    );
}

#[test]
fn a_restart_loop_is_one_alert_not_one_per_restart_and_settles_after_a_quiet_window() {
    let mut p = ContainerEvents::new(3, Duration::from_secs(300));
    let mut all = Vec::new();
    // Starts, dies with 1 two seconds later, restarted by the engine a second after: 10 times.
    for i in 0..10 {
        all.extend(fired(&p.on("agent", EngineEvent::Start, t(i * 10))));
        assert!(
            p.on(
                "agent",
                EngineEvent::Die { exit_code: Some(1) },
                t(i * 10 + 2)
            )
            .is_empty()
        );
        all.extend(
            p.due(t(i * 10 + 3))
                .into_iter()
                .flat_map(|(_, d)| fired(&[d])),
        );
    }
    assert_eq!(
        all,
        ["🔁 container agent is restarting in a loop: 3 starts in 5m".to_owned()],
        "one alert for the loop, none per restart"
    );
    assert!(p.settled(t(200)).is_empty(), "still looping");
    // The loop ended with a death the engine did not follow with a start (it gave up, as
    // `on-failure:5` does): the loop resolves and that death is said.
    let settled = p.settled(t(92 + 301));
    assert_eq!(
        settled[0],
        ("agent".to_owned(), Decision::Resolve { rule: RESTART_LOOP })
    );
    assert_eq!(
        fired(&[settled[1].1.clone()]),
        [
            "🛑 container agent died (exit code 1), after a restart loop: it is not restarted any more"
        ]
    );
    assert_eq!(settled.len(), 2);
    // A loop that ended with the container running only resolves.
    for i in 0..3 {
        p.on("web", EngineEvent::Start, t(1000 + i * 10));
        p.on(
            "web",
            EngineEvent::Die { exit_code: Some(2) },
            t(1000 + i * 10 + 2),
        );
    }
    p.on("web", EngineEvent::Start, t(1040));
    assert_eq!(
        p.settled(t(1040 + 301)),
        [("web".to_owned(), Decision::Resolve { rule: RESTART_LOOP })]
    );
}

#[test]
fn alerts_firing_at_start_are_looked_at_again() {
    let mut p = ContainerEvents::new(3, Duration::from_secs(300));
    assert_eq!(
        p.resume("db", DIED, ContainerNow::Running, t(0)),
        [Decision::Resolve { rule: DIED }],
        "running again: the death is over"
    );
    assert!(p.resume("db", DIED, ContainerNow::Stopped, t(0)).is_empty());
    assert!(p.resume("db", DIED, ContainerNow::Unknown, t(0)).is_empty());
    assert_eq!(
        p.resume("old", UNHEALTHY, ContainerNow::Removed, t(0)),
        [Decision::Resolve { rule: UNHEALTHY }]
    );
    assert!(p.resume("x", "I1", ContainerNow::Removed, t(0)).is_empty());
    // A loop is followed again: quiet for a window, it settles (dead: said so).
    assert!(
        p.resume("agent", RESTART_LOOP, ContainerNow::Stopped, t(0))
            .is_empty()
    );
    assert!(
        p.resume("web", RESTART_LOOP, ContainerNow::Running, t(0))
            .is_empty()
    );
    assert!(p.settled(t(100)).is_empty());
    let settled = p.settled(t(301));
    assert_eq!(
        settled
            .iter()
            .map(|(n, d)| (n.as_str(), d.clone()))
            .collect::<Vec<_>>(),
        [
            ("agent", Decision::Resolve { rule: RESTART_LOOP }),
            (
                "agent",
                Decision::Fire {
                    rule: DIED,
                    severity: Severity::Critical,
                    text: "🛑 container agent is not running, after a restart loop: it is not restarted any more".into()
                }
            ),
            ("web", Decision::Resolve { rule: RESTART_LOOP }),
        ]
    );
}

#[test]
fn a_stop_asked_for_is_no_alert_a_removal_ends_the_alerts_and_a_starting_check_says_nothing() {
    let mut p = ContainerEvents::new(3, Duration::from_secs(300));
    // `docker stop`: kill (SIGTERM), die 143, stop.
    p.on(
        "web",
        EngineEvent::Kill {
            signal: Some("15".into()),
        },
        t(0),
    );
    p.on(
        "web",
        EngineEvent::Die {
            exit_code: Some(143),
        },
        t(0),
    );
    p.on("web", EngineEvent::Stop, t(0));
    assert!(p.due(t(10)).is_empty(), "a stop asked for is not a death");
    // A crash, said; the dead container removed later: its alert resolves and it is forgotten.
    p.on("web", EngineEvent::Start, t(20));
    p.on("web", EngineEvent::Die { exit_code: Some(1) }, t(30));
    assert_eq!(p.due(t(35)).len(), 1);
    assert_eq!(
        p.on("web", EngineEvent::Destroy, t(60)),
        [
            Decision::Resolve { rule: DIED },
            Decision::Resolve { rule: RESTART_LOOP },
            Decision::Resolve { rule: UNHEALTHY }
        ]
    );
    assert!(p.seen.is_empty(), "nothing kept for a removed container");
    // A `--rm` container removed right after its crash: the crash is still said, then forgotten.
    p.on("job-1", EngineEvent::Die { exit_code: Some(3) }, t(100));
    assert!(p.on("job-1", EngineEvent::Destroy, t(100)).is_empty());
    assert_eq!(
        p.due(t(105))
            .into_iter()
            .flat_map(|(_, d)| fired(&[d]))
            .collect::<Vec<_>>(),
        ["🛑 container job-1 died (exit code 3)"]
    );
    assert!(p.seen.is_empty());
    // A health check still starting says nothing; only "unhealthy" fires.
    for quiet in ["health_status: starting", "health_status"] {
        assert_eq!(EngineEvent::parse(quiet, &HashMap::new()), None, "{quiet}");
    }
    assert_eq!(
        EngineEvent::parse("health_status: healthy", &HashMap::new()),
        Some(EngineEvent::Health { healthy: true })
    );
    assert_eq!(
        EngineEvent::parse("stop", &HashMap::new()),
        Some(EngineEvent::Stop)
    );
    assert_eq!(
        EngineEvent::parse("destroy", &HashMap::new()),
        Some(EngineEvent::Destroy)
    );
}
