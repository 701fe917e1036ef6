//! Where the driver reads the log and keeps its state: [`EventSource`], which hands out the
//! crate's own [`LoggedEvent`] records (so the model depends on no store type).
//!
//! With the feature `store`, [`EventSource`] is implemented for `lookout_store::Store` (its
//! `StoredEvent`s become [`LoggedEvent`]s, its errors `ReconcileError::Store`); without it, the
//! crate does not depend on `lookout-store` at all, and a host supplies its own source (as the
//! tests' in-memory fakes do).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::ReconcileError;
use crate::model::LoggedEvent;

/// The event log and a small key/value space for the driver's cursor and state.
#[async_trait]
pub trait EventSource: Send + Sync {
    /// Up to `limit` events with seq greater than `cursor`, in seq order.
    async fn events_after(
        &self,
        cursor: i64,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>, ReconcileError>;
    /// Up to `limit` events with `from <= at < to` and seq greater than `after`, in seq order.
    async fn events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>, ReconcileError>;
    /// The highest seq in the log (0: empty).
    async fn latest_seq(&self) -> Result<i64, ReconcileError>;
    /// The value saved under `key`.
    async fn load(&self, key: &str) -> Result<Option<String>, ReconcileError>;
    /// Saves `value` under `key` (atomically replacing it).
    async fn save(&self, key: &str, value: &str) -> Result<(), ReconcileError>;
}

/// The store adapter (feature `store`).
#[cfg(feature = "store")]
mod store {
    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use lookout_store::{Store, StoredEvent};

    use super::EventSource;
    use crate::error::ReconcileError;
    use crate::model::LoggedEvent;

    impl From<StoredEvent> for LoggedEvent {
        fn from(e: StoredEvent) -> LoggedEvent {
            LoggedEvent {
                seq: e.seq,
                at: e.at,
                kind: e.kind,
                subject: e.subject,
                payload: e.payload,
            }
        }
    }

    fn logged(events: Vec<StoredEvent>) -> Vec<LoggedEvent> {
        events.into_iter().map(LoggedEvent::from).collect()
    }

    /// The log is the store's `events` table; the driver's state lives in `router_state`.
    #[async_trait]
    impl EventSource for Store {
        async fn events_after(
            &self,
            cursor: i64,
            limit: u32,
        ) -> Result<Vec<LoggedEvent>, ReconcileError> {
            Ok(logged(Store::events_after(self, cursor, limit).await?))
        }

        async fn events_between(
            &self,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
            after: i64,
            limit: u32,
        ) -> Result<Vec<LoggedEvent>, ReconcileError> {
            Ok(logged(
                Store::events_between(self, from, to, after, limit).await?,
            ))
        }

        async fn latest_seq(&self) -> Result<i64, ReconcileError> {
            Ok(self.latest_event_seq().await?)
        }

        async fn load(&self, key: &str) -> Result<Option<String>, ReconcileError> {
            Ok(self.router_state_get(key).await?)
        }

        async fn save(&self, key: &str, value: &str) -> Result<(), ReconcileError> {
            Ok(self.router_state_set(key, value).await?)
        }
    }
}
