//! Acting on a decision of the ladder: the heal state saved first, the action carried out (a
//! restart marker, a signal, a start command, a container restart), and what was done reported.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::WatchdogError;
use crate::control::Signal;
use crate::ladder::{self, Decision, LastAction};
use crate::metrics::ActionLabels;
use crate::observe::Observation;
use crate::report::{EventKind, Notification, Severity, WatchdogEvent};
use crate::store::write_atomic;
use crate::target::{Action, Target, TargetSpec};

use super::Watchdog;

impl Watchdog {
    /// Decides for one target, saves the state before acting, acts, reports.
    pub(super) async fn handle(
        &self,
        target: &Target,
        obs: &Observation,
        now: DateTime<Utc>,
    ) -> String {
        let name = target.name.as_str();
        let (decision, state, before, changed) = {
            let mut slots = self.inner.slots.lock().unwrap();
            let Some(slot) = slots.get_mut(name) else {
                return "removed".into();
            };
            let before = slot.state.clone();
            let decision = ladder::decide(&slot.state, &target.spec, &target.policy, obs, now);
            let changed = ladder::apply(&mut slot.state, &decision, &target.policy, obs, now);
            (decision, slot.state.clone(), before, changed)
        };
        if changed && let Err(e) = self.persist(name, &state).await {
            // Acting without a saved state could repeat the action after a restart: hold off, and
            // forget the decision so the next probe decides again.
            if let Some(slot) = self.inner.slots.lock().unwrap().get_mut(name) {
                slot.state = before;
            }
            tracing::error!(target_name = %name, error = %e, "watchdog could not save heal state; not acting");
            return format!("not acting: heal state not saved ({e})");
        }
        match decision {
            Decision::Healthy {
                recovered_after,
                close_circuit,
            } => {
                if let Some(last) = recovered_after {
                    self.announce_recovery(target, &last, now).await;
                }
                if close_circuit {
                    self.inner.metrics.circuits_open.dec();
                    self.report(
                        WatchdogEvent {
                            kind: EventKind::WatchdogCircuitClosed,
                            target: name.to_owned(),
                            tier: Some(target.policy.circuit_tier()),
                            observation: "healthy".into(),
                            action: "circuit closed: healthy long enough".into(),
                            ok: true,
                            targets: Vec::new(),
                            at: now,
                        },
                        Notification {
                            severity: Severity::Info,
                            key: format!("watchdog_circuit:{name}"),
                            resolves: true,
                            text: format!(
                                "✅ {name}: healthy again — circuit closed, the watchdog heals again"
                            ),
                        },
                    )
                    .await;
                }
                "healthy".into()
            }
            Decision::Unknown => format!("unknown: {}", obs.summary()),
            Decision::CircuitOpen => "circuit open".into(),
            Decision::Settling { until } => format!("settling until {}", until.to_rfc3339()),
            Decision::Wait {
                tier, until, why, ..
            } => format!("tier {tier} waits for {why:?} until {}", until.to_rfc3339()),
            Decision::OpenCircuit { reason } => {
                self.inner.metrics.circuits_open.inc();
                let tier = target.policy.circuit_tier();
                tracing::error!(target_name = %name, tier, reason = %reason, "watchdog circuit open");
                self.report(
                    WatchdogEvent {
                        kind: EventKind::WatchdogCircuitOpen,
                        target: name.to_owned(),
                        tier: Some(tier),
                        observation: obs.summary(),
                        action: format!("circuit open: {reason}; stopped acting"),
                        ok: true,
                        targets: Vec::new(),
                        at: now,
                    },
                    Notification {
                        severity: Severity::Critical,
                        key: format!("watchdog_circuit:{name}"),
                        resolves: false,
                        text: format!(
                            "⛔ {name}: {} — circuit open, {reason}; the watchdog stopped acting (tier {tier}). `lookout watchdog reset {name}` when fixed",
                            obs.summary()
                        ),
                    },
                )
                .await;
                format!("circuit opened: {reason}")
            }
            Decision::Act { tier, action } => {
                self.inner
                    .metrics
                    .actions
                    .get_or_create(&ActionLabels {
                        target: name.to_owned(),
                        tier: tier.to_string(),
                    })
                    .inc();
                let result = self.perform(target, action, obs).await;
                let (what, ok) = match &result {
                    Ok(what) => (what.clone(), true),
                    Err(e) => (format!("{} failed: {e}", action.describe()), false),
                };
                if ok {
                    tracing::warn!(target_name = %name, tier, action = %what, "watchdog acted");
                } else {
                    tracing::error!(target_name = %name, tier, action = %what, "watchdog action failed");
                }
                self.report(
                    WatchdogEvent {
                        kind: EventKind::WatchdogAction,
                        target: name.to_owned(),
                        tier: Some(tier),
                        observation: obs.summary(),
                        action: what.clone(),
                        ok,
                        targets: Vec::new(),
                        at: now,
                    },
                    Notification {
                        severity: Severity::Warning,
                        key: format!("watchdog_heal:{name}"),
                        resolves: false,
                        text: format!("🩹 {name}: {} — {what} (tier {tier})", obs.summary()),
                    },
                )
                .await;
                format!("acted tier {tier}: {what}")
            }
        }
    }

