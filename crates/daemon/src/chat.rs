//! Two-way Telegram: for each telegram sink with `allowed_chats`, a long poll of the Bot API's
//! `getUpdates` (no public URL needed) that answers `/status`, `/alerts`, `/ack <alert>`,
//! `/quiet <duration> [match]`, `/explain <target>` and `/run <task>`, and the inline buttons of
//! an alert ("ack", "quiet 1h"). Only allowed chats are answered; anything else is logged and left
//! unanswered. Each command is recorded as a `chat_command` event with its sender.
//!
//! The poll's offset is kept in the store (`router_state`) and moved past an update *before* its
//! command runs, so a restart at any point never runs a command twice (at most once: a command cut
//! off by a crash is not retried, and its sender sees no answer).

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use lookout_notify::telegram::{Sender, TelegramBot, UpdateKind, escape_html};
use lookout_store::{IncidentAction, IncidentScope, NewEvent};
use serde_json::{Value, json};

use crate::http::AppState;

/// How long one `getUpdates` waits on Telegram's side for an update.
const POLL_SECONDS: u64 = 25;

/// Starts one poll per telegram sink that reads commands.
pub(crate) fn spawn(
    config: &lookout_config::Config,
    state: AppState,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut out = Vec::new();
    for s in config.notify.sinks.iter().filter(|s| s.reads_commands()) {
        let name = s.name().to_owned();
        let Some(token) = s.token_env.as_deref().and_then(|v| std::env::var(v).ok()) else {
            // The sink itself failed to build with the same error at start; nothing to poll with.
            tracing::error!(sink = %name, "no bot token: chat commands are off for this sink");
            continue;
        };
        let api = s
            .api_url
            .as_deref()
            .unwrap_or(crate::wiring::TELEGRAM_API_URL);
        let poll = Poll {
            offset_key: format!("telegram:{name}:offset"),
            bot: TelegramBot::new(api, token, Duration::from_secs(POLL_SECONDS + 10)),
            allowed: s.allowed_chats.iter().flatten().cloned().collect(),
            sink: name,
            state: state.clone(),
        };
        out.push(tokio::spawn(poll.run(stop.clone())));
    }
    out
}

struct Poll {
    sink: String,
    offset_key: String,
    bot: TelegramBot,
    allowed: HashSet<String>,
    state: AppState,
}

