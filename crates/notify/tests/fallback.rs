//! Sink fallback and dead letters, through the durable outbox to real webhook receivers on loopback,
//! on both stores. Time is driven by the `now` given to `deliver_due`: no test sleeps to prove a
//! timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use lookout_notify::sinks::{HttpFormat, HttpSink};
use lookout_notify::{Message, Notifier, Outbox, RetryPolicy, Route, Severity};
use lookout_store::Store;
use serde_json::Value;

/// A webhook receiver: records (Idempotency-Key, body); answers 500 while `failing`.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, Value)>>>,
    failing: Arc<Mutex<bool>>,
}

impl Receiver {
    fn set_failing(&self, failing: bool) {
        *self.failing.lock().unwrap() = failing;
    }

    fn got(&self) -> Vec<(String, Value)> {
        self.got.lock().unwrap().clone()
    }

    fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.got().into_iter().map(|(k, _)| k).collect();
        ids.sort();
        ids
    }
}

async fn hook(
    State(r): State<Receiver>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    if *r.failing.lock().unwrap() {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    r.got.lock().unwrap().push((key, body));
    StatusCode::OK
}

async fn receiver() -> (Receiver, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let r = Receiver::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(r.clone());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (r, url)
}

fn webhook(name: &str, url: &str) -> Arc<dyn Notifier> {
    Arc::new(HttpSink::new(
        name,
        url,
        HttpFormat::Json,
        Duration::from_secs(2),
    ))
}

const AFTER: Duration = Duration::from_secs(60);

/// `chat` (primary, falling back to `pager` after 60 s) and `pager`, whose own route only takes
/// the group `oncall`: what it gets here, it gets as the fallback.
fn outbox(store: &Store, chat: &str, pager: &str, retry: RetryPolicy) -> Outbox {
    Outbox::new(
        store.clone(),
        vec![
            (
                webhook("chat", chat),
                Route::all().with_fallback("pager", AFTER),
            ),
            (
                webhook("pager", pager),
                Route {
                    groups: Some(vec!["oncall".into()]),
                    min_severity: Severity::Info,
                    fallback: None,
                },
            ),
        ],
        retry,
    )
}

fn patient() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_secs(10),
        max: Duration::from_secs(60),
        max_attempts: 50,
    }
}

fn at(t0: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    t0 + chrono::Duration::seconds(secs)
}

async fn send(ob: &Outbox, text: &str) -> String {
    ob.send(Message::new(Severity::Critical, text).group("admin"))
        .await
        .unwrap()
        .unwrap()
}

