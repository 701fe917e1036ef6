//! Telegram: a Bot API client ([`TelegramBot`]: long-polled updates, messages with inline
//! buttons, callback answers) and [`TelegramSink`], which sends notifications to one chat.
//!
//! The bot token is a credential and part of every request URL, so no error or log line shows a
//! request URL (reqwest's errors are stripped of theirs) and [`TelegramBot`]'s `Debug` hides it.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{DeliveryError, Notifier, Outgoing};

/// Telegram's longest message text. Counted in UTF-16 code units, as Telegram counts (an emoji is
/// two), over the HTML source (its tags and entities only shrink when parsed): a safe bound.
const MAX_TEXT: usize = 4096;
/// Telegram's longest `callback_data`, in bytes.
const MAX_CALLBACK_DATA: usize = 64;

/// Escapes text for Telegram's HTML parse mode: `&`, `<`, `>` and `"` (the only characters it
/// requires escaped, `"` for attribute values).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// An inline keyboard button under a message; pressing it sends the bot a callback update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    /// The label.
    pub text: String,
    /// What the callback update carries back (at most 64 bytes).
    pub callback_data: String,
}

/// One update from [`TelegramBot::get_updates`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// Its id: poll again with `offset` = the last id + 1 to confirm it.
    pub update_id: i64,
    /// What happened.
    pub kind: UpdateKind,
}

/// What an [`Update`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateKind {
    /// A new text message (a command, a reply).
    Message {
        /// The chat it was written in, as a decimal string.
        chat_id: String,
        /// Who wrote it.
        from: Sender,
        /// The text.
        text: String,
    },
    /// An inline button was pressed; answer it with [`TelegramBot::answer_callback_query`].
    Callback {
        /// The callback query's id.
        id: String,
        /// The chat of the message the button is under, as a decimal string (`None` when
        /// Telegram does not say).
        chat_id: Option<String>,
        /// Who pressed it.
        from: Sender,
        /// The button's `callback_data`.
        data: String,
    },
    /// Anything else (a message without text, an edited message, …): only to be confirmed.
    Other,
}

/// Who sent a message or pressed a button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// The Telegram user id.
    pub id: i64,
    /// The @username, without the @, when the user has one.
    pub username: Option<String>,
    /// First and last name.
    pub name: String,
}

/// A failed Bot API call. The messages never contain the token or a request URL.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    /// No answer: connection refused, a timeout, a TLS failure.
    #[error("Telegram {method}: {message}")]
    Http {
        /// The Bot API method.
        method: &'static str,
        /// What went wrong.
        message: String,
    },
    /// Telegram answered `"ok": false`.
    #[error("Telegram {method}: HTTP {status}: {description}")]
    Api {
        /// The Bot API method.
        method: &'static str,
        /// The HTTP status.
        status: u16,
        /// Telegram's `description`.
        description: String,
        /// Telegram's `parameters.retry_after` (a 429): no call before it.
        retry_after: Option<Duration>,
    },
    /// The answer was not the Bot API's JSON.
    #[error("Telegram {method}: HTTP {status}, not the answer expected: {source}")]
    Json {
        /// The Bot API method.
        method: &'static str,
        /// The HTTP status.
        status: u16,
        /// Why it did not decode.
        #[source]
        source: serde_json::Error,
    },
}

impl TelegramError {
    /// How long Telegram asked to wait before the next call (a 429), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TelegramError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl From<TelegramError> for DeliveryError {
    fn from(e: TelegramError) -> Self {
        let wait = e.retry_after();
        let d = DeliveryError::new(e.to_string());
        match wait {
            Some(w) => d.retry_after(w),
            None => d,
        }
    }
}

/// A Telegram Bot API client. Cheap to clone (the HTTP client is shared).
#[derive(Clone)]
pub struct TelegramBot {
    api_url: String,
    /// `{api_url}/bot{token}`: a secret, never logged.
    base: String,
    client: reqwest::Client,
    timeout: Duration,
}

