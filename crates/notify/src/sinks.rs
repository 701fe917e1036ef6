//! The sinks: where a notification can go.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::{DeliveryError, Notifier, Outgoing};

/// Writes notifications to the process log (the default sink).
#[derive(Debug, Clone)]
pub struct LogSink {
    name: String,
}

impl LogSink {
    /// A log sink called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        LogSink { name: name.into() }
    }
}

#[async_trait::async_trait]
impl Notifier for LogSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, n: &Outgoing) -> Result<(), DeliveryError> {
        match n.severity {
            crate::Severity::Critical => {
                tracing::error!(id = %n.id, key = ?n.key, group = ?n.group, "{}", n.text)
            }
            crate::Severity::Warning => {
                tracing::warn!(id = %n.id, key = ?n.key, group = ?n.group, "{}", n.text)
            }
            crate::Severity::Info => {
                tracing::info!(id = %n.id, key = ?n.key, group = ?n.group, "{}", n.text)
            }
        }
        Ok(())
    }
}

/// The body shape an HTTP sink sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFormat {
    /// `{"id", "key", "group", "severity", "text", "created_at", "payload"}`, plus
    /// `"fallback_for"` (the failing primary sink's name) on a fallback delivery: a generic
    /// webhook, or a callback into the host (which shows the text in its own chat).
    Json,
    /// A Slack-compatible incoming webhook: `{"text", "blocks"}`.
    Slack,
}

/// POSTs notifications to a URL.
#[derive(Debug, Clone)]
pub struct HttpSink {
    name: String,
    url: String,
    format: HttpFormat,
    client: reqwest::Client,
}

impl HttpSink {
    /// An HTTP sink; each POST times out after `timeout`.
    pub fn new(
        name: impl Into<String>,
        url: impl Into<String>,
        format: HttpFormat,
        timeout: Duration,
    ) -> Self {
        HttpSink {
            name: name.into(),
            url: url.into(),
            format,
            client: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("an HTTP client with a timeout"),
        }
    }

    fn body(&self, n: &Outgoing) -> serde_json::Value {
        match self.format {
            HttpFormat::Json => json_body(n),
            HttpFormat::Slack => json!({
                "text": n.text,
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": n.text}},
                    {"type": "context", "elements": [{"type": "mrkdwn",
                        "text": format!("{} · {} · id {}", n.severity.as_str(), n.key.as_deref().unwrap_or("-"), n.id)}]}
                ],
            }),
        }
    }
}

#[async_trait::async_trait]
impl Notifier for HttpSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, n: &Outgoing) -> Result<(), DeliveryError> {
        let resp = self
            .client
            .post(&self.url)
            .header("Idempotency-Key", &n.id)
            .json(&self.body(n))
            .send()
            .await
            .map_err(|e| DeliveryError::new(format!("POST failed: {}", root_cause(&e))))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            let text = resp.text().await.unwrap_or_default();
            let text: String = text.chars().take(200).collect();
            Err(DeliveryError::new(format!("HTTP {status}: {text}")))
        }
    }
}

/// Appends notifications as JSON lines to a file a host can tail (the shape of [`HttpFormat::Json`]).
#[derive(Debug, Clone)]
pub struct FileSink {
    name: String,
    path: PathBuf,
}

impl FileSink {
    /// A file sink appending to `path`.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        FileSink {
            name: name.into(),
            path: path.into(),
        }
    }
}

#[async_trait::async_trait]
impl Notifier for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, n: &Outgoing) -> Result<(), DeliveryError> {
        let line = json_body(n).to_string();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            // One write per line, so concurrent readers never see half a line.
            f.write_all(format!("{line}\n").as_bytes())?;
            f.sync_data()
        })
        .await
        .map_err(|e| DeliveryError::new(format!("file sink task: {e}")))?
        .map_err(|e| DeliveryError::new(format!("{}: {e}", self.path.display())))
    }
}

/// The JSON shape of the webhook and file sinks; `fallback_for` only on a fallback delivery, so
/// other bodies are as they always were.
fn json_body(n: &Outgoing) -> serde_json::Value {
    let mut body = json!({
        "id": n.id,
        "key": n.key,
        "group": n.group,
        "severity": n.severity.as_str(),
        "text": n.text,
        "created_at": n.created_at.to_rfc3339(),
        "payload": n.payload,
    });
    if let (Some(primary), Some(obj)) = (&n.fallback_for, body.as_object_mut()) {
        obj.insert("fallback_for".into(), json!(primary));
    }
    body
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
