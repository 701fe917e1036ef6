//! # lookout-crash-detect — boot crash loops and interrupted runs, with their causes
//!
//! Two failure classes that otherwise stay silent:
//!
//! - **A service that fails to start**, maybe several times in a row. Every start leaves a
//!   breadcrumb ([`BootBook::begin`], or [`BootGuard`] in a Rust process, whose panic hook writes the
//!   panic message into it); the next start finds it and counts a failed start with its cause (the
//!   panic, what the host reported, the last lines of its log file, or systemd's record of the exit).
//!   N failed starts inside a window make a [`CrashLoop`] alert, once; the start that reaches ready
//!   gets a [`BootReport`] whose [`message`](BootReport::message) is
//!   "⚠️ Service recovered after N failed start(s). Last failure: …".
//! - **A run interrupted mid-batch**: messages whose `processing_started_at` (set when their batch was
//!   dispatched, cleared by the bot's response) is older than a threshold. [`StaleScanner`] finds them
//!   per chat. Recovery exists only as an explicit [`RecoveryPolicy`], off by default.
//!
//! It is **not** a supervisor: it never restarts, requeues or unlocks anything unless a recovery
//! policy was configured.
//!
//! ```
//! use lookout_crash_detect::{BootBook, BootOptions, CauseSource};
//! use chrono::{Duration, Utc};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let book = BootBook::new(dir.path(), BootOptions::default());
//! let t0 = Utc::now();
//! book.begin("bridge", Some(41), Some("1.2.0"), t0).unwrap();
//! book.record_cause("bridge", "unknown key `caldav.password`", CauseSource::Reported).unwrap();
//! // The process died; the next start finds the breadcrumb.
//! let next = book.begin("bridge", Some(42), Some("1.2.0"), t0 + Duration::seconds(5)).unwrap();
//! assert_eq!(next.failed_starts, 1);
//! let report = book.ready("bridge", t0 + Duration::seconds(6)).unwrap();
//! assert_eq!(
//!     report.message().unwrap(),
//!     "⚠️ Service recovered after 1 failed start(s). Last failure: unknown key `caldav.password`"
//! );
//! ```

mod atomic;
mod boot;
mod guard;
mod stale;
pub mod systemd;

use std::path::PathBuf;

pub use boot::{
    BeginOutcome, BootBook, BootOptions, BootReport, BootStart, CauseSource, CrashLoop,
    FailedStart, RestartCounter, validate_service,
};
pub use guard::BootGuard;
pub use stale::{RecoveryAction, RecoveryPolicy, Requeue, StaleFinding, StaleScanner};

/// What can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum CrashDetectError {
    /// A boot state file could not be read or written.
    #[error("boot state file {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A boot state file is not what Lookout wrote.
    #[error("boot state file {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What could not be read.
        reason: String,
    },
    /// A service name that cannot be a file name.
    #[error("invalid service name `{0}`: use letters, digits, '-', '_', '.', '@' (at most 128)")]
    InvalidService(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] lookout_store::StoreError),
}

/// This crate's result type.
pub type Result<T, E = CrashDetectError> = std::result::Result<T, E>;
