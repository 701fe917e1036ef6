//! Message flow checks: "alive is not working", from the events a host already sends.
//!
//! - **Unanswered messages** ([`Unanswered`]): a `message_received` with no `batch_dispatched` or
//!   `bot_response` for its chat within [`FlowLimits::answer_within`] →
//!   `💬 N message(s) in chat C unanswered for 12m`. A `batch_dispatched` or `bot_response` for a
//!   chat answers every message of that chat before it in the log (product.md: "for its chat"),
//!   whatever ids the batch lists.
//! - **A quiet channel** ([`ChannelRhythm`]): inbound traffic that stops for far longer than the
//!   channel's learned rhythm for that hour of the week →
//!   `📭 #channel quiet for 3h (usually a message every 4m)`. The rhythm is an arrival rate per
//!   hour of the week (168 slots, UTC): arrivals over the time observed in the slot, both decayed
//!   by [`FlowLimits::half_life`]. A silence is judged by the number of messages the rhythm expected
//!   during it (the sum, over the hours it covers, of each hour's rate × the time spent in it): the
//!   channel is quiet when that expectation reaches [`FlowLimits::quiet_multiple`] (with a steady
//!   rate: the silence is longer than `quiet_multiple` usual gaps) and the silence is at least
//!   [`FlowLimits::quiet_floor`]. So a silence that runs into a normal night, where the rate is
//!   ~0, stops accumulating evidence: no alert on a normal night.
//!
//! Guards against false alarms, each a rule of [`ChannelRhythm::quiet`]:
//! - nothing is judged before [`FlowLimits::min_history`] of the channel's traffic;
//! - an hour whose decayed arrivals are under [`FlowLimits::min_slot_messages`] counts as rate 0
//!   (unknown is never evidence);
//! - each hour's rate is the least of its own and its two neighbours', so a rhythm that starts
//!   or stops an hour earlier (daylight saving, a late morning) is not an outage;
//! - messages within [`FlowLimits::burst`] of the last counted one are one arrival (a
//!   conversation), so bursty chats do not look busier than they are;
//! - a disconnected channel is not judged (I5 says so), and a reconnect restarts the silence.
//!
//! The rhythm learns every gap once it closes (the next message), outages included: an hour of
//! the week is observed at most an hour per week, so one outage weighs one week's sample of the
//! hours it covered, and it fades with the half-life. An ongoing silence is never learned, so an
//! alert lasts as long as the silence.
//!
//! - **Deliveries sent but never confirmed** ([`Confirmations`]): once a host reports the
//!   channel's confirmations (`delivery_confirmed`), a `delivery_sent` with none within
//!   [`FlowLimits::confirm_within`] → `📪 N delivery(ies) to chat C sent but never confirmed for
//!   6m`. A delivery queued (or failed) and not sent within `thresholds.delivery_pending` is the
//!   reconciler's I4 ([`crate::host::Invariant::StuckDelivery`]).
//!
//! Pure: [`Flow::apply`] folds an event at its time, and every judgement takes `now`; nothing here
//! reads a clock or does I/O. [`Flow`] is plain serialisable data, so a host can persist it with
//! the cursor of the log it has applied.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Event;

mod confirm;
mod rhythm;
#[cfg(test)]
mod tests;

pub use confirm::{Awaiting, Confirmations, UnconfirmedChat};
pub use rhythm::{ChannelRhythm, SLOTS, hour_of_week};

/// The thresholds of the flow checks. Plain data; lookoutd fills it from `thresholds.answer_within`
/// and `[flow]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowLimits {
    /// A message with no answer for its chat for this long is unanswered (zero: never judged).
    pub answer_within: Duration,
    /// Chats never judged unanswered (a group chat the bot answers only when called).
    pub ignore_chats: Vec<String>,
    /// A silence is quiet once the rhythm expected this many messages during it (zero: the
    /// quiet-channel check is off).
    pub quiet_multiple: f64,
    /// No silence shorter than this is quiet, whatever the rhythm says.
    pub quiet_floor: Duration,
    /// A channel is judged only after this long since its first message.
    pub min_history: Duration,
    /// An hour of the week with fewer (decayed) arrivals than this has no known rate.
    pub min_slot_messages: f64,
    /// Messages within this of the last counted one are one arrival.
    pub burst: Duration,
    /// Arrivals and observed time lose half their weight in this long.
    pub half_life: Duration,
    /// A sent delivery with no confirmation this long is unconfirmed (zero: never judged; only
    /// hosts that report confirmations are).
    pub confirm_within: Duration,
}

