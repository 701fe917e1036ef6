//! Persisted heal state: a small trait and a JSON-file implementation written atomically.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::WatchdogError;
use crate::ladder::HealState;
use crate::target::validate_name;

/// Where heal state lives between runs of lookoutd. Calls are blocking; the supervisor makes them
/// off the async threads.
pub trait HealStateStore: Send + Sync {
    /// The saved state of `target`, if any.
    fn load(&self, target: &str) -> Result<Option<HealState>, WatchdogError>;
    /// Saves the state of `target`, durably, before returning.
    fn save(&self, target: &str, state: &HealState) -> Result<(), WatchdogError>;
    /// Forgets `target` (it was removed from the configuration).
    fn remove(&self, target: &str) -> Result<(), WatchdogError>;
}

/// One JSON file per target in a directory (`<state_dir>/watchdog/<target>.json`), replaced
/// atomically: temp file, fsync, rename, fsync of the directory.
#[derive(Debug, Clone)]
pub struct JsonFileStore {
    dir: PathBuf,
}

impl JsonFileStore {
    /// A store in `dir`, created if missing.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, WatchdogError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| WatchdogError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(JsonFileStore { dir })
    }

    fn path(&self, target: &str) -> Result<PathBuf, WatchdogError> {
        validate_name(target)?;
        Ok(self.dir.join(format!("{target}.json")))
    }
}

impl HealStateStore for JsonFileStore {
    fn load(&self, target: &str) -> Result<Option<HealState>, WatchdogError> {
        let path = self.path(target)?;
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| WatchdogError::CorruptState {
                        path,
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(WatchdogError::Io { path, source }),
        }
    }

    fn save(&self, target: &str, state: &HealState) -> Result<(), WatchdogError> {
        let path = self.path(target)?;
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| WatchdogError::CorruptState {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&path, &bytes).map_err(|source| WatchdogError::Io { path, source })
    }

    fn remove(&self, target: &str) -> Result<(), WatchdogError> {
        let path = self.path(target)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(WatchdogError::Io { path, source }),
        }
    }
}

/// Heal state in memory: for tests, and for hosts that want no persistence.
#[derive(Debug, Default)]
pub struct MemoryStore {
    states: Mutex<HashMap<String, HealState>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl HealStateStore for MemoryStore {
    fn load(&self, target: &str) -> Result<Option<HealState>, WatchdogError> {
        Ok(self.states.lock().unwrap().get(target).cloned())
    }
    fn save(&self, target: &str, state: &HealState) -> Result<(), WatchdogError> {
        self.states
            .lock()
            .unwrap()
            .insert(target.to_owned(), state.clone());
        Ok(())
    }
    fn remove(&self, target: &str) -> Result<(), WatchdogError> {
        self.states.lock().unwrap().remove(target);
        Ok(())
    }
}

pub(crate) use lookout_common::write_atomic;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_store_round_trips_and_rejects_odd_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = JsonFileStore::new(dir.path().join("watchdog")).unwrap();
        assert_eq!(store.load("bridge").unwrap(), None);
        let s = HealState {
            next_tier: 2,
            top_tier_attempts: 1,
            ..HealState::default()
        };
        store.save("bridge", &s).unwrap();
        assert_eq!(store.load("bridge").unwrap(), Some(s));
        assert!(store.save("../evil", &HealState::default()).is_err());
        store.remove("bridge").unwrap();
        assert_eq!(store.load("bridge").unwrap(), None);
        // No temp file is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path().join("watchdog"))
            .unwrap()
            .collect();
        assert!(left.is_empty());
    }
}
