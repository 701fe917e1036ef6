//! A channel's inbound rhythm per hour of the week, and the quiet judgement over it.

use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};
use serde::{Deserialize, Serialize};

use super::{FlowLimits, QuietChannel, delta, short};

/// Hours in a week: the rhythm's slots.
pub const SLOTS: usize = 168;

const WEEK: i64 = 7 * 86_400;
/// The Unix epoch was a Thursday: the first Monday 00:00 UTC is 4 days later.
const FIRST_MONDAY: i64 = 4 * 86_400;
/// A gap is learned (and a silence weighed) over at most this long.
const HORIZON: TimeDelta = TimeDelta::days(14);
/// An hour of the week needs this much observed time before its rate counts.
const MIN_OBSERVED: f64 = 1800.0;

/// The hour of the week of `t` in UTC: Monday 00:00–01:00 is 0, Sunday 23:00–24:00 is 167.
pub fn hour_of_week(t: DateTime<Utc>) -> usize {
    t.weekday().num_days_from_monday() as usize * 24 + t.hour() as usize
}

fn week_of(t: DateTime<Utc>) -> i64 {
    (t.timestamp() - FIRST_MONDAY).div_euclid(WEEK)
}

/// The next hour boundary after `t`.
fn next_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp().div_euclid(3600) * 3600 + 3600;
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// One hour of the week: arrivals and observed seconds, decayed to the start of week `w`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Slot {
    #[serde(rename = "n")]
    pub(super) arrivals: f64,
    #[serde(rename = "s")]
    pub(super) observed: f64,
    #[serde(rename = "w")]
    week: i64,
}

impl Slot {
    fn factor(&self, week: i64, per_week: f64) -> f64 {
        if week > self.week {
            per_week.powi((week - self.week).min(10_000) as i32)
        } else {
            1.0
        }
    }

    /// Brought to `week`: both counts decayed by the weeks since the last update.
    fn at(&mut self, week: i64, per_week: f64) -> &mut Slot {
        let f = self.factor(week, per_week);
        self.arrivals *= f;
        self.observed *= f;
        self.week = self.week.max(week);
        self
    }

    /// The rate in arrivals per second, when known at `week`: enough arrivals and observed time.
    fn rate(&self, week: i64, limits: &FlowLimits, per_week: f64) -> f64 {
        let f = self.factor(week, per_week);
        let known = self.arrivals * f >= limits.min_slot_messages.max(1e-9)
            && self.observed >= MIN_OBSERVED;
        if known {
            self.arrivals / self.observed
        } else {
            0.0
        }
    }
}

/// One channel: its inbound rhythm per hour of the week, its latest message and its connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelRhythm {
    /// Its first inbound message.
    pub first_seen: Option<DateTime<Utc>>,
    /// Its latest inbound message (by event time).
    pub last_inbound: Option<DateTime<Utc>>,
    /// The latest message counted as an arrival (the start of the current burst).
    last_counted: Option<DateTime<Utc>>,
    /// Inbound messages seen.
    inbound: u64,
    /// Disconnected since this time (None: connected, or never said).
    disconnected_since: Option<DateTime<Utc>>,
    /// The latest `channel_connected`.
    connected_at: Option<DateTime<Utc>>,
    /// The 168 hours of the week (empty until the first message).
    pub(super) slots: Vec<Slot>,
}

fn per_week(limits: &FlowLimits) -> f64 {
    let half = limits.half_life.as_secs_f64();
    if half <= 0.0 {
        return 0.0;
    }
    0.5f64.powf(WEEK as f64 / half)
}

impl ChannelRhythm {
    /// Inbound messages seen.
    pub fn inbound_count(&self) -> u64 {
        self.inbound
    }

    /// Connected, as its last `channel_*` event said (true when none did).
    pub fn connected(&self) -> bool {
        self.disconnected_since.is_none()
    }

    pub(super) fn connection(&mut self, up: bool, at: DateTime<Utc>) {
        if up {
            self.disconnected_since = None;
            self.connected_at = Some(self.connected_at.map_or(at, |c| c.max(at)));
        } else if self.disconnected_since.is_none() {
            self.disconnected_since = Some(at);
        }
    }

