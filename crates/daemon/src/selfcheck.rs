//! Who watches the watcher: `[selfcheck]` pings a dead man's switch outside this host (a
//! healthchecks.io-style URL) every `ping_interval` while lookoutd is alive — its store answers and
//! its reconciler has ticked within `loop_stall` — and `<url>/fail` when it is not. A lookoutd that
//! is gone, frozen (SIGSTOP) or wedged stops pinging, and the switch outside fires on its own.
//! [`Liveness`] is the same test systemd's watchdog is fed by.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_store::Store;

/// Whether lookoutd's loops are alive: the store answers, and the reconciler's tick count moved
/// within the stall limit.
pub(crate) struct Liveness {
    store: Store,
    ticks: Arc<dyn Fn() -> u64 + Send + Sync>,
    stall: Duration,
    /// The last tick count seen and when it was first seen.
    seen: Mutex<Option<(u64, std::time::Instant)>>,
}

impl Liveness {
    pub(crate) fn new(
        store: Store,
        ticks: Arc<dyn Fn() -> u64 + Send + Sync>,
        stall: Duration,
    ) -> Self {
        Liveness {
            store,
            ticks,
            stall,
            seen: Mutex::new(None),
        }
    }

    /// `Ok` with what was checked, or why lookoutd is not alive.
    pub(crate) async fn check(&self) -> Result<String, String> {
        self.store.ping().await.map_err(|e| format!("store: {e}"))?;
        let now_ticks = (self.ticks)();
        let now = std::time::Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match *seen {
            Some((count, since)) if count == now_ticks => {
                let stalled = now.duration_since(since);
                if stalled > self.stall {
                    return Err(format!(
                        "the reconciler has not ticked for {}s",
                        stalled.as_secs()
                    ));
                }
            }
            _ => *seen = Some((now_ticks, now)),
        }
        Ok(format!("store answers, reconciler tick {now_ticks}"))
    }
}

/// The last ping, for `lookout doctor`.
#[derive(Debug, Clone)]
pub(crate) struct LastPing {
    /// When it was sent.
    pub(crate) at: DateTime<Utc>,
    /// It reported a failure (`/fail`).
    pub(crate) failing: bool,
    /// What the liveness check said.
    pub(crate) detail: String,
    /// Why the ping itself did not reach the switch.
    pub(crate) error: Option<String>,
}

/// The self-check's state, shared with the doctor.
#[derive(Default)]
pub(crate) struct SelfCheck {
    last: Mutex<Option<LastPing>>,
}

impl SelfCheck {
    /// The last ping, if one was sent.
    pub(crate) fn last(&self) -> Option<LastPing> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The URL a ping goes to: the switch's, or its `/fail` when lookoutd is not alive.
fn ping_url(base: &str, alive: bool) -> String {
    if alive {
        base.to_owned()
    } else {
        format!("{}/fail", base.trim_end_matches('/'))
    }
}

/// Starts pinging `url` every `interval` (the first ping at once) until `stop`.
pub(crate) fn spawn(
    url: String,
    interval: Duration,
    liveness: Liveness,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (Arc<SelfCheck>, tokio::task::JoinHandle<()>) {
    let state = Arc::new(SelfCheck::default());
    let shared = state.clone();
    let client = reqwest::Client::builder()
        // A slow switch must not make pings pile up.
        .timeout(interval.min(Duration::from_secs(10)))
        .build()
        .expect("an HTTP client with a timeout");
    let handle = tokio::spawn(async move {
        let mut every = tokio::time::interval(interval);
        // After a freeze (SIGSTOP, a suspended VM) pings resume at the interval, not in a burst.
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.wait_for(|v| *v) => return,
            }
            let checked = match tokio::time::timeout(interval, liveness.check()).await {
                Ok(r) => r,
                Err(_) => Err("the liveness check hung".to_owned()),
            };
            let alive = checked.is_ok();
            let detail = checked.unwrap_or_else(|why| why);
            let sent = client.get(ping_url(&url, alive)).send().await;
            let error = match sent {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("HTTP {}", r.status())),
                // The URL may hold the switch's secret id: never in the log.
                Err(e) => Some(e.without_url().to_string()),
            };
            match (&error, alive) {
                (Some(e), _) => {
                    tracing::warn!(error = %e, "selfcheck ping did not reach the switch")
                }
                (None, false) => {
                    tracing::error!(reason = %detail, "selfcheck: lookoutd is not alive; pinged /fail")
                }
                (None, true) => tracing::debug!(%detail, "selfcheck ping"),
            }
            *shared.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(LastPing {
                at: Utc::now(),
                failing: !alive,
                detail,
                error,
            });
        }
    });
    (state, handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_pings_the_fail_url() {
        assert_eq!(
            ping_url("https://hc-ping.com/abc", true),
            "https://hc-ping.com/abc"
        );
        assert_eq!(
            ping_url("https://hc-ping.com/abc/", false),
            "https://hc-ping.com/abc/fail"
        );
    }

    #[tokio::test]
    async fn a_reconciler_that_stops_ticking_fails_the_check_after_the_stall_limit() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let count = Arc::new(std::sync::atomic::AtomicU64::new(1));
        let c = count.clone();
        let live = Liveness::new(
            store,
            Arc::new(move || c.load(std::sync::atomic::Ordering::Relaxed)),
            Duration::ZERO,
        );
        assert!(
            live.check().await.is_ok(),
            "the first look only notes the count"
        );
        let err = live.check().await.unwrap_err();
        assert!(err.contains("has not ticked"), "{err}");
        count.store(2, std::sync::atomic::Ordering::Relaxed);
        assert!(live.check().await.is_ok(), "a tick makes it alive again");
    }
}
