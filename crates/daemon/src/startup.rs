//! Getting from flags to a listening socket and an open store, leaving nothing half-created when a
//! step fails.

use std::path::{Path, PathBuf};

use lookout_crash_detect::{BeginOutcome, BootGuard, CrashDetectError};
use lookout_store::{Store, StoreError, StoreUrl};
use tokio::net::TcpListener;

/// What startup needs.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) state_dir: PathBuf,
    pub(crate) bind: String,
    pub(crate) store_url: String,
    pub(crate) token: Option<String>,
    /// lookoutd's own boot options (`[boot]`).
    pub(crate) boot_options: lookout_crash_detect::BootOptions,
}

/// What startup gives the daemon.
pub(crate) struct Started {
    pub(crate) listener: TcpListener,
    pub(crate) store: Store,
    pub(crate) state_dir: PathBuf,
    /// lookoutd's own boot breadcrumb; `ready()` once serving.
    pub(crate) guard: BootGuard,
    /// What lookoutd's own start found (failed starts before it, a crash loop).
    pub(crate) begin: BeginOutcome,
}

/// Why lookoutd could not start (or stopped serving).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// `--bind` is not an address and port.
    #[error("--bind `{addr}` is not an ADDR:PORT ({reason}); e.g. --bind 127.0.0.1:8484")]
    BadBind {
        /// What was given.
        addr: String,
        /// Why it is not an address.
        reason: String,
    },
    /// The socket could not be bound.
    #[error("cannot listen on {addr}: {source}{hint}", hint = listen_hint(source))]
    Listen {
        /// The address.
        addr: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The state directory could not be made or used.
    #[error("state directory {}: {what}: {source}", path.display())]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// What the system said.
        source: std::io::Error,
    },
    /// A non-loopback address with no bearer token.
    #[error(
        "refusing to serve /api and /debug on {addr} without a bearer token: set LOOKOUT_TOKEN, or bind to 127.0.0.1 / ::1"
    )]
    NoToken {
        /// The address.
        addr: String,
    },
    /// The configuration file is invalid (boxed: it is large, and it ends the start anyway).
    #[error("{0}")]
    Config(Box<lookout_config::ConfigError>),
    /// A sink cannot be built (a missing `*_env` variable).
    #[error("{0}")]
    Sinks(String),
    /// A job or quiet window has a bad schedule.
    #[error("{0}")]
    Schedule(String),
    /// The store cannot be opened.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// lookoutd's own boot record cannot be kept.
    #[error("{0}")]
    Boot(#[from] CrashDetectError),
    /// Serving failed.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

fn listen_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            " — another process holds this port (another lookoutd?); stop it or choose another with --bind"
        }
        std::io::ErrorKind::PermissionDenied => {
            " — ports below 1024 need privileges; choose another with --bind"
        }
        std::io::ErrorKind::AddrNotAvailable => " — this machine has no such address",
        _ => "",
    }
}

impl From<lookout_config::ConfigError> for StartupError {
    fn from(e: lookout_config::ConfigError) -> Self {
        StartupError::Config(Box::new(e))
    }
}

impl StartupError {
    /// 2 for what the operator typed wrong, 1 for what the machine refused.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartupError::BadBind { .. }
            | StartupError::NoToken { .. }
            | StartupError::Config(_)
            | StartupError::Sinks(_)
            | StartupError::Schedule(_)
            | StartupError::Store(StoreError::InvalidUrl { .. }) => 2,
            _ => 1,
        }
    }
}

/// `$XDG_STATE_HOME/lookout` when that is set, else `./.lookout`.
pub fn default_state_dir() -> PathBuf {
    match std::env::var_os("XDG_STATE_HOME") {
        Some(x) if !x.is_empty() => PathBuf::from(x).join("lookout"),
        _ => PathBuf::from(".lookout"),
    }
}

