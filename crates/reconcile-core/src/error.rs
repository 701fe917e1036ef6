//! The crate's one error type.

/// What went wrong in the runtime (the pure model never fails).
///
/// Non-exhaustive: the variant `Store` exists only with the feature `store`, so a `match` must not
/// depend on which variants a build has.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// The store failed (reading the log, or the driver's state). Only with the feature `store`.
    #[cfg(feature = "store")]
    #[error("store: {0}")]
    Store(#[from] lookout_store::StoreError),
    /// The persisted driver state cannot be read.
    #[error("the reconciler state stored under `{key}` is not readable: {reason}")]
    CorruptState {
        /// The `router_state` key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A side effect failed; the next tick retries it.
    #[error("{action} failed: {reason}")]
    Effect {
        /// The action's idempotency key.
        action: String,
        /// What the host said.
        reason: String,
    },
    /// A replay range is not acceptable; `field` names which part (`from`, `to` or `range`).
    #[error("{field}: {reason}")]
    InvalidRange {
        /// `from`, `to` (unparseable) or `range` (reversed, too long).
        field: &'static str,
        /// Which problem.
        problem: RangeProblem,
        /// One line for a person.
        reason: String,
    },
    /// A channel source failed.
    #[error("channel {channel}: {reason}")]
    Channel {
        /// The channel.
        channel: String,
        /// Why.
        reason: String,
    },
}

/// Why a replay range was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeProblem {
    /// A bound is not an ISO 8601 / RFC 3339 time.
    Unparseable,
    /// `from` is after `to`.
    Reversed,
    /// The range is longer than the configured maximum.
    TooLong,
}

impl ReconcileError {
    /// An effect failure, as a host's `Effects` reports it.
    pub fn effect(action: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        ReconcileError::Effect {
            action: action.into(),
            reason: reason.to_string(),
        }
    }
}
