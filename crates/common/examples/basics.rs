//! The pieces every Lookout crate shares, in one run: a [`ManualClock`] that moves only when told
//! (and the [`SystemClock`] beside it), [`Severity`] parsed, ordered and rejected, durations parsed
//! from config text and printed for people ([`parse_duration`], [`human_duration`], [`human_age`]),
//! and [`write_atomic`] replacing a state file in a temporary directory without leaving a
//! temporary file behind.
//!
//! Run it with:
//!
//! ```text
//! cargo run -p lookout-common --example basics
//! ```

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lookout_common::duration::parse_duration;
use lookout_common::{
    Clock, ManualClock, Severity, SystemClock, human_age, human_duration, write_atomic,
};

fn main() {
    // Clocks: every decision takes `now` from a Clock, so a test (or this example) sets the time.
    let start: DateTime<Utc> = "2026-01-01T09:00:00Z".parse().unwrap();
    let clock = ManualClock::new(start);
    clock.advance(Duration::from_secs(25 * 60 + 12));
    let later = clock.now();
    println!("manual clock: {start} + 25m 12s = {later}");
    assert_eq!(later - start, TimeDelta::seconds(25 * 60 + 12));
    let wall = SystemClock.now();
    println!("system clock: {}", wall.to_rfc3339());

    // Severity: text round-trips, the order is info < warning < critical, a typo is an error.
    let mut seen: Vec<Severity> = ["critical", "info", "warning"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    seen.sort();
    println!("severities, least to worst: {seen:?}");
    assert_eq!(
        seen,
        [Severity::Info, Severity::Warning, Severity::Critical]
    );
    let err = "fatal".parse::<Severity>().unwrap_err();
    println!("severity typo: {err}");
    assert!(
        err.to_string()
            .contains("expected info, warning or critical")
    );

    // Durations: as config files write them, and as people read them.
    for text in ["90s", "1h30m", "1d", "500ms"] {
        let d = parse_duration(text).unwrap();
        println!(
            "parse_duration({text:?}) = {d:?} -> human_duration {}",
            human_duration(d)
        );
    }
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(human_duration(Duration::from_secs(5400)), "1h 30m");
    let bad = parse_duration("10y").unwrap_err();
    println!("parse_duration(\"10y\") fails: {bad}");
    assert!(bad.contains("unknown unit `y`"));
    let age = human_age(later - start);
    println!("age of the manual clock's start: {age}");
    assert_eq!(age, "25m");

    // Atomic writes: the old content or the new one, never a mix, and no temporary left behind.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    write_atomic(&path, br#"{"version":1}"#).unwrap();
    write_atomic(&path, br#"{"version":2}"#).unwrap();
    let content = std::fs::read_to_string(&path).unwrap();
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    println!("write_atomic twice: {content} (files in the directory: {files:?})");
    assert_eq!(content, r#"{"version":2}"#);
    assert_eq!(files, ["state.json"]);
}
