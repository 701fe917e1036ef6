//! Message flow checks in lookoutd: lookout-reconcile-core's pure [`Flow`] fed from the event log,
//! judged on a tick, its alerts through the lifecycle, its figures in `/metrics`, `/status` (the
//! `flow` section) and `lookout doctor`.
//!
//! - `unanswered:<chat>` — "💬 N message(s) in chat C unanswered for 12m" while a chat's messages
//!   wait longer than `thresholds.answer_within` with no `batch_dispatched` or `bot_response`.
//! - `channel_quiet:<channel>` — "📭 #channel quiet for 3h (usually a message every 4m)" while a
//!   channel's inbound silence is far beyond its learned rhythm (`[flow]`).
//! - `unconfirmed:<chat>` — "📪 N delivery(ies) to chat C sent but never confirmed for 6m" while a
//!   `delivery_sent` has had no `delivery_confirmed` for `thresholds.confirm_within`, for a host
//!   that reports confirmations (it has sent one).
//!
//! Each round syncs the lifecycle with the whole current set of each rule (`Alerts::sync`), so
//! what cleared — an answer, a message — is resolved once, across restarts too.
//!
//! State across a restart: the model and the seq it has applied up to are **one value** in
//! `router_state` (`flow_state`, JSON), saved at most every 10 s and at the stop; a start loads it
//! and applies the log after that seq, so every event is applied exactly once (a crash between two
//! saves re-applies the events after the saved seq to the saved model: the same state). The
//! rhythm needs weeks of history, which the saved value holds in ~6 KB per channel instead of a
//! replay of weeks of messages at each start. A first start (nothing saved) learns from the whole
//! log and forgets waits older than a day: what nobody answered before lookoutd followed the flow
//! is not news. For a minute after a start nothing is judged (the host's clients replay what they
//! spooled while lookoutd was down), and never longer than `answer_within`.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lookout_common::Clock;
use lookout_notify::Severity;
use lookout_notify::alerts::{Alert, Alerts, Outcome};
use lookout_reconcile_core::event::Event;
use lookout_reconcile_core::flow::{
    Flow, FlowLimits, QuietChannel, UnansweredChat, UnconfirmedChat,
};
use lookout_status_collect::{CollectError, Collected, Collector, Finding};
use lookout_store::{Store, StoreError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::log::EventLog;

/// The rules of the flow alerts (`rule:subject`).
pub(crate) mod rule {
    /// A chat's messages unanswered (subject: the chat).
    pub(crate) const UNANSWERED: &str = "unanswered";
    /// A channel quiet (subject: the channel).
    pub(crate) const CHANNEL_QUIET: &str = "channel_quiet";
    /// A chat's deliveries sent and never confirmed (subject: the chat).
    pub(crate) const UNCONFIRMED: &str = "unconfirmed";
}

/// The kinds the model folds.
const KINDS: &[&str] = &[
    "message_received",
    "batch_dispatched",
    "bot_response",
    "channel_connected",
    "channel_disconnected",
    "delivery_queued",
    "delivery_sent",
    "delivery_confirmed",
    "delivery_failed",
];
/// Where the model and its cursor are kept.
pub(crate) const STATE_KEY: &str = "flow_state";
/// How often the checks run without a new event (sooner when a wait crosses `answer_within`).
const TICK: Duration = Duration::from_secs(15);
/// Nothing is judged this soon after a start (never longer than `answer_within`).
const START_GRACE: Duration = Duration::from_secs(60);
/// The model is saved at most this often while it changes (and at the stop).
const SAVE_EVERY: Duration = Duration::from_secs(10);
/// At most one round per this, however often the log wakes the loop.
const MIN_ROUND: Duration = Duration::from_millis(100);
/// Events read per page.
const PAGE: u32 = 1000;
/// A first start forgets waits older than this.
const FIRST_START_MEMORY: TimeDelta = TimeDelta::days(1);

/// The flow limits of `config`.
pub(crate) fn limits(config: &lookout_config::Config) -> FlowLimits {
    let f = &config.flow;
    FlowLimits {
        answer_within: config.thresholds.answer_within,
        ignore_chats: f.ignore_chats.clone(),
        quiet_multiple: f64::from(f.quiet_multiple),
        quiet_floor: f.quiet_floor,
        min_history: f.min_history,
        min_slot_messages: f64::from(f.min_slot_messages),
        confirm_within: config.thresholds.confirm_within,
        ..FlowLimits::default()
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn secs(d: TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// What is saved in `router_state`: the model and the last seq applied to it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    cursor: i64,
    flow: Flow,
}

/// The model as the loop, `/status` and the tests share it.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    flow: Flow,
    /// The log has been read to its end at least once since the start.
    caught_up: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChatLabels {
    chat: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

type Seconds = Gauge<f64, AtomicU64>;

/// `lookout_flow_*`: per chat, its messages waiting and the oldest's age; per channel, its
/// current inbound gap, its usual gap for this hour of the week and whether it is quiet.
#[derive(Debug, Clone, Default)]
pub(crate) struct FlowMetrics {
    unanswered: Family<ChatLabels, Gauge>,
    oldest: Family<ChatLabels, Seconds>,
    gap: Family<ChannelLabels, Seconds>,
    usual_gap: Family<ChannelLabels, Seconds>,
    quiet: Family<ChannelLabels, Gauge>,
    unconfirmed: Gauge,
    chats: Arc<Mutex<Vec<ChatLabels>>>,
    channels: Arc<Mutex<Vec<ChannelLabels>>>,
}

impl FlowMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "lookout_flow_unanswered_messages",
            "Messages received and not yet answered (no batch_dispatched or bot_response), by chat",
            self.unanswered.clone(),
        );
        registry.register(
            "lookout_flow_unanswered_oldest_seconds",
            "Age of a chat's oldest unanswered message, by chat",
            self.oldest.clone(),
        );
        registry.register(
            "lookout_flow_channel_gap_seconds",
            "Time since the channel's latest inbound message",
            self.gap.clone(),
        );
        registry.register(
            "lookout_flow_channel_usual_gap_seconds",
            "The channel's learned usual gap between inbound messages for this hour of the week (absent while unknown)",
            self.usual_gap.clone(),
        );
        registry.register(
            "lookout_flow_unconfirmed_deliveries",
            "Deliveries sent and not yet confirmed by their channel (only for a host that reports confirmations)",
            self.unconfirmed.clone(),
        );
        registry.register(
            "lookout_flow_channel_quiet",
            "1 while the channel is judged quiet (its silence far beyond its rhythm)",
            self.quiet.clone(),
        );
    }

    /// Sets every series from `flow` at `now`; series of chats and channels gone are removed.
    fn set(&self, flow: &Flow, limits: &FlowLimits, now: DateTime<Utc>) {
        self.unconfirmed
            .set(i64::try_from(flow.confirmations.awaiting.len()).unwrap_or(i64::MAX));
        let mut chats = Vec::new();
        for (chat, w) in &flow.chats {
            let l = ChatLabels { chat: chat.clone() };
            self.unanswered.get_or_create(&l).set(i64::from(w.count));
            self.oldest.get_or_create(&l).set(secs(now - w.oldest));
            chats.push(l);
        }
        let mut old = self.chats.lock().unwrap_or_else(|p| p.into_inner());
        for gone in old.iter().filter(|l| !chats.contains(l)) {
            self.unanswered.remove(gone);
            self.oldest.remove(gone);
        }
        *old = chats;
        let mut channels = Vec::new();
        for c in flow.channel_flows(limits, now) {
            let l = ChannelLabels {
                channel: c.channel.clone(),
            };
            if let Some(g) = c.gap {
                self.gap.get_or_create(&l).set(secs(g));
            } else {
                self.gap.remove(&l);
            }
            if let Some(g) = c.usual_gap {
                self.usual_gap.get_or_create(&l).set(secs(g));
            } else {
                self.usual_gap.remove(&l);
            }
            self.quiet
                .get_or_create(&l)
                .set(i64::from(c.quiet.is_some()));
            channels.push(l);
        }
        let mut old = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        for gone in old.iter().filter(|l| !channels.contains(l)) {
            self.gap.remove(gone);
            self.usual_gap.remove(gone);
            self.quiet.remove(gone);
        }
        *old = channels;
    }
}

/// An answer needs the agent, and the agent the LLM gateway: while the gateway is down, its
/// alert is the cause and the unanswered chats are folded under it.
pub(crate) fn unanswered_alert(u: &UnansweredChat) -> Alert {
    Alert::new(rule::UNANSWERED, &u.chat, Severity::Warning, &u.text)
        .details(json!({
            "chat": u.chat,
            "channel": u.waiting.channel,
            "count": u.waiting.count,
            "oldest": u.waiting.oldest.to_rfc3339(),
        }))
        .depends_on(crate::folding::GATEWAY)
}

fn unconfirmed_alert(u: &UnconfirmedChat) -> Alert {
    Alert::new(rule::UNCONFIRMED, &u.chat, Severity::Warning, &u.text).details(json!({
        "chat": u.chat,
        "count": u.count,
        "oldest": u.oldest.to_rfc3339(),
    }))
}

fn quiet_alert(q: &QuietChannel) -> Alert {
    Alert::new(rule::CHANNEL_QUIET, &q.channel, Severity::Warning, &q.text).details(json!({
        "channel": q.channel,
        "since": q.since.to_rfc3339(),
        "usual_gap_seconds": secs(q.usual_gap).round(),
    }))
}

/// The loop's state: the model, its cursor, and what it last did.
pub(crate) struct FlowWatch {
    store: Store,
    alerts: Arc<Alerts>,
    limits: FlowLimits,
    shared: Arc<Mutex<Shared>>,
    metrics: FlowMetrics,
    cursor: i64,
    started: DateTime<Utc>,
    first_start: bool,
    dirty: bool,
    saved_at: Option<DateTime<Utc>>,
    synced_at: Option<DateTime<Utc>>,
}

impl FlowWatch {
    /// The model as last saved (empty on a first start: it learns from the whole log), started
    /// at `started`. A saved value that cannot be read is learned again from the log.
    pub(crate) async fn load(
        store: Store,
        alerts: Arc<Alerts>,
        limits: FlowLimits,
        started: DateTime<Utc>,
    ) -> FlowWatch {
        let saved = match store.router_state_get(STATE_KEY).await {
            Ok(Some(text)) => match serde_json::from_str::<Saved>(&text) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::error!(error = %e, "the saved flow state is unreadable: learning again from the log");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the saved flow state: learning again from the log");
                None
            }
        };
        let first_start = saved.is_none();
        let saved = saved.unwrap_or_default();
        FlowWatch {
            store,
            alerts,
            limits,
            shared: Arc::new(Mutex::new(Shared {
                flow: saved.flow,
                caught_up: false,
            })),
            metrics: FlowMetrics::default(),
            cursor: saved.cursor,
            started,
            first_start,
            dirty: false,
            saved_at: None,
            synced_at: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies what the log holds after the cursor; true when anything was.
    async fn drain(&mut self) -> Result<bool, StoreError> {
        let mut any = false;
        loop {
            let page = self.store.events_after_of(self.cursor, KINDS, PAGE).await?;
            let Some(last) = page.last().map(|e| e.seq) else {
                break;
            };
            {
                let mut s = self.lock();
                for e in &page {
                    let event = Event::from_payload(&e.kind, &e.payload);
                    s.flow.apply(&event, e.at, &self.limits);
                }
            }
            self.cursor = last;
            self.dirty = true;
            any = true;
            if page.len() < PAGE as usize {
                break;
            }
        }
        Ok(any)
    }

    /// One round at `now`: the log applied, the checks judged, the lifecycle synced, the metrics
    /// set and the model saved when due. Returns when the next wait crosses `answer_within`.
    pub(crate) async fn round(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let applied = self.drain().await?;
        let (unanswered, quiet, unconfirmed, next) = {
            let first = self.first_start;
            let mut s = self.lock();
            if first && !s.caught_up {
                s.flow.forget_unanswered_before(now - FIRST_START_MEMORY);
            }
            s.caught_up = true;
            self.metrics.set(&s.flow, &self.limits, now);
            (
                s.flow.unanswered(&self.limits, now),
                s.flow.quiet(&self.limits, now),
                s.flow.unconfirmed(&self.limits, now),
                [
                    s.flow.next_unanswered_due(&self.limits),
                    s.flow.next_unconfirmed_due(&self.limits),
                ]
                .into_iter()
                .flatten()
                .min(),
            )
        };
        let due = next.is_some_and(|d| d <= now);
        let tick = self.synced_at.is_none_or(|t| now - t >= delta(TICK));
        if applied || due || tick {
            let since_start = now - self.started;
            if since_start >= delta(START_GRACE.min(self.limits.answer_within)) {
                let current = unanswered.iter().map(unanswered_alert).collect();
                self.sync(rule::UNANSWERED, current, now).await?;
            }
            if since_start >= delta(START_GRACE.min(self.limits.confirm_within)) {
                let current = unconfirmed.iter().map(unconfirmed_alert).collect();
                self.sync(rule::UNCONFIRMED, current, now).await?;
            }
            if since_start >= delta(START_GRACE) {
                let current = quiet.iter().map(quiet_alert).collect();
                self.sync(rule::CHANNEL_QUIET, current, now).await?;
            }
            self.synced_at = Some(now);
        }
        if self.dirty && self.saved_at.is_none_or(|t| now - t >= delta(SAVE_EVERY)) {
            self.save(now).await?;
        }
        Ok(next.filter(|d| *d > now))
    }

    async fn sync(
        &self,
        rule: &str,
        current: Vec<Alert>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for (key, outcome) in self.alerts.sync(rule, current, now).await? {
            if outcome != Outcome::Nothing {
                tracing::info!(%key, ?outcome, "flow alert");
            }
        }
        Ok(())
    }

    /// Saves the model with its cursor, as one value.
    pub(crate) async fn save(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let value = {
            let s = self.lock();
            serde_json::to_string(&json!({"cursor": self.cursor, "flow": &s.flow}))
                .expect("the flow state serialises")
        };
        self.store.router_state_set(STATE_KEY, &value).await?;
        self.dirty = false;
        self.saved_at = Some(now);
        Ok(())
    }

    /// The `/status` section over this model.
    pub(crate) fn section(&self, clock: Arc<dyn Clock>) -> FlowSection {
        FlowSection {
            shared: self.shared.clone(),
            limits: self.limits.clone(),
            clock,
        }
    }
}

/// Follows the log's message events until `stop`: the flow alerts, `lookout_flow_*` and the
/// `/status` section `flow`. Returns the section and the loop (which saves the model last).
pub(crate) async fn spawn(
    log: &EventLog,
    alerts: Arc<Alerts>,
    config: &lookout_config::Config,
    registry: &mut Registry,
    clock: Arc<dyn Clock>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (Arc<dyn Collector>, tokio::task::JoinHandle<()>) {
    let limits = limits(config);
    let store = log.store().clone();
    let mut watch = FlowWatch::load(store, alerts, limits, clock.now()).await;
    watch.metrics.register(registry);
    let section: Arc<dyn Collector> = Arc::new(watch.section(clock.clone()));
    let mut wakeups = log.wakeups();
    let handle = tokio::spawn(async move {
        loop {
            let now = clock.now();
            let next = match watch.round(now).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "the flow checks could not run; retried");
                    None
                }
            };
            let wait = next
                .and_then(|d| (d - now).to_std().ok())
                .unwrap_or(TICK)
                .min(TICK);
            tokio::select! {
                _ = async {
                    tokio::time::sleep(MIN_ROUND).await;
                    wakeups.wait(wait.saturating_sub(MIN_ROUND)).await;
                } => {}
                _ = stop.wait_for(|v| *v) => break,
            }
        }
        if watch.dirty
            && let Err(e) = watch.save(clock.now()).await
        {
            tracing::warn!(error = %e, "cannot save the flow state at the stop");
        }
    });
    (section, handle)
}

