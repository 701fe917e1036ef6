//! Intervals (`every 15m`) and single instants (`at 2026-12-01T09:00:00Z`).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::SchedulerError;

pub(super) fn parse_interval(s: &str) -> Result<Duration, SchedulerError> {
    let d = lookout_common::duration::parse_duration(s)
        .map_err(|e| SchedulerError::InvalidSchedule(format!("invalid interval: {e}")))?;
    if d.is_zero() {
        return Err(SchedulerError::InvalidSchedule(
            "an interval must be longer than zero".into(),
        ));
    }
    Ok(d)
}

pub(super) fn parse_instant(s: &str) -> Result<DateTime<Utc>, SchedulerError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            SchedulerError::InvalidSchedule(format!(
                "invalid instant `{s}`: {e} (expected RFC 3339, e.g. 2026-12-01T09:00:00Z)"
            ))
        })
}

/// Formats a duration the way the config file writes it (`1h30m`, `90s` → `1m30s`, `250ms`).
pub fn format_interval(d: Duration) -> String {
    let mut secs = d.as_secs();
    let ms = d.subsec_millis();
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= len {
            out.push_str(&format!("{}{unit}", secs / len));
            secs %= len;
        }
    }
    if ms > 0 {
        out.push_str(&format!("{ms}ms"));
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}