impl Poll {
    async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        tracing::info!(sink = %self.sink, chats = self.allowed.len(), "reading chat commands");
        let mut failures = 0u32;
        loop {
            let offset = match self.state.store().router_state_get(&self.offset_key).await {
                Ok(v) => v.and_then(|v| v.parse::<i64>().ok()),
                Err(e) => {
                    tracing::warn!(error = %e, sink = %self.sink, "cannot read the chat offset");
                    None
                }
            };
            let polled = tokio::select! {
                r = self.bot.get_updates(offset, POLL_SECONDS) => r,
                _ = stop.wait_for(|v| *v) => return,
            };
            let updates = match polled {
                Ok(u) => {
                    failures = 0;
                    u
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    // 1 s, 2 s, 4 s … up to a minute: a Bot API outage is not a busy loop.
                    let wait =
                        Duration::from_secs(1u64 << failures.min(6)).min(Duration::from_secs(60));
                    tracing::warn!(error = %e, sink = %self.sink, retry_in_s = wait.as_secs(), "getUpdates failed");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => continue,
                        _ = stop.wait_for(|v| *v) => return,
                    }
                }
            };
            for u in updates {
                // Past this update before its command runs: at most once across restarts.
                let next = (u.update_id + 1).to_string();
                if let Err(e) = self
                    .state
                    .store()
                    .router_state_set(&self.offset_key, &next)
                    .await
                {
                    tracing::error!(error = %e, sink = %self.sink, "cannot store the chat offset; not running the command");
                    break;
                }
                match u.kind {
                    UpdateKind::Message {
                        chat_id,
                        from,
                        text,
                    } => self.message(&chat_id, &from, &text).await,
                    UpdateKind::Callback {
                        id,
                        chat_id,
                        from,
                        data,
                    } => self.callback(&id, chat_id.as_deref(), &from, &data).await,
                    UpdateKind::Other => {}
                }
            }
        }
    }

    fn allowed(&self, chat_id: &str, from: &Sender) -> bool {
        let ok = self.allowed.contains(chat_id);
        if !ok {
            tracing::warn!(sink = %self.sink, chat_id, from_id = from.id, from = ?from.username, "command from a chat that is not allowed; ignored");
        }
        ok
    }

    async fn message(&self, chat_id: &str, from: &Sender, text: &str) {
        let Some(command) = text.trim().strip_prefix('/') else {
            return;
        };
        if !self.allowed(chat_id, from) {
            return;
        }
        let reply = self.run_command(chat_id, from, command).await;
        if let Err(e) = self.bot.send_message(chat_id, &reply, &[]).await {
            tracing::warn!(error = %e, sink = %self.sink, "cannot answer a chat command");
        }
    }

    async fn callback(&self, id: &str, chat_id: Option<&str>, from: &Sender, data: &str) {
        let Some(chat_id) = chat_id.filter(|c| self.allowed(c, from)) else {
            return;
        };
        let reply = self.run_command(chat_id, from, data).await;
        let first = reply.lines().next().unwrap_or_default();
        // The button's own answer is a short toast; the whole answer goes to the chat.
        let toast: String = strip_tags(first).chars().take(190).collect();
        if let Err(e) = self.bot.answer_callback_query(id, &toast).await {
            tracing::warn!(error = %e, sink = %self.sink, "cannot answer a button");
        }
        if let Err(e) = self.bot.send_message(chat_id, &reply, &[]).await {
            tracing::warn!(error = %e, sink = %self.sink, "cannot answer a chat command");
        }
    }

    /// Runs `command` (without its `/`) for `from`, records it, and returns the HTML answer.
    async fn run_command(&self, chat_id: &str, from: &Sender, command: &str) -> String {
        let mut words = command.split_whitespace();
        let verb = words.next().unwrap_or_default();
        // `/status@MyLookoutBot` in a group names the bot.
        let verb = verb.split('@').next().unwrap_or(verb).to_ascii_lowercase();
        let args: Vec<&str> = words.collect();
        let by = from
            .username
            .as_ref()
            .map(|u| format!("@{u}"))
            .unwrap_or_else(|| from.name.clone());
        let (ok, reply) = commands::run(&self.state, &verb, &args, &by).await;
        tracing::info!(sink = %self.sink, chat_id, from = %by, command = %verb, ok, "chat command");
        let event = NewEvent::new(
            "chat_command",
            json!({
                "sink": self.sink,
                "chat_id": chat_id,
                "from": {"id": from.id, "username": from.username, "name": from.name},
                "command": verb,
                "args": args,
                "ok": ok,
            }),
        )
        .with_subject(by.clone());
        if let Err(e) = self.state.store().append_events(&[event]).await {
            tracing::error!(error = %e, "cannot record a chat command");
        }
        if ok && matches!(verb.as_str(), "run") {
            if let Some(task) = args.first() {
                let action = IncidentAction {
                    at: Utc::now(),
                    kind: "command".into(),
                    text: format!("/run {task} from chat"),
                    by: Some(by.clone()),
                };
                if let Err(e) = self
                    .state
                    .store()
                    .incident_note(IncidentScope::Subject(task), &action)
                    .await
                {
                    tracing::warn!(error = %e, "cannot note a command on its incident");
                }
            }
        }
        reply
    }
}

/// `<b>x</b>` as `x`, for a button's plain-text toast.
fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

mod commands {
    //! What each chat command does, answered in Telegram's HTML (every value escaped).

    use super::*;

    pub(super) const HELP: &str = "Commands: /status · /alerts · /ack &lt;alert&gt; · \
        /quiet &lt;duration&gt; [match] · /explain &lt;target&gt; · /run &lt;task&gt;";

    /// `(ok, html)` for one command.
    pub(super) async fn run(
        state: &AppState,
        verb: &str,
        args: &[&str],
        by: &str,
    ) -> (bool, String) {
        match (verb, args) {
            ("status", _) => (true, status(state).await),
            ("alerts", _) => alerts(state).await,
            ("ack", [alert, ..]) => ack(state, alert, by).await,
            ("quiet", [length, rest @ ..]) => quiet(state, length, rest, by).await,
            ("explain", [target, ..]) => explain(state, target),
            ("run", [task, ..]) => run_task(state, task).await,
            ("ack" | "quiet" | "explain" | "run", []) => {
                (false, format!("/{verb} needs an argument.\n{HELP}"))
            }
            ("start" | "help", _) => (true, HELP.to_owned()),
            _ => (
                false,
                format!("Unknown command /{}.\n{HELP}", escape_html(verb)),
            ),
        }
    }

    async fn status(state: &AppState) -> String {
        let report = state.status().report(None).await;
        let (icon, word) = verdict(report.status);
        let mut out = format!("{icon} <b>{word}</b>");
        let value = serde_json::to_value(&*report).unwrap_or(Value::Null);
        for section in lookout_status_collect::view::sections(&value, Utc::now()) {
            if section.verdict != lookout_status_collect::Verdict::Pass {
                out.push_str(&format!(
                    "\n• <b>{}</b> {}: {}",
                    escape_html(&section.name),
                    verdict(section.verdict).1,
                    escape_html(&section.summary)
                ));
            }
        }
        for reason in report.reasons.iter().take(10) {
            out.push_str(&format!("\n– {}", escape_html(reason)));
        }
        out
    }

