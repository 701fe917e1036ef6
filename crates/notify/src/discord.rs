//! Discord: notifications posted to a channel through an incoming webhook.
//!
//! One POST per message of at most 2000 characters (a longer text goes as several, split at line
//! breaks), posted as "Lookout" with mentions disabled, so an alert text quoting `@everyone` or a
//! user pings nobody.

use std::fmt;
use std::time::Duration;

use serde_json::json;

use crate::ntfy::retry_after_header;
use crate::telegram::describe;
use crate::{DeliveryError, Notifier, Outgoing};

/// Discord's longest message content. Counted in UTF-16 code units (an emoji is two), which is
/// never less than the characters Discord counts: a safe bound.
const MAX_CONTENT: usize = 2000;

/// Posts notifications to a Discord channel's webhook.
#[derive(Clone)]
pub struct DiscordSink {
    name: String,
    /// Holds the webhook's token: never logged.
    webhook_url: String,
    client: reqwest::Client,
}

impl fmt::Debug for DiscordSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscordSink")
            .field("name", &self.name)
            .field("webhook_url", &"<redacted>")
            .finish()
    }
}

impl DiscordSink {
    /// A sink called `name` posting to `webhook_url`
    /// (`https://discord.com/api/webhooks/{id}/{token}`); each POST times out after `timeout`.
    pub fn new(name: impl Into<String>, webhook_url: impl Into<String>, timeout: Duration) -> Self {
        DiscordSink {
            name: name.into(),
            webhook_url: webhook_url.into(),
            client: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("an HTTP client with a timeout"),
        }
    }

    async fn post(&self, content: &str) -> Result<(), DeliveryError> {
        let body = json!({
            "content": content,
            "username": "Lookout",
            "allowed_mentions": {"parse": []},
        });
        let resp = self
            .client
            .post(&self.webhook_url)
            .json(&body)
            .send()
            .await
            .map_err(|e| DeliveryError::new(format!("Discord POST failed: {}", describe(e))))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let header_wait = retry_after_header(resp.headers());
        let text = resp.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            // The body's `retry_after` (seconds, fractional) is the precise one.
            let body_wait = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("retry_after")?.as_f64())
                .and_then(|s| Duration::try_from_secs_f64(s).ok());
            let e = DeliveryError::new(format!("Discord: HTTP {status}: rate limited"));
            return Err(match body_wait.or(header_wait) {
                Some(wait) => e.retry_after(wait),
                None => e,
            });
        }
        let text: String = text.trim().chars().take(200).collect();
        Err(DeliveryError::new(format!(
            "Discord: HTTP {status}: {text}"
        )))
    }
}

fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Splits `text` into parts of at most `max` UTF-16 units: at the last line break that fits (the
/// break itself dropped), else at the last character that fits. Blank parts are dropped (Discord
/// refuses an empty message).
fn split_text(text: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while units(rest) > max {
        // The byte offset just past the last character that fits.
        let mut len = 0;
        let mut fit = 0;
        for (i, c) in rest.char_indices() {
            len += c.len_utf16();
            if len > max {
                break;
            }
            fit = i + c.len_utf8();
        }
        let (part, next) = match rest[..fit].rfind('\n') {
            Some(nl) if nl > 0 => (&rest[..nl], &rest[nl + 1..]),
            // No line break, or only at the start: a hard split (a character always fits).
            _ => {
                let fit = fit.max(rest.chars().next().map_or(0, char::len_utf8));
                (&rest[..fit], &rest[fit..])
            }
        };
        parts.push(part);
        rest = next;
    }
    parts.push(rest);
    parts.retain(|p| !p.trim().is_empty());
    parts
}

#[async_trait::async_trait]
impl Notifier for DiscordSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, n: &Outgoing) -> Result<(), DeliveryError> {
        let parts = split_text(&n.text, MAX_CONTENT);
        if parts.is_empty() {
            return Err(DeliveryError::new("Discord: empty text"));
        }
        let count = parts.len();
        for (i, part) in parts.iter().enumerate() {
            // A failure after the first part sends them all again on retry (at least once).
            self.post(part).await.map_err(|mut e| {
                if count > 1 {
                    e.message.push_str(&format!(" (part {} of {count})", i + 1));
                }
                e
            })?;
        }
        tracing::debug!(sink = %self.name, id = %n.id, parts = count, "Discord message posted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_line_breaks_then_anywhere() {
        assert_eq!(split_text("short", 10), vec!["short"]);
        assert_eq!(
            split_text("aaaa\nbbbb\ncccc", 10),
            vec!["aaaa\nbbbb", "cccc"]
        );
        assert_eq!(
            split_text("aaaaaaaaaaaaa", 5),
            vec!["aaaaa", "aaaaa", "aaa"]
        );
        // 🔥 is two UTF-16 units.
        assert_eq!(split_text("🔥🔥🔥", 4), vec!["🔥🔥", "🔥"]);
        assert_eq!(split_text("\n\n\n", 1), Vec::<&str>::new());
    }
}
