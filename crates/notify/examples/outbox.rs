//! The durable outbox: notifications are stored in a SQLite file (in a temporary directory) before
//! any delivery is tried, then delivered to their sinks. Two sinks here: a `FileSink` appending
//! JSON lines (takes everything) and a webhook-like sink written in the example that only takes
//! warnings and fails its first attempt, so the round shows a retry with backoff and the next
//! round delivers it. A repeat of the same key and text is suppressed; an info message goes to the
//! file only.
//!
//! Run it with:
//!
//! ```text
//! cargo run -p lookout-notify --example outbox
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::Utc;
use lookout_notify::sinks::FileSink;
use lookout_notify::{
    DeliveryError, Message, Notifier, Outbox, Outgoing, RetryPolicy, Route, Severity,
};
use lookout_store::Store;
use serde_json::json;

/// A sink that fails its first attempt (a webhook answering 503 once), then takes everything.
struct FlakyWebhook {
    attempts: AtomicU32,
}

#[async_trait::async_trait]
impl Notifier for FlakyWebhook {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn deliver(&self, n: &Outgoing) -> Result<(), DeliveryError> {
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        if attempt == 1 {
            println!("  webhook: attempt {attempt} for {} -> HTTP 503", n.id);
            return Err(DeliveryError::new("HTTP 503: try again"));
        }
        println!(
            "  webhook: attempt {attempt} took [{}] {} (Idempotency-Key {})",
            n.severity, n.text, n.id
        );
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("lookout.db").display());
    let store = Store::open(&url).await.unwrap();
    let file = dir.path().join("notifications.jsonl");
    let webhook = Arc::new(FlakyWebhook {
        attempts: AtomicU32::new(0),
    });
    let warnings_only = Route {
        min_severity: Severity::Warning,
        ..Route::all()
    };
    let retry = RetryPolicy {
        base: Duration::from_secs(1),
        max: Duration::from_secs(60),
        max_attempts: 5,
    };
    let outbox = Outbox::new(
        store,
        vec![
            (Arc::new(FileSink::new("file", &file)) as _, Route::all()),
            (webhook.clone() as _, warnings_only),
        ],
        retry,
    );
    println!("outbox sinks: {:?}", outbox.sink_names());

    let down = Message::new(Severity::Warning, "⚠️ slack disconnected for 3m")
        .key("channel_down:slack")
        .payload(json!({"channel": "slack", "down_secs": 180}));
    let id = outbox.send(down.clone()).await.unwrap().expect("stored");
    println!("sent warning {id} (stored for both sinks before any delivery)");
    let repeat = outbox.send(down).await.unwrap();
    println!("the same key and text again: {repeat:?} (suppressed within the dedup window)");
    assert!(repeat.is_none());
    let info = outbox
        .send(Message::new(Severity::Info, "✅ nightly-report finished in 42s").key("run:r7"))
        .await
        .unwrap();
    assert!(info.is_some());
    println!(
        "sent info {} (the webhook's route takes warnings and worse)",
        info.unwrap()
    );

    let now = Utc::now();
    let first = outbox.deliver_due(now).await.unwrap();
    println!("round 1: {first:?}");
    assert_eq!((first.delivered, first.retrying, first.dead), (2, 1, 0));

    // The retry is due a second later (the policy's base); nothing is due before that.
    let early = outbox.deliver_due(now).await.unwrap();
    assert_eq!(early.delivered + early.retrying, 0);
    let second = outbox
        .deliver_due(now + chrono::Duration::seconds(2))
        .await
        .unwrap();
    println!("round 2 (2s later): {second:?}");
    assert_eq!((second.delivered, second.retrying), (1, 0));
    assert_eq!(webhook.attempts.load(Ordering::SeqCst), 2);
    assert!(outbox.dead_letters(10).await.unwrap().is_empty());
    assert!(outbox.failing_sinks().await.unwrap().is_empty());

    let lines = std::fs::read_to_string(&file).unwrap();
    println!("{} holds:", file.file_name().unwrap().to_string_lossy());
    let mut severities = Vec::new();
    for line in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let field = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        println!(
            "  {} [{}] {}",
            field("id"),
            field("severity"),
            field("text")
        );
        severities.push(field("severity"));
    }
    assert_eq!(severities, ["warning", "info"]);
}
