//! The DST rule: which instants a matching local wall-clock time stands for (a fixed-time job in
//! the spring-forward gap runs at the gap's end, in the repeated hour on the first pass only; other
//! jobs skip the gap and run in both passes), and the next run after an instant.

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use super::cron::CronExpr;

/// The widest UTC offset change around a DST transition that the evaluator accounts for.
const MAX_SHIFT: chrono::TimeDelta = chrono::TimeDelta::hours(3);

impl CronExpr {
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

    pub(super) fn next_after(&self, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
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