/// `/status`'s `flow` section: per channel its last inbound message, current gap, usual gap for
/// this hour of the week and unanswered messages; the chats waiting; a warning for each quiet
/// channel and each chat over `answer_within`.
pub(crate) struct FlowSection {
    shared: Arc<Mutex<Shared>>,
    limits: FlowLimits,
    clock: Arc<dyn Clock>,
}

/// At most this many chats are listed (the oldest waits first).
const LISTED_CHATS: usize = 50;

fn opt_secs(d: Option<TimeDelta>) -> serde_json::Value {
    d.map_or(serde_json::Value::Null, |d| json!(secs(d).round()))
}

#[async_trait::async_trait]
impl Collector for FlowSection {
    fn name(&self) -> &'static str {
        "flow"
    }

    async fn collect(&self) -> Result<Collected, CollectError> {
        let now = self.clock.now();
        let s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let flows = s.flow.channel_flows(&self.limits, now);
        let late = s.flow.unanswered(&self.limits, now);
        let unconfirmed = s.flow.unconfirmed(&self.limits, now);
        let mut channels = serde_json::Map::new();
        for c in &flows {
            channels.insert(
                c.channel.clone(),
                json!({
                    "last_inbound": c.last_inbound.map(|t| t.to_rfc3339()),
                    "gap_seconds": opt_secs(c.gap),
                    "usual_gap_seconds": opt_secs(c.usual_gap),
                    "learning": c.learning,
                    "history_days": c.history.map(|h| (secs(h) / 8640.0).round() / 10.0),
                    "connected": c.connected,
                    "inbound": c.inbound,
                    "quiet": c.quiet.as_ref().map(|q| q.text.clone()),
                    "unanswered": c.unanswered,
                    "oldest_unanswered": c.oldest_unanswered.map(|t| t.to_rfc3339()),
                }),
            );
        }
        let mut waiting: Vec<_> = s.flow.chats.iter().collect();
        waiting.sort_by_key(|(_, w)| w.oldest);
        let mut chats = serde_json::Map::new();
        for (chat, w) in waiting.iter().take(LISTED_CHATS) {
            chats.insert(
                (*chat).clone(),
                json!({
                    "channel": w.channel,
                    "unanswered": w.count,
                    "oldest": w.oldest.to_rfc3339(),
                    "waiting_seconds": secs(now - w.oldest).round(),
                    "over_limit": late.iter().any(|u| &u.chat == *chat),
                }),
            );
        }
        let quiet: Vec<&str> = flows
            .iter()
            .filter_map(|c| c.quiet.as_ref().map(|q| q.text.as_str()))
            .collect();
        let mut data = json!({
            "channels_followed": flows.len(),
            "quiet_channels": quiet.len(),
            "unanswered_messages": s.flow.chats.values().map(|w| u64::from(w.count)).sum::<u64>(),
            "unanswered_chats": late.len(),
            "host_confirms_deliveries": s.flow.confirmations.host_confirms,
            "unconfirmed_deliveries": s.flow.confirmations.awaiting.len(),
            "unconfirmed_chats": unconfirmed.iter().map(|u| json!({
                "chat": u.chat, "count": u.count, "oldest": u.oldest.to_rfc3339(),
            })).collect::<Vec<_>>(),
            "limits": {
                "answer_within_seconds": self.limits.answer_within.as_secs(),
                "confirm_within_seconds": self.limits.confirm_within.as_secs(),
                "quiet_multiple": self.limits.quiet_multiple,
                "quiet_floor_seconds": self.limits.quiet_floor.as_secs(),
            },
            "channels": channels,
            "chats": chats,
        });
        if !s.caught_up {
            data["catching_up"] = json!(true);
        }
        let mut out = Collected::new(data);
        for q in quiet {
            out = out.with(Finding::warn(q));
        }
        for u in &late {
            out = out.with(Finding::warn(u.text.clone()));
        }
        for u in &unconfirmed {
            out = out.with(Finding::warn(u.text.clone()));
        }
        Ok(out)
    }
}

