//! Schedules: cron (5 or 6 fields, macros), interval and once, each read in an IANA time zone.
//!
//! Cron expressions are parsed by `croner` (after a syntax check of our own that can say *where* an
//! expression is wrong), and evaluated here over local wall-clock times so that two rules of Vixie
//! cron (and cronsim, the evaluator behind healthchecks.io) hold; croner deviates from both:
//!
//! - **The day rule.** When day-of-month and day-of-week are both restricted, a day matches if
//!   *either* matches. A field that *starts with* `*` (so `*/2` too) counts as unrestricted, and then
//!   both fields must match.
//! - **DST.** A job whose minute and hour fields both do not start with `*` is *fixed-time*: a time in
//!   the spring-forward gap runs once, at the first instant after the gap; a time in the repeated hour
//!   runs once, on the first pass. Other jobs skip the gap and run in both passes.
//!
//! See `docs/scheduler.md` for the full account.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc,
};
use chrono_tz::Tz;

use crate::error::SchedulerError;

/// The widest UTC offset change around a DST transition that the evaluator accounts for.
const MAX_SHIFT: chrono::TimeDelta = chrono::TimeDelta::hours(3);
/// How far ahead a cron expression is searched for a match (covers leap days and weekday cycles).
const SEARCH_YEARS: i32 = 30;

/// When a task runs. Parse with [`Schedule::parse`]; ask with [`Schedule::next_after`] and
/// [`Schedule::upcoming`].
#[derive(Clone, Debug)]
pub struct Schedule {
    kind: Kind,
    tz: Tz,
}

#[derive(Clone, Debug)]
enum Kind {
    Cron(Box<CronExpr>),
    Interval(Duration),
    Once(DateTime<Utc>),
}

/// Which kind of schedule, as stored in `scheduled_tasks.schedule_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// A cron expression.
    Cron,
    /// A fixed interval.
    Interval,
    /// One instant.
    Once,
}

impl ScheduleKind {
    /// The stored name (`cron`, `interval`, `once`).
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleKind::Cron => "cron",
            ScheduleKind::Interval => "interval",
            ScheduleKind::Once => "once",
        }
    }
}

impl FromStr for ScheduleKind {
    type Err = SchedulerError;
    fn from_str(s: &str) -> Result<Self, SchedulerError> {
        match s {
            "cron" => Ok(ScheduleKind::Cron),
            "interval" => Ok(ScheduleKind::Interval),
            "once" => Ok(ScheduleKind::Once),
            other => Err(SchedulerError::InvalidSchedule(format!(
                "unknown schedule kind `{other}` (expected cron, interval or once)"
            ))),
        }
    }
}

impl Schedule {
    /// Parses a schedule in the time zone named `tz` (IANA, e.g. `Europe/London`; empty means UTC).
    ///
    /// `expr` is one of:
    /// - a cron expression: 5 fields (`minute hour day-of-month month day-of-week`), or 6 with a
    ///   leading seconds field, or a macro (`@hourly`, `@daily`/`@midnight`, `@weekly`, `@monthly`,
    ///   `@yearly`/`@annually`);
    /// - an interval: `every 15m` (or `@every 15m`), durations as in the config file (`90s`, `1h30m`);
    /// - one instant: `at 2026-12-01T09:00:00Z` (RFC 3339, any offset), or the bare instant.
    ///
    /// An invalid cron expression is rejected with its field and character offset.
    pub fn parse(expr: &str, tz: &str) -> Result<Schedule, SchedulerError> {
        let tz = parse_tz(tz)?;
        let e = expr.trim();
        let lower = e.to_ascii_lowercase();
        if let Some(rest) = lower
            .strip_prefix("@every ")
            .or_else(|| lower.strip_prefix("every "))
        {
            let every = parse_interval(rest.trim())?;
            return Ok(Schedule {
                kind: Kind::Interval(every),
                tz,
            });
        }
        if let Some(rest) = lower.strip_prefix("at ") {
            return Ok(Schedule {
                kind: Kind::Once(parse_instant(rest.trim())?),
                tz,
            });
        }
        if let Ok(at) = DateTime::parse_from_rfc3339(e) {
            return Ok(Schedule {
                kind: Kind::Once(at.with_timezone(&Utc)),
                tz,
            });
        }
        Ok(Schedule {
            kind: Kind::Cron(Box::new(CronExpr::parse(e)?)),
            tz,
        })
    }

