//! The injected clock: `now` for every decision.

use chrono::{DateTime, Utc};

/// Where the supervisor takes `now` from.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// Wall time read once at creation, advanced by tokio's clock: under
/// `#[tokio::test(start_paused = true)]`, `tokio::time::advance` moves it, so tests prove timeouts
/// without sleeping.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    wall: DateTime<Utc>,
    mono: tokio::time::Instant,
}

impl TokioClock {
    /// A clock starting at the current wall time.
    pub fn new() -> Self {
        Self::starting_at(Utc::now())
    }

    /// A clock starting at `wall` (tests pin it).
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        TokioClock {
            wall,
            mono: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.mono);
        self.wall + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }
}