    fn verdict(v: lookout_status_collect::Verdict) -> (&'static str, &'static str) {
        match v {
            lookout_status_collect::Verdict::Pass => ("✅", "pass"),
            lookout_status_collect::Verdict::Warn => ("⚠️", "warn"),
            lookout_status_collect::Verdict::Fail => ("❌", "fail"),
        }
    }

    async fn alerts(state: &AppState) -> (bool, String) {
        match state.alerts().list(Utc::now()).await {
            Err(e) => (
                false,
                format!("Cannot list alerts: {}", escape_html(&e.to_string())),
            ),
            Ok(list) => {
                let live: Vec<_> = list.iter().filter(|a| a.status != "resolved").collect();
                if live.is_empty() {
                    return (true, "✅ No alert is firing.".into());
                }
                let mut out = format!("<b>{} alert(s)</b>", live.len());
                for a in live {
                    let ack = a
                        .record
                        .acked_by
                        .as_ref()
                        .map(|b| format!(" (acked by {})", escape_html(b)))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "\n• [{}] <code>{}</code>{ack}\n  {}",
                        a.status,
                        escape_html(&a.record.key),
                        escape_html(&a.record.text)
                    ));
                }
                (true, out)
            }
        }
    }

    async fn ack(state: &AppState, alert: &str, by: &str) -> (bool, String) {
        match crate::incidents::ack_alert(state, alert, by).await {
            Ok(Some(key)) => (
                true,
                format!(
                    "✔️ Acknowledged <code>{}</code>: no more reminders; it still resolves.",
                    escape_html(&key)
                ),
            ),
            Ok(None) => (
                false,
                format!(
                    "No firing alert matches <code>{}</code>.",
                    escape_html(alert)
                ),
            ),
            Err(e) => (false, escape_html(&e.message())),
        }
    }

    async fn quiet(state: &AppState, length: &str, rest: &[&str], by: &str) -> (bool, String) {
        let Some(length) = lookout_common::duration::parse_duration(length)
            .ok()
            .filter(|d| !d.is_zero())
        else {
            return (
                false,
                format!(
                    "`{}` is not a duration such as 30m or 2h.",
                    escape_html(length)
                ),
            );
        };
        let matcher = (!rest.is_empty()).then(|| rest.join(" "));
        let now = Utc::now();
        let id = format!("q-{}", now.timestamp_micros());
        match state
            .alerts()
            .quiet(id, length, matcher.clone(), format!("chat: {by}"), now)
            .await
        {
            Ok(w) => (
                true,
                format!(
                    "🔕 Quiet until {} UTC{}: new alerts are held, and sent at the end if still true.",
                    w.ends_at.format("%H:%M"),
                    matcher
                        .map(|m| format!(" for <code>{}</code>", escape_html(&m)))
                        .unwrap_or_default()
                ),
            ),
            Err(e) => (
                false,
                format!(
                    "Cannot open a quiet window: {}",
                    escape_html(&e.to_string())
                ),
            ),
        }
    }

    fn explain(state: &AppState, target: &str) -> (bool, String) {
        let Some(w) = state.watchdog() else {
            return (false, "The watchdog is not running.".into());
        };
        match w.explain(target) {
            Err(e) => (false, escape_html(&e.to_string())),
            Ok(e) => {
                let mut out = format!("<b>{}</b>", escape_html(&e.target));
                if e.seen.is_empty() {
                    out.push_str("\nseen: healthy (or not probed yet)");
                }
                for s in &e.seen {
                    out.push_str(&format!("\nseen: {}", escape_html(s)));
                }
                let v = serde_json::to_value(&e).unwrap_or(Value::Null);
                for (label, key) in [
                    ("next", "next"),
                    ("circuit", "circuit"),
                    ("backoff", "backoff"),
                ] {
                    out.push_str(&format!("\n{label}: {}", escape_html(&compact(&v[key]))));
                }
                (true, out)
            }
        }
    }

    async fn run_task(state: &AppState, task: &str) -> (bool, String) {
        let Some(s) = state.schedulers() else {
            return (false, "The schedulers are not running.".into());
        };
        let owner = match s.owner(task).await {
            Ok(o) => o,
            Err(e) => return (false, escape_html(&e.message())),
        };
        match owner.run_now(task).await {
            Ok(run) => (
                true,
                format!(
                    "▶️ <b>{}</b> started (run {}).",
                    escape_html(task),
                    escape_html(&run.to_string())
                ),
            ),
            Err(e) => (
                false,
                format!(
                    "Cannot run {}: {}",
                    escape_html(task),
                    escape_html(&e.to_string())
                ),
            ),
        }
    }

    /// `{"a":1,"b":null}` as `a=1`.
    fn compact(v: &Value) -> String {
        match v.as_object() {
            Some(o) => o
                .iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| match x {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
            None => v.to_string(),
        }
    }
}