impl fmt::Debug for TelegramBot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramBot")
            .field("api_url", &self.api_url)
            .field("token", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The Bot API's answer envelope.
#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    result: Value,
    description: Option<String>,
    #[serde(default)]
    parameters: Parameters,
}

#[derive(Default, Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

#[derive(Deserialize)]
struct RawUpdate {
    update_id: i64,
    message: Option<RawMessage>,
    callback_query: Option<RawCallback>,
}

#[derive(Deserialize)]
struct RawMessage {
    chat: RawChat,
    from: Option<RawUser>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct RawChat {
    id: i64,
}

#[derive(Deserialize)]
struct RawUser {
    id: i64,
    username: Option<String>,
    first_name: String,
    last_name: Option<String>,
}

#[derive(Deserialize)]
struct RawCallback {
    id: String,
    from: RawUser,
    /// A message or an inaccessible one: both have the chat.
    message: Option<RawMessage>,
    data: Option<String>,
}

impl From<RawUser> for Sender {
    fn from(u: RawUser) -> Self {
        let name = match u.last_name {
            Some(last) if !last.is_empty() => format!("{} {last}", u.first_name),
            _ => u.first_name,
        };
        Sender {
            id: u.id,
            username: u.username,
            name,
        }
    }
}

/// Decodes one update on its own, so one Telegram shape this does not know can't block the
/// others: it becomes [`UpdateKind::Other`] and is still confirmed. `None` without an id.
fn decode_update(v: Value) -> Option<Update> {
    let update_id = v.get("update_id")?.as_i64()?;
    let Ok(raw) = RawUpdate::deserialize(&v)
        .inspect_err(|e| tracing::debug!(update_id, error = %e, "Telegram update not understood"))
    else {
        return Some(Update {
            update_id,
            kind: UpdateKind::Other,
        });
    };
    let kind = match (raw.message, raw.callback_query) {
        (
            Some(RawMessage {
                chat,
                from: Some(from),
                text: Some(text),
            }),
            _,
        ) => UpdateKind::Message {
            chat_id: chat.id.to_string(),
            from: from.into(),
            text,
        },
        (
            _,
            Some(RawCallback {
                id,
                from,
                message,
                data: Some(data),
            }),
        ) => UpdateKind::Callback {
            id,
            chat_id: message.map(|m| m.chat.id.to_string()),
            from: from.into(),
            data,
        },
        _ => UpdateKind::Other,
    };
    Some(Update {
        update_id: raw.update_id,
        kind,
    })
}

impl TelegramBot {
    /// A client for the bot with `token` at `api_url` (`https://api.telegram.org`, or a local Bot
    /// API server); each call times out after `timeout` (a long poll after its own wait plus that).
    pub fn new(api_url: &str, token: String, timeout: Duration) -> Self {
        let api_url = api_url.trim_end_matches('/').to_owned();
        TelegramBot {
            base: format!("{api_url}/bot{token}"),
            api_url,
            client: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("an HTTP client with a timeout"),
            timeout,
        }
    }

    /// Calls `method` with a JSON body and decodes its `result`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        body: &Value,
        timeout: Option<Duration>,
    ) -> Result<T, TelegramError> {
        let mut req = self
            .client
            .post(format!("{}/{method}", self.base))
            .json(body);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        let http = |e: reqwest::Error| TelegramError::Http {
            method,
            message: describe(e),
        };
        let resp = req.send().await.map_err(http)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(http)?;
        let json = |source| TelegramError::Json {
            method,
            status,
            source,
        };
        let answer: Answer = serde_json::from_slice(&bytes).map_err(json)?;
        if !answer.ok {
            let mut description = answer
                .description
                .unwrap_or_else(|| "no description".into());
            if let Some(to) = answer.parameters.migrate_to_chat_id {
                // A group upgraded to a supergroup: the configured chat id must change.
                description.push_str(&format!(" (the chat is now {to})"));
            }
            return Err(TelegramError::Api {
                method,
                status,
                description,
                retry_after: answer.parameters.retry_after.map(Duration::from_secs),
            });
        }
        T::deserialize(answer.result).map_err(json)
    }

