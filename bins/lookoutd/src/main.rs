//! lookoutd — the Lookout daemon.
//!
//! Wiring only: it parses flags, prepares the state directory, opens the store, and serves the HTTP
//! API. What it serves comes from the library crates.

mod alerts;
mod boot;
mod doctor;
mod gateway;
mod http;
mod ingest;
mod jobs;
mod projector;
mod reconcile;
mod stale;
mod startup;
mod status;
mod systemd;
mod watch;
mod wiring;

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
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line a person can act on; the details are in the message itself.
            eprintln!("lookoutd: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(args: Args) -> Result<(), startup::StartupError> {
    // Handlers first: a signal that arrives while starting up must still mean a graceful stop.
    let shutdown = shutdown_signal();
    // SIGHUP must never kill lookoutd (systemctl reload, logrotate): its handler exists from here on.
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    // Validation before anything starts: a bad file is one line and exit 2, nothing created.
    let config = match &args.config {
        Some(path) => lookout_config::load(path)?,
        None => lookout_config::Config::default(),
    };
    lookout_scheduler::check_config(&config).map_err(|e| {
        startup::StartupError::Schedule(format!(
            "{}: {e}",
            args.config
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ))
    })?;
    let settings = startup::Settings {
        state_dir: args
            .state_dir
            .clone()
            .unwrap_or_else(startup::default_state_dir),
        bind: args
            .bind
            .clone()
            .unwrap_or_else(|| config.server.bind.clone()),
        store_url: args
            .store_url
            .clone()
            .unwrap_or_else(|| config.store.url.clone()),
        // The bearer token guarding /api and /debug, from the variable server.token_env names.
        boot_options: wiring::boot_options(&config, startup::SERVICE),
        token: std::env::var(&config.server.token_env)
            .ok()
            .filter(|t| !t.is_empty()),
    };
    let stale_processing = args
        .stale_processing
        .unwrap_or(config.thresholds.stale_processing);
    let stale_scan_interval = args
        .stale_scan_interval
        .unwrap_or(config.thresholds.stale_scan_interval);
    // Sinks are built before anything is created, so a missing url_env stops the start cleanly.
    let sinks = wiring::sinks(&config).map_err(startup::StartupError::Sinks)?;
    let started = startup::start(&settings).await?;
    let startup::Started {
        listener,
        store,
        state_dir,
        guard,
        begin,
    } = started;
    let local = listener
        .local_addr()
        .map_err(|e| startup::StartupError::Listen {
            addr: settings.bind.clone(),
            source: e,
        })?;
    tracing::info!(
        bind = %local,
        state_dir = %state_dir.display(),
        store = %store.display_url(),
        version = env!("CARGO_PKG_VERSION"),
        "lookoutd listening"
    );
    // One path for every alert: the durable outbox, delivered by this loop to the sinks.
    let outbox = std::sync::Arc::new(lookout_notify::Outbox::new(
        store.clone(),
        sinks,
        lookout_notify::RetryPolicy::default(),
    ));
    // Stopped last, after the loops that send through it (see the end of `serve`).
    let (outbox_stop, outbox_stopped) = tokio::sync::oneshot::channel::<()>();
    let delivering = tokio::spawn(outbox.clone().run_until(
        std::time::Duration::from_secs(1),
        async move {
            let _ = outbox_stopped.await;
        },
    ));
    own_boot(&store, &outbox, guard, begin).await;
    let (book, per_service) = wiring::boot_books(&config, &state_dir);
    let boots = std::sync::Arc::new(boot::Boots::new(book, per_service, outbox.clone()));
    let alerting = alerts::lifecycle(&store, outbox.clone(), &config);
    let stale = std::sync::Arc::new(stale::StaleWatch::new(stale_processing, alerting.clone()));
    let running = std::sync::Arc::new(http::Running {
        config: std::sync::RwLock::new(config.clone()),
        config_path: args.config.clone(),
        state_dir: state_dir.clone(),
    });
    match hup {
        Ok(hup) => {
            tokio::spawn(reload_on_sighup(
                hup,
                args.config.clone(),
                running.clone(),
                args.stale_processing.is_some(),
                outbox.clone(),
                stale.clone(),
                alerting.clone(),
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP: configuration reload is off")
        }
    }
    let projector = std::sync::Arc::new(projector::Projector::default());
    // Events stored while lookoutd was down, or whose projection failed, are applied now.
    if let Err(e) = projector.catch_up(&store).await {
        tracing::error!(error = %e, "cannot apply stored events at start-up; retried with the next ingest");
    }
    tokio::spawn(
        stale
            .clone()
            .run(store.clone(), stale_scan_interval, projector.clone()),
    );
    // One stop signal for every loop: the HTTP server, the schedulers, the reconciler.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    // The crates name their metrics `lookout_…` themselves.
    let mut registry = prometheus_client::registry::Registry::default();
    outbox.metrics().register(&mut registry);
    alerts::spawn_ticks(
        store.clone(),
        alerting.clone(),
        config.thresholds.deploy_quiet,
        stop_rx.clone(),
    );
    gateway::spawn(&config, alerting.clone(), stop_rx.clone());
    let schedulers =
        jobs::Schedulers::start(&store, outbox.clone(), alerting.clone(), &config).await;
    // One set of families for both schedulers, labelled by owner.
    schedulers.tasks.metrics().register(&mut registry);
    if let Err(e) = schedulers
        .resolve_cleared_overdue(&store, &alerting, config.thresholds.overdue_grace)
        .await
    {
        tracing::error!(error = %e, "cannot check overdue alerts at start");
    }
    let mut stopping = schedulers.spawn(stop_rx.clone());
    let watchdog = match watch::start(
        &store,
        outbox.clone(),
        alerting.clone(),
        &config,
        &state_dir,
        &mut registry,
        stop_rx.clone(),
    )
    .await
    {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!(error = %e, "the watchdog cannot start: no target is supervised");
            None
        }
    };
    let reconcile_metrics = lookout_reconcile_core::ReconcileMetrics::new();
    reconcile_metrics.register(&mut registry);
    let reconcile_ticks = {
        let m = reconcile_metrics.clone();
        std::sync::Arc::new(move || m.ticks())
    };
    let reconciler = std::sync::Arc::new(reconcile::Reconciler {
        model: reconcile::model(&config, stale_processing),
        driver: reconcile::driver_config(&config),
        max_replay: config.reconcile.max_replay_range,
    });
    let events_applied = std::sync::Arc::new(tokio::sync::Notify::new());
    stopping.push(reconcile::spawn(
        store.clone(),
        outbox.clone(),
        alerting.clone(),
        reconcile::model(&config, stale_processing),
        reconcile::driver_config(&config),
        config.reconcile.tick,
        reconcile_metrics,
        events_applied.clone(),
        stop_rx.clone(),
    ));
    let mut collectors = status::collectors(&store, &config, stale_processing);
    collectors.extend(status::scheduler_collectors(
        &store,
        config.thresholds.overdue_grace,
    ));
    if let Some(w) = &watchdog {
        collectors.push(std::sync::Arc::new(
            lookout_status_collect::host::WatchdogSection {
                source: std::sync::Arc::new(watch::WatchdogTargets(w.clone())),
            },
        ));
    }
    let app = http::router(
        http::AppState::new(http::Parts {
            store: store.clone(),
            boots,
            stale,
            projector,
            limits: ingest::IngestLimits {
                max_body_bytes: config.server.max_body_bytes,
                max_events: config.server.max_events_per_request,
            },
            token: settings.token.clone(),
            collectors,
            section_timeout: config.status.section_timeout,
            status_ttl: config.status.cache_ttl,
            schedulers: Some(schedulers),
            watchdog,
            reconciler,
            metrics: std::sync::Arc::new(registry),
            alerts: alerting.clone(),
            outbox: outbox.clone(),
            events_applied,
            running: running.clone(),
        }),
        http::Protection {
            timeout: config.server.request_timeout,
            concurrency: config.server.concurrency_limit,
            status_requires_token: config.server.status_requires_token,
        },
    );
    // Serving from here on: tell systemd, and keep its watchdog fed while the store answers and the
    // reconciler ticks.
    {
        let store = store.clone();
        let ticks = reconcile_ticks.clone();
        let last = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
        systemd::ready_and_watch(move || {
            let (store, ticks, last) = (store.clone(), ticks.clone(), last.clone());
            async move {
                store.ping().await.map_err(|e| format!("store: {e}"))?;
                let now = ticks();
                let before = last.swap(now, std::sync::atomic::Ordering::Relaxed);
                if before != u64::MAX && now == before {
                    return Err("the reconciler has not ticked since the last ping".into());
                }
                Ok(())
            }
        });
    }
    let mut http_stop = stop_rx.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|v| *v).await;
        })
        .await;
    // The schedulers record their runs `interrupted` and the reconciler saves its cursor before
    // the store closes; bounded, so a stuck loop cannot hold the stop past systemd's patience.
    let stopped = async {
        for h in stopping {
            let _ = h.await;
        }
    };
    if tokio::time::timeout(std::time::Duration::from_secs(10), stopped)
        .await
        .is_err()
    {
        tracing::warn!("a scheduler or the reconciler did not stop within 10 s; stopping anyway");
    }
    // Then the outbox: its round in progress and one more for what the stop recorded.
    let _ = outbox_stop.send(());
    if tokio::time::timeout(std::time::Duration::from_secs(10), delivering)
        .await
        .is_err()
    {
        tracing::warn!(
            "notifications still being delivered after 10 s; they are sent at the next start"
        );
    }
    store.close().await;
    served.map_err(startup::StartupError::Serve)?;
    tracing::info!("lookoutd stopped");
    Ok(())
}

