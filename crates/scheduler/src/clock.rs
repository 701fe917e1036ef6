//! Where the scheduler's `now` comes from: [`lookout_common`]'s clocks. Sleeping is always done
//! with tokio's timers, so a [`TokioClock`] under `#[tokio::test(start_paused = true)]` makes every
//! decision deterministic.

pub use lookout_common::{Clock, SystemClock, TokioClock};
