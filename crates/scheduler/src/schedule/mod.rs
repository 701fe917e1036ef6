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
//!
//! Here: [`Schedule`] and its stored form. The parts: `cron` (parsing a cron expression, the day
//! rule), `syntax` (the syntax check that says where), `dst` (the DST rule), `interval` (intervals
//! and instants).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::error::SchedulerError;

mod cron;
mod dst;
mod interval;
mod syntax;
#[cfg(test)]
mod tests;

use cron::CronExpr;
pub use interval::format_interval;
use interval::{parse_instant, parse_interval};

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