    async fn announce_recovery(&self, target: &Target, last: &LastAction, now: DateTime<Utc>) {
        let name = &target.name;
        tracing::info!(target_name = %name, tier = last.tier, "watchdog target recovered");
        self.report(
            WatchdogEvent {
                kind: EventKind::WatchdogRecovered,
                target: name.clone(),
                tier: Some(last.tier),
                observation: "healthy".into(),
                action: format!("recovered after {}", last.action.describe()),
                ok: true,
                targets: Vec::new(),
                at: now,
            },
            Notification {
                severity: Severity::Info,
                key: format!("watchdog_heal:{name}"),
                resolves: true,
                text: format!(
                    "✅ {name}: healthy again after {} (tier {})",
                    last.action.describe(),
                    last.tier
                ),
            },
        )
        .await;
    }

    /// Carries out one action. Answers what was done.
    async fn perform(
        &self,
        target: &Target,
        action: Action,
        obs: &Observation,
    ) -> Result<String, WatchdogError> {
        match (&target.spec, action) {
            (TargetSpec::Process(p), Action::RestartMarker) => {
                let marker = p
                    .restart_marker
                    .clone()
                    .ok_or_else(|| WatchdogError::Spawn("no restart marker configured".into()))?;
                let body = format!(
                    "restart requested by the lookout watchdog at {}\n",
                    self.inner.clock.now().to_rfc3339()
                );
                let path = marker.clone();
                tokio::task::spawn_blocking(move || write_atomic(&path, body.as_bytes()))
                    .await
                    .map_err(|e| WatchdogError::Task(e.to_string()))?
                    .map_err(|source| WatchdogError::Io {
                        path: marker.clone(),
                        source,
                    })?;
                Ok(format!("wrote the restart marker {}", marker.display()))
            }
            (TargetSpec::Process(_), Action::Terminate) => {
                let pid = obs.pid.ok_or(WatchdogError::Signal {
                    pid: 0,
                    reason: "no pid".into(),
                })?;
                self.inner.process.signal(pid, Signal::Term)?;
                Ok(format!("sent SIGTERM to pid {pid}"))
            }
            (TargetSpec::Process(p), Action::KillAndStart) => {
                let mut done = Vec::new();
                if let Some(pid) = obs.pid.filter(|pid| self.inner.process.alive(*pid)) {
                    self.inner.process.signal(pid, Signal::Kill)?;
                    let deadline = tokio::time::Instant::now() + target.policy.kill_wait;
                    while self.inner.process.alive(pid) && tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    done.push(format!("sent SIGKILL to pid {pid}"));
                }
                match &p.start {
                    Some(cmd) => {
                        let child = self.inner.process.spawn(cmd)?;
                        done.push(format!("ran the start command (pid {child})"));
                    }
                    None => done.push("no start command configured".into()),
                }
                Ok(done.join(" and "))
            }
            (TargetSpec::Container(c), Action::ContainerRestart) => {
                self.inner.containers.restart(&c.container).await?;
                Ok(format!("restarted container {}", c.container))
            }
            (TargetSpec::Container(c), Action::ContainerStopStart) => {
                self.inner.containers.stop(&c.container).await?;
                self.inner.containers.start(&c.container).await?;
                Ok(format!("stopped and started container {}", c.container))
            }
            (_, action) => Err(WatchdogError::InvalidTarget {
                target: target.name.clone(),
                reason: format!("{action:?} does not apply"),
            }),
        }
    }
}
