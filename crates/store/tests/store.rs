//! The store's suite, run on SQLite and on PostgreSQL (`sqlite::*` and `postgres::*`).

use std::time::Duration;

use chrono::{TimeZone, Utc};
use lookout_store::time::parse_rfc3339;
use lookout_store::{Backend, Direction, NewEvent, NewMessage, Store, StoreError};
use serde_json::json;

fn ev(kind: &str, n: i64) -> NewEvent {
    NewEvent::new(kind, json!({ "n": n, "text": format!("event {n}") }))
        .with_subject(format!("s{}", n % 3))
        .at(Utc.timestamp_opt(1_800_000_000 + n, 0).unwrap())
}

async fn append_one_and_read_it_back(store: Store) {
    let at = parse_rfc3339("2026-11-24T10:00:00.123456+02:00").unwrap();
    let e = NewEvent::new(
        "message_received",
        json!({"channel": "slack", "chat_jid": "c1"}),
    )
    .with_subject("c1")
    .at(at);
    let seq = store.append_event(&e).await.unwrap();
    assert!(seq > 0);
    let got = store.events_after(0, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, seq);
    assert_eq!(got[0].at, at, "microsecond precision survives");
    assert_eq!(got[0].kind, "message_received");
    assert_eq!(got[0].subject.as_deref(), Some("c1"));
    assert_eq!(
        got[0].payload,
        json!({"channel": "slack", "chat_jid": "c1"})
    );
    assert_eq!(store.latest_event_seq().await.unwrap(), seq);
}

async fn batch_append_returns_seqs_in_order_and_pages(store: Store) {
    let batch: Vec<NewEvent> = (0..250).map(|n| ev("heartbeat", n)).collect();
    let seqs = store.append_events(&batch).await.unwrap();
    assert_eq!(seqs.len(), 250);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seqs increase");
    // Each seq belongs to the event at the same position.
    let mut cursor = 0;
    let mut seen = Vec::new();
    loop {
        let page = store.events_after(cursor, 100).await.unwrap();
        if page.is_empty() {
            break;
        }
        cursor = page.last().unwrap().seq;
        seen.extend(page);
    }
    assert_eq!(seen.len(), 250);
    for (i, e) in seen.iter().enumerate() {
        assert_eq!(e.seq, seqs[i]);
        assert_eq!(e.payload["n"], json!(i));
    }
    assert!(store.append_events(&[]).await.unwrap().is_empty());
}

/// Installs a trigger that rejects events of kind `boom`, so a batch can fail half-way for real.
async fn install_boom_trigger(store: &Store) {
    match store.backend() {
        Backend::Sqlite => {
            sqlx::query(
                "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.kind = 'boom' \
                 BEGIN SELECT RAISE(ABORT, 'boom'); END",
            )
            .execute(store.sqlite_pool().unwrap())
            .await
            .unwrap();
        }
        Backend::Postgres => {
            let p = store.postgres_pool().unwrap();
            sqlx::query(
                "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.kind = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$",
            )
            .execute(p)
            .await
            .unwrap();
            sqlx::query(
                "CREATE TRIGGER boom BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION boom()",
            )
            .execute(p)
            .await
            .unwrap();
        }
    }
}

async fn a_batch_is_all_or_nothing(store: Store) {
    store.append_event(&ev("deploy", 0)).await.unwrap();
    install_boom_trigger(&store).await;
    let mut batch: Vec<NewEvent> = (1..=50).map(|n| ev("heartbeat", n)).collect();
    batch.insert(37, NewEvent::new("boom", json!({})));
    let err = store.append_events(&batch).await.unwrap_err();
    assert!(matches!(err, StoreError::Query { .. }), "{err}");
    let all = store.events_after(0, 1000).await.unwrap();
    assert_eq!(all.len(), 1, "nothing of the failed batch is stored");
    // The store is still usable after the rollback.
    store.append_events(&batch[..10]).await.unwrap();
    assert_eq!(store.events_after(0, 1000).await.unwrap().len(), 11);
}

