//! Probe rounds: the loop that runs them, and one round (probe the due targets at once, apply the
//! healing budget, let each ladder act).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use crate::metrics::ProbeLabels;
use crate::observe::{Health, Observation};
use crate::probe::{self, ProcessContext, RestartBaseline};
use crate::target::{Target, TargetSpec};

use super::{Inner, RoundOutcome, RoundSummary, Watchdog};

fn dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Watchdog {
    /// The time until the next target is due, if any target exists.
    fn until_next_due(&self) -> Option<Duration> {
        let now = self.inner.clock.now();
        let slots = self.inner.slots.lock().unwrap();
        slots
            .values()
            .map(|s| match s.next_probe_at {
                None => Duration::ZERO,
                Some(at) => (at - now).to_std().unwrap_or(Duration::ZERO),
            })
            .min()
    }

    /// Runs probe rounds until `shutdown` completes: each target is probed once per its
    /// `probe_interval`; targets due together form one round.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let summary = self.probe_round().await;
            tracing::debug!(probed = summary.outcomes.len(), "watchdog round");
            let wait = self
                .until_next_due()
                .unwrap_or(Duration::from_secs(1))
                .max(Duration::from_millis(1));
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(wait) => {}
                () = self.inner.wake.notified() => {}
            }
        }
    }

    /// Probes every target that is due now, applies the healing budget, and lets the ladder of
    /// each act (at most one tier per target). Tests call it directly with a paused clock.
    pub async fn probe_round(&self) -> RoundSummary {
        let now = self.inner.clock.now();
        // Pick the due targets and take what their probes need.
        let mut jobs = Vec::new();
        {
            let mut slots = self.inner.slots.lock().unwrap();
            for (name, slot) in slots.iter_mut() {
                if slot.next_probe_at.is_some_and(|at| at > now) {
                    continue;
                }
                let first_seen = *slot.first_seen.get_or_insert(now);
                slot.next_probe_at = Some(now + dur(slot.target.policy.probe_interval));
                jobs.push(ProbeJob {
                    name: name.clone(),
                    target: slot.target.clone(),
                    ctx: ProcessContext {
                        heartbeat_event: slot.heartbeat_event,
                        first_seen,
                        started_at: slot.state.started_at,
                        future_mtime: slot.future_mtime,
                    },
                    http_in_row: slot.http_in_row,
                    baseline: slot.baseline.clone(),
                });
            }
        }
        let mut set = JoinSet::new();
        for job in jobs {
            let inner = self.inner.clone();
            set.spawn(async move { job.run(inner, now).await });
        }
        let mut observed: Vec<(Arc<Target>, Observation)> = Vec::new();
        while let Some(done) = set.join_next().await {
            let Ok((job, obs)) = done else { continue };
            self.inner
                .metrics
                .probes
                .get_or_create(&ProbeLabels {
                    target: job.name.clone(),
                    result: health_label(obs.health).into(),
                })
                .inc();
            let mut slots = self.inner.slots.lock().unwrap();
            if let Some(slot) = slots.get_mut(&job.name) {
                slot.http_in_row = job.http_in_row;
                slot.baseline = job.baseline;
                slot.future_mtime = job.ctx.future_mtime;
                slot.last_obs = Some(obs.clone());
            }
            observed.push((job.target, obs));
        }
        observed.sort_by(|a, b| a.0.name.cmp(&b.0.name));

        let held = self.apply_budget(&observed, now).await;

        let mut set = JoinSet::new();
        let mut outcomes = Vec::new();
        for (target, obs) in observed {
            if let Some(cause) = held.get(&target.name) {
                outcomes.push(RoundOutcome {
                    target: target.name.clone(),
                    health: obs.health,
                    outcome: format!("held by the shared circuit ({cause})"),
                });
                continue;
            }
            let this = self.clone();
            set.spawn(async move {
                let outcome = this.handle(&target, &obs, now).await;
                RoundOutcome {
                    target: target.name.clone(),
                    health: obs.health,
                    outcome,
                }
            });
        }
        while let Some(done) = set.join_next().await {
            if let Ok(o) = done {
                outcomes.push(o);
            }
        }
        outcomes.sort_by(|a, b| a.target.cmp(&b.target));
        RoundSummary {
            at: Some(now),
            outcomes,
            shared_circuits: self.shared_circuits(),
        }
    }
}

fn health_label(h: Health) -> &'static str {
    match h {
        Health::Healthy => "healthy",
        Health::Failing => "failing",
        Health::Unknown => "unknown",
    }
}

struct ProbeJob {
    name: String,
    target: Arc<Target>,
    ctx: ProcessContext,
    http_in_row: u32,
    baseline: RestartBaseline,
}

impl ProbeJob {
    async fn run(mut self, inner: Arc<Inner>, now: DateTime<Utc>) -> (ProbeJob, Observation) {
        let obs = match &self.target.spec {
            TargetSpec::Process(_) => {
                let target = self.target.clone();
                let control = inner.process.clone();
                let mut ctx = self.ctx.clone();
                let probed = tokio::task::spawn_blocking(move || {
                    let TargetSpec::Process(spec) = &target.spec else {
                        unreachable!("matched above")
                    };
                    let obs =
                        probe::probe_process(spec, &target.policy, control.as_ref(), &mut ctx, now);
                    (obs, ctx)
                })
                .await;
                match probed {
                    Ok((obs, ctx)) => {
                        self.ctx = ctx;
                        obs
                    }
                    Err(e) => {
                        let mut o = Observation::healthy(now);
                        o.health = Health::Unknown;
                        o.notes.push(format!("probe failed: {e}"));
                        o
                    }
                }
            }
            TargetSpec::Container(spec) => {
                probe::probe_container(
                    spec,
                    &self.target.policy,
                    inner.containers.as_ref(),
                    &mut self.baseline,
                    now,
                )
                .await
            }
            TargetSpec::Http(spec) => {
                probe::probe_http(spec, inner.http.as_ref(), &mut self.http_in_row, now).await
            }
        };
        (self, obs)
    }
}
