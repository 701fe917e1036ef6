//! lookout — the Lookout command line.
//!
//! Talks to lookoutd over HTTP (`--url`, `LOOKOUT_URL`, default `http://127.0.0.1:8484`) and sends
//! the bearer token from `LOOKOUT_TOKEN` when it is set. Every command that prints data has `--json`.
//! Exit codes: 0 success; 1 the daemon answered with a failure; 2 usage error; 3 the daemon could not
//! be reached.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

mod ops;
mod tasks;

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Every subsystem's health (exit 0 pass, 1 warn, 2 fail).
    Status(Output),
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
    /// Find message batches left in flight by an interrupted run.
    StaleScan(Output),
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
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
        Command::Health(out) => health(client, out).await,
        Command::Status(out) => status(client, out).await,
        Command::Doctor(out) => doctor(client, out).await,
        Command::Boot(cmd) => boot(client, cmd).await,
        Command::StaleScan(out) => stale_scan(client, out).await,
        Command::Events(cmd) => events(client, cmd).await,
        Command::Config(ConfigCommand::Check { file }) => config_check(&file),
        Command::Tasks(cmd) => tasks::run(client, cmd).await,
        Command::DryRun(out) => ops::dry_run(client, out).await,
        Command::Replay { from, to, out } => ops::replay(client, &from, &to, out).await,
        Command::Watchdog(cmd) => ops::watchdog(client, cmd).await,
        Command::Alerts(cmd) => ops::alerts(client, cmd).await,
        Command::Quiet(cmd) => ops::quiet(client, cmd).await,
    }
}

/// Every check of the daemon's configuration with a suggested fix; exit 1 when any fails. A daemon
/// that cannot be reached is itself the first failed check.
async fn doctor(client: &Client, out: Output) -> Result<u8, Failure> {
    let (code, body) = match client.get_json("/api/doctor").await {
        Ok(x) => x,
        Err(f) if f.code == 3 => {
            if out.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "failed": 1, "checks": [{"name": "daemon", "status": "fail", "detail": f.message, "fix": "start lookoutd (README: cargo run --release -p lookoutd), or point --url / LOOKOUT_URL at it"}]})
                );
            } else {
                println!(
                    "✖ daemon — {}\n    fix: start lookoutd (README: cargo run --release -p lookoutd), or point --url / LOOKOUT_URL at it",
                    f.message
                );
            }
            return Ok(1);
        }
        Err(f) => return Err(f),
    };
    if !code.is_success() {
        return Err(refused("/api/doctor", code, &body, 1));
    }
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        for c in body
            .get("checks")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
        {
            let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("");
            let mark = match s("status") {
                "ok" => "✔",
                "warn" => "!",
                _ => "✖",
            };
            println!("{mark} {} — {}", s("name"), s("detail"));
            if !s("fix").is_empty() {
                println!("    fix: {}", s("fix"));
            }
        }
    }
    Ok(
        if body.get("ok").and_then(|v| v.as_bool()).unwrap_or(false) {
            0
        } else {
            1
        },
    )
}

/// The report as a person reads it; exit 0 pass, 1 warn, 2 fail.
async fn status(client: &Client, out: Output) -> Result<u8, Failure> {
    use std::io::IsTerminal;
    let (code, body) = client.get_json("/status").await?;
    if !code.is_success() {
        return Err(refused("/status", code, &body, 3));
    }
    let verdict = body
        .get("status")
        .and_then(|v| v.as_str())
        .unwrap_or("fail");
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        let colour = std::io::stdout().is_terminal();
        let paint = |v: &str, text: &str| -> String {
            if !colour {
                return text.to_owned();
            }
            let c = match v {
                "pass" => "32",
                "warn" => "33",
                _ => "31",
            };
            format!("\x1b[1;{c}m{text}\x1b[0m")
        };
        println!("{}", paint(verdict, &verdict.to_uppercase()));
        for r in body
            .get("reasons")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            println!("  - {}", r.as_str().unwrap_or_default());
        }
        println!();
        let per = body
            .get("section_status")
            .and_then(|s| s.as_object())
            .cloned()
            .unwrap_or_default();
        for (name, data) in body
            .get("sections")
            .and_then(|s| s.as_object())
            .into_iter()
            .flatten()
        {
            let v = per.get(name).and_then(|v| v.as_str()).unwrap_or("pass");
            let summary = match data.get("error") {
                Some(e) => format!("error: {}", e.as_str().unwrap_or_default()),
                None => summarize(data),
            };
            println!("{:<15} {:<6} {summary}", name, paint(v, v));
        }
    }
    Ok(match verdict {
        "pass" => 0,
        "warn" => 1,
        _ => 2,
    })
}

