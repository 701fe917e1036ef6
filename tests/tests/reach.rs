//! Reaching people on roads the host does not own, end to end with the real lookoutd: the
//! telegram sink and its chat commands against a loopback Bot API, a dead host callback falling
//! back to Telegram, `lookout notify test`, incidents, and the self-check's dead man's switch
//! frozen with SIGSTOP.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lookout_e2e::bot_api::BotApi;
use lookout_e2e::{Daemon, free_port, run, signal};
use serde_json::{Value, json};

const TOKEN: &str = "123456:test-token";
const TOKEN_ENV: &str = "LOOKOUT_E2E_BOT_TOKEN";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn ago(secs: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(secs)).to_rfc3339()
}

/// A batch left in flight: the interrupted-run alert fires at the next stale scan.
fn stale_batch(chat: &str) -> Value {
    json!([
        {"kind": "message_received", "channel": "whatsapp", "chat_jid": chat, "message_id": format!("{chat}-1"), "timestamp": ago(60)},
        {"kind": "batch_dispatched", "chat_jid": chat, "message_ids": [format!("{chat}-1")], "run_id": format!("r-{chat}"), "at": ago(30)},
    ])
}

fn post(url: &str, body: &Value) -> (u16, Value) {
    rt().block_on(async {
        let r = reqwest::Client::new()
            .post(url)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    })
}

fn get(url: &str) -> Value {
    rt().block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}

/// A config with the stale scan fast, a telegram sink `phone` on `bot`, and `extra`.
fn config(dir: &std::path::Path, bot: &BotApi, extra: &str) -> String {
    let p = dir.join("lookout.toml");
    std::fs::write(
        &p,
        format!(
            "[thresholds]\nstale_processing = \"5s\"\nstale_scan_interval = \"1s\"\n\n\
             [[notify.sinks]]\nname = \"phone\"\nkind = \"telegram\"\ntoken_env = \"{TOKEN_ENV}\"\n\
             chat_id = \"100\"\nallowed_chats = [\"100\"]\napi_url = \"{}\"\n{extra}",
            bot.url
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_owned()
}

fn start(state: &std::path::Path, file: &str) -> Daemon {
    Daemon::start_opts(Some(state), &["--config", file], &[(TOKEN_ENV, TOKEN)])
}

fn to_chat<'a>(sent: &'a [Value], chat: &str) -> Vec<&'a str> {
    sent.iter()
        .filter(|m| m["chat_id"].as_str() == Some(chat))
        .filter_map(|m| m["text"].as_str())
        .collect()
}

