//! Raising an alert: one path for every alert lookoutd decides on, through the durable outbox of
//! lookout-notify to the configured sinks (the log, when none is configured).

use lookout_notify::{Message, Outbox, Severity};

/// Sends an alert; a failure to store it is logged with the alert's text, so it is never silent.
pub(crate) async fn raise(
    outbox: &Outbox,
    key: &str,
    severity: Severity,
    text: &str,
    payload: serde_json::Value,
) {
    let m = Message::new(severity, text).key(key).payload(payload);
    if let Err(e) = outbox.send(m).await {
        tracing::error!(error = %e, key, alert = %text, "cannot store an alert in the outbox");
    }
}
