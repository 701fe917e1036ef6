//! # lookout-scheduler — scheduled tasks and host jobs that never run silently
//!
//! WIP
mod error;
pub mod schedule;

pub use error::SchedulerError;
pub use schedule::{Schedule, ScheduleKind, Upcoming};
