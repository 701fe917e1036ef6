//! Inputs the `schedule_parse` fuzz target (`fuzz/`, `scripts/fuzz.sh`) found, kept as tests.

use chrono::{DateTime, TimeDelta, Utc};
use lookout_scheduler::Schedule;

/// Checks the contract the fuzz target checks: no panic, every run strictly after the one before.
fn runs_after(expr: &str, tz: &str, from: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let s = Schedule::parse(expr, tz).unwrap();
    let runs: Vec<_> = s.upcoming(from, 5).collect();
    let mut prev = from;
    for t in &runs {
        assert!(*t > prev, "{expr} ({tz}) from {from}: {runs:?}");
        prev = *t;
    }
    assert_eq!(s.next_after(from), runs.first().copied());
    runs
}

/// `next_after` of a cron schedule panicked (`DateTime + TimeDelta overflowed`, schedule/dst.rs,
/// the DST look-around `after + MAX_SHIFT`) for an instant within 3 h of the last one chrono holds.
/// Fuzz input: `*/5 * * * *`, UTC, from 262143-12-31T23:59:59Z.
#[test]
fn cron_next_after_near_the_end_of_time_does_not_panic() {
    let last = DateTime::from_timestamp(DateTime::<Utc>::MAX_UTC.timestamp(), 0).unwrap();
    for tz in [
        "",
        "Europe/London",
        "America/New_York",
        "Australia/Lord_Howe",
    ] {
        assert!(runs_after("*/5 * * * *", tz, last).is_empty());
        assert!(runs_after("0 9 * * *", tz, last).is_empty());
        // Within MAX_SHIFT of the end: no panic either.
        runs_after("*/5 * * * *", tz, last - TimeDelta::hours(2));
        runs_after("0 0 * * *", tz, last - TimeDelta::days(3));
    }
}

/// The same look-around, backwards, at the first instant chrono holds (and local times before it).
#[test]
fn cron_next_after_near_the_start_of_time_does_not_panic() {
    let start = DateTime::<Utc>::MIN_UTC + TimeDelta::seconds(1);
    for tz in ["", "Europe/London", "America/New_York"] {
        let runs = runs_after("*/5 * * * *", tz, start);
        assert_eq!(runs.len(), 5, "{tz}");
    }
}

/// An interval whose parts overflow a `Duration` when summed panicked in the duration parser
/// (`overflow when adding durations`). Fuzz input: `@every 1h7777777777777777777h30m`.
#[test]
fn an_interval_too_large_is_an_error_with_its_reason() {
    let huge = format!("@every 1h{}h30m", "7".repeat(19));
    let e = Schedule::parse(&huge, "").unwrap_err().to_string();
    assert!(e.contains("too large"), "{e}");
    // The largest interval a Duration holds: an error too, or a schedule whose runs (if any fall
    // within chrono's range) come after the start — never a panic.
    match Schedule::parse("@every 18446744073709551615s", "") {
        Ok(s) => {
            let from = DateTime::from_timestamp(0, 0).unwrap();
            assert!(s.upcoming(from, 2).all(|t| t > from));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
