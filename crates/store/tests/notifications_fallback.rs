//! The outbox's sink health, fallback deliveries and dead letters, on SQLite and PostgreSQL.

use lookout_store::time::parse_rfc3339;
use lookout_store::{NewNotification, Store, Timestamp};

fn t(s: &str) -> Timestamp {
    parse_rfc3339(s).unwrap()
}

fn note(id: &str) -> NewNotification {
    NewNotification {
        id: id.into(),
        dedup_key: Some(format!("k:{id}")),
        group: None,
        severity: "warning".into(),
        text: format!("text {id}"),
        payload: serde_json::json!({}),
    }
}

async fn a_sinks_failing_clock_starts_at_its_first_failure_and_ends_at_a_success(store: Store) {
    assert!(store.failing_sinks().await.unwrap().is_empty());
    store
        .sink_failed("chat", t("2026-01-01T10:00:00Z"))
        .await
        .unwrap();
    store
        .sink_failed("chat", t("2026-01-01T10:05:00Z"))
        .await
        .unwrap();
    assert_eq!(
        store.failing_sinks().await.unwrap(),
        vec![("chat".to_owned(), t("2026-01-01T10:00:00Z"))],
        "a later failure does not move the start"
    );
    // A sink that was not failing does not "recover".
    assert!(
        !store
            .sink_recovered("pager", t("2026-01-01T10:06:00Z"))
            .await
            .unwrap()
    );
    assert!(
        store
            .sink_recovered("chat", t("2026-01-01T10:06:00Z"))
            .await
            .unwrap()
    );
    assert!(store.failing_sinks().await.unwrap().is_empty());
    assert!(
        !store
            .sink_recovered("chat", t("2026-01-01T10:07:00Z"))
            .await
            .unwrap()
    );
    store
        .sink_failed("chat", t("2026-01-01T11:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        store.failing_sinks().await.unwrap(),
        vec![("chat".to_owned(), t("2026-01-01T11:00:00Z"))],
        "a new spell starts at its own first failure"
    );
}

async fn fallback_deliveries_are_added_once_and_dropped_when_the_primary_delivers(store: Store) {
    store
        .enqueue_notification(&note("a"), &["chat"])
        .await
        .unwrap();
    store
        .enqueue_notification(&note("b"), &["chat", "pager"])
        .await
        .unwrap();
    let now = t("2099-01-01T00:00:00Z");
    // `b` already goes to the pager by its own route: only `a` gets a fallback delivery.
    assert_eq!(
        store
            .deliver_via_fallback("chat", "pager", now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .deliver_via_fallback("chat", "pager", now)
            .await
            .unwrap(),
        0
    );
    let due = store.due_deliveries(now, 100).await.unwrap();
    let mut rows: Vec<(String, String, Option<String>)> = due
        .iter()
        .map(|d| (d.notification.id.clone(), d.sink.clone(), d.via.clone()))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("a".into(), "chat".into(), None),
            ("a".into(), "pager".into(), Some("chat".into())),
            ("b".into(), "chat".into(), None),
            ("b".into(), "pager".into(), None),
        ]
    );
    // The primary takes `a`: its fallback copy, not made yet, is dropped.
    store.delivery_succeeded("a", "chat", now).await.unwrap();
    let left: Vec<(String, String)> = store
        .due_deliveries(now, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.notification.id, d.sink))
        .collect();
    assert!(!left.contains(&("a".into(), "pager".into())), "{left:?}");
    let a = store
        .recent_notifications(10)
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.id == "a")
        .unwrap();
    assert_eq!(a.status, "delivered");
}

async fn a_recovered_sinks_backlog_is_due_at_once(store: Store) {
    store
        .enqueue_notification(&note("a"), &["chat"])
        .await
        .unwrap();
    let later = t("2099-01-01T00:00:00Z");
    store
        .delivery_attempt_failed("a", "chat", "HTTP 500", Some(later))
        .await
        .unwrap();
    let now = chrono::Utc::now();
    assert!(store.due_deliveries(now, 10).await.unwrap().is_empty());
    store.sink_failed("chat", now).await.unwrap();
    assert!(store.sink_recovered("chat", now).await.unwrap());
    assert_eq!(store.due_deliveries(now, 10).await.unwrap().len(), 1);
}

async fn dead_letters_are_listed_and_retried(store: Store) {
    store
        .enqueue_notification(&note("a"), &["chat", "pager"])
        .await
        .unwrap();
    store
        .enqueue_notification(&note("b"), &["chat"])
        .await
        .unwrap();
    store
        .delivery_succeeded("a", "pager", chrono::Utc::now())
        .await
        .unwrap();
    store
        .delivery_attempt_failed("a", "chat", "HTTP 500: boom", Some(chrono::Utc::now()))
        .await
        .unwrap();
    store
        .delivery_attempt_failed("a", "chat", "HTTP 502", None)
        .await
        .unwrap();
    let dead = store.dead_deliveries(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let d = &dead[0];
    assert_eq!(
        (
            d.notification.id.as_str(),
            d.sink.as_str(),
            d.attempts,
            d.last_error.as_deref()
        ),
        ("a", "chat", 2, Some("HTTP 502"))
    );
    assert_eq!(d.notification.status, "dead");
    assert_eq!(d.notification.text, "text a");
    assert_eq!(store.dead_notification_count().await.unwrap(), 1);

    assert_eq!(
        store
            .retry_dead_deliveries("b", chrono::Utc::now())
            .await
            .unwrap(),
        0,
        "b is not dead"
    );
    assert_eq!(
        store
            .retry_dead_deliveries("zz", chrono::Utc::now())
            .await
            .unwrap(),
        0
    );
    let now = chrono::Utc::now();
    assert_eq!(store.retry_dead_deliveries("a", now).await.unwrap(), 1);
    assert!(store.dead_deliveries(10).await.unwrap().is_empty());
    assert_eq!(store.dead_notification_count().await.unwrap(), 0);
    let due = store.due_deliveries(now, 10).await.unwrap();
    let a = due.iter().find(|d| d.notification.id == "a").unwrap();
    assert_eq!(
        (a.sink.as_str(), a.attempts, a.notification.status.as_str()),
        ("chat", 0, "pending")
    );
}

lookout_store::store_tests!(
    a_sinks_failing_clock_starts_at_its_first_failure_and_ends_at_a_success,
    fallback_deliveries_are_added_once_and_dropped_when_the_primary_delivers,
    a_recovered_sinks_backlog_is_due_at_once,
    dead_letters_are_listed_and_retried,
);
