//! The alert book: one lifecycle per invariant and subject.
//!
//! A violation fires an alert once; while it lasts the alert is re-sent at most once per
//! [`RESEND_AFTER`]; when it clears, exactly one "resolved" follows (only for an alert that reached
//! someone). The book is plain data, persisted by the driver with its cursor, so a restart neither
//! re-fires a firing alert nor forgets one that must be resolved. [`AlertBook::plan`] decides;
//! [`AlertBook::record_sent`] is told what was delivered, so a failed send is planned again.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Violation;
use crate::time::micros;

/// How long a firing alert stays quiet before it is sent again.
pub const RESEND_AFTER: TimeDelta = TimeDelta::hours(1);

/// Invariants whose violation line is already the full firing text (product.md's wording), so
/// [`AlertAction::text`] adds no "🚨 [Ix]" prefix: I8, `⏳ <task> alive but stalled: …`.
pub const OWN_TEXT: &[&str] = &["I8"];

/// Firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The violation holds (first send, or a re-send after [`RESEND_AFTER`]).
    Firing,
    /// The violation cleared.
    Resolved,
}

/// An alert to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertAction {
    /// Firing or resolved.
    pub state: AlertState,
    /// The invariant id (`I1` …).
    pub invariant: String,
    /// What it is about.
    pub subject: String,
    /// The violation's line (for a resolved alert: the last one seen while it fired).
    pub message: String,
    /// When the book first saw it.
    pub first_seen: DateTime<Utc>,
    /// Which send this is (1 = the first); 0 for a resolved alert.
    pub send: u32,
}

impl AlertAction {
    /// Its idempotency key: firing alerts by first-seen time and send number, resolved ones by
    /// first-seen time, so every send and every resolution is one distinct effect.
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

    /// The text a person reads: "🚨 [I5] channel #slack disconnected for 3m (timeout)" when firing,
    /// "✅ [I5] resolved: slack (was: …)" when resolved. A violation whose line is the product's
    /// own alert text ([`OWN_TEXT`]: I8, "⏳ backup alive but stalled: …") is shown as is.
    pub fn text(&self) -> String {
        match self.state {
            AlertState::Firing if OWN_TEXT.contains(&self.invariant.as_str()) => {
                self.message.clone()
            }
            AlertState::Firing => format!("🚨 [{}] {}", self.invariant, self.message),
            AlertState::Resolved => format!(
                "✅ [{}] resolved: {} (was: {})",
                self.invariant, self.subject, self.message
            ),
        }
    }
}

/// One alert the book holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookEntry {
    /// The invariant id.
    pub invariant: String,
    /// The subject.
    pub subject: String,
    /// The latest line.
    pub message: String,
    /// When it was first seen.
    pub first_seen: DateTime<Utc>,
    /// When it was last delivered (None: never yet).
    pub last_sent: Option<DateTime<Utc>>,
    /// How many sends were delivered.
    pub sends: u32,
}

/// The firing alerts, keyed `invariant|subject`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertBook {
    /// Every alert that fires, or cleared with its "resolved" not yet delivered.
    pub firing: BTreeMap<String, BookEntry>,
}

/// What [`AlertBook::plan`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertPlan {
    /// Alerts to send now.
    pub actions: Vec<AlertAction>,
    /// Invariant ids of violations that began this time (for the violations counter).
    pub onsets: Vec<String>,
}

