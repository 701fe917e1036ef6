//! # lookout-notify — notifications that arrive
//!
//! Every alert and message Lookout sends goes through one path: [`Outbox::send`] stores the
//! notification with one pending delivery per sink it is routed to (the store's durable outbox), and
//! [`Outbox::deliver_due`] (run in a loop by [`Outbox::run`]) hands each to its sink, retrying
//! failures with exponential backoff until a sink takes it or the attempts run out (a dead letter,
//! kept in the store). Delivery is at least once; every notification carries an id (also sent as the
//! `Idempotency-Key` header) so a sink can drop duplicates.
//!
//! Sinks implement [`Notifier`]: [`sinks::LogSink`], [`sinks::HttpSink`] (a generic JSON webhook, a
//! callback into the host, or a Slack-compatible incoming webhook), [`sinks::FileSink`] (JSON lines),
//! and the roads a host does not own: [`telegram::TelegramSink`] (with [`telegram::TelegramBot`],
//! the Bot API client that also reads chat commands), [`ntfy::NtfySink`], [`discord::DiscordSink`],
//! [`email::EmailSink`] (SMTP) and [`apprise::AppriseSink`] (the Apprise program's ~100 services).
//! A sink that is told when to come back (an HTTP 429) says so in [`DeliveryError::retry_after`],
//! and the outbox waits at least that long. A [`Route`] sends a sink only some groups and
//! severities.
//!
//! ## Sink fallback
//!
//! A route may name a [`Fallback`]: another sink that takes over when this one (the primary) has
//! been failing for longer than [`Fallback::after`] (`notify.fallback_after`, 2 minutes). *Failing*
//! means every delivery attempt to it failed since its last success; the time of the first of those
//! failures is kept in the store (`notify_sink_health`), so a restart of lookoutd does not reset the
//! clock. Past that time, each round gives every pending delivery of the primary a delivery to the
//! fallback too: its own row in the store (`notification_deliveries`, naming the primary in `via`),
//! so it is durable, retried and dead-lettered like any other, regardless of the fallback's own
//! route. The fallback receives the text under a first line naming the primary:
//!
//! ```text
//! ⚠️ primary sink `chat` failing for 2m — via fallback:
//! 🔁 host is crash-looping
//! ```
//!
//! and a JSON body (HTTP and file sinks) also carries `"fallback_for": "chat"`. Nothing is taken
//! from the primary: its deliveries stay pending and, when it takes one again, it is no longer
//! failing and its backlog is due at once — so it receives every message (at least once), with the
//! same id, and a receiver that got one through the fallback drops the duplicate by id. A fallback
//! delivery not made yet when the primary takes the message is dropped (the primary has it). A
//! notification the fallback's own route already sends it is not sent there twice.
//!
//! ## Dead letters
//!
//! A delivery whose last retry failed is dead; the notification's status is `dead`.
//! [`Outbox::dead_letters`] lists them, [`Outbox::retry_dead`] makes them pending again (due now,
//! attempts reset), and [`NotifyMetrics`] counts deliveries by sink and result and the dead letters
//! in the store.
//!
//! It is **not** an alert manager: deciding *whether* a condition deserves a message (lifecycle,
//! quiet windows, folding) belongs to the callers; this crate only makes sure a message that was
//! decided reaches where it should, once per key within the dedup window.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use lookout_notify::{Outbox, Message, RetryPolicy, Route, Severity, sinks::LogSink};
//! use lookout_store::Store;
//!
//! let store = Store::open("sqlite::memory:").await.unwrap();
//! let outbox = Outbox::new(store, vec![(Arc::new(LogSink::new("log")) as _, Route::all())], RetryPolicy::default());
//! outbox.send(Message::new(Severity::Warning, "⚠️ slack disconnected for 3m").key("channel_down:slack")).await.unwrap();
//! let round = outbox.deliver_due(chrono::Utc::now()).await.unwrap();
//! assert_eq!(round.delivered, 1);
//! # });
//! ```

pub mod alerts;
pub mod apprise;
pub mod discord;
pub mod email;
mod metrics;
pub mod ntfy;
pub mod sinks;
pub mod telegram;