#[test]
fn chat_commands_come_only_from_allowed_chats_and_run_once_across_a_restart() {
    let bot = BotApi::start(TOKEN);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let file = config(
        tmp.path(),
        &bot,
        "\n[[jobs]]\nname = \"hello\"\nevery = \"1h\"\ncommand = \"true\"\n",
    );
    let d = start(&state, &file);

    // A stranger first, then the allowed chat: once the allowed one is answered, the stranger's
    // command has been read (updates are handled in order) and must have had no answer.
    bot.send_text(999, "mallory", "/status");
    bot.send_text(100, "alice", "/status");
    let sent = bot.wait_sent(Duration::from_secs(20), |s| !to_chat(s, "100").is_empty());
    let answer = to_chat(&sent, "100")[0];
    assert!(
        ["pass", "warn", "fail"].iter().any(|v| answer.contains(v)),
        "/status answers with the verdict: {answer}"
    );
    assert_eq!(sent[0]["parse_mode"], "HTML");
    assert!(
        to_chat(&sent, "999").is_empty(),
        "a chat that is not allowed gets nothing: {sent:#?}"
    );

    // A command that changes something, then lookoutd killed in its next long poll.
    let quiet_id = bot.send_text(100, "alice", "/quiet 10m nothing-matches-this");
    bot.wait_sent(Duration::from_secs(20), |s| {
        to_chat(s, "100").iter().any(|t| t.contains("Quiet until"))
    });
    // lookoutd's next long poll asks from past the /quiet: it stored the offset.
    let start_wait = Instant::now();
    while bot.offsets().last().copied().flatten() != Some(quiet_id + 1) {
        assert!(
            start_wait.elapsed() < Duration::from_secs(20),
            "lookoutd polls again from past the command: {:?}",
            bot.offsets()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let polls_before = bot.offsets().len();
    d.stop_with("KILL", Duration::from_secs(10));

    let d = start(&state, &file);
    bot.send_text(100, "alice", "/alerts");
    let sent = bot.wait_sent(Duration::from_secs(20), |s| {
        to_chat(s, "100")
            .iter()
            .any(|t| t.contains("No alert is firing"))
    });
    let quiet_answers = to_chat(&sent, "100")
        .iter()
        .filter(|t| t.contains("Quiet until"))
        .count();
    assert_eq!(
        quiet_answers, 1,
        "the /quiet ran once across the restart: {sent:#?}"
    );
    let windows = get(&format!("{}/api/quiet", d.url));
    let from_chat: Vec<&Value> = windows["quiet"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["reason"] == "chat: @alice")
        .collect();
    assert_eq!(from_chat.len(), 1, "{windows}");
    assert_eq!(from_chat[0]["matcher"], "nothing-matches-this");
    // The restarted lookoutd asked from the offset it stored, never from the start.
    let after_restart = bot.offsets()[polls_before..].to_vec();
    assert!(
        after_restart
            .iter()
            .all(|o| o.is_some_and(|o| o > quiet_id)),
        "{after_restart:?}"
    );
    // A job run from chat, a target the watchdog does not know, a command that does not exist:
    // each answered in the chat.
    bot.send_text(100, "alice", "/run hello");
    bot.send_text(100, "alice", "/explain ghost");
    bot.send_text(100, "alice", "/reboot now");
    let sent = bot.wait_sent(Duration::from_secs(20), |s| {
        to_chat(s, "100")
            .iter()
            .any(|t| t.contains("Unknown command"))
    });
    let answers = to_chat(&sent, "100");
    assert!(
        answers.iter().any(|t| t.contains("<b>hello</b> started")),
        "{answers:#?}"
    );
    assert!(answers.iter().any(|t| t.contains("ghost")), "{answers:#?}");
    let history = get(&format!("{}/api/tasks/hello/history", d.url));
    assert!(
        !history["runs"].as_array().unwrap().is_empty(),
        "/run ran it: {history}"
    );
    // Each command is an event with who sent it; the stranger's is not.
    let events = get(&format!("{}/api/events?kind=chat_command&limit=100", d.url));
    let events = events["events"].as_array().cloned().unwrap_or_default();
    let commands: Vec<&str> = events
        .iter()
        .filter_map(|e| e["payload"]["command"].as_str())
        .collect();
    assert_eq!(
        commands,
        ["status", "quiet", "alerts", "run", "explain", "reboot"],
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["payload"]["from"]["username"] == "alice")
    );
}

#[test]
fn quiet_from_chat_holds_the_next_alert_which_fires_at_the_end_and_a_button_acks_it() {
    let bot = BotApi::start(TOKEN);
    let tmp = tempfile::tempdir().unwrap();
    let file = config(tmp.path(), &bot, "");
    let d = start(&tmp.path().join("state"), &file);

    bot.send_text(100, "alice", "/quiet 8s");
    bot.wait_sent(Duration::from_secs(20), |s| {
        to_chat(s, "100").iter().any(|t| t.contains("Quiet until"))
    });
    let window_end = Instant::now() + Duration::from_secs(8);
    assert_eq!(
        post(&format!("{}/api/events", d.url), &stale_batch("hushed")).0,
        200
    );
    // Held for the whole window, watched until it ends (less a scan's margin).
    while Instant::now() + Duration::from_millis(1500) < window_end {
        assert!(
            !to_chat(&bot.sent(), "100")
                .iter()
                .any(|t| t.contains("hushed")),
            "held while the window is open"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let sent = bot.wait_sent(Duration::from_secs(20), |s| {
        to_chat(s, "100").iter().any(|t| t.contains("hushed"))
    });
    let alert = sent
        .iter()
        .find(|m| m["text"].as_str().is_some_and(|t| t.contains("hushed")))
        .unwrap();
    let buttons = &alert["reply_markup"]["inline_keyboard"][0];
    let ack = buttons
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["text"] == "ack")
        .expect("an ack button");
    let data = ack["callback_data"].as_str().unwrap();
    assert!(data.starts_with("ack "), "{data}");

    bot.press(100, "alice", data);
    let start_wait = Instant::now();
    while bot.answered().is_empty() {
        assert!(
            start_wait.elapsed() < Duration::from_secs(20),
            "the button is answered"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let key = data.trim_start_matches("ack ");
    let alerts = get(&format!("{}/api/alerts", d.url));
    let a = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .unwrap_or_else(|| panic!("{key} in {alerts}"));
    assert_eq!(a["acked_by"], "@alice");

    // Its incident: open, with the ack among what was done.
    let incidents = get(&format!("{}/api/incidents?since=1h", d.url));
    let i = incidents["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["alert"] == key)
        .unwrap_or_else(|| panic!("{key} in {incidents}"));
    assert_eq!(i["open"], true);
    assert!(
        i["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "ack" && a["by"] == "@alice"),
        "{i}"
    );
    let out = run("lookout", &["--url", &d.url, "incidents"], tmp.path());
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(key) && text.contains("acknowledged by @alice"),
        "{text}"
    );
    let bad = rt().block_on(async {
        reqwest::get(format!("{}/api/incidents?since=soon", d.url))
            .await
            .unwrap()
    });
    assert_eq!(bad.status().as_u16(), 400);
}

#[test]
fn with_the_host_callback_dead_the_alert_reaches_telegram_through_its_fallback() {
    let bot = BotApi::start(TOKEN);
    let tmp = tempfile::tempdir().unwrap();
    // Nothing listens on the callback's port; the phone's own route takes only critical alerts
    // (this one is a warning: only the fallback brings it there).
    let dead = free_port();
    let file = config(
        tmp.path(),
        &bot,
        &format!(
            "min_severity = \"critical\"\n\n[notify]\nfallback_after = \"3s\"\n\n\
             [[notify.sinks]]\nname = \"host\"\nkind = \"callback\"\nurl = \"http://127.0.0.1:{dead}/hook\"\nfallback = \"phone\"\n"
        ),
    );
    let d = start(&tmp.path().join("state"), &file);
    let fired = Instant::now();
    assert_eq!(
        post(&format!("{}/api/events", d.url), &stale_batch("lost")).0,
        200
    );
    let sent = bot.wait_sent(Duration::from_secs(30), |s| {
        to_chat(s, "100").iter().any(|t| t.contains("lost"))
    });
    let took = fired.elapsed();
    let text = to_chat(&sent, "100")
        .into_iter()
        .find(|t| t.contains("lost"))
        .unwrap()
        .to_owned();
    assert!(
        text.contains("host"),
        "the fallback names the failing sink: {text}"
    );
    // fallback_after (3 s) + the stale scan (1 s) + one retry of the primary (1–2 s); the rest is
    // slack for a loaded 2-core machine.
    eprintln!("alert reached Telegram through the fallback in {took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn notify_test_prints_what_each_sink_answered() {
    let bot = BotApi::start(TOKEN);
    let tmp = tempfile::tempdir().unwrap();
    let dead = free_port();
    let file = config(
        tmp.path(),
        &bot,
        &format!(
            "\n[[notify.sinks]]\nname = \"dead\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{dead}/hook\"\n"
        ),
    );
    let d = start(&tmp.path().join("state"), &file);
    let out = run(
        "lookout",
        &["--url", &d.url, "notify", "test", "phone"],
        tmp.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("phone: delivered in"));
    assert!(
        to_chat(&bot.sent(), "100")
            .iter()
            .any(|t| t.contains("Lookout test message")),
        "{:#?}",
        bot.sent()
    );
    let out = run(
        "lookout",
        &["--url", &d.url, "notify", "test", "dead"],
        tmp.path(),
    );
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dead") && err.contains("did not take"),
        "{err}"
    );
    let out = run(
        "lookout",
        &["--url", &d.url, "notify", "test", "nope"],
        tmp.path(),
    );
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("phone") && err.contains("dead"),
        "names the sinks: {err}"
    );
}

/// A dead man's switch on loopback: records when each ping came and to which path.
struct Switch {
    url: String,
    pings: Arc<Mutex<Vec<(Instant, String)>>>,
    _thread: std::thread::JoinHandle<()>,
}

impl Switch {
    fn start() -> Switch {
        let pings = Arc::new(Mutex::new(Vec::new()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = pings.clone();
        let thread = std::thread::spawn(move || {
            let rt = rt();
            rt.block_on(async move {
                let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
                    let p = p.clone();
                    async move {
                        p.lock()
                            .unwrap()
                            .push((Instant::now(), uri.path().to_owned()));
                        "OK"
                    }
                });
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Switch {
            url: format!("http://127.0.0.1:{port}/ping/e2e-check"),
            pings,
            _thread: thread,
        }
    }

    fn count_after(&self, t: Instant) -> usize {
        self.pings
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at > t)
            .count()
    }

    fn wait_after(&self, t: Instant, n: usize, limit: Duration) {
        let start = Instant::now();
        while self.count_after(t) < n {
            assert!(start.elapsed() < limit, "{n} ping(s) within {limit:?}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

#[test]
fn the_selfcheck_pings_stop_while_lookoutd_is_frozen_and_resume_after() {
    let switch = Switch::start();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("lookout.toml");
    std::fs::write(
        &file,
        format!(
            "[selfcheck]\nping_url = \"{}\"\nping_interval = \"1s\"\n",
            switch.url
        ),
    )
    .unwrap();
    let d = Daemon::start(&["--config", file.to_str().unwrap()]);
    let t0 = Instant::now();
    switch.wait_after(t0, 2, Duration::from_secs(15));
    assert!(
        switch
            .pings
            .lock()
            .unwrap()
            .iter()
            .all(|(_, p)| p == "/ping/e2e-check"),
        "alive: never /fail"
    );
    let doctor = run(
        "lookout",
        &["--url", &d.url, "doctor", "--json"],
        tmp.path(),
    );
    let doctor: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let check = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "selfcheck")
        .unwrap_or_else(|| panic!("{doctor}"));
    assert_eq!(check["status"], "ok", "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("last ping"),
        "{check}"
    );

    signal(d.pid(), "STOP");
    let frozen = Instant::now();
    // Watching for absence takes time: three intervals with no ping (one already on the wire
    // when the signal landed may still arrive in the first moments).
    std::thread::sleep(Duration::from_secs(3));
    let during = switch.count_after(frozen + Duration::from_millis(300));
    signal(d.pid(), "CONT");
    let thawed = Instant::now();
    assert_eq!(
        during, 0,
        "a frozen lookoutd pings nothing, so the switch outside fires"
    );
    switch.wait_after(thawed, 2, Duration::from_secs(15));
}
