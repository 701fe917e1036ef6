//! # lookout-status-collect — every subsystem's health in one report
//!
//! [`collect_status`] runs one [`Collector`] per section concurrently, each under its own timeout; a
//! section that errs or times out carries `{"error": …, "elapsed_ms": …}` and the others still
//! report. Each collector returns its data and its [`Finding`]s; the report's verdict is the worst
//! finding (`pass` when there is none), with every finding's reason, so a person or a script reads
//! the state first and the data second.
//!
//! What only the host knows comes through [`StatusDeps`]; everything else through traits this crate
//! defines and a host implements only where it has the thing: [`repos::RepoInspector`] (libgit2:
//! [`repos::Git2Inspector`]), [`gateway::ContainerRuntime`] (the Docker Engine API:
//! [`gateway::DockerRuntime`]), [`gateway::HttpProbe`] ([`gateway::ReqwestProbe`]),
//! [`host::TaskSource`], [`host::WatchdogSource`], [`repos::DeploySource`], and the store. The real
//! implementations sit behind the default features `git`, `docker` and `http`.
//!
//! Verdict rules and thresholds (see each collector):
//! - a section that errs or times out: **warn** ("section X unavailable: …");
//! - `service`: shutting down: **warn**;
//! - `deploy`: HEAD differs from the last deploy's commit: **warn**;
//! - `channels`: disconnected for less than `channel_down`: **warn**; longer: **fail**;
//! - `gateway`: engine unreachable or a container not running: **fail**; health endpoint failing,
//!   slow or not JSON: **warn**; unhealthy models: **warn**, none healthy: **fail**;
//! - `queue`: at the concurrency limit with groups waiting: **warn**; above it: **fail**;
//! - `repos`: a worktree with a conflict or a repository that cannot be read: **fail**; a dirty
//!   main repository or a worktree whose directory is gone: **warn**;
//! - `messages`: deliveries pending longer than `delivery_pending`: **warn**; messages in flight
//!   longer than `stale_processing` (an interrupted run): **warn**;
//! - `tasks`, `host_jobs`: `next_run` past by more than the grace with no run: **fail**; last run
//!   failed, timed out or interrupted: **warn**;
//! - `watchdog`: a circuit open: **fail**; a target unhealthy: **warn**;
//! - `boot`: a service whose latest start failed: **fail**;
//! - `notifications`: dead letters: **warn**.
//!
//! It is **not** allowed to let one section fail the whole report.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use lookout_status_collect::{collect_status, CollectError, Collected, Collector, Finding, Verdict};
//!
//! struct Fine;
//! #[async_trait::async_trait]
//! impl Collector for Fine {
//!     fn name(&self) -> &'static str { "fine" }
//!     async fn collect(&self) -> Result<Collected, CollectError> {
//!         Ok(Collected::new(serde_json::json!({"ok": true}))
//!             .with(Finding::warn("something to look at")))
//!     }
//! }
//! let report = collect_status(&[Arc::new(Fine) as Arc<dyn Collector>], Duration::from_secs(2), None).await;
//! assert_eq!(report.status, Verdict::Warn);
//! assert_eq!(report.reasons, vec!["something to look at".to_string()]);
//! # });
//! ```

pub mod gateway;
pub mod host;
pub mod repos;
pub mod sections;
pub mod view;
#[cfg(feature = "watch")]
pub mod watched;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use serde::Serialize;

/// The overall state, worst first in severity: `pass` < `warn` < `fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// All is well.
    Pass,
    /// Something needs a look.
    Warn,
    /// Something is broken.
    Fail,
}

/// One thing a collector found, with its weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `warn` or `fail`.
    pub level: Verdict,
    /// What a person reads ("channel slack disconnected for 3m").
    pub reason: String,
}

impl Finding {
    /// A warning.
    pub fn warn(reason: impl Into<String>) -> Self {
        Finding {
            level: Verdict::Warn,
            reason: reason.into(),
        }
    }

    /// A failure.
    pub fn fail(reason: impl Into<String>) -> Self {
        Finding {
            level: Verdict::Fail,
            reason: reason.into(),
        }
    }
}

