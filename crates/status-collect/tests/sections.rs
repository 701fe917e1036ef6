//! The store-backed sections on SQLite and PostgreSQL.

use std::time::Duration;

use chrono::Utc;
use lookout_status_collect::sections::{BootSection, MessagesSection, NotificationsSection};
use lookout_status_collect::{Collector, Finding};
use lookout_store::{BootAttempt, BootOutcome, Direction, NewMessage, NewNotification, Store};

async fn messages_section_flags_stuck_deliveries_and_interrupted_runs(store: Store) {
    let now = Utc::now();
    let m = |id: &str| NewMessage {
        channel: "slack".into(),
        chat_jid: "c1".into(),
        message_id: id.into(),
        sender: None,
        direction: Direction::Inbound,
        timestamp: now - chrono::Duration::minutes(30),
    };
    store.record_messages(&[m("1"), m("2")]).await.unwrap();
    store
        .mark_batch_processing(
            "c1",
            &["1".into(), "2".into()],
            now - chrono::Duration::minutes(15),
        )
        .await
        .unwrap();
    store
        .delivery_queued(
            "d1",
            Some("slack"),
            "c1",
            now - chrono::Duration::minutes(9),
        )
        .await
        .unwrap();
    store
        .delivery_queued("d2", Some("slack"), "c1", now)
        .await
        .unwrap();
    let s = MessagesSection {
        store,
        delivery_pending: Duration::from_secs(300),
        stale_processing: Duration::from_secs(600),
    };
    let c = s.collect().await.unwrap();
    assert_eq!(c.data["total_inbound"], 2);
    assert_eq!(c.data["pending_deliveries"], 2);
    assert_eq!(c.data["pending_deliveries_too_long"], 1);
    assert_eq!(c.data["in_flight_too_long"], 2);
    assert_eq!(
        c.findings,
        vec![
            Finding::warn("1 deliveries pending for more than 5m"),
            Finding::warn("2 message(s) in chat c1 in flight for 15m with no response"),
        ]
    );
}

async fn boot_section_fails_while_a_service_has_not_come_up(store: Store) {
    let now = Utc::now();
    let attempt = |outcome, mins: i64, cause: Option<&str>| BootAttempt {
        service: "host".into(),
        pid: None,
        version: None,
        started_at: now - chrono::Duration::minutes(mins),
        outcome,
        ended_at: Some(now - chrono::Duration::minutes(mins)),
        cause: cause.map(Into::into),
    };
    store
        .record_boot_attempt(&attempt(BootOutcome::Ready, 60, None))
        .await
        .unwrap();
    store
        .record_boot_attempt(&attempt(BootOutcome::Failed, 3, Some("bad key")))
        .await
        .unwrap();
    store
        .record_boot_attempt(&attempt(BootOutcome::Failed, 2, Some("bad key")))
        .await
        .unwrap();
    let s = BootSection {
        store: store.clone(),
        services: Some(vec!["host".into(), "absent".into()]),
    };
    let c = s.collect().await.unwrap();
    assert_eq!(c.data["host"]["failed_in_a_row"], 2);
    assert!(c.data.get("absent").is_none());
    assert_eq!(
        c.findings,
        vec![Finding::fail(
            "host: 2 failed start(s) since its last ready (last: bad key)"
        )]
    );
    store
        .record_boot_attempt(&attempt(BootOutcome::Ready, 1, None))
        .await
        .unwrap();
    assert!(s.collect().await.unwrap().findings.is_empty());
}

async fn notifications_section_warns_on_dead_letters(store: Store) {
    let n = NewNotification {
        id: "n1".into(),
        dedup_key: None,
        group: None,
        severity: "warning".into(),
        text: "x".into(),
        payload: serde_json::json!({}),
    };
    store.enqueue_notification(&n, &["chat"]).await.unwrap();
    let s = NotificationsSection {
        store: store.clone(),
    };
    assert_eq!(s.collect().await.unwrap().data["pending_deliveries"], 1);
    store
        .delivery_attempt_failed("n1", "chat", "HTTP 500", None)
        .await
        .unwrap();
    let c = s.collect().await.unwrap();
    assert_eq!(c.data["dead_letters"], 1);
    assert_eq!(
        c.findings,
        vec![Finding::warn(
            "1 notification(s) could not be delivered (dead letters)"
        )]
    );
}

lookout_store::store_tests!(
    messages_section_flags_stuck_deliveries_and_interrupted_runs,
    boot_section_fails_while_a_service_has_not_come_up,
    notifications_section_warns_on_dead_letters,
);
