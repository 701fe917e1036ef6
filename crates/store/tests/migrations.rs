//! Opening a database made by an older schema: the migration adds what is new and loses nothing.

use lookout_store::testing::{postgres_test_db, sqlite_test_db};
use lookout_store::{POSTGRES_MIGRATOR, SQLITE_MIGRATOR, Store};

const OLD_ROWS: &str = "INSERT INTO messages (channel, chat_jid, message_id, sender, direction, timestamp, recorded_at) \
     VALUES ('slack', 'c1', 'm1', 'ana', 'inbound', 1, 1), ('slack', 'c1', 'm2', 'ana', 'inbound', 2, 2), \
            ('slack', 'c1', 'r1', NULL, 'outbound', 3, 3)";

#[tokio::test]
async fn sqlite_adds_processing_started_at_to_an_existing_messages_table() {
    let db = sqlite_test_db().await;
    {
        let pool = sqlx::SqlitePool::connect(&format!("{}?mode=rwc", db.url))
            .await
            .unwrap();
        SQLITE_MIGRATOR.run_to(1, &pool).await.unwrap(); // the schema before the column existed
        sqlx::query(OLD_ROWS).execute(&pool).await.unwrap();
        let cols: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info('messages')")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(!cols.contains(&"processing_started_at".to_string()));
        pool.close().await;
    }
    let store = Store::open(&db.url).await.unwrap();
    let pool = store.sqlite_pool().unwrap();
    let rows: Vec<(String, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT message_id, sender, processing_started_at FROM messages ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            ("m1".into(), Some("ana".into()), None),
            ("m2".into(), Some("ana".into()), None),
            ("r1".into(), None, None)
        ]
    );
    let m = store.message_stats().await.unwrap();
    assert_eq!((m.total_inbound, m.total_outbound, m.in_flight), (2, 1, 0));
    // Opening again applies nothing twice.
    drop(store);
    Store::open(&db.url).await.unwrap();
}

#[tokio::test]
async fn postgres_adds_processing_started_at_to_an_existing_messages_table() {
    let Some(db) = postgres_test_db().await else {
        return;
    };
    {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        POSTGRES_MIGRATOR.run_to(1, &pool).await.unwrap();
        sqlx::query(OLD_ROWS).execute(&pool).await.unwrap();
        pool.close().await;
    }
    let store = Store::open(&db.url).await.unwrap();
    let rows: Vec<(String, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT message_id, sender, processing_started_at FROM messages ORDER BY id",
    )
    .fetch_all(store.postgres_pool().unwrap())
    .await
    .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.2.is_none()));
    assert_eq!(rows[0].1.as_deref(), Some("ana"));
    let m = store.message_stats().await.unwrap();
    assert_eq!((m.total_inbound, m.total_outbound), (2, 1));
    drop(store);
    Store::open(&db.url).await.unwrap();
}

#[tokio::test]
async fn a_sqlite_store_keeps_its_events_across_reopen() {
    let db = sqlite_test_db().await;
    let store = Store::open(&db.url).await.unwrap();
    let seq = store
        .append_event(&lookout_store::NewEvent::new(
            "deploy",
            serde_json::json!({"sha": "abc"}),
        ))
        .await
        .unwrap();
    store.close().await;
    let again = Store::open(&db.url).await.unwrap();
    assert_eq!(again.latest_event_seq().await.unwrap(), seq);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(again.sqlite_pool().unwrap())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn opening_bad_urls_fails_with_a_clear_error() {
    let e = Store::open("mysql://x").await.unwrap_err().to_string();
    assert!(
        e.starts_with("invalid store URL `mysql://x`: unknown scheme `mysql`"),
        "{e}"
    );
    let e = Store::open("sqlite:///nonexistent-dir-for-lookout/x/lookout.db")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot open store `sqlite:///nonexistent-dir-for-lookout/x/lookout.db`"),
        "{e}"
    );
    // Nothing reachable there: a quick, clear failure rather than a hang.
    let e = Store::open("postgres://nobody:pw@127.0.0.1:1/db")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot open store `postgres://nobody:***@127.0.0.1:1/db`"),
        "{e}"
    );
}