/// What a collector returns: its section's data and its findings.
#[derive(Debug, Clone, PartialEq)]
pub struct Collected {
    /// The section as JSON.
    pub data: serde_json::Value,
    /// What it found.
    pub findings: Vec<Finding>,
}

impl Collected {
    /// Data with no finding.
    pub fn new(data: serde_json::Value) -> Self {
        Collected {
            data,
            findings: Vec::new(),
        }
    }

    /// Adds a finding.
    pub fn with(mut self, f: Finding) -> Self {
        self.findings.push(f);
        self
    }
}

/// Why a section could not be gathered; its text becomes the section's `error` in the report.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The store did not answer.
    #[error(transparent)]
    Store(#[from] lookout_store::StoreError),
    /// A source the host or the daemon supplies (`StatusDeps`, a task or watchdog source, a
    /// repository) failed, in its own words.
    #[error("{0}")]
    Source(String),
    /// The section took longer than its timeout.
    #[error("timed out after {0} ms")]
    Timeout(u128),
    /// The collector panicked; the report goes on without it.
    #[error("collector panicked: {0}")]
    Panicked(String),
}

impl From<String> for CollectError {
    fn from(reason: String) -> Self {
        CollectError::Source(reason)
    }
}

impl From<&str> for CollectError {
    fn from(reason: &str) -> Self {
        CollectError::Source(reason.to_owned())
    }
}

/// One section of the report.
#[async_trait::async_trait]
pub trait Collector: Send + Sync {
    /// The section's name (`service`, `messages`, …).
    fn name(&self) -> &'static str;
    /// Gathers the section; an error becomes the section's `error`.
    async fn collect(&self) -> Result<Collected, CollectError>;
}

/// What only the host knows, in memory. A host implements what it has; the defaults say "not
/// reported".
#[async_trait::async_trait]
pub trait StatusDeps: Send + Sync {
    /// Whether the host is shutting down.
    async fn is_shutting_down(&self) -> bool {
        false
    }
    /// Each channel and whether it is connected, with when that state began when known.
    async fn channels(&self) -> Result<BTreeMap<String, ChannelState>, String> {
        Ok(BTreeMap::new())
    }
    /// The run queue; `None`: not reported.
    async fn queue(&self) -> Result<Option<host::QueueSnapshot>, String> {
        Ok(None)
    }
    /// Groups (workspaces) and active sessions; `None`: not reported.
    async fn groups(&self) -> Result<Option<host::GroupsSnapshot>, String> {
        Ok(None)
    }
}

/// A channel's connection state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelState {
    /// Connected to its upstream service?
    pub connected: bool,
    /// Since when, if known.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Why it disconnected, if said.
    pub reason: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    /// The verdict: the worst finding of every section.
    pub status: Verdict,
    /// Every finding's reason, worst first.
    pub reasons: Vec<String>,
    /// When the report was made.
    pub generated_at: chrono::DateTime<chrono::Utc>,
    /// How long it took.
    pub elapsed_ms: u64,
    /// Each section by name: its data, or `{"error", "elapsed_ms"}`.
    pub sections: BTreeMap<String, serde_json::Value>,
    /// Each section's own verdict (its worst finding; `warn` when it erred).
    pub section_status: BTreeMap<String, Verdict>,
}

