//! `lookout config check`: validates a configuration file locally (no daemon needed).

use crate::Failure;

/// The same validation lookoutd runs at start and on SIGHUP; no daemon needed.
pub(crate) fn config_check(file: &std::path::Path) -> Result<u8, Failure> {
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
