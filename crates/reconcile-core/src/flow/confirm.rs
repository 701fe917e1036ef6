//! Deliveries sent but never confirmed: a host that reports the channel's confirmations
//! (`delivery_confirmed`, e.g. WhatsApp's server ack) is expected to report one for every later
//! `delivery_sent` within [`FlowLimits::confirm_within`](super::FlowLimits::confirm_within) →
//! `📪 N delivery(ies) to chat C sent but never confirmed for 6m`. A host that never sends a
//! confirmation is never judged on them (its channel may have none): the first one turns the check
//! on, for the deliveries sent after it.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// At most this many deliveries are kept waiting; beyond it the oldest are forgotten (their alert
/// has long been raised by then).
const MAX_AWAITING: usize = 10_000;

/// Confirmations logged before their `delivery_sent` (a fast ack, in another client batch) kept
/// for the send that follows: at most this many, the oldest forgotten first.
const MAX_EARLY: usize = 1_000;

/// A sent delivery waiting for its confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Awaiting {
    /// Its chat.
    pub chat: String,
    /// When it was sent.
    pub sent: DateTime<Utc>,
}

/// The deliveries sent and not confirmed yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Confirmations {
    /// The host has reported a confirmation: from then on every sent delivery expects one.
    pub host_confirms: bool,
    /// Sent and not confirmed, by delivery id.
    pub awaiting: BTreeMap<String, Awaiting>,
    /// Confirmed before any `delivery_sent` of theirs was read, oldest first.
    pub early: VecDeque<String>,
}

/// A chat with deliveries unconfirmed for longer than the limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnconfirmedChat {
    /// The chat.
    pub chat: String,
    /// How many of its deliveries are unconfirmed past the limit.
    pub count: u32,
    /// When the oldest of them was sent.
    pub oldest: DateTime<Utc>,
    /// `📪 N delivery(ies) to chat C sent but never confirmed for 6m`.
    pub text: String,
}

impl Confirmations {
    /// `delivery_sent` at `at`; true when it changed the state.
    pub fn sent(&mut self, delivery_id: &str, chat: &str, at: DateTime<Utc>) -> bool {
        if !self.host_confirms {
            return false;
        }
        // Its confirmation came first: nothing to wait for.
        if let Some(i) = self.early.iter().position(|id| id == delivery_id) {
            self.early.remove(i);
            return true;
        }
        self.awaiting.insert(
            delivery_id.to_owned(),
            Awaiting {
                chat: chat.to_owned(),
                sent: at,
            },
        );
        if self.awaiting.len() > MAX_AWAITING {
            let oldest = self
                .awaiting
                .iter()
                .min_by_key(|(_, a)| a.sent)
                .map(|(id, _)| id.clone());
            if let Some(id) = oldest {
                self.awaiting.remove(&id);
            }
        }
        true
    }

    /// `delivery_confirmed`; true when it changed the state.
    pub fn confirmed(&mut self, delivery_id: &str) -> bool {
        let first = !self.host_confirms;
        self.host_confirms = true;
        if self.awaiting.remove(delivery_id).is_some() {
            return true;
        }
        // Not sent yet, as far as the log says: its send may follow.
        if !self.early.iter().any(|id| id == delivery_id) {
            self.early.push_back(delivery_id.to_owned());
            if self.early.len() > MAX_EARLY {
                self.early.pop_front();
            }
            return true;
        }
        first
    }

    /// A delivery queued again or failed: no longer sent (the reconciler's I4 follows it).
    pub fn unsent(&mut self, delivery_id: &str) -> bool {
        self.awaiting.remove(delivery_id).is_some()
    }

