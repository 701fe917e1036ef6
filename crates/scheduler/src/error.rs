//! The crate's one error type.

/// Everything that can go wrong in the scheduler, each variant saying what a person should look at.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// A cron expression could not be parsed. `field` is 1-based among the fields as written
    /// (`None` when the whole expression is wrong, e.g. the number of fields); `offset` is the
    /// character offset in `expr` where the problem starts.
    #[error("invalid cron expression `{expr}`: {reason} ({})", position(*field, *offset))]
    InvalidCron {
        /// The expression as given.
        expr: String,
        /// The field (1-based, as written), when one field is at fault.
        field: Option<usize>,
        /// The character offset of the problem in `expr`.
        offset: usize,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// A time zone name is not in the IANA database.
    #[error("unknown time zone `{0}` (expected an IANA name such as Europe/London)")]
    UnknownTimeZone(String),
    /// An interval or instant schedule could not be parsed.
    #[error("invalid schedule: {0}")]
    InvalidSchedule(String),
    /// A task's definition is not usable (no such runner, an empty name, …).
    #[error("invalid task: {0}")]
    InvalidTask(String),
    /// No task of that name.
    #[error("no task named `{0}`")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] lookout_store::StoreError),
    /// A runner could not start or watch its work.
    #[error("runner: {0}")]
    Runner(String),
}

fn position(field: Option<usize>, offset: usize) -> String {
    match field {
        Some(f) => format!("field {f}, at character {offset}"),
        None => format!("at character {offset}"),
    }
}
