//! Raising an alert: stored in the durable outbox first, then delivered by the log sink (the default
//! sink when no other is configured).

use lookout_store::{NewNotification, Store};

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    Warning,
    Critical,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Stores the alert, logs it, and marks it delivered to the log sink. A store failure is logged and
/// the alert still reaches the log.
pub(crate) async fn raise(
    store: &Store,
    dedup_key: &str,
    severity: Severity,
    text: &str,
    payload: serde_json::Value,
) {
    let id = notification_id();
    let n = NewNotification {
        id: id.clone(),
        dedup_key: Some(dedup_key.to_owned()),
        group: None,
        severity: severity.as_str().to_owned(),
        text: text.to_owned(),
        payload,
    };
    if let Err(e) = store.enqueue_notification(&n).await {
        tracing::error!(error = %e, key = dedup_key, "cannot store an alert; it goes to the log only");
    }
    match severity {
        Severity::Warning => tracing::warn!(alert = %text, key = dedup_key, id = %id, "alert"),
        Severity::Critical => tracing::error!(alert = %text, key = dedup_key, id = %id, "alert"),
    }
    if let Err(e) = store.notification_delivered(&id, chrono::Utc::now()).await {
        tracing::error!(error = %e, id = %id, "cannot mark an alert delivered");
    }
}

/// A unique, time-ordered id: microseconds, pid, and a counter.
fn notification_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "n-{}-{}-{}",
        chrono::Utc::now().timestamp_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
