//! # lookout-scheduler — scheduled tasks and host jobs that never run silently
//!
//! What it is for:
//! - **Schedules** ([`Schedule`]): cron (5 fields, or 6 with seconds, and `@daily`-style macros),
//!   intervals (`every 15m`) and single instants, each read in an IANA time zone, with the day rule
//!   and the DST rule of Vixie cron (see `docs/scheduler.md`). Invalid expressions are refused with
//!   the field and character offset of the error.
//! - **Claiming** due runs through `lookout-store`, once each even with several schedulers on one
//!   PostgreSQL.
//! - **Running** them with a [`TaskRunner`]: a shell command ([`ShellRunner`]), a one-shot container
//!   ([`DockerRunner`]) or a host's function ([`CallbackRunner`]), under the task's [`TaskPolicy`]:
//!   concurrency (`forbid`/`allow`/`replace`), timeout, missed runs after downtime (`skip`,
//!   `run_once`, `catch_up` within a starting deadline), jitter, pause/resume.
//! - **Saying so** through a [`Reporter`]: "⏱ <task> starting", a heartbeat every interval while it
//!   runs ("⏱ <task> still running (2m elapsed, container active)"), "✅/❌ … finished in 25m 12s",
//!   runs interrupted by a crash, overdue tasks and their resolution; `run_started` /
//!   `run_heartbeat` / `run_finished` events; Prometheus metrics ([`SchedulerMetrics`]).
//!
//! What it is **not** for: delivering notifications (the [`Reporter`] hands them to lookoutd's
//! outbox), parsing lookoutd's configuration (it takes a plain [`TaskSpec`]), or reading the wall
//! clock: `now` comes from an injected [`Clock`], and all waiting is on tokio's timers, so tests run
//! with a paused clock.
//!
//! ```
//! use lookout_scheduler::Schedule;
//! use chrono::{DateTime, Utc};
//!
//! // 02:30 every day in New York; on the spring-forward day 02:30 does not exist: it runs at 03:00.
//! let s = Schedule::parse("30 2 * * *", "America/New_York")?;
//! let from: DateTime<Utc> = "2026-03-07T12:00:00Z".parse().unwrap();
//! let next: Vec<String> = s.upcoming(from, 2).map(|t| t.with_timezone(&s.tz()).to_rfc3339()).collect();
//! assert_eq!(next, ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]);
//!
//! // Errors say where.
//! let e = Schedule::parse("0 25 * * *", "UTC").unwrap_err();
//! assert!(e.to_string().contains("field 2, at character 2"), "{e}");
//! # Ok::<(), lookout_scheduler::SchedulerError>(())
//! ```

mod clock;
mod error;
mod metrics;
mod report;
pub mod runner;
pub mod schedule;
mod scheduler;
mod spec;
mod task_store;

pub use clock::{Clock, SystemClock, TokioClock};
pub use error::SchedulerError;
pub use lookout_store::{OwnerKind, RunOutcome, TaskRecord, TaskRun};
pub use metrics::SchedulerMetrics;
pub use report::{
    LogReporter, MemoryReporter, Notification, Reported, Reporter, RunEvent, Severity,
    human_duration,
};
pub use runner::{
    CallbackRunner, DockerRunner, LivenessProbe, Progress, RunRequest, RunResult, Runners,
    ShellRunner, TaskRunner,
};
pub use schedule::{Schedule, ScheduleKind, Upcoming, format_interval};
pub use scheduler::{Scheduler, SchedulerConfig, TickReport};
pub use spec::{Concurrency, Missed, RunnerSpec, TaskPolicy, TaskSpec};
pub use task_store::{Decide, MemoryTaskStore, TaskStore};
