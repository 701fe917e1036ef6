//! `status_history`: the worst verdict of each `/status` section per 15-minute bucket, for the
//! page's 24-hour strips. A sample only ever raises a bucket's level: a failure seen once in a
//! quarter hour stays visible however many passes follow it.

use chrono::{DateTime, Utc};

use crate::error::{QueryContext, Result};
use crate::time::{from_micros, to_micros};
use crate::{Store, on_pool};

/// How long one history bucket is.
pub const HISTORY_BUCKET: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The start of the bucket `at` falls in.
pub fn history_bucket(at: DateTime<Utc>) -> DateTime<Utc> {
    let len = HISTORY_BUCKET.as_micros() as i64;
    let micros = to_micros(&at);
    from_micros(micros - micros.rem_euclid(len))
}

/// One section's worst level in one bucket (0 pass, 1 warn, 2 fail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistorySample {
    /// The bucket's start.
    pub bucket: DateTime<Utc>,
    /// The section.
    pub section: String,
    /// 0 pass, 1 warn, 2 fail.
    pub level: i16,
}

impl Store {
    /// Records one report's section levels in the bucket of `at`, in one transaction, keeping
    /// the worse of what the bucket held and what is recorded now.
    pub async fn history_record(&self, at: DateTime<Utc>, levels: &[(&str, i16)]) -> Result<()> {
        let bucket = to_micros(&history_bucket(at));
        const UPSERT: &str = "INSERT INTO status_history (bucket, section, level) VALUES ($1, $2, $3) \
             ON CONFLICT (bucket, section) DO UPDATE SET level = CASE \
               WHEN excluded.level > status_history.level THEN excluded.level \
               ELSE status_history.level END";
        on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            for (section, level) in levels {
                sqlx::query(UPSERT)
                    .bind(bucket)
                    .bind(*section)
                    .bind(*level)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }.await)
        .context("recording the status history")
    }

    /// Every sample from `since` on, oldest first.
    pub async fn history_since(&self, since: DateTime<Utc>) -> Result<Vec<HistorySample>> {
        let rows: Vec<(i64, String, i16)> = on_pool!(self, p => sqlx::query_as(
            "SELECT bucket, section, level FROM status_history WHERE bucket >= $1 \
             ORDER BY bucket, section",
        )
        .bind(to_micros(&history_bucket(since)))
        .fetch_all(p)
        .await)
        .context("reading the status history")?;
        Ok(rows
            .into_iter()
            .map(|(b, section, level)| HistorySample {
                bucket: from_micros(b),
                section,
                level,
            })
            .collect())
    }

    /// Forgets buckets that started before `before`; returns how many rows went.
    pub async fn history_prune(&self, before: DateTime<Utc>) -> Result<u64> {
        on_pool!(self, p => sqlx::query("DELETE FROM status_history WHERE bucket < $1")
            .bind(to_micros(&before))
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .context("pruning the status history")
    }
}