    /// Builds a schedule from its stored form (`schedule_kind`, `schedule_value`, `tz`).
    pub fn from_parts(
        kind: ScheduleKind,
        value: &str,
        tz: &str,
    ) -> Result<Schedule, SchedulerError> {
        match kind {
            ScheduleKind::Cron => Ok(Schedule {
                kind: Kind::Cron(Box::new(CronExpr::parse(value)?)),
                tz: parse_tz(tz)?,
            }),
            ScheduleKind::Interval => Ok(Schedule {
                kind: Kind::Interval(parse_interval(value)?),
                tz: parse_tz(tz)?,
            }),
            ScheduleKind::Once => Ok(Schedule {
                kind: Kind::Once(parse_instant(value)?),
                tz: parse_tz(tz)?,
            }),
        }
    }

    /// A fixed interval (`every`), measured in real elapsed time (DST does not change it).
    pub fn every(every: Duration) -> Result<Schedule, SchedulerError> {
        if every.is_zero() {
            return Err(SchedulerError::InvalidSchedule(
                "an interval must be longer than zero".into(),
            ));
        }
        Ok(Schedule {
            kind: Kind::Interval(every),
            tz: Tz::UTC,
        })
    }

    /// Runs once, at `at`.
    pub fn once(at: DateTime<Utc>) -> Schedule {
        Schedule {
            kind: Kind::Once(at),
            tz: Tz::UTC,
        }
    }

    /// The stored form: kind and value (the value parses back with [`Schedule::from_parts`]).
    pub fn to_parts(&self) -> (ScheduleKind, String) {
        match &self.kind {
            Kind::Cron(c) => (ScheduleKind::Cron, c.source.clone()),
            Kind::Interval(d) => (ScheduleKind::Interval, format_interval(*d)),
            Kind::Once(t) => (
                ScheduleKind::Once,
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            ),
        }
    }

    /// The time zone the schedule is read in.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The first run strictly after `after`, or `None` when there is none (a past `once`, or a cron
    /// expression that matches no date in the next 30 years, such as `0 0 30 2 *`).
    ///
    /// An interval counts from `after`: the runs of `every 15m` are 15 minutes apart from whichever
    /// run came before, so a scheduler asks with the previous scheduled instant.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Cron(c) => c.next_after(self.tz, after),
            Kind::Interval(d) => after.checked_add_signed(chrono::TimeDelta::from_std(*d).ok()?),
            Kind::Once(t) => (*t > after).then_some(*t),
        }
    }

    /// The next `n` runs after `from`, in order.
    pub fn upcoming(&self, from: DateTime<Utc>, n: usize) -> Upcoming<'_> {
        Upcoming {
            schedule: self,
            cursor: from,
            left: n,
        }
    }

    /// Whether the cron job is fixed-time under the DST rule (minute and hour fields both do not
    /// start with `*`). `false` for intervals and instants.
    pub fn is_fixed_time(&self) -> bool {
        matches!(&self.kind, Kind::Cron(c) if c.fixed)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Cron(c) => write!(f, "cron `{}` ({})", c.source, self.tz),
            Kind::Interval(d) => write!(f, "every {}", format_interval(*d)),
            Kind::Once(t) => write!(f, "once at {}", t.to_rfc3339()),
        }
    }
}

/// The iterator of [`Schedule::upcoming`].
#[derive(Debug)]
pub struct Upcoming<'a> {
    schedule: &'a Schedule,
    cursor: DateTime<Utc>,
    left: usize,
}

impl Iterator for Upcoming<'_> {
    type Item = DateTime<Utc>;
    fn next(&mut self) -> Option<DateTime<Utc>> {
        if self.left == 0 {
            return None;
        }
        let next = self.schedule.next_after(self.cursor)?;
        self.cursor = next;
        self.left -= 1;
        Some(next)
    }
}

/// Parses an IANA zone name; empty means UTC.
pub fn parse_tz(tz: &str) -> Result<Tz, SchedulerError> {
    let tz = tz.trim();
    if tz.is_empty() {
        return Ok(Tz::UTC);
    }
    Tz::from_str(tz).map_err(|_| SchedulerError::UnknownTimeZone(tz.to_string()))
}

