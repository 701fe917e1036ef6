//! `explain`: what was observed of a target, which tier acts next and when, and the circuit's
//! state and why — plain data for `lookout watchdog explain` and `GET /api/watchdog/{t}/explain`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::WatchdogError;
use crate::ladder::{self, Decision, LastAction, WaitReason};
use crate::observe::{Finding, Health, Observation};
use crate::supervisor::Watchdog;
use crate::target::{Action, TargetKind};

/// One rung of the ladder as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rung {
    /// Its tier.
    pub tier: u8,
    /// Its action.
    pub action: Action,
    /// In words.
    pub description: String,
}

/// What would happen next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextStep {
    /// The tier that would act (the circuit's tier when it would open).
    pub tier: Option<u8>,
    /// Its action (none when the circuit would open or nothing would happen).
    pub action: Option<Action>,
    /// When it may act, at the earliest.
    pub at: Option<DateTime<Utc>>,
    /// What it waits for first, if anything.
    pub waiting_for: Option<WaitReason>,
    /// `true` when the target is healthy and this is what would happen if it failed.
    pub if_failing: bool,
    /// In words.
    pub summary: String,
}

/// The state of a target's circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// The ladder acts.
    Closed,
    /// The target's own circuit is open: the watchdog stopped acting on it.
    Open,
    /// A shared circuit (healing budget) holds it.
    SharedOpen,
}

/// The circuit, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitInfo {
    /// Its state.
    pub state: CircuitState,
    /// Open since.
    pub since: Option<DateTime<Utc>>,
    /// Why it is open.
    pub reason: Option<String>,
    /// How it closes.
    pub closes: Option<String>,
}

/// The restart backoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackoffInfo {
    /// Restarts since the last reset.
    pub restarts: u32,
    /// The wait before the next restart, after the last one (seconds).
    pub next_delay_secs: u64,
    /// The next restart is allowed from.
    pub next_allowed_at: Option<DateTime<Utc>>,
    /// Healthy this long resets the count (seconds).
    pub resets_after_secs: u64,
}

/// Everything `explain` says about a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The target.
    pub target: String,
    /// Its kind.
    pub kind: TargetKind,
    /// When this was computed.
    pub now: DateTime<Utc>,
    /// The last observation, if it was probed yet.
    pub observation: Option<Observation>,
    /// The last observation's findings, in words.
    pub seen: Vec<String>,
    /// The ladder.
    pub ladder: Vec<Rung>,
    /// The last action of the current episode.
    pub last_action: Option<LastAction>,
    /// Consecutive top-tier actions in this episode.
    pub top_tier_attempts: u32,
    /// Heals within the heal period, and the most allowed.
    pub heals_in_period: usize,
    /// See `heals_in_period`.
    pub max_heals: u32,
    /// What would act next, and when.
    pub next: NextStep,
    /// The circuit.
    pub circuit: CircuitInfo,
    /// The restart backoff.
    pub backoff: BackoffInfo,
    /// When the target is probed next.
    pub next_probe_at: Option<DateTime<Utc>>,
}

