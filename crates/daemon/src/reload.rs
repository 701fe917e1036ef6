//! SIGHUP: re-read the configuration file, apply what can change while running, name the rest.

use crate::{alerts, http, stale, wiring};

/// SIGHUP re-reads the configuration file. An invalid file is refused with its error and the running
/// configuration stays; a valid one replaces the sinks, the stale threshold and the `[[quiet]]`
/// windows at once, and names the keys whose change needs a restart (bind, store, token, limits).
pub(crate) async fn reload_on_sighup(
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
        let new = match crate::checks::load_config(path)
            .map_err(|e| e.to_string())
            .and_then(|c| crate::checks::check_config(&c).map(|()| c))
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
            "ingest",
            format!("{:?}", new.ingest),
            format!("{:?}", running.ingest),
        );
        differs(
            "alerts",
            format!("{:?}", new.alerts),
            format!("{:?}", running.alerts),
        );
        differs(
            "selfcheck",
            format!("{:?}", new.selfcheck),
            format!("{:?}", running.selfcheck),
        );
        differs(
            "incidents",
            format!("{:?}", new.incidents),
            format!("{:?}", running.incidents),
        );
        differs(
            "logs",
            format!("{:?}", new.logs),
            format!("{:?}", running.logs),
        );
        differs(
            "flow",
            format!("{:?}", new.flow),
            format!("{:?}", running.flow),
        );
        // The chat polls are started at start: a change of who may command is a restart.
        let commands = |c: &lookout_config::Config| {
            let readers: Vec<_> = c
                .notify
                .sinks
                .iter()
                .filter(|s| s.reads_commands())
                .map(|s| (&s.name, &s.token_env, &s.api_url, &s.allowed_chats))
                .collect();
            format!("{readers:?}")
        };
        differs(
            "notify.sinks.allowed_chats",
            commands(&new),
            commands(&running),
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
