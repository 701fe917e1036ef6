//! The healing budget: targets failing with one shared cause are held by one shared circuit,
//! announced once, instead of being healed one by one.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::observe::{Health, Observation};
use crate::report::{EventKind, Notification, Severity, WatchdogEvent};
use crate::target::Target;

use super::{SharedCircuit, Watchdog};

impl Watchdog {
    /// The healing budget: opens or closes shared circuits from this round's observations, and
    /// answers the targets they hold (name → cause).
    pub(super) async fn apply_budget(
        &self,
        observed: &[(Arc<Target>, Observation)],
        now: DateTime<Utc>,
    ) -> BTreeMap<String, String> {
        // Every target's latest observation counts, not only this round's: targets are probed
        // on their own schedules, so one round may see a single target of a cause that fails for
        // twenty (and must not close the shared circuit because of it).
        let latest: Vec<(Arc<Target>, Observation)> = {
            let slots = self.inner.slots.lock().unwrap();
            let mut all: Vec<(Arc<Target>, Observation)> = slots
                .values()
                .filter_map(|s| s.last_obs.clone().map(|o| (s.target.clone(), o)))
                .collect();
            // A target observed this round but removed meanwhile still counts this once.
            for (t, o) in observed {
                if !all.iter().any(|(x, _)| x.name == t.name) {
                    all.push((t.clone(), o.clone()));
                }
            }
            all.sort_by(|a, b| a.0.name.cmp(&b.0.name));
            all
        };
        let mut by_cause: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for (target, obs) in &latest {
            if obs.health == Health::Healthy {
                continue;
            }
            if let Some(cause) = obs.upstream.clone().or_else(|| target.upstream.clone()) {
                by_cause
                    .entry(cause)
                    .or_default()
                    .push((target.name.clone(), obs.summary()));
            }
        }
        let threshold = self.inner.budget.threshold.max(1);
        let mut opened = Vec::new();
        let mut closed = Vec::new();
        let mut held = BTreeMap::new();
        {
            let mut shared = self.inner.shared.lock().unwrap();
            for (cause, failing) in &by_cause {
                if failing.len() < threshold {
                    continue;
                }
                let targets: Vec<String> = failing.iter().map(|(n, _)| n.clone()).collect();
                for t in &targets {
                    held.insert(t.clone(), cause.clone());
                }
                match shared.get_mut(cause) {
                    Some(c) => c.targets = targets,
                    None => {
                        let c = SharedCircuit {
                            cause: cause.clone(),
                            since: now,
                            targets,
                        };
                        shared.insert(cause.clone(), c.clone());
                        opened.push((c, failing.clone()));
                    }
                }
            }
            // Close the shared circuits whose cause no longer fails enough targets.
            let gone: Vec<String> = shared
                .keys()
                .filter(|cause| by_cause.get(*cause).is_none_or(|f| f.len() < threshold))
                .cloned()
                .collect();
            for cause in gone {
                if let Some(c) = shared.remove(&cause) {
                    closed.push(c);
                }
            }
        }
        for (c, failing) in opened {
            self.inner.metrics.circuits_open.inc();
            tracing::warn!(cause = %c.cause, targets = c.targets.len(), "watchdog shared circuit open");
            let seen = failing
                .iter()
                .map(|(n, s)| format!("{n}: {s}"))
                .collect::<Vec<_>>()
                .join("; ");
            self.report(
                WatchdogEvent {
                    kind: EventKind::WatchdogSharedCircuitOpen,
                    target: c.cause.clone(),
                    tier: None,
                    observation: seen,
                    action: "healing paused for the targets of this cause".into(),
                    ok: true,
                    targets: c.targets.clone(),
                    at: now,
                },
                Notification {
                    severity: Severity::Critical,
                    key: format!("watchdog_shared:{}", c.cause),
                    resolves: false,
                    text: format!(
                        "⛔ {} targets failing together, shared cause: {} — one circuit open, not healing them one by one (also affected: {})",
                        c.targets.len(),
                        c.cause,
                        c.targets.join(", ")
                    ),
                },
            )
            .await;
        }
        for c in closed {
            self.inner.metrics.circuits_open.dec();
            tracing::info!(cause = %c.cause, "watchdog shared circuit closed");
            self.report(
                WatchdogEvent {
                    kind: EventKind::WatchdogSharedCircuitClosed,
                    target: c.cause.clone(),
                    tier: None,
                    observation: format!("fewer than {threshold} targets fail with this cause"),
                    action: "healing resumed".into(),
                    ok: true,
                    targets: c.targets.clone(),
                    at: now,
                },
                Notification {
                    severity: Severity::Info,
                    key: format!("watchdog_shared:{}", c.cause),
                    resolves: true,
                    text: format!(
                        "✅ shared cause {} cleared — the watchdog heals its targets again ({})",
                        c.cause,
                        c.targets.join(", ")
                    ),
                },
            )
            .await;
        }
        held
    }
}
