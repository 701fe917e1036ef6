//! The schedules' rules, DST included, against known dates.

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn runs(expr: &str, tz: &str, from: &str, n: usize) -> Vec<String> {
    let s = Schedule::parse(expr, tz).unwrap();
    let tz = s.tz();
    s.upcoming(t(from), n)
        .map(|u| u.with_timezone(&tz).to_rfc3339())
        .collect()
}

#[test]
fn five_six_fields_and_macros() {
    assert_eq!(
        runs("*/15 * * * *", "UTC", "2026-01-01T00:07:00Z", 3),
        [
            "2026-01-01T00:15:00+00:00",
            "2026-01-01T00:30:00+00:00",
            "2026-01-01T00:45:00+00:00"
        ]
    );
    assert_eq!(
        runs("30 */20 * * * *", "UTC", "2026-01-01T00:00:00Z", 2),
        ["2026-01-01T00:00:30+00:00", "2026-01-01T00:20:30+00:00"]
    );
    assert_eq!(
        runs("@hourly", "UTC", "2026-01-01T00:00:00Z", 1),
        ["2026-01-01T01:00:00+00:00"]
    );
    assert_eq!(
        runs("@daily", "UTC", "2026-01-01T00:00:00Z", 1),
        ["2026-01-02T00:00:00+00:00"]
    );
    assert_eq!(
        runs("@midnight", "UTC", "2026-01-01T00:00:00Z", 1),
        ["2026-01-02T00:00:00+00:00"]
    );
    // 2026-01-04 is a Sunday
    assert_eq!(
        runs("@weekly", "UTC", "2026-01-01T00:00:00Z", 1),
        ["2026-01-04T00:00:00+00:00"]
    );
    assert_eq!(
        runs("@monthly", "UTC", "2026-01-01T00:00:00Z", 1),
        ["2026-02-01T00:00:00+00:00"]
    );
    assert_eq!(
        runs("@yearly", "UTC", "2026-01-01T00:00:00Z", 1),
        ["2027-01-01T00:00:00+00:00"]
    );
    assert_eq!(
        runs("@annually", "UTC", "2026-01-01T00:00:00Z", 1),
        ["2027-01-01T00:00:00+00:00"]
    );
    assert_eq!(
        runs("0 9 * JAN-FEB MON-FRI", "UTC", "2026-01-02T10:00:00Z", 1),
        ["2026-01-05T09:00:00+00:00"]
    );
}

#[test]
fn the_vixie_day_rule() {
    // Both restricted: either matches. 2026-01-01 is a Thursday: the 1st and 15th, or Mondays.
    assert_eq!(
        runs("0 0 1,15 * 1", "UTC", "2026-01-01T00:00:00Z", 4),
        [
            "2026-01-05T00:00:00+00:00",
            "2026-01-12T00:00:00+00:00",
            "2026-01-15T00:00:00+00:00",
            "2026-01-19T00:00:00+00:00"
        ]
    );
    // A day-of-month starting with `*` is "unrestricted": both must match (odd days that are
    // Mondays), where croner alone would OR them.
    assert_eq!(
        runs("0 0 */2 * 1", "UTC", "2026-01-01T00:00:00Z", 3),
        [
            "2026-01-05T00:00:00+00:00",
            "2026-01-19T00:00:00+00:00",
            "2026-02-09T00:00:00+00:00"
        ]
    );
    assert_eq!(
        runs("0 0 13 * */7", "UTC", "2026-01-01T00:00:00Z", 1),
        // day-of-week `*/7` = Sunday only (0); must be the 13th and a Sunday
        ["2026-09-13T00:00:00+00:00"]
    );
}

