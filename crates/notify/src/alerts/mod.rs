//! The alert lifecycle: one state per condition (rule + subject), kept in the store, that every
//! raiser in lookoutd goes through — the reconciler's invariants, the interrupted-run scan, the
//! scheduler's overdue tasks, the watchdog's circuits, the gateway check, crash loops.
//!
//! (Over 800 lines because the lifecycle's transitions — fire, resolve, tick, quiet, ack, list —
//! share one lock and one store row and read best together; its key and tests are already apart.)
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
//!                             quiet window, and across a restart: the state is in the store) —
//!                             or none when the raiser says it in its own message
//!                             ([`Alerts::resolve_reported`]: a boot's recovery report)
//! ```
//!
//! Keys: an alert is about an [`AlertKey`] — a rule and a subject — written `rule:subject` where
//! it is stored, sent and shown; [`AlertKey::parse`] is the one place that text is read back.
//!
//! Folding: which alert folds under which cause is data, a table of [`FoldRule`]s the raiser
//! hands the lifecycle ([`Alerts::set_folding`]): "while `cause` fires, alerts of the rules
//! `folds` whose subject depends on `when` are folded under it". A raiser says what its alert's
//! subject depends on ([`Alert::depends_on`]); the lifecycle finds the cause.
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

mod key;
#[cfg(test)]
mod tests;

pub use key::{AlertKey, Dependency, FoldRule};

/// The cause named by a stored alert's `cause` column.
fn stored_cause(a: &AlertRecord) -> Option<AlertKey> {
    a.cause.as_deref().and_then(AlertKey::parse)
}

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
    /// What it is about.
    pub key: AlertKey,
    /// How loud.
    pub severity: Severity,
    /// The group it goes to.
    pub group: Option<String>,
    /// What a person reads.
    pub text: String,
    /// The cause named by the raiser: while that one fires, this one is folded. `None`: the
    /// lifecycle's fold table decides from `depends_on`.
    pub cause: Option<AlertKey>,
    /// What its subject depends on: the fold table folds it under the cause about one of these.
    pub depends_on: Vec<Dependency>,
    /// Structured details, added to the payload of the firing message when it is sent at once.
    pub details: serde_json::Value,
}

impl Alert {
    /// An alert of `rule` about `subject`.
    pub fn new(
        rule: impl Into<String>,
        subject: impl Into<String>,
        severity: Severity,
        text: impl Into<String>,
    ) -> Self {
        Alert::keyed(AlertKey::new(rule, subject), severity, text)
    }

    /// An alert of `key`.
    pub fn keyed(key: AlertKey, severity: Severity, text: impl Into<String>) -> Self {
        Alert {
            key,
            severity,
            group: None,
            text: text.into(),
            cause: None,
            depends_on: Vec::new(),
            details: serde_json::Value::Null,
        }
    }

    /// Routes it to `group`.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Names its cause: while that alert fires, this one is folded (the fold table is not
    /// consulted).
    pub fn caused_by(mut self, cause: AlertKey) -> Self {
        self.cause = Some(cause);
        self
    }

    /// Its subject depends on `what` (a fold rule keyed on it folds this alert under its cause).
    pub fn depends_on(mut self, what: Dependency) -> Self {
        if !self.depends_on.contains(&what) {
            self.depends_on.push(what);
        }
        self
    }

    /// Structured details for the firing message's payload (beside the lifecycle's own fields).
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// `rule:subject`.
    pub fn key(&self) -> &AlertKey {
        &self.key
    }
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
    /// Resolved after its firing was sent; the raiser's own message says so
    /// ([`Alerts::resolve_reported`]), nothing was sent here.
    ResolvedByRaiser,
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
    pub folded_under: Option<AlertKey>,
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
    folding: std::sync::RwLock<Vec<FoldRule>>,
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
            folding: std::sync::RwLock::new(Vec::new()),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Replaces the recurring quiet windows (from the configuration; a reload replaces them).
    pub fn set_recurring(&self, windows: Vec<Arc<dyn RecurringQuiet>>) {
        *self.recurring.write().unwrap_or_else(|p| p.into_inner()) = windows;
    }

    /// Replaces the fold table: the root-cause folding rules, in order (the first rule whose cause
    /// fires wins). Empty: nothing is folded but under a cause its raiser names.
    pub fn set_folding(&self, rules: Vec<FoldRule>) {
        *self.folding.write().unwrap_or_else(|p| p.into_inner()) = rules;
    }