    /// Long-polls for updates (messages and button presses only), waiting up to `timeout_secs`
    /// for one. Pass `offset` = the last `update_id` seen + 1: that confirms every update before
    /// it, which Telegram then never returns again.
    pub async fn get_updates(
        &self,
        offset: Option<i64>,
        timeout_secs: u64,
    ) -> Result<Vec<Update>, TelegramError> {
        let mut body = json!({
            "timeout": timeout_secs,
            "allowed_updates": ["message", "callback_query"],
        });
        if let Some(o) = offset {
            body["offset"] = json!(o);
        }
        // Telegram holds the request up to `timeout_secs`: the HTTP timeout must outlast that.
        let wait = self.timeout + Duration::from_secs(timeout_secs);
        let raw: Vec<Value> = self.call("getUpdates", &body, Some(wait)).await?;
        Ok(raw.into_iter().filter_map(decode_update).collect())
    }

    /// Sends `html` (Telegram HTML, already escaped: see [`escape_html`]) to `chat_id`, with
    /// `buttons` in one row under it. A text longer than Telegram's 4096 characters goes as
    /// several messages, split at line breaks where possible (never inside a tag or an entity;
    /// tags open at a split are closed and reopened); the buttons go under the last. A 429's wait
    /// is the error's `retry_after`. A failure after the first part sends every part again on
    /// retry (delivery is at least once).
    pub async fn send_message(
        &self,
        chat_id: &str,
        html: &str,
        buttons: &[Button],
    ) -> Result<(), DeliveryError> {
        let parts = split_html(html, MAX_TEXT);
        if parts.is_empty() {
            return Err(DeliveryError::new("Telegram sendMessage: empty text"));
        }
        let count = parts.len();
        for (i, part) in parts.iter().enumerate() {
            let mut body = json!({
                "chat_id": chat_id,
                "text": part,
                "parse_mode": "HTML",
                "disable_web_page_preview": true,
            });
            if i + 1 == count && !buttons.is_empty() {
                let row: Vec<Value> = buttons
                    .iter()
                    .map(|b| json!({"text": b.text, "callback_data": b.callback_data}))
                    .collect();
                body["reply_markup"] = json!({ "inline_keyboard": [row] });
            }
            self.call::<serde::de::IgnoredAny>("sendMessage", &body, None)
                .await
                .map_err(|e| {
                    let mut d = DeliveryError::from(e);
                    if count > 1 {
                        d.message.push_str(&format!(" (part {} of {count})", i + 1));
                    }
                    d
                })?;
        }
        tracing::debug!(chat_id = %chat_id, parts = count, "Telegram message sent");
        Ok(())
    }

    /// Answers a button press (Telegram shows `text` briefly; empty for nothing) and stops the
    /// client's progress indicator.
    pub async fn answer_callback_query(
        &self,
        callback_query_id: &str,
        text: &str,
    ) -> Result<(), TelegramError> {
        let mut body = json!({ "callback_query_id": callback_query_id });
        if !text.is_empty() {
            body["text"] = json!(text);
        }
        self.call::<serde::de::IgnoredAny>("answerCallbackQuery", &body, None)
            .await
            .map(|_| ())
    }
}

/// A reqwest error without its URL (it holds the token; the ntfy and Discord sinks' URLs are
/// secrets too, and they use this as well), with its root cause.
pub(crate) fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let top = e.to_string();
    let mut cur: &dyn std::error::Error = &e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let root = cur.to_string();
    if root == top {
        top
    } else {
        format!("{top}: {root}")
    }
}

