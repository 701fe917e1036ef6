//! Boot records of the services lookoutd watches (and of itself): the boot book on disk, plus the
//! events, `boot_attempts` rows and alerts each step produces. A crash loop is a condition: it
//! goes through the alert lifecycle (rule `crash_loop`, the service as subject), so quiet windows hold it, and it resolves when the service is ready — whose "Service
//! recovered after …" report says so.

use std::sync::Arc;

use chrono::Utc;
use lookout_crash_detect::{BeginOutcome, BootBook, BootReport, CrashLoop, FailedStart};
use lookout_store::{BootAttempt, BootOutcome, NewEvent, Store};
use serde_json::json;

use lookout_notify::alerts::{Alert, AlertKey, Alerts};
use lookout_notify::{Outbox, Severity};

use crate::alerts;
use crate::folding::rule;

/// The daemon's boot book, one step at a time (the files are read-modify-written).
pub(crate) struct Boots {
    book: BootBook,
    per_service: Vec<(String, BootBook)>,
    outbox: Arc<Outbox>,
    lifecycle: Arc<Alerts>,
    lock: tokio::sync::Mutex<()>,
}

/// Why a boot step failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BootError {
    #[error(transparent)]
    Book(#[from] lookout_crash_detect::CrashDetectError),
    #[error(transparent)]
    Store(#[from] lookout_store::StoreError),
}

impl Boots {
    pub(crate) fn new(
        book: BootBook,
        per_service: Vec<(String, BootBook)>,
        outbox: Arc<Outbox>,
        lifecycle: Arc<Alerts>,
    ) -> Self {
        Boots {
            book,
            per_service,
            outbox,
            lifecycle,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        service: &str,
        f: impl FnOnce(&BootBook) -> lookout_crash_detect::Result<T> + Send + 'static,
    ) -> Result<T, BootError> {
        // A service of [[boot.services]] has its own options (log file, unit); others the general ones.
        let book = self
            .per_service
            .iter()
            .find(|(name, _)| name == service)
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| self.book.clone());
        Ok(tokio::task::spawn_blocking(move || f(&book))
            .await
            .expect("boot book task")?)
    }

    /// A start of `service` begins.
    pub(crate) async fn begin(
        &self,
        store: &Store,
        service: String,
        version: Option<String>,
        pid: Option<u32>,
    ) -> Result<BeginOutcome, BootError> {
        self.begin_inner(store, service, version, pid, true).await
    }

    /// Like [`Boots::begin`], for a `boot_started` event already in the log.
    pub(crate) async fn begin_recorded(
        &self,
        store: &Store,
        service: String,
        version: Option<String>,
        pid: Option<u32>,
    ) -> Result<BeginOutcome, BootError> {
        self.begin_inner(store, service, version, pid, false).await
    }

    async fn begin_inner(
        &self,
        store: &Store,
        service: String,
        version: Option<String>,
        pid: Option<u32>,
        append_started: bool,
    ) -> Result<BeginOutcome, BootError> {
        let _one_at_a_time = self.lock.lock().await;
        let (s, v) = (service.clone(), version.clone());
        let outcome = self
            .blocking(&service, move |b| {
                b.begin(&s, pid, v.as_deref(), Utc::now())
            })
            .await?;
        // The alert first: the ledger already counts it as sent, so a store error below must not
        // swallow it.
        if let Some(cl) = &outcome.crash_loop {
            crash_loop_alert(&self.lifecycle, cl).await;
        }
        let mut events = Vec::new();
        if let Some(prev) = &outcome.previous_failed {
            record_failure(store, &service, prev).await?;
            events.push(failed_event(&service, prev));
        }
        if append_started {
            events.push(
                NewEvent::new(
                    "boot_started",
                    json!({"service": service, "version": version, "pid": pid}),
                )
                .with_subject(&service),
            );
        }
        store.append_events(&events).await?;
        Ok(outcome)
    }

    /// The host reports that the current start of `service` failed.
    pub(crate) async fn fail(
        &self,
        store: &Store,
        service: String,
        cause: String,
    ) -> Result<BeginOutcome, BootError> {
        let _one_at_a_time = self.lock.lock().await;
        let s = service.clone();
        let outcome = self
            .blocking(&service, move |b| b.fail(&s, &cause, Utc::now()))
            .await?;
        if let Some(cl) = &outcome.crash_loop {
            crash_loop_alert(&self.lifecycle, cl).await;
        }
        if let Some(prev) = &outcome.previous_failed {
            record_failure(store, &service, prev).await?;
            store.append_event(&failed_event(&service, prev)).await?;
        }
        Ok(outcome)
    }

    /// `service` is up: its report of the failed starts before.
    pub(crate) async fn ready(
        &self,
        store: &Store,
        service: String,
    ) -> Result<BootReport, BootError> {
        self.ready_inner(store, service, true).await
    }

    /// Like [`Boots::ready`], for a `boot_ready` event already in the log.
    pub(crate) async fn ready_recorded(
        &self,
        store: &Store,
        service: String,
    ) -> Result<BootReport, BootError> {
        self.ready_inner(store, service, false).await
    }

    async fn ready_inner(
        &self,
        store: &Store,
        service: String,
        append_ready: bool,
    ) -> Result<BootReport, BootError> {
        let _one_at_a_time = self.lock.lock().await;
        let s = service.clone();
        let current = {
            let s = s.clone();
            self.blocking(&service, move |b| b.current(&s)).await?
        };
        let report = self
            .blocking(&service, move |b| b.ready(&s, Utc::now()))
            .await?;
        after_ready(
            store,
            &service,
            current.map(|c| (c.pid, c.version, c.started_at)),
            &report,
            append_ready,
            &self.outbox,
            &self.lifecycle,
        )
        .await?;
        Ok(report)
    }
}

/// What a ready leaves in the store: the ready attempt, the event, and the recovery alert.
pub(crate) async fn after_ready(
    store: &Store,
    service: &str,
    start: Option<(Option<u32>, Option<String>, chrono::DateTime<Utc>)>,
    report: &BootReport,
    append_ready: bool,
    outbox: &Outbox,
    lifecycle: &Alerts,
) -> Result<(), BootError> {
    // The recovery message first: the ledger is already cleared, so a store error below must not
    // swallow it.
    if let Some(message) = report.message() {
        alerts::raise(
            outbox,
            &AlertKey::new(rule::BOOT_RECOVERED, service),
            Severity::Warning,
            &format!("{service}: {message}"),
            serde_json::to_value(report).unwrap_or_default(),
        )
        .await;
    }
    crash_loop_over(lifecycle, service).await;
    let now = Utc::now();
    let (pid, version, started_at) = start.unwrap_or((None, None, now));
    store
        .record_boot_attempt(&BootAttempt {
            service: service.to_owned(),
            pid: pid.map(i64::from),
            version: version.clone(),
            started_at,
            outcome: BootOutcome::Ready,
            ended_at: Some(now),
            cause: None,
        })
        .await?;
    if append_ready {
        store
            .append_event(
                &NewEvent::new(
                    "boot_ready",
                    json!({
                        "service": service,
                        "version": version,
                        "pid": pid,
                        "failed_starts": report.failed_starts,
                        "last_cause": report.last_cause,
                    }),
                )
                .with_subject(service),
            )
            .await?;
    }
    Ok(())
}

/// Records failed starts found by lookoutd's own guard (they never reached the store).
pub(crate) async fn record_own_failures(
    store: &Store,
    service: &str,
    failures: &[FailedStart],
) -> Result<(), BootError> {
    for f in failures {
        record_failure(store, service, f).await?;
    }
    if !failures.is_empty() {
        let events: Vec<NewEvent> = failures.iter().map(|f| failed_event(service, f)).collect();
        store.append_events(&events).await?;
    }
    Ok(())
}

async fn record_failure(store: &Store, service: &str, f: &FailedStart) -> Result<(), BootError> {
    store
        .record_boot_attempt(&BootAttempt {
            service: service.to_owned(),
            pid: f.pid.map(i64::from),
            version: f.version.clone(),
            started_at: f.started_at,
            outcome: BootOutcome::Failed,
            ended_at: Some(f.detected_at),
            cause: f.cause.clone(),
        })
        .await?;
    Ok(())
}

fn failed_event(service: &str, f: &FailedStart) -> NewEvent {
    NewEvent::new(
        "boot_failed",
        json!({
            "service": service,
            "pid": f.pid,
            "version": f.version,
            "started_at": f.started_at.to_rfc3339(),
            "cause": f.cause,
            "cause_source": f.cause_source,
        }),
    )
    .with_subject(service)
}

/// A crash loop of `cl.service`: fired through the alert lifecycle (held by a quiet window that
/// matches `crash_loop`, once per firing).
pub(crate) async fn crash_loop_alert(lifecycle: &Alerts, cl: &CrashLoop) {
    let key = AlertKey::new(rule::CRASH_LOOP, cl.service.clone());
    let text = cl.message();
    let details = serde_json::to_value(cl).unwrap_or_default();
    let a = Alert::keyed(key.clone(), Severity::Critical, text.clone()).details(details);
    match lifecycle.fire(a, Utc::now()).await {
        Ok(outcome) => tracing::info!(alert = %key, ?outcome, "crash-loop alert"),
        Err(e) => {
            tracing::error!(error = %e, alert = %key, text = %text, "cannot record a crash-loop alert")
        }
    }
}

/// `service` is ready: its crash loop, if one fires, is over. The boot report ("Service recovered
/// after …", sent by [`after_ready`]) is what people read, so the lifecycle sends no "resolved".
async fn crash_loop_over(lifecycle: &Alerts, service: &str) {
    let key = AlertKey::new(rule::CRASH_LOOP, service);
    match lifecycle.resolve_reported(&key, Utc::now()).await {
        Ok(outcome) => tracing::debug!(alert = %key, ?outcome, "crash loop over"),
        Err(e) => tracing::warn!(error = %e, alert = %key, "cannot resolve a crash-loop alert"),
    }
}

/// Shared handle.
pub(crate) type SharedBoots = Arc<Boots>;
