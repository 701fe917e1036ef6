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

/// Whether this runs in CI: `CI` is set and is neither empty, `false` nor `0` (CI services set it
/// to `true`, `1` or their own name). The one place tests decide it: in CI a missing PostgreSQL,
/// Docker engine, browser, root or mount is a failure, never a skip.
pub fn in_ci() -> bool {
    ci_value(std::env::var("CI").ok().as_deref())
}

fn ci_value(v: Option<&str>) -> bool {
    v.is_some_and(|v| {
        let v = v.trim();
        !v.is_empty() && !v.eq_ignore_ascii_case("false") && v != "0"
    })
}

#[cfg(test)]
mod ci_tests {
    #[test]
    fn ci_is_set_and_not_false_or_zero() {
        for (v, ci) in [
            (None, false),
            (Some(""), false),
            (Some("false"), false),
            (Some("FALSE"), false),
            (Some("0"), false),
            (Some("true"), true),
            (Some("1"), true),
            (Some("woodpecker"), true),
        ] {
            assert_eq!(super::ci_value(v), ci, "CI={v:?}");
        }
    }
}
