//! Delivery through the durable outbox to a real webhook receiver on loopback, on both stores.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use lookout_notify::sinks::{FileSink, HttpFormat, HttpSink};
use lookout_notify::{Message, Notifier, Outbox, RetryPolicy, Route, Severity};
use lookout_store::Store;
use serde_json::Value;

/// A webhook receiver: records bodies and Idempotency-Key headers; answers 500 while `failing`.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, Value)>>>,
    failing: Arc<Mutex<bool>>,
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

async fn receiver_on(listener: tokio::net::TcpListener) -> Receiver {
    let r = Receiver::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(r.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    r
}

async fn receiver() -> (Receiver, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    (receiver_on(l).await, url)
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_secs(1),
        max: Duration::from_secs(60),
        max_attempts: 4,
    }
}

fn outbox(store: &Store, sinks: Vec<Arc<dyn Notifier>>) -> Outbox {
    Outbox::new(
        store.clone(),
        sinks.into_iter().map(|s| (s, Route::all())).collect(),
        policy(),
    )
}

fn webhook(url: &str, format: HttpFormat) -> Arc<dyn Notifier> {
    Arc::new(HttpSink::new("hook", url, format, Duration::from_secs(2)))
}

async fn a_webhook_receives_the_notification_with_its_id(store: Store) {
    let (r, url) = receiver().await;
    let ob = outbox(&store, vec![webhook(&url, HttpFormat::Json)]);
    let id = ob
        .send(
            Message::new(Severity::Critical, "🔁 host is crash-looping")
                .key("crash_loop:host")
                .group("admin"),
        )
        .await
        .unwrap()
        .unwrap();
    let round = ob.deliver_due(Utc::now()).await.unwrap();
    assert_eq!(round.delivered, 1);
    let got = r.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, id, "the id travels as Idempotency-Key");
    assert_eq!(got[0].1["id"], id);
    assert_eq!(got[0].1["text"], "🔁 host is crash-looping");
    assert_eq!(got[0].1["severity"], "critical");
    assert_eq!(got[0].1["group"], "admin");
    assert_eq!(got[0].1["key"], "crash_loop:host");
    assert_eq!(
        store.recent_notifications(1).await.unwrap()[0].status,
        "delivered"
    );
    // Nothing more to do.
    assert_eq!(ob.deliver_due(Utc::now()).await.unwrap().delivered, 0);
}

async fn a_failing_receiver_gets_it_once_after_it_recovers(store: Store) {
    let (r, url) = receiver().await;
    *r.failing.lock().unwrap() = true;
    let ob = outbox(&store, vec![webhook(&url, HttpFormat::Json)]);
    ob.send(Message::new(Severity::Warning, "delivery stuck"))
        .await
        .unwrap();
    let t0 = Utc::now();
    assert_eq!(ob.deliver_due(t0).await.unwrap().retrying, 1);
    // Not due again before its backoff (1 s after the first failure).
    assert_eq!(ob.deliver_due(t0).await.unwrap(), Default::default());
    *r.failing.lock().unwrap() = false;
    let round = ob
        .deliver_due(t0 + chrono::Duration::seconds(2))
        .await
        .unwrap();
    assert_eq!(round.delivered, 1);
    assert_eq!(r.got.lock().unwrap().len(), 1, "delivered once");
    let n = &store.recent_notifications(1).await.unwrap()[0];
    assert_eq!((n.status.as_str(), n.attempts), ("delivered", 2));
}

async fn a_receiver_that_is_down_then_up_gets_it(store: Store) {
    // Reserve a port, close it: connection refused until the receiver starts there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let ob = outbox(&store, vec![webhook(&url, HttpFormat::Json)]);
    ob.send(Message::new(
        Severity::Warning,
        "channel slack disconnected",
    ))
    .await
    .unwrap();
    let t0 = Utc::now();
    assert_eq!(ob.deliver_due(t0).await.unwrap().retrying, 1);
    let r = receiver_on(
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        ob.deliver_due(t0 + chrono::Duration::seconds(5))
            .await
            .unwrap()
            .delivered,
        1
    );
    assert_eq!(
        r.got.lock().unwrap()[0].1["text"],
        "channel slack disconnected"
    );
}

