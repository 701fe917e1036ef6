//! The stale scan on both stores: detection only by default; recovery only when configured.

use std::sync::Mutex;
use std::time::Duration;

use lookout_crash_detect::{RecoveryAction, Requeue, StaleScanner};
use lookout_store::time::parse_rfc3339;
use lookout_store::{Direction, NewMessage, Store, Timestamp};

fn t(s: &str) -> Timestamp {
    parse_rfc3339(s).unwrap()
}

/// Records every call; fails when told to.
#[derive(Default)]
struct FakeHost {
    calls: Mutex<Vec<(String, Vec<String>)>>,
    fail: Mutex<bool>,
}

#[async_trait::async_trait]
impl Requeue for FakeHost {
    async fn requeue(&self, chat_jid: &str, ids: &[String]) -> Result<(), String> {
        self.calls
            .lock()
            .unwrap()
            .push((chat_jid.into(), ids.to_vec()));
        if *self.fail.lock().unwrap() {
            Err("queue full".into())
        } else {
            Ok(())
        }
    }
}

async fn interrupted(store: &Store) {
    let m = |chat: &str, id: &str| NewMessage {
        channel: "whatsapp".into(),
        chat_jid: chat.into(),
        message_id: id.into(),
        sender: None,
        direction: Direction::Inbound,
        timestamp: t("2026-11-24T10:00:00Z"),
    };
    store
        .record_messages(&[m("c1", "a"), m("c1", "b"), m("c2", "z")])
        .await
        .unwrap();
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    store
        .mark_batch_processing("c1", &ids(&["a", "b"]), t("2026-11-24T10:00:10Z"))
        .await
        .unwrap();
    store
        .mark_batch_processing("c2", &ids(&["z"]), t("2026-11-24T10:19:00Z"))
        .await
        .unwrap();
}

async fn detection_only_reports_and_changes_nothing(store: Store) {
    interrupted(&store).await;
    let scanner = StaleScanner::new(&store, Duration::from_secs(600));
    let now = t("2026-11-24T10:20:10Z");
    let findings = scanner.scan(now).await.unwrap();
    assert_eq!(findings.len(), 1, "only c1 is older than 10 minutes");
    let f = &findings[0];
    assert_eq!(
        (f.chat.chat_jid.as_str(), f.chat.count, f.oldest_age_secs),
        ("c1", 2, 1200)
    );
    assert_eq!(f.action, RecoveryAction::None);
    assert_eq!(
        f.message(),
        "⚠️ Interrupted run: 2 message(s) in chat c1 (#whatsapp) in flight for 20m with no response"
    );
    // Scanning changed nothing: the same finding again, and the rows still marked.
    assert_eq!(scanner.scan(now).await.unwrap(), findings);
    assert_eq!(store.message_stats().await.unwrap().in_flight, 3);
}

async fn recovery_requeues_a_bounded_number_of_times_then_gives_up(store: Store) {
    interrupted(&store).await;
    let host = FakeHost::default();
    let scanner = StaleScanner::new(&store, Duration::from_secs(600)).with_recovery(2, &host);
    let mut now = t("2026-11-24T10:20:10Z");
    let f = scanner.scan(now).await.unwrap();
    assert_eq!(f[0].action, RecoveryAction::Requeued { attempt: 1 });
    assert_eq!(
        host.calls.lock().unwrap()[0],
        ("c1".into(), vec!["a".into(), "b".into()])
    );
    // The host dispatches again (marks), and the run is interrupted again.
    let ids = vec!["a".to_string(), "b".to_string()];
    for attempt in 2..=2 {
        store.mark_batch_processing("c1", &ids, now).await.unwrap();
        now += chrono::Duration::minutes(11);
        let f = scanner.scan(now).await.unwrap();
        let c1 = f.iter().find(|f| f.chat.chat_jid == "c1").unwrap();
        assert_eq!(c1.action, RecoveryAction::Requeued { attempt });
    }
    store.mark_batch_processing("c1", &ids, now).await.unwrap();
    now += chrono::Duration::minutes(11);
    let f = scanner.scan(now).await.unwrap();
    let c1 = f.iter().find(|f| f.chat.chat_jid == "c1").unwrap();
    assert_eq!(c1.action, RecoveryAction::GaveUp { attempts: 2 });
    assert!(c1.message().ends_with("gave up after 2 requeue attempt(s)"));
    let calls_for_c1 = host
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.0 == "c1")
        .count();
    assert_eq!(calls_for_c1, 2, "no requeue after giving up");
    // Given up: no longer in flight, not found again.
    now += chrono::Duration::minutes(11);
    assert!(
        scanner
            .scan(now)
            .await
            .unwrap()
            .iter()
            .all(|f| f.chat.chat_jid != "c1")
    );
}

async fn a_failed_requeue_leaves_the_messages_marked(store: Store) {
    interrupted(&store).await;
    let host = FakeHost::default();
    *host.fail.lock().unwrap() = true;
    let scanner = StaleScanner::new(&store, Duration::from_secs(600)).with_recovery(3, &host);
    let f = scanner.scan(t("2026-11-24T10:20:10Z")).await.unwrap();
    assert_eq!(
        f[0].action,
        RecoveryAction::RequeueFailed {
            error: "queue full".into()
        }
    );
    assert_eq!(store.message_stats().await.unwrap().in_flight, 3);
}

lookout_store::store_tests!(
    detection_only_reports_and_changes_nothing,
    recovery_requeues_a_bounded_number_of_times_then_gives_up,
    a_failed_requeue_leaves_the_messages_marked,
);