/// Parses, binds, prepares and opens — in that order, so that the steps without side effects fail
/// first, and undoes the directory and database files it created when a later step fails.
pub(crate) async fn start(settings: &Settings) -> Result<Started, StartupError> {
    let url = StoreUrl::parse(&settings.store_url)?;
    let addr: std::net::SocketAddr =
        settings
            .bind
            .parse()
            .map_err(|e: std::net::AddrParseError| StartupError::BadBind {
                addr: settings.bind.clone(),
                reason: e.to_string(),
            })?;
    if settings.token.is_none() && !addr.ip().is_loopback() {
        return Err(StartupError::NoToken {
            addr: settings.bind.clone(),
        });
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Listen {
            addr: settings.bind.clone(),
            source,
        })?;

    let mut undo = Undo::default();
    let mut guard: Option<BootGuard> = None;
    let result: Result<(Store, BeginOutcome), StartupError> = async {
        prepare_state_dir(&settings.state_dir, &mut undo)?;
        let created_state_dir = !undo.dirs.is_empty();
        // The breadcrumb goes down before the store opens: a store that cannot open is exactly
        // the failure the next start must be able to name.
        let (g, begin) = BootGuard::begin_with(
            &settings.state_dir,
            SERVICE,
            env!("CARGO_PKG_VERSION"),
            settings.boot_options.clone(),
        )?;
        if created_state_dir {
            undo.boot_file = Some(
                settings
                    .state_dir
                    .join("boot")
                    .join(format!("{SERVICE}.json")),
            );
        }
        guard = Some(g);
        let url = url.resolve_relative_to(&settings.state_dir);
        if let StoreUrl::Sqlite { path } = &url {
            if !path.exists() {
                undo.files_of_new_db = Some(path.clone());
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                prepare_state_dir(parent, &mut undo)?;
            }
        }
        let store = Store::open_url(&url).await?;
        Ok((store, begin))
    }
    .await;
    match result {
        Ok((store, begin)) => Ok(Started {
            listener,
            store,
            state_dir: settings.state_dir.clone(),
            guard: guard.expect("guard set before the store opens"),
            begin,
        }),
        Err(e) => {
            if undo.boot_file.is_none()
                && let Some(g) = &guard
            {
                // The state dir was there before: keep the breadcrumb, with the cause, for the next start.
                let _ = g.fail(&e.to_string());
            }
            undo.run();
            Err(e)
        }
    }
}

/// Creates the directory (and missing parents) and proves it writable with a probe file.
fn prepare_state_dir(dir: &Path, undo: &mut Undo) -> Result<(), StartupError> {
    let err = |what, source| StartupError::StateDir {
        path: dir.to_path_buf(),
        what,
        source,
    };
    // Record which ancestors are missing, so a failure removes exactly those.
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .map(Path::to_path_buf)
        .collect();
    std::fs::create_dir_all(dir).map_err(|e| err("cannot create it", e))?;
    // Deepest last, so removal goes deepest first.
    undo.dirs.extend(missing.into_iter().rev());
    if !dir.is_dir() {
        return Err(err(
            "is not a directory",
            std::io::Error::from(std::io::ErrorKind::NotADirectory),
        ));
    }
    let probe = dir.join(format!(".lookoutd-write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| err("is not writable", e))?;
    let _ = std::fs::remove_file(&probe);
    // The default state directory is `./.lookout`, often inside the very repository lookoutd
    // watches: like a tool's cache, it ignores itself, so it never makes that repository dirty.
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, STATE_DIR_GITIGNORE)
            .map_err(|e| err("cannot write its .gitignore", e))?;
        undo.files.push(ignore);
    }
    Ok(())
}

/// The state directory's own `.gitignore`: everything in it.
const STATE_DIR_GITIGNORE: &str =
    "# Created by lookoutd: its state directory is never part of a repository.\n*\n";

/// lookoutd's own service name in its boot records.
pub(crate) const SERVICE: &str = "lookoutd";

/// What startup created, to remove if it cannot finish.
#[derive(Default)]
struct Undo {
    dirs: Vec<PathBuf>,
    files_of_new_db: Option<PathBuf>,
    /// lookoutd's own boot file, when the state dir is new (a first start that fails leaves nothing).
    boot_file: Option<PathBuf>,
    /// Other files it wrote (the state directory's `.gitignore`).
    files: Vec<PathBuf>,
}

impl Undo {
    fn run(self) {
        if let Some(f) = &self.boot_file {
            let _ = std::fs::remove_file(f);
            if let Some(dir) = f.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        if let Some(db) = self.files_of_new_db {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut p = db.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(p));
            }
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        for dir in self.dirs.iter().rev() {
            // Only if empty: never delete anything that was not ours.
            let _ = std::fs::remove_dir(dir);
        }
    }
}
