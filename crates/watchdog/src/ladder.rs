//! The escalation ladder as a pure function of the persisted heal state, an observation, the
//! policy and `now`: no I/O, no clock.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::observe::{Health, Observation};
use crate::target::{Action, Policy, TargetSpec};

/// The last action the ladder took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastAction {
    /// Its tier (1-based).
    pub tier: u8,
    /// What it did.
    pub action: Action,
    /// When.
    pub at: DateTime<Utc>,
}

/// Why a circuit is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitOpen {
    /// Since when.
    pub since: DateTime<Utc>,
    /// Why, in words.
    pub reason: String,
}

/// A target's heal state: everything the ladder needs to continue after a restart of lookoutd.
/// It is saved *before* an action is taken, so a crash between the save and the action can only
/// lose an action, never repeat one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealState {
    /// Index into the ladder of the next tier to try (0 = tier 1).
    pub next_tier: usize,
    /// The last action of this episode.
    pub last_action: Option<LastAction>,
    /// Consecutive actions of the top tier in this episode.
    pub top_tier_attempts: u32,
    /// When actions ran, within the heal period.
    pub heals: Vec<DateTime<Utc>>,
    /// Restarts since the backoff was last reset.
    pub restarts: u32,
    /// When the last restart ran.
    pub last_restart_at: Option<DateTime<Utc>>,
    /// When the watchdog last started the target (heartbeats older than this are the old
    /// process's, and a missing one gets the start-up grace from here).
    pub started_at: Option<DateTime<Utc>>,
    /// Healthy without a break since.
    pub healthy_since: Option<DateTime<Utc>>,
    /// Failing without a break since.
    pub failing_since: Option<DateTime<Utc>>,
    /// The open circuit, if any.
    pub circuit: Option<CircuitOpen>,
}

/// Why the ladder waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// The target is settling after an action (`quiet_after_heal`).
    Quiet,
    /// The previous tier is getting its time to work (`cooldown`).
    Cooldown,
    /// The restart backoff.
    Backoff,
}

/// What the ladder decides for one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Healthy; `recovered_after` is the last action when this ends an episode.
    Healthy {
        recovered_after: Option<LastAction>,
        /// The open circuit closes (healthy long enough).
        close_circuit: bool,
    },
    /// Nothing to decide: the probe could not tell.
    Unknown,
    /// Failing, but the circuit is already open: stop acting.
    CircuitOpen,
    /// The probe falls inside the settling window: neither escalate nor reset.
    Settling { until: DateTime<Utc> },
    /// Failing; tier `tier` will act at `until`.
    Wait {
        tier: u8,
        action: Action,
        until: DateTime<Utc>,
        why: WaitReason,
    },
    /// Act now.
    Act { tier: u8, action: Action },
    /// Open the circuit now.
    OpenCircuit { reason: String },
}

fn dur(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Whether `action` can do anything for this target as observed.
fn applicable(action: Action, spec: &TargetSpec, obs: &Observation) -> bool {
    match (action, spec) {
        (Action::RestartMarker, TargetSpec::Process(p)) => {
            // Nobody would read the marker of a process known to be gone.
            p.restart_marker.is_some() && (obs.pid.is_some() || p.pid_file.is_none())
        }
        (Action::Terminate, TargetSpec::Process(_)) => obs.pid.is_some(),
        (Action::KillAndStart, TargetSpec::Process(p)) => obs.pid.is_some() || p.start.is_some(),
        (Action::ContainerRestart | Action::ContainerStopStart, TargetSpec::Container(_)) => true,
        _ => false,
    }
}

/// The tier the ladder would use next, as (index, action), or `None` when nothing applies.
fn next_rung(
    state: &HealState,
    spec: &TargetSpec,
    policy: &Policy,
    obs: &Observation,
) -> Option<(usize, Action)> {
    let ladder = &policy.ladder;
    let from = state.next_tier.min(ladder.len());
    if let Some(found) = ladder
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, a)| applicable(**a, spec, obs))
    {
        return Some((found.0, *found.1));
    }
    // Past the top: the top applicable tier repeats (until the circuit opens).
    ladder
        .iter()
        .enumerate()
        .rev()
        .find(|(_, a)| applicable(**a, spec, obs))
        .map(|(i, a)| (i, *a))
}

fn tier_of(index: usize) -> u8 {
    u8::try_from(index + 1).unwrap_or(u8::MAX)
}

/// Heals within the period ending at `now`.
pub(crate) fn heals_in_period(state: &HealState, policy: &Policy, now: DateTime<Utc>) -> usize {
    let from = now - dur(policy.heal_period);
    state.heals.iter().filter(|t| **t > from).count()
}