async fn after_the_last_attempt_it_is_a_dead_letter(store: Store) {
    let (r, url) = receiver().await;
    *r.failing.lock().unwrap() = true;
    let ob = outbox(&store, vec![webhook(&url, HttpFormat::Json)]);
    ob.send(Message::new(Severity::Warning, "never arrives"))
        .await
        .unwrap();
    let mut now = Utc::now();
    let mut rounds = Vec::new();
    for _ in 0..6 {
        rounds.push(ob.deliver_due(now).await.unwrap());
        now += chrono::Duration::seconds(120);
    }
    let dead: u32 = rounds.iter().map(|r| r.dead).sum();
    let retrying: u32 = rounds.iter().map(|r| r.retrying).sum();
    assert_eq!((retrying, dead), (3, 1), "{rounds:?}");
    let n = &store.recent_notifications(1).await.unwrap()[0];
    assert_eq!((n.status.as_str(), n.attempts), ("dead", 4));
}

async fn a_slack_sink_gets_text_and_blocks(store: Store) {
    let (r, url) = receiver().await;
    let ob = outbox(&store, vec![webhook(&url, HttpFormat::Slack)]);
    ob.send(Message::new(
        Severity::Info,
        "Recovered 3 missed message(s) from #general — processing now.",
    ))
    .await
    .unwrap();
    ob.deliver_due(Utc::now()).await.unwrap();
    let body = r.got.lock().unwrap()[0].1.clone();
    assert_eq!(
        body["text"],
        "Recovered 3 missed message(s) from #general — processing now."
    );
    assert_eq!(body["blocks"][0]["text"]["type"], "mrkdwn");
}

async fn repeats_are_deduplicated_and_routes_apply(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.jsonl");
    let (r, url) = receiver().await;
    let only_critical = Route {
        groups: None,
        min_severity: Severity::Critical,
        fallback: None,
    };
    let ob = Outbox::new(
        store.clone(),
        vec![
            (
                Arc::new(FileSink::new("file", &file)) as Arc<dyn Notifier>,
                Route::all(),
            ),
            (webhook(&url, HttpFormat::Json), only_critical),
        ],
        policy(),
    );
    for _ in 0..50 {
        ob.send(Message::new(Severity::Warning, "⚠️ slack flapping").key("channel_down:slack"))
            .await
            .unwrap();
    }
    ob.send(Message::new(Severity::Critical, "🔁 crash loop").key("crash_loop:host"))
        .await
        .unwrap();
    ob.deliver_due(Utc::now()).await.unwrap();
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "50 repeats are one message: {lines:?}");
    assert_eq!(
        r.got.lock().unwrap().len(),
        1,
        "the webhook only takes critical ones"
    );
}

async fn a_sinks_rate_limit_holds_back_and_never_drops(store: Store) {
    let (r, url) = receiver().await;
    let ob = outbox(&store, vec![webhook(&url, HttpFormat::Json)]).with_rate_limit(
        lookout_notify::RateLimit {
            max: 3,
            per: Duration::from_secs(60),
        },
    );
    for i in 0..10 {
        ob.send(Message::new(Severity::Warning, format!("flap {i}")).key(format!("k{i}")))
            .await
            .unwrap();
    }
    let t0 = Utc::now();
    let first = ob.deliver_due(t0).await.unwrap();
    assert_eq!(
        (first.delivered, first.postponed, first.retrying),
        (3, 7, 0)
    );
    // Inside the window nothing more goes out, and nothing is lost or counted as a failure.
    let mid = ob
        .deliver_due(t0 + chrono::Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(
        (mid.delivered, mid.postponed),
        (0, 0),
        "not due before the window frees"
    );
    let mut now = t0;
    let mut delivered = first.delivered;
    for _ in 0..4 {
        now += chrono::Duration::seconds(61);
        delivered += ob.deliver_due(now).await.unwrap().delivered;
    }
    assert_eq!(delivered, 10);
    let texts: Vec<String> = r
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| b["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts.len(), 10, "every message arrives, spread over time");
    let n = store.recent_notifications(10).await.unwrap();
    assert!(
        n.iter().all(|n| n.status == "delivered" && n.attempts == 1),
        "{n:?}"
    );
}

lookout_store::store_tests!(
    a_sinks_rate_limit_holds_back_and_never_drops,
    a_webhook_receives_the_notification_with_its_id,
    a_failing_receiver_gets_it_once_after_it_recovers,
    a_receiver_that_is_down_then_up_gets_it,
    after_the_last_attempt_it_is_a_dead_letter,
    a_slack_sink_gets_text_and_blocks,
    repeats_are_deduplicated_and_routes_apply,
);