impl AlertBook {
    /// Decides which alerts to send for the `violations` that hold at `now`, and notes new ones.
    pub fn plan(&mut self, violations: &[Violation], now: DateTime<Utc>) -> AlertPlan {
        let mut plan = AlertPlan::default();
        let mut current = std::collections::BTreeSet::new();
        for v in violations {
            let key = v.alert_key();
            current.insert(key.clone());
            let entry = self.firing.entry(key).or_insert_with(|| {
                plan.onsets.push(v.invariant.clone());
                BookEntry {
                    invariant: v.invariant.clone(),
                    subject: v.subject.clone(),
                    message: v.message.clone(),
                    first_seen: now,
                    last_sent: None,
                    sends: 0,
                }
            });
            entry.message.clone_from(&v.message);
            let due = entry.last_sent.is_none_or(|t| now - t >= RESEND_AFTER);
            if due {
                plan.actions.push(AlertAction {
                    state: AlertState::Firing,
                    invariant: entry.invariant.clone(),
                    subject: entry.subject.clone(),
                    message: entry.message.clone(),
                    first_seen: entry.first_seen,
                    send: entry.sends + 1,
                });
            }
        }
        // Cleared: one "resolved" for an alert someone saw; silently forgotten otherwise.
        self.firing.retain(|key, e| {
            if current.contains(key) {
                return true;
            }
            if e.last_sent.is_none() {
                return false;
            }
            plan.actions.push(AlertAction {
                state: AlertState::Resolved,
                invariant: e.invariant.clone(),
                subject: e.subject.clone(),
                message: e.message.clone(),
                first_seen: e.first_seen,
                send: 0,
            });
            true
        });
        plan
    }

    /// Records that `alert` was delivered at `now` (a repeat of the same send changes nothing).
    pub fn record_sent(&mut self, alert: &AlertAction, now: DateTime<Utc>) {
        let key = format!("{}|{}", alert.invariant, alert.subject);
        match alert.state {
            AlertState::Firing => {
                if let Some(e) = self.firing.get_mut(&key)
                    && e.first_seen == alert.first_seen
                    && alert.send == e.sends + 1
                {
                    e.sends = alert.send;
                    e.last_sent = Some(now);
                }
            }
            AlertState::Resolved => {
                if self
                    .firing
                    .get(&key)
                    .is_some_and(|e| e.first_seen == alert.first_seen)
                {
                    self.firing.remove(&key);
                }
            }
        }
    }

    /// How many alerts fire per invariant.
    pub fn firing_by_invariant(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for e in self.firing.values() {
            *out.entry(e.invariant.clone()).or_default() += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(inv: &str, subject: &str) -> Violation {
        Violation {
            invariant: inv.into(),
            subject: subject.into(),
            message: format!("{subject} is wrong"),
            since: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn fires_once_resends_after_an_hour_resolves_once() {
        let t0 = DateTime::UNIX_EPOCH + TimeDelta::days(20000);
        let mut book = AlertBook::default();
        let p = book.plan(&[v("I5", "slack")], t0);
        assert_eq!(p.onsets, ["I5"]);
        assert_eq!(p.actions.len(), 1);
        // Not delivered: planned again, same key.
        let again = book.plan(&[v("I5", "slack")], t0 + TimeDelta::seconds(5));
        assert_eq!(again.actions[0].key(), p.actions[0].key());
        assert!(again.onsets.is_empty());
        book.record_sent(&again.actions[0], t0 + TimeDelta::seconds(5));
        book.record_sent(&again.actions[0], t0 + TimeDelta::seconds(6)); // repeat: no-op
        assert_eq!(book.firing["I5|slack"].sends, 1);
        assert!(
            book.plan(&[v("I5", "slack")], t0 + TimeDelta::minutes(59))
                .actions
                .is_empty()
        );
        let resend = book.plan(&[v("I5", "slack")], t0 + TimeDelta::minutes(65));
        assert_eq!(resend.actions[0].send, 2);
        book.record_sent(&resend.actions[0], t0 + TimeDelta::minutes(65));
        let cleared = book.plan(&[], t0 + TimeDelta::minutes(70));
        assert_eq!(cleared.actions[0].state, AlertState::Resolved);
        book.record_sent(&cleared.actions[0], t0 + TimeDelta::minutes(70));
        assert!(
            book.plan(&[], t0 + TimeDelta::minutes(71))
                .actions
                .is_empty()
        );
        assert!(book.firing.is_empty());
    }

    #[test]
    fn a_violation_that_clears_before_any_send_resolves_silently() {
        let t0 = DateTime::UNIX_EPOCH;
        let mut book = AlertBook::default();
        book.plan(&[v("I2", "c1")], t0);
        assert!(book.plan(&[], t0).actions.is_empty());
        assert!(book.firing.is_empty());
    }
}
