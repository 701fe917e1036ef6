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

mod config;
pub mod duration;

pub use config::*;
