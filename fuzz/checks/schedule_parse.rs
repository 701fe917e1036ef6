//! What the `schedule_parse` fuzz target checks of one input, shared with the corpus replay test
//! (`crates/scheduler/tests/fuzz_corpus.rs`).

use chrono::{DateTime, TimeZone, Utc};
use lookout_scheduler::Schedule;

/// Zones with and without DST, southern-hemisphere DST, half-hour offsets and a 30-minute DST.
const ZONES: &[&str] = &[
    "",
    "UTC",
    "Europe/London",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "Pacific/Chatham",
    "Asia/Tehran",
];

// The input, laid out so that seeds can be written by hand (`fuzz/corpus-seeds/schedule_parse`):
// byte 0 picks a zone from `ZONES` (past its end: the zone is the text after the first `\n`),
// byte 1 is `n` for `upcoming` (low 3 bits) and "wide" (bit 7: any instant chrono can hold, else
// folded into 1970..2100), bytes 2..10 the start instant in seconds (i64, little-endian), the rest
// the expression (UTF-8).
/// Checks one fuzz input (laid out as above).
pub(crate) fn check(data: &[u8]) {
    if data.len() < 10 {
        return;
    }
    let Ok(text) = std::str::from_utf8(&data[10..]) else {
        return;
    };
    let secs = i64::from_le_bytes(data[2..10].try_into().unwrap());
    let (expr, tz) = match ZONES.get(usize::from(data[0])) {
        Some(z) => (text, *z),
        None => text.split_once('\n').unwrap_or((text, "")),
    };
    let n = usize::from(data[1] & 7);
    let wide = data[1] & 0x80 != 0;
    let Ok(schedule) = Schedule::parse(expr, tz) else {
        return;
    };
    let _ = schedule.to_string();
    let from = if wide {
        Utc.timestamp_opt(secs, 0).single()
    } else {
        // 1970-01-01 .. 2100-01-01
        Utc.timestamp_opt(secs.rem_euclid(4_102_444_800), 0)
            .single()
    };
    let Some(from) = from else {
        return;
    };
    let next = schedule.next_after(from);
    if let Some(t) = next {
        assert!(
            t > from,
            "next_after({from}) = {t} is not after it for {schedule}"
        );
    }
    let runs: Vec<DateTime<Utc>> = schedule.upcoming(from, n).collect();
    assert!(runs.len() <= n);
    let mut prev = from;
    for t in &runs {
        assert!(
            *t > prev,
            "upcoming not strictly increasing for {schedule}: {runs:?}"
        );
        prev = *t;
    }
    if n > 0 {
        assert_eq!(runs.first().copied(), next);
    }
    let (kind, value) = schedule.to_parts();
    let back = Schedule::from_parts(kind, &value, schedule.tz().name())
        .unwrap_or_else(|e| panic!("stored form {kind:?} {value:?} does not parse back: {e}"));
    assert_eq!(
        back.next_after(from),
        next,
        "stored form {kind:?} {value:?} has another next run than {schedule}"
    );
}
