//! The append-only event log on a SQLite file: open a store in a temporary directory (migrations
//! are applied by `Store::open`), append a batch of events (one of them a retry with the same
//! idempotency key, stored once), then follow the log by seq cursor, two events a page, the way the
//! reconciler and the projector read it. The store is closed and reopened to show the events are
//! on disk.
//!
//! Run it with:
//!
//! ```text
//! cargo run -p lookout-store --example event_log
//! ```

use lookout_store::{Backend, NewEvent, Store};
use serde_json::json;

#[tokio::main]
async fn main() -> lookout_store::Result<()> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("lookout.db").display());
    let store = Store::open(&url).await?;
    println!("opened {} ({})", store.display_url(), store.backend());
    assert_eq!(store.backend(), Backend::Sqlite);
    assert_eq!(store.latest_event_seq().await?, 0);

    let batch = [
        NewEvent::new("channel_connected", json!({"channel": "slack"})).with_subject("slack"),
        NewEvent::new("message_received", json!({"chat": "c1", "id": "m1"}))
            .with_subject("c1")
            .with_idempotency_key("m1"),
        NewEvent::new("run_started", json!({"run": "r1", "chat": "c1"})).with_subject("r1"),
        NewEvent::new(
            "channel_disconnected",
            json!({"channel": "slack", "reason": "timeout"}),
        )
        .with_subject("slack"),
    ];
    let appended = store.append_events_reporting(&batch).await?;
    println!(
        "appended a batch of {}: seqs {:?}",
        batch.len(),
        seqs(&appended)
    );
    assert!(appended.iter().all(|a| a.new));

    // The host retries the message after a timeout: same idempotency key, stored once.
    let retry = NewEvent::new("message_received", json!({"chat": "c1", "id": "m1"}))
        .with_subject("c1")
        .with_idempotency_key("m1");
    let again = store.append_events_reporting(&[retry]).await?;
    println!(
        "retried message m1: seq {} (new: {})",
        again[0].seq, again[0].new
    );
    assert_eq!(again[0].seq, appended[1].seq);
    assert!(!again[0].new);
    store.close().await;

    // Reopen the file and follow the log by cursor, two events a page.
    let store = Store::open(&url).await?;
    let mut cursor = 0;
    let mut kinds = Vec::new();
    loop {
        let page = store.events_after(cursor, 2).await?;
        if page.is_empty() {
            break;
        }
        for e in &page {
            println!(
                "  seq {} at {} {} subject={} {}",
                e.seq,
                e.at.format("%H:%M:%S%.3f"),
                e.kind,
                e.subject.as_deref().unwrap_or("-"),
                e.payload
            );
            kinds.push(e.kind.clone());
        }
        cursor = page.last().map(|e| e.seq).unwrap_or(cursor);
        println!("  (page read, cursor now {cursor})");
    }
    assert_eq!(
        kinds,
        [
            "channel_connected",
            "message_received",
            "run_started",
            "channel_disconnected"
        ]
    );
    assert_eq!(store.latest_event_seq().await?, cursor);

    let last = store
        .last_event_of("channel_disconnected", "slack")
        .await?
        .expect("the disconnect is in the log");
    println!(
        "last channel_disconnected of slack: seq {}, reason {}",
        last.seq, last.payload["reason"]
    );
    assert_eq!(last.payload["reason"], "timeout");
    store.close().await;
    Ok(())
}

fn seqs(appended: &[lookout_store::Appended]) -> Vec<i64> {
    appended.iter().map(|a| a.seq).collect()
}