/// `lookout doctor`'s line, from the saved model judged at `now`: nothing when no message event
/// was ever seen.
pub(crate) async fn doctor(
    store: &Store,
    config: &lookout_config::Config,
    now: DateTime<Utc>,
) -> Option<crate::doctor::Check> {
    let saved: Saved = match store.router_state_get(STATE_KEY).await {
        Ok(Some(s)) => serde_json::from_str(&s).ok()?,
        Ok(None) => return None,
        Err(e) => {
            return Some(crate::doctor::Check {
                name: "message flow".into(),
                status: "warn",
                detail: format!("cannot read the flow state: {e}"),
                fix: Some("check the store".into()),
            });
        }
    };
    if saved.flow.channels.is_empty() && saved.flow.chats.is_empty() {
        return None;
    }
    let limits = limits(config);
    let flows = saved.flow.channel_flows(&limits, now);
    let learning = flows.iter().filter(|c| c.learning).count();
    let mut problems: Vec<String> = saved
        .flow
        .quiet(&limits, now)
        .into_iter()
        .map(|q| q.text)
        .collect();
    problems.extend(
        saved
            .flow
            .unanswered(&limits, now)
            .into_iter()
            .map(|u| u.text),
    );
    let followed = format!(
        "{} channel(s) followed, {learning} still learning their rhythm (less than {} of traffic)",
        flows.len(),
        lookout_common::human_duration(limits.min_history)
    );
    Some(if problems.is_empty() {
        crate::doctor::Check {
            name: "message flow".into(),
            status: "ok",
            detail: format!(
                "{followed}; no chat waits past thresholds.answer_within, no channel quiet"
            ),
            fix: None,
        }
    } else {
        crate::doctor::Check {
            name: "message flow".into(),
            status: "warn",
            detail: format!("{}; {followed}", problems.join("; ")),
            fix: Some("see docs/operations.md, \"Message flow\": is the host receiving and answering? (`lookout events tail`, its logs)".into()),
        }
    })
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod tests;