impl Default for FlowLimits {
    fn default() -> Self {
        FlowLimits {
            answer_within: Duration::from_secs(10 * 60),
            ignore_chats: Vec::new(),
            quiet_multiple: 6.0,
            quiet_floor: Duration::from_secs(30 * 60),
            min_history: Duration::from_secs(7 * 86_400),
            min_slot_messages: 10.0,
            burst: Duration::from_secs(2 * 60),
            half_life: Duration::from_secs(28 * 86_400),
            confirm_within: Duration::from_secs(5 * 60),
        }
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// A duration as the flow texts say it: `40s`, `12m`, `3h`, `3h 5m`, `2d`, `2d 4h`.
pub fn short(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{mins}m"),
        s if s < 86_400 && mins == 0 => format!("{hours}h"),
        s if s < 86_400 => format!("{hours}h {mins}m"),
        _ if hours == 0 => format!("{days}d"),
        _ => format!("{days}d {hours}h"),
    }
}

/// One chat's messages waiting for an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unanswered {
    /// The channel of its latest message.
    pub channel: String,
    /// The chat's group, if its messages said.
    #[serde(default)]
    pub group: Option<String>,
    /// When the oldest of them was received.
    pub oldest: DateTime<Utc>,
    /// When the latest was.
    pub latest: DateTime<Utc>,
    /// How many.
    pub count: u32,
}

/// A chat whose messages have waited longer than [`FlowLimits::answer_within`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnansweredChat {
    /// The chat.
    pub chat: String,
    /// What waits.
    pub waiting: Unanswered,
    /// For how long the oldest has.
    pub age: TimeDelta,
    /// `💬 N message(s) in chat C unanswered for 12m`.
    pub text: String,
}

/// A channel judged quiet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuietChannel {
    /// The channel.
    pub channel: String,
    /// When the silence began: its last inbound message, or a later reconnect.
    pub since: DateTime<Utc>,
    /// How long it has lasted.
    pub silence: TimeDelta,
    /// The messages the rhythm expected during it.
    pub expected: f64,
    /// The usual gap over the silence: `silence / expected`.
    pub usual_gap: TimeDelta,
    /// `📭 #channel quiet for 3h (usually a message every 4m)`.
    pub text: String,
}

/// One channel as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelFlow {
    /// The channel.
    pub channel: String,
    /// Its latest inbound message, if any.
    pub last_inbound: Option<DateTime<Utc>>,
    /// Since then (the current inbound gap).
    pub gap: Option<TimeDelta>,
    /// The learned usual gap for this hour of the week (None: not known yet, or ~no traffic).
    pub usual_gap: Option<TimeDelta>,
    /// Still learning: less than [`FlowLimits::min_history`] of traffic.
    pub learning: bool,
    /// How long its traffic has been followed.
    pub history: Option<TimeDelta>,
    /// Connected, as its last `channel_*` event said (true when none did).
    pub connected: bool,
    /// Inbound messages seen.
    pub inbound: u64,
    /// The quiet judgement, when it holds.
    pub quiet: Option<QuietChannel>,
    /// Messages waiting for an answer in its chats.
    pub unanswered: u32,
    /// The oldest of them.
    pub oldest_unanswered: Option<DateTime<Utc>>,
}

/// The flow checks' state: chats with messages waiting, and each channel's rhythm.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Flow {
    /// Chats with messages waiting for an answer, by chat.
    pub chats: BTreeMap<String, Unanswered>,
    /// Channels by name.
    pub channels: BTreeMap<String, ChannelRhythm>,
    /// Deliveries sent and waiting for their confirmation.
    pub confirmations: Confirmations,
}

impl Flow {
    /// Folds one event of the log, which happened at `at`; true when it changed the state. Kinds
    /// other than messages, answers and channel connections are ignored.
    pub fn apply(&mut self, event: &Event, at: DateTime<Utc>, limits: &FlowLimits) -> bool {
        match event {
            Event::MessageReceived {
                channel,
                chat_jid,
                group,
                ..
            } => {
                self.channels
                    .entry(channel.clone())
                    .or_default()
                    .inbound(at, limits);
                if !limits.ignore_chats.contains(chat_jid) {
                    let w = self
                        .chats
                        .entry(chat_jid.clone())
                        .or_insert_with(|| Unanswered {
                            channel: channel.clone(),
                            group: None,
                            oldest: at,
                            latest: at,
                            count: 0,
                        });
                    w.channel = channel.clone();
                    if group.is_some() {
                        w.group = group.clone();
                    }
                    w.oldest = w.oldest.min(at);
                    w.latest = w.latest.max(at);
                    w.count = w.count.saturating_add(1);
                }
                true
            }
            Event::BatchDispatched { chat_jid, .. } | Event::BotResponse { chat_jid, .. } => {
                self.chats.remove(chat_jid).is_some()
            }
            Event::DeliverySent {
                delivery_id,
                chat_jid,
            } => self.confirmations.sent(delivery_id, chat_jid, at),
            Event::DeliveryConfirmed { delivery_id } => self.confirmations.confirmed(delivery_id),
            Event::DeliveryQueued { delivery_id, .. }
            | Event::DeliveryFailed { delivery_id, .. } => self.confirmations.unsent(delivery_id),
            Event::ChannelConnected { channel, .. } => {
                self.channels
                    .entry(channel.clone())
                    .or_default()
                    .connection(true, at);
                true
            }
            Event::ChannelDisconnected { channel, .. } => {
                self.channels
                    .entry(channel.clone())
                    .or_default()
                    .connection(false, at);
                true
            }
            _ => false,
        }
    }