fn parse_interval(s: &str) -> Result<Duration, SchedulerError> {
    let d = lookout_common::duration::parse_duration(s)
        .map_err(|e| SchedulerError::InvalidSchedule(format!("invalid interval: {e}")))?;
    if d.is_zero() {
        return Err(SchedulerError::InvalidSchedule(
            "an interval must be longer than zero".into(),
        ));
    }
    Ok(d)
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, SchedulerError> {
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

// -------------------------------------------------------------------------------------------------
// Cron
// -------------------------------------------------------------------------------------------------

const FIELD_NAMES: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
];
const FIELD_RANGES: [(u32, u32); 6] = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

#[derive(Clone, Debug)]
struct CronExpr {
    source: String,
    seconds: Vec<u32>,
    minutes: Vec<u32>,
    hours: Vec<u32>,
    months: [bool; 13],
    pattern: croner::Cron,
    fixed: bool,
}

impl CronExpr {
    fn parse(source: &str) -> Result<CronExpr, SchedulerError> {
        let trimmed = source.trim();
        let expanded = match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            m if m.starts_with('@') => {
                return Err(SchedulerError::InvalidCron {
                    expr: source.to_string(),
                    field: None,
                    offset: source.find('@').unwrap_or(0),
                    reason: format!(
                        "unknown macro `{trimmed}` (expected @hourly, @daily, @midnight, @weekly, \
                         @monthly, @yearly or @annually)"
                    ),
                });
            }
            _ => trimmed,
        };
        let is_macro = expanded != trimmed;
        // Fields with their character offsets in `source`.
        let mut fields: Vec<(usize, &str)> = Vec::new();
        {
            let base = if is_macro {
                0
            } else {
                source.len() - source.trim_start().len()
            };
            let mut start = None;
            for (i, c) in expanded.char_indices() {
                if c.is_whitespace() {
                    if let Some(s) = start.take() {
                        fields.push((base + s, &expanded[s..i]));
                    }
                } else if start.is_none() {
                    start = Some(i);
                }
            }
            if let Some(s) = start {
                fields.push((base + s, &expanded[s..]));
            }
        }
        let err =
            |field: Option<usize>, offset: usize, reason: String| SchedulerError::InvalidCron {
                expr: source.to_string(),
                field,
                offset: if is_macro { 0 } else { offset },
                reason,
            };
        if fields.len() != 5 && fields.len() != 6 {
            return Err(err(
                None,
                source.len(),
                format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with a \
                     leading seconds field, found {}",
                    fields.len()
                ),
            ));
        }
        let with_seconds = fields.len() == 6;
        let first = if with_seconds { 0 } else { 1 };
        for (k, (offset, text)) in fields.iter().enumerate() {
            let idx = first + k;
            check_field(idx, text).map_err(|(rel, why)| {
                err(
                    Some(k + 1),
                    offset + rel,
                    format!("{} field: {why}", FIELD_NAMES[idx]),
                )
            })?;
        }
        let get = |idx: usize| -> &str {
            if idx == 0 && !with_seconds {
                "0"
            } else {
                fields[idx - first].1
            }
        };
        let dom = get(3);
        let dow = get(5);
        // Vixie's day rule: if either day field starts with `*`, a day must match both (a bare `*`
        // matches every day); otherwise either. croner's `+` prefix on day-of-week asks for AND.
        let and_days = dom.starts_with('*') || dow.starts_with('*');
        let normalized = format!(
            "{} {} {} {} {} {}{}",
            get(0),
            get(1),
            get(2),
            dom.replace('?', "*"),
            get(4),
            if and_days { "+" } else { "" },
            dow.replace('?', "*")
        );
        let pattern = match croner::Cron::from_str(&normalized) {
            Ok(p) => p,
            Err(e) => {
                // Find the culprit field: the first that fails alone among wildcards.
                let culprit = (0..6).find(|&idx| {
                    if idx == 0 && !with_seconds {
                        return false;
                    }
                    let mut alone = ["0", "*", "*", "*", "*", "*"];
                    alone[idx] = get(idx);
                    croner::Cron::from_str(&alone.join(" ")).is_err()
                });
                return Err(match culprit {
                    Some(idx) => {
                        let k = idx - first;
                        err(
                            Some(k + 1),
                            fields[k].0,
                            format!("{} field: {e}", FIELD_NAMES[idx]),
                        )
                    }
                    None => err(None, 0, e.to_string()),
                });
            }
        };
        let p = &pattern.pattern;
        let mut months = [false; 13];
        for m in p.months.values().into_iter().map(u32::from) {
            if (1..=12).contains(&m) {
                months[m as usize] = true;
            }
        }
        let seconds: Vec<u32> = p.seconds.values().into_iter().map(u32::from).collect();
        let minutes: Vec<u32> = p.minutes.values().into_iter().map(u32::from).collect();
        let hours: Vec<u32> = p.hours.values().into_iter().map(u32::from).collect();
        if seconds.is_empty() || minutes.is_empty() || hours.is_empty() {
            return Err(err(None, 0, "the expression matches no time of day".into()));
        }
        Ok(CronExpr {
            source: trimmed.to_string(),
            seconds,
            minutes,
            hours,
            months,
            fixed: !get(1).starts_with('*') && !get(2).starts_with('*'),
            pattern,
        })
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        self.pattern
            .pattern
            .day_match(
                d.year(),
                d.month(),
                d.day(),
                croner::Weekday::from_days_from_sunday(d.weekday().num_days_from_sunday()),
            )
            .unwrap_or(false)
    }

    /// The first time of day ≥ `floor` that matches the time fields.
    fn first_time_ge(&self, floor: NaiveTime) -> Option<NaiveTime> {
        use chrono::Timelike;
        let (fh, fm, fs) = (floor.hour(), floor.minute(), floor.second());
        for &h in self.hours.iter().filter(|&&h| h >= fh) {
            let min_floor = if h == fh { fm } else { 0 };
            for &m in self.minutes.iter().filter(|&&m| m >= min_floor) {
                let sec_floor = if h == fh && m == fm { fs } else { 0 };
                if let Some(&s) = self.seconds.iter().find(|&&s| s >= sec_floor) {
                    return NaiveTime::from_hms_opt(h, m, s);
                }
            }
        }
        None
    }

    /// The first local wall-clock time ≥ `from` that matches the expression.
    fn next_local(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut date = from.date();
        let mut floor = Some(from.time());
        let end_year = from.year() + SEARCH_YEARS;
        while date.year() <= end_year {
            if !self.months[date.month() as usize] {
                // Jump to the first day of the next month.
                let (y, m) = if date.month() == 12 {
                    (date.year() + 1, 1)
                } else {
                    (date.year(), date.month() + 1)
                };
                date = NaiveDate::from_ymd_opt(y, m, 1)?;
                floor = None;
                continue;
            }
            if self.day_matches(date) {
                if let Some(t) = self.first_time_ge(floor.unwrap_or(NaiveTime::MIN)) {
                    return Some(date.and_time(t));
                }
            }
            date = date.succ_opt()?;
            floor = None;
        }
        None
    }

    /// The instants a local wall-clock time stands for, under the DST rule.
    fn instants(&self, tz: Tz, local: NaiveDateTime) -> Instants {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => Instants::One(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
                let (first, second) = if a <= b { (a, b) } else { (b, a) };
                if self.fixed {
                    Instants::One(first)
                } else {
                    Instants::Two(first, second)
                }
            }
            LocalResult::None => {
                if self.fixed {
                    gap_end(tz, local).map_or(Instants::None, Instants::One)
                } else {
                    Instants::None
                }
            }
        }
    }

    fn next_after(&self, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Within two days of either end of chrono's range, local times (offsets under a day) and
        // the DST look-around below would overflow (found by fuzzing): no run is found near the
        // end, and the search near the start begins two days in.
        let margin = chrono::TimeDelta::days(2);
        after.checked_add_signed(margin)?;
        let floor = DateTime::<Utc>::MIN_UTC + margin;
        let after = after.max(floor);
        let off = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc());
        let local = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local();
        // Local times before `after`'s own can map to later instants when a transition follows
        // soon (a second pass, a gap's end): start the search earlier then. Checked arithmetic:
        // `after` may lie within MAX_SHIFT of the range chrono can hold (found by fuzzing).
        let (later, earlier) = (
            after.checked_add_signed(MAX_SHIFT),
            after.checked_sub_signed(MAX_SHIFT),
        );
        let start = match (later, earlier) {
            (Some(l), Some(e)) if off(l) == off(after) && off(e) == off(after) => local(after),
            (_, e) => local(e.unwrap_or(DateTime::<Utc>::MIN_UTC)),
        };
        let mut cursor = start.with_nanosecond_zero();
        let mut best: Option<DateTime<Utc>> = None;
        let mut limit: Option<NaiveDateTime> = None;
        loop {
            let cand = match self.next_local(cursor) {
                Some(c) => c,
                None => return best,
            };
            if limit.is_some_and(|l| cand >= l) {
                return best;
            }
            for u in self.instants(tz, cand).iter() {
                if u > after && best.is_none_or(|b| u < b) {
                    best = Some(u);
                }
            }
            if let (Some(b), None) = (best, limit) {
                // A later local time can only map to an earlier instant across a transition just
                // before `b` (its second pass); without one, `b` is the answer.
                if b.checked_sub_signed(MAX_SHIFT)
                    .is_none_or(|e| off(e) == off(b))
                {
                    return Some(b);
                }
                limit = Some(
                    local(b)
                        .checked_add_signed(MAX_SHIFT)
                        .unwrap_or(NaiveDateTime::MAX),
                );
            }
            let Some(next) = cand.checked_add_signed(chrono::TimeDelta::seconds(1)) else {
                return best;
            };
            cursor = next;
        }
    }
}

