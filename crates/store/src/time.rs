//! The one timestamp format of the store.
//!
//! Every instant is stored as a signed 64-bit integer: **microseconds since the Unix epoch, UTC**, in
//! both SQLite and PostgreSQL. Inputs with any offset or precision (`+02:00`, `Z`, nanoseconds) are
//! converted to that one number at the boundary, so every comparison in SQL is a comparison of integers:
//! `12:00:00+02:00` and `10:00:00Z` are equal, and `10:00:00.000001Z` is later than `10:00:00Z`.
//! Sub-microsecond digits are truncated (toward the past).

use chrono::{DateTime, TimeZone, Utc};

/// An instant in UTC, as the store's API takes and returns it.
pub type Timestamp = DateTime<Utc>;

/// Converts an instant to the stored form (microseconds since the epoch, UTC).
pub fn to_micros<Tz: TimeZone>(t: &DateTime<Tz>) -> i64 {
    t.timestamp_micros()
}

/// Converts the stored form back to an instant.
///
/// Values outside chrono's range (about ±262,000 years) are clamped; they can only come from a
/// hand-edited row.
pub fn from_micros(us: i64) -> Timestamp {
    DateTime::from_timestamp_micros(us).unwrap_or(if us < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// Parses an RFC 3339 / ISO 8601 instant with any offset into UTC.
pub fn parse_rfc3339(s: &str) -> Result<Timestamp, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_precisions_meet_in_one_format() {
        let a = parse_rfc3339("2026-11-24T12:00:00+02:00").unwrap();
        let b = parse_rfc3339("2026-11-24T10:00:00Z").unwrap();
        let c = parse_rfc3339("2026-11-24T10:00:00.000001Z").unwrap();
        let d = parse_rfc3339("2026-11-24T10:00:00.000000999Z").unwrap();
        assert_eq!(to_micros(&a), to_micros(&b));
        assert!(to_micros(&c) > to_micros(&b));
        // nanoseconds below a microsecond are truncated, never rounded up past a later instant
        assert_eq!(to_micros(&d), to_micros(&b));
        assert_eq!(from_micros(to_micros(&c)), c);
    }
}