    /// The chats with deliveries unconfirmed for `within` or longer at `now` (zero: none).
    pub fn unconfirmed(&self, within: TimeDelta, now: DateTime<Utc>) -> Vec<UnconfirmedChat> {
        if within.is_zero() {
            return Vec::new();
        }
        let mut chats: BTreeMap<&str, (u32, DateTime<Utc>)> = BTreeMap::new();
        for a in self.awaiting.values().filter(|a| now - a.sent >= within) {
            let e = chats.entry(&a.chat).or_insert((0, a.sent));
            e.0 += 1;
            e.1 = e.1.min(a.sent);
        }
        chats
            .into_iter()
            .map(|(chat, (count, oldest))| UnconfirmedChat {
                chat: chat.to_owned(),
                count,
                oldest,
                text: format!(
                    "📪 {count} delivery(ies) to chat {chat} sent but never confirmed for {}",
                    super::short(now - oldest)
                ),
            })
            .collect()
    }

    /// When the next waiting delivery crosses `within` (None: none will, or the check is off).
    pub fn next_due(&self, within: TimeDelta) -> Option<DateTime<Utc>> {
        if within.is_zero() {
            return None;
        }
        self.awaiting.values().map(|a| a.sent + within).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn a_host_that_never_confirms_is_never_judged() {
        let mut c = Confirmations::default();
        assert!(!c.sent("d1", "chat-a", t(0)));
        assert!(c.unconfirmed(TimeDelta::minutes(5), t(86_400)).is_empty());
        assert!(
            c.awaiting.is_empty(),
            "nothing kept for a host that cannot confirm"
        );
    }

    #[test]
    fn after_the_first_confirmation_every_sent_delivery_expects_one() {
        let mut c = Confirmations::default();
        c.sent("d0", "chat-a", t(0));
        assert!(
            c.confirmed("d0"),
            "the first confirmation turns the check on"
        );
        c.sent("d1", "chat-a", t(10));
        c.sent("d2", "chat-a", t(20));
        c.sent("d3", "chat-b", t(30));
        let within = TimeDelta::minutes(5);
        assert!(c.unconfirmed(within, t(309)).is_empty());
        assert_eq!(c.next_due(within), Some(t(310)));
        let late = c.unconfirmed(within, t(400));
        assert_eq!(late.len(), 2);
        assert_eq!(
            late[0].text,
            "📪 2 delivery(ies) to chat chat-a sent but never confirmed for 6m"
        );
        assert_eq!((late[1].chat.as_str(), late[1].count), ("chat-b", 1));
        // Confirmed, or queued again (a retry), they no longer wait.
        assert!(c.confirmed("d1"));
        assert!(c.unsent("d2"));
        assert_eq!(c.unconfirmed(within, t(400)).len(), 1);
        assert!(
            c.unconfirmed(TimeDelta::zero(), t(400)).is_empty(),
            "zero: off"
        );
    }

    #[test]
    fn a_confirmation_logged_before_its_send_is_kept_for_it() {
        let mut c = Confirmations::default();
        // The host's very first confirmation, before its send: kept too.
        c.confirmed("d0");
        assert!(c.sent("d0", "chat-a", t(0)));
        // The ack came in an earlier batch than the send.
        assert!(c.confirmed("d1"));
        assert!(c.sent("d1", "chat-a", t(10)));
        assert!(c.awaiting.is_empty(), "already confirmed: nothing waits");
        assert!(c.early.is_empty(), "used once");
        assert!(
            c.unconfirmed(TimeDelta::minutes(5), t(1_000)).is_empty(),
            "no alert about a confirmed delivery"
        );
        // Bounded, the oldest forgotten first.
        for i in 0..(MAX_EARLY + 3) {
            c.confirmed(&format!("e{i}"));
        }
        assert_eq!(c.early.len(), MAX_EARLY);
        assert_eq!(c.early.front().map(String::as_str), Some("e3"));
    }

    #[test]
    fn the_waiting_deliveries_are_bounded() {
        let mut c = Confirmations::default();
        c.confirmed("first");
        for i in 0..(MAX_AWAITING as i64 + 5) {
            c.sent(&format!("d{i}"), "chat", t(i));
        }
        assert_eq!(c.awaiting.len(), MAX_AWAITING);
        assert!(!c.awaiting.contains_key("d0"), "the oldest forgotten first");
    }
}