async fn a_failing_primary_falls_back_and_loses_nothing(store: Store) {
    let (chat, chat_url) = receiver().await;
    let (pager, pager_url) = receiver().await;
    chat.set_failing(true);
    let ob = outbox(&store, &chat_url, &pager_url, patient());
    let m1 = send(&ob, "🔁 host is crash-looping").await;
    let t0 = Utc::now();

    // Failing, but not yet for longer than `fallback_after`: the fallback gets nothing.
    assert_eq!(ob.deliver_due(t0).await.unwrap().retrying, 1);
    let r = ob.deliver_due(at(t0, 30)).await.unwrap();
    assert_eq!((r.retrying, r.fallback, r.delivered), (1, 0, 0));
    assert!(pager.got().is_empty());
    let failing = ob.failing_sinks().await.unwrap();
    assert_eq!(failing.len(), 1);
    assert_eq!(failing[0].0, "chat");

    // Past it: the pending message also goes to the fallback, with the "primary failing" line.
    let r = ob.deliver_due(at(t0, 61)).await.unwrap();
    assert_eq!((r.fallback, r.delivered), (1, 1), "{r:?}");
    let got = pager.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, m1, "the same id, as Idempotency-Key");
    assert_eq!(got[0].1["id"], m1.as_str());
    assert_eq!(got[0].1["fallback_for"], "chat");
    assert_eq!(
        got[0].1["text"],
        "⚠️ primary sink `chat` failing for 1m — via fallback:\n🔁 host is crash-looping"
    );

    // A message sent while the primary is failing goes to the fallback in its first round.
    let m2 = send(&ob, "📭 delivery stuck on slack").await;
    let r = ob.deliver_due(at(t0, 70)).await.unwrap();
    assert_eq!(r.fallback, 1, "{r:?}");
    assert_eq!(pager.ids(), sorted(vec![m1.clone(), m2.clone()]));
    // Nothing is sent to the fallback twice.
    let r = ob.deliver_due(at(t0, 100)).await.unwrap();
    assert_eq!(r.fallback, 0);
    assert_eq!(pager.got().len(), 2);
    assert!(chat.got().is_empty());
    assert_eq!(
        store
            .recent_notifications(2)
            .await
            .unwrap()
            .iter()
            .map(|n| n.status.as_str())
            .collect::<Vec<_>>(),
        ["pending", "pending"],
        "still owed to the primary"
    );

    // The primary comes back: it receives every message it missed, with the same ids.
    chat.set_failing(false);
    let mut delivered = 0;
    for s in [200, 201] {
        delivered += ob.deliver_due(at(t0, s)).await.unwrap().delivered;
    }
    assert_eq!(delivered, 2);
    assert_eq!(chat.ids(), sorted(vec![m1.clone(), m2.clone()]));
    let texts: Vec<String> = chat
        .got()
        .iter()
        .map(|(_, b)| b["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(texts.contains(&"🔁 host is crash-looping".to_owned()));
    assert!(
        chat.got()
            .iter()
            .all(|(_, b)| b.get("fallback_for").is_none()),
        "the primary gets the plain message"
    );
    assert!(ob.failing_sinks().await.unwrap().is_empty());
    let all = store.recent_notifications(10).await.unwrap();
    assert!(all.iter().all(|n| n.status == "delivered"), "{all:?}");
    // A receiver that took both drops the duplicate by id: the union is the two messages.
    let mut union = chat.ids();
    union.extend(pager.ids());
    union.sort();
    union.dedup();
    assert_eq!(union, sorted(vec![m1, m2]));
    assert_eq!(
        ob.deliver_due(at(t0, 400)).await.unwrap(),
        Default::default()
    );
}

async fn fallback_state_survives_a_restart(store: Store) {
    let (chat, chat_url) = receiver().await;
    let (pager, pager_url) = receiver().await;
    chat.set_failing(true);
    pager.set_failing(true);
    let (m1, t0) = {
        let ob = outbox(&store, &chat_url, &pager_url, patient());
        let m1 = send(&ob, "gateway down").await;
        let t0 = Utc::now();
        ob.deliver_due(t0).await.unwrap();
        ob.deliver_due(at(t0, 30)).await.unwrap();
        (m1, t0)
    };
    // lookoutd restarts: a new outbox over the same store. The primary's failing clock started at
    // t0, not at the restart: 61 s on, the message goes to the fallback (which fails too).
    {
        let ob = outbox(&store, &chat_url, &pager_url, patient());
        let r = ob.deliver_due(at(t0, 61)).await.unwrap();
        assert_eq!((r.fallback, r.delivered), (1, 0), "{r:?}");
    }
    // Another restart: the fallback delivery is stored, and goes out when the fallback is back.
    pager.set_failing(false);
    let ob = outbox(&store, &chat_url, &pager_url, patient());
    let r = ob.deliver_due(at(t0, 200)).await.unwrap();
    assert_eq!((r.fallback, r.delivered), (0, 1), "{r:?}");
    let got = pager.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, m1);
    assert!(
        got[0].1["text"]
            .as_str()
            .unwrap()
            .starts_with("⚠️ primary sink `chat` failing for 3m — via fallback:\n"),
        "{got:?}"
    );
    // And the primary, back, still gets it: nothing was taken from it.
    chat.set_failing(false);
    assert_eq!(ob.deliver_due(at(t0, 400)).await.unwrap().delivered, 1);
    assert_eq!(chat.ids(), vec![m1]);
    assert_eq!(
        store.recent_notifications(1).await.unwrap()[0].status,
        "delivered"
    );
}

async fn a_recovered_primary_gets_its_backlog_at_once(store: Store) {
    let (chat, chat_url) = receiver().await;
    let (_pager, pager_url) = receiver().await;
    chat.set_failing(true);
    // Long backoffs: without the backlog being brought forward, the older message would wait.
    let retry = RetryPolicy {
        base: Duration::from_secs(600),
        max: Duration::from_secs(3600),
        max_attempts: 50,
    };
    let ob = outbox(&store, &chat_url, &pager_url, retry);
    let old = send(&ob, "old").await;
    let t0 = Utc::now();
    ob.deliver_due(t0).await.unwrap(); // fails; next attempt at t0 + 10m
    chat.set_failing(false);
    let new = send(&ob, "new").await; // due now
    let r = ob.deliver_due(at(t0, 5)).await.unwrap();
    assert_eq!(r.delivered, 1, "{r:?}");
    assert_eq!(chat.ids(), vec![new.clone()]);
    // The success ended the failing spell: the old message is due at once, not in 10 minutes.
    let r = ob.deliver_due(at(t0, 6)).await.unwrap();
    assert_eq!(r.delivered, 1, "{r:?}");
    assert_eq!(chat.ids(), sorted(vec![old, new]));
}