#[test]
fn errors_say_where() {
    let e = Schedule::parse("61 * * * *", "UTC").unwrap_err();
    match &e {
        SchedulerError::InvalidCron { field, offset, .. } => {
            assert_eq!((*field, *offset), (Some(1), 0));
        }
        other => panic!("{other:?}"),
    }
    let e = Schedule::parse("0 9 * * 1-9", "UTC").unwrap_err();
    assert!(
        matches!(
            e,
            SchedulerError::InvalidCron {
                field: Some(5),
                offset: 10,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("day-of-week field"), "{e}");
    let e = Schedule::parse("*/0 * * * *", "UTC").unwrap_err();
    assert!(
        matches!(
            e,
            SchedulerError::InvalidCron {
                field: Some(1),
                offset: 2,
                ..
            }
        ),
        "{e}"
    );
    let e = Schedule::parse("0 9 * *", "UTC").unwrap_err();
    assert!(
        matches!(e, SchedulerError::InvalidCron { field: None, .. }),
        "{e}"
    );
    let e = Schedule::parse("0 5-3 * * *", "UTC").unwrap_err();
    assert!(
        matches!(
            e,
            SchedulerError::InvalidCron {
                field: Some(2),
                offset: 2,
                ..
            }
        ),
        "{e}"
    );
    let e = Schedule::parse("0 9 * FOO *", "UTC").unwrap_err();
    assert!(
        matches!(
            e,
            SchedulerError::InvalidCron {
                field: Some(4),
                offset: 6,
                ..
            }
        ),
        "{e}"
    );
    assert!(Schedule::parse("@reboot", "UTC").is_err());
    assert!(matches!(
        Schedule::parse("0 9 * * *", "Mars/Olympus"),
        Err(SchedulerError::UnknownTimeZone(_))
    ));
    assert!(Schedule::parse("every 0s", "UTC").is_err());
    assert!(Schedule::parse("every soon", "UTC").is_err());
}

#[test]
fn interval_and_once() {
    let s = Schedule::parse("every 15m", "UTC").unwrap();
    assert_eq!(
        s.next_after(t("2026-01-01T00:00:00Z")),
        Some(t("2026-01-01T00:15:00Z"))
    );
    assert_eq!(s.to_parts(), (ScheduleKind::Interval, "15m".to_string()));
    let once = Schedule::parse("at 2026-12-01T09:00:00+01:00", "UTC").unwrap();
    assert_eq!(
        once.next_after(t("2026-01-01T00:00:00Z")),
        Some(t("2026-12-01T08:00:00Z"))
    );
    assert_eq!(once.next_after(t("2026-12-01T08:00:00Z")), None);
    let back = Schedule::from_parts(ScheduleKind::Once, &once.to_parts().1, "UTC").unwrap();
    assert_eq!(
        back.next_after(t("2026-01-01T00:00:00Z")),
        Some(t("2026-12-01T08:00:00Z"))
    );
    assert!(
        Schedule::parse("0 0 30 2 *", "UTC")
            .unwrap()
            .next_after(t("2026-01-01T00:00:00Z"))
            .is_none()
    );
}

// ---- DST ------------------------------------------------------------------------------------
// New York: 2026-03-08 02:00 EST → 03:00 EDT; 2026-11-01 02:00 EDT → 01:00 EST.
// London:   2026-03-29 01:00 GMT → 02:00 BST; 2026-10-25 02:00 BST → 01:00 GMT.

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn fixed_time_job_on_spring_forward_day_runs_once_after_the_gap() {
    assert_eq!(
        runs("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 3),
        strs(&[
            "2026-03-08T03:00:00-04:00",
            "2026-03-09T02:30:00-04:00",
            "2026-03-10T02:30:00-04:00"
        ])
    );
    assert_eq!(
        runs("30 1 * * *", "Europe/London", "2026-03-28T12:00:00Z", 3),
        strs(&[
            "2026-03-29T02:00:00+01:00",
            "2026-03-30T01:30:00+01:00",
            "2026-03-31T01:30:00+01:00"
        ])
    );
    // Two gap times of one fixed job collapse into one run at the gap's end.
    assert_eq!(
        runs(
            "0,30 2 * * *",
            "America/New_York",
            "2026-03-08T06:00:00Z",
            2
        ),
        strs(&["2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"])
    );
}

#[test]
fn fixed_time_job_on_fall_back_day_runs_once_on_the_first_pass() {
    assert_eq!(
        runs("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 3),
        strs(&[
            "2026-11-01T01:30:00-04:00",
            "2026-11-02T01:30:00-05:00",
            "2026-11-03T01:30:00-05:00"
        ])
    );
    assert_eq!(
        runs("30 1 * * *", "Europe/London", "2026-10-24T12:00:00Z", 2),
        strs(&["2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00"])
    );
    // A range in the hour field is still fixed-time (croner would call it non-fixed).
    assert_eq!(
        runs("0 1-2 * * *", "America/New_York", "2026-11-01T04:00:00Z", 3),
        strs(&[
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T02:00:00-05:00",
            "2026-11-02T01:00:00-05:00"
        ])
    );
    // A 02:30 job on the fall-back day runs once (02:30 is not repeated in New York).
    assert_eq!(
        runs("30 2 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
        strs(&["2026-11-01T02:30:00-05:00", "2026-11-02T02:30:00-05:00"])
    );
    // Asked from inside the second pass, the answer is never before the start.
    let s = Schedule::parse("30 1 * * *", "America/New_York").unwrap();
    let from = t("2026-11-01T06:10:00Z"); // 01:10 EST, second pass
    assert_eq!(s.next_after(from), Some(t("2026-11-02T06:30:00Z")));
}

#[test]
fn non_fixed_job_skips_the_gap_and_runs_in_both_passes() {
    // New York spring: 01:30 EST, then 03:00 EDT (02:00 and 02:30 do not exist).
    assert_eq!(
        runs(
            "*/30 * * * *",
            "America/New_York",
            "2026-03-08T06:00:00Z",
            3
        ),
        strs(&[
            "2026-03-08T01:30:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T03:30:00-04:00"
        ])
    );
    // New York autumn: 01:00, 01:30 EDT, then 01:00, 01:30 EST, then 02:00 EST — in time order.
    assert_eq!(
        runs(
            "*/30 * * * *",
            "America/New_York",
            "2026-11-01T04:45:00Z",
            5
        ),
        strs(&[
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-01T02:00:00-05:00"
        ])
    );
    // London autumn, asked from inside the first pass.
    assert_eq!(
        runs("*/30 * * * *", "Europe/London", "2026-10-25T00:10:00Z", 4),
        strs(&[
            "2026-10-25T01:30:00+01:00",
            "2026-10-25T01:00:00+00:00",
            "2026-10-25T01:30:00+00:00",
            "2026-10-25T02:00:00+00:00"
        ])
    );
    // London spring: 00:30 GMT then 02:00 BST.
    assert_eq!(
        runs("*/30 * * * *", "Europe/London", "2026-03-29T00:10:00Z", 2),
        strs(&["2026-03-29T00:30:00+00:00", "2026-03-29T02:00:00+01:00"])
    );
    // An hourly job in the repeated hour runs in both passes.
    assert_eq!(
        runs("@hourly", "Europe/London", "2026-10-24T23:30:00Z", 3),
        strs(&[
            "2026-10-25T01:00:00+01:00",
            "2026-10-25T01:00:00+00:00",
            "2026-10-25T02:00:00+00:00"
        ])
    );
}

#[test]
fn upcoming_is_strictly_increasing_across_a_year_of_transitions() {
    for tz in ["America/New_York", "Europe/London", "Australia/Lord_Howe"] {
        for expr in [
            "*/30 * * * *",
            "30 2 * * *",
            "0 1-3 * * *",
            "15 1,2 * * *",
            "*/7 */3 * * *",
        ] {
            let s = Schedule::parse(expr, tz).unwrap();
            let all: Vec<_> = s.upcoming(t("2026-01-01T00:00:00Z"), 20_000).collect();
            assert!(all.windows(2).all(|w| w[0] < w[1]), "{expr} in {tz}");
        }
    }
}
