//! The reconciler's alerts, as the runtime sees them. It keeps **no alert lifecycle**: each tick
//! the driver hands the whole current set of violations to its effects
//! ([`Execute::violations`](crate::Execute::violations)), and the host's lifecycle (in lookoutd,
//! lookout-notify's `alerts`: one state per rule + subject in the store) is the only place an
//! alert fires, repeats, folds, is held or resolves.
//!
//! What this module keeps is the *view*: [`Violating`], the violations handed over at the last
//! tick (persisted with the driver's cursor), and [`Violating::diff`], which says which alerts
//! the next hand-over begins ([`AlertState::Firing`]) and ends ([`AlertState::Resolved`]) — what
//! dry-run, replay and the tick report show, and what the violation metrics count. It decides no
//! send: a violation that holds is handed over on every tick whether it began now or an hour ago.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Violation;
use crate::time::micros;

/// Invariants whose violation line is already the full firing text (product.md's wording), so
/// [`Violation::alert_text`] adds no "🚨 [Ix]" prefix: I8, `⏳ <task> alive but stalled: …`.
pub const OWN_TEXT: &[&str] = &["I8"];

/// Begins or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The violation began: the hand-over fires its alert.
    Firing,
    /// The violation cleared: the hand-over no longer holds it, so its alert resolves.
    Resolved,
}

/// An alert that begins or ends with a hand-over of the violations: shown by dry-run, replay and
/// the tick report (as the model's alert action), never executed on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertAction {
    /// Firing or resolved.
    pub state: AlertState,
    /// The invariant id (`I1` …).
    pub invariant: String,
    /// What it is about.
    pub subject: String,
    /// The violation's line (for a resolved alert: the last one handed over).
    pub message: String,
    /// When the driver first handed it over (for one that begins: now).
    pub first_seen: DateTime<Utc>,
    /// 1 for a firing alert, 0 for a resolved one. (Reminders of a lasting alert are the host
    /// lifecycle's, so there is no second send here; the field keeps the JSON shape.)
    pub send: u32,
}

impl AlertAction {
    /// Its key: firing alerts by first-seen time, resolved ones by the first-seen time of the
    /// firing they end, so every begin and every end is one distinct entry.
    pub fn key(&self) -> String {
        match self.state {
            AlertState::Firing => format!(
                "alert:{}:{}:{}:{}",
                self.invariant,
                self.subject,
                micros(self.first_seen),
                self.send
            ),
            AlertState::Resolved => format!(
                "resolved:{}:{}:{}",
                self.invariant,
                self.subject,
                micros(self.first_seen)
            ),
        }
    }

    /// The text a person reads: [`Violation::alert_text`] when firing ("🚨 [I5] channel #slack
    /// disconnected for 3m (timeout)"; I8 as is), "✅ [I5] resolved: slack (was: …)" when
    /// resolved.
    pub fn text(&self) -> String {
        match self.state {
            AlertState::Firing => firing_text(&self.invariant, &self.message),
            AlertState::Resolved => format!(
                "✅ [{}] resolved: {} (was: {})",
                self.invariant, self.subject, self.message
            ),
        }
    }
}

/// "🚨 [I5] <message>", or the message as is for an invariant in [`OWN_TEXT`].
pub(crate) fn firing_text(invariant: &str, message: &str) -> String {
    if OWN_TEXT.contains(&invariant) {
        message.to_owned()
    } else {
        format!("🚨 [{invariant}] {message}")
    }
}

/// One violation as the driver last handed it over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The invariant id.
    pub invariant: String,
    /// The subject.
    pub subject: String,
    /// The line last handed over.
    pub message: String,
    /// When it was first handed over.
    pub first_seen: DateTime<Utc>,
}

/// The violations handed over at the last tick whose hand-over succeeded, keyed
/// [`Violation::alert_key`] (`invariant|subject`). Not a dedup: the driver hands every current
/// violation over on every tick; this only tells which of them began or cleared since.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Violating(pub BTreeMap<String, Seen>);

