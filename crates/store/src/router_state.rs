//! `router_state`: small key/value facts (last deploy sha and time, the reconciler's cursor, …).

use crate::error::{QueryContext, Result};
use crate::time::to_micros;
use crate::{Store, on_pool};

impl Store {
    /// The value stored under `key`, if any.
    pub async fn router_state_get(&self, key: &str) -> Result<Option<String>> {
        on_pool!(self, p => sqlx::query_scalar("SELECT value FROM router_state WHERE key = $1")
            .bind(key)
            .fetch_optional(p)
            .await)
        .context("reading router_state")
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub async fn router_state_set(&self, key: &str, value: &str) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO router_state (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(to_micros(&chrono::Utc::now()))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .context("writing router_state")?;
        Ok(())
    }

    /// Removes `key`; returns whether it was there.
    pub async fn router_state_delete(&self, key: &str) -> Result<bool> {
        let done = on_pool!(self, p => sqlx::query("DELETE FROM router_state WHERE key = $1")
            .bind(key)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .context("deleting from router_state")?;
        Ok(done == 1)
    }

    /// Every key and value, ordered by key.
    pub async fn router_state_all(&self) -> Result<Vec<(String, String)>> {
        on_pool!(self, p => sqlx::query_as("SELECT key, value FROM router_state ORDER BY key")
            .fetch_all(p)
            .await)
        .context("listing router_state")
    }
}
