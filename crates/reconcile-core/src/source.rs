//! Where the driver reads the log and keeps its state: [`EventSource`], implemented for
//! [`lookout_store::Store`] (and by tests' fakes).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lookout_store::{Store, StoredEvent};

use crate::error::ReconcileError;

/// The event log and a small key/value space for the driver's cursor and state.
#[async_trait]
pub trait EventSource: Send + Sync {
    /// Up to `limit` events with seq greater than `cursor`, in seq order.
    async fn events_after(
        &self,
        cursor: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, ReconcileError>;
    /// Up to `limit` events with `from <= at < to` and seq greater than `after`, in seq order.
    async fn events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, ReconcileError>;
    /// The highest seq in the log (0: empty).
    async fn latest_seq(&self) -> Result<i64, ReconcileError>;
    /// The value saved under `key`.
    async fn load(&self, key: &str) -> Result<Option<String>, ReconcileError>;
    /// Saves `value` under `key` (atomically replacing it).
    async fn save(&self, key: &str, value: &str) -> Result<(), ReconcileError>;
}

#[async_trait]
impl EventSource for Store {
    async fn events_after(
        &self,
        cursor: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, ReconcileError> {
        Ok(Store::events_after(self, cursor, limit).await?)
    }

    async fn events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, ReconcileError> {
        Ok(Store::events_between(self, from, to, after, limit).await?)
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
