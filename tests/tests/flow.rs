//! Message flow checks on the real lookoutd: a message nobody answers within
//! `thresholds.answer_within` is one "💬 … unanswered" alert, `/status` shows it in its `flow`
//! section, and the chat's `bot_response` resolves it once.
//!
//! `cargo test -p lookout-e2e --test flow`; its time-to-know is measured by
//! `cargo bench -p lookout-e2e --bench time_to_know` (scenario "10 unanswered message"), which
//! includes this file.

use std::time::{Duration, Instant};

use lookout_e2e::{Daemon, Receiver};
use serde_json::{Value, json};

const ANSWER_WITHIN: Duration = Duration::from_secs(2);
const CHAT: &str = "family@g.us";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn post(d: &Daemon, body: &Value) {
    let code = rt().block_on(async {
        reqwest::Client::new()
            .post(format!("{}/api/events", d.url))
            .json(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(code, 200, "POST /api/events {body}");
}

fn status(d: &Daemon) -> Value {
    rt().block_on(async {
        reqwest::get(format!("{}/status?sections=flow", d.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

fn texts(got: &[Value]) -> Vec<String> {
    got.iter()
        .map(|b| b["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn firing(t: &str) -> bool {
    t.starts_with(&format!("💬 1 message(s) in chat {CHAT} unanswered for "))
}

/// Sleeps a random part of `period`, so the message lands at any phase of lookoutd's rounds.
fn random_phase(period: Duration) {
    use std::hash::{BuildHasher, Hasher};
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    std::thread::sleep(period.mul_f64((r % 10_000) as f64 / 10_000.0));
}

/// The scenario: a message with no answer, then its answer. Returns the time-to-know in
/// milliseconds (from the moment the message had waited `answer_within` to the alert at the
/// receiver; negative if early), its bound and the bound's words.
pub(crate) fn unanswered_message() -> (f64, Duration, String) {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("lookout.toml");
    std::fs::write(
        &file,
        format!(
            "[thresholds]\nanswer_within = \"{}s\"\n\n[[notify.sinks]]\nkind = \"webhook\"\nurl = \"{}\"\n",
            ANSWER_WITHIN.as_secs(),
            r.url
        ),
    )
    .unwrap();
    let d = Daemon::start(&["--config", file.to_str().unwrap()]);
    // Answered messages in another chat are no news.
    post(
        &d,
        &json!([
            {"kind": "message_received", "channel": "whatsapp", "chat_jid": "work@g.us",
             "message_id": "w1", "timestamp": chrono::Utc::now().to_rfc3339()},
            {"kind": "batch_dispatched", "chat_jid": "work@g.us", "message_ids": ["w1"]},
        ]),
    );
    random_phase(Duration::from_secs(1));
    let sent = Instant::now();
    post(
        &d,
        &json!({"kind": "message_received", "channel": "whatsapp", "chat_jid": CHAT,
                "message_id": "m1", "timestamp": chrono::Utc::now().to_rfc3339()}),
    );
    let fault = sent + ANSWER_WITHIN;
    r.wait_for(Duration::from_secs(30), |g| {
        texts(g).iter().any(|t| firing(t))
    });
    let at = Instant::now();
    let ttk = if at >= fault {
        (at - fault).as_secs_f64() * 1e3
    } else {
        -((fault - at).as_secs_f64() * 1e3)
    };
    let s = status(&d);
    let flow = &s["sections"]["flow"];
    assert_eq!(flow["unanswered_chats"], 1, "{s}");
    assert_eq!(flow["chats"][CHAT]["over_limit"], true, "{s}");
    assert_eq!(flow["channels"]["whatsapp"]["unanswered"], 1, "{s}");
    assert_eq!(s["section_status"]["flow"], "warn", "{s}");
    // A few more rounds: the alert is not sent again while the message waits.
    std::thread::sleep(Duration::from_secs(3));
    post(
        &d,
        &json!({"kind": "bot_response", "chat_jid": CHAT,
                "timestamp": chrono::Utc::now().to_rfc3339()}),
    );
    let got = r.wait_for(Duration::from_secs(30), |g| {
        texts(g).iter().any(|t| t.starts_with("✅ resolved after "))
    });
    std::thread::sleep(Duration::from_secs(1));
    let t = texts(&r.received());
    assert_eq!(t.iter().filter(|x| firing(x)).count(), 1, "{t:?}");
    let resolved: Vec<&String> = t.iter().filter(|x| x.starts_with('✅')).collect();
    assert_eq!(resolved.len(), 1, "{t:?}");
    assert!(
        resolved[0].contains(&format!("in chat {CHAT} unanswered")),
        "{resolved:?}"
    );
    assert!(t.iter().all(|x| !x.contains("work@g.us")), "{t:?}");
    let body = got
        .iter()
        .find(|b| firing(b["text"].as_str().unwrap_or_default()));
    assert_eq!(body.unwrap()["key"], format!("unanswered:{CHAT}"));
    let s = status(&d);
    assert_eq!(s["sections"]["flow"]["unanswered_messages"], 0, "{s}");
    (
        ttk,
        Duration::from_secs(15),
        "1 round after answer_within (15 s)".into(),
    )
}

#[test]
fn a_message_nobody_answers_is_one_alert_and_its_answer_resolves_it() {
    let (ttk, bound, _) = unanswered_message();
    assert!(ttk <= bound.as_secs_f64() * 1e3, "{ttk} ms");
}

const CONFIRM_WITHIN: Duration = Duration::from_secs(2);

/// A host that reports its channel's confirmations sends a delivery that never gets one; a late
/// confirmation resolves it. Returns the time-to-know in ms from the moment the delivery had
/// waited `confirm_within` to the alert at the receiver (negative if early), its bound and words.
pub(crate) fn unconfirmed_delivery() -> (f64, Duration, String) {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("lookout.toml");
    std::fs::write(
        &file,
        format!(
            "[thresholds]\nconfirm_within = \"{}s\"\n\n[[notify.sinks]]\nkind = \"webhook\"\nurl = \"{}\"\n",
            CONFIRM_WITHIN.as_secs(),
            r.url
        ),
    )
    .unwrap();
    let d = Daemon::start(&["--config", file.to_str().unwrap()]);
    // The host's first confirmation: from here on every sent delivery expects one.
    post(
        &d,
        &json!([
            {"kind": "delivery_sent", "delivery_id": "d0", "chat_jid": CHAT},
            {"kind": "delivery_confirmed", "delivery_id": "d0", "chat_jid": CHAT},
        ]),
    );
    random_phase(Duration::from_secs(1));
    let sent = Instant::now();
    post(
        &d,
        &json!({"kind": "delivery_sent", "delivery_id": "d1", "chat_jid": CHAT}),
    );
    let fault = sent + CONFIRM_WITHIN;
    let want = format!("📪 1 delivery(ies) to chat {CHAT} sent but never confirmed for ");
    r.wait_for(Duration::from_secs(30), |g| {
        texts(g).iter().any(|t| t.starts_with(&want))
    });
    let at = Instant::now();
    let ttk = if at >= fault {
        (at - fault).as_secs_f64() * 1e3
    } else {
        -((fault - at).as_secs_f64() * 1e3)
    };
    let s = status(&d);
    assert_eq!(s["sections"]["flow"]["unconfirmed_deliveries"], 1, "{s}");
    post(
        &d,
        &json!({"kind": "delivery_confirmed", "delivery_id": "d1", "chat_jid": CHAT}),
    );
    r.wait_for(Duration::from_secs(30), |g| {
        texts(g).iter().any(|t| t.starts_with("✅ resolved after "))
    });
    let t = texts(&r.received());
    assert_eq!(
        t.iter().filter(|x| x.starts_with(&want)).count(),
        1,
        "{t:?}"
    );
    (
        ttk,
        Duration::from_secs(15),
        "1 round after confirm_within (15 s)".into(),
    )
}

#[test]
fn a_delivery_never_confirmed_is_one_alert_and_its_late_confirmation_resolves_it() {
    let (ttk, bound, _) = unconfirmed_delivery();
    eprintln!("unconfirmed delivery known {ttk:.0} ms after confirm_within");
    assert!(ttk <= bound.as_secs_f64() * 1e3, "{ttk} ms");
}