use metrics::DeliveryResult;
pub use metrics::NotifyMetrics;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_store::{NewNotification, Store, StoreError};

pub use lookout_common::Severity;

/// A stored severity; anything unknown reads as `info` (the store only holds what was sent).
fn parse_severity(s: &str) -> Severity {
    s.parse().unwrap_or(Severity::Info)
}

/// A notification as a sink receives it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outgoing {
    /// Unique id: the same on every retry and every sink.
    pub id: String,
    /// When it was decided.
    pub created_at: DateTime<Utc>,
    /// What it is about (rule and subject).
    pub key: Option<String>,
    /// The group it is for.
    pub group: Option<String>,
    /// How bad.
    pub severity: Severity,
    /// The text a person reads.
    pub text: String,
    /// Structured details.
    pub payload: serde_json::Value,
    /// For a fallback delivery: the failing primary sink it stands in for (`text` then starts with
    /// a line saying so).
    pub fallback_for: Option<String>,
}

/// A notification given up on: one sink's delivery whose last retry failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    /// The notification's id.
    pub id: String,
    /// When it was decided.
    pub created_at: DateTime<Utc>,
    /// What it is about (rule and subject).
    pub key: Option<String>,
    /// The group it is for.
    pub group: Option<String>,
    /// How bad.
    pub severity: Severity,
    /// The text a person reads.
    pub text: String,
    /// The sink that did not take it.
    pub sink: String,
    /// For a fallback delivery: the primary sink it stood in for.
    pub fallback_for: Option<String>,
    /// Attempts made to that sink.
    pub attempts: i64,
    /// The error of the last attempt.
    pub last_error: Option<String>,
}

/// Why a sink did not take a notification (it will be retried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// What went wrong, as the dead letter and the log show it (never a secret).
    pub message: String,
    /// The sink's own answer on when to try again (an HTTP 429's `Retry-After` or Telegram's
    /// `parameters.retry_after`): the next attempt is not before it, even when the backoff is
    /// shorter.
    pub retry_after: Option<Duration>,
}

impl DeliveryError {
    /// A failure to be retried on the outbox's backoff.
    pub fn new(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same failure, to be retried no sooner than `wait` from now.
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }
}

/// A place notifications go.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync {
    /// The sink's name (unique among the sinks).
    fn name(&self) -> &str;
    /// Delivers one notification; an error means "try again later".
    async fn deliver(&self, n: &Outgoing) -> Result<(), DeliveryError>;
}

/// Which notifications a sink gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Only these groups (notifications without a group always pass); `None` for all.
    pub groups: Option<Vec<String>>,
    /// Only this severity and worse.
    pub min_severity: Severity,
    /// The sink that takes over when this one keeps failing; `None` for none.
    pub fallback: Option<Fallback>,
}

/// Where a sink's notifications also go when it keeps failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// The other sink's name.
    pub sink: String,
    /// How long the sink must have been failing (every attempt failed since its last success)
    /// before its pending notifications also go to the fallback (`notify.fallback_after`).
    pub after: Duration,
}

impl Route {
    /// Everything.
    pub fn all() -> Self {
        Route {
            groups: None,
            min_severity: Severity::Info,
            fallback: None,
        }
    }

    /// Falls back to the sink called `sink` when this one has been failing for longer than `after`.
    pub fn with_fallback(mut self, sink: impl Into<String>, after: Duration) -> Self {
        self.fallback = Some(Fallback {
            sink: sink.into(),
            after,
        });
        self
    }

    fn accepts(&self, m: &Message) -> bool {
        m.severity >= self.min_severity
            && match (&self.groups, &m.group) {
                (Some(gs), Some(g)) => gs.contains(g),
                _ => true,
            }
    }
}

/// When and how often a failed delivery is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; doubled after each next one.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Attempts before the delivery is dead-lettered.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            max_attempts: 12,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempts + 1`, after `attempts` failures; `None` when it is time to
    /// give up.
    pub fn next_wait(&self, attempts: u32) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
        Some(self.base.saturating_mul(factor).min(self.max))
    }
}

