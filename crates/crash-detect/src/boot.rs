//! Boot breadcrumbs: every start leaves one; a start that finds the previous one knows that start
//! never reached ready, and says why when the cause was written down.
//!
//! State lives in one small JSON file per service (`<state_dir>/boot/<service>.json`), written
//! atomically: the current start (the breadcrumb) and the failed starts since the last ready.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::systemd::{Systemctl, SystemdProbe};
use crate::{CrashDetectError, Result};

/// How boots are judged and where causes are looked for.
#[derive(Clone)]
pub struct BootOptions {
    /// Failed starts inside [`crash_loop_window`](Self::crash_loop_window) that make a crash loop.
    pub crash_loop_threshold: u32,
    /// The crash-loop window.
    pub crash_loop_window: Duration,
    /// A log file the service writes; its last lines are the cause when none was recorded.
    pub log_file: Option<PathBuf>,
    /// How many of its last lines to take.
    pub log_lines: usize,
    /// The systemd unit to ask for the restart counter and last exit (default: `<service>.service`
    /// when systemd runs the machine).
    pub systemd_unit: Option<String>,
    /// How systemd is asked.
    pub systemd: Arc<dyn SystemdProbe>,
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            crash_loop_threshold: 3,
            crash_loop_window: Duration::from_secs(5 * 60),
            log_file: None,
            log_lines: 3,
            systemd_unit: None,
            systemd: Arc::new(Systemctl),
        }
    }
}

impl std::fmt::Debug for BootOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootOptions")
            .field("crash_loop_threshold", &self.crash_loop_threshold)
            .field("crash_loop_window", &self.crash_loop_window)
            .field("log_file", &self.log_file)
            .field("log_lines", &self.log_lines)
            .field("systemd_unit", &self.systemd_unit)
            .finish_non_exhaustive()
    }
}

/// Where a failure's cause came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseSource {
    /// The process's panic hook.
    Panic,
    /// The process (or the host, through `lookout boot fail`) said so.
    Reported,
    /// The last lines of the service's log file.
    LogFile,
    /// systemd's record of the main process's exit.
    Systemd,
}

/// One start in progress: the breadcrumb.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootStart {
    /// Its pid.
    pub pid: Option<u32>,
    /// Its version.
    pub version: Option<String>,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// Why it is failing, when it managed to say so before dying.
    pub cause: Option<String>,
    /// Where that cause came from.
    pub cause_source: Option<CauseSource>,
}

/// A start that never reached ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedStart {
    /// Its pid.
    pub pid: Option<u32>,
    /// Its version.
    pub version: Option<String>,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When the failure was seen: at the next start, or when it was reported.
    pub detected_at: DateTime<Utc>,
    /// Why, when anything could tell.
    pub cause: Option<String>,
    /// Where the cause came from.
    pub cause_source: Option<CauseSource>,
}

impl FailedStart {
    /// The cause as a person reads it, saying so when none could be found.
    pub fn cause_text(&self) -> String {
        match &self.cause {
            Some(c) => c.clone(),
            None => UNKNOWN_CAUSE.to_string(),
        }
    }
}

const UNKNOWN_CAUSE: &str =
    "unknown — the process ended without recording a cause (killed, e.g. SIGKILL or out of memory)";

/// The state file of one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Ledger {
    service: String,
    current: Option<BootStart>,
    failures: Vec<FailedStart>,
    crash_loop_alerted_at: Option<DateTime<Utc>>,
    last_ready_at: Option<DateTime<Utc>>,
}

/// Failed starts kept per service; older ones are dropped, their number still counted.
const MAX_FAILURES_KEPT: usize = 100;

/// systemd's restart counter for the unit, or why it could not be had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartCounter {
    /// `NRestarts` of the unit.
    Known(u64),
    /// Why it is not known (not under systemd, no unit, systemctl failed …).
    Unavailable(String),
}

/// A crash loop: the alert to raise, once per loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrashLoop {
    /// The service.
    pub service: String,
    /// Failed starts inside the window.
    pub failed_starts: u32,
    /// The window.
    pub window_secs: u64,
    /// The cause of the latest failure.
    pub last_cause: String,
}

impl CrashLoop {
    /// The alert text.
    pub fn message(&self) -> String {
        format!(
            "🔁 {} is crash-looping: {} failed start(s) in {} with no ready. Last failure: {}",
            self.service,
            self.failed_starts,
            human_secs(self.window_secs),
            self.last_cause
        )
    }
}

/// What a start learned when it began (or what a reported failure changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BeginOutcome {
    /// The previous start, when it never reached ready.
    pub previous_failed: Option<FailedStart>,
    /// Failed starts since the last ready, this one excluded.
    pub failed_starts: u32,
    /// Set when this start (or failure) completes a crash loop not yet alerted.
    pub crash_loop: Option<CrashLoop>,
}

