//! # lookout-config — lookoutd's configuration file
//!
//! One TOML file; every key has a documented default (`docs/configuration.md`), so no file is needed.
//! [`parse`] and [`load`] validate the whole file before anything starts: an unknown or renamed key,
//! a wrong type or an out-of-range value is a [`ConfigError`] whose one-line message names the key
//! path, its line and column, and the nearest valid key. `lookoutd` and `lookout config check` use the
//! same code, so the check and the daemon never disagree.
//!
//! It is **not** where secrets live: keys ending in `_env` name environment variables, and no value
//! read from the environment is ever part of an error.
//!
//! ```
//! let config = lookout_config::parse("[server]\nbind = \"127.0.0.1:9000\"\n", "lookout.toml").unwrap();
//! assert_eq!(config.server.bind, "127.0.0.1:9000");
//! assert_eq!(config.thresholds.stale_processing, std::time::Duration::from_secs(600));
//!
//! let err = lookout_config::parse("[server]\nbnid = \"x\"\n", "lookout.toml").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "lookout.toml: unknown key `server.bnid` at line 2, column 1 — did you mean `bind`?"
//! );
//! ```

// A `ConfigError` is made at most once, at start-up, and ends it: its size costs nothing, and flat
// variants keep it easy to match on.
#![allow(clippy::result_large_err)]

// The modules, each about one thing: the structs, the key table derived from them, where an error
// is and what it says, what to suggest for an unknown key, and the rules between keys.
pub mod duration;
mod error;
mod flow;
mod keys;
mod logs;
mod notify;
mod schema;
mod source;
mod suggest;
mod validate;

use std::path::Path;

use toml::de::DeTable;

pub use error::{At, AtLine, ConfigError, KeyPath, Location};
pub use flow::FlowConfig;
pub use logs::{LogRule, LogSource};
pub use schema::{
    AlertsConfig, BootConfig, BootService, ConcurrencyPolicy, Config, DockerConfig, GatewayConfig,
    IncidentsConfig, IngestConfig, Job, JobAction, JobSchedule, MissedPolicy, NotifyConfig, Quiet,
    ReconcileConfig, Repo, SelfCheckConfig, ServerConfig, Severity, Sink, SinkKind, StatusConfig,
    StoreConfig, Thresholds, Watch, WatchKind,
};

/// A check of values whose syntax another crate owns — the store URL belongs to lookout-store,
/// for one — run after every rule of this crate: the key path of the first bad value and why. Its
/// error is reported like this crate's own, with the value's line and column.
pub type ValueCheck<'a> = &'a dyn Fn(&Config) -> Result<(), (KeyPath, String)>;

/// Reads and parses the file at `path`; a missing file is an error (the caller decides whether a
/// file was named at all).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, &|_| Ok(()))
}

/// [`load`], then `check` (see [`ValueCheck`]).
pub fn load_with(path: &Path, check: ValueCheck<'_>) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        origin: origin.clone(),
        source,
    })?;
    parse_with(&text, &origin, check)
}

/// Parses the text of a configuration file; `origin` (usually the file's path) starts every error.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    parse_with(text, origin, &|_| Ok(()))
}

/// [`parse`], then `check` (see [`ValueCheck`]).
pub fn parse_with(text: &str, origin: &str, check: ValueCheck<'_>) -> Result<Config, ConfigError> {
    let tree = DeTable::parse(text).map_err(|e| error::syntax_error(origin, text, &e))?;
    let src = source::Source {
        origin,
        text,
        tree: tree.get_ref(),
    };
    // Several unknown keys are all named at once; one is left to serde, whose error for it is
    // the same and which also checks its type where the key is known.
    let unknown = src.unknown_keys();
    if unknown.len() > 1 {
        return Err(ConfigError::Several(unknown));
    }
    let config: Config =
        serde_path_to_error::deserialize(toml::de::Deserializer::from(tree.clone()))
            .map_err(|e| src.de_error(e))?;
    validate::validate(&config, &src)?;
    check(&config).map_err(|(path, message)| src.invalid(path, message))?;
    Ok(config)
}
