//! The chat sinks (Telegram, ntfy, Discord) against loopback servers that speak each API as
//! documented — refusing what the real one refuses — and record what they were sent.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use lookout_notify::discord::DiscordSink;
use lookout_notify::ntfy::NtfySink;
use lookout_notify::telegram::{
    Sender, TelegramBot, TelegramSink, Update, UpdateKind, escape_html,
};
use lookout_notify::{Notifier, Outgoing, Severity};
use serde_json::{Value, json};

const TOKEN: &str = "4242:AAE-secret_Token";
const CHAT: &str = "-100200";
const TIMEOUT: Duration = Duration::from_secs(5);

async fn serve(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

/// A port nothing listens on: connection refused.
fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// An alert's notification, its payload as the lifecycle writes it.
fn alert(severity: Severity, text: &str, key: &str, state: &str) -> Outgoing {
    let (rule, subject) = key.split_once(':').unwrap_or((key, ""));
    Outgoing {
        key: Some(key.into()),
        payload: json!({"alert": key, "state": state, "rule": rule, "subject": subject,
                        "first_seen": "2026-01-01T00:00:00+00:00"}),
        ..note(severity, text)
    }
}

/// A notification that is not an alert's.
fn note(severity: Severity, text: &str) -> Outgoing {
    Outgoing {
        id: "n-1".into(),
        created_at: Utc::now(),
        key: None,
        group: None,
        severity,
        text: text.into(),
        payload: json!({}),
        fallback_for: None,
    }
}

// ---------------------------------------------------------------------------------------------
// A loopback Telegram Bot API: one bot, TOKEN.

#[derive(Clone, Default)]
struct BotApi {
    sent: Arc<Mutex<Vec<Value>>>,
    answered: Arc<Mutex<Vec<Value>>>,
    polls: Arc<Mutex<Vec<Value>>>,
    /// Updates not confirmed yet.
    updates: Arc<Mutex<Vec<Value>>>,
    /// When set, sendMessage answers 429 with this `retry_after`.
    flood_wait: Arc<Mutex<Option<u64>>>,
}

fn tg_ok(result: Value) -> Response {
    Json(json!({"ok": true, "result": result})).into_response()
}

fn tg_error(status: StatusCode, description: &str) -> Response {
    let body = json!({"ok": false, "error_code": status.as_u16(), "description": description});
    (status, Json(body)).into_response()
}

/// Telegram's HTML parse mode: the text a reader sees, or why Telegram refuses it.
fn parse_html(html: &str) -> Result<String, String> {
    const TAGS: &str = "b strong i em u ins s strike del span tg-spoiler a code pre blockquote";
    let (mut seen, mut open, mut rest) = (String::new(), Vec::new(), html);
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => {
                let end = rest.find('>').ok_or("unclosed start tag")?;
                let tag = &rest[1..end];
                if let Some(name) = tag.strip_prefix('/') {
                    if open.pop() != Some(name) {
                        return Err(format!("unexpected end tag \"{name}\""));
                    }
                } else {
                    let name = tag.split_whitespace().next().unwrap_or("");
                    if !TAGS.split(' ').any(|t| t == name) {
                        return Err(format!("unsupported start tag \"{name}\""));
                    }
                    open.push(name);
                }
                rest = &rest[end + 1..];
            }
            '&' => {
                let end = rest.find(';').ok_or("unterminated entity")?;
                seen.push(match &rest[1..end] {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "quot" => '"',
                    other => return Err(format!("unsupported entity \"&{other};\"")),
                });
                rest = &rest[end + 1..];
            }
            '>' => return Err("unescaped \">\"".into()),
            c => {
                seen.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    match open.last() {
        Some(name) => Err(format!("can't find end tag for \"{name}\"")),
        None => Ok(seen),
    }
}

async fn bot_api(
    State(api): State<BotApi>,
    Path((bot, method)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if bot != format!("bot{TOKEN}") {
        return tg_error(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    match method.as_str() {
        "sendMessage" => send_message(&api, body),
        "getUpdates" => get_updates(&api, body).await,
        "answerCallbackQuery" => {
            api.answered.lock().unwrap().push(body);
            tg_ok(json!(true))
        }
        _ => tg_error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn send_message(api: &BotApi, body: Value) -> Response {
    if let Some(secs) = *api.flood_wait.lock().unwrap() {
        let body = json!({"ok": false, "error_code": 429,
            "description": format!("Too Many Requests: retry after {secs}"),
            "parameters": {"retry_after": secs}});
        return (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    }
    let text = body["text"].as_str().unwrap_or_default();
    let seen = match body["parse_mode"].as_str() {
        Some("HTML") => parse_html(text),
        _ => Ok(text.to_owned()),
    };
    let bad = |why: &str| tg_error(StatusCode::BAD_REQUEST, &format!("Bad Request: {why}"));
    let seen = match seen {
        Ok(seen) => seen,
        Err(e) => return bad(&format!("can't parse entities: {e}")),
    };
    if seen.trim().is_empty() {
        return bad("message text is empty");
    }
    if seen.encode_utf16().count() > 4096 {
        return bad("message is too long");
    }
    let rows = body["reply_markup"]["inline_keyboard"].as_array().cloned();
    for b in rows.iter().flatten().filter_map(Value::as_array).flatten() {
        if b["callback_data"].as_str().is_none_or(|d| d.len() > 64) {
            return bad("BUTTON_DATA_INVALID");
        }
    }
    let mut sent = api.sent.lock().unwrap();
    sent.push(body.clone());
    let chat = json!({"id": body["chat_id"], "type": "supergroup"});
    tg_ok(json!({"message_id": sent.len(), "date": 0, "chat": chat, "text": seen}))
}

/// Long polling as documented: updates before `offset` are confirmed (gone for good); with none
/// pending, the answer waits up to `timeout` seconds; only `allowed_updates` types are returned.
async fn get_updates(api: &BotApi, body: Value) -> Response {
    api.polls.lock().unwrap().push(body.clone());
    let deadline = Instant::now() + Duration::from_secs(body["timeout"].as_u64().unwrap_or(0));
    let allowed: Option<Vec<String>> = serde_json::from_value(body["allowed_updates"].clone()).ok();
    let wanted = |u: &Value| {
        allowed
            .as_ref()
            .is_none_or(|a| a.iter().any(|t| u.get(t).is_some()))
    };
    loop {
        let pending: Vec<Value> = {
            let mut q = api.updates.lock().unwrap();
            if let Some(offset) = body["offset"].as_i64() {
                q.retain(|u| u["update_id"].as_i64().unwrap() >= offset);
            }
            q.iter().filter(|u| wanted(u)).cloned().collect()
        };
        if !pending.is_empty() || Instant::now() >= deadline {
            return tg_ok(json!(pending));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn bot_api_server() -> (BotApi, String) {
    let api = BotApi::default();
    let app = axum::Router::new()
        .route("/{bot}/{method}", axum::routing::post(bot_api))
        .with_state(api.clone());
    (api, serve(app).await)
}

fn sink(url: &str) -> TelegramSink {
    TelegramSink::new(
        "chat",
        TelegramBot::new(&format!("{url}/"), TOKEN.into(), TIMEOUT),
        CHAT,
    )
}

#[tokio::test]
async fn telegram_text_arrives_escaped_in_html_mode() {
    let (api, url) = bot_api_server().await;
    let s = sink(&url);
    let one = "🔥 <script>alert(1)</script> & more";
    s.deliver(&note(Severity::Critical, one)).await.unwrap();
    let two = "disk <full> on \"a\" & b\n97% used";
    s.deliver(&note(Severity::Warning, two)).await.unwrap();

    let sent = api.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["chat_id"], CHAT);
    assert_eq!(sent[0]["parse_mode"], "HTML");
    assert_eq!(sent[0]["disable_web_page_preview"], true);
    assert_eq!(
        sent[0]["text"],
        "🔥 &lt;script&gt;alert(1)&lt;/script&gt; &amp; more"
    );
    assert_eq!(parse_html(sent[0]["text"].as_str().unwrap()).unwrap(), one);
    // Several lines: the first bold.
    let bold = "<b>disk &lt;full&gt; on &quot;a&quot; &amp; b</b>\n97% used";
    assert_eq!(sent[1]["text"], bold);
    assert_eq!(parse_html(sent[1]["text"].as_str().unwrap()).unwrap(), two);
}

#[tokio::test]
async fn telegram_a_long_text_goes_as_two_messages_buttons_under_the_last() {
    let (api, url) = bot_api_server().await;
    let mut text = String::from("disk full on <host-a> & <host-b>");
    for i in 0.. {
        text.push_str(&format!("\nline {i:03}: usage 97% on /var, growing"));
        if text.chars().count() >= 5000 {
            break;
        }
    }
    let text: String = text.chars().take(5000).collect();
    let firing = alert(Severity::Critical, &text, "disk_full:host-a", "firing");
    sink(&url).deliver(&firing).await.unwrap();

    let sent = api.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    let parts: Vec<&str> = sent.iter().map(|m| m["text"].as_str().unwrap()).collect();
    for p in &parts {
        assert!(p.chars().count() <= 4096, "{} chars", p.chars().count());
    }
    let (first, rest) = text.split_once('\n').unwrap();
    let whole = format!("<b>{}</b>\n{}", escape_html(first), escape_html(rest));
    assert_eq!(parts.join("\n"), whole);
    // Each part parses alone, and together they read as the text.
    let seen: Vec<String> = parts.iter().map(|p| parse_html(p).unwrap()).collect();
    assert_eq!(seen.join("\n"), text);
    assert!(sent[0].get("reply_markup").is_none());
    assert_eq!(
        sent[1]["reply_markup"]["inline_keyboard"][0][0]["text"],
        "ack"
    );
}

#[tokio::test]
async fn telegram_a_firing_alert_has_ack_and_quiet_buttons_a_resolved_one_none() {
    let (api, url) = bot_api_server().await;
    let s = sink(&url);
    let key = "disk_full:host-a";
    let firing = alert(Severity::Critical, "💾 disk full on host-a", key, "firing");
    s.deliver(&firing).await.unwrap();
    let resolved = alert(
        Severity::Info,
        "✅ resolved after 5m: disk full",
        key,
        "resolved",
    );
    s.deliver(&resolved).await.unwrap();
    // A key too long for the 64-byte callback data: sent without buttons.
    let long = format!("disk_full:{}", "h".repeat(50));
    s.deliver(&alert(Severity::Critical, "💾 disk full", &long, "firing"))
        .await
        .unwrap();

    let sent = api.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 3);
    let buttons = json!({"inline_keyboard": [[
        {"text": "ack", "callback_data": "ack disk_full:host-a"},
        {"text": "quiet 1h", "callback_data": "quiet 1h disk_full:host-a"},
    ]]});
    assert_eq!(sent[0]["reply_markup"], buttons);
    assert!(sent[1].get("reply_markup").is_none());
    assert!(sent[2].get("reply_markup").is_none());
}

#[tokio::test]
async fn telegram_a_429_gives_its_retry_after() {
    let (api, url) = bot_api_server().await;
    *api.flood_wait.lock().unwrap() = Some(7);
    let e = sink(&url)
        .deliver(&note(Severity::Warning, "slow down"))
        .await
        .unwrap_err();
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
    assert!(
        e.message.contains("HTTP 429") && e.message.contains("Too Many Requests"),
        "{e}"
    );
    assert!(api.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn telegram_errors_never_show_the_token() {
    let (_api, url) = bot_api_server().await;
    let bot = TelegramBot::new(&url, "4242:WRONG-secret".into(), TIMEOUT);
    let s = TelegramSink::new("chat", bot.clone(), CHAT);
    let e = s
        .deliver(&note(Severity::Info, "hi"))
        .await
        .unwrap_err()
        .message;
    assert!(e.contains("401") && e.contains("Unauthorized"), "{e}");
    let polled = bot.get_updates(None, 0).await.unwrap_err().to_string();
    assert!(
        polled.contains("getUpdates") && polled.contains("401"),
        "{polled}"
    );
    let answered = bot
        .answer_callback_query("cb", "")
        .await
        .unwrap_err()
        .to_string();
    // No answer at all: reqwest's own error would name the URL, token included.
    let unreachable = TelegramBot::new(&closed_port_url(), TOKEN.into(), TIMEOUT);
    let refused = TelegramSink::new("chat", unreachable.clone(), CHAT)
        .deliver(&note(Severity::Info, "hi"))
        .await
        .unwrap_err()
        .message;
    assert!(refused.contains("sendMessage"), "{refused}");
    let refused_poll = unreachable
        .get_updates(Some(1), 0)
        .await
        .unwrap_err()
        .to_string();
    for shown in [e, polled, answered, refused, refused_poll, format!("{s:?}")] {
        assert!(
            !shown.contains("WRONG-secret") && !shown.contains("secret_Token"),
            "{shown}"
        );
        assert!(!shown.contains("/bot"), "{shown}");
    }
}

fn sender(id: i64, username: Option<&str>, name: &str) -> Sender {
    Sender {
        id,
        username: username.map(Into::into),
        name: name.into(),
    }
}

#[tokio::test]
async fn telegram_updates_arrive_typed_and_confirmed_ones_never_again() {
    let (api, url) = bot_api_server().await;
    let chat = json!({"id": -100200, "type": "supergroup"});
    let ada = json!({"id": 7, "is_bot": false, "first_name": "Ada", "last_name": "Lovelace",
                     "username": "ada"});
    api.updates.lock().unwrap().extend([
        json!({"update_id": 10, "message": {"message_id": 1, "date": 0, "chat": chat,
            "from": ada, "text": "/status"}}),
        json!({"update_id": 11, "callback_query": {"id": "cb-1", "chat_instance": "x",
            "from": {"id": 8, "is_bot": false, "first_name": "Bob"},
            "message": {"message_id": 5, "date": 0, "chat": chat},
            "data": "ack disk_full:host-a"}}),
        // A message without text (a sticker), and one this client does not understand.
        json!({"update_id": 12, "message": {"message_id": 2, "date": 0, "chat": chat,
            "from": ada, "sticker": {"file_id": "s"}}}),
        json!({"update_id": 13, "message": "a shape from the future"}),
        // Not an allowed update type: never returned.
        json!({"update_id": 14, "edited_message": {"message_id": 1, "date": 0, "chat": chat,
            "text": "/status!"}}),
    ]);
    let bot = TelegramBot::new(&url, TOKEN.into(), TIMEOUT);
    let updates = bot.get_updates(None, 0).await.unwrap();
    let status = UpdateKind::Message {
        chat_id: "-100200".into(),
        from: sender(7, Some("ada"), "Ada Lovelace"),
        text: "/status".into(),
    };
    let ack = UpdateKind::Callback {
        id: "cb-1".into(),
        chat_id: Some("-100200".into()),
        from: sender(8, None, "Bob"),
        data: "ack disk_full:host-a".into(),
    };
    let kinds = [status, ack, UpdateKind::Other, UpdateKind::Other];
    let expected: Vec<Update> = (10..)
        .zip(kinds)
        .map(|(update_id, kind)| Update { update_id, kind })
        .collect();
    assert_eq!(updates, expected);

    let last = updates.last().unwrap().update_id;
    assert!(bot.get_updates(Some(last + 1), 0).await.unwrap().is_empty());
    let polls = api.polls.lock().unwrap().clone();
    assert_eq!(
        polls[0]["allowed_updates"],
        json!(["message", "callback_query"])
    );
    assert_eq!(polls[0]["timeout"], 0);
    assert!(polls[0].get("offset").is_none());
    assert_eq!(polls[1]["offset"], 14);
}

#[tokio::test]
async fn telegram_a_long_poll_outlasts_the_client_timeout() {
    let (_api, url) = bot_api_server().await;
    // Calls time out after 300 ms, but a poll waiting 1 s for updates is not cut off.
    let bot = TelegramBot::new(&url, TOKEN.into(), Duration::from_millis(300));
    let started = Instant::now();
    assert!(bot.get_updates(None, 1).await.unwrap().is_empty());
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn telegram_a_callback_answer_reaches_the_server() {
    let (api, url) = bot_api_server().await;
    let bot = TelegramBot::new(&url, TOKEN.into(), TIMEOUT);
    bot.answer_callback_query("cb-1", "acknowledged")
        .await
        .unwrap();
    let want = json!({"callback_query_id": "cb-1", "text": "acknowledged"});
    assert_eq!(*api.answered.lock().unwrap(), vec![want]);
}

// ---------------------------------------------------------------------------------------------
// A loopback ntfy server: topic `alerts` is open, `protected` needs the token `tk_test`.

/// A message as ntfy publishes it, read from the request as ntfy reads it.
#[derive(Debug, Clone, PartialEq)]
struct Published {
    topic: String,
    title: Option<String>,
    message: String,
    priority: u8,
    tags: Vec<String>,
    authorization: Option<String>,
    /// The raw `Title` header (`None` when the title came as a query parameter).
    title_header: Option<String>,
}

impl Published {
    /// One line to compare: topic, title, priority, tags, authorization, message.
    fn summary(&self) -> String {
        let (title, auth) = (self.title.as_deref(), self.authorization.as_deref());
        let tags = self.tags.join(",");
        format!(
            "{} {title:?} p{} {tags} {auth:?} {:?}",
            self.topic, self.priority, self.message
        )
    }
}

#[derive(Clone, Default)]
struct Ntfy {
    published: Arc<Mutex<Vec<Published>>>,
    /// When set, every publish answers 429, with this `Retry-After` if any.
    limited: Arc<Mutex<Option<Option<u64>>>>,
}

fn ntfy_error(status: StatusCode, code: u32, error: &str) -> Response {
    let body = json!({"code": code, "http": status.as_u16(), "error": error});
    (status, Json(body)).into_response()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// ntfy's parameter lookup: any of the header aliases, else any of the query aliases.
fn param(headers: &HeaderMap, query: &[(String, String)], names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| header(headers, n)).or_else(|| {
        let mut q = query.iter();
        q.find(|(k, _)| names.iter().any(|n| n.eq_ignore_ascii_case(k)))
            .map(|(_, v)| v.clone())
    })
}

async fn ntfy_publish(
    State(ntfy): State<Ntfy>,
    Path(topic): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = header(&headers, "authorization");
    if topic == "protected" && authorization.as_deref() != Some("Bearer tk_test") {
        return ntfy_error(StatusCode::UNAUTHORIZED, 40101, "unauthorized");
    }
    if let Some(wait) = *ntfy.limited.lock().unwrap() {
        let too_many = "limit reached: too many requests";
        let mut r = ntfy_error(StatusCode::TOO_MANY_REQUESTS, 42901, too_many);
        if let Some(secs) = wait {
            r.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        return r;
    }
    let priority = match param(&headers, &query, &["x-priority", "priority", "prio", "p"]) {
        None => 3,
        Some(p) => match p.as_str() {
            "1" | "min" => 1,
            "2" | "low" => 2,
            "3" | "default" => 3,
            "4" | "high" => 4,
            "5" | "max" | "urgent" => 5,
            _ => return ntfy_error(StatusCode::BAD_REQUEST, 40007, "invalid priority"),
        },
    };
    let tags = param(&headers, &query, &["x-tags", "tags", "tag", "ta"])
        .map(|t| t.split(',').map(|t| t.trim().to_owned()).collect())
        .unwrap_or_default();
    let p = Published {
        topic,
        title: param(&headers, &query, &["x-title", "title", "ti", "t"]),
        message: String::from_utf8(body.to_vec()).unwrap(),
        priority,
        tags,
        authorization,
        title_header: header(&headers, "title"),
    };
    ntfy.published.lock().unwrap().push(p.clone());
    let answer = json!({"id": "msg1", "time": 0, "event": "message", "topic": p.topic,
        "title": p.title, "message": p.message, "priority": p.priority, "tags": p.tags});
    Json(answer).into_response()
}

async fn ntfy_server() -> (Ntfy, String) {
    let ntfy = Ntfy::default();
    let app = axum::Router::new()
        .route("/{topic}", axum::routing::post(ntfy_publish))
        .with_state(ntfy.clone());
    (ntfy, serve(app).await)
}

#[tokio::test]
async fn ntfy_publishes_title_priority_tags_and_token() {
    let (ntfy, url) = ntfy_server().await;
    let token = Some("tk_test".into());
    let protected = NtfySink::new("phone", format!("{url}/protected"), token, TIMEOUT);
    let open = NtfySink::new("phone", format!("{url}/alerts"), None, TIMEOUT);
    let key = "disk_full:host-a";
    let text = "disk full on host-a\n97% used on /\nsince 10:00";
    protected
        .deliver(&alert(Severity::Critical, text, key, "firing"))
        .await
        .unwrap();
    open.deliver(&note(Severity::Warning, "backup late\nby 2h"))
        .await
        .unwrap();
    open.deliver(&note(Severity::Info, "nightly backup done"))
        .await
        .unwrap();
    let resolved = alert(
        Severity::Info,
        "✅ resolved after 5m: disk full",
        key,
        "resolved",
    );
    open.deliver(&resolved).await.unwrap();

    let got = ntfy.published.lock().unwrap().clone();
    let lines: Vec<String> = got.iter().map(Published::summary).collect();
    assert_eq!(
        lines,
        [
            r#"protected Some("disk full on host-a") p5 rotating_light Some("Bearer tk_test") "97% used on /\nsince 10:00""#,
            r#"alerts Some("backup late") p4 warning None "by 2h""#,
            r#"alerts None p3 information_source None "nightly backup done""#,
            r#"alerts None p3 white_check_mark None "✅ resolved after 5m: disk full""#,
        ]
    );
    // ASCII titles travel in the `Title` header itself.
    assert_eq!(got[0].title_header.as_deref(), Some("disk full on host-a"));
}

#[tokio::test]
async fn ntfy_a_title_that_is_not_ascii_arrives_intact() {
    let (ntfy, url) = ntfy_server().await;
    let s = NtfySink::new("phone", format!("{url}/alerts"), None, TIMEOUT);
    let title = "⚠️ primary sink `chat` failing for 2m — via fallback:";
    let text = format!("{title}\n🔁 host is crash-looping");
    s.deliver(&note(Severity::Warning, &text)).await.unwrap();
    let got = ntfy.published.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].title.as_deref(), Some(title));
    assert_eq!(got[0].title_header, None, "no raw UTF-8 in a header");
    assert_eq!(got[0].message, "🔁 host is crash-looping");
}

#[tokio::test]
async fn ntfy_a_429_gives_its_retry_after_or_a_minute_and_errors_name_the_status() {
    let (ntfy, url) = ntfy_server().await;
    let s = NtfySink::new("phone", format!("{url}/alerts"), None, TIMEOUT);
    let n = note(Severity::Critical, "disk full");
    *ntfy.limited.lock().unwrap() = Some(Some(30));
    let e = s.deliver(&n).await.unwrap_err();
    assert_eq!(e.retry_after, Some(Duration::from_secs(30)));
    assert!(e.message.contains("429"), "{e}");
    *ntfy.limited.lock().unwrap() = Some(None);
    let e = s.deliver(&n).await.unwrap_err();
    assert_eq!(e.retry_after, Some(Duration::from_secs(60)));
    *ntfy.limited.lock().unwrap() = None;
    // A protected topic without the token: the status and ntfy's answer, no retry_after.
    let s = NtfySink::new("phone", format!("{url}/protected"), None, TIMEOUT);
    let e = s.deliver(&n).await.unwrap_err();
    assert!(
        e.message.contains("401") && e.message.contains("unauthorized"),
        "{e}"
    );
    assert_eq!(e.retry_after, None);
    assert!(ntfy.published.lock().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// A loopback Discord webhook endpoint: webhook 123, token `hook-token`.

#[derive(Clone, Default)]
struct Discord {
    posted: Arc<Mutex<Vec<Value>>>,
    /// When set, every post answers 429: with the JSON body (true) or Cloudflare's HTML (false).
    limited: Arc<Mutex<Option<bool>>>,
}

fn discord_error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

async fn discord_execute(
    State(d): State<Discord>,
    Path((_id, token)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if token != "hook-token" {
        return discord_error(StatusCode::UNAUTHORIZED, 50027, "Invalid Webhook Token");
    }
    if let Some(json_body) = *d.limited.lock().unwrap() {
        let limited = "You are being rate limited.";
        let mut r = if json_body {
            let body = json!({"message": limited, "retry_after": 1.5, "global": false});
            (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
        } else {
            (StatusCode::TOO_MANY_REQUESTS, "<html>error 1015</html>").into_response()
        };
        r.headers_mut()
            .insert("retry-after", HeaderValue::from(2u64));
        return r;
    }
    let content = body["content"].as_str().unwrap_or_default();
    if content.trim().is_empty() {
        return discord_error(
            StatusCode::BAD_REQUEST,
            50006,
            "Cannot send an empty message",
        );
    }
    if content.chars().count() > 2000 {
        return discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
    }
    d.posted.lock().unwrap().push(body);
    StatusCode::NO_CONTENT.into_response()
}

async fn discord_server() -> (Discord, String) {
    let d = Discord::default();
    let app = axum::Router::new()
        .route(
            "/api/webhooks/{id}/{token}",
            axum::routing::post(discord_execute),
        )
        .with_state(d.clone());
    let url = format!("{}/api/webhooks/123/hook-token", serve(app).await);
    (d, url)
}

#[tokio::test]
async fn discord_posts_content_as_lookout_pinging_nobody() {
    let (d, url) = discord_server().await;
    let s = DiscordSink::new("discord", url, TIMEOUT);
    let text = "@everyone disk full on host-a";
    s.deliver(&note(Severity::Critical, text)).await.unwrap();
    let want = json!({"content": text, "username": "Lookout", "allowed_mentions": {"parse": []}});
    assert_eq!(*d.posted.lock().unwrap(), vec![want]);
}

#[tokio::test]
async fn discord_a_long_text_goes_as_two_posts_split_at_a_line() {
    let (d, url) = discord_server().await;
    let text = format!("{}\n", "x".repeat(49)).repeat(50);
    let text = text.trim_end();
    assert_eq!(text.chars().count(), 2499);
    let s = DiscordSink::new("discord", url, TIMEOUT);
    s.deliver(&note(Severity::Info, text)).await.unwrap();
    let posted = d.posted.lock().unwrap().clone();
    assert_eq!(posted.len(), 2);
    let parts: Vec<&str> = posted
        .iter()
        .map(|b| b["content"].as_str().unwrap())
        .collect();
    assert!(parts.iter().all(|p| p.chars().count() <= 2000));
    assert_eq!(parts.join("\n"), text);
}

#[tokio::test]
async fn discord_a_429_gives_the_bodys_retry_after_else_the_header() {
    let (d, url) = discord_server().await;
    let s = DiscordSink::new("discord", url, TIMEOUT);
    let n = note(Severity::Warning, "disk full");
    *d.limited.lock().unwrap() = Some(true);
    let e = s.deliver(&n).await.unwrap_err();
    assert_eq!(e.retry_after, Some(Duration::from_millis(1500)));
    assert!(e.message.contains("429"), "{e}");
    *d.limited.lock().unwrap() = Some(false);
    let e = s.deliver(&n).await.unwrap_err();
    assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
    assert!(d.posted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn discord_errors_never_show_the_webhook_url() {
    let (_d, url) = discord_server().await;
    let n = note(Severity::Warning, "disk full");
    let wrong = DiscordSink::new("discord", url.replace("hook-token", "WRONG-token"), TIMEOUT);
    let e = wrong.deliver(&n).await.unwrap_err().message;
    assert!(
        e.contains("401") && e.contains("Invalid Webhook Token"),
        "{e}"
    );
    let refused = format!("{}/api/webhooks/123/hook-token", closed_port_url());
    let s = DiscordSink::new("discord", refused, TIMEOUT);
    let e2 = s.deliver(&n).await.unwrap_err().message;
    for shown in [e, e2, format!("{s:?}"), format!("{wrong:?}")] {
        assert!(
            !shown.contains("hook-token") && !shown.contains("WRONG-token"),
            "{shown}"
        );
        assert!(!shown.contains("/api/webhooks"), "{shown}");
    }
}
