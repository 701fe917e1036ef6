//! Dry-run and replay: the reconciler's decisions without their effects. Neither executes an
//! action nor writes anything.
//!
//! - [`dry_run`]: the live state (the persisted driver state plus the events not applied yet),
//!   decided at `now`: the actions the next tick would execute, and the violations.
//! - [`replay`]: the events of a time range applied to a fresh state, decided at the range's end.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::alerts::Violating;
use crate::driver::{DriverConfig, decide, load_state};
use crate::error::{RangeProblem, ReconcileError};
use crate::model::{Model, ModelAction, Violation};
use crate::source::EventSource;

/// Events read per page by dry-run and replay.
const PAGE: u32 = 10_000;

/// What [`dry_run`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryRun<A> {
    /// The cursor of the persisted state it started from.
    pub persisted_cursor: i64,
    /// Events after it, applied to the copy.
    pub pending_applied: usize,
    /// The `now` decided at.
    pub now: DateTime<Utc>,
    /// The invariants that do not hold.
    pub violations: Vec<Violation>,
    /// The actions not done yet, in the order the tick executes them; then the alerts the tick's
    /// hand-over of the violations would begin (firing) or end (resolved), compared with the set
    /// handed over last.
    pub actions: Vec<A>,
    /// Keys of those actions the tick would not execute (repairs while `auto_repair` is off).
    pub not_executed: Vec<String>,
}

/// Reconciles the live state at `now` and returns the actions without executing them. Reads the
/// driver's persisted state and the log; writes nothing.
pub async fn dry_run<M, S>(
    model: &M,
    source: &S,
    config: &DriverConfig,
    now: DateTime<Utc>,
) -> Result<DryRun<M::Action>, ReconcileError>
where
    M: Model,
    S: EventSource + ?Sized,
{
    let mut st = load_state::<M::State, S>(source, &config.state_key).await?;
    let persisted_cursor = st.cursor;
    let mut applied = 0;
    loop {
        let page = source.events_after(st.cursor, PAGE).await?;
        for r in &page {
            model.apply(&mut st.state, &model.decode(r));
            st.cursor = r.seq;
        }
        applied += page.len();
        if page.len() < PAGE as usize {
            break;
        }
    }
    let d = decide(model, &st.state, &st.violating, now);
    let actions: Vec<M::Action> = d
        .actions
        .into_iter()
        .filter(|a| !st.done.contains(&a.key()))
        .collect();
    let not_executed = actions
        .iter()
        .filter(|a| a.is_repair() && !config.auto_repair)
        .map(|a| a.key())
        .collect();
    Ok(DryRun {
        persisted_cursor,
        pending_applied: applied,
        now,
        violations: d.violations,
        actions,
        not_executed,
    })
}

/// What [`replay`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replay<S, A> {
    /// The range's start (inclusive).
    pub from: DateTime<Utc>,
    /// The range's end (exclusive); also the `now` decided at.
    pub to: DateTime<Utc>,
    /// Events applied.
    pub events: usize,
    /// The first and last seq applied.
    pub seqs: Option<(i64, i64)>,
    /// The state after the range.
    pub state: S,
    /// The invariants that do not hold at `to`.
    pub violations: Vec<Violation>,
    /// The actions decided at `to`: the model's, then a firing alert for every violation (nothing
    /// was handed over before the range).
    pub actions: Vec<A>,
}

/// Applies the events with `from <= at < to` to a fresh state (in seq order) and decides at `to`.
/// Reads the log only.
pub async fn replay<M, S>(
    model: &M,
    source: &S,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Replay<M::State, M::Action>, ReconcileError>
where
    M: Model,
    S: EventSource + ?Sized,
{
    let mut state = M::State::default();
    let (mut after, mut events, mut first) = (0, 0, None);
    loop {
        let page = source.events_between(from, to, after, PAGE).await?;
        for r in &page {
            model.apply(&mut state, &model.decode(r));
            first.get_or_insert(r.seq);
            after = r.seq;
        }
        events += page.len();
        if page.len() < PAGE as usize {
            break;
        }
    }
    let d = decide(model, &state, &Violating::default(), to);
    Ok(Replay {
        from,
        to,
        events,
        seqs: first.map(|f| (f, after)),
        state,
        violations: d.violations,
        actions: d.actions,
    })
}

/// Replay without a store: applies `events` to a fresh state and decides at `now`.
pub fn replay_events<M: Model>(
    model: &M,
    events: impl IntoIterator<Item = M::Event>,
    now: DateTime<Utc>,
) -> (M::State, Decision<M::Action>) {
    let mut state = M::State::default();
    for e in events {
        model.apply(&mut state, &e);
    }
    let d = decide(model, &state, &Violating::default(), now);
    (state, d)
}

use crate::driver::Decision;

/// A replay range as the daemon receives it, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReplayRequest {
    /// Start (inclusive).
    pub from: DateTime<Utc>,
    /// End (exclusive).
    pub to: DateTime<Utc>,
}

impl ReplayRequest {
    /// Parses two ISO 8601 (RFC 3339) times and validates the range against `max`.
    pub fn parse(from: &str, to: &str, max: Duration) -> Result<Self, ReconcileError> {
        let parse = |field: &'static str, s: &str| {
            DateTime::parse_from_rfc3339(s.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| ReconcileError::InvalidRange {
                    field,
                    problem: RangeProblem::Unparseable,
                    reason: format!(
                        "`{field}` must be an ISO 8601 time such as 2026-11-24T10:00:00Z ({e})"
                    ),
                })
        };
        let r = ReplayRequest {
            from: parse("from", from)?,
            to: parse("to", to)?,
        };
        r.validate(max)?;
        Ok(r)
    }

    /// Refuses a reversed range, or one longer than `max`.
    pub fn validate(&self, max: Duration) -> Result<(), ReconcileError> {
        if self.to < self.from {
            return Err(ReconcileError::InvalidRange {
                field: "range",
                problem: RangeProblem::Reversed,
                reason: format!(
                    "the range is reversed: `from` {} is after `to` {}",
                    self.from.to_rfc3339(),
                    self.to.to_rfc3339()
                ),
            });
        }
        if self.to - self.from > crate::time::delta(max) {
            return Err(ReconcileError::InvalidRange {
                field: "range",
                problem: RangeProblem::TooLong,
                reason: format!(
                    "the range is {} long, more than the maximum of {}",
                    crate::time::human(self.to - self.from),
                    crate::time::human(crate::time::delta(max))
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_requests_name_what_is_wrong() {
        let max = Duration::from_secs(24 * 3600);
        let ok = ReplayRequest::parse("2026-11-24T10:00:00Z", "2026-11-24T11:00:00+01:00", max);
        assert!(ok.is_ok(), "{ok:?}");
        let e = ReplayRequest::parse("yesterday", "2026-11-24T11:00:00Z", max).unwrap_err();
        assert!(matches!(
            e,
            ReconcileError::InvalidRange {
                field: "from",
                problem: RangeProblem::Unparseable,
                ..
            }
        ));
        let e =
            ReplayRequest::parse("2026-11-24T11:00:00Z", "2026-11-24T10:00:00Z", max).unwrap_err();
        assert!(matches!(
            e,
            ReconcileError::InvalidRange {
                problem: RangeProblem::Reversed,
                ..
            }
        ));
        let e =
            ReplayRequest::parse("2026-11-20T11:00:00Z", "2026-11-24T10:00:00Z", max).unwrap_err();
        assert!(
            matches!(
                e,
                ReconcileError::InvalidRange {
                    problem: RangeProblem::TooLong,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("maximum of 24h00m"), "{e}");
    }
}
