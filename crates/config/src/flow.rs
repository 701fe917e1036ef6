//! `[flow]`: the message flow checks beyond `thresholds.answer_within` — when a channel whose
//! inbound traffic stopped is called quiet, and which chats are never judged unanswered.

use std::time::Duration;

use serde::Deserialize;

use crate::schema::duration;

/// `[flow]`: quiet channels and unanswered messages, from the events the host already sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// A channel is quiet once its learned rhythm expected this many messages during its silence
    /// (with a steady rate: a silence this many usual gaps long); 0 turns the check off.
    pub quiet_multiple: u32,
    /// No silence shorter than this is quiet.
    #[serde(deserialize_with = "duration")]
    pub quiet_floor: Duration,
    /// A channel is judged only after this long since its first message.
    #[serde(deserialize_with = "duration")]
    pub min_history: Duration,
    /// An hour of the week with fewer (decayed) arrivals than this counts as unknown, never as
    /// evidence.
    pub min_slot_messages: u32,
    /// Chats whose messages are never judged unanswered (a group chat the bot answers only when
    /// called), by `chat_jid`.
    pub ignore_chats: Vec<String>,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            quiet_multiple: 6,
            quiet_floor: Duration::from_secs(30 * 60),
            min_history: Duration::from_secs(7 * 86_400),
            min_slot_messages: 10,
            ignore_chats: Vec::new(),
        }
    }
}