/// Runs the collectors concurrently, each under `timeout`; `only` restricts the sections.
pub async fn collect_status(
    collectors: &[Arc<dyn Collector>],
    timeout: Duration,
    only: Option<&[String]>,
) -> StatusReport {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let mut names = std::collections::HashMap::new();
    for c in collectors {
        if only.is_some_and(|o| !o.iter().any(|n| n == c.name())) {
            continue;
        }
        let c = c.clone();
        let name = c.name();
        let handle = set.spawn(async move {
            let t = Instant::now();
            let r = tokio::time::timeout(timeout, c.collect()).await;
            let elapsed_ms = t.elapsed().as_millis() as u64;
            let r = match r {
                Ok(r) => r,
                Err(_) => Err(CollectError::Timeout(timeout.as_millis())),
            };
            (c.name(), r, elapsed_ms)
        });
        names.insert(handle.id(), name);
    }
    let mut sections = BTreeMap::new();
    let mut section_status = BTreeMap::new();
    let mut findings: Vec<Finding> = Vec::new();
    while let Some(joined) = set.join_next_with_id().await {
        let (name, result, elapsed_ms) = match joined {
            Ok((_, x)) => x,
            // A collector that panicked: its section says so, the report goes on.
            Err(e) => (
                names.get(&e.id()).copied().unwrap_or("unknown"),
                Err(CollectError::Panicked(e.to_string())),
                started.elapsed().as_millis() as u64,
            ),
        };
        match result {
            Ok(c) => {
                let worst = c
                    .findings
                    .iter()
                    .map(|f| f.level)
                    .max()
                    .unwrap_or(Verdict::Pass);
                section_status.insert(name.to_owned(), worst);
                sections.insert(name.to_owned(), c.data);
                findings.extend(c.findings);
            }
            Err(error) => {
                section_status.insert(name.to_owned(), Verdict::Warn);
                findings.push(Finding::warn(format!(
                    "section {name} unavailable: {error}"
                )));
                sections.insert(
                    name.to_owned(),
                    serde_json::json!({"error": error.to_string(), "elapsed_ms": elapsed_ms}),
                );
            }
        }
    }
    findings.sort_by(|a, b| b.level.cmp(&a.level).then_with(|| a.reason.cmp(&b.reason)));
    StatusReport {
        status: findings.first().map(|f| f.level).unwrap_or(Verdict::Pass),
        reasons: findings.into_iter().map(|f| f.reason).collect(),
        generated_at: chrono::Utc::now(),
        elapsed_ms: started.elapsed().as_millis() as u64,
        sections,
        section_status,
    }
}

pub use lookout_common::human_age;

/// `collect_status` for a server: reports are kept for `ttl` and shared by concurrent requests.
///
/// With many clients polling (dashboards, `lookout status` in cron, load balancers), collecting
/// once per request would walk every worktree and read every task row for each of them. Here a
/// report younger than `ttl` is served from memory; one between `ttl` and `2 × ttl` old is served
/// too while a fresh one is collected in the background, so a steady poller never waits for a
/// collection; an older one (or none) is collected for the request, and requests arriving
/// meanwhile wait for that collection and share it. Every report's `generated_at` says how fresh
/// it is, and none served is older than `2 × ttl` (plus one collection). A `ttl` of zero collects
/// for every request that does not overlap another.
pub struct StatusCache {
    collectors: Arc<Vec<Arc<dyn Collector>>>,
    timeout: Duration,
    ttl: Duration,
    reports: Arc<std::sync::Mutex<std::collections::HashMap<String, Slot>>>,
    // Held by a request that collects: the requests behind it then find its report.
    collecting: tokio::sync::Mutex<()>,
}

/// One set of sections' latest report.
#[derive(Default)]
struct Slot {
    latest: Option<(Instant, Arc<StatusReport>)>,
    refreshing: bool,
}

impl StatusCache {
    /// A cache over `collectors`, each section under `timeout`, reports kept for `ttl`.
    pub fn new(collectors: Vec<Arc<dyn Collector>>, timeout: Duration, ttl: Duration) -> Self {
        StatusCache {
            collectors: Arc::new(collectors),
            timeout,
            ttl,
            reports: Arc::default(),
            collecting: tokio::sync::Mutex::new(()),
        }
    }

