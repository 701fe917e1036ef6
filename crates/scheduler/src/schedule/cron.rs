//! Cron expressions: parsed by `croner` after our own syntax check, and matched over local
//! wall-clock times with Vixie cron's day rule.

use std::str::FromStr;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};

use crate::error::SchedulerError;

use super::syntax::check_field;

/// How far ahead a cron expression is searched for a match (covers leap days and weekday cycles).
const SEARCH_YEARS: i32 = 30;

const FIELD_NAMES: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
];

#[derive(Clone, Debug)]
pub(super) struct CronExpr {
    pub(super) source: String,
    seconds: Vec<u32>,
    minutes: Vec<u32>,
    hours: Vec<u32>,
    months: [bool; 13],
    pattern: croner::Cron,
    pub(super) fixed: bool,
}

impl CronExpr {
    pub(super) fn parse(source: &str) -> Result<CronExpr, SchedulerError> {
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
    pub(super) fn next_local(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
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
}
