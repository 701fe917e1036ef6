//! # lookout-common — what every Lookout crate shares
//!
//! Small, dependency-light pieces that the scheduler, the watchdog, the reconciler, crash-detect,
//! status-collect and notify would otherwise each write again:
//!
//! - [`Clock`] — where `now` comes from ([`SystemClock`], [`TokioClock`] for paused-time tests,
//!   [`ManualClock`] for unit tests that set the time by hand);
//! - [`Severity`] — how bad something is (`info` < `warning` < `critical`);
//! - [`write_atomic`] — replace a small state file so a crash leaves the old or the new one;
//! - [`duration::parse_duration`] — durations as files and flags write them (`90s`, `1h30m`);
//! - [`human_duration`] and [`human_age`] — durations as people read them;
//! - the probe seams: [`http::HttpProbe`] (GET an endpoint; [`http::ReqwestProbe`] with feature
//!   `http`) and [`docker::ContainerRuntime`] (a container's state; [`docker::DockerEngine`] with
//!   feature `docker`).
//!
//! It never depends on another Lookout crate: everything points at it, it points at nothing.
//!
//! ```
//! use lookout_common::{Clock, ManualClock, Severity, human_duration};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
//! clock.advance(Duration::from_secs(90));
//! assert_eq!(clock.now().to_rfc3339(), "2026-01-01T00:01:30+00:00");
//! assert!(Severity::Critical > Severity::Warning);
//! assert_eq!("warning".parse::<Severity>().unwrap(), Severity::Warning);
//! assert_eq!(human_duration(Duration::from_secs(25 * 60 + 12)), "25m 12s");
//! ```

mod clock;
pub mod docker;
pub mod duration;
mod format;
mod fs;
pub mod http;
mod severity;

pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use format::{human_age, human_duration};
pub use fs::write_atomic;
pub use severity::{Severity, UnknownSeverity};