    /// The collectors (their names are the sections).
    pub fn collectors(&self) -> &[Arc<dyn Collector>] {
        &self.collectors
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Slot>> {
        self.reports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A report of `only` (every section when `None`), at most `2 × ttl` old.
    pub async fn report(&self, only: Option<&[String]>) -> Arc<StatusReport> {
        let sections: Option<Vec<String>> = only.map(|o| {
            let mut o = o.to_vec();
            o.sort();
            o.dedup();
            o
        });
        let key = sections.as_ref().map(|o| o.join(",")).unwrap_or_default();
        let requested = Instant::now();
        {
            let mut slots = self.slots();
            let slot = slots.entry(key.clone()).or_default();
            if let Some((at, r)) = &slot.latest {
                let age = at.elapsed();
                if age < self.ttl {
                    return r.clone();
                }
                if age < self.ttl * 2 {
                    if !slot.refreshing {
                        slot.refreshing = true;
                        self.refresh_in_background(key, sections);
                    }
                    return r.clone();
                }
            }
        }
        let _one = self.collecting.lock().await;
        if let Some((at, r)) = &self.slots().get(&key).and_then(|s| s.latest.clone()) {
            // Collected while this request waited.
            if *at > requested {
                return r.clone();
            }
        }
        let r = Arc::new(collect_status(&self.collectors, self.timeout, sections.as_deref()).await);
        self.slots().entry(key).or_default().latest = Some((Instant::now(), r.clone()));
        r
    }

    fn refresh_in_background(&self, key: String, sections: Option<Vec<String>>) {
        let (collectors, reports, timeout) =
            (self.collectors.clone(), self.reports.clone(), self.timeout);
        tokio::spawn(async move {
            let r = Arc::new(collect_status(&collectors, timeout, sections.as_deref()).await);
            let mut slots = reports.lock().unwrap_or_else(|p| p.into_inner());
            let slot = slots.entry(key).or_default();
            slot.refreshing = false;
            slot.latest = Some((Instant::now(), r));
        });
    }
}

#[cfg(test)]
mod cache_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Counting(Arc<AtomicUsize>);
    #[async_trait::async_trait]
    impl Collector for Counting {
        fn name(&self) -> &'static str {
            "counted"
        }
        async fn collect(&self) -> Result<Collected, CollectError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(Collected::new(serde_json::json!({})))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_share_one_collection_and_the_ttl_bounds_its_age() {
        let n = Arc::new(AtomicUsize::new(0));
        let cache = Arc::new(StatusCache::new(
            vec![Arc::new(Counting(n.clone())) as Arc<dyn Collector>],
            Duration::from_secs(2),
            Duration::from_secs(1),
        ));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let c = cache.clone();
            set.spawn(async move { c.report(None).await });
        }
        while set.join_next().await.is_some() {}
        assert_eq!(
            n.load(Ordering::SeqCst),
            1,
            "16 concurrent requests, one collection"
        );
        let first = cache.report(None).await;
        assert_eq!(n.load(Ordering::SeqCst), 1, "within the ttl: from memory");
        // Past 2 × ttl: the request collects.
        tokio::time::advance(Duration::from_millis(2100)).await;
        let second = cache.report(None).await;
        assert_eq!(n.load(Ordering::SeqCst), 2, "past 2 × ttl: collected again");
        assert!(second.generated_at > first.generated_at);
        cache.report(Some(&["counted".to_owned()])).await;
        assert_eq!(
            n.load(Ordering::SeqCst),
            3,
            "another set of sections is its own report"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn between_ttl_and_twice_it_the_report_is_served_while_a_fresh_one_is_collected() {
        let n = Arc::new(AtomicUsize::new(0));
        let cache = StatusCache::new(
            vec![Arc::new(Counting(n.clone())) as Arc<dyn Collector>],
            Duration::from_secs(2),
            Duration::from_secs(1),
        );
        let first = cache.report(None).await;
        tokio::time::advance(Duration::from_millis(1500)).await;
        // Served at once (no 100 ms collection in the way), the refresh runs behind it, once.
        let t = Instant::now();
        let stale = cache.report(None).await;
        let again = cache.report(None).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
        assert!(Arc::ptr_eq(&first, &stale) && Arc::ptr_eq(&first, &again));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(n.load(Ordering::SeqCst), 2, "one background collection");
        let fresh = cache.report(None).await;
        assert!(
            !Arc::ptr_eq(&first, &fresh),
            "the refreshed report is served next"
        );
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_ttl_of_zero_collects_for_every_request() {
        let n = Arc::new(AtomicUsize::new(0));
        let cache = StatusCache::new(
            vec![Arc::new(Counting(n.clone())) as Arc<dyn Collector>],
            Duration::from_secs(2),
            Duration::ZERO,
        );
        cache.report(None).await;
        cache.report(None).await;
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }
}
