//! The interrupted-run scan, at start-up and on an interval: one alert per chat when it becomes
//! stale (again, if a newer batch goes stale), not one per scan.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_crash_detect::{StaleFinding, StaleScanner};
use lookout_store::Store;

use lookout_notify::{Outbox, Severity};

use crate::alerts;

pub(crate) struct StaleWatch {
    threshold: std::sync::RwLock<Duration>,
    outbox: std::sync::Arc<Outbox>,
    /// chat → the dispatch time of the oldest stale message already alerted.
    alerted: tokio::sync::Mutex<HashMap<String, DateTime<Utc>>>,
}

impl StaleWatch {
    pub(crate) fn new(threshold: Duration, outbox: std::sync::Arc<Outbox>) -> Self {
        StaleWatch {
            threshold: std::sync::RwLock::new(threshold),
            outbox,
            alerted: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn threshold(&self) -> Duration {
        *self.threshold.read().unwrap_or_else(|p| p.into_inner())
    }

    /// A configuration reload changed the threshold.
    pub(crate) fn set_threshold(&self, threshold: Duration) {
        *self.threshold.write().unwrap_or_else(|p| p.into_inner()) = threshold;
    }

    /// Scans now; alerts for chats newly stale. Detection only: nothing is requeued.
    pub(crate) async fn scan(
        &self,
        store: &Store,
    ) -> lookout_crash_detect::Result<Vec<StaleFinding>> {
        let findings = StaleScanner::new(store, self.threshold())
            .scan(Utc::now())
            .await?;
        let mut alerted = self.alerted.lock().await;
        for f in &findings {
            if alerted.get(&f.chat.chat_jid) != Some(&f.chat.oldest_started_at) {
                alerts::raise(
                    &self.outbox,
                    &format!("interrupted_run:{}", f.chat.chat_jid),
                    Severity::Warning,
                    &f.message(),
                    serde_json::to_value(f).unwrap_or_default(),
                )
                .await;
                alerted.insert(f.chat.chat_jid.clone(), f.chat.oldest_started_at);
            }
        }
        alerted.retain(|chat, _| {
            let still = findings.iter().any(|f| &f.chat.chat_jid == chat);
            if !still {
                tracing::info!(chat_jid = %chat, "interrupted run resolved: no stale messages left in the chat");
            }
            still
        });
        Ok(findings)
    }

    /// Scans at start-up and then every `every`, until the process ends; each scan first applies the
    /// events not yet projected, so it judges what the host has reported.
    pub(crate) async fn run(
        self: std::sync::Arc<Self>,
        store: Store,
        every: Duration,
        projector: std::sync::Arc<crate::projector::Projector>,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = projector.catch_up(&store).await {
                tracing::error!(error = %e, "cannot apply new events before the stale scan; scanning what is applied");
            }
            if let Err(e) = self.scan(&store).await {
                tracing::error!(error = %e, "stale scan failed");
            }
        }
    }
}
