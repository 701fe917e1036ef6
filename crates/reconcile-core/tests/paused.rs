//! The driver on tokio's paused clock (an in-memory log: sqlx's own timeouts would fire on a
//! paused clock).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use lookout_reconcile_core::host::{Action, HostModel};
use lookout_reconcile_core::{AlertState, Driver, DriverConfig, TokioClock};
use serde_json::json;

/// Two hours of ticks: the violation is handed over on every tick while it holds; its alert
/// begins once and ends once (no hourly re-send: reminders are the host lifecycle's), and the
/// lifecycle stand-in fires once and resolves once.
#[tokio::test(start_paused = true)]
async fn a_violation_is_handed_over_every_tick_and_begins_and_ends_once() {
    let src = Arc::new(MemSource::default());
    let fx = Arc::new(FakeEffects::default());
    src.push(ev(
        t0(),
        "delivery_queued",
        json!({"delivery_id": "d1", "chat_jid": "c1"}),
    ));
    let mut d = Driver::new(
        HostModel::default(),
        SharedSource(src.clone()),
        fx.clone(),
        TokioClock::starting_at(t0()),
        DriverConfig::default(),
    );
    let mut alerts = Vec::new();
    let mut holding = 0;
    // Two hours of ticks every 10 s.
    for _ in 0..(2 * 360) {
        let r = d.tick().await.unwrap();
        alerts.extend(r.executed.into_iter().filter_map(|a| match a {
            Action::Alert(a) => Some(a),
            _ => None,
        }));
        // Every tick hands over exactly what holds.
        let keys: Vec<String> = r.violations.iter().map(|v| v.alert_key()).collect();
        assert_eq!(fx.handed_keys(-1), keys);
        holding += usize::from(!keys.is_empty());
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    assert_eq!(fx.hand_overs(), 2 * 360);
    // Pending for more than 5m (delivery_pending): handed over on every tick after the one at
    // 5m (ticks at 0, 10 s, … 5m do not see it).
    assert_eq!(holding, 2 * 360 - 31);
    // Begun once, at 5m; never re-sent.
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].invariant, "I4");
    assert_eq!((alerts[0].state, alerts[0].send), (AlertState::Firing, 1));
    src.push(ev(
        t0() + TimeDelta::hours(2),
        "delivery_sent",
        json!({"delivery_id": "d1", "chat_jid": "c1"}),
    ));
    let mut resolved = 0;
    for _ in 0..10 {
        let r = d.tick().await.unwrap();
        resolved += r
            .executed
            .iter()
            .filter(|a| matches!(a, Action::Alert(x) if x.state == AlertState::Resolved))
            .count();
        assert_eq!(fx.handed_keys(-1), Vec::<String>::new(), "cleared");
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    assert_eq!(resolved, 1);
    assert_eq!(
        fx.keys().len(),
        2,
        "one firing, one resolved: {:?}",
        fx.texts()
    );
}

#[tokio::test(start_paused = true)]
async fn run_ticks_on_its_interval_until_shutdown() {
    let src = Arc::new(MemSource::default());
    let fx = Arc::new(FakeEffects::default());
    let d = Driver::new(
        HostModel::default(),
        SharedSource(src.clone()),
        fx.clone(),
        TokioClock::starting_at(t0()),
        DriverConfig::default(),
    );
    let metrics = d.metrics().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(d.run(Duration::from_secs(5), async {
        let _ = rx.await;
    }));
    src.push(ev(
        t0(),
        "messages_recovered",
        json!({"channel": "wa", "message_ids": ["x1"], "group": "family"}),
    ));
    tokio::time::sleep(Duration::from_secs(30)).await;
    tx.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(
        fx.texts(),
        [
            "mark ProcessRecovered { channel: \"wa\", chat_jid: None, group: \"family\", message_ids: [\"x1\"], seq: 1 }",
            "notify family: Recovered 1 missed message(s) from #wa — processing now."
        ]
    );
    let mut reg = prometheus_client::registry::Registry::default();
    metrics.register(&mut reg);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    // Ticks at 0, 5, … 25 s (and perhaps 30 s, racing the shutdown).
    assert!(
        text.contains("lookout_reconcile_ticks_total 6")
            || text.contains("lookout_reconcile_ticks_total 7"),
        "{text}"
    );
}

use chrono::TimeDelta;

/// An `Arc<MemSource>` as an `EventSource` (the test keeps a handle to push events).
struct SharedSource(Arc<MemSource>);

#[async_trait::async_trait]
impl lookout_reconcile_core::EventSource for SharedSource {
    async fn events_after(
        &self,
        c: i64,
        l: u32,
    ) -> Result<Vec<lookout_reconcile_core::LoggedEvent>, lookout_reconcile_core::ReconcileError>
    {
        self.0.events_after(c, l).await
    }
    async fn events_between(
        &self,
        f: chrono::DateTime<chrono::Utc>,
        t: chrono::DateTime<chrono::Utc>,
        a: i64,
        l: u32,
    ) -> Result<Vec<lookout_reconcile_core::LoggedEvent>, lookout_reconcile_core::ReconcileError>
    {
        self.0.events_between(f, t, a, l).await
    }
    async fn latest_seq(&self) -> Result<i64, lookout_reconcile_core::ReconcileError> {
        self.0.latest_seq().await
    }
    async fn load(
        &self,
        k: &str,
    ) -> Result<Option<String>, lookout_reconcile_core::ReconcileError> {
        self.0.load(k).await
    }
    async fn save(&self, k: &str, v: &str) -> Result<(), lookout_reconcile_core::ReconcileError> {
        self.0.save(k, v).await
    }
}