trait NanoZero {
    fn with_nanosecond_zero(self) -> Self;
}
impl NanoZero for NaiveDateTime {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}

enum Instants {
    None,
    One(DateTime<Utc>),
    Two(DateTime<Utc>, DateTime<Utc>),
}

impl Instants {
    fn iter(&self) -> impl Iterator<Item = DateTime<Utc>> {
        let (a, b) = match *self {
            Instants::None => (None, None),
            Instants::One(a) => (Some(a), None),
            Instants::Two(a, b) => (Some(a), Some(b)),
        };
        a.into_iter().chain(b)
    }
}

/// The first instant after the spring-forward gap that holds the nonexistent local time `local`.
fn gap_end(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let naive_utc = local.and_utc();
    // Read with the offset from before the gap, `local` lands after the transition.
    let before = tz
        .offset_from_utc_datetime(&(naive_utc - chrono::TimeDelta::days(1)).naive_utc())
        .fix();
    let hi = naive_utc - chrono::TimeDelta::seconds(i64::from(before.local_minus_utc()));
    let lo = hi - MAX_SHIFT;
    let off = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    let after_off = off(hi);
    if off(lo) == after_off {
        return None;
    }
    // Binary search (to the second) for the transition in (lo, hi].
    let (mut lo, mut hi) = (lo.timestamp(), hi.timestamp());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if off(DateTime::from_timestamp(mid, 0)?) == after_off {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

/// Our own syntax check of one field, so that errors carry a position; `Err((offset in field, why))`.
fn check_field(idx: usize, text: &str) -> Result<(), (usize, String)> {
    let (lo, hi) = FIELD_RANGES[idx];
    let mut pos = 0;
    for element in text.split(',') {
        let at = pos;
        pos += element.len() + 1;
        if element.is_empty() {
            return Err((at, "empty list element".into()));
        }
        let upper = element.to_ascii_uppercase();
        // Quartz-style extras croner understands: L, W, LW, nL, n#k (day fields only).
        let extra = match idx {
            3 => upper.contains('L') || upper.contains('W'),
            5 => upper.contains('#') || (upper.ends_with('L') && upper.len() > 1) || upper == "L",
            _ => false,
        };
        if extra {
            continue;
        }
        let (range, step) = match upper.split_once('/') {
            Some((r, s)) => (r, Some((s, at + r.len() + 1))),
            None => (upper.as_str(), None),
        };
        if let Some((s, s_at)) = step {
            match s.parse::<u32>() {
                Ok(0) => return Err((s_at, "a step must be at least 1".into())),
                Ok(n) if n > hi => {
                    return Err((
                        s_at,
                        format!("step {n} is larger than the field's maximum {hi}"),
                    ));
                }
                Ok(_) => {}
                Err(_) => return Err((s_at, format!("`{s}` is not a step number"))),
            }
        }
        if range == "*" || (range == "?" && (idx == 3 || idx == 5)) {
            continue;
        }
        let value = |v: &str, v_at: usize| -> Result<u32, (usize, String)> {
            if let Ok(n) = v.parse::<u32>() {
                if n < lo || n > hi {
                    return Err((v_at, format!("{n} is out of range {lo}-{hi}")));
                }
                return Ok(n);
            }
            let names: &[&str] = match idx {
                4 => &MONTHS,
                5 => &DAYS,
                _ => &[],
            };
            match names.iter().position(|n| *n == v) {
                Some(i) if idx == 4 => Ok(i as u32 + 1),
                Some(i) => Ok(i as u32),
                None if v.is_empty() => Err((v_at, "missing value".into())),
                None => Err((v_at, format!("`{v}` is not a valid value ({lo}-{hi})"))),
            }
        };
        match range.split_once('-') {
            Some((a, b)) => {
                let va = value(a, at)?;
                let vb = value(b, at + a.len() + 1)?;
                if va > vb {
                    return Err((at, format!("range {a}-{b} runs backwards")));
                }
            }
            None => {
                value(range, at)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
}