/// How many deliveries one sink gets per window; past it, deliveries wait (never dropped) and do not
/// count as failed attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Deliveries per window.
    pub max: u32,
    /// The window.
    pub per: Duration,
}

impl Default for RateLimit {
    /// 20 a minute per sink: a flapping condition cannot flood a chat.
    fn default() -> Self {
        RateLimit {
            max: 20,
            per: Duration::from_secs(60),
        }
    }
}

/// A notification to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    severity: Severity,
    text: String,
    key: Option<String>,
    group: Option<String>,
    payload: serde_json::Value,
    /// Decided by the alert lifecycle: never suppressed here.
    condition: bool,
}

impl Message {
    /// A message with its severity and text.
    pub fn new(severity: Severity, text: impl Into<String>) -> Self {
        Message {
            severity,
            text: text.into(),
            key: None,
            group: None,
            payload: serde_json::Value::Object(Default::default()),
            condition: false,
        }
    }

    /// A condition's message (firing, reminder, resolved, flapping), decided by the alert
    /// lifecycle, which is where conditions are deduplicated: the outbox sends it as it is, even
    /// when the same key and text went out within the dedup window (a condition that resolves and
    /// fires again must be said again).
    pub fn condition(mut self) -> Self {
        self.condition = true;
        self
    }

    /// What it is about (rule and subject): repeats of the same key and text within the dedup window
    /// are sent once.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The group it is for (routing).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Structured details.
    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload;
        self
    }
}

/// What a delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryRound {
    /// Deliveries a sink took.
    pub delivered: u32,
    /// Deliveries that failed and will be retried.
    pub retrying: u32,
    /// Deliveries given up (dead letters).
    pub dead: u32,
    /// Deliveries held back by their sink's rate limit.
    pub postponed: u32,
    /// Deliveries added to fallback sinks for failing primaries (delivered in the same round when
    /// due, and counted there too).
    pub fallback: u32,
}

/// Sends notifications through the store's outbox to the sinks.
pub struct Outbox {
    store: Store,
    sinks: std::sync::RwLock<Vec<(Arc<dyn Notifier>, Route)>>,
    retry: RetryPolicy,
    dedup_window: Duration,
    recent: tokio::sync::Mutex<HashMap<(String, String), DateTime<Utc>>>,
    rate: RateLimit,
    attempts_by_sink:
        tokio::sync::Mutex<HashMap<String, std::collections::VecDeque<DateTime<Utc>>>>,
    wake: tokio::sync::Notify,
    metrics: NotifyMetrics,
    dead_counted: std::sync::atomic::AtomicBool,
}