impl Violating {
    /// The alerts a hand-over of `current` at `now` begins (in the violations' order) and ends
    /// (in key order).
    pub fn diff(&self, current: &[Violation], now: DateTime<Utc>) -> Vec<AlertAction> {
        let mut out = Vec::new();
        let mut keys = BTreeSet::new();
        for v in current {
            let key = v.alert_key();
            if !self.0.contains_key(&key) && !keys.contains(&key) {
                out.push(AlertAction {
                    state: AlertState::Firing,
                    invariant: v.invariant.clone(),
                    subject: v.subject.clone(),
                    message: v.message.clone(),
                    first_seen: now,
                    send: 1,
                });
            }
            keys.insert(key);
        }
        for (key, s) in &self.0 {
            if !keys.contains(key) {
                out.push(AlertAction {
                    state: AlertState::Resolved,
                    invariant: s.invariant.clone(),
                    subject: s.subject.clone(),
                    message: s.message.clone(),
                    first_seen: s.first_seen,
                    send: 0,
                });
            }
        }
        out
    }

    /// Records that `current` was handed over at `now`: new violations are added (first seen
    /// now), lasting ones keep their first-seen time and take the latest line, cleared ones go.
    pub fn record(&mut self, current: &[Violation], now: DateTime<Utc>) {
        let mut next = BTreeMap::new();
        for v in current {
            let key = v.alert_key();
            let first_seen = self.0.get(&key).map_or(now, |s| s.first_seen);
            next.insert(
                key,
                Seen {
                    invariant: v.invariant.clone(),
                    subject: v.subject.clone(),
                    message: v.message.clone(),
                    first_seen,
                },
            );
        }
        self.0 = next;
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How many of `violations` there are per invariant (the firing gauge).
pub fn count_by_invariant(violations: &[Violation]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for v in violations {
        *out.entry(v.invariant.clone()).or_default() += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn v(inv: &str, subject: &str, message: &str) -> Violation {
        Violation {
            invariant: inv.into(),
            subject: subject.into(),
            message: message.into(),
            since: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_diff_says_what_begins_and_what_ends_and_decides_no_send() {
        let t0 = DateTime::UNIX_EPOCH + TimeDelta::days(20000);
        let mut seen = Violating::default();
        let slack = |m: u32| {
            v(
                "I5",
                "slack",
                &format!("channel #slack disconnected for {m}m"),
            )
        };
        let d = seen.diff(&[slack(3)], t0);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].state, d[0].send), (AlertState::Firing, 1));
        assert_eq!(d[0].text(), "🚨 [I5] channel #slack disconnected for 3m");
        // Not handed over (the hand-over failed): it begins again, with the same key at the same now.
        assert_eq!(seen.diff(&[slack(3)], t0)[0].key(), d[0].key());
        seen.record(&[slack(3)], t0);
        // Lasting, an hour or a day later: nothing begins (no re-send: reminders are the host
        // lifecycle's), the line is the latest.
        for later in [
            TimeDelta::minutes(59),
            TimeDelta::hours(2),
            TimeDelta::days(1),
        ] {
            assert!(seen.diff(&[slack(60)], t0 + later).is_empty());
            seen.record(&[slack(60)], t0 + later);
        }
        assert_eq!(seen.0["I5|slack"].first_seen, t0);
        let end = seen.diff(&[], t0 + TimeDelta::days(2));
        assert_eq!(end.len(), 1);
        assert_eq!(end[0].state, AlertState::Resolved);
        assert_eq!(
            end[0].text(),
            "✅ [I5] resolved: slack (was: channel #slack disconnected for 60m)"
        );
        assert_eq!(
            end[0].key(),
            format!("resolved:I5:slack:{}", micros(t0)),
            "keyed by the firing it ends"
        );
        seen.record(&[], t0 + TimeDelta::days(2));
        assert!(seen.is_empty());
        assert!(seen.diff(&[], t0 + TimeDelta::days(3)).is_empty());
    }

    #[test]
    fn an_own_text_invariant_is_shown_as_is() {
        let stalled = v(
            "I8",
            "r1",
            "⏳ backup alive but stalled: no progress for 5m (last: 3)",
        );
        assert_eq!(
            stalled.alert_text(),
            "⏳ backup alive but stalled: no progress for 5m (last: 3)"
        );
        let d = Violating::default().diff(std::slice::from_ref(&stalled), DateTime::UNIX_EPOCH);
        assert_eq!(d[0].text(), stalled.alert_text());
        assert_eq!(
            v("I3", "r1", "run r1 has sent no heartbeat for 4m").alert_text(),
            "🚨 [I3] run r1 has sent no heartbeat for 4m"
        );
    }

    #[test]
    fn counts_are_per_invariant() {
        let c = count_by_invariant(&[v("I4", "d1", "x"), v("I4", "d2", "x"), v("I5", "s", "x")]);
        assert_eq!(c, BTreeMap::from([("I4".into(), 2), ("I5".into(), 1)]));
    }
}