/// One line of a section: its scalar fields, `key=value`.
fn summarize(data: &serde_json::Value) -> String {
    let Some(obj) = data.as_object() else {
        return data.to_string();
    };
    let mut parts = Vec::new();
    for (k, v) in obj {
        match v {
            serde_json::Value::Object(inner) => {
                let inner: Vec<String> = inner
                    .iter()
                    .filter(|(_, x)| !x.is_object() && !x.is_array() && !x.is_null())
                    .map(|(ik, x)| {
                        format!(
                            "{ik}={}",
                            x.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| x.to_string())
                        )
                    })
                    .collect();
                parts.push(format!("{k}({})", inner.join(" ")));
            }
            serde_json::Value::Null | serde_json::Value::Array(_) => {}
            other => parts.push(format!(
                "{k}={}",
                other
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| other.to_string())
            )),
        }
    }
    parts.join("  ")
}

async fn health(client: &Client, out: Output) -> Result<u8, Failure> {
    let (status, body) = client.get_json("/health").await?;
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        let s = |k: &str| {
            body.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("?")
                .to_string()
        };
        let uptime = body
            .get("uptime_seconds")
            .and_then(|v| v.as_u64())
            .map(human_duration)
            .unwrap_or_else(|| "?".into());
        println!(
            "lookoutd {} at {}: {} (up {uptime}, since {})",
            s("version"),
            client.base,
            s("status"),
            s("started_at")
        );
    }
    Ok(if status.is_success() { 0 } else { 1 })
}

async fn boot(client: &Client, cmd: BootCommand) -> Result<u8, Failure> {
    use serde_json::json;
    let (path, body, out) = match cmd {
        BootCommand::Begin {
            service,
            version,
            pid,
            out,
        } => (
            "/api/boot/begin",
            json!({"service": service, "version": version, "pid": pid}),
            out,
        ),
        BootCommand::Ready { service, out } => {
            ("/api/boot/ready", json!({"service": service}), out)
        }
        BootCommand::Fail {
            service,
            cause,
            out,
        } => (
            "/api/boot/fail",
            json!({"service": service, "cause": cause}),
            out,
        ),
    };
    let resp = client.post_json(path, &body).await?;
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&resp).unwrap_or_default()
        );
        return Ok(0);
    }
    // `ready` prints the line a host appends to its boot message, and nothing when all was well.
    if let Some(m) = resp.get("message").and_then(|m| m.as_str()) {
        println!("{m}");
    }
    if path != "/api/boot/ready"
        && let Some(prev) = resp.get("previous_failed").filter(|p| !p.is_null())
    {
        let cause = prev
            .get("cause")
            .and_then(|c| c.as_str())
            .unwrap_or("unknown");
        println!(
            "previous start failed ({} failed start(s) since the last ready): {cause}",
            resp.get("failed_starts")
                .and_then(|n| n.as_u64())
                .unwrap_or(0)
        );
    }
    if let Some(cl) = resp.get("crash_loop").filter(|c| !c.is_null()) {
        println!(
            "🔁 crash loop: {} failed start(s) with no ready. Last failure: {}",
            cl.get("failed_starts")
                .and_then(|n| n.as_u64())
                .unwrap_or(0),
            cl.get("last_cause")
                .and_then(|c| c.as_str())
                .unwrap_or("unknown")
        );
    }
    Ok(0)
}

/// The same validation lookoutd runs at start and on SIGHUP; no daemon needed.
fn config_check(file: &std::path::Path) -> Result<u8, Failure> {
    let config = lookout_daemon::load_config(file).map_err(|e| Failure {
        code: 1,
        message: e.to_string(),
    })?;
    lookout_daemon::check_config(&config).map_err(|e| Failure {
        code: 1,
        message: format!("{}: {e}", file.display()),
    })?;
    println!(
        "{}: ok — {} sink(s), {} repo(s), {} watch target(s), {} job(s), {} boot service(s)",
        file.display(),
        config.notify.sinks.len().max(1),
        config.repos.len(),
        config.watch.len(),
        config.jobs.len(),
        config.boot.services.len()
    );
    Ok(0)
}