async fn idempotency_keys_store_a_retry_once(store: Store) {
    let first = store
        .append_events(&[
            ev("run_started", 1).with_idempotency_key("host-1:run-1:start"),
            ev("run_heartbeat", 2),
        ])
        .await
        .unwrap();
    // A retry of the whole request, plus one new event and a duplicate inside the batch.
    let retry = store
        .append_events(&[
            ev("run_started", 1).with_idempotency_key("host-1:run-1:start"),
            ev("run_finished", 3).with_idempotency_key("host-1:run-1:end"),
            ev("run_finished", 3).with_idempotency_key("host-1:run-1:end"),
        ])
        .await
        .unwrap();
    assert_eq!(retry[0], first[0], "a known key answers with the first seq");
    assert_eq!(
        retry[1], retry[2],
        "a key repeated in one batch is stored once"
    );
    assert!(retry[1] > first[1]);
    let all = store.events_after(0, 100).await.unwrap();
    assert_eq!(all.len(), 3);
}

async fn events_between_selects_by_time_with_mixed_offsets(store: Store) {
    // Same instants written with different offsets and precisions.
    let times = [
        "2026-11-24T09:59:59.999999Z",
        "2026-11-24T12:00:00+02:00", // 10:00:00Z, the range start (inclusive)
        "2026-11-24T05:30:00.5-04:30", // 10:00:00.5Z
        "2026-11-24T10:59:59.999999999Z", // truncated to .999999
        "2026-11-24T11:00:00Z",      // the range end (exclusive)
    ];
    let batch: Vec<NewEvent> = times
        .iter()
        .enumerate()
        .map(|(i, t)| NewEvent::new("deploy", json!({"i": i})).at(parse_rfc3339(t).unwrap()))
        .collect();
    store.append_events(&batch).await.unwrap();
    let from = parse_rfc3339("2026-11-24T10:00:00Z").unwrap();
    let to = parse_rfc3339("2026-11-24T13:00:00+02:00").unwrap();
    let got = store.events_between(from, to, 0, 100).await.unwrap();
    let idx: Vec<i64> = got
        .iter()
        .map(|e| e.payload["i"].as_i64().unwrap())
        .collect();
    assert_eq!(idx, vec![1, 2, 3]);
    // Paging through the range with the seq cursor.
    let first = store.events_between(from, to, 0, 2).await.unwrap();
    let rest = store
        .events_between(from, to, first.last().unwrap().seq, 2)
        .await
        .unwrap();
    assert_eq!(first.len() + rest.len(), 3);
    let err = store.events_between(to, from, 0, 10).await.unwrap_err();
    assert!(err.to_string().contains("reversed"), "{err}");
}

async fn last_event_of_a_subject(store: Store) {
    assert!(
        store
            .last_event_of("container_status", "litellm")
            .await
            .unwrap()
            .is_none()
    );
    store
        .append_events(&[
            NewEvent::new("container_status", json!({"status": "running"})).with_subject("litellm"),
            NewEvent::new("container_status", json!({"status": "running"})).with_subject("db"),
            NewEvent::new("container_status", json!({"status": "exited"})).with_subject("litellm"),
        ])
        .await
        .unwrap();
    let last = store
        .last_event_of("container_status", "litellm")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.payload["status"], "exited");
}

async fn router_state_is_a_key_value_table(store: Store) {
    assert_eq!(
        store.router_state_get("last_deploy_sha").await.unwrap(),
        None
    );
    store
        .router_state_set("last_deploy_sha", "abc")
        .await
        .unwrap();
    store
        .router_state_set("last_deploy_sha", "def")
        .await
        .unwrap();
    store.router_state_set("cursor", "42").await.unwrap();
    assert_eq!(
        store
            .router_state_get("last_deploy_sha")
            .await
            .unwrap()
            .as_deref(),
        Some("def")
    );
    assert_eq!(
        store.router_state_all().await.unwrap(),
        vec![
            ("cursor".into(), "42".into()),
            ("last_deploy_sha".into(), "def".into())
        ]
    );
    assert!(store.router_state_delete("cursor").await.unwrap());
    assert!(!store.router_state_delete("cursor").await.unwrap());
}

