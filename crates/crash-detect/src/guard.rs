//! `BootGuard`: the in-process face of the boot book, for hosts written in Rust (and lookoutd).

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use chrono::Utc;

use crate::Result;
use crate::boot::{BeginOutcome, BootBook, BootOptions, BootReport, CauseSource};

/// Where the panic hook writes: the book and the service of the guard in this process.
static PANIC_TARGET: Mutex<Option<(BootBook, String)>> = Mutex::new(None);
static HOOK_INSTALLED: OnceLock<()> = OnceLock::new();

/// A start in progress. [`BootGuard::begin`] leaves the breadcrumb and installs a panic hook that
/// writes the panic message into it; [`BootGuard::fail`] does the same from a fatal-error path;
/// [`BootGuard::ready`] clears it and reports the failed starts before this one.
#[derive(Debug)]
pub struct BootGuard {
    book: BootBook,
    service: String,
}

impl BootGuard {
    /// Begins a start of `service` with the default options.
    pub fn begin(
        state_dir: &Path,
        service: &str,
        version: &str,
    ) -> Result<(BootGuard, BeginOutcome)> {
        Self::begin_with(state_dir, service, version, BootOptions::default())
    }

    /// Begins a start of `service` with `options`.
    pub fn begin_with(
        state_dir: &Path,
        service: &str,
        version: &str,
        options: BootOptions,
    ) -> Result<(BootGuard, BeginOutcome)> {
        let book = BootBook::new(state_dir, options);
        let outcome = book.begin(service, Some(std::process::id()), Some(version), Utc::now())?;
        *PANIC_TARGET.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((book.clone(), service.to_owned()));
        install_panic_hook();
        Ok((
            BootGuard {
                book,
                service: service.to_owned(),
            },
            outcome,
        ))
    }

    /// Writes down why this start is failing, before the process exits.
    pub fn fail(&self, cause: &str) -> Result<()> {
        self.book
            .record_cause(&self.service, cause, CauseSource::Reported)
    }

    /// The service is up: clears the breadcrumb and returns the report of the failed starts before
    /// this one.
    pub fn ready(self) -> Result<BootReport> {
        *PANIC_TARGET.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.book.ready(&self.service, Utc::now())
    }
}

fn install_panic_hook() {
    HOOK_INSTALLED.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // try_lock: a panic while the lock is held must not deadlock the dying process.
            if let Ok(target) = PANIC_TARGET.try_lock()
                && let Some((book, service)) = target.as_ref()
            {
                let msg = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic with a non-string payload".to_owned());
                let cause = match info.location() {
                    Some(l) => format!("panic at {}:{}: {msg}", l.file(), l.line()),
                    None => format!("panic: {msg}"),
                };
                let _ = book.record_cause(service, &cause, CauseSource::Panic);
            }
            previous(info);
        }));
    });
}