    /// Forgets messages waiting since before `t` (a first start over an old log: what nobody
    /// answered before lookoutd followed the flow is not news).
    pub fn forget_unanswered_before(&mut self, t: DateTime<Utc>) {
        self.chats.retain(|_, w| w.latest >= t);
    }

    /// The chats whose oldest waiting message is older than `answer_within` at `now`, by chat.
    pub fn unanswered(&self, limits: &FlowLimits, now: DateTime<Utc>) -> Vec<UnansweredChat> {
        if limits.answer_within.is_zero() {
            return Vec::new();
        }
        let within = delta(limits.answer_within);
        self.chats
            .iter()
            .filter(|(chat, _)| !limits.ignore_chats.contains(chat))
            .filter(|(_, w)| now - w.oldest >= within)
            .map(|(chat, w)| {
                let age = now - w.oldest;
                UnansweredChat {
                    chat: chat.clone(),
                    waiting: w.clone(),
                    age,
                    text: format!(
                        "💬 {} message(s) in chat {chat} unanswered for {}",
                        w.count,
                        short(age)
                    ),
                }
            })
            .collect()
    }

    /// When the next waiting chat crosses `answer_within` (None: none will).
    pub fn next_unanswered_due(&self, limits: &FlowLimits) -> Option<DateTime<Utc>> {
        if limits.answer_within.is_zero() {
            return None;
        }
        self.chats
            .iter()
            .filter(|(chat, _)| !limits.ignore_chats.contains(chat))
            .map(|(_, w)| w.oldest + delta(limits.answer_within))
            .min()
    }

    /// The chats with deliveries sent and unconfirmed for `confirm_within` at `now`, by chat.
    pub fn unconfirmed(&self, limits: &FlowLimits, now: DateTime<Utc>) -> Vec<UnconfirmedChat> {
        self.confirmations
            .unconfirmed(delta(limits.confirm_within), now)
    }

    /// When the next sent delivery crosses `confirm_within` (None: none will).
    pub fn next_unconfirmed_due(&self, limits: &FlowLimits) -> Option<DateTime<Utc>> {
        self.confirmations.next_due(delta(limits.confirm_within))
    }

    /// The channels judged quiet at `now`, by channel.
    pub fn quiet(&self, limits: &FlowLimits, now: DateTime<Utc>) -> Vec<QuietChannel> {
        self.channels
            .iter()
            .filter_map(|(name, r)| r.quiet(name, limits, now))
            .collect()
    }

    /// Every channel as `/status` shows it at `now` (channels of waiting chats included).
    pub fn channel_flows(&self, limits: &FlowLimits, now: DateTime<Utc>) -> Vec<ChannelFlow> {
        let mut waiting: BTreeMap<&str, (u32, DateTime<Utc>)> = BTreeMap::new();
        for w in self.chats.values() {
            let e = waiting.entry(&w.channel).or_insert((0, w.oldest));
            e.0 = e.0.saturating_add(w.count);
            e.1 = e.1.min(w.oldest);
        }
        let empty = ChannelRhythm::default();
        let mut names: Vec<&str> = self.channels.keys().map(String::as_str).collect();
        names.extend(waiting.keys().filter(|c| !self.channels.contains_key(**c)));
        names.sort_unstable();
        names
            .into_iter()
            .map(|name| {
                let r = self.channels.get(name).unwrap_or(&empty);
                let (unanswered, oldest) =
                    waiting.get(name).map_or((0, None), |(n, o)| (*n, Some(*o)));
                ChannelFlow {
                    channel: name.to_owned(),
                    last_inbound: r.last_inbound,
                    gap: r.last_inbound.map(|t| now - t),
                    usual_gap: r.usual_gap(limits, now),
                    learning: r.learning(limits, now),
                    history: r.first_seen.map(|t| now - t),
                    connected: r.connected(),
                    inbound: r.inbound_count(),
                    quiet: r.quiet(name, limits, now),
                    unanswered,
                    oldest_unanswered: oldest,
                }
            })
            .collect()
    }
}
