use chrono::TimeZone;
use lookout_common::ManualClock;
use lookout_store::NewEvent;

use super::*;
use crate::testing::Alerting;

/// Monday 2026-11-02 08:00 UTC.
fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap()
}

fn mins(m: i64) -> DateTime<Utc> {
    base() + TimeDelta::minutes(m)
}

fn config(text: &str) -> lookout_config::Config {
    lookout_config::parse(text, "test.toml").unwrap()
}

async fn append(store: &Store, kind: &str, at: DateTime<Utc>, payload: serde_json::Value) {
    store
        .append_events(&[NewEvent::new(kind, payload).at(at)])
        .await
        .unwrap();
}

async fn message(store: &Store, chat: &str, id: &str, at: DateTime<Utc>) {
    append(
        store,
        "message_received",
        at,
        json!({"channel": "slack", "chat_jid": chat, "message_id": id, "timestamp": at.to_rfc3339()}),
    )
    .await;
}

fn texts(sent: &[(String, String, serde_json::Value)]) -> Vec<&str> {
    sent.iter().map(|(_, t, _)| t.as_str()).collect()
}

#[tokio::test]
async fn an_unanswered_chat_fires_once_and_its_answer_resolves_it_across_a_restart() {
    let config = config("[thresholds]\nanswer_within = \"2m\"\n");
    let a = Alerting::new(&config).await;
    let limits = limits(&config);
    let mut w = FlowWatch::load(a.store.clone(), a.alerts.clone(), limits.clone(), mins(-10)).await;
    message(&a.store, "c1", "m1", mins(0)).await;
    w.round(mins(1)).await.unwrap();
    assert!(a.sent().await.is_empty(), "not yet: 1m of 2m");
    // The loop is told when to look again: the moment the wait crosses answer_within.
    assert_eq!(w.round(mins(1)).await.unwrap(), Some(mins(2)));
    w.round(mins(2)).await.unwrap();
    let sent = a.sent().await;
    assert_eq!(
        texts(&sent),
        ["💬 1 message(s) in chat c1 unanswered for 2m"]
    );
    assert_eq!(sent[0].0, "unanswered:c1");
    assert_eq!(sent[0].2["channel"], "slack", "{}", sent[0].2);
    // Still waiting: the text follows, nothing is sent again.
    w.round(mins(3)).await.unwrap();
    assert!(a.sent().await.is_empty());
    w.save(mins(3)).await.unwrap();
    drop(w);

    // A restart: the model and its cursor come back; the message is not applied twice, and
    // nothing is judged (nor resolved) within the start's grace.
    let mut w = FlowWatch::load(a.store.clone(), a.alerts.clone(), limits, mins(3)).await;
    w.round(mins(3) + TimeDelta::seconds(10)).await.unwrap();
    assert_eq!(w.lock().flow.chats["c1"].count, 1);
    assert!(a.sent().await.is_empty());
    let firing = a.store.alerts_firing(rule::UNANSWERED).await.unwrap();
    assert_eq!(firing.len(), 1, "still firing through the restart");
    append(
        &a.store,
        "bot_response",
        mins(5),
        json!({"chat_jid": "c1", "timestamp": mins(5).to_rfc3339()}),
    )
    .await;
    w.round(mins(5)).await.unwrap();
    let sent = a.sent().await;
    assert_eq!(texts(&sent).len(), 1, "{sent:?}");
    assert!(
        sent[0]
            .1
            .starts_with("✅ resolved after 3m: 💬 1 message(s) in chat c1"),
        "{}",
        sent[0].1
    );
    w.round(mins(6)).await.unwrap();
    assert!(a.sent().await.is_empty());
}

#[tokio::test]
async fn a_first_start_learns_from_the_log_and_forgets_old_waits() {
    let config = config("");
    let a = Alerting::new(&config).await;
    message(&a.store, "old", "m1", mins(-3 * 24 * 60)).await;
    message(&a.store, "new", "m2", mins(-5)).await;
    let mut w = FlowWatch::load(a.store.clone(), a.alerts.clone(), limits(&config), mins(-1)).await;
    w.round(mins(0)).await.unwrap();
    let s = w.lock();
    assert_eq!(s.flow.chats.keys().collect::<Vec<_>>(), ["new"]);
    assert_eq!(s.flow.channels["slack"].inbound_count(), 2, "both learned");
}

