//! The interrupted-run contract over `messages.processing_started_at`, on SQLite and PostgreSQL.

use lookout_store::time::parse_rfc3339;
use lookout_store::{Backend, Direction, NewMessage, Store, Timestamp};

fn t(s: &str) -> Timestamp {
    parse_rfc3339(s).unwrap()
}

fn msg(chat: &str, id: &str, ts: &str) -> NewMessage {
    NewMessage {
        channel: "slack".into(),
        chat_jid: chat.into(),
        message_id: id.into(),
        sender: Some("ana".into()),
        direction: Direction::Inbound,
        timestamp: t(ts),
    }
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

async fn marks(store: &Store) -> Vec<(String, String, Option<i64>)> {
    let sql = "SELECT chat_jid, message_id, processing_started_at FROM messages ORDER BY chat_jid, message_id";
    match store.backend() {
        Backend::Sqlite => sqlx::query_as(sql)
            .fetch_all(store.sqlite_pool().unwrap())
            .await
            .unwrap(),
        Backend::Postgres => sqlx::query_as(sql)
            .fetch_all(store.postgres_pool().unwrap())
            .await
            .unwrap(),
    }
}

async fn seed(store: &Store) {
    store
        .record_messages(&[
            msg("c1", "m1", "2026-11-24T10:00:00Z"),
            msg("c1", "m2", "2026-11-24T10:00:05Z"),
            msg("c1", "m3", "2026-11-24T10:00:10Z"),
            msg("c2", "x1", "2026-11-24T10:00:00Z"),
        ])
        .await
        .unwrap();
}

async fn a_batch_is_marked_with_one_time(store: Store) {
    seed(&store).await;
    let at = t("2026-11-24T10:01:00Z");
    let out = store
        .mark_batch_processing("c1", &ids(&["m1", "m2", "ghost"]), at)
        .await
        .unwrap();
    assert_eq!(out.marked, 2);
    assert_eq!(out.missing, vec!["ghost".to_string()]);
    let at_us = lookout_store::time::to_micros(&at);
    assert_eq!(
        marks(&store).await,
        vec![
            ("c1".into(), "m1".into(), Some(at_us)),
            ("c1".into(), "m2".into(), Some(at_us)),
            ("c1".into(), "m3".into(), None),
            ("c2".into(), "x1".into(), None),
        ]
    );
    // Another chat's message of the same id is not touched by this chat's batch.
    let out = store
        .mark_batch_processing("c1", &ids(&["x1"]), at)
        .await
        .unwrap();
    assert_eq!((out.marked, out.missing.len()), (0, 1));
}

/// A trigger makes the update of one row of the batch fail, for real.
async fn fail_on_m3(store: &Store) {
    match store.backend() {
        Backend::Sqlite => {
            sqlx::query(
                "CREATE TRIGGER fail_m3 BEFORE UPDATE OF processing_started_at ON messages \
                 WHEN NEW.message_id = 'm3' BEGIN SELECT RAISE(ABORT, 'dispatch setup failed'); END",
            )
            .execute(store.sqlite_pool().unwrap())
            .await
            .unwrap();
        }
        Backend::Postgres => {
            let p = store.postgres_pool().unwrap();
            sqlx::query(
                "CREATE FUNCTION fail_m3() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.message_id = 'm3' THEN RAISE EXCEPTION 'dispatch setup failed'; END IF; \
                 RETURN NEW; END $$",
            )
            .execute(p)
            .await
            .unwrap();
            sqlx::query("CREATE TRIGGER fail_m3 BEFORE UPDATE ON messages FOR EACH ROW EXECUTE FUNCTION fail_m3()")
                .execute(p)
                .await
                .unwrap();
        }
    }
}

async fn a_failure_mid_batch_marks_nothing(store: Store) {
    seed(&store).await;
    fail_on_m3(&store).await;
    let err = store
        .mark_batch_processing("c1", &ids(&["m1", "m2", "m3"]), t("2026-11-24T10:01:00Z"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("dispatch setup failed"), "{err}");
    assert!(
        marks(&store).await.iter().all(|r| r.2.is_none()),
        "no row marked"
    );
}

async fn a_response_clears_only_its_chat_up_to_its_time(store: Store) {
    seed(&store).await;
    let at = t("2026-11-24T10:01:00Z");
    store
        .mark_batch_processing("c1", &ids(&["m1", "m2", "m3"]), at)
        .await
        .unwrap();
    store
        .mark_batch_processing("c2", &ids(&["x1"]), at)
        .await
        .unwrap();
    // A response written at 10:00:05 (as +02:00) answers m1 and m2, not the later m3, not chat c2.
    let cleared = store
        .clear_processing_on_response("c1", t("2026-11-24T12:00:05+02:00"))
        .await
        .unwrap();
    assert_eq!(cleared, 2);
    let m = marks(&store).await;
    assert_eq!(m[0].2, None);
    assert_eq!(m[1].2, None);
    assert!(m[2].2.is_some(), "the newer message stays in flight");
    assert!(m[3].2.is_some(), "another chat stays in flight");
    // An older response clears nothing more.
    assert_eq!(
        store
            .clear_processing_on_response("c1", t("2026-11-24T10:00:07Z"))
            .await
            .unwrap(),
        0
    );
}

async fn timestamps_compare_across_offsets_and_precisions(store: Store) {
    store
        .record_messages(&[
            msg("c1", "a", "2026-11-24T10:00:00.000001Z"),
            msg("c1", "b", "2026-11-24T05:00:00-05:00"),
        ])
        .await
        .unwrap();
    store
        .mark_batch_processing("c1", &ids(&["a", "b"]), t("2026-11-24T10:01:00Z"))
        .await
        .unwrap();
    // 12:00:00+02:00 is 10:00:00Z: it answers b (equal), not a (one microsecond later).
    assert_eq!(
        store
            .clear_processing_on_response("c1", t("2026-11-24T12:00:00+02:00"))
            .await
            .unwrap(),
        1
    );
    let m = marks(&store).await;
    assert!(m[0].2.is_some() && m[1].2.is_none(), "{m:?}");
    // Nanoseconds never round a response past the message.
    assert_eq!(
        store
            .clear_processing_on_response("c1", t("2026-11-24T10:00:00.000000999Z"))
            .await
            .unwrap(),
        0
    );
}

async fn the_stale_scan_finds_what_is_old_and_nothing_else(store: Store) {
    seed(&store).await;
    store
        .record_messages(&[msg("c3", "y1", "2026-11-24T10:00:00Z")])
        .await
        .unwrap();
    store
        .mark_batch_processing("c1", &ids(&["m1", "m2"]), t("2026-11-24T10:00:30Z"))
        .await
        .unwrap();
    store
        .mark_batch_processing("c2", &ids(&["x1"]), t("2026-11-24T10:05:00Z"))
        .await
        .unwrap();
    store
        .mark_batch_processing("c3", &ids(&["y1"]), t("2026-11-24T10:14:00Z"))
        .await
        .unwrap();
    // The next to go stale after a cutoff: the oldest mark at or after it.
    assert_eq!(
        store
            .next_in_flight_since(t("2026-11-24T10:01:00Z"))
            .await
            .unwrap(),
        Some(t("2026-11-24T10:05:00Z"))
    );
    assert_eq!(
        store
            .next_in_flight_since(t("2026-11-24T10:14:00.000001Z"))
            .await
            .unwrap(),
        None
    );
    // Cutoff 10:05:00 (10:15 with a 10-minute threshold): c1, marked 10:00:30, is older; c2, marked
    // exactly at the cutoff, is not; c3 is recent.
    let stale = store
        .stale_in_flight(t("2026-11-24T10:05:00Z"))
        .await
        .unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].chat_jid, "c1");
    assert_eq!(stale[0].channel, "slack");
    assert_eq!(stale[0].count, 2);
    assert_eq!(stale[0].oldest_started_at, t("2026-11-24T10:00:30Z"));
    let stale = store
        .stale_in_flight(t("2026-11-24T10:05:00.000001Z"))
        .await
        .unwrap();
    assert_eq!(
        stale
            .iter()
            .map(|s| s.chat_jid.as_str())
            .collect::<Vec<_>>(),
        ["c1", "c2"]
    );
    assert_eq!(
        store
            .stale_message_ids("c1", t("2026-11-24T10:05:00Z"))
            .await
            .unwrap(),
        ids(&["m1", "m2"])
    );
    // Answered chats are not stale.
    store
        .clear_processing_on_response("c1", t("2026-11-24T10:20:00Z"))
        .await
        .unwrap();
    assert!(
        store
            .stale_in_flight(t("2026-11-24T10:05:00Z"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn requeue_bookkeeping_counts_attempts(store: Store) {
    seed(&store).await;
    store
        .mark_batch_processing("c1", &ids(&["m1"]), t("2026-11-24T10:00:30Z"))
        .await
        .unwrap();
    assert_eq!(store.note_requeued("c1", &ids(&["m1"])).await.unwrap(), 1);
    store
        .mark_batch_processing("c1", &ids(&["m1"]), t("2026-11-24T10:10:30Z"))
        .await
        .unwrap();
    let stale = store
        .stale_in_flight(t("2026-11-24T11:00:00Z"))
        .await
        .unwrap();
    assert_eq!(stale[0].max_attempts, 1);
    assert_eq!(
        store.abandon_in_flight("c1", &ids(&["m1"])).await.unwrap(),
        1
    );
    assert!(
        store
            .stale_in_flight(t("2026-11-24T11:00:00Z"))
            .await
            .unwrap()
            .is_empty()
    );
}

lookout_store::store_tests!(
    a_batch_is_marked_with_one_time,
    a_failure_mid_batch_marks_nothing,
    a_response_clears_only_its_chat_up_to_its_time,
    timestamps_compare_across_offsets_and_precisions,
    the_stale_scan_finds_what_is_old_and_nothing_else,
    requeue_bookkeeping_counts_attempts,
);
