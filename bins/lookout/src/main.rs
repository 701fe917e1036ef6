//! lookout — the Lookout command line.
//!
//! Talks to lookoutd over HTTP (`--url`, `LOOKOUT_URL`, default `http://127.0.0.1:8484`) and sends
//! the bearer token from `LOOKOUT_TOKEN` when it is set. Every command that prints data has `--json`.
//! Exit codes: 0 success; 1 the daemon answered with a failure; 2 usage error; 3 the daemon could not
//! be reached.

//!
//! Here: the command line and its dispatch. Each command group has its module: `status` (status,
//! health, doctor, stale-scan), `events`, `boot`, `config`, `logs`, `tasks`, `ops` (dry-run,
//! replay, watchdog, alerts, quiet); `client` is the HTTP client they share.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod boot;
mod client;
mod config;
mod events;
mod logs;
mod ops;
mod reach;
mod status;
mod status_text;
mod tasks;

use client::Client;

#[derive(Debug, Parser)]
#[command(
    name = "lookout",
    version,
    about = "Lookout: see and heal an agent host's silent failures"
)]
struct Cli {
    /// Where lookoutd answers.
    #[arg(
        long,
        global = true,
        env = "LOOKOUT_URL",
        default_value = "http://127.0.0.1:8484"
    )]
    url: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Output {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    out: Output,
    /// Each section's details under its line.
    #[arg(short, long)]
    verbose: bool,
    /// Colour: `auto` (only on a terminal), `always` or `never`; `NO_COLOR` always wins.
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"])]
    color: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every subsystem's health (exit 0 pass, 1 warn, 2 fail).
    Status(StatusArgs),
    /// Is lookoutd up? Its version and uptime.
    Health(Output),
    /// Run every check the daemon's config implies, each with a suggested fix.
    Doctor(Output),
    /// The actions the reconciler would take now; nothing is applied (exit 1 when it would act).
    DryRun(Output),
    /// Replay the events of a time range on a fresh state; nothing is applied.
    Replay {
        /// Start of the range (ISO 8601).
        #[arg(long)]
        from: String,
        /// End of the range (ISO 8601).
        #[arg(long)]
        to: String,
        #[command(flatten)]
        out: Output,
    },
    /// Scheduled tasks and host jobs.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// Send events to lookoutd, or follow its event log.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Send one event from a shell script or a systemd unit: `lookout emit run_finished
    /// run_id=r1 outcome=failed error="exit 3"` (`key:=JSON` for a number, bool, list or object).
    Emit {
        /// The event's kind (`run_finished`, `heartbeat`, `deploy`, …).
        kind: String,
        /// Its fields: `key=text` or `key:=JSON`.
        #[arg(value_name = "KEY=VALUE")]
        fields: Vec<String>,
        /// Also read fields from a JSON object on stdin (the arguments win).
        #[arg(long = "stdin-json")]
        stdin_json: bool,
        #[command(flatten)]
        out: Output,
    },
    /// Boot hooks for a host's service unit (ExecStartPre / after init).
    #[command(subcommand)]
    Boot(BootCommand),
    /// Supervised targets and their healing ladders.
    #[command(subcommand)]
    Watchdog(WatchdogCommand),
    /// Alerts: firing, held, folded, flapping, failed.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Quiet windows: hold alerts for a while.
    #[command(subcommand)]
    Quiet(QuietCommand),
    /// Sinks: send a test message to one and print its answer.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Incidents: each alert's firing-to-resolved span, with what was folded under it and done.
    Incidents {
        /// How far back: a duration (`7d`, `12h`) or an RFC 3339 instant; 30 days by default.
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Find message batches left in flight by an interrupted run.
    StaleScan(Output),
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Log rules (`[[logs]]`).
    #[command(subcommand)]
    Logs(LogsCommand),
}

#[derive(Debug, Subcommand)]
enum TasksCommand {
    /// List tasks and host jobs.
    List(Output),
    /// Add a task.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        group: String,
        #[arg(long, group = "schedule", required = true)]
        cron: Option<String>,
        #[arg(long, group = "schedule")]
        every: Option<String>,
        #[arg(long, group = "schedule")]
        at: Option<String>,
        /// IANA time zone of the schedule.
        #[arg(long, default_value = "UTC")]
        tz: String,
        #[arg(long, group = "runner", required = true)]
        command: Option<String>,
        #[arg(long, group = "runner")]
        image: Option<String>,
    },
    /// Pause a task.
    Pause { name: String },
    /// Resume a paused task.
    Resume { name: String },
    /// Run a task now.
    Run { name: String },
    /// A task's past runs.
    History {
        name: String,
        #[command(flatten)]
        out: Output,
    },
    /// Print the next run times of a schedule expression (no daemon needed).
    Preview {
        expr: String,
        #[arg(long, default_value = "UTC")]
        tz: String,
        #[arg(long)]
        from: Option<String>,
        #[arg(long, default_value_t = 5)]
        count: u32,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Send one event or an array (from --data, --file, or stdin); prints the assigned seqs.
    Send {
        /// The JSON, inline.
        #[arg(long, conflicts_with = "file")]
        data: Option<String>,
        /// A file holding the JSON (`-` for stdin, the default).
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        #[command(flatten)]
        out: Output,
    },
    /// Print the event log, optionally following it.
    Tail {
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Debug, Subcommand)]
enum BootCommand {
    /// A start begins (leaves a breadcrumb); prints the previous start's failure, if it failed.
    Begin {
        #[arg(long)]
        service: String,
        /// The version starting.
        #[arg(long)]
        version: Option<String>,
        /// The pid of the starting process.
        #[arg(long)]
        pid: Option<u32>,
        #[command(flatten)]
        out: Output,
    },
    /// The service is up: prints "⚠️ Service recovered after N failed start(s) …" when there were any.
    Ready {
        #[arg(long)]
        service: String,
        #[command(flatten)]
        out: Output,
    },
    /// The start failed, with its cause (e.g. from a unit's ExecStopPost).
    Fail {
        #[arg(long)]
        service: String,
        #[arg(long)]
        cause: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Debug, Subcommand)]
enum WatchdogCommand {
    /// Supervised targets and their state.
    List(Output),
    /// Close a target's circuit and restart its ladder.
    Reset { target: String },
    /// What was observed, which tier acts next and when, and why a circuit is open.
    Explain {
        target: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Debug, Subcommand)]
enum AlertsCommand {
    /// Alerts and their state.
    List {
        /// Only notifications that could not be delivered.
        #[arg(long)]
        failed: bool,
        #[command(flatten)]
        out: Output,
    },
    /// Send a dead-lettered notification again.
    Retry { id: String },
    /// Acknowledge a firing alert (its key, or a unique part of it): its reminders stop.
    Ack { alert: String },
}

#[derive(Debug, Subcommand)]
enum NotifyCommand {
    /// Send a test message to the sink named SINK and print its answer (exit 1 when not taken).
    Test {
        sink: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Debug, Subcommand)]
enum QuietCommand {
    /// Open a quiet window.
    Add {
        /// How long, e.g. 30m.
        #[arg(long = "for")]
        duration: String,
        /// Only alerts whose key matches.
        #[arg(long = "match")]
        matcher: Option<String>,
    },
    /// Open quiet windows.
    List(Output),
    /// End a quiet window.
    End { id: String },
}

#[derive(Debug, Subcommand)]
enum LogsCommand {
    /// Run rule RULE over every line of FILE: the lines it matches and what lookoutd would do (no
    /// daemon needed; exit 0 when its pattern matches a line, 1 when none does).
    Test {
        /// The rule's `name`.
        rule: String,
        /// A log file (or a saved `docker logs` output).
        file: std::path::PathBuf,
        /// lookoutd's configuration file, holding the rule.
        #[arg(long, env = "LOOKOUT_CONFIG", default_value = "lookout.toml")]
        config: std::path::PathBuf,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file.
    Check { file: std::path::PathBuf },
}

/// A failure, with the exit code it maps to.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lookout: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("lookout: error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    // `tasks preview` needs no daemon, so not even a valid --url.
    if let Command::Tasks(TasksCommand::Preview {
        expr,
        tz,
        from,
        count,
        out,
    }) = &cli.command
    {
        return tasks::preview(expr, tz, from.as_deref(), *count, out);
    }
    let client = &Client::new(&cli.url)?;
    match cli.command {
        Command::Health(out) => status::health(client, out).await,
        Command::Status(args) => status::status(client, args).await,
        Command::Doctor(out) => status::doctor(client, out).await,
        Command::Boot(cmd) => boot::boot(client, cmd).await,
        Command::StaleScan(out) => status::stale_scan(client, out).await,
        Command::Events(cmd) => events::events(client, cmd).await,
        Command::Emit {
            kind,
            fields,
            stdin_json,
            out,
        } => events::emit(client, &kind, &fields, stdin_json, out).await,
        Command::Config(ConfigCommand::Check { file }) => config::config_check(&file),
        Command::Logs(LogsCommand::Test {
            rule,
            file,
            config,
            out,
        }) => logs::test(&rule, &file, &config, out),
        Command::Tasks(cmd) => tasks::run(client, cmd).await,
        Command::DryRun(out) => ops::dry_run(client, out).await,
        Command::Replay { from, to, out } => ops::replay(client, &from, &to, out).await,
        Command::Watchdog(cmd) => ops::watchdog(client, cmd).await,
        Command::Alerts(cmd) => ops::alerts(client, cmd).await,
        Command::Quiet(cmd) => ops::quiet(client, cmd).await,
        Command::Notify(NotifyCommand::Test { sink, out }) => {
            reach::notify_test(client, &sink, out).await
        }
        Command::Incidents { since, out } => reach::incidents(client, since.as_deref(), out).await,
    }
}
