//! The actions: notices, marks and repairs, and [`reconcile`], which decides them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::invariants::orphans;
use super::{HostState, Limits, MEMORY};
use crate::alerts::AlertAction;
use crate::model::ModelAction;
use crate::time::micros;

/// A safe repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "repair", rename_all = "snake_case")]
pub enum Repair {
    /// I1: the run whose container is gone goes to idle (the host ends it; its messages are
    /// handled by the interrupted-run contract).
    RunToIdle {
        /// The run.
        run_id: String,
        /// Its group.
        group: String,
        /// Its kind (`message` or `task`), for the `run_finished` that reports the repair.
        #[serde(default = "message_kind")]
        run_kind: String,
        /// The container that is gone.
        container: String,
        /// When the run started (part of the key: a reused run id is another repair).
        started_at: DateTime<Utc>,
    },
}

/// A notification to a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The group to tell.
    pub group: String,
    /// The chat, if known.
    pub chat_jid: Option<String>,
    /// The text.
    pub text: String,
    /// The event that caused it.
    pub seq: i64,
}

/// Something to record in the host (a "mark"): recovered messages to process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mark", rename_all = "snake_case")]
pub enum Mark {
    /// Recovered messages the host should process now.
    ProcessRecovered {
        /// The channel.
        channel: String,
        /// The chat, if known.
        chat_jid: Option<String>,
        /// The group.
        group: String,
        /// The messages (new ones only).
        message_ids: Vec<String>,
        /// The event that found them.
        seq: i64,
    },
}

fn message_kind() -> String {
    "message".into()
}

/// The host model's action types, as [`ModelAction::kind`] names them (metric labels).
pub const ACTION_KINDS: [&str; 5] = ["notify", "mark", "alert", "resolved", "repair"];

/// What the host model asks the world to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Tell a group something.
    Notify(Notice),
    /// Record something in the host.
    Mark(Mark),
    /// An alert that begins (firing) or ends (resolved) with the hand-over of the violations:
    /// shown by dry-run, replay and the tick report; the driver never executes it (the host's
    /// lifecycle sends the alert from the violations it is handed).
    Alert(AlertAction),
    /// Repair a state (only with `auto_repair`).
    Repair(Repair),
}

impl ModelAction for Action {
    fn key(&self) -> String {
        match self {
            Action::Notify(n) => format!("notify:recovered:{}", n.seq),
            Action::Mark(Mark::ProcessRecovered { seq, .. }) => format!("mark:recovered:{seq}"),
            Action::Alert(a) => a.key(),
            Action::Repair(Repair::RunToIdle {
                run_id, started_at, ..
            }) => format!("repair:run_to_idle:{run_id}:{}", micros(*started_at)),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Action::Notify(_) => "notify",
            Action::Mark(_) => "mark",
            Action::Alert(a) if a.state == crate::alerts::AlertState::Resolved => "resolved",
            Action::Alert(_) => "alert",
            Action::Repair(_) => "repair",
        }
    }

    fn is_repair(&self) -> bool {
        matches!(self, Action::Repair(_))
    }

    fn from_alert(alert: AlertAction) -> Self {
        Action::Alert(alert)
    }

    fn as_alert(&self) -> Option<&AlertAction> {
        match self {
            Action::Alert(a) => Some(a),
            _ => None,
        }
    }
}

/// The text of a recovery notice: "Recovered N missed message(s) from #channel — processing now."
pub fn recovered_text(n: usize, channel: &str) -> String {
    format!("Recovered {n} missed message(s) from #{channel} — processing now.")
}

/// The actions the state calls for at `now` (alerts aside): for each recovery of the last
/// [`MEMORY`], a mark (process the messages) and a notice; for each orphaned run (I1), its repair.
pub fn reconcile(state: &HostState, limits: &Limits, now: DateTime<Utc>) -> Vec<Action> {
    let mut out = Vec::new();
    for (run_id, run, name, _) in orphans(state, limits, now) {
        out.push(Action::Repair(Repair::RunToIdle {
            run_id: run_id.clone(),
            group: run.group.clone(),
            run_kind: run.run_kind.clone(),
            container: name.clone(),
            started_at: run.started_at,
        }));
    }
    for n in state.notices.values() {
        if now - n.at > MEMORY {
            continue;
        }
        out.push(Action::Mark(Mark::ProcessRecovered {
            channel: n.channel.clone(),
            chat_jid: n.chat_jid.clone(),
            group: n.group.clone(),
            message_ids: n.message_ids.clone(),
            seq: n.seq,
        }));
        out.push(Action::Notify(Notice {
            group: n.group.clone(),
            chat_jid: n.chat_jid.clone(),
            text: recovered_text(n.message_ids.len(), &n.channel),
            seq: n.seq,
        }));
    }
    out
}
