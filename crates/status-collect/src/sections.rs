//! The sections Lookout collects from its store and from [`StatusDeps`](crate::StatusDeps).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_store::Store;
use serde_json::json;

use crate::{CollectError, Collected, Collector, Finding, StatusDeps, human_age};

fn age(now: DateTime<Utc>, t: DateTime<Utc>) -> chrono::Duration {
    now - t
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// `service`: version, start time, uptime, shutting down.
pub struct ServiceSection {
    /// The daemon's (or host's) version.
    pub version: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// What the host knows.
    pub deps: Arc<dyn StatusDeps>,
}

#[async_trait::async_trait]
impl Collector for ServiceSection {
    fn name(&self) -> &'static str {
        "service"
    }

    async fn collect(&self) -> Result<Collected, CollectError> {
        let shutting_down = self.deps.is_shutting_down().await;
        let c = Collected::new(json!({
            "status": if shutting_down { "shutting_down" } else { "ok" },
            "version": self.version,
            "started_at": self.started_at.to_rfc3339(),
            "uptime_seconds": (Utc::now() - self.started_at).num_seconds().max(0),
        }));
        Ok(if shutting_down {
            c.with(Finding::warn("service is shutting down"))
        } else {
            c
        })
    }
}

/// `channels`: each channel's connection; down longer than `channel_down` fails.
pub struct ChannelsSection {
    /// Where channel states come from.
    pub deps: Arc<dyn StatusDeps>,
    /// How long a channel may be down before it is a failure.
    pub channel_down: Duration,
}

#[async_trait::async_trait]
impl Collector for ChannelsSection {
    fn name(&self) -> &'static str {
        "channels"
    }

    async fn collect(&self) -> Result<Collected, CollectError> {
        let now = Utc::now();
        let channels = self.deps.channels().await?;
        let mut c = Collected::new(serde_json::to_value(&channels).map_err(|e| e.to_string())?);
        for (name, st) in &channels {
            if st.connected {
                continue;
            }
            let down_for = st.since.map(|s| age(now, s));
            let text = match down_for {
                Some(d) => format!("channel {name} disconnected for {}", human_age(d)),
                None => format!("channel {name} disconnected"),
            };
            c = c.with(if down_for.is_some_and(|d| d > chrono(self.channel_down)) {
                Finding::fail(text)
            } else {
                Finding::warn(text)
            });
        }
        Ok(c)
    }
}

/// `messages`: totals, last received and sent, deliveries pending (and for too long), messages in
/// flight (and for too long: an interrupted run).
pub struct MessagesSection {
    /// The store.
    pub store: Store,
    /// A delivery pending longer than this is stuck.
    pub delivery_pending: Duration,
    /// Messages in flight longer than this belong to an interrupted run.
    pub stale_processing: Duration,
}

#[async_trait::async_trait]
impl Collector for MessagesSection {
    fn name(&self) -> &'static str {
        "messages"
    }

    async fn collect(&self) -> Result<Collected, CollectError> {
        let now = Utc::now();
        let (m, d) = tokio::try_join!(
            self.store.message_stats(),
            self.store.delivery_stats(now, self.delivery_pending)
        )
        .map_err(|e| e.to_string())?;
        let stale = self
            .store
            .stale_in_flight(now - chrono(self.stale_processing))
            .await
            .map_err(|e| e.to_string())?;
        let stale_count: i64 = stale.iter().map(|s| s.count).sum();
        let mut c = Collected::new(json!({
            "total_inbound": m.total_inbound,
            "total_outbound": m.total_outbound,
            "last_received_at": m.last_received_at.map(|t| t.to_rfc3339()),
            "last_sent_at": m.last_sent_at.map(|t| t.to_rfc3339()),
            "pending_deliveries": d.pending,
            "pending_deliveries_too_long": d.pending_too_long,
            "failed_deliveries": d.failed,
            "in_flight": m.in_flight,
            "in_flight_too_long": stale_count,
        }));
        if d.pending_too_long > 0 {
            c = c.with(Finding::warn(format!(
                "{} deliveries pending for more than {}",
                d.pending_too_long,
                human_age(chrono(self.delivery_pending))
            )));
        }
        for s in &stale {
            c = c.with(Finding::warn(format!(
                "{} message(s) in chat {} in flight for {} with no response",
                s.count,
                s.chat_jid,
                human_age(age(now, s.oldest_started_at))
            )));
        }
        Ok(c)
    }
}

/// `boot`: per service, its latest start and whether it failed.
pub struct BootSection {
    /// The store.
    pub store: Store,
    /// The services to report; `None` for every service with a boot record.
    pub services: Option<Vec<String>>,
}

#[async_trait::async_trait]
impl Collector for BootSection {
    fn name(&self) -> &'static str {
        "boot"
    }

    async fn collect(&self) -> Result<Collected, CollectError> {
        let mut data = serde_json::Map::new();
        let mut c = Collected::new(json!({}));
        let services = match &self.services {
            Some(s) => s.clone(),
            None => self
                .store
                .boot_services()
                .await
                .map_err(|e| e.to_string())?,
        };
        for service in &services {
            let attempts = self
                .store
                .boot_attempts(service, 20)
                .await
                .map_err(|e| e.to_string())?;
            let Some(latest) = attempts.first() else {
                continue;
            };
            let failed_in_a_row = attempts
                .iter()
                .take_while(|a| a.outcome == lookout_store::BootOutcome::Failed)
                .count();
            let last_ready = attempts
                .iter()
                .find(|a| a.outcome == lookout_store::BootOutcome::Ready);
            data.insert(
                service.clone(),
                json!({
                    "latest": latest.outcome,
                    "latest_started_at": latest.started_at.to_rfc3339(),
                    "last_ready_at": last_ready.and_then(|a| a.ended_at).map(|t| t.to_rfc3339()),
                    "failed_in_a_row": failed_in_a_row,
                    "last_cause": attempts.iter().find_map(|a| a.cause.clone()),
                }),
            );
            if failed_in_a_row > 0 {
                c = c.with(Finding::fail(format!(
                    "{service}: {failed_in_a_row} failed start(s) since its last ready{}",
                    latest
                        .cause
                        .as_ref()
                        .map(|x| format!(" (last: {x})"))
                        .unwrap_or_default()
                )));
            }
        }
        c.data = serde_json::Value::Object(data);
        Ok(c)
    }
}

/// `notifications`: deliveries pending and dead letters.
pub struct NotificationsSection {
    /// The store.
    pub store: Store,
}

#[async_trait::async_trait]
impl Collector for NotificationsSection {
    fn name(&self) -> &'static str {
        "notifications"
    }

    async fn collect(&self) -> Result<Collected, CollectError> {
        let (pending, dead) = tokio::try_join!(
            self.store.pending_delivery_count(),
            self.store.dead_notification_count()
        )
        .map_err(|e| e.to_string())?;
        let c = Collected::new(json!({"pending_deliveries": pending, "dead_letters": dead}));
        Ok(if dead > 0 {
            c.with(Finding::warn(format!(
                "{dead} notification(s) could not be delivered (dead letters)"
            )))
        } else {
            c
        })
    }
}
