//! Finding missed messages: a host's channel reconciliation asks its channel for what it sent since
//! a cursor ([`ChannelSource`]), and [`find_missed`] keeps the messages Lookout never saw, grouped by
//! chat, as `messages_recovered` events to append. Applying those events yields the
//! "Recovered N missed message(s) …" notice (deduplicated by message id).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::json;

use crate::error::ReconcileError;
use crate::host::HostState;

/// One message as the channel has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMessage {
    /// The chat.
    pub chat_jid: String,
    /// The message id.
    pub message_id: String,
}

/// A page of a channel's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelPage {
    /// The messages after the cursor.
    pub messages: Vec<ChannelMessage>,
    /// The cursor to pass next time (opaque to Lookout).
    pub next_cursor: Option<String>,
}

/// A channel's history, as the host's channel client reads it.
#[async_trait]
pub trait ChannelSource: Send + Sync {
    /// The messages of `channel` since `cursor` (None: from the channel's own recent window).
    async fn messages_since(
        &self,
        channel: &str,
        cursor: Option<&str>,
    ) -> Result<ChannelPage, ReconcileError>;
}

/// Reads `channel` since `cursor` and returns, per chat, the payload of a `messages_recovered` event
/// for the messages `state` has not seen, and the next cursor.
pub async fn find_missed(
    source: &dyn ChannelSource,
    channel: &str,
    cursor: Option<&str>,
    state: &HostState,
) -> Result<(Vec<serde_json::Value>, Option<String>), ReconcileError> {
    let page = source.messages_since(channel, cursor).await?;
    let mut by_chat: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in page.messages {
        if !state.knows_message(&m.message_id) {
            let ids = by_chat.entry(m.chat_jid).or_default();
            if !ids.contains(&m.message_id) {
                ids.push(m.message_id);
            }
        }
    }
    let events = by_chat
        .into_iter()
        .map(|(chat, ids)| {
            let mut e = json!({"kind": "messages_recovered", "channel": channel, "chat_jid": chat,
                               "message_ids": ids});
            if let Some(g) = state.chats.get(&chat).and_then(|c| c.group.as_ref()) {
                e["group"] = json!(g);
            }
            e
        })
        .collect();
    Ok((events, page.next_cursor))
}
