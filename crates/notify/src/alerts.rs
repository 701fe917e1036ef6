//! The alert lifecycle: one state per condition (rule + subject), kept in the store, that every
//! raiser in lookoutd goes through — the reconciler's invariants, the interrupted-run scan, the
//! scheduler's overdue tasks, the watchdog's circuits.
//!
//! ```text
//!            fire (new)                    resolve
//!   (none) ────────────► FIRING ───────────────────────► RESOLVED ──fire──► FIRING …
//!                          │  sent at once, unless:
//!                          │   · held    — a quiet window covers its key: sent when the window
//!                          │               ends if it still fires; if it clears inside, nothing
//!                          │   · folded  — its cause is firing: listed under the cause, sent on
//!                          │               its own only if it outlasts the cause
//!                          │   · flapping — > K changes in W: one "🔁 flapping" line, then one
//!                          │               summary when it settles
//!                          │  re-sent at most once per `repeat_interval` while it lasts
//!                          └─ exactly one "resolved" per firing that was sent (also inside a
//!                             quiet window, and across a restart: the state is in the store)
//! ```
//!
//! Restarts: a firing alert fired again after a restart is not re-sent (its `last_sent` is
//! stored); a raiser that knows its whole current set calls [`Alerts::sync`], which resolves the
//! keys of its rule that no longer hold — so a condition that cleared while lookoutd was down gets
//! its one "resolved" after start.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_store::{AlertRecord, QuietWindow, Store, StoreError};

use crate::{Message, Outbox, Severity};

/// The lifecycle's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertPolicy {
    /// A lasting alert is re-sent at most this often (Alertmanager's `repeat_interval`; 4 h).
    pub repeat_interval: Duration,
    /// More than this many state changes within `flap_window` is flapping (4).
    pub flap_changes: u32,
    /// The window flapping is counted in (10 min).
    pub flap_window: Duration,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            repeat_interval: Duration::from_secs(4 * 3600),
            flap_changes: 4,
            flap_window: Duration::from_secs(600),
        }
    }
}

/// A condition that holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The rule (`interrupted_run`, `task-overdue`, `I1`, `watchdog_circuit`, …).
    pub rule: String,
    /// What it is about (a chat, a task, a target).
    pub subject: String,
    /// How loud.
    pub severity: Severity,
    /// The group it goes to.
    pub group: Option<String>,
    /// What a person reads.
    pub text: String,
    /// The key of the alert that causes this one: while that one fires, this one is folded.
    pub cause: Option<String>,
}

impl Alert {
    /// An alert of `rule` about `subject`.
    pub fn new(
        rule: impl Into<String>,
        subject: impl Into<String>,
        severity: Severity,
        text: impl Into<String>,
    ) -> Self {
        Alert {
            rule: rule.into(),
            subject: subject.into(),
            severity,
            group: None,
            text: text.into(),
            cause: None,
        }
    }

    /// Routes it to `group`.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Names its cause's key (`rule:subject`).
    pub fn caused_by(mut self, cause: impl Into<String>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// `rule:subject`.
    pub fn key(&self) -> String {
        key(&self.rule, &self.subject)
    }
}

/// `rule:subject`.
pub fn key(rule: &str, subject: &str) -> String {
    format!("{rule}:{subject}")
}

/// What a call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The firing message was sent.
    Sent,
    /// A lasting alert's reminder was sent.
    Repeated,
    /// The "resolved" was sent.
    Resolved,
    /// Held by a quiet window.
    Held,
    /// Folded under its firing cause.
    Folded,
    /// It started flapping: the "🔁 flapping" line was sent.
    FlappingStarted,
    /// Flapping: the change was recorded, nothing sent.
    Flapping,
    /// It stopped flapping: the summary was sent.
    Settled,
    /// Nothing to send (already firing and reminded recently, or resolved without having been
    /// sent).
    Nothing,
}

/// A recurring quiet window from the configuration (`[[quiet]]`: cron + zone + duration); the
/// daemon evaluates the schedule.
pub trait RecurringQuiet: Send + Sync {
    /// The window covering `now`, if any: its start and end.
    fn window_at(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)>;
    /// Its name (shown in `lookout alerts list` and `quiet list`).
    fn name(&self) -> &str;
    /// Only alerts whose key contains one of these `|`-separated parts; `None`: all.
    fn matcher(&self) -> Option<&str>;
}