#[tokio::test]
async fn a_quiet_channel_is_raised_shown_measured_and_resolved() {
    let config = config(
        "[thresholds]\nanswer_within = \"0s\"\n\n\
         [flow]\nquiet_floor = \"10m\"\nmin_history = \"1h\"\nmin_slot_messages = 1\n",
    );
    let a = Alerting::new(&config).await;
    // A Monday of a message every 3 minutes from 08:00 to 14:00; the next Monday they stop
    // at 10:00, in the middle of the hours it knows.
    for i in 0..120 {
        message(&a.store, "c1", &format!("m{i}"), mins(i * 3)).await;
    }
    let week = 7 * 24 * 60;
    for i in 0..40 {
        message(&a.store, "c1", &format!("n{i}"), mins(week + i * 3)).await;
    }
    let last = mins(week + 39 * 3);
    let mut registry = Registry::default();
    let mut w = FlowWatch::load(a.store.clone(), a.alerts.clone(), limits(&config), base()).await;
    w.metrics.register(&mut registry);
    w.round(last + TimeDelta::minutes(10)).await.unwrap();
    assert!(a.sent().await.is_empty(), "10m: 3 or 4 usual gaps, under 6");
    let mut at = last + TimeDelta::minutes(10);
    let sent = loop {
        at += TimeDelta::seconds(15);
        w.round(at).await.unwrap();
        let sent = a.sent().await;
        if !sent.is_empty() {
            break sent;
        }
        assert!(at - last <= TimeDelta::minutes(19), "no alert by {at}");
    };
    assert!(at - last >= TimeDelta::minutes(18), "{:?}", at - last);
    assert_eq!(sent[0].0, "channel_quiet:slack");
    assert_eq!(
        sent[0].1,
        format!(
            "📭 #slack quiet for {}m (usually a message every 3m)",
            (at - last).num_minutes()
        )
    );
    // /status and /metrics say so.
    let section = w.section(Arc::new(ManualClock::new(at)));
    let c = section.collect().await.unwrap();
    assert_eq!(c.data["quiet_channels"], 1, "{}", c.data);
    assert_eq!(c.data["channels"]["slack"]["usual_gap_seconds"], 180.0);
    assert_eq!(c.data["channels"]["slack"]["learning"], false);
    assert_eq!(c.findings.len(), 1);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("lookout_flow_channel_quiet{channel=\"slack\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("lookout_flow_channel_usual_gap_seconds{channel=\"slack\"} 180"),
        "{text}"
    );
    // `lookout doctor` reads the saved model.
    w.save(at).await.unwrap();
    let check = doctor(&a.store, &config, at).await.unwrap();
    assert_eq!(check.status, "warn", "{check:?}");
    assert!(
        check.detail.starts_with("📭 #slack quiet for "),
        "{check:?}"
    );
    // A message: resolved once.
    message(&a.store, "c1", "back", at + TimeDelta::minutes(1)).await;
    w.round(at + TimeDelta::minutes(1)).await.unwrap();
    let sent = a.sent().await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.starts_with("✅ resolved after "), "{}", sent[0].1);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("lookout_flow_channel_quiet{channel=\"slack\"} 0"),
        "{text}"
    );
}

#[tokio::test]
async fn a_delivery_sent_and_never_confirmed_fires_once_its_confirmation_resolves_it() {
    let config = config("[thresholds]\nconfirm_within = \"2m\"\n");
    let a = Alerting::new(&config).await;
    let mut w = FlowWatch::load(
        a.store.clone(),
        a.alerts.clone(),
        limits(&config),
        mins(-10),
    )
    .await;
    let sent = |id: &'static str, at| {
        let store = a.store.clone();
        async move {
            append(
                &store,
                "delivery_sent",
                at,
                json!({"delivery_id": id, "chat_jid": "c1"}),
            )
            .await
        }
    };
    // A host that has never confirmed a delivery is not judged on its sends.
    sent("d0", mins(0)).await;
    w.round(mins(5)).await.unwrap();
    assert!(a.sent().await.is_empty());
    // Its first confirmation turns the check on for the deliveries after it.
    append(
        &a.store,
        "delivery_confirmed",
        mins(5),
        json!({"delivery_id": "d0", "chat_jid": "c1"}),
    )
    .await;
    sent("d1", mins(6)).await;
    sent("d2", mins(6)).await;
    assert_eq!(
        w.round(mins(7)).await.unwrap(),
        Some(mins(8)),
        "woken when d1 crosses the limit"
    );
    w.round(mins(8)).await.unwrap();
    let got = a.sent().await;
    assert_eq!(
        texts(&got),
        ["📪 2 delivery(ies) to chat c1 sent but never confirmed for 2m"]
    );
    assert_eq!(got[0].0, "unconfirmed:c1");
    let section = w
        .section(std::sync::Arc::new(ManualClock::new(mins(8))))
        .collect()
        .await
        .unwrap();
    assert_eq!(
        section.data["unconfirmed_deliveries"], 2,
        "{}",
        section.data
    );
    assert_eq!(section.findings.len(), 1);
    // One confirmed: still one waiting, the alert stays; both: resolved once.
    append(
        &a.store,
        "delivery_confirmed",
        mins(9),
        json!({"delivery_id": "d1", "chat_jid": "c1"}),
    )
    .await;
    w.round(mins(9)).await.unwrap();
    assert!(a.sent().await.is_empty());
    append(
        &a.store,
        "delivery_confirmed",
        mins(10),
        json!({"delivery_id": "d2", "chat_jid": "c1"}),
    )
    .await;
    w.round(mins(10)).await.unwrap();
    let got = a.sent().await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].1.starts_with("✅ resolved after 2m"), "{got:?}");
}