/// lookoutd's own boot record: failed starts before this one reach the store, a crash loop and a
/// recovery are alerted, and the breadcrumb is cleared now that it serves.
async fn own_boot(
    store: &lookout_store::Store,
    outbox: &lookout_notify::Outbox,
    guard: lookout_crash_detect::BootGuard,
    begin: lookout_crash_detect::BeginOutcome,
) {
    if let Some(cl) = &begin.crash_loop {
        boot::crash_loop_alert(outbox, cl).await;
    }
    let report = match guard.ready() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot clear lookoutd's boot breadcrumb");
            return;
        }
    };
    let recorded = async {
        boot::record_own_failures(store, startup::SERVICE, &report.failures).await?;
        boot::after_ready(store, startup::SERVICE, None, &report, true, outbox).await
    };
    if let Err(e) = recorded.await {
        tracing::error!(error = %e, "cannot record lookoutd's boot in the store");
    }
}

/// SIGHUP re-reads the configuration file. An invalid file is refused with its error and the running
/// configuration stays; a valid one replaces the sinks, the stale threshold and the `[[quiet]]`
/// windows at once, and names the keys whose change needs a restart (bind, store, token, limits).
async fn reload_on_sighup(
    mut hup: tokio::signal::unix::Signal,
    path: Option<std::path::PathBuf>,
    shared: std::sync::Arc<http::Running>,
    stale_flag_set: bool,
    outbox: std::sync::Arc<lookout_notify::Outbox>,
    stale: std::sync::Arc<stale::StaleWatch>,
    alerting: std::sync::Arc<lookout_notify::alerts::Alerts>,
) {
    while hup.recv().await.is_some() {
        let Some(path) = &path else {
            tracing::info!("SIGHUP: lookoutd runs without a configuration file; nothing to reload");
            continue;
        };
        // The same checks as at start: the file's, then the schedules of jobs and quiet windows.
        let new = match lookout_config::load(path)
            .map_err(|e| e.to_string())
            .and_then(|c| lookout_scheduler::check_config(&c).map(|()| c))
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "configuration reload refused; the running configuration stays");
                continue;
            }
        };
        let sinks = match wiring::sinks(&new) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "configuration reload refused; the running configuration stays");
                continue;
            }
        };
        outbox.set_sinks(sinks);
        alerting.set_recurring(alerts::recurring(&new));
        if !stale_flag_set {
            stale.set_threshold(new.thresholds.stale_processing);
        }
        let running = shared
            .config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // What the running loops read once at start: a change is said, and waits for a restart.
        let mut needs_restart = Vec::new();
        let mut differs = |name: &'static str, a: String, b: String| {
            if a != b {
                needs_restart.push(name);
            }
        };
        differs(
            "server",
            format!("{:?}", new.server),
            format!("{:?}", running.server),
        );
        differs(
            "store.url",
            new.store.url.clone(),
            running.store.url.clone(),
        );
        differs(
            "boot",
            format!("{:?}", new.boot),
            format!("{:?}", running.boot),
        );
        let mut t = new.thresholds.clone();
        t.stale_processing = running.thresholds.stale_processing;
        differs(
            "thresholds",
            format!("{t:?}"),
            format!("{:?}", running.thresholds),
        );
        differs(
            "jobs",
            format!("{:?}", new.jobs),
            format!("{:?}", running.jobs),
        );
        differs(
            "watch",
            format!("{:?}", new.watch),
            format!("{:?}", running.watch),
        );
        differs(
            "gateway",
            format!("{:?}", new.gateway),
            format!("{:?}", running.gateway),
        );
        differs(
            "repos",
            format!("{:?}", new.repos),
            format!("{:?}", running.repos),
        );
        differs(
            "status",
            format!("{:?}", new.status),
            format!("{:?}", running.status),
        );
        differs(
            "docker",
            format!("{:?}", new.docker),
            format!("{:?}", running.docker),
        );
        differs(
            "reconcile",
            format!("{:?}", new.reconcile),
            format!("{:?}", running.reconcile),
        );
        differs(
            "alerts",
            format!("{:?}", new.alerts),
            format!("{:?}", running.alerts),
        );
        tracing::info!(
            file = %path.display(),
            sinks = ?outbox.sink_names(),
            needs_restart = ?needs_restart,
            "configuration reloaded"
        );
        *shared.config.write().unwrap_or_else(|p| p.into_inner()) = new;
    }
}

/// Registers SIGINT and SIGTERM handlers now; the returned future resolves on either.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    async move {
        let (mut int, mut term) = match (int, term) {
            (Ok(i), Ok(t)) => (i, t),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot install signal handlers; stop lookoutd with SIGKILL");
                std::future::pending::<()>().await;
                unreachable!()
            }
        };
        let which = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        tracing::info!(
            signal = which,
            "shutting down: finishing requests in flight"
        );
    }
}