async fn status_counts_and_latest_timestamps(store: Store) {
    let empty = store.event_stats().await.unwrap();
    assert_eq!((empty.total, empty.last_seq, empty.last_at), (0, 0, None));
    let seqs = store
        .append_events(&[ev("deploy", 1), ev("deploy", 2)])
        .await
        .unwrap();
    let stats = store.event_stats().await.unwrap();
    assert_eq!(stats.total, 2);
    assert_eq!(stats.last_seq, seqs[1]);
    assert_eq!(
        stats.last_at,
        Some(Utc.timestamp_opt(1_800_000_002, 0).unwrap())
    );

    let t = |s| parse_rfc3339(s).unwrap();
    let msg = |id: &str, dir, ts| NewMessage {
        channel: "slack".into(),
        chat_jid: "c1".into(),
        message_id: id.into(),
        sender: None,
        direction: dir,
        timestamp: t(ts),
    };
    let new = store
        .record_messages(&[
            msg("m1", Direction::Inbound, "2026-11-24T10:00:00Z"),
            msg("m2", Direction::Inbound, "2026-11-24T10:05:00Z"),
            msg("r1", Direction::Outbound, "2026-11-24T10:01:00Z"),
        ])
        .await
        .unwrap();
    assert_eq!(new, 3);
    // Recording the same message again is not a new message.
    assert_eq!(
        store
            .record_messages(&[msg("m1", Direction::Inbound, "2026-11-24T10:00:00Z")])
            .await
            .unwrap(),
        0
    );
    let m = store.message_stats().await.unwrap();
    assert_eq!((m.total_inbound, m.total_outbound, m.in_flight), (2, 1, 0));
    assert_eq!(m.last_received_at, Some(t("2026-11-24T10:05:00Z")));
    assert_eq!(m.last_sent_at, Some(t("2026-11-24T10:01:00Z")));

    let now = t("2026-11-24T11:00:00Z");
    store
        .delivery_queued("d1", Some("slack"), "c1", t("2026-11-24T10:00:00Z"))
        .await
        .unwrap();
    store
        .delivery_queued("d2", Some("slack"), "c1", t("2026-11-24T10:58:00Z"))
        .await
        .unwrap();
    store
        .delivery_queued("d3", None, "c2", t("2026-11-24T10:30:00Z"))
        .await
        .unwrap();
    store
        .delivery_queued("d1", Some("slack"), "c1", now)
        .await
        .unwrap(); // repeat: no change
    assert!(store.delivery_sent("d3", now).await.unwrap());
    assert!(!store.delivery_sent("nope", now).await.unwrap());
    let d = store
        .delivery_stats(now, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!((d.pending, d.pending_too_long, d.failed), (2, 1, 0));
    assert_eq!(d.oldest_pending_since, Some(t("2026-11-24T10:00:00Z")));
    assert!(store.delivery_failed("d2", "channel closed").await.unwrap());
    let d = store
        .delivery_stats(now, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!((d.pending, d.failed), (1, 1));
}

async fn concurrent_appenders_get_distinct_seqs_and_lose_nothing(store: Store) {
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for b in 0..10 {
                let batch: Vec<NewEvent> = (0..20)
                    .map(|i| ev("heartbeat", w * 1000 + b * 20 + i))
                    .collect();
                mine.extend(store.append_events(&batch).await.unwrap());
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 8 * 10 * 20);
    let stored = store.events_after(0, 10_000).await.unwrap();
    assert_eq!(stored.iter().map(|e| e.seq).collect::<Vec<_>>(), all);
}

async fn notifications_are_stored_before_delivery(store: Store) {
    let n = lookout_store::NewNotification {
        id: "n-1".into(),
        dedup_key: Some("crash_loop:host".into()),
        group: Some("admin".into()),
        severity: "critical".into(),
        text: "🔁 host is crash-looping".into(),
        payload: json!({"failed_starts": 3}),
    };
    store
        .enqueue_notification(&n, &["chat", "log"])
        .await
        .unwrap();
    let got = store.recent_notifications(10).await.unwrap();
    assert_eq!((got[0].status.as_str(), got[0].attempts), ("pending", 0));
    let now = Utc::now();
    let due = store.due_deliveries(now, 10).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|d| d.sink.as_str())
            .collect::<Vec<_>>()
            .len(),
        2
    );
    assert_eq!(due[0].payload, json!({"failed_starts": 3}));
    assert_eq!(due[0].notification.text, "🔁 host is crash-looping");
    // One sink takes it; the other fails and is retried later, then gives up.
    store.delivery_succeeded("n-1", "log", now).await.unwrap();
    let later = now + chrono::Duration::seconds(30);
    store
        .delivery_attempt_failed("n-1", "chat", "HTTP 500", Some(later))
        .await
        .unwrap();
    assert!(
        store.due_deliveries(now, 10).await.unwrap().is_empty(),
        "not due before its retry time"
    );
    let due = store.due_deliveries(later, 10).await.unwrap();
    assert_eq!(
        (due.len(), due[0].sink.as_str(), due[0].attempts),
        (1, "chat", 1)
    );
    assert_eq!(store.pending_delivery_count().await.unwrap(), 1);
    store
        .delivery_attempt_failed("n-1", "chat", "HTTP 500", None)
        .await
        .unwrap();
    let got = store.recent_notifications(10).await.unwrap();
    assert_eq!((got[0].status.as_str(), got[0].attempts), ("dead", 3));
    assert_eq!(store.pending_delivery_count().await.unwrap(), 0);
    // The same id twice is refused: ids are how sinks drop duplicates.
    assert!(store.enqueue_notification(&n, &["log"]).await.is_err());
    // No sink: nothing to deliver.
    let m = lookout_store::NewNotification {
        id: "n-2".into(),
        ..n
    };
    store.enqueue_notification(&m, &[]).await.unwrap();
    assert_eq!(
        store.recent_notifications(1).await.unwrap()[0].status,
        "delivered"
    );
}