/// What a start that reached ready reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootReport {
    /// The service.
    pub service: String,
    /// Failed starts since the previous ready.
    pub failed_starts: u32,
    /// When the first of them began.
    pub first_failure_at: Option<DateTime<Utc>>,
    /// When the last of them began.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// The cause of the last failure, when anything could tell.
    pub last_cause: Option<String>,
    /// Each failed start (oldest first; at most the latest 100).
    pub failures: Vec<FailedStart>,
    /// systemd's restart counter.
    pub restart_counter: RestartCounter,
}

impl BootReport {
    /// The line a host adds to its boot message: `None` when there is nothing to say.
    pub fn message(&self) -> Option<String> {
        (self.failed_starts > 0).then(|| {
            let cause = self
                .failures
                .last()
                .map(FailedStart::cause_text)
                .unwrap_or_else(|| UNKNOWN_CAUSE.to_string());
            format!(
                "⚠️ Service recovered after {} failed start(s). Last failure: {cause}",
                self.failed_starts
            )
        })
    }
}

/// The boot records of the services under one state directory. Every operation takes `now`, so
/// crash-loop windows are tested with any clock.
#[derive(Debug, Clone)]
pub struct BootBook {
    dir: PathBuf,
    options: BootOptions,
}

impl BootBook {
    /// Boot records under `<state_dir>/boot/`.
    pub fn new(state_dir: &Path, options: BootOptions) -> Self {
        BootBook {
            dir: state_dir.join("boot"),
            options,
        }
    }

    /// The options in force.
    pub fn options(&self) -> &BootOptions {
        &self.options
    }

    fn path(&self, service: &str) -> Result<PathBuf> {
        validate_service(service)?;
        Ok(self.dir.join(format!("{service}.json")))
    }

