//! The daemon's run: from [`Options`] to a serving lookoutd, and the graceful stop in order.

use crate::startup::{self, StartupError};
use crate::{
    alerts, boot, flow, gateway, host_runs, http, ingest, jobs, page, projector, reconcile, stale,
    status,
};
use crate::{chat, incidents, selfcheck, systemd, watch, wiring};

/// What lookoutd is told on its command line; each overrides the configuration file, which
/// overrides the defaults (`docs/configuration.md`).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The configuration file; without one, every key has its default.
    pub config: Option<std::path::PathBuf>,
    /// Where the database and state files live (default: [`default_state_dir`]).
    pub state_dir: Option<std::path::PathBuf>,
    /// Address and port of the HTTP API (default: `server.bind`).
    pub bind: Option<String>,
    /// The store URL (default: `store.url`).
    pub store_url: Option<String>,
    /// The interrupted-run threshold (default: `thresholds.stale_processing`).
    pub stale_processing: Option<std::time::Duration>,
    /// How often the interrupted-run scan runs (default: `thresholds.stale_scan_interval`).
    pub stale_scan_interval: Option<std::time::Duration>,
}

pub use crate::startup::default_state_dir;

/// Runs lookoutd until SIGINT or SIGTERM, then stops in order: the HTTP server, the schedulers and
/// the reconciler, the outbox's last round, the store. SIGHUP reloads the configuration file.
pub async fn run(options: Options) -> Result<(), StartupError> {
    // Handlers first: a signal that arrives while starting up must still mean a graceful stop.
    let shutdown = shutdown_signal();
    run_until(options, shutdown).await
}