async fn events(client: &Client, cmd: EventsCommand) -> Result<u8, Failure> {
    match cmd {
        EventsCommand::Send { data, file, out } => {
            let text = match (data, file) {
                (Some(d), _) => d,
                (None, Some(p)) if p.as_os_str() != "-" => {
                    std::fs::read_to_string(&p).map_err(|e| Failure {
                        code: 2,
                        message: format!("cannot read {}: {e}", p.display()),
                    })?
                }
                _ => {
                    let mut buf = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf).map_err(
                        |e| Failure {
                            code: 2,
                            message: format!("cannot read stdin: {e}"),
                        },
                    )?;
                    buf
                }
            };
            let body: serde_json::Value = serde_json::from_str(&text).map_err(|e| Failure {
                code: 2,
                message: format!(
                    "the events are not JSON (line {}, column {}): {e}",
                    e.line(),
                    e.column()
                ),
            })?;
            let resp = client.post_json("/api/events", &body).await?;
            if out.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&resp).unwrap_or_default()
                );
            } else {
                let seqs: Vec<String> = resp
                    .get("seqs")
                    .and_then(|s| s.as_array())
                    .map(|a| a.iter().map(|v| v.to_string()).collect())
                    .unwrap_or_default();
                println!("stored {} event(s): seq {}", seqs.len(), seqs.join(", "));
            }
            Ok(0)
        }
        EventsCommand::Tail { kind, follow, out } => {
            let mut after = 0i64;
            loop {
                let mut path = format!("/api/events?after={after}&limit=1000");
                if let Some(k) = &kind {
                    path.push_str(&format!("&kind={k}"));
                }
                let (status, body) = client.get_json(&path).await?;
                if !status.is_success() {
                    return Err(refused(&path, status, &body, 1));
                }
                let events = body
                    .get("events")
                    .and_then(|e| e.as_array())
                    .cloned()
                    .unwrap_or_default();
                for e in &events {
                    if out.json {
                        println!("{e}");
                    } else {
                        println!(
                            "{:>8}  {}  {:<22} {:<20} {}",
                            e.get("seq").and_then(|v| v.as_i64()).unwrap_or(0),
                            e.get("at").and_then(|v| v.as_str()).unwrap_or("?"),
                            e.get("kind").and_then(|v| v.as_str()).unwrap_or("?"),
                            e.get("subject").and_then(|v| v.as_str()).unwrap_or("-"),
                            e.get("payload").map(|p| p.to_string()).unwrap_or_default()
                        );
                    }
                }
                after = body
                    .get("next_after")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(after);
                if events.is_empty() {
                    if !follow {
                        return Ok(0);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

async fn stale_scan(client: &Client, out: Output) -> Result<u8, Failure> {
    let resp = client
        .post_json("/api/stale-scan", &serde_json::json!({}))
        .await?;
    let findings = resp
        .get("findings")
        .and_then(|f| f.as_array())
        .cloned()
        .unwrap_or_default();
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&resp).unwrap_or_default()
        );
    } else if findings.is_empty() {
        println!(
            "no interrupted runs: nothing in flight longer than {}",
            human_duration(
                resp.get("threshold_secs")
                    .and_then(|t| t.as_u64())
                    .unwrap_or(0)
            )
        );
    } else {
        println!(
            "{:<28} {:<12} {:>6} {:>10}",
            "CHAT", "CHANNEL", "COUNT", "OLDEST"
        );
        for f in &findings {
            println!(
                "{:<28} {:<12} {:>6} {:>10}",
                f.get("chat_jid").and_then(|v| v.as_str()).unwrap_or("?"),
                f.get("channel").and_then(|v| v.as_str()).unwrap_or("?"),
                f.get("count").and_then(|v| v.as_i64()).unwrap_or(0),
                human_duration(
                    f.get("oldest_age_secs")
                        .and_then(|v| v.as_u64())
                        .unwrap_or(0)
                )
            );
        }
    }
    // Like `status`: 1 when something needs a look, so cron monitors and scripts can use it.
    Ok(if findings.is_empty() { 0 } else { 1 })
}

fn human_duration(secs: u64) -> String {
    lookout_common::human_duration(std::time::Duration::from_secs(secs))
}

/// A small client for lookoutd's JSON API.
struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    fn new(url: &str) -> Result<Self, Failure> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Failure {
                code: 2,
                message: format!("--url `{url}` must start with http:// or https://"),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Failure {
                code: 1,
                message: format!("cannot build an HTTP client: {e}"),
            })?;
        let token = std::env::var("LOOKOUT_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        Ok(Client { base, http, token })
    }

    async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, Failure> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.map_err(|e| Failure {
            code: 1,
            message: format!(
                "lookoutd at {} answered {status} with a body that is not JSON: {e}",
                self.base
            ),
        })?;
        if !status.is_success() {
            return Err(refused(path, status, &body, 1));
        }
        Ok(body)
    }

    fn unreachable(&self, e: &reqwest::Error) -> Failure {
        Failure {
            code: 3,
            message: format!(
                "cannot reach lookoutd at {} ({}) — is it running? (set --url or LOOKOUT_URL)",
                self.base,
                root_cause(e)
            ),
        }
    }

    /// GET that must succeed: a non-2xx answer is lookoutd's refusal.
    async fn get_ok(&self, path: &str) -> Result<serde_json::Value, Failure> {
        let (status, body) = self.get_json(path).await?;
        if !status.is_success() {
            return Err(refused(path, status, &body, 1));
        }
        Ok(body)
    }

    async fn get_json(
        &self,
        path: &str,
    ) -> Result<(reqwest::StatusCode, serde_json::Value), Failure> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let body = resp.json().await.map_err(|e| Failure {
            code: 1,
            message: format!(
                "lookoutd at {} answered {status} with a body that is not JSON: {e}",
                self.base
            ),
        })?;
        Ok((status, body))
    }
}

/// lookoutd answered with an error status: its `error` text, with the path and status.
fn refused(path: &str, status: reqwest::StatusCode, body: &serde_json::Value, code: u8) -> Failure {
    let msg = body
        .get("error")
        .and_then(|e| e.as_str())
        .unwrap_or("no detail");
    Failure {
        code,
        message: format!("lookoutd refused {path} ({status}): {msg}"),
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