pub(crate) fn explain(w: &Watchdog, name: &str) -> Result<Explanation, WatchdogError> {
    let now = w.inner.clock.now();
    let shared = w
        .inner
        .shared
        .lock()
        .unwrap()
        .values()
        .find(|c| c.targets.iter().any(|t| t == name))
        .cloned();
    let slots = w.inner.slots.lock().unwrap();
    let slot = slots
        .get(name)
        .ok_or_else(|| WatchdogError::UnknownTarget(name.to_owned()))?;
    let target = &slot.target;
    let policy = &target.policy;
    let state = &slot.state;
    let probe_at = slot.next_probe_at.unwrap_or(now).max(now);

    let circuit = if let Some(open) = &state.circuit {
        CircuitInfo {
            state: CircuitState::Open,
            since: Some(open.since),
            reason: Some(open.reason.clone()),
            closes: Some(match policy.circuit_close_after {
                Some(d) => format!(
                    "by `lookout watchdog reset {name}`, or after {}s healthy",
                    d.as_secs()
                ),
                None => format!("by `lookout watchdog reset {name}`"),
            }),
        }
    } else if let Some(c) = &shared {
        CircuitInfo {
            state: CircuitState::SharedOpen,
            since: Some(c.since),
            reason: Some(format!(
                "{} targets fail with the shared cause {} ({})",
                c.targets.len(),
                c.cause,
                c.targets.join(", ")
            )),
            closes: Some("when fewer targets fail with that cause".into()),
        }
    } else {
        CircuitInfo {
            state: CircuitState::Closed,
            since: None,
            reason: None,
            closes: None,
        }
    };

    // What the ladder would decide at the next probe; a healthy target is asked "what if it
    // failed".
    let mut assumed = slot
        .last_obs
        .clone()
        .unwrap_or_else(|| Observation::healthy(now));
    let if_failing = assumed.health == Health::Healthy;
    if if_failing {
        assumed.health = Health::Failing;
        assumed.findings = vec![Finding::HeartbeatMissing];
    }
    let next = if circuit.state == CircuitState::SharedOpen {
        NextStep {
            tier: None,
            action: None,
            at: None,
            waiting_for: None,
            if_failing,
            summary: "nothing: held by the shared circuit".into(),
        }
    } else {
        match ladder::decide(state, &target.spec, policy, &assumed, probe_at) {
            Decision::Act { tier, action } => NextStep {
                tier: Some(tier),
                action: Some(action),
                at: Some(probe_at),
                waiting_for: None,
                if_failing,
                summary: format!(
                    "tier {tier} ({}) at the next probe, {}",
                    action.describe(),
                    probe_at.to_rfc3339()
                ),
            },
            Decision::Wait {
                tier,
                action,
                until,
                why,
            } => NextStep {
                tier: Some(tier),
                action: Some(action),
                at: Some(until),
                waiting_for: Some(why),
                if_failing,
                summary: format!(
                    "tier {tier} ({}) after the {} ends at {}",
                    action.describe(),
                    match why {
                        WaitReason::Cooldown => "cooldown",
                        WaitReason::Backoff => "restart backoff",
                        WaitReason::Quiet => "quiet period",
                    },
                    until.to_rfc3339()
                ),
            },
            Decision::Settling { until } => NextStep {
                tier: None,
                action: None,
                at: Some(until),
                waiting_for: Some(WaitReason::Quiet),
                if_failing,
                summary: format!(
                    "settling after the last action until {}: results do not count yet",
                    until.to_rfc3339()
                ),
            },
            Decision::OpenCircuit { reason } => NextStep {
                tier: Some(policy.circuit_tier()),
                action: None,
                at: Some(probe_at),
                waiting_for: None,
                if_failing,
                summary: format!("the circuit opens at the next probe: {reason}"),
            },
            Decision::CircuitOpen => NextStep {
                tier: None,
                action: None,
                at: None,
                waiting_for: None,
                if_failing,
                summary: "nothing: the circuit is open".into(),
            },
            Decision::Unknown => NextStep {
                tier: None,
                action: None,
                at: None,
                waiting_for: None,
                if_failing,
                summary: "nothing: the last probe could not tell".into(),
            },
            Decision::Healthy { .. } => NextStep {
                tier: None,
                action: None,
                at: None,
                waiting_for: None,
                if_failing,
                summary: "nothing: healthy".into(),
            },
        }
    };

    let next_delay = policy.backoff.delay(state.restarts);
    Ok(Explanation {
        target: name.to_owned(),
        kind: target.spec.kind(),
        now,
        seen: slot
            .last_obs
            .as_ref()
            .map(|o| o.findings.iter().map(Finding::describe).collect())
            .unwrap_or_default(),
        observation: slot.last_obs.clone(),
        ladder: policy
            .ladder
            .iter()
            .enumerate()
            .map(|(i, a)| Rung {
                tier: u8::try_from(i + 1).unwrap_or(u8::MAX),
                action: *a,
                description: a.describe().into(),
            })
            .collect(),
        last_action: state.last_action.clone(),
        top_tier_attempts: state.top_tier_attempts,
        heals_in_period: ladder::heals_in_period(state, policy, now),
        max_heals: policy.max_heals,
        next,
        circuit,
        backoff: BackoffInfo {
            restarts: state.restarts,
            next_delay_secs: next_delay.as_secs(),
            next_allowed_at: state
                .last_restart_at
                .map(|t| t + chrono::Duration::from_std(next_delay).unwrap_or_default()),
            resets_after_secs: policy.backoff.reset_after.as_secs(),
        },
        next_probe_at: slot.next_probe_at,
    })
}
