//! `boot_attempts`: every start of a supervised service and how it ended.

use crate::error::{QueryContext, Result};
use crate::time::{Timestamp, from_micros, to_micros};
use crate::{Store, on_pool};

/// How a start ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootOutcome {
    /// It never reached ready.
    Failed,
    /// It reached ready.
    Ready,
}

/// One start of a service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BootAttempt {
    /// The service.
    pub service: String,
    /// Its pid, when known.
    pub pid: Option<i64>,
    /// Its version, when known.
    pub version: Option<String>,
    /// When it began.
    pub started_at: Timestamp,
    /// How it ended.
    pub outcome: BootOutcome,
    /// When the end was seen (ready, or the failure detected).
    pub ended_at: Option<Timestamp>,
    /// Why it failed, when known.
    pub cause: Option<String>,
}

impl Store {
    /// Records one start and its outcome.
    pub async fn record_boot_attempt(&self, a: &BootAttempt) -> Result<()> {
        let outcome = match a.outcome {
            BootOutcome::Failed => "failed",
            BootOutcome::Ready => "ready",
        };
        on_pool!(self, p => sqlx::query(
            "INSERT INTO boot_attempts (service, pid, version, started_at, outcome, ended_at, cause, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&a.service)
        .bind(a.pid)
        .bind(&a.version)
        .bind(to_micros(&a.started_at))
        .bind(outcome)
        .bind(a.ended_at.as_ref().map(to_micros))
        .bind(&a.cause)
        .bind(to_micros(&chrono::Utc::now()))
        .execute(p)
        .await
        .map(|_| ()))
        .context("recording a boot attempt")
    }

    /// The latest `limit` starts of a service, newest first.
    pub async fn boot_attempts(&self, service: &str, limit: u32) -> Result<Vec<BootAttempt>> {
        type Row = (
            String,
            Option<i64>,
            Option<String>,
            i64,
            String,
            Option<i64>,
            Option<String>,
        );
        let rows: Vec<Row> = on_pool!(self, p => sqlx::query_as(
            "SELECT service, pid, version, started_at, outcome, ended_at, cause FROM boot_attempts \
             WHERE service = $1 ORDER BY started_at DESC, id DESC LIMIT $2",
        )
        .bind(service)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)
        .context("reading boot attempts")?;
        Ok(rows
            .into_iter()
            .map(
                |(service, pid, version, started_at, outcome, ended_at, cause)| BootAttempt {
                    service,
                    pid,
                    version,
                    started_at: from_micros(started_at),
                    outcome: if outcome == "ready" {
                        BootOutcome::Ready
                    } else {
                        BootOutcome::Failed
                    },
                    ended_at: ended_at.map(from_micros),
                    cause,
                },
            )
            .collect())
    }
}

impl Store {
    /// Every service with a recorded start, by name.
    pub async fn boot_services(&self) -> Result<Vec<String>> {
        on_pool!(self, p => sqlx::query_scalar("SELECT DISTINCT service FROM boot_attempts ORDER BY service")
            .fetch_all(p)
            .await)
        .context("listing services with boot records")
    }
}
