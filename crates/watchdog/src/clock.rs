//! The injected clock: `now` for every decision ([`lookout_common`]'s clocks). Under
//! `#[tokio::test(start_paused = true)]`, `tokio::time::advance` moves a [`TokioClock`], so tests
//! prove timeouts without sleeping.

pub use lookout_common::{Clock, TokioClock};