/// One indivisible piece of HTML: a tag, an entity or a character.
#[derive(Clone, Copy)]
struct Piece<'a> {
    raw: &'a str,
    kind: PieceKind<'a>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PieceKind<'a> {
    Open(&'a str),
    Close(&'a str),
    Newline,
    Text,
}

fn tag_name(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(s.len());
    &s[..end]
}

fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

fn pieces(html: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        let len = match c {
            // An unterminated `<` is a lone character (Telegram will refuse it anyway).
            '<' => rest.find('>').map_or(1, |end| end + 1),
            '&' => rest
                .char_indices()
                .skip(1)
                .take(32)
                .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '#'))
                .filter(|&(_, c)| c == ';')
                .map_or(1, |(i, _)| i + 1),
            c => c.len_utf8(),
        };
        let (raw, tail) = rest.split_at(len);
        rest = tail;
        let kind = if raw == "\n" {
            PieceKind::Newline
        } else if let Some(inner) = raw.strip_prefix("</") {
            PieceKind::Close(tag_name(inner))
        } else if raw.len() > 1 && raw.starts_with('<') && !raw.ends_with("/>") {
            PieceKind::Open(tag_name(&raw[1..]))
        } else {
            PieceKind::Text
        };
        out.push(Piece { raw, kind });
    }
    out
}

/// The tags open after `p`, given those open before.
fn apply<'a>(open: &mut Vec<(&'a str, &'a str)>, p: &Piece<'a>) {
    match p.kind {
        PieceKind::Open(name) => open.push((name, p.raw)),
        PieceKind::Close(name) => {
            if let Some(at) = open.iter().rposition(|(n, _)| *n == name) {
                open.truncate(at);
            }
        }
        PieceKind::Newline | PieceKind::Text => {}
    }
}

fn closers_len(open: &[(&str, &str)]) -> usize {
    open.iter().map(|(name, _)| name.len() + 3).sum()
}

/// Splits Telegram HTML into texts of at most `max` UTF-16 units each: at the last line break
/// that fits (the break itself dropped), else at the last piece that fits; the tags open at a
/// split are closed at its end and reopened at the next part's start, so each part parses alone.
/// Parts with no visible text are dropped.
fn split_html(html: &str, max: usize) -> Vec<String> {
    if units(html) <= max {
        return if html.trim().is_empty() {
            Vec::new()
        } else {
            vec![html.to_owned()]
        };
    }
    let pieces = pieces(html);
    let mut parts = Vec::new();
    let mut open: Vec<(&str, &str)> = Vec::new();
    let mut start = 0;
    while start < pieces.len() {
        // Find where this part ends: grow it while it fits, closers included.
        let mut stack = open.clone();
        let mut len: usize = open.iter().map(|(_, raw)| units(raw)).sum();
        let (mut fits, mut newline) = (None, None);
        let mut j = start;
        while j < pieces.len() {
            if pieces[j].kind == PieceKind::Newline && j > start {
                newline = Some(j);
            }
            len += units(pieces[j].raw);
            apply(&mut stack, &pieces[j]);
            if len + closers_len(&stack) > max {
                break;
            }
            j += 1;
            // A part never ends just after an opening tag (it would show nothing of it).
            if !matches!(pieces[j - 1].kind, PieceKind::Open(_)) {
                fits = Some(j);
            }
        }
        let (end, next) = if j == pieces.len() {
            (j, j)
        } else if let Some(n) = newline {
            (n, n + 1)
        } else if let Some(f) = fits {
            (f, f)
        } else {
            // A tag or a character too long for the limit on its own (with the tags around it):
            // nothing better than sending it whole, with the tags opening it.
            let end = pieces[start..]
                .iter()
                .position(|p| !matches!(p.kind, PieceKind::Open(_)))
                .map_or(pieces.len(), |i| start + i + 1);
            (end, end)
        };
        let mut part: String = open.iter().map(|(_, raw)| *raw).collect();
        let mut visible = false;
        for p in &pieces[start..end] {
            part.push_str(p.raw);
            visible |= p.kind == PieceKind::Text && !p.raw.trim().is_empty();
            apply(&mut open, p);
        }
        for (name, _) in open.iter().rev() {
            part.push_str(&format!("</{name}>"));
        }
        if visible {
            parts.push(part);
        }
        start = next;
    }
    parts
}

