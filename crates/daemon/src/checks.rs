//! From lookoutd's configuration to what the library crates take: the scheduler's specs of
//! `[[jobs]]`, and the checks the file's own parser cannot make because another crate owns the
//! syntax (schedules: the scheduler; the store URL: the store). `lookoutd` (at start and on SIGHUP)
//! and `lookout config check` run the same [`check_config`], so they never disagree.

use std::collections::BTreeMap;

use lookout_scheduler::{
    Concurrency, Missed, RunnerSpec, Schedule, SchedulerError, TaskPolicy, TaskSpec,
    format_interval,
};

/// Every check of [`check_schedules`], first failure first.
pub fn check_config(config: &lookout_config::Config) -> Result<(), String> {
    check_schedules(config)
}

/// The store URL, read by the store's own parser, so the file accepts exactly what `--store-url`
/// does. The error names the key and never repeats the URL (it could hold a password).
pub fn check_store_url(config: &lookout_config::Config) -> Result<(), String> {
    match lookout_store::StoreUrl::parse(&config.store.url) {
        Ok(_) => Ok(()),
        Err(lookout_store::StoreError::InvalidUrl { reason, .. }) => {
            Err(format!("`store.url`: {reason}"))
        }
        Err(other) => Err(format!("`store.url`: {other}")),
    }
}

/// The scheduler's spec of a `[[jobs]]` entry of lookoutd's configuration.
pub fn task_spec(job: &lookout_config::Job) -> Result<TaskSpec, SchedulerError> {
    use lookout_config::{ConcurrencyPolicy, JobAction, JobSchedule, MissedPolicy};
    let schedule = match job.schedule() {
        Some(JobSchedule::Cron(c)) => c.to_string(),
        Some(JobSchedule::Every(d)) => format!("every {}", format_interval(d)),
        Some(JobSchedule::At(t)) => format!("at {}", t.to_rfc3339()),
        None => {
            return Err(SchedulerError::InvalidTask(format!(
                "job `{}`: exactly one of cron, every, at",
                job.name
            )));
        }
    };
    let runner = match job.action() {
        Some(JobAction::Command(c)) => RunnerSpec::shell(c),
        Some(JobAction::Image(i)) => RunnerSpec::Container {
            image: i.to_string(),
            command: job.args.clone().unwrap_or_default(),
            env: BTreeMap::new(),
        },
        None => {
            return Err(SchedulerError::InvalidTask(format!(
                "job `{}`: exactly one of command, image",
                job.name
            )));
        }
    };
    let spec = TaskSpec {
        name: job.name.clone(),
        group: job.group.clone(),
        schedule,
        tz: job.tz.clone(),
        runner,
        policy: TaskPolicy {
            concurrency: match job.concurrency {
                ConcurrencyPolicy::Forbid => Concurrency::Forbid,
                ConcurrencyPolicy::Allow => Concurrency::Allow,
                ConcurrencyPolicy::Replace => Concurrency::Replace,
            },
            timeout: job.timeout,
            missed: match job.missed {
                MissedPolicy::Skip => Missed::Skip,
                MissedPolicy::RunOnce => Missed::RunOnce,
                MissedPolicy::CatchUp => Missed::CatchUp,
            },
            ..TaskPolicy::default()
        },
    };
    spec.validate()?;
    Ok(spec)
}

/// Checks every schedule of lookoutd's configuration — `[[jobs]]` and `[[quiet]]` — the way the
/// scheduler will read them, so a bad expression stops the start (and `lookout config check`)
/// with its key path instead of failing at its first run. The error reads
/// "`jobs[1].cron`: invalid cron expression …".
pub fn check_schedules(config: &lookout_config::Config) -> Result<(), String> {
    for (i, job) in config.jobs.iter().enumerate() {
        let what = if job.cron.is_some() { "cron" } else { "tz" };
        task_spec(job)
            .and_then(|spec| spec.validate())
            .map_err(|e| format!("`jobs[{i}].{what}` (job `{}`): {e}", job.name))?;
    }
    for (i, q) in config.quiet.iter().enumerate() {
        Schedule::parse(&q.cron, &q.tz)
            .map_err(|e| format!("`quiet[{i}].cron` (window `{}`): {e}", q.name))?;
    }
    Ok(())
}
