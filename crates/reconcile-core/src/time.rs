//! Small time helpers shared by the model and the runtime.

use chrono::{DateTime, TimeDelta, Utc};

/// Microseconds since the epoch (the store's one timestamp format), for keys.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A `std` duration as a chrono delta (saturating at the maximum).
pub(crate) fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// A short human duration: `45s`, `12m`, `3h05m`.
pub(crate) fn human(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}
