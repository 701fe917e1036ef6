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

/// Reads and checks lookoutd's configuration file: lookout-config's rules, then the values whose
/// syntax another crate owns ([`check_store_url`]), each error located at its line and column.
// ConfigError is lookout-config's one error type (large, and it ends the start anyway).
#[allow(clippy::result_large_err)]
pub fn load_config(
    path: &std::path::Path,
) -> Result<lookout_config::Config, lookout_config::ConfigError> {
    lookout_config::load_with(path, &check_values)
}

/// The checks of values whose truth is outside the file, each a [`lookout_config::ValueCheck`]:
/// the store URL ([`check_store_url`]) and every apprise sink's program ([`check_programs`]).
pub fn check_values(
    config: &lookout_config::Config,
) -> Result<(), (lookout_config::KeyPath, String)> {
    check_store_url(config)?;
    check_programs(config)
}

/// Every apprise sink's program is on this machine (its path, or found on `PATH`): a missing one
/// is an error at start and at `lookout config check`, not a dead letter at the first alert.
pub fn check_programs(
    config: &lookout_config::Config,
) -> Result<(), (lookout_config::KeyPath, String)> {
    let sinks = lookout_config::KeyPath::root().key("notify").key("sinks");
    for (i, s) in config.notify.sinks.iter().enumerate() {
        if s.kind != lookout_config::SinkKind::Apprise {
            continue;
        }
        let program = s.command.as_deref().unwrap_or("apprise");
        if find_program(program).is_none() {
            let at = if s.command.is_some() {
                sinks.index(i).key("command")
            } else {
                sinks.index(i)
            };
            let where_ = if program.contains('/') {
                ""
            } else {
                " on PATH"
            };
            return Err((
                at,
                format!(
                    "the Apprise program `{program}` is not found{where_} (install it: `apt-get install apprise` or `pip install apprise`)"
                ),
            ));
        }
    }
    Ok(())
}

/// Where `program` is: itself when it names a path, else the first executable match on `PATH`.
pub(crate) fn find_program(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// The store URL, read by the store's own parser, so the file accepts exactly what `--store-url`
/// does. The reason never repeats the URL (it could hold a password). A
/// [`lookout_config::ValueCheck`].
pub fn check_store_url(
    config: &lookout_config::Config,
) -> Result<(), (lookout_config::KeyPath, String)> {
    let reason = match lookout_store::StoreUrl::parse(&config.store.url) {
        Ok(_) => return Ok(()),
        Err(lookout_store::StoreError::InvalidUrl { reason, .. }) => reason,
        Err(other) => other.to_string(),
    };
    Err((
        lookout_config::KeyPath::root().key("store").key("url"),
        reason,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> lookout_config::Config {
        lookout_config::parse(text, "lookout.toml").expect("a valid file")
    }

    #[test]
    fn a_job_becomes_the_schedulers_spec() {
        let c = config(
            r#"
[[jobs]]
name = "backup"
group = "ops"
every = "90m"
command = "backup.sh --all"
timeout = "10m"
concurrency = "replace"
missed = "catch_up"

[[jobs]]
name = "report"
cron = "30 2 * * *"
tz = "Europe/London"
image = "reporter:1"
args = ["--daily"]
"#,
        );
        let backup = task_spec(&c.jobs[0]).unwrap();
        assert_eq!(backup.name, "backup");
        assert_eq!(backup.group.as_deref(), Some("ops"));
        assert_eq!(backup.schedule, "every 1h30m");
        assert_eq!(backup.runner, RunnerSpec::shell("backup.sh --all"));
        assert_eq!(backup.policy.concurrency, Concurrency::Replace);
        assert_eq!(backup.policy.missed, Missed::CatchUp);
        assert_eq!(
            backup.policy.timeout,
            Some(std::time::Duration::from_secs(600))
        );
        let report = task_spec(&c.jobs[1]).unwrap();
        assert_eq!(report.schedule, "30 2 * * *");
        assert_eq!(report.tz, "Europe/London");
        assert_eq!(
            report.runner,
            RunnerSpec::Container {
                image: "reporter:1".into(),
                command: vec!["--daily".into()],
                env: BTreeMap::new(),
            }
        );
        assert_eq!(report.policy.missed, Missed::RunOnce, "the default");
        assert!(check_config(&c).is_ok());
    }

    #[test]
    fn a_bad_schedule_names_its_key_and_its_job_or_window() {
        let c = config(
            "[[jobs]]\nname = \"a\"\ncron = \"* * * * *\"\ncommand = \"true\"\n\n\
             [[jobs]]\nname = \"b\"\ncron = \"0 25 * * *\"\ncommand = \"true\"\n",
        );
        let e = check_config(&c).unwrap_err();
        assert!(e.starts_with("`jobs[1].cron` (job `b`): "), "{e}");
        let c = config("[[quiet]]\nname = \"nightly\"\ncron = \"0 99 * * *\"\nduration = \"1h\"\n");
        let e = check_config(&c).unwrap_err();
        assert!(e.starts_with("`quiet[0].cron` (window `nightly`): "), "{e}");
    }

    #[test]
    fn a_bad_store_url_names_the_key_its_line_and_hides_the_password() {
        let error = |text: &str| {
            lookout_config::parse_with(text, "config.toml", &check_store_url)
                .unwrap_err()
                .to_string()
        };
        let e = error("[store]\nurl = \"mysql://root:hunter2@db/x\"\n");
        assert_eq!(
            e,
            "config.toml: `store.url` at line 2, column 7: unknown scheme `mysql`; expected \
             sqlite://PATH or postgres://USER@HOST/DB"
        );
        assert!(!e.contains("hunter2"));
        let e = error("[store]\nurl = \"postgres://u:hunter2@db:notaport/x\"\n");
        assert!(
            e.starts_with(
                "config.toml: `store.url` at line 2, column 7: not a valid PostgreSQL URL"
            ),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let c = lookout_config::parse_with(
            "[store]\nurl = \"postgres://lookout@db/lookout\"\n",
            "config.toml",
            &check_store_url,
        )
        .unwrap();
        assert_eq!(c.store.url, "postgres://lookout@db/lookout");
        assert!(check_store_url(&lookout_config::Config::default()).is_ok());
    }

    #[test]
    fn an_apprise_program_that_is_not_there_is_an_error_at_config_check() {
        let text = "[[notify.sinks]]\nkind = \"apprise\"\nurls_env = \"A\"\ncommand = \"/nonexistent/apprise\"\n";
        let e = lookout_config::parse_with(text, "config.toml", &check_values)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config.toml: `notify.sinks[0].command` at line 4, column 11: the Apprise program \
             `/nonexistent/apprise` is not found (install it: `apt-get install apprise` or `pip \
             install apprise`)"
        );
        let there =
            "[[notify.sinks]]\nkind = \"apprise\"\nurls_env = \"A\"\ncommand = \"/bin/sh\"\n";
        assert!(lookout_config::parse_with(there, "config.toml", &check_values).is_ok());
        let on_path = "[[notify.sinks]]\nkind = \"apprise\"\nurls_env = \"A\"\ncommand = \"sh\"\n";
        assert!(lookout_config::parse_with(on_path, "config.toml", &check_values).is_ok());
    }
}