/// Runs lookoutd until `shutdown` resolves (an embedder's own stop), then stops as [`run`] does.
pub async fn run_until(
    args: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    // SIGHUP must never kill lookoutd (systemctl reload, logrotate): its handler exists from here on.
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    // Validation before anything starts: a bad file is one line and exit 2, nothing created.
    let config = match &args.config {
        Some(path) => crate::checks::load_config(path)?,
        None => lookout_config::Config::default(),
    };
    crate::checks::check_config(&config).map_err(|e| {
        StartupError::Schedule(format!(
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
    let sinks = wiring::sinks(&config).map_err(StartupError::Sinks)?;
    let started = startup::start(&settings).await?;
    let startup::Started {
        listener,
        store,
        state_dir,
        guard,
        begin,
    } = started;
    let local = listener.local_addr().map_err(|e| StartupError::Listen {
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
    let alerting = alerts::lifecycle(&store, outbox.clone(), &config);
    own_boot(&store, &outbox, &alerting, guard, begin).await;
    let (book, per_service) = wiring::boot_books(&config, &state_dir);
    let boots = std::sync::Arc::new(boot::Boots::new(
        book,
        per_service,
        outbox.clone(),
        alerting.clone(),
    ));
    let stale = std::sync::Arc::new(stale::StaleWatch::new(stale_processing, alerting.clone()));
    let running = std::sync::Arc::new(http::Running {
        config: std::sync::RwLock::new(config.clone()),
        config_path: args.config.clone(),
        state_dir: state_dir.clone(),
    });
    match hup {
        Ok(hup) => {
            tokio::spawn(crate::reload::reload_on_sighup(
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
    // The log as its subscribers follow it: the projector, deploy windows, the heartbeat feed.
    let log = crate::log::EventLog::new(store.clone());
    let projector = std::sync::Arc::new(projector::Projector::new(&log, store.clone()));
    // Events stored while lookoutd was down, or whose projection failed, are applied now.
    if let Err(e) = projector.catch_up().await {
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
        &log,
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
        &log,
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
    let mut collectors = status::collectors(&store, &config, stale_processing, &state_dir);
    collectors.extend(status::scheduler_collectors(
        &store,
        config.thresholds.overdue_grace,
    ));
    let clock = std::sync::Arc::new(lookout_common::SystemClock);
    let (flow_section, flow_loop) = flow::spawn(
        &log,
        alerting.clone(),
        &config,
        &mut registry,
        clock,
        stop_rx.clone(),
    )
    .await;
    collectors.push(flow_section);
    stopping.push(flow_loop);
    if let Some(w) = &watchdog {
        collectors.push(std::sync::Arc::new(
            lookout_status_collect::host::WatchdogSection {
                source: std::sync::Arc::new(watch::WatchdogTargets(w.clone())),
            },
        ));
    }
    // A host's own runs, followed and looked at by lookoutd; `runs` in /status.
    let run_statuses = host_runs::RunStatuses::default();
    stopping.push(host_runs::spawn(
        &log,
        outbox.clone(),
        std::sync::Arc::new(crate::run_watch::DockerRunProbe::new(&config.docker.socket)),
        config.thresholds.heartbeat_interval,
        run_statuses.clone(),
        stop_rx.clone(),
    ));
    collectors.push(std::sync::Arc::new(host_runs::RunsSection(
        run_statuses.clone(),
    )));
    // The engine's event stream for the containers lookoutd is told about; `docker` in /status.
    let docker_stream = crate::docker_events::spawn(&config, alerting.clone(), stop_rx.clone())
        .map(|f| {
            stopping.push(f.task);
            collectors.push(std::sync::Arc::new(crate::docker_stream::DockerSection(
                f.status.clone(),
            )));
            f.status
        });
    // Log rules: a file or a container's output followed for a pattern; `logs` in /status.
    let logs = crate::logs::spawn(&config, alerting.clone(), stop_rx.clone());
    stopping.extend(logs.task);
    collectors.extend(logs.section);
    // The dead man's switch: pinged while the loops above are alive.
    let selfcheck = match wiring::ping_url(&config) {
        Ok(Some(url)) => {
            let live = selfcheck::Liveness::new(
                store.clone(),
                reconcile_ticks.clone(),
                config.selfcheck.loop_stall,
            );
            let (state, handle) =
                selfcheck::spawn(url, config.selfcheck.ping_interval, live, stop_rx.clone());
            stopping.push(handle);
            Some(state)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "the self-check cannot start: no pings are sent");
            None
        }
    };
    let app_state = http::AppState::new(http::Parts {
        store: store.clone(),
        log: log.clone(),
        boots,
        stale,
        projector,
        limits: ingest::IngestLimits {
            max_body_bytes: config.server.max_body_bytes,
            max_events: config.server.max_events_per_request,
            max_skew: config.ingest.max_skew,
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
        selfcheck,
        docker_stream,
        host_runs: run_statuses,
    });
    stopping.push(page::spawn_history(app_state.clone(), stop_rx.clone()));
    stopping.push(incidents::spawn_prune(
        store.clone(),
        config.incidents.keep,
        stop_rx.clone(),
    ));
    stopping.extend(chat::spawn(&config, app_state.clone(), stop_rx.clone()));

    let app = http::router(
        app_state,
        http::Protection {
            timeout: config.server.request_timeout,
            concurrency: config.server.concurrency_limit,
            status_requires_token: config.server.status_requires_token,
        },
    );
    // Serving from here on: tell systemd, and keep its watchdog fed while the store answers and the
    // reconciler ticks (the same liveness as the self-check's, each with its own view of the ticks).
    {
        let live = std::sync::Arc::new(selfcheck::Liveness::new(
            store.clone(),
            reconcile_ticks.clone(),
            config.selfcheck.loop_stall,
        ));
        systemd::ready_and_watch(move || {
            let live = live.clone();
            async move { live.check().await.map(|_| ()) }
        });
    }
    let mut http_stop = stop_rx.clone();
    let mut server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|v| *v).await;
            })
            .into_future(),
    );
    // The server drains requests in flight after the stop, but a client that never closes its
    // connection must not hold lookoutd up: bounded, like every later step of the stop.
    let mut stopped_rx = stop_rx.clone();
    let served = tokio::select! {
        ended = &mut server => ended,
        // Mapped to `()`: the watch's guard must not live across the awaits below (Send).
        () = async { let _ = stopped_rx.wait_for(|v| *v).await; } => {
            match tokio::time::timeout(std::time::Duration::from_secs(10), &mut server).await {
                Ok(ended) => ended,
                Err(_) => {
                    tracing::warn!("requests still in flight after 10 s; closing them");
                    server.abort();
                    Ok(Ok(()))
                }
            }
        }
    };
    let served = served.unwrap_or_else(|e| Err(std::io::Error::other(e)));
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
    // Closing waits for every connection to come back to the pool; a task still holding one
    // must not turn a stop into a hang.
    if tokio::time::timeout(std::time::Duration::from_secs(5), store.close())
        .await
        .is_err()
    {
        tracing::warn!("the store did not close within 5 s; stopping anyway");
    }
    served.map_err(StartupError::Serve)?;
    tracing::info!("lookoutd stopped");
    Ok(())
}

/// lookoutd's own boot record: failed starts before this one reach the store, a crash loop and a
/// recovery are alerted, and the breadcrumb is cleared now that it serves.
async fn own_boot(
    store: &lookout_store::Store,
    outbox: &lookout_notify::Outbox,
    alerting: &lookout_notify::alerts::Alerts,
    guard: lookout_crash_detect::BootGuard,
    begin: lookout_crash_detect::BeginOutcome,
) {
    if let Some(cl) = &begin.crash_loop {
        boot::crash_loop_alert(alerting, cl).await;
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
        boot::after_ready(
            store,
            startup::SERVICE,
            None,
            &report,
            true,
            outbox,
            alerting,
        )
        .await
    };
    if let Err(e) = recorded.await {
        tracing::error!(error = %e, "cannot record lookoutd's boot in the store");
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
