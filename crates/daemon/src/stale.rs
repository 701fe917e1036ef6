//! The interrupted-run scan, at start-up and on an interval. Each scan hands the whole set of
//! stale chats to the alert lifecycle (rule `interrupted_run`, subject the chat): one alert per chat
//! while it stays stale, one "resolved" when it clears — also when it cleared while lookoutd was
//! down, since the lifecycle's state is in the store.

use std::time::Duration;

use chrono::Utc;
use lookout_crash_detect::{StaleFinding, StaleScanner};
use lookout_notify::Severity;
use lookout_notify::alerts::{Alert, Alerts};
use lookout_store::Store;

use crate::folding::rule;

pub(crate) struct StaleWatch {
    threshold: std::sync::RwLock<Duration>,
    alerts: std::sync::Arc<Alerts>,
}

impl StaleWatch {
    pub(crate) fn new(threshold: Duration, alerts: std::sync::Arc<Alerts>) -> Self {
        StaleWatch {
            threshold: std::sync::RwLock::new(threshold),
            alerts,
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
        let current = findings
            .iter()
            .map(|f| {
                Alert::new(
                    rule::INTERRUPTED_RUN,
                    f.chat.chat_jid.clone(),
                    Severity::Warning,
                    f.message(),
                )
            })
            .collect();
        for (key, outcome) in self
            .alerts
            .sync(rule::INTERRUPTED_RUN, current, Utc::now())
            .await
            .map_err(lookout_crash_detect::CrashDetectError::from)?
        {
            tracing::info!(alert = %key, ?outcome, "interrupted-run alert");
        }
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
        loop {
            if let Err(e) = projector.catch_up().await {
                tracing::error!(error = %e, "cannot apply new events before the stale scan; scanning what is applied");
            }
            if let Err(e) = self.scan(&store).await {
                tracing::error!(error = %e, "stale scan failed");
            }
            // Scan again after `every`, or sooner: the moment the next batch in flight crosses
            // the threshold, so the alert goes out then and not up to an interval later. Never
            // longer than the threshold itself, so a batch dispatched meanwhile is not missed.
            let threshold = self.threshold();
            let now = Utc::now();
            let mut wait = every.min(threshold);
            let cutoff =
                now - chrono::Duration::from_std(threshold).unwrap_or(chrono::Duration::MAX);
            if let Ok(Some(next)) = store.next_in_flight_since(cutoff).await {
                let due = next + chrono::Duration::from_std(threshold).unwrap_or_default();
                if let Ok(until) = (due - now).to_std() {
                    wait = wait.min(until + Duration::from_millis(5));
                }
            }
            tokio::time::sleep(wait).await;
        }
    }
}
