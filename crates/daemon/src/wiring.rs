//! From a validated configuration to the running parts: sinks, boot books.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lookout_config::{Config, SinkKind};
use lookout_crash_detect::{BootBook, BootOptions};
use lookout_notify::apprise::AppriseSink;
use lookout_notify::discord::DiscordSink;
use lookout_notify::email::{EmailSettings, EmailSink};
use lookout_notify::ntfy::NtfySink;
use lookout_notify::sinks::{FileSink, HttpFormat, HttpSink, LogSink};
use lookout_notify::telegram::{TelegramBot, TelegramSink};
use lookout_notify::{Fallback, Notifier, Route};

/// The Bot API a telegram sink talks to when its `api_url` is not set.
pub(crate) const TELEGRAM_API_URL: &str = "https://api.telegram.org";

/// How long one delivery to a sink may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Sinks with their routes, as the outbox takes them.
pub(crate) type Sinks = Vec<(Arc<dyn Notifier>, Route)>;

/// The sinks of `[[notify.sinks]]` (the log alone when there are none), each route carrying its
/// `fallback` with `notify.fallback_after`. A `url_env` that is not set is an error naming the
/// variable (never its value).
pub(crate) fn sinks(config: &Config) -> Result<Sinks, String> {
    if config.notify.sinks.is_empty() {
        return Ok(vec![(Arc::new(LogSink::new("log")), Route::all())]);
    }
    let mut out: Sinks = Vec::new();
    for (i, s) in config.notify.sinks.iter().enumerate() {
        let name = s.name().to_owned();
        let url = || -> Result<String, String> {
            match (&s.url, &s.url_env) {
                (Some(u), _) => Ok(u.clone()),
                (None, Some(var)) => std::env::var(var).map_err(|_| {
                    format!("notify.sinks[{i}].url_env names `{var}`, which is not set in lookoutd's environment")
                }),
                (None, None) => Err(format!("notify.sinks[{i}] has no url")),
            }
        };
        // A secret named by an `*_env` key: an unset variable is an error naming the key and the
        // variable, never a value.
        let secret = |key: &str, var: &Option<String>| -> Result<Option<String>, String> {
            var.as_deref()
                .map(|var| {
                    std::env::var(var).map_err(|_| {
                        format!("notify.sinks[{i}].{key} names `{var}`, which is not set in lookoutd's environment")
                    })
                })
                .transpose()
        };
        let needed = |key: &str, what: Option<String>| -> Result<String, String> {
            what.ok_or_else(|| format!("notify.sinks[{i}] has no {key}"))
        };
        let sink: Arc<dyn Notifier> = match s.kind {
            SinkKind::Log => Arc::new(LogSink::new(name)),
            SinkKind::Webhook | SinkKind::Callback => {
                Arc::new(HttpSink::new(name, url()?, HttpFormat::Json, SEND_TIMEOUT))
            }
            SinkKind::Slack => {
                Arc::new(HttpSink::new(name, url()?, HttpFormat::Slack, SEND_TIMEOUT))
            }
            SinkKind::Telegram => {
                let token = needed("token_env", secret("token_env", &s.token_env)?)?;
                let api = s.api_url.as_deref().unwrap_or(TELEGRAM_API_URL);
                let bot = TelegramBot::new(api, token, SEND_TIMEOUT);
                Arc::new(TelegramSink::new(
                    name,
                    bot,
                    needed("chat_id", s.chat_id.clone())?,
                ))
            }
            SinkKind::Ntfy => Arc::new(NtfySink::new(
                name,
                url()?,
                secret("token_env", &s.token_env)?,
                SEND_TIMEOUT,
            )),
            SinkKind::Discord => Arc::new(DiscordSink::new(name, url()?, SEND_TIMEOUT)),
            SinkKind::Email => {
                let user = secret("username_env", &s.username_env)?;
                let password = secret("password_env", &s.password_env)?;
                let settings = EmailSettings {
                    smtp_url: needed("smtp_url", s.smtp_url.clone())?,
                    credentials: user.zip(password),
                    from: needed("from", s.from.clone())?,
                    to: s.to.clone().unwrap_or_default(),
                    timeout: SEND_TIMEOUT,
                };
                Arc::new(
                    EmailSink::new(name, settings)
                        .map_err(|e| format!("notify.sinks[{i}]: {e}"))?,
                )
            }
            SinkKind::Apprise => Arc::new(AppriseSink::new(
                name,
                s.command.clone().unwrap_or_else(|| "apprise".into()),
                needed("urls_env", secret("urls_env", &s.urls_env)?)?,
                // Apprise may try several services in turn.
                SEND_TIMEOUT * 3,
            )),
            SinkKind::File => {
                let path = s
                    .path
                    .clone()
                    .ok_or_else(|| format!("notify.sinks[{i}] has no path"))?;
                // Relative to where lookoutd runs, like every path of the file (docs/configuration.md).
                Arc::new(FileSink::new(name, path))
            }
        };
        let route = Route {
            groups: s.groups.clone(),
            // One Severity (lookout-common's) from the file to the route.
            min_severity: s.min_severity,
            // Failing for `notify.fallback_after`, its pending alerts also go to the named sink
            // (the config checked that it exists and is another sink).
            fallback: s.fallback.clone().map(|sink| Fallback {
                sink,
                after: config.notify.fallback_after,
            }),
        };
        out.push((sink, route));
    }
    Ok(out)
}

/// The self-check's URL: `selfcheck.ping_url`, or the variable `ping_url_env` names (an error
/// naming it when it is not set); `None` when no self-check is configured.
pub(crate) fn ping_url(config: &Config) -> Result<Option<String>, String> {
    let s = &config.selfcheck;
    match (&s.ping_url, &s.ping_url_env) {
        (Some(url), _) => Ok(Some(url.clone())),
        (None, Some(var)) => std::env::var(var).map(Some).map_err(|_| {
            format!(
                "selfcheck.ping_url_env names `{var}`, which is not set in lookoutd's environment"
            )
        }),
        (None, None) => Ok(None),
    }
}

/// The boot options of `service`: `[boot]`, refined by its `[[boot.services]]` entry if it has one.
pub(crate) fn boot_options(config: &Config, service: &str) -> BootOptions {
    let base = BootOptions {
        crash_loop_threshold: config.boot.crash_loop_threshold,
        crash_loop_window: config.boot.crash_loop_window,
        ..BootOptions::default()
    };
    match config.boot.services.iter().find(|s| s.name == service) {
        Some(s) => BootOptions {
            log_file: s.log_file.clone(),
            log_lines: s.log_lines,
            systemd_unit: s.systemd_unit.clone(),
            ..base
        },
        None => base,
    }
}

/// The boot book of each `[[boot.services]]` entry, and one with the general options for the rest.
pub(crate) fn boot_books(config: &Config, state_dir: &Path) -> (BootBook, Vec<(String, BootBook)>) {
    let per_service = config
        .boot
        .services
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                BootBook::new(state_dir, boot_options(config, &s.name)),
            )
        })
        .collect();
    (
        BootBook::new(state_dir, boot_options(config, "")),
        per_service,
    )
}
