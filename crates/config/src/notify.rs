//! `[notify]` with its `[[notify.sinks]]`, `[selfcheck]` and `[incidents]`: how Lookout reaches
//! people, on roads the host does not own, and what it keeps of what happened.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::schema::{Severity, duration};

/// `[notify]`: where alerts go.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// How long a sink may fail before its messages go to its `fallback`.
    #[serde(deserialize_with = "duration")]
    pub fallback_after: Duration,
    /// `[[notify.sinks]]`; none means alerts go to lookoutd's log only.
    pub sinks: Vec<Sink>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            fallback_after: Duration::from_secs(2 * 60),
            sinks: Vec::new(),
        }
    }
}

/// `[[notify.sinks]]`: one destination for alerts. Which keys a sink takes depends on its `kind`
/// (the check names a key its kind does not take); secrets are only ever read from `*_env` keys.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sink {
    /// The sink's name (what `fallback` refers to); defaults to the kind.
    pub name: Option<String>,
    /// What the sink is.
    pub kind: SinkKind,
    /// The URL of a webhook, slack, callback or discord sink; an ntfy sink's topic URL.
    pub url: Option<String>,
    /// The environment variable holding the URL, when the URL is a secret.
    pub url_env: Option<String>,
    /// The file a `file` sink appends to.
    pub path: Option<PathBuf>,
    /// Only alerts of these groups (none: every group).
    pub groups: Option<Vec<String>>,
    /// The least severe alert sent.
    #[serde(default)]
    pub min_severity: Severity,
    /// The sink that takes over when this one fails for `notify.fallback_after`.
    pub fallback: Option<String>,
    /// The environment variable holding a token: a telegram sink's bot token (needed), an ntfy
    /// sink's access token (optional).
    pub token_env: Option<String>,
    /// A telegram sink's chat: where alerts are sent.
    pub chat_id: Option<String>,
    /// A telegram sink's chats whose commands (`/status`, `/ack`, `/quiet`, …) are answered; none:
    /// no commands are read at all.
    pub allowed_chats: Option<Vec<String>>,
    /// A telegram sink's Bot API base URL (`https://api.telegram.org`); tests point it at a local
    /// server.
    pub api_url: Option<String>,
    /// An email sink's server: `smtp://host:587` (STARTTLS), `smtps://host:465` (TLS), or
    /// `smtp+plain://host:25` (neither: a relay on this host, or a test server).
    pub smtp_url: Option<String>,
    /// The environment variable holding an email sink's SMTP user name.
    pub username_env: Option<String>,
    /// The environment variable holding an email sink's SMTP password.
    pub password_env: Option<String>,
    /// An email sink's sender address.
    pub from: Option<String>,
    /// An email sink's recipients.
    pub to: Option<Vec<String>>,
    /// The environment variable holding an apprise sink's URLs (space-separated:
    /// `discord://…`, `pover://…`, `json://…`).
    pub urls_env: Option<String>,
    /// The Apprise program an apprise sink runs (`apprise`, found on `PATH`).
    pub command: Option<String>,
}

impl Sink {
    /// The sink's name: `name`, or the kind when there is none.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.kind.as_str())
    }

    /// Whether this sink reads commands from chat: a telegram sink with `allowed_chats`.
    pub fn reads_commands(&self) -> bool {
        self.kind == SinkKind::Telegram
            && self.allowed_chats.as_ref().is_some_and(|c| !c.is_empty())
    }
}

/// What a sink is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// lookoutd's own log.
    #[default]
    Log,
    /// A JSON POST to a URL.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// Lines appended to a file.
    File,
    /// A POST to the host's own callback endpoint.
    Callback,
    /// A Telegram bot of its own (Bot API `sendMessage`), which also answers commands.
    Telegram,
    /// An ntfy topic (a phone's push notification).
    Ntfy,
    /// Email over SMTP.
    Email,
    /// A Discord webhook.
    Discord,
    /// The Apprise program, for the services it knows.
    Apprise,
}

impl SinkKind {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Log => "log",
            SinkKind::Webhook => "webhook",
            SinkKind::Slack => "slack",
            SinkKind::File => "file",
            SinkKind::Callback => "callback",
            SinkKind::Telegram => "telegram",
            SinkKind::Ntfy => "ntfy",
            SinkKind::Email => "email",
            SinkKind::Discord => "discord",
            SinkKind::Apprise => "apprise",
        }
    }

    pub(crate) fn needs_url(self) -> bool {
        matches!(
            self,
            SinkKind::Webhook
                | SinkKind::Slack
                | SinkKind::Callback
                | SinkKind::Ntfy
                | SinkKind::Discord
        )
    }
}

/// `[selfcheck]`: who watches the watcher. While lookoutd's store answers and its loops tick, it
/// pings a dead man's switch outside this host; when they do not, it pings `<url>/fail` (and when
/// lookoutd is gone or frozen, the pings stop and the switch fires on its own).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelfCheckConfig {
    /// The switch's URL (healthchecks.io's `https://hc-ping.com/<uuid>`, or any URL that a GET
    /// keeps quiet); none: no pings.
    pub ping_url: Option<String>,
    /// The environment variable holding the URL, when the URL is a secret.
    pub ping_url_env: Option<String>,
    /// How often it is pinged.
    #[serde(deserialize_with = "duration")]
    pub ping_interval: Duration,
    /// How long a loop may go without a tick before the self-check fails.
    #[serde(deserialize_with = "duration")]
    pub loop_stall: Duration,
}

impl Default for SelfCheckConfig {
    fn default() -> Self {
        SelfCheckConfig {
            ping_url: None,
            ping_url_env: None,
            ping_interval: Duration::from_secs(60),
            loop_stall: Duration::from_secs(5 * 60),
        }
    }
}

/// `[incidents]`: what is kept of each alert's firing-to-resolved span.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentsConfig {
    /// How long an incident is kept after it starts.
    #[serde(deserialize_with = "duration")]
    pub keep: Duration,
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        IncidentsConfig {
            keep: Duration::from_secs(90 * 24 * 3600),
        }
    }
}
