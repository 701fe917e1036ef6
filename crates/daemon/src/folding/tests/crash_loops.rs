//! Crash loops go through the lifecycle: one alert, its ready sends only the recovery report, and
//! a quiet window (a deploy's, or a configured one) holds them.

use super::*;

/// lookoutd's boot records over `w`'s outbox, as the daemon builds them (crash loop at the 3rd
/// failed start within 5 minutes).
fn boots(w: &World, state_dir: &std::path::Path) -> crate::boot::Boots {
    let (book, per_service) = crate::wiring::boot_books(&w.config, state_dir);
    crate::boot::Boots::new(book, per_service, w.outbox.clone(), w.alerts.clone())
}

/// Three starts of `service` that fail: the third is a crash loop.
async fn crash_loop(w: &World, b: &crate::boot::Boots, service: &str) {
    for (i, pid) in [100, 101, 102].into_iter().enumerate() {
        b.begin(&w.store, service.into(), None, Some(pid))
            .await
            .unwrap();
        let out = b
            .fail(&w.store, service.into(), "config: unknown key `x`".into())
            .await
            .unwrap();
        assert_eq!(
            out.crash_loop.is_some(),
            i == 2,
            "a crash loop at the 3rd failure"
        );
    }
}

const LOOPING: &str = "🔁 agent-host is crash-looping: 3 failed start(s) in 5m with no ready. \
    Last failure: config: unknown key `x`";

const RECOVERED: &str = "agent-host: ⚠️ Service recovered after 3 failed start(s). Last failure: \
    config: unknown key `x`";

async fn crash_loop_notifications(w: &World) -> usize {
    w.store
        .recent_notifications(100)
        .await
        .unwrap()
        .iter()
        .filter(|n| n.dedup_key.as_deref() == Some("crash_loop:agent-host"))
        .count()
}

#[tokio::test]
async fn a_crash_loop_is_one_alert_and_its_ready_sends_only_the_recovery_report() {
    let w = World::new("").await;
    let dir = tempfile::tempdir().unwrap();
    let b = boots(&w, dir.path());
    crash_loop(&w, &b, "agent-host").await;
    let sent = w.sent().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (key, text, payload) = &sent[0];
    assert_eq!(
        (key.as_str(), text.as_str()),
        ("crash_loop:agent-host", LOOPING)
    );
    assert_eq!(payload["failed_starts"], 3, "{payload}");
    assert_eq!(payload["state"], "firing", "{payload}");
    let looping = AlertKey::new("crash_loop", "agent-host");
    assert_eq!(w.shown(&looping).await, ("firing", None));
    // Ready: the report says it is over; no second message under the crash loop's key.
    b.begin(&w.store, "agent-host".into(), None, Some(103))
        .await
        .unwrap();
    b.ready(&w.store, "agent-host".into()).await.unwrap();
    let sent = w.sent().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].0.as_str(), sent[0].1.as_str()),
        ("boot_recovered:agent-host", RECOVERED)
    );
    assert_eq!(w.shown(&looping).await, ("resolved", None));
    assert_eq!(crash_loop_notifications(&w).await, 1);
}

#[tokio::test]
async fn a_deploy_window_holds_a_crash_loop_and_sends_it_when_it_ends_if_it_still_loops() {
    let w = World::new("").await;
    let dir = tempfile::tempdir().unwrap();
    let b = boots(&w, dir.path());
    // A deploy: its window (thresholds.deploy_quiet) holds restart-class alerts, crash_loop among
    // them.
    w.store
        .append_event(
            &NewEvent::new("deploy", json!({"sha": "abc1234def"})).with_subject("agent-host"),
        )
        .await
        .unwrap();
    let mut deploys =
        crate::alerts::deploy_subscription(&crate::log::EventLog::new(w.store.clone()));
    crate::alerts::deploy_windows(&w.store, Duration::from_secs(600), &mut deploys).await;
    let windows = w.store.quiet_windows(Utc::now()).await.unwrap();
    assert_eq!(windows.len(), 1);
    assert_eq!(windows[0].reason, "deploy abc1234");

    crash_loop(&w, &b, "agent-host").await;
    let looping = AlertKey::new("crash_loop", "agent-host");
    let list = w.alerts.list(Utc::now()).await.unwrap();
    let held = list.iter().find(|v| v.record.key == looping.to_string());
    assert_eq!(held.map(|v| v.status), Some("held"), "{list:?}");
    assert!(w.sent().await.is_empty(), "held, nothing sent");
    assert_eq!(crash_loop_notifications(&w).await, 0);
    assert!(w.alerts.tick(Utc::now()).await.unwrap().is_empty());

    // The window ends and the service still loops: the alert is sent now, once, as it was said.
    let after = Utc::now() + chrono::Duration::minutes(11);
    assert_eq!(
        w.alerts.tick(after).await.unwrap(),
        [(looping.clone(), Outcome::Sent)]
    );
    assert!(
        w.alerts
            .tick(after + chrono::Duration::seconds(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(w.said().await, [LOOPING]);
    assert_eq!(crash_loop_notifications(&w).await, 1);
}

#[tokio::test]
async fn a_crash_loop_that_ends_inside_its_deploy_window_is_never_sent() {
    let w = World::new("").await;
    let dir = tempfile::tempdir().unwrap();
    let b = boots(&w, dir.path());
    w.store
        .append_event(&NewEvent::new("deploy", json!({"sha": "f00"})).with_subject("agent-host"))
        .await
        .unwrap();
    let mut deploys =
        crate::alerts::deploy_subscription(&crate::log::EventLog::new(w.store.clone()));
    crate::alerts::deploy_windows(&w.store, Duration::from_secs(600), &mut deploys).await;
    crash_loop(&w, &b, "agent-host").await;
    b.begin(&w.store, "agent-host".into(), None, Some(103))
        .await
        .unwrap();
    b.ready(&w.store, "agent-host".into()).await.unwrap();
    // The recovery report is a one-off message; the crash loop fired and cleared unseen.
    assert_eq!(w.said().await, [RECOVERED]);
    let after = Utc::now() + chrono::Duration::minutes(11);
    assert!(w.alerts.tick(after).await.unwrap().is_empty());
    assert!(w.said().await.is_empty());
    assert_eq!(crash_loop_notifications(&w).await, 0);
}

#[tokio::test]
async fn a_configured_quiet_window_matching_crash_loop_holds_one() {
    let w = World::new(
        "[[quiet]]\nname = \"maintenance\"\ncron = \"* * * * *\"\nduration = \"1h\"\n\
         match = \"crash_loop\"\n",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let b = boots(&w, dir.path());
    crash_loop(&w, &b, "agent-host").await;
    let looping = AlertKey::new("crash_loop", "agent-host");
    let list = w.alerts.list(Utc::now()).await.unwrap();
    let held = list.iter().find(|v| v.record.key == looping.to_string());
    assert_eq!(held.map(|v| v.status), Some("held"), "{list:?}");
    assert!(w.sent().await.is_empty(), "held, nothing sent");
    assert_eq!(crash_loop_notifications(&w).await, 0);
}