    /// One inbound message at `at`: the gap it closes is learned, and it is an arrival unless it
    /// is within `burst` of the last one counted. A message older than the latest (a late
    /// report) is counted as seen and not learned.
    pub(super) fn inbound(&mut self, at: DateTime<Utc>, limits: &FlowLimits) {
        self.inbound += 1;
        if self.slots.len() != SLOTS {
            self.slots = vec![Slot::default(); SLOTS];
        }
        match self.last_inbound {
            Some(last) if at < last => return,
            Some(last) => self.observe(last, at, limits),
            None => self.first_seen = Some(at),
        }
        let pw = per_week(limits);
        if self
            .last_counted
            .is_none_or(|c| at - c >= delta(limits.burst))
        {
            self.slots[hour_of_week(at)].at(week_of(at), pw).arrivals += 1.0;
            self.last_counted = Some(at);
        }
        self.last_inbound = Some(at);
    }

    /// The time from `from` to `to` was observed: each hour of it is added to its slot.
    fn observe(&mut self, from: DateTime<Utc>, to: DateTime<Utc>, limits: &FlowLimits) {
        let pw = per_week(limits);
        let mut t = from.max(to - HORIZON);
        while t < to {
            let end = next_hour(t).min(to);
            let secs = (end - t).num_milliseconds() as f64 / 1000.0;
            self.slots[hour_of_week(t)].at(week_of(t), pw).observed += secs;
            t = end;
        }
    }

    /// The rate of hour `h` for judging at week `week`: the least of its own and its neighbours'
    /// (0 when any of them is not known).
    fn judged_rate(&self, h: usize, week: i64, limits: &FlowLimits) -> f64 {
        if self.slots.len() != SLOTS {
            return 0.0;
        }
        let pw = per_week(limits);
        [(h + SLOTS - 1) % SLOTS, h, (h + 1) % SLOTS]
            .into_iter()
            .map(|i| self.slots[i].rate(week, limits, pw))
            .fold(f64::INFINITY, f64::min)
    }

    /// The messages the rhythm expects from `from` to `to`.
    pub fn expected(&self, from: DateTime<Utc>, to: DateTime<Utc>, limits: &FlowLimits) -> f64 {
        let week = week_of(to);
        let mut t = from.max(to - HORIZON);
        let mut sum = 0.0;
        while t < to {
            let end = next_hour(t).min(to);
            let secs = (end - t).num_milliseconds() as f64 / 1000.0;
            sum += self.judged_rate(hour_of_week(t), week, limits) * secs;
            t = end;
        }
        sum
    }

    /// The usual gap between arrivals in the hour of the week of `now` (None: not known, or no
    /// traffic then).
    pub fn usual_gap(&self, limits: &FlowLimits, now: DateTime<Utc>) -> Option<TimeDelta> {
        let rate = self.judged_rate(hour_of_week(now), week_of(now), limits);
        (rate > 0.0).then(|| TimeDelta::milliseconds((1000.0 / rate).round() as i64))
    }

    /// Less than `min_history` of its traffic seen at `now`.
    pub fn learning(&self, limits: &FlowLimits, now: DateTime<Utc>) -> bool {
        self.first_seen
            .is_none_or(|f| now - f < delta(limits.min_history))
    }

    /// Whether channel `name` is quiet at `now`: connected, past its minimum history, silent for
    /// at least the floor, and the rhythm expected at least `quiet_multiple` messages during the
    /// silence.
    pub fn quiet(
        &self,
        name: &str,
        limits: &FlowLimits,
        now: DateTime<Utc>,
    ) -> Option<QuietChannel> {
        if limits.quiet_multiple <= 0.0 || self.learning(limits, now) || !self.connected() {
            return None;
        }
        let last = self.last_inbound?;
        let since = self.connected_at.map_or(last, |c| c.max(last));
        let silence = now - since;
        if silence < delta(limits.quiet_floor) || silence <= TimeDelta::zero() {
            return None;
        }
        let expected = self.expected(since, now, limits);
        if expected < limits.quiet_multiple {
            return None;
        }
        let usual_gap =
            TimeDelta::milliseconds((silence.num_milliseconds() as f64 / expected).round() as i64);
        Some(QuietChannel {
            channel: name.to_owned(),
            since,
            silence,
            expected,
            usual_gap,
            text: format!(
                "📭 #{name} quiet for {} (usually a message every {})",
                short(silence),
                short(usual_gap)
            ),
        })
    }
}
