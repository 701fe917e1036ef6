//! ntfy: notifications published to an ntfy topic (ntfy.sh or a self-hosted server), which
//! pushes them to phones and desktops subscribed to it.
//!
//! One POST per notification to the topic URL, the text as the body and ntfy's publish headers:
//! `Title` (the first line, when there are several), `Priority` and `Tags` (the severity, or a
//! check mark for a resolved alert), and `Authorization: Bearer` for a protected topic.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::telegram::describe;
use crate::{DeliveryError, Notifier, Outgoing, Severity};

/// The wait after a 429 that does not say how long (ntfy's rate limits refill within a minute).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Publishes notifications to an ntfy topic.
#[derive(Clone)]
pub struct NtfySink {
    name: String,
    /// On ntfy.sh the topic name is the password: never logged, like the token.
    topic_url: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl fmt::Debug for NtfySink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtfySink")
            .field("name", &self.name)
            .field("topic_url", &"<redacted>")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl NtfySink {
    /// A sink called `name` publishing to `topic_url` (`https://ntfy.sh/mytopic`), with an access
    /// token for a protected topic; each POST times out after `timeout`.
    pub fn new(
        name: impl Into<String>,
        topic_url: impl Into<String>,
        token: Option<String>,
        timeout: Duration,
    ) -> Self {
        NtfySink {
            name: name.into(),
            topic_url: topic_url.into(),
            token,
            client: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("an HTTP client with a timeout"),
        }
    }
}

/// ntfy's priority: 5 (urgent: a long vibration, through do-not-disturb on some phones), 4 (high),
/// 3 (default).
fn priority(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "5",
        Severity::Warning => "4",
        Severity::Info => "3",
    }
}

/// The tag ntfy shows as an emoji before the title.
fn tag(n: &Outgoing) -> &'static str {
    if n.payload.get("state").and_then(Value::as_str) == Some("resolved") {
        return "white_check_mark";
    }
    match n.severity {
        Severity::Critical => "rotating_light",
        Severity::Warning => "warning",
        Severity::Info => "information_source",
    }
}

/// The title and the body: the first line and the rest when there are several, else no title.
fn title_and_body(text: &str) -> (Option<&str>, &str) {
    match text.split_once('\n') {
        Some((first, rest)) if !first.trim().is_empty() && !rest.trim().is_empty() => {
            (Some(first.trim()), rest)
        }
        _ => (None, text),
    }
}

/// Whether `s` can go in a header as it is: printable ASCII (HTTP has no charset for headers).
fn header_safe(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// A `Retry-After` header's wait, in seconds (the HTTP-date form is not used by these APIs); the
/// Discord sink reads it too.
pub(crate) fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    Duration::try_from_secs_f64(v.trim().parse().ok()?).ok()
}

#[async_trait::async_trait]
impl Notifier for NtfySink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, n: &Outgoing) -> Result<(), DeliveryError> {
        let (title, body) = title_and_body(&n.text);
        let mut req = self
            .client
            .post(&self.topic_url)
            .header("Priority", priority(n.severity))
            .header("Tags", tag(n))
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(body.to_owned());
        match title {
            Some(t) if header_safe(t) => req = req.header("Title", t),
            // Not ASCII (an emoji, an umlaut): ntfy takes every header as a query parameter too,
            // and a URL-encoded one carries UTF-8 intact on every ntfy version.
            Some(t) => req = req.query(&[("title", t)]),
            None => {}
        }
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| DeliveryError::new(format!("ntfy POST failed: {}", describe(e))))?;
        let status = resp.status();
        if status.is_success() {
            tracing::debug!(sink = %self.name, id = %n.id, "ntfy message published");
            return Ok(());
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let wait = retry_after_header(resp.headers()).unwrap_or(DEFAULT_RETRY_AFTER);
            return Err(
                DeliveryError::new(format!("ntfy: HTTP {status}: rate limited")).retry_after(wait),
            );
        }
        let text = resp.text().await.unwrap_or_default();
        let text: String = text.trim().chars().take(200).collect();
        Err(DeliveryError::new(format!("ntfy: HTTP {status}: {text}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_of_several_lines_is_the_title() {
        assert_eq!(
            title_and_body("disk full\non host a\nand b"),
            (Some("disk full"), "on host a\nand b")
        );
        assert_eq!(title_and_body("one line"), (None, "one line"));
        assert_eq!(title_and_body("\nbody"), (None, "\nbody"));
        assert_eq!(title_and_body("title\r\nbody"), (Some("title"), "body"));
    }

    #[test]
    fn only_printable_ascii_goes_in_a_header() {
        assert!(header_safe("disk full: 97% on a-1"));
        assert!(!header_safe("⚠️ disk full"));
        assert!(!header_safe("a\u{7f}"));
    }
}
