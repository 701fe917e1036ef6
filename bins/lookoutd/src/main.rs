//! lookoutd — the Lookout daemon.
//!
//! Flags and logging only: everything lookoutd does is in `lookout-daemon`, which this binary calls
//! with the options the command line gives.

use std::process::ExitCode;

use clap::Parser;

/// Command-line flags. Each overrides the configuration file; the file overrides the defaults.
#[derive(Debug, Parser)]
#[command(
    name = "lookoutd",
    version,
    about = "Lookout daemon: makes an agent host's silent failures loud"
)]
struct Args {
    /// The configuration file (TOML; see docs/configuration.md). Without one, every key has its default.
    #[arg(long, env = "LOOKOUT_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,

    /// Where lookoutd keeps its database and state files [default: $XDG_STATE_HOME/lookout, else ./.lookout]
    #[arg(long, env = "LOOKOUT_STATE_DIR", value_name = "DIR")]
    state_dir: Option<std::path::PathBuf>,

    /// Address and port of the HTTP API [default: server.bind, 127.0.0.1:8484]
    #[arg(long, env = "LOOKOUT_BIND", value_name = "ADDR:PORT")]
    bind: Option<String>,

    /// The store: sqlite://PATH (relative to the state directory) or postgres://USER@HOST/DB
    /// [default: store.url, sqlite://lookout.db]
    #[arg(long, env = "LOOKOUT_STORE_URL", value_name = "URL")]
    store_url: Option<String>,

    /// Messages in flight longer than this, with no response, are an interrupted run
    /// [default: thresholds.stale_processing, 10m]
    #[arg(long, env = "LOOKOUT_STALE_PROCESSING", value_name = "DURATION",
          value_parser = lookout_config::duration::parse_duration)]
    stale_processing: Option<std::time::Duration>,

    /// How often the interrupted-run scan runs, besides at start-up
    /// [default: thresholds.stale_scan_interval, 60s]
    #[arg(long, env = "LOOKOUT_STALE_SCAN_INTERVAL", value_name = "DURATION",
          value_parser = lookout_config::duration::parse_duration)]
    stale_scan_interval: Option<std::time::Duration>,

    /// Log format on stderr.
    #[arg(long, env = "LOOKOUT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("LOOKOUT_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lookoutd: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = lookout_daemon::Options {
        config: args.config,
        state_dir: args.state_dir,
        bind: args.bind,
        store_url: args.store_url,
        stale_processing: args.stale_processing,
        stale_scan_interval: args.stale_scan_interval,
    };
    match runtime.block_on(lookout_daemon::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line a person can act on; the details are in the message itself.
            eprintln!("lookoutd: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
