//! Incidents, on both stores: opened and closed with their alert in one transaction, actions
//! noted on the open ones only, folded alerts kept with their cause, old ones pruned.

use chrono::{DateTime, TimeZone, Utc};
use lookout_store::{AlertRecord, IncidentAction, IncidentScope, Store};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

fn alert(key: &str, firing: bool, first_seen: i64, cause: Option<&str>) -> AlertRecord {
    let (rule, subject) = key.split_once(':').unwrap();
    AlertRecord {
        key: key.into(),
        rule: rule.into(),
        subject: subject.into(),
        firing,
        severity: "critical".into(),
        group: Some("main".into()),
        text: format!("{key} is down"),
        cause: cause.map(Into::into),
        first_seen: t(first_seen),
        last_change: t(first_seen),
        last_sent: Some(t(first_seen)),
        send_count: 1,
        resolved_at: None,
        changes: vec![],
        flapping: false,
        acked_by: None,
    }
}

fn action(at: i64, kind: &str, text: &str) -> IncidentAction {
    IncidentAction {
        at: t(at),
        kind: kind.into(),
        text: text.into(),
        by: Some("@alice".into()),
    }
}

async fn an_alert_firing_then_resolving_is_one_incident_with_its_actions(store: Store) {
    store
        .alert_put(&alert("watchdog_circuit:bridge", true, 0, None))
        .await
        .unwrap();
    // Stored again while firing (a reminder, an ack): still one incident.
    let mut a = alert("watchdog_circuit:bridge", true, 0, None);
    a.acked_by = Some("@alice".into());
    store.alert_put(&a).await.unwrap();
    let noted = store
        .incident_note(
            IncidentScope::Subject("bridge"),
            &action(30, "heal", "tier 2: restarted bridge"),
        )
        .await
        .unwrap();
    assert_eq!(noted, 1);
    assert_eq!(
        store
            .incident_note(IncidentScope::Subject("other"), &action(31, "heal", "x"))
            .await
            .unwrap(),
        0,
        "an action about another subject is not this incident's"
    );
    let mut resolved = a.clone();
    resolved.firing = false;
    resolved.resolved_at = Some(t(600));
    store.alert_put(&resolved).await.unwrap();
    assert_eq!(
        store.alert_get(&a.key).await.unwrap().unwrap().acked_by,
        a.acked_by
    );

    let list = store.incidents_since(t(-10)).await.unwrap();
    assert_eq!(list.len(), 1, "{list:#?}");
    let i = &list[0];
    assert_eq!(i.alert, "watchdog_circuit:bridge");
    assert_eq!(i.started_at, t(0));
    assert_eq!(i.resolved_at, Some(t(600)));
    assert_eq!(i.duration(t(10_000)), chrono::Duration::seconds(600));
    assert_eq!(
        i.actions,
        vec![action(30, "heal", "tier 2: restarted bridge")]
    );

    // Closed: nothing more is noted on it.
    assert_eq!(
        store
            .incident_note(
                IncidentScope::Matching(None),
                &action(700, "quiet", "quiet 1h")
            )
            .await
            .unwrap(),
        0
    );
    // A new firing of the same alert is a new incident.
    store
        .alert_put(&alert("watchdog_circuit:bridge", true, 1000, None))
        .await
        .unwrap();
    let list = store.incidents_since(t(-10)).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].started_at, t(1000), "newest first");
    assert!(list[0].resolved_at.is_none());
}

async fn folded_alerts_keep_their_cause_and_old_incidents_are_pruned(store: Store) {
    store
        .alert_put(&alert("docker_engine:local", true, 0, None))
        .await
        .unwrap();
    store
        .alert_put(&alert(
            "watchdog_circuit:agent-1",
            true,
            5,
            Some("docker_engine:local"),
        ))
        .await
        .unwrap();
    let noted = store
        .incident_note(
            IncidentScope::Matching(Some("docker|nothing")),
            &action(10, "quiet", "quiet 30m"),
        )
        .await
        .unwrap();
    assert_eq!(noted, 1, "only the key matching a part of the matcher");
    let list = store.incidents_since(t(-10)).await.unwrap();
    let folded = list.iter().find(|i| i.subject == "agent-1").unwrap();
    assert_eq!(folded.cause.as_deref(), Some("docker_engine:local"));

    for key in ["docker_engine:local", "watchdog_circuit:agent-1"] {
        let mut a = alert(
            key,
            false,
            if key.starts_with("docker") { 0 } else { 5 },
            None,
        );
        a.resolved_at = Some(t(100));
        store.alert_put(&a).await.unwrap();
    }
    // An open incident is never pruned, however old; resolved ones before the limit are.
    store
        .alert_put(&alert("I3:run-1", true, 1, None))
        .await
        .unwrap();
    assert_eq!(store.incidents_prune(t(50)).await.unwrap(), 2);
    let left = store.incidents_since(t(-10)).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].alert, "I3:run-1");
    // An open incident is listed whatever `since` says.
    assert_eq!(store.incidents_since(t(10_000)).await.unwrap().len(), 1);
}

lookout_store::store_tests!(
    an_alert_firing_then_resolving_is_one_incident_with_its_actions,
    folded_alerts_keep_their_cause_and_old_incidents_are_pruned,
);
