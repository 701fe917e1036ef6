//! Where `now` comes from: every scheduling, watchdog and reconciler decision takes it from a
//! [`Clock`], so tests decide what time it is.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};

/// The source of `now`.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

impl<T: Clock + ?Sized> Clock for Arc<T> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

impl<T: Clock + ?Sized> Clock for &T {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A wall time read once, then advanced by tokio's clock: under
/// `#[tokio::test(start_paused = true)]`, `tokio::time::advance` (or auto-advance while every task
/// sleeps) moves it, so tests prove timeouts without sleeping.
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

    /// A clock showing `wall` now (tests pin it).
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
        self.wall + TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::MAX)
    }
}

/// A clock that moves only when told: for unit tests of one policy.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(now))
    }

    /// Sets the time.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_moves_with_paused_time() {
        let start: DateTime<Utc> = "2026-03-01T12:00:00Z".parse().unwrap();
        let clock = TokioClock::starting_at(start);
        assert_eq!(clock.now(), start);
        tokio::time::advance(std::time::Duration::from_secs(61)).await;
        assert_eq!(clock.now(), start + TimeDelta::seconds(61));
        let shared: Arc<dyn Clock> = Arc::new(clock);
        assert_eq!(shared.now(), start + TimeDelta::seconds(61));
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start: DateTime<Utc> = "2026-03-01T12:00:00Z".parse().unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(std::time::Duration::from_millis(1500));
        assert_eq!(clock.now(), start + TimeDelta::milliseconds(1500));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }
}