/// The decision for `obs` given `state`.
pub(crate) fn decide(
    state: &HealState,
    spec: &TargetSpec,
    policy: &Policy,
    obs: &Observation,
    now: DateTime<Utc>,
) -> Decision {
    if let Some(last) = &state.last_action {
        let until = last.at + dur(policy.quiet_after_heal);
        if now < until && obs.health != Health::Unknown {
            return Decision::Settling { until };
        }
    }
    match obs.health {
        Health::Unknown => Decision::Unknown,
        Health::Healthy => {
            let close_circuit = match (&state.circuit, policy.circuit_close_after) {
                (Some(_), Some(after)) => state
                    .healthy_since
                    .is_some_and(|since| now - since >= dur(after)),
                _ => false,
            };
            Decision::Healthy {
                recovered_after: if state.circuit.is_none() {
                    state.last_action.clone()
                } else {
                    None
                },
                close_circuit,
            }
        }
        Health::Failing => {
            if state.circuit.is_some() {
                return Decision::CircuitOpen;
            }
            let max_heals = usize::try_from(policy.max_heals).unwrap_or(usize::MAX);
            if heals_in_period(state, policy, now) > max_heals {
                return Decision::OpenCircuit {
                    reason: format!(
                        "{} heals within {}s (more than {})",
                        heals_in_period(state, policy, now),
                        policy.heal_period.as_secs(),
                        policy.max_heals
                    ),
                };
            }
            let past_top = state.next_tier >= policy.ladder.len();
            if past_top && state.top_tier_attempts >= policy.max_top_tier_failures {
                return Decision::OpenCircuit {
                    reason: format!(
                        "the top tier failed {} times in a row",
                        state.top_tier_attempts
                    ),
                };
            }
            let Some((index, action)) = next_rung(state, spec, policy, obs) else {
                return Decision::OpenCircuit {
                    reason: if policy.ladder.is_empty() {
                        "no healing tier is configured for this target".into()
                    } else {
                        "no tier of the ladder can act (no pid, no restart marker, no start command)"
                            .into()
                    },
                };
            };
            let tier = tier_of(index);
            if let Some(last) = &state.last_action {
                let until = last.at + dur(policy.cooldown_of(last.tier));
                if now < until {
                    return Decision::Wait {
                        tier,
                        action,
                        until,
                        why: WaitReason::Cooldown,
                    };
                }
            }
            if action.restarts()
                && let Some(prev) = state.last_restart_at
            {
                let until = prev + dur(policy.backoff.delay(state.restarts));
                if now < until {
                    return Decision::Wait {
                        tier,
                        action,
                        until,
                        why: WaitReason::Backoff,
                    };
                }
            }
            Decision::Act { tier, action }
        }
    }
}

/// Applies a decision's consequences to the state. Returns whether anything worth saving changed.
pub(crate) fn apply(
    state: &mut HealState,
    decision: &Decision,
    policy: &Policy,
    obs: &Observation,
    now: DateTime<Utc>,
) -> bool {
    let before = state.clone();
    match obs.health {
        Health::Healthy => {
            state.failing_since = None;
            if state.healthy_since.is_none() {
                state.healthy_since = Some(now);
            }
        }
        Health::Failing => {
            state.healthy_since = None;
            if state.failing_since.is_none() {
                state.failing_since = Some(now);
            }
        }
        Health::Unknown => {}
    }
    // The restart backoff forgets after the target stayed healthy long enough.
    if let Some(since) = state.healthy_since
        && now - since >= dur(policy.backoff.reset_after)
    {
        state.restarts = 0;
        state.last_restart_at = None;
    }
    let period_start = now - dur(policy.heal_period);
    state.heals.retain(|t| *t > period_start);
    match decision {
        Decision::Healthy { close_circuit, .. } => {
            state.next_tier = 0;
            state.top_tier_attempts = 0;
            state.last_action = None;
            if *close_circuit {
                state.circuit = None;
            }
        }
        Decision::Act { tier, action } => {
            let index = usize::from(*tier) - 1;
            state.next_tier = index + 1;
            if state.next_tier >= policy.ladder.len() {
                state.top_tier_attempts += 1;
            }
            state.last_action = Some(LastAction {
                tier: *tier,
                action: *action,
                at: now,
            });
            state.heals.push(now);
            if action.restarts() {
                state.restarts += 1;
                state.last_restart_at = Some(now);
                state.started_at = Some(now);
            }
        }
        Decision::OpenCircuit { reason } => {
            state.circuit = Some(CircuitOpen {
                since: now,
                reason: reason.clone(),
            });
        }
        Decision::Unknown
        | Decision::CircuitOpen
        | Decision::Settling { .. }
        | Decision::Wait { .. } => {}
    }
    // Only the ladder's own fields are worth a disk write; the healthy/failing clocks ride along
    // when they change from none to some (once per episode).
    *state != before
}