    /// The fold table.
    pub fn folding(&self) -> Vec<FoldRule> {
        self.folding
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The rules of the fold table that fold alerts of `rule` and whose cause fires now, in
    /// table order.
    pub async fn firing_causes(&self, rule: &str) -> Result<Vec<FoldRule>, StoreError> {
        let mut out = Vec::new();
        for r in self
            .folding()
            .into_iter()
            .filter(|r| r.folds.contains(&rule))
        {
            if self.cause_firing(Some(&r.cause)).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The cause `alert` is folded under while it fires, and whether it fires now: the one its
    /// raiser named, else the first rule of the fold table that applies to it and whose cause
    /// fires now, else the first that applies (kept with the alert: it folds if that cause fires
    /// before the alert is sent).
    async fn cause_of(&self, alert: &Alert) -> Result<Option<(AlertKey, bool)>, StoreError> {
        if let Some(c) = &alert.cause {
            return Ok(Some((c.clone(), self.cause_firing(Some(c)).await?)));
        }
        let candidates: Vec<AlertKey> = self
            .folding()
            .into_iter()
            .filter(|r| r.applies(&alert.key.rule, &alert.depends_on))
            .map(|r| r.cause)
            .collect();
        for c in &candidates {
            if self.cause_firing(Some(c)).await? {
                return Ok(Some((c.clone(), true)));
            }
        }
        Ok(candidates.into_iter().next().map(|c| (c, false)))
    }

    /// The quiet window (its reason) holding `key` at `now`, if any.
    async fn quiet_for(
        &self,
        key: &AlertKey,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        for w in self.store.quiet_windows(now).await? {
            if w.starts_at <= now && matches(w.matcher.as_deref(), &key) {
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
            .find(|r| matches(r.matcher(), &key) && r.window_at(now).is_some())
            .map(|r| format!("config: {}", r.name())))
    }

    async fn cause_firing(&self, cause: Option<&AlertKey>) -> Result<bool, StoreError> {
        Ok(match cause {
            Some(c) => self
                .store
                .alert_get(&c.to_string())
                .await?
                .is_some_and(|a| a.firing),
            None => false,
        })
    }

    /// The alerts whose stored cause is `key`.
    async fn folded_under(
        &self,
        key: &AlertKey,
        keep: impl Fn(&AlertRecord) -> bool,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        Ok(self
            .store
            .alerts_list()
            .await?
            .into_iter()
            .filter(|x| stored_cause(x).as_ref() == Some(key) && keep(x))
            .collect())
    }

    async fn send(
        &self,
        a: &AlertRecord,
        severity: Severity,
        text: String,
        resolves: bool,
        details: Option<&serde_json::Value>,
    ) {
        let mut payload = match details {
            Some(serde_json::Value::Object(d)) => d.clone(),
            _ => serde_json::Map::new(),
        };
        for (k, v) in [
            ("alert", a.key.clone().into()),
            ("rule", a.rule.clone().into()),
            ("subject", a.subject.clone().into()),
            ("state", if resolves { "resolved" } else { "firing" }.into()),
            ("first_seen", a.first_seen.to_rfc3339().into()),
        ] {
            payload.insert(k.to_owned(), v);
        }
        let mut m = Message::new(severity, text)
            .key(a.key.clone())
            .payload(serde_json::Value::Object(payload))
            .condition();
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
        self.send(a, Severity::Warning, text, false, None).await;
        Outcome::FlappingStarted
    }

    /// Re-sends a lasting alert (the reminder of the repeat interval), with what is folded under
    /// it now.
    async fn remind(&self, a: &mut AlertRecord, now: DateTime<Utc>) {
        let folded = match self.folded_under(&AlertKey::of(a), |x| x.firing).await {
            Ok(list) => list,
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
        self.send(a, severity_of(&a.severity), text, false, None)
            .await;
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
        let key = alert.key.clone();
        let (cause, cause_fires) = match self.cause_of(&alert).await? {
            Some((c, fires)) => (Some(c), fires),
            None => (None, false),
        };
        let existing = self.store.alert_get(&key.to_string()).await?;
        if let Some(mut a) = existing.clone().filter(|a| a.firing) {
            // Still firing: keep the latest text; remind at most once per repeat interval.
            a.text = alert.text.clone();
            a.cause = cause.as_ref().map(AlertKey::to_string);
            let due = a
                .last_sent
                .is_some_and(|s| now - s >= chrono(self.policy.repeat_interval));
            let mut out = Outcome::Nothing;
            if due
                && !a.flapping
                && a.acked_by.is_none()
                && self.quiet_for(&key, now).await?.is_none()
            {
                self.remind(&mut a, now).await;
                out = Outcome::Repeated;
            }
            self.store.alert_put(&a).await?;
            return Ok(out);
        }
        let mut a = AlertRecord {
            key: key.to_string(),
            rule: key.rule.clone(),
            subject: key.subject.clone(),
            firing: true,
            severity: alert.severity.as_str().to_owned(),
            group: alert.group.clone(),
            text: alert.text.clone(),
            cause: cause.as_ref().map(AlertKey::to_string),
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
            // A new firing: an ack of the last one does not carry over.
            acked_by: None,
        };
        let flapping = self.changed(&mut a, now);
        let out = if a.flapping {
            Outcome::Flapping
        } else if flapping {
            self.start_flapping(&mut a).await
        } else if cause_fires {
            Outcome::Folded
        } else if self.quiet_for(&key, now).await?.is_some() {
            Outcome::Held
        } else {
            self.send(
                &a,
                alert.severity,
                a.text.clone(),
                false,
                Some(&alert.details),
            )
            .await;
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
        self.resolve_key(&AlertKey::new(rule, subject), now).await
    }

    /// The condition `key` no longer holds at `now`: if its firing was sent, its one "✅ resolved"
    /// is sent (naming what was folded under it).
    pub async fn resolve_key(
        &self,
        key: &AlertKey,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        self.resolve_inner(key, now, true).await
    }

    /// The condition `key` no longer holds at `now`, and its raiser tells people so in its own
    /// message (a boot's "Service recovered after …" ends its crash loop): the alert is resolved —
    /// what was folded under it is free to surface, a new firing is a new alert — but no "✅
    /// resolved" is sent. Flapping is counted as for [`Alerts::resolve_key`].
    pub async fn resolve_reported(
        &self,
        key: &AlertKey,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        self.resolve_inner(key, now, false).await
    }

    async fn resolve_inner(
        &self,
        key: &AlertKey,
        now: DateTime<Utc>,
        announce: bool,
    ) -> Result<Outcome, StoreError> {
        let _one = self.lock.lock().await;
        let Some(mut a) = self
            .store
            .alert_get(&key.to_string())
            .await?
            .filter(|a| a.firing)
        else {
            return Ok(Outcome::Nothing);
        };
        a.firing = false;
        a.resolved_at = Some(now);
        self.outbox.metrics().incident_resolved(
            &a.rule,
            (now - a.first_seen).num_milliseconds().max(0) as f64 / 1000.0,
        );
        let flapping_now = self.changed(&mut a, now);
        let out = if a.flapping {
            Outcome::Flapping
        } else if flapping_now {
            self.start_flapping(&mut a).await
        } else if a.last_sent.is_some() && !announce {
            // Sent; its end is said by the raiser's own message.
            Outcome::ResolvedByRaiser
        } else if a.last_sent.is_some() {
            // Sent, so its one "resolved" is owed — inside a quiet window too. It names what was
            // folded under it during this firing (the only place those that cleared with it are
            // ever mentioned).
            let first_seen = a.first_seen;
            let folded = self
                .folded_under(key, |x| x.first_seen >= first_seen)
                .await?;
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
            self.send(&a, Severity::Info, text, true, None).await;
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
    ) -> Result<Vec<(AlertKey, Outcome)>, StoreError> {
        let keep: std::collections::HashSet<AlertKey> =
            current.iter().map(|a| a.key.clone()).collect();
        let mut out = Vec::new();
        for a in current {
            let k = a.key.clone();
            out.push((k, self.fire(a, now).await?));
        }
        for gone in self.store.alerts_firing(rule).await? {
            let k = AlertKey::of(&gone);
            if !keep.contains(&k) {
                let o = self.resolve_key(&k, now).await?;
                out.push((k, o));
            }
        }
        Ok(out)
    }

    /// Time-driven transitions at `now`: held alerts whose window ended and folded alerts that
    /// outlasted their cause are sent; lasting alerts are reminded once per repeat interval; a
    /// flapping alert with no change for the flap window settles with one summary.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Vec<(AlertKey, Outcome)>, StoreError> {
        let _one = self.lock.lock().await;
        let mut out = Vec::new();
        for mut a in self.store.alerts_list().await? {
            let key = AlertKey::of(&a);
            if a.flapping {
                if now - a.last_change >= chrono(self.policy.flap_window) {
                    a.flapping = false;
                    a.changes.clear();
                    let state = if a.firing { "still firing" } else { "resolved" };
                    let text = format!("🔁 {} settled: {state} — {}", a.subject, a.text);
                    self.send(&a, Severity::Info, text, !a.firing, None).await;
                    a.last_sent = a.firing.then_some(now);
                    a.send_count = i64::from(a.firing);
                    self.store.alert_put(&a).await?;
                    out.push((key, Outcome::Settled));
                }
                continue;
            }
            if !a.firing {
                continue;
            }
            let quiet = self.quiet_for(&key, now).await?.is_some();
            let cause = stored_cause(&a);
            if a.last_sent.is_none() {
                if quiet || self.cause_firing(cause.as_ref()).await? {
                    continue;
                }
                // A held alert whose window ended, or a folded one that outlasted its cause.
                let text = match &cause {
                    Some(c) => format!("{} (outlasted {c})", a.text),
                    None => a.text.clone(),
                };
                self.send(&a, severity_of(&a.severity), text, false, None)
                    .await;
                a.last_sent = Some(now);
                a.send_count += 1;
                self.store.alert_put(&a).await?;
                out.push((key, Outcome::Sent));
            } else if !quiet
                && a.acked_by.is_none()
                && a.last_sent
                    .is_some_and(|s| now - s >= chrono(self.policy.repeat_interval))
            {
                self.remind(&mut a, now).await;
                self.store.alert_put(&a).await?;
                out.push((key, Outcome::Repeated));
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
        // An incident open now records the window that holds its reminders.
        let action = lookout_store::IncidentAction {
            at: now,
            kind: "quiet".into(),
            text: format!("quiet for {} ({})", ago(chrono(length)), w.reason),
            by: None,
        };
        self.store
            .incident_note(
                lookout_store::IncidentScope::Matching(w.matcher.as_deref()),
                &action,
            )
            .await?;
        Ok(w)
    }

    /// Acknowledges the firing alert `key` for `by` (`/ack` from chat, `lookout alerts ack`): its
    /// reminders stop; it still resolves, and fires anew (unacknowledged) after that. The ack is
    /// noted on its incident. `None` when no alert of that key is firing.
    pub async fn ack(
        &self,
        key: &AlertKey,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AlertRecord>, StoreError> {
        let _one = self.lock.lock().await;
        let Some(mut a) = self
            .store
            .alert_get(&key.to_string())
            .await?
            .filter(|a| a.firing)
        else {
            return Ok(None);
        };
        a.acked_by = Some(by.to_owned());
        self.store.alert_put(&a).await?;
        let action = lookout_store::IncidentAction {
            at: now,
            kind: "ack".into(),
            text: format!("acknowledged by {by}"),
            by: Some(by.to_owned()),
        };
        self.store
            .incident_note(lookout_store::IncidentScope::Alert(&a.key), &action)
            .await?;
        Ok(Some(a))
    }

    /// Every alert with how it shows: firing, held, folded, flapping or resolved.
    pub async fn list(&self, now: DateTime<Utc>) -> Result<Vec<AlertView>, StoreError> {
        let mut out = Vec::new();
        for a in self.store.alerts_list().await? {
            let key = AlertKey::of(&a);
            let cause = stored_cause(&a);
            let folded =
                a.firing && a.last_sent.is_none() && self.cause_firing(cause.as_ref()).await?;
            let status = if a.flapping {
                "flapping"
            } else if !a.firing {
                "resolved"
            } else if folded {
                "folded"
            } else if a.last_sent.is_none() && self.quiet_for(&key, now).await?.is_some() {
                "held"
            } else {
                "firing"
            };
            out.push(AlertView {
                folded_under: cause.filter(|_| folded),
                record: a,
                status,
            });
        }
        Ok(out)
    }
}
