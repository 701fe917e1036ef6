//! # lookout-store — Lookout's one database layer
//!
//! Everything Lookout persists goes through [`Store`]: the append-only event log (every fact the host
//! reports, in order, with a sequence number), the messages and deliveries it watches, scheduled tasks
//! and host jobs with their runs, boot attempts, the watchdog's heal state, the notification outbox and
//! small key/value facts (`router_state`).
//!
//! Two backends, one API: **SQLite** (a file in WAL mode, the default for one daemon per host) and
//! **PostgreSQL** (one database for a fleet). Each has its own migrations (`migrations/sqlite`,
//! `migrations/postgres` in this crate, so it packages alone; the workspace's `migrations/` is a link
//! to them), embedded in the binary and applied by [`Store::open`].
//! Queries are runtime-checked and always parameterised; no database is needed to build.
//!
//! Timestamps are stored in one format everywhere: integer microseconds since the Unix epoch, UTC
//! (see [`time`]).
//!
//! This crate is **not** for policy: it stores and reads facts, it never decides what they mean.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use lookout_store::{NewEvent, Store};
//! use serde_json::json;
//!
//! let store = Store::open("sqlite::memory:").await?;
//! let seqs = store
//!     .append_events(&[
//!         NewEvent::new("channel_connected", json!({"channel": "slack"})).with_subject("slack"),
//!         NewEvent::new("channel_disconnected", json!({"channel": "slack", "reason": "timeout"}))
//!             .with_subject("slack"),
//!     ])
//!     .await?;
//! assert_eq!(seqs.len(), 2);
//! let events = store.events_after(0, 100).await?;
//! assert_eq!(events[1].kind, "channel_disconnected");
//! # Ok::<(), lookout_store::StoreError>(())
//! # }).unwrap();
//! ```

mod alerts;
mod boot;
mod error;
mod events;
mod history;
mod in_flight;
mod incidents;
mod messages;
mod notifications;
mod router_state;
mod stats;
mod tasks;
pub mod time;
mod url;

#[cfg(feature = "test-support")]
pub mod testing;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use alerts::{AlertRecord, QuietWindow};
pub use boot::{BootAttempt, BootOutcome};
pub use error::{Result, StoreError};
pub use events::{Appended, NewEvent, StoredEvent};
pub use history::{HISTORY_BUCKET, HistorySample, history_bucket};
pub use in_flight::{MarkOutcome, StaleChat};
pub use incidents::{IncidentAction, IncidentRecord, IncidentScope};
pub use messages::{Direction, NewMessage};
pub use notifications::{DueDelivery, NewNotification, StoredNotification};
pub use stats::{DeliveryStats, EventStats, MessageStats};
pub use tasks::{
    Claim, ClaimedRun, DueTask, NewRun, NewTask, OwnerKind, RunOutcome, TaskRecord, TaskRun,
    TaskStatus,
};
pub use time::Timestamp;
pub use url::{StoreUrl, redact};

/// The SQLite migrations, embedded at build time.
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
/// The PostgreSQL migrations, embedded at build time.
pub static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (or memory) database.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same block on whichever pool the store has; the block sees `$pool` typed for its backend.
/// Used where one SQL text serves both (numbered `$N` placeholders work on both).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// A handle on the database: cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    display_url: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.display_url)
            .finish()
    }
}

/// How long a SQLite writer waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Opens (creating if needed) the database at `url` and applies the embedded migrations.
    ///
    /// `sqlite://PATH` creates the file if missing and sets WAL, `synchronous=FULL` (a committed
    /// transaction survives a power cut), foreign keys and a busy timeout. `postgres://…` connects to
    /// an existing database.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_url(&StoreUrl::parse(url)?).await
    }

    /// Opens an already parsed URL. See [`Store::open`].
    pub async fn open_url(url: &StoreUrl) -> Result<Self> {
        let display_url = url.display();
        let open_err = |source| StoreError::Open {
            url: display_url.clone(),
            source,
        };
        let migrate_err = |source| StoreError::Migrate {
            url: display_url.clone(),
            source,
        };
        let pool = match url {
            StoreUrl::Sqlite { .. } | StoreUrl::SqliteMemory => {
                let (opts, max) = match url {
                    StoreUrl::Sqlite { path } => (
                        SqliteConnectOptions::new()
                            .filename(path)
                            .create_if_missing(true),
                        8,
                    ),
                    // One connection: each in-memory connection would otherwise be its own database.
                    _ => (
                        SqliteConnectOptions::from_str("sqlite::memory:").map_err(open_err)?,
                        1,
                    ),
                };
                let opts = opts
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                let pool = SqlitePoolOptions::new()
                    .max_connections(max)
                    .min_connections(0)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_with(opts)
                    .await
                    .map_err(open_err)?;
                SQLITE_MIGRATOR.run(&pool).await.map_err(migrate_err)?;
                Pool::Sqlite(pool)
            }
            StoreUrl::Postgres { url: raw } => {
                let opts = PgConnectOptions::from_str(raw).map_err(open_err)?;
                // One direct connection first: an unreachable server or a bad password fails at once
                // with its real cause, instead of after the pool's acquire timeout.
                {
                    use sqlx::Connection;
                    let probe = sqlx::PgConnection::connect_with(&opts)
                        .await
                        .map_err(open_err)?;
                    let _ = probe.close().await;
                }
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await
                    .map_err(open_err)?;
                POSTGRES_MIGRATOR.run(&pool).await.map_err(migrate_err)?;
                Pool::Postgres(pool)
            }
        };
        tracing::debug!(url = %display_url, "store opened and migrated");
        Ok(Store { pool, display_url })
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL this store was opened with, password redacted.
    pub fn display_url(&self) -> &str {
        &self.display_url
    }

    /// Checks that the database answers (for health checks and `lookout doctor`).
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ())).map_err(
            |source| StoreError::Query {
                context: "pinging the database",
                source,
            },
        )
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }

    /// The SQLite pool, for callers in this crate's tests and benchmarks that need raw access.
    #[doc(hidden)]
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.pool {
            Pool::Sqlite(p) => Some(p),
            Pool::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, for callers in this crate's tests and benchmarks that need raw access.
    #[doc(hidden)]
    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Postgres(p) => Some(p),
            Pool::Sqlite(_) => None,
        }
    }
}