/// Sends notifications to one Telegram chat: the first line bold when there are several,
/// everything escaped, and `ack` / `quiet 1h` buttons under a firing alert.
#[derive(Debug, Clone)]
pub struct TelegramSink {
    name: String,
    bot: TelegramBot,
    chat_id: String,
}

impl TelegramSink {
    /// A sink called `name` sending through `bot` to `chat_id` (a numeric id, or `@channel`).
    pub fn new(name: impl Into<String>, bot: TelegramBot, chat_id: impl Into<String>) -> Self {
        TelegramSink {
            name: name.into(),
            bot,
            chat_id: chat_id.into(),
        }
    }

    /// Its bot (to poll the button presses and commands with the same client).
    pub fn bot(&self) -> &TelegramBot {
        &self.bot
    }
}

/// The notification's text as Telegram HTML.
fn render(text: &str) -> String {
    match text.split_once('\n') {
        Some((first, rest)) if !first.trim().is_empty() => {
            format!("<b>{}</b>\n{}", escape_html(first), escape_html(rest))
        }
        _ => escape_html(text),
    }
}

/// `ack` and `quiet 1h` for a firing alert, when its key fits the callback data; else none.
fn alert_buttons(n: &Outgoing) -> Vec<Button> {
    let firing = n.payload.get("state").and_then(Value::as_str) == Some("firing");
    let Some(key) = n.key.as_deref().filter(|_| firing) else {
        return Vec::new();
    };
    let buttons: Vec<Button> = [
        ("ack", format!("ack {key}")),
        ("quiet 1h", format!("quiet 1h {key}")),
    ]
    .into_iter()
    .map(|(text, callback_data)| Button {
        text: text.into(),
        callback_data,
    })
    .collect();
    if buttons
        .iter()
        .all(|b| b.callback_data.len() <= MAX_CALLBACK_DATA)
    {
        buttons
    } else {
        tracing::debug!(key = %key, "alert key too long for Telegram buttons: sent without");
        Vec::new()
    }
}

#[async_trait::async_trait]
impl Notifier for TelegramSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, n: &Outgoing) -> Result<(), DeliveryError> {
        self.bot
            .send_message(&self.chat_id, &render(&n.text), &alert_buttons(n))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_line_breaks_never_inside_an_entity_or_a_tag() {
        let cases: &[(&str, usize, &[&str])] = &[
            ("<b>hi</b>", 4096, &["<b>hi</b>"]),
            (" \n ", 4096, &[]),
            ("aaaa\nbbbb\ncccc", 10, &["aaaa\nbbbb", "cccc"]),
            // No line break: a hard split, but not inside `&amp;`.
            ("aaaaaaa&amp;bbb", 10, &["aaaaaaa", "&amp;bbb"]),
            // 🔥 is two UTF-16 units.
            ("🔥🔥🔥🔥🔥", 8, &["🔥🔥🔥🔥", "🔥"]),
            // Tags open at a split are closed, and reopened in the next part.
            (
                "<b>aaaa\nbbbb\ncccc</b>\ndd",
                16,
                &["<b>aaaa\nbbbb</b>", "<b>cccc</b>\ndd"],
            ),
            // A tag is never cut, nor left alone at the end of a part.
            (
                "xxxxxx<a href=\"u\">l</a>",
                20,
                &["xxxxxx", "<a href=\"u\">l</a>"],
            ),
        ];
        for (html, max, want) in cases {
            let parts = split_html(html, *max);
            assert_eq!(parts, *want, "{html:?}");
            assert!(parts.iter().all(|p| units(p) <= *max), "{html:?}");
        }
    }
}