async fn latest_by_subject_gives_each_subjects_last_event(store: Store) {
    let ev = |kind: &str, ch: &str| NewEvent::new(kind, json!({"channel": ch})).with_subject(ch);
    store
        .append_events(&[
            ev("channel_connected", "slack"),
            ev("channel_connected", "matrix"),
            ev("channel_disconnected", "slack"),
            ev("deploy", "slack"), // another kind: not considered
        ])
        .await
        .unwrap();
    let latest = store
        .latest_by_subject(&["channel_connected", "channel_disconnected"])
        .await
        .unwrap();
    let got: Vec<(String, String)> = latest
        .into_iter()
        .map(|e| (e.subject.unwrap(), e.kind))
        .collect();
    assert_eq!(
        got,
        vec![
            ("matrix".into(), "channel_connected".into()),
            ("slack".into(), "channel_disconnected".into())
        ]
    );
}

async fn events_after_of_follows_only_some_kinds(store: Store) {
    let ev = |kind: &str, n: u32| NewEvent::new(kind, json!({"n": n}));
    let seqs = store
        .append_events(&[
            ev("heartbeat", 1),
            ev("deploy", 2),
            ev("run_started", 3),
            ev("heartbeat", 4),
            ev("deploy", 5),
        ])
        .await
        .unwrap();
    let kinds_and_n = |events: Vec<lookout_store::StoredEvent>| -> Vec<(String, u64)> {
        events
            .into_iter()
            .map(|e| (e.kind, e.payload["n"].as_u64().unwrap()))
            .collect()
    };
    let all = store
        .events_after_of(0, &["deploy", "heartbeat"], 10)
        .await
        .unwrap();
    assert_eq!(
        kinds_and_n(all),
        vec![
            ("heartbeat".into(), 1),
            ("deploy".into(), 2),
            ("heartbeat".into(), 4),
            ("deploy".into(), 5)
        ]
    );
    // After a cursor, a page at a time, in seq order.
    let page = store
        .events_after_of(seqs[1], &["deploy"], 1)
        .await
        .unwrap();
    assert_eq!(kinds_and_n(page), vec![("deploy".into(), 5)]);
    assert!(
        store
            .events_after_of(seqs[4], &["deploy", "heartbeat"], 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_window_derived_from_an_event_is_stored_once(store: Store) {
    let now = chrono::Utc::now();
    let w = lookout_store::QuietWindow {
        id: "deploy-7".into(),
        starts_at: now,
        ends_at: now + chrono::Duration::minutes(10),
        matcher: Some("crash_loop".into()),
        reason: "deploy abc1234".into(),
    };
    assert!(store.quiet_add_once(&w).await.unwrap());
    assert!(
        !store.quiet_add_once(&w).await.unwrap(),
        "a second time: no row"
    );
    let open = store.quiet_windows(now).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].reason, "deploy abc1234");
    // The plain add still refuses a duplicate id (an operator's window is never replaced).
    assert!(store.quiet_add(&w).await.is_err());
}

async fn the_history_keeps_the_worst_level_of_each_bucket(store: Store) {
    let t = |m: i64| Utc.timestamp_opt(1_800_000_000 + m * 60, 0).unwrap();
    let b0 = lookout_store::history_bucket(t(0));
    assert_eq!(b0.timestamp() % 900, 0, "buckets start on the quarter hour");
    // Within one bucket: a fail seen once stays however many passes follow.
    let first_bucket_end = b0 + chrono::Duration::minutes(15);
    let inside = |m: i64| {
        (b0 + chrono::Duration::minutes(m)).min(first_bucket_end - chrono::Duration::seconds(1))
    };
    store
        .history_record(inside(1), &[("repos", 0), ("watchdog", 0)])
        .await
        .unwrap();
    store
        .history_record(inside(2), &[("repos", 2), ("watchdog", 1)])
        .await
        .unwrap();
    store
        .history_record(inside(3), &[("repos", 0), ("watchdog", 0)])
        .await
        .unwrap();
    store
        .history_record(b0 + chrono::Duration::minutes(16), &[("repos", 0)])
        .await
        .unwrap();
    let got = store.history_since(b0).await.unwrap();
    let seen: Vec<(i64, &str, i16)> = got
        .iter()
        .map(|s| ((s.bucket - b0).num_minutes(), s.section.as_str(), s.level))
        .collect();
    assert_eq!(
        seen,
        vec![(0, "repos", 2), (0, "watchdog", 1), (15, "repos", 0)]
    );
    // Since a later instant: only the later bucket.
    assert_eq!(
        store
            .history_since(b0 + chrono::Duration::minutes(15))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .history_prune(b0 + chrono::Duration::minutes(15))
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.history_since(b0).await.unwrap().len(), 1);
}

async fn ping_answers(store: Store) {
    store.ping().await.unwrap();
}

lookout_store::store_tests!(
    append_one_and_read_it_back,
    batch_append_returns_seqs_in_order_and_pages,
    a_batch_is_all_or_nothing,
    idempotency_keys_store_a_retry_once,
    events_between_selects_by_time_with_mixed_offsets,
    last_event_of_a_subject,
    router_state_is_a_key_value_table,
    status_counts_and_latest_timestamps,
    concurrent_appenders_get_distinct_seqs_and_lose_nothing,
    notifications_are_stored_before_delivery,
    latest_by_subject_gives_each_subjects_last_event,
    events_after_of_follows_only_some_kinds,
    a_window_derived_from_an_event_is_stored_once,
    the_history_keeps_the_worst_level_of_each_bucket,
    ping_answers,
);