impl Outbox {
    /// An outbox over `store` delivering to `sinks`.
    pub fn new(store: Store, sinks: Vec<(Arc<dyn Notifier>, Route)>, retry: RetryPolicy) -> Self {
        Outbox {
            store,
            sinks: std::sync::RwLock::new(sinks),
            retry,
            dedup_window: Duration::from_secs(300),
            recent: tokio::sync::Mutex::new(HashMap::new()),
            rate: RateLimit::default(),
            attempts_by_sink: tokio::sync::Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
            metrics: NotifyMetrics::default(),
            dead_counted: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Its metrics (register them once with [`NotifyMetrics::register`]).
    pub fn metrics(&self) -> &NotifyMetrics {
        &self.metrics
    }

    /// Sets how long a repeat of the same key and text is suppressed (default 5 minutes).
    pub fn with_dedup_window(mut self, window: Duration) -> Self {
        self.dedup_window = window;
        self
    }

    /// Sets the per-sink rate limit (default 20 a minute).
    pub fn with_rate_limit(mut self, rate: RateLimit) -> Self {
        self.rate = rate;
        self
    }

    /// The names of the sinks.
    pub fn sink_names(&self) -> Vec<String> {
        self.current_sinks()
            .iter()
            .map(|(s, _)| s.name().to_owned())
            .collect()
    }

    /// The sink named `name` (for `lookout notify test SINK`, which delivers to it directly).
    pub fn sink(&self, name: &str) -> Option<Arc<dyn Notifier>> {
        self.current_sinks()
            .into_iter()
            .map(|(s, _)| s)
            .find(|s| s.name() == name)
    }

    /// Replaces the sinks (a configuration reload). Pending deliveries to a sink that is gone are
    /// dead-lettered with that reason at their next attempt.
    pub fn set_sinks(&self, sinks: Vec<(Arc<dyn Notifier>, Route)>) {
        *self.sinks.write().unwrap_or_else(|p| p.into_inner()) = sinks;
    }

    fn current_sinks(&self) -> Vec<(Arc<dyn Notifier>, Route)> {
        self.sinks.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stores the message for each sink whose route accepts it, and wakes the delivery loop.
    /// Returns its id, or `None` when a one-off message repeats one of the same key and text sent
    /// within the dedup window (a [`Message::condition`] is never suppressed).
    pub async fn send(&self, m: Message) -> Result<Option<String>, StoreError> {
        let now = Utc::now();
        if let Some(key) = m.key.as_ref().filter(|_| !m.condition) {
            let mut recent = self.recent.lock().await;
            let window =
                chrono::Duration::from_std(self.dedup_window).unwrap_or(chrono::Duration::MAX);
            recent.retain(|_, at| now - *at < window);
            if recent.contains_key(&(key.clone(), m.text.clone())) {
                tracing::debug!(key = %key, "notification suppressed: same key and text within the dedup window");
                return Ok(None);
            }
        }
        let dedup = (!m.condition)
            .then(|| m.key.clone().map(|k| (k, m.text.clone())))
            .flatten();
        let id = new_id(now);
        let current = self.current_sinks();
        let sinks: Vec<&str> = current
            .iter()
            .filter(|(_, r)| r.accepts(&m))
            .map(|(s, _)| s.name())
            .collect();
        self.store
            .enqueue_notification(
                &NewNotification {
                    id: id.clone(),
                    dedup_key: m.key,
                    group: m.group,
                    severity: m.severity.as_str().to_owned(),
                    text: m.text,
                    payload: m.payload,
                },
                &sinks,
            )
            .await?;
        // Only a stored notification suppresses its repeats: a failed enqueue may be retried.
        if let Some(k) = dedup {
            self.recent.lock().await.insert(k, now);
        }
        self.wake.notify_one();
        Ok(Some(id))
    }

    /// Delivers every due delivery once, by the clock `now`: first, the pending deliveries of each
    /// sink failing for longer than its fallback's `after` also go to that fallback (see the crate
    /// docs), then every due delivery is handed to its sink.
    pub async fn deliver_due(&self, now: DateTime<Utc>) -> Result<DeliveryRound, StoreError> {
        let mut round = DeliveryRound::default();
        let current = self.current_sinks();
        let mut failing: HashMap<String, DateTime<Utc>> =
            self.store.failing_sinks().await?.into_iter().collect();
        for (sink, route) in &current {
            let (Some(fb), Some(since)) = (&route.fallback, failing.get(sink.name())) else {
                continue;
            };
            if now - *since < chrono_duration(fb.after)
                || !current.iter().any(|(s, _)| s.name() == fb.sink)
            {
                continue;
            }
            let added = self
                .store
                .deliver_via_fallback(sink.name(), &fb.sink, now)
                .await?;
            if added > 0 {
                tracing::warn!(
                    sink = %sink.name(),
                    fallback = %fb.sink,
                    added,
                    failing_for = %human(now - *since),
                    "sink keeps failing: its pending notifications also go to its fallback"
                );
                round.fallback = round
                    .fallback
                    .saturating_add(u32::try_from(added).unwrap_or(u32::MAX));
            }
        }
        let due = self.store.due_deliveries(now, 500).await?;
        for d in due {
            let Some((sink, _)) = current.iter().find(|(s, _)| s.name() == d.sink) else {
                // A sink removed from the config since: say so and give up on it.
                self.store
                    .delivery_attempt_failed(
                        &d.notification.id,
                        &d.sink,
                        "sink no longer configured",
                        None,
                    )
                    .await?;
                self.metrics.count(&d.sink, DeliveryResult::Dead);
                round.dead += 1;
                continue;
            };
            let n = &d.notification;
            // The sink's rate limit: attempts inside the window, by the clock of this round.
            {
                let mut by_sink = self.attempts_by_sink.lock().await;
                let window =
                    chrono::Duration::from_std(self.rate.per).unwrap_or(chrono::Duration::MAX);
                let times = by_sink.entry(d.sink.clone()).or_default();
                while times.front().is_some_and(|t| *t <= now - window) {
                    times.pop_front();
                }
                if times.len() >= self.rate.max.max(1) as usize {
                    let free_at = *times.front().expect("non-empty at the limit") + window;
                    self.store
                        .delivery_postponed(&n.id, &d.sink, free_at)
                        .await?;
                    self.metrics.count(&d.sink, DeliveryResult::Postponed);
                    round.postponed += 1;
                    continue;
                }
                times.push_back(now);
            }
            let text = match &d.via {
                Some(primary) => fallback_text(
                    primary,
                    failing.get(primary).map(|since| now - *since),
                    &n.text,
                ),
                None => n.text.clone(),
            };
            let out = Outgoing {
                id: n.id.clone(),
                created_at: n.created_at,
                key: n.dedup_key.clone(),
                group: n.group.clone(),
                severity: parse_severity(&n.severity),
                text,
                payload: d.payload.clone(),
                fallback_for: d.via.clone(),
            };
            match sink.deliver(&out).await {
                Ok(()) => {
                    self.store
                        .delivery_succeeded(&n.id, &d.sink, Utc::now())
                        .await?;
                    self.metrics.count(&d.sink, DeliveryResult::Delivered);
                    round.delivered += 1;
                    if failing.remove(&d.sink).is_some()
                        && self.store.sink_recovered(&d.sink, now).await?
                    {
                        tracing::info!(sink = %d.sink, "sink takes deliveries again: its backlog is due now");
                        // Its backlog was made due: another round at once.
                        self.wake.notify_one();
                    }
                }
                Err(e) => {
                    let attempts = u32::try_from(d.attempts + 1).unwrap_or(u32::MAX);
                    // The backoff, but never sooner than the sink itself asked (a 429's wait).
                    let retry_at = self
                        .retry
                        .next_wait(attempts)
                        .map(|w| e.retry_after.map_or(w, |asked| w.max(asked)))
                        .and_then(|w| chrono::Duration::from_std(w).ok())
                        .map(|w| now + w);
                    tracing::warn!(id = %n.id, sink = %d.sink, attempts, error = %e, gives_up = retry_at.is_none(), "delivery failed");
                    self.store
                        .delivery_attempt_failed(&n.id, &d.sink, &e.message, retry_at)
                        .await?;
                    self.store.sink_failed(&d.sink, now).await?;
                    failing.entry(d.sink.clone()).or_insert(now);
                    if retry_at.is_some() {
                        self.metrics.count(&d.sink, DeliveryResult::Retried);
                        round.retrying += 1;
                    } else {
                        self.metrics.count(&d.sink, DeliveryResult::Dead);
                        round.dead += 1;
                    }
                }
            }
        }
        // The dead-letter gauge counts the store: at the first round, and when a round may have
        // changed it (a delivery dead, or one taken that supersedes a dead fallback delivery).
        if round.dead > 0
            || round.delivered > 0
            || !self.dead_counted.load(std::sync::atomic::Ordering::Relaxed)
        {
            self.count_dead_letters().await?;
        }
        Ok(round)
    }

    async fn count_dead_letters(&self) -> Result<(), StoreError> {
        let dead = self.store.dead_notification_count().await?;
        self.metrics.set_dead_letters(dead);
        self.dead_counted
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Dead letters, newest notification first, at most `limit`: one per sink that gave up on a
    /// notification (`GET /api/alerts?failed=true`, `lookout alerts list --failed`).
    pub async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self
            .store
            .dead_deliveries(limit)
            .await?
            .into_iter()
            .map(|d| DeadLetter {
                id: d.notification.id,
                created_at: d.notification.created_at,
                key: d.notification.dedup_key,
                group: d.notification.group,
                severity: parse_severity(&d.notification.severity),
                text: d.notification.text,
                sink: d.sink,
                fallback_for: d.via,
                attempts: d.attempts,
                last_error: d.last_error,
            })
            .collect())
    }

    /// Sends dead notification `id` again: its dead deliveries are pending again, due now, with
    /// their attempts reset (`POST /api/alerts/{id}/retry`, `lookout alerts retry ID`). Returns how
    /// many deliveries were revived; 0 when `id` is unknown or has no dead delivery.
    pub async fn retry_dead(&self, id: &str) -> Result<usize, StoreError> {
        let n = self.store.retry_dead_deliveries(id, Utc::now()).await?;
        if n > 0 {
            tracing::info!(id = %id, deliveries = n, "dead letter retried");
            self.count_dead_letters().await?;
            self.wake.notify_one();
        }
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// The sinks failing now (every attempt failed since their last success), each with the time
    /// of its first failed attempt since then.
    pub async fn failing_sinks(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.store.failing_sinks().await
    }

    /// Delivers due notifications forever: at once when [`Outbox::send`] wakes it, else every
    /// `poll` (retries come due on the clock).
    pub async fn run(self: Arc<Self>, poll: Duration) {
        self.run_until(poll, std::future::pending()).await
    }

    /// [`Outbox::run`] until `stop` completes, then one last round for what was stored while
    /// stopping (a run recorded `interrupted`). Returns only between rounds, so a delivery is
    /// never cut off between its send and its record — the store can close after this returns.
    pub async fn run_until(
        self: Arc<Self>,
        poll: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.deliver_due(Utc::now()).await {
                tracing::error!(error = %e, "notification delivery round failed");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = &mut stop => break,
            }
        }
        if let Err(e) = self.deliver_due(Utc::now()).await {
            tracing::error!(error = %e, "last notification delivery round failed");
        }
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

use lookout_common::human_age as human;

/// The text a fallback sink receives: a first line naming the failing primary, then the text.
fn fallback_text(primary: &str, failing_for: Option<chrono::Duration>, text: &str) -> String {
    match failing_for {
        Some(d) => format!(
            "⚠️ primary sink `{primary}` failing for {} — via fallback:\n{text}",
            human(d)
        ),
        None => format!("⚠️ primary sink `{primary}` was failing — via fallback:\n{text}"),
    }
}

fn new_id(now: DateTime<Utc>) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "n-{}-{}-{}",
        now.timestamp_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_then_gives_up() {
        let p = RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
            max_attempts: 6,
        };
        let waits: Vec<Option<u64>> = (1..=7)
            .map(|a| p.next_wait(a).map(|d| d.as_secs()))
            .collect();
        assert_eq!(
            waits,
            vec![Some(1), Some(2), Some(4), Some(8), Some(10), None, None]
        );
    }

    #[test]
    fn routes_filter_by_group_and_severity() {
        let r = Route {
            groups: Some(vec!["admin".into()]),
            min_severity: Severity::Warning,
            fallback: None,
        };
        assert!(r.accepts(&Message::new(Severity::Critical, "x").group("admin")));
        assert!(!r.accepts(&Message::new(Severity::Critical, "x").group("family")));
        assert!(!r.accepts(&Message::new(Severity::Info, "x").group("admin")));
        assert!(r.accepts(&Message::new(Severity::Warning, "no group")));
    }

    #[test]
    fn the_fallback_line_names_the_primary_and_how_long() {
        assert_eq!(
            fallback_text("chat", Some(chrono::Duration::seconds(150)), "disk full"),
            "⚠️ primary sink `chat` failing for 2m — via fallback:\ndisk full"
        );
        assert_eq!(
            fallback_text("chat", None, "disk full"),
            "⚠️ primary sink `chat` was failing — via fallback:\ndisk full"
        );
        assert_eq!(human(chrono::Duration::seconds(3900)), "1h 5m");
        assert_eq!(human(chrono::Duration::seconds(-3)), "0s");
    }
}
