//! The stale scan: message batches dispatched to a run that never answered.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_store::{StaleChat, Store};

use crate::Result;

/// What to do about stale batches beyond reporting them. Detection alone is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryPolicy {
    /// Report only: nothing is requeued, unlocked or replayed.
    #[default]
    Off,
    /// Hand the messages back to the host (through [`Requeue`]) up to `max_attempts` times, then
    /// give up on them with an alert.
    Requeue {
        /// Attempts before giving up.
        max_attempts: u32,
    },
}

/// The host's way of taking messages back for another dispatch. Only called under
/// [`RecoveryPolicy::Requeue`].
#[async_trait::async_trait]
pub trait Requeue: Send + Sync {
    /// Re-dispatch these messages of `chat_jid`; an error leaves them marked for the next scan.
    async fn requeue(
        &self,
        chat_jid: &str,
        message_ids: &[String],
    ) -> std::result::Result<(), String>;
}

/// One chat found stale, and what was done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StaleFinding {
    /// The chat and its stale messages.
    #[serde(flatten)]
    pub chat: StaleChat,
    /// How long the oldest has been in flight, in seconds.
    pub oldest_age_secs: i64,
    /// What the recovery policy did.
    pub action: RecoveryAction,
}

impl StaleFinding {
    /// The alert text for this chat.
    pub fn message(&self) -> String {
        let base = format!(
            "⚠️ Interrupted run: {} message(s) in chat {} (#{}) in flight for {} with no response",
            self.chat.count,
            self.chat.chat_jid,
            self.chat.channel,
            human_age(self.oldest_age_secs)
        );
        match &self.action {
            RecoveryAction::None => base,
            RecoveryAction::Requeued { attempt } => {
                format!("{base} — requeued (attempt {attempt})")
            }
            RecoveryAction::RequeueFailed { error } => format!("{base} — requeue failed: {error}"),
            RecoveryAction::GaveUp { attempts } => {
                format!("{base} — gave up after {attempts} requeue attempt(s)")
            }
        }
    }
}

/// What the recovery policy did with a stale chat.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecoveryAction {
    /// Nothing (policy off).
    None,
    /// Handed back to the host.
    Requeued {
        /// Which attempt this was.
        attempt: i64,
    },
    /// The host refused or failed; still marked, tried again next scan.
    RequeueFailed {
        /// The host's error.
        error: String,
    },
    /// Attempts exhausted: the mark is cleared and the messages are left alone.
    GaveUp {
        /// Attempts made.
        attempts: i64,
    },
}

/// Finds stale in-flight batches, and applies the recovery policy when one is configured.
pub struct StaleScanner<'a> {
    store: &'a Store,
    threshold: Duration,
    policy: RecoveryPolicy,
    requeue: Option<&'a dyn Requeue>,
}

impl<'a> StaleScanner<'a> {
    /// A detection-only scanner: rows in flight longer than `threshold` are reported.
    pub fn new(store: &'a Store, threshold: Duration) -> Self {
        StaleScanner {
            store,
            threshold,
            policy: RecoveryPolicy::Off,
            requeue: None,
        }
    }

    /// Turns recovery on. Without this call no requeue can happen.
    pub fn with_recovery(mut self, max_attempts: u32, requeue: &'a dyn Requeue) -> Self {
        self.policy = RecoveryPolicy::Requeue { max_attempts };
        self.requeue = Some(requeue);
        self
    }

    /// Scans at `now`: one finding per chat with stale messages, oldest first.
    pub async fn scan(&self, now: DateTime<Utc>) -> Result<Vec<StaleFinding>> {
        let threshold = chrono::Duration::from_std(self.threshold).unwrap_or(chrono::Duration::MAX);
        let cutoff = now - threshold;
        let chats = self.store.stale_in_flight(cutoff).await?;
        let mut findings = Vec::with_capacity(chats.len());
        for chat in chats {
            let age = (now - chat.oldest_started_at).num_seconds();
            let action = match (self.policy, self.requeue) {
                (RecoveryPolicy::Requeue { max_attempts }, Some(requeue)) => {
                    self.recover(&chat, cutoff, max_attempts, requeue).await?
                }
                _ => RecoveryAction::None,
            };
            let finding = StaleFinding {
                chat,
                oldest_age_secs: age,
                action,
            };
            tracing::warn!(
                chat_jid = %finding.chat.chat_jid,
                channel = %finding.chat.channel,
                count = finding.chat.count,
                oldest_age_secs = age,
                action = ?finding.action,
                "stale in-flight messages: a run was interrupted"
            );
            findings.push(finding);
        }
        Ok(findings)
    }

    async fn recover(
        &self,
        chat: &StaleChat,
        cutoff: DateTime<Utc>,
        max_attempts: u32,
        requeue: &dyn Requeue,
    ) -> Result<RecoveryAction> {
        let ids = self.store.stale_message_ids(&chat.chat_jid, cutoff).await?;
        if chat.max_attempts >= i64::from(max_attempts) {
            self.store.abandon_in_flight(&chat.chat_jid, &ids).await?;
            return Ok(RecoveryAction::GaveUp {
                attempts: chat.max_attempts,
            });
        }
        match requeue.requeue(&chat.chat_jid, &ids).await {
            Ok(()) => {
                self.store.note_requeued(&chat.chat_jid, &ids).await?;
                Ok(RecoveryAction::Requeued {
                    attempt: chat.max_attempts + 1,
                })
            }
            Err(error) => Ok(RecoveryAction::RequeueFailed { error }),
        }
    }
}

fn human_age(secs: i64) -> String {
    lookout_common::human_age(chrono::TimeDelta::seconds(secs))
}