    fn load(&self, service: &str) -> Result<Ledger> {
        let path = self.path(service)?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| CrashDetectError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ledger {
                service: service.to_string(),
                ..Ledger::default()
            }),
            Err(source) => Err(CrashDetectError::Io { path, source }),
        }
    }

    fn save(&self, ledger: &Ledger) -> Result<()> {
        let path = self.path(&ledger.service)?;
        std::fs::create_dir_all(&self.dir).map_err(|source| CrashDetectError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let bytes = serde_json::to_vec_pretty(ledger).expect("ledger serialises");
        write_atomic(&path, &bytes).map_err(|source| CrashDetectError::Io { path, source })
    }

    /// A start begins: leaves its breadcrumb. A breadcrumb already there means the previous start
    /// never reached ready: it is counted as a failed start, with the best cause available.
    pub fn begin(
        &self,
        service: &str,
        pid: Option<u32>,
        version: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<BeginOutcome> {
        let mut ledger = self.load(service)?;
        let previous_failed = ledger
            .current
            .take()
            .map(|prev| self.failed(service, prev, now));
        if let Some(f) = &previous_failed {
            push_failure(&mut ledger, f.clone());
        }
        ledger.current = Some(BootStart {
            pid,
            version: version.map(str::to_owned),
            started_at: now,
            cause: None,
            cause_source: None,
        });
        let crash_loop = self.check_crash_loop(&mut ledger, now);
        self.save(&ledger)?;
        Ok(BeginOutcome {
            failed_starts: ledger.failures.len() as u32,
            previous_failed,
            crash_loop,
        })
    }

    /// The running start writes down why it is about to fail (panic hook, fatal-error path). The
    /// next start reads it.
    pub fn record_cause(&self, service: &str, cause: &str, source: CauseSource) -> Result<()> {
        let mut ledger = self.load(service)?;
        if let Some(cur) = ledger.current.as_mut() {
            cur.cause = Some(cause.to_owned());
            cur.cause_source = Some(source);
            self.save(&ledger)?;
        }
        Ok(())
    }

    /// The host reports that the current start failed (e.g. `lookout boot fail` from a unit's
    /// `ExecStopPost`): counted now, with this cause. With no start in progress (after a ready, or
    /// a repeated report) nothing is counted: a clean stop is not a failed start.
    pub fn fail(&self, service: &str, cause: &str, now: DateTime<Utc>) -> Result<BeginOutcome> {
        let mut ledger = self.load(service)?;
        let Some(mut start) = ledger.current.take() else {
            return Ok(BeginOutcome {
                previous_failed: None,
                failed_starts: ledger.failures.len() as u32,
                crash_loop: None,
            });
        };
        start.cause = Some(cause.to_owned());
        start.cause_source = Some(CauseSource::Reported);
        let failed = self.failed(service, start, now);
        push_failure(&mut ledger, failed.clone());
        let crash_loop = self.check_crash_loop(&mut ledger, now);
        self.save(&ledger)?;
        Ok(BeginOutcome {
            failed_starts: ledger.failures.len() as u32,
            previous_failed: Some(failed),
            crash_loop,
        })
    }

    /// The service is up: clears the breadcrumb and the failures, and reports them.
    pub fn ready(&self, service: &str, now: DateTime<Utc>) -> Result<BootReport> {
        let mut ledger = self.load(service)?;
        let failures = std::mem::take(&mut ledger.failures);
        ledger.current = None;
        ledger.crash_loop_alerted_at = None;
        ledger.last_ready_at = Some(now);
        self.save(&ledger)?;
        Ok(BootReport {
            service: service.to_owned(),
            failed_starts: failures.len() as u32,
            first_failure_at: failures.first().map(|f| f.started_at),
            last_failure_at: failures.last().map(|f| f.started_at),
            last_cause: failures.last().and_then(|f| f.cause.clone()),
            failures,
            restart_counter: self.restart_counter(service),
        })
    }

    /// The breadcrumb of the start in progress, if any.
    pub fn current(&self, service: &str) -> Result<Option<BootStart>> {
        Ok(self.load(service)?.current)
    }

    fn unit(&self, service: &str) -> String {
        self.options
            .systemd_unit
            .clone()
            .unwrap_or_else(|| format!("{service}.service"))
    }

    /// systemd's `NRestarts` for the service's unit, or why it cannot be had.
    pub fn restart_counter(&self, service: &str) -> RestartCounter {
        match self.options.systemd.unit_state(&self.unit(service)) {
            Ok(s) => match s.n_restarts {
                Some(n) => RestartCounter::Known(n),
                None => {
                    RestartCounter::Unavailable("systemd reports no NRestarts for the unit".into())
                }
            },
            Err(reason) => RestartCounter::Unavailable(reason),
        }
    }

    /// Turns a breadcrumb into a failed start, finding a cause where the process left none:
    /// the service's log file (written since the start), then systemd's record of the exit.
    fn failed(&self, service: &str, start: BootStart, now: DateTime<Utc>) -> FailedStart {
        let (cause, cause_source) = match (start.cause, start.cause_source) {
            (Some(c), s) => (Some(c), s.or(Some(CauseSource::Reported))),
            (None, _) => {
                if let Some(c) = self.log_tail_since(start.started_at) {
                    (Some(c), Some(CauseSource::LogFile))
                } else if let Some(c) = self
                    .options
                    .systemd
                    .unit_state(&self.unit(service))
                    .ok()
                    .and_then(|s| s.failure_cause())
                {
                    (Some(c), Some(CauseSource::Systemd))
                } else {
                    (None, None)
                }
            }
        };
        FailedStart {
            pid: start.pid,
            version: start.version,
            started_at: start.started_at,
            detected_at: now,
            cause,
            cause_source,
        }
    }

    fn log_tail_since(&self, since: DateTime<Utc>) -> Option<String> {
        let path = self.options.log_file.as_ref()?;
        let meta = std::fs::metadata(path).ok()?;
        let modified: DateTime<Utc> = meta.modified().ok()?.into();
        if modified < since {
            return None; // written before that start: not its words
        }
        let text = std::fs::read(path).ok()?;
        // Only the tail matters; a huge log is not read into lines whole.
        let tail = &text[text.len().saturating_sub(64 * 1024)..];
        let tail = String::from_utf8_lossy(tail);
        let lines: Vec<&str> = tail
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let n = self.options.log_lines.max(1);
        let last = &lines[lines.len().saturating_sub(n)..];
        (!last.is_empty()).then(|| last.join(" | "))
    }

    fn check_crash_loop(&self, ledger: &mut Ledger, now: DateTime<Utc>) -> Option<CrashLoop> {
        let window = chrono::Duration::from_std(self.options.crash_loop_window)
            .unwrap_or(chrono::Duration::MAX);
        let in_window = ledger
            .failures
            .iter()
            .filter(|f| f.started_at >= now - window)
            .count() as u32;
        if in_window < self.options.crash_loop_threshold.max(1)
            || ledger.crash_loop_alerted_at.is_some()
        {
            return None;
        }
        ledger.crash_loop_alerted_at = Some(now);
        Some(CrashLoop {
            service: ledger.service.clone(),
            failed_starts: in_window,
            window_secs: self.options.crash_loop_window.as_secs(),
            last_cause: ledger
                .failures
                .last()
                .map(FailedStart::cause_text)
                .unwrap_or_else(|| UNKNOWN_CAUSE.to_string()),
        })
    }
}

fn push_failure(ledger: &mut Ledger, f: FailedStart) {
    ledger.failures.push(f);
    if ledger.failures.len() > MAX_FAILURES_KEPT {
        let extra = ledger.failures.len() - MAX_FAILURES_KEPT;
        ledger.failures.drain(..extra);
    }
}

/// Service names become file names: letters, digits, `-`, `_`, `.`, `@` only.
pub fn validate_service(service: &str) -> Result<()> {
    let ok = !service.is_empty()
        && service.len() <= 128
        && !service.starts_with('.')
        && service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(CrashDetectError::InvalidService(service.to_owned()))
    }
}

fn human_secs(s: u64) -> String {
    match s {
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