/// How `lookout alerts list` shows an alert.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertView {
    /// The stored state.
    #[serde(flatten)]
    pub record: AlertRecord,
    /// `firing`, `held`, `folded`, `flapping` or `resolved`.
    pub status: &'static str,
    /// For a folded alert: the cause's key.
    pub folded_under: Option<String>,
}

fn matches(matcher: Option<&str>, key: &str) -> bool {
    matcher.is_none_or(|m| {
        m.split('|')
            .any(|part| !part.is_empty() && key.contains(part))
    })
}

fn severity_of(s: &str) -> Severity {
    match s {
        "critical" => Severity::Critical,
        "warning" => Severity::Warning,
        _ => Severity::Info,
    }
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

use lookout_common::human_age as ago;

/// "container a, b, c; task-failed report": the subjects of `alerts` by rule, at most 5 each.
fn affected(alerts: &[AlertRecord]) -> String {
    let mut by_rule: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for a in alerts {
        by_rule.entry(&a.rule).or_default().push(&a.subject);
    }
    by_rule
        .into_iter()
        .map(|(rule, mut subjects)| {
            subjects.sort_unstable();
            subjects.dedup();
            let more = subjects.len().saturating_sub(5);
            subjects.truncate(5);
            let more = if more > 0 {
                format!(" (+{more} more)")
            } else {
                String::new()
            };
            format!("{rule} {}{more}", subjects.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The alert lifecycle over a store and an outbox.
pub struct Alerts {
    store: Store,
    outbox: Arc<Outbox>,
    policy: AlertPolicy,
    recurring: std::sync::RwLock<Vec<Arc<dyn RecurringQuiet>>>,
    // One decision at a time: two raisers of one key must not both send its first firing.
    lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts")
            .field("policy", &self.policy)
            .finish()
    }
}

impl Alerts {
    /// A lifecycle sending through `outbox`.
    pub fn new(store: Store, outbox: Arc<Outbox>, policy: AlertPolicy) -> Self {
        Alerts {
            store,
            outbox,
            policy,
            recurring: std::sync::RwLock::new(Vec::new()),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Replaces the recurring quiet windows (from the configuration; a reload replaces them).
    pub fn set_recurring(&self, windows: Vec<Arc<dyn RecurringQuiet>>) {
        *self.recurring.write().unwrap_or_else(|p| p.into_inner()) = windows;
    }

    /// The quiet window (its reason) holding `key` at `now`, if any.
    async fn quiet_for(&self, key: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        for w in self.store.quiet_windows(now).await? {
            if w.starts_at <= now && matches(w.matcher.as_deref(), key) {
                return Ok(Some(w.reason));
            }
        }
        let recurring = self
            .recurring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok(recurring
            .iter()
            .find(|r| matches(r.matcher(), key) && r.window_at(now).is_some())
            .map(|r| format!("config: {}", r.name())))
    }

    async fn cause_firing(&self, cause: Option<&str>) -> Result<bool, StoreError> {
        Ok(match cause {
            Some(c) => self.store.alert_get(c).await?.is_some_and(|a| a.firing),
            None => false,
        })
    }

    async fn send(&self, a: &AlertRecord, severity: Severity, text: String, resolves: bool) {
        let mut m = Message::new(severity, text)
            .key(a.key.clone())
            .payload(serde_json::json!({
                "alert": a.key, "rule": a.rule, "subject": a.subject,
                "state": if resolves { "resolved" } else { "firing" },
                "first_seen": a.first_seen.to_rfc3339(),
            }));
        if let Some(g) = &a.group {
            m = m.group(g.clone());
        }
        if let Err(e) = self.outbox.send(m).await {
            tracing::error!(error = %e, alert = %a.key, "cannot store an alert in the outbox");
        }
    }

    /// Sends the one "flapping" line and marks the alert flapping.
    async fn start_flapping(&self, a: &mut AlertRecord) -> Outcome {
        a.flapping = true;
        let text = format!(
            "🔁 {} flapping ({} changes in {})",
            a.subject,
            a.changes.len(),
            ago(chrono(self.policy.flap_window))
        );
        self.send(a, Severity::Warning, text, false).await;
        Outcome::FlappingStarted
    }

    /// Re-sends a lasting alert (the reminder of the repeat interval), with what is folded under
    /// it now.
    async fn remind(&self, a: &mut AlertRecord, now: DateTime<Utc>) {
        let folded: Vec<AlertRecord> = match self.store.alerts_list().await {
            Ok(list) => list
                .into_iter()
                .filter(|x| x.firing && x.cause.as_deref() == Some(a.key.as_str()))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, alert = %a.key, "cannot list the alerts folded under it");
                Vec::new()
            }
        };
        let also = if folded.is_empty() {
            String::new()
        } else {
            format!(" — also affected: {}", affected(&folded))
        };
        let text = format!(
            "{} (still firing, since {} ago){also}",
            a.text,
            ago(now - a.first_seen)
        );
        self.send(a, severity_of(&a.severity), text, false).await;
        a.last_sent = Some(now);
        a.send_count += 1;
    }

    /// Records a state change; true when the alert is (now) flapping.
    fn changed(&self, a: &mut AlertRecord, now: DateTime<Utc>) -> bool {
        let since = now - chrono(self.policy.flap_window);
        a.changes.retain(|t| *t > since);
        a.changes.push(now);
        a.last_change = now;
        a.changes.len() as u32 > self.policy.flap_changes
    }

    /// The condition `alert` holds at `now`.
    pub async fn fire(&self, alert: Alert, now: DateTime<Utc>) -> Result<Outcome, StoreError> {
        let _one = self.lock.lock().await;
        let key = alert.key();
        let existing = self.store.alert_get(&key).await?;
        if let Some(mut a) = existing.clone().filter(|a| a.firing) {
            // Still firing: keep the latest text; remind at most once per repeat interval.
            a.text = alert.text.clone();
            a.cause = alert.cause.clone();
            let due = a
                .last_sent
                .is_some_and(|s| now - s >= chrono(self.policy.repeat_interval));
            let mut out = Outcome::Nothing;
            if due && !a.flapping && self.quiet_for(&key, now).await?.is_none() {
                self.remind(&mut a, now).await;
                out = Outcome::Repeated;
            }
            self.store.alert_put(&a).await?;
            return Ok(out);
        }
        let mut a = AlertRecord {
            key: key.clone(),
            rule: alert.rule.clone(),
            subject: alert.subject.clone(),
            firing: true,
            severity: alert.severity.as_str().to_owned(),
            group: alert.group.clone(),
            text: alert.text.clone(),
            cause: alert.cause.clone(),
            first_seen: now,
            last_change: now,
            last_sent: None,
            send_count: 0,
            resolved_at: None,
            changes: existing
                .as_ref()
                .map(|e| e.changes.clone())
                .unwrap_or_default(),
            flapping: existing.as_ref().is_some_and(|e| e.flapping),
        };
        let flapping = self.changed(&mut a, now);
        let out = if a.flapping {
            Outcome::Flapping
        } else if flapping {
            self.start_flapping(&mut a).await
        } else if self.cause_firing(a.cause.as_deref()).await? {
            Outcome::Folded
        } else if self.quiet_for(&key, now).await?.is_some() {
            Outcome::Held
        } else {
            self.send(&a, alert.severity, a.text.clone(), false).await;
            a.last_sent = Some(now);
            a.send_count = 1;
            Outcome::Sent
        };
        self.store.alert_put(&a).await?;
        Ok(out)
    }

    /// The condition `rule:subject` no longer holds at `now`.
    pub async fn resolve(
        &self,
        rule: &str,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let _one = self.lock.lock().await;
        let Some(mut a) = self
            .store
            .alert_get(&key(rule, subject))
            .await?
            .filter(|a| a.firing)
        else {
            return Ok(Outcome::Nothing);
        };
        a.firing = false;
        a.resolved_at = Some(now);
        let flapping_now = self.changed(&mut a, now);
        let out = if a.flapping {
            Outcome::Flapping
        } else if flapping_now {
            self.start_flapping(&mut a).await
        } else if a.last_sent.is_some() {
            // Sent, so its one "resolved" is owed — inside a quiet window too. It names what was
            // folded under it during this firing (the only place those that cleared with it are
            // ever mentioned).
            let folded: Vec<AlertRecord> = self
                .store
                .alerts_list()
                .await?
                .into_iter()
                .filter(|x| {
                    x.cause.as_deref() == Some(a.key.as_str()) && x.first_seen >= a.first_seen
                })
                .collect();
            let also = if folded.is_empty() {
                String::new()
            } else {
                let still = folded.iter().filter(|x| x.firing).count();
                format!(
                    " — also affected while it lasted: {} ({still} still firing)",
                    affected(&folded)
                )
            };
            let text = format!(
                "✅ resolved after {}: {}{also}",
                ago(now - a.first_seen),
                a.text
            );
            self.send(&a, Severity::Info, text, true).await;
            Outcome::Resolved
        } else {
            // Held or folded and never sent: fired and cleared unseen, nothing to say.
            Outcome::Nothing
        };
        self.store.alert_put(&a).await?;
        Ok(out)
    }

    /// A raiser's whole current set for `rule`: fires each, and resolves the firing alerts of
    /// `rule` that are not in it (what cleared while lookoutd was down, too).
    pub async fn sync(
        &self,
        rule: &str,
        current: Vec<Alert>,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Outcome)>, StoreError> {
        let keep: std::collections::HashSet<String> = current.iter().map(Alert::key).collect();
        let mut out = Vec::new();
        for a in current {
            let k = a.key();
            out.push((k, self.fire(a, now).await?));
        }
        for gone in self.store.alerts_firing(rule).await? {
            if !keep.contains(&gone.key) {
                let o = self.resolve(&gone.rule, &gone.subject, now).await?;
                out.push((gone.key, o));
            }
        }
        Ok(out)
    }

    /// Time-driven transitions at `now`: held alerts whose window ended and folded alerts that
    /// outlasted their cause are sent; lasting alerts are reminded once per repeat interval; a
    /// flapping alert with no change for the flap window settles with one summary.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Vec<(String, Outcome)>, StoreError> {
        let _one = self.lock.lock().await;
        let mut out = Vec::new();
        for mut a in self.store.alerts_list().await? {
            if a.flapping {
                if now - a.last_change >= chrono(self.policy.flap_window) {
                    a.flapping = false;
                    a.changes.clear();
                    let state = if a.firing { "still firing" } else { "resolved" };
                    let text = format!("🔁 {} settled: {state} — {}", a.subject, a.text);
                    self.send(&a, Severity::Info, text, !a.firing).await;
                    a.last_sent = a.firing.then_some(now);
                    a.send_count = i64::from(a.firing);
                    self.store.alert_put(&a).await?;
                    out.push((a.key.clone(), Outcome::Settled));
                }
                continue;
            }
            if !a.firing {
                continue;
            }
            let quiet = self.quiet_for(&a.key, now).await?.is_some();
            if a.last_sent.is_none() {
                if quiet || self.cause_firing(a.cause.as_deref()).await? {
                    continue;
                }
                // A held alert whose window ended, or a folded one that outlasted its cause.
                let text = match &a.cause {
                    Some(c) => format!("{} (outlasted {c})", a.text),
                    None => a.text.clone(),
                };
                self.send(&a, severity_of(&a.severity), text, false).await;
                a.last_sent = Some(now);
                a.send_count += 1;
                self.store.alert_put(&a).await?;
                out.push((a.key.clone(), Outcome::Sent));
            } else if !quiet
                && a.last_sent
                    .is_some_and(|s| now - s >= chrono(self.policy.repeat_interval))
            {
                self.remind(&mut a, now).await;
                self.store.alert_put(&a).await?;
                out.push((a.key.clone(), Outcome::Repeated));
            }
        }
        Ok(out)
    }

    /// Opens a quiet window of `length` from `now` (`matcher`: only keys containing one of its
    /// `|`-separated parts).
    pub async fn quiet(
        &self,
        id: String,
        length: Duration,
        matcher: Option<String>,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<QuietWindow, StoreError> {
        let w = QuietWindow {
            id,
            starts_at: now,
            ends_at: now + chrono(length),
            matcher,
            reason,
        };
        self.store.quiet_add(&w).await?;
        Ok(w)
    }

    /// Every alert with how it shows: firing, held, folded, flapping or resolved.
    pub async fn list(&self, now: DateTime<Utc>) -> Result<Vec<AlertView>, StoreError> {
        let mut out = Vec::new();
        for a in self.store.alerts_list().await? {
            let folded =
                a.firing && a.last_sent.is_none() && self.cause_firing(a.cause.as_deref()).await?;
            let status = if a.flapping {
                "flapping"
            } else if !a.firing {
                "resolved"
            } else if folded {
                "folded"
            } else if a.last_sent.is_none() && self.quiet_for(&a.key, now).await?.is_some() {
                "held"
            } else {
                "firing"
            };
            out.push(AlertView {
                folded_under: folded.then(|| a.cause.clone()).flatten(),
                record: a,
                status,
            });
        }
        Ok(out)
    }
}
