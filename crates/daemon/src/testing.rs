//! What the daemon's unit tests share: lookoutd's alerting (the outbox and the lifecycle as
//! `alerts::lifecycle` builds them) over a fresh SQLite store, delivering to a chat that records
//! every message.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use lookout_notify::alerts::Alerts;
use lookout_notify::{DeliveryError, Notifier, Outbox, Outgoing, RateLimit, RetryPolicy, Route};
use lookout_store::Store;
use lookout_store::testing::{TestDb, sqlite_test_db};
use serde_json::Value;

/// A sink that keeps every delivered message as (key, text, payload).
#[derive(Default)]
pub(crate) struct Chat(pub(crate) Mutex<Vec<(String, String, Value)>>);

#[async_trait::async_trait]
impl Notifier for Chat {
    fn name(&self) -> &str {
        "chat"
    }
    async fn deliver(&self, n: &Outgoing) -> Result<(), DeliveryError> {
        self.0.lock().unwrap().push((
            n.key.clone().unwrap_or_default(),
            n.text.clone(),
            n.payload.clone(),
        ));
        Ok(())
    }
}

/// lookoutd's alerting over a fresh SQLite store.
pub(crate) struct Alerting {
    pub(crate) store: Store,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) chat: Arc<Chat>,
    pub(crate) alerts: Arc<Alerts>,
    _db: TestDb,
}

impl Alerting {
    /// The outbox has no dedup window and no practical rate limit, so a second send of anything
    /// would show; the lifecycle is the daemon's, with `config`'s policy and fold table.
    pub(crate) async fn new(config: &lookout_config::Config) -> Alerting {
        let db = sqlite_test_db().await;
        let store = db.open().await;
        let chat = Arc::new(Chat::default());
        let outbox = Arc::new(
            Outbox::new(
                store.clone(),
                vec![(chat.clone() as Arc<dyn Notifier>, Route::all())],
                RetryPolicy::default(),
            )
            .with_dedup_window(Duration::ZERO)
            .with_rate_limit(RateLimit {
                max: 10_000,
                per: Duration::from_secs(1),
            }),
        );
        let alerts = crate::alerts::lifecycle(&store, outbox.clone(), config);
        Alerting {
            store,
            outbox,
            chat,
            alerts,
            _db: db,
        }
    }

    /// Delivers what is due; the (key, text, payload) of each message sent since the last call.
    pub(crate) async fn sent(&self) -> Vec<(String, String, Value)> {
        self.outbox
            .deliver_due(Utc::now() + chrono::Duration::days(30))
            .await
            .unwrap();
        std::mem::take(&mut *self.chat.0.lock().unwrap())
    }
}