async fn the_primary_taking_it_first_drops_the_pending_fallback_copy(store: Store) {
    let (chat, chat_url) = receiver().await;
    let (pager, pager_url) = receiver().await;
    chat.set_failing(true);
    pager.set_failing(true);
    let ob = outbox(&store, &chat_url, &pager_url, patient());
    let m = send(&ob, "disk full").await;
    let t0 = Utc::now();
    ob.deliver_due(t0).await.unwrap();
    let r = ob.deliver_due(at(t0, 61)).await.unwrap();
    assert_eq!((r.fallback, r.retrying), (1, 2), "both fail: {r:?}");
    // The primary is back; the fallback is not. Both are due at t0+90 s (the fallback's retry at
    // +71 s, the primary's at +81 s): the fallback fails again, the primary takes it.
    chat.set_failing(false);
    let r = ob.deliver_due(at(t0, 90)).await.unwrap();
    assert_eq!((r.retrying, r.delivered), (1, 1), "{r:?}");
    assert_eq!(chat.ids(), vec![m]);
    // The fallback's copy was dropped with it: the fallback back, it gets nothing, nothing is owed
    // and nothing is dead.
    pager.set_failing(false);
    assert_eq!(
        ob.deliver_due(at(t0, 600)).await.unwrap(),
        Default::default()
    );
    assert!(pager.got().is_empty());
    let n = &store.recent_notifications(1).await.unwrap()[0];
    assert_eq!(n.status, "delivered");
    assert!(ob.dead_letters(10).await.unwrap().is_empty());
}

async fn a_dead_letter_is_listed_counted_retried_and_delivered(store: Store) {
    let (r, url) = receiver().await;
    r.set_failing(true);
    let ob = Outbox::new(
        store.clone(),
        vec![(webhook("hook", &url), Route::all())],
        RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_attempts: 3,
        },
    );
    let mut registry = prometheus_client::registry::Registry::default();
    ob.metrics().register(&mut registry);
    let id = ob
        .send(
            Message::new(Severity::Warning, "never arrives")
                .key("channel_down:slack")
                .group("admin"),
        )
        .await
        .unwrap()
        .unwrap();
    let t0 = Utc::now();
    let mut dead = 0;
    for s in [0, 120, 240, 360] {
        dead += ob.deliver_due(at(t0, s)).await.unwrap().dead;
    }
    assert_eq!(dead, 1);

    // Listed, with what went wrong.
    let letters = ob.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let d = &letters[0];
    assert_eq!(d.id, id);
    assert_eq!(
        (d.key.as_deref(), d.group.as_deref(), d.severity),
        (Some("channel_down:slack"), Some("admin"), Severity::Warning)
    );
    assert_eq!(
        (d.text.as_str(), d.sink.as_str(), d.attempts),
        ("never arrives", "hook", 3)
    );
    assert!(
        d.last_error
            .as_deref()
            .unwrap_or("")
            .starts_with("HTTP 500"),
        "{d:?}"
    );
    assert_eq!(d.fallback_for, None);
    assert!(d.created_at <= Utc::now());
    // Counted.
    let m = ob.metrics();
    assert_eq!(
        (
            m.deliveries("hook", "retried"),
            m.deliveries("hook", "dead")
        ),
        (2, 1)
    );
    assert_eq!(m.dead_letters(), 1);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(r#"lookout_notify_deliveries_total{sink="hook",result="dead"} 1"#),
        "{text}"
    );
    assert!(text.contains("lookout_notify_dead_letters 1"), "{text}");
    // A new outbox (a restart) counts the dead letters in the store at its first round.
    let again = Outbox::new(
        store.clone(),
        vec![(webhook("hook", &url), Route::all())],
        RetryPolicy::default(),
    );
    again.deliver_due(at(t0, 361)).await.unwrap();
    assert_eq!(again.metrics().dead_letters(), 1);

    // Retried: pending again, due now, attempts reset; then delivered with the same id.
    assert_eq!(ob.retry_dead("no-such-id").await.unwrap(), 0);
    assert_eq!(ob.retry_dead(&id).await.unwrap(), 1);
    assert_eq!(ob.retry_dead(&id).await.unwrap(), 0, "no longer dead");
    assert_eq!(m.dead_letters(), 0);
    assert!(ob.dead_letters(10).await.unwrap().is_empty());
    let n = &store.recent_notifications(1).await.unwrap()[0];
    assert_eq!((n.status.as_str(), n.attempts), ("pending", 0));
    r.set_failing(false);
    let round = ob.deliver_due(Utc::now()).await.unwrap();
    assert_eq!(round.delivered, 1);
    assert_eq!(r.ids(), vec![id]);
    let n = &store.recent_notifications(1).await.unwrap()[0];
    assert_eq!((n.status.as_str(), n.attempts), ("delivered", 1));
    assert_eq!(m.deliveries("hook", "delivered"), 1);
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

lookout_store::store_tests!(
    a_failing_primary_falls_back_and_loses_nothing,
    fallback_state_survives_a_restart,
    a_recovered_primary_gets_its_backlog_at_once,
    the_primary_taking_it_first_drops_the_pending_fallback_copy,
    a_dead_letter_is_listed_counted_retried_and_delivered,
);
