//! [`WatchedInspector`]: repository reports kept between collections, recomputed only when the
//! file system says a tree may have changed.
//!
//! libgit2's status walks every file of every checkout; on a repository of 5,000 files with three
//! worktrees that is tens of milliseconds per collection, paid every second by a polling dashboard.
//! Here each repository's report is kept, and an inotify watch (through the `notify` crate) on its
//! working directory (which holds `.git`: the index, HEAD, refs, the worktrees' admin directories)
//! and on each linked worktree's directory counts changes. A report is recomputed when that count
//! moved since it was computed, or when it is older than the rescan interval (the safety net for
//! what inotify cannot see: a file system mounted over the tree, a queue overflow is counted as a
//! change everywhere). Changes under the ignored paths (lookoutd's own state directory, whose
//! database is written all the time) do not count.
//!
//! The count is read *before* a report is computed, so a change during the computation makes the
//! next collection recompute; a tree first seen (no watch yet) is computed again at the next
//! collection, once its watch is in place. Where a watch cannot be set (no inotify, the limit of
//! watches reached), that repository is recomputed on every collection, as without this cache,
//! and a warning says why.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use lookout_status_collect::repos::{RepoInspector, RepoReport};
//! use lookout_status_collect::watched::WatchedInspector;
//!
//! struct Counting(std::sync::atomic::AtomicUsize);
//! impl RepoInspector for Counting {
//!     fn inspect(&self, path: &std::path::Path) -> Result<RepoReport, String> {
//!         self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
//!         Ok(RepoReport { path: path.to_path_buf(), head_sha: None, head_commit: None,
//!             branch: None, detached: false, dirty: false, upstream: None,
//!             unpushed_commits: None, worktrees: Default::default() })
//!     }
//! }
//! let dir = tempfile::tempdir().unwrap();
//! let inner = Arc::new(Counting(Default::default()));
//! let watched = WatchedInspector::new(inner.clone(), Duration::from_secs(60), Vec::new());
//! for _ in 0..5 {
//!     watched.inspect(dir.path()).unwrap();
//! }
//! // Once to learn the tree, once more with its watch in place; then kept while nothing changes.
//! assert_eq!(inner.0.load(std::sync::atomic::Ordering::SeqCst), 2);
//! ```

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use crate::repos::{RepoInspector, RepoReport};

/// A [`RepoInspector`] that keeps reports until the file system says they may be stale.
pub struct WatchedInspector {
    inner: Arc<dyn RepoInspector>,
    rescan_every: Duration,
    routes: Arc<Routes>,
    /// `None` when no watcher could be made: every inspection then goes to `inner`.
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    slots: Mutex<HashMap<PathBuf, Arc<Slot>>>,
}

/// Where the watcher's events go: each watched root's change counter.
struct Routes {
    roots: RwLock<Vec<(PathBuf, Arc<AtomicU64>)>>,
    ignore: Vec<PathBuf>,
}

impl Routes {
    fn changed(&self, paths: &[PathBuf]) {
        let roots = self.roots.read().unwrap_or_else(|p| p.into_inner());
        for path in paths {
            if self.ignore.iter().any(|i| path.starts_with(i)) {
                continue;
            }
            for (root, count) in roots.iter() {
                if path.starts_with(root) {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn all_changed(&self) {
        for (_, count) in self.roots.read().unwrap_or_else(|p| p.into_inner()).iter() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// One repository (as asked for): its change count, its kept report and what is watched for it.
#[derive(Default)]
struct Slot {
    changes: Arc<AtomicU64>,
    kept: Mutex<Option<Kept>>,
    watched: Mutex<HashSet<PathBuf>>,
    /// A watch could not be set: never keep its report.
    unwatchable: std::sync::atomic::AtomicBool,
}

struct Kept {
    report: Result<RepoReport, String>,
    at: Instant,
    /// The change count read before it was computed; `None`: compute again next time.
    seen: Option<u64>,
}

impl WatchedInspector {
    /// Keeps `inner`'s reports, recomputing one when its trees changed or every `rescan_every`;
    /// changes under `ignore` (absolute paths; lookoutd's state directory) do not count.
    pub fn new(
        inner: Arc<dyn RepoInspector>,
        rescan_every: Duration,
        ignore: Vec<PathBuf>,
    ) -> Self {
        let routes = Arc::new(Routes {
            roots: RwLock::new(Vec::new()),
            ignore: ignore
                .iter()
                .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
                .collect(),
        });
        let events = routes.clone();
        let watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(e) if e.need_rescan() => events.all_changed(),
                // Opening and reading (libgit2's own status walk among them) change nothing.
                Ok(e) if matches!(e.kind, notify::EventKind::Access(_)) => {}
                Ok(e) => events.changed(&e.paths),
                // An error from the watcher (a lost event queue): anything may have changed.
                Err(_) => events.all_changed(),
            });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "no file-system watcher: repositories are read on every collection");
                None
            }
        };
        WatchedInspector {
            inner,
            rescan_every,
            routes,
            watcher: Mutex::new(watcher),
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, path: &Path) -> Arc<Slot> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(path.to_path_buf())
            .or_default()
            .clone()
    }

    /// Watches `roots` for `slot` where not yet watched; returns whether a watch was added.
    fn watch(&self, slot: &Slot, roots: impl IntoIterator<Item = PathBuf>) -> bool {
        let mut added = false;
        let mut watched = slot.watched.lock().unwrap_or_else(|p| p.into_inner());
        let mut watcher = self.watcher.lock().unwrap_or_else(|p| p.into_inner());
        let Some(w) = watcher.as_mut() else {
            slot.unwatchable.store(true, Ordering::SeqCst);
            return false;
        };
        for root in roots {
            let Ok(root) = std::fs::canonicalize(&root) else {
                // A worktree whose directory is gone: nothing to watch; its admin directory
                // under the repository's `.git` is watched with the repository.
                continue;
            };
            if watched.contains(&root) {
                continue;
            }
            // Registered before the watch, so no event of the new watch is lost.
            self.routes
                .roots
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .push((root.clone(), slot.changes.clone()));
            match w.watch(&root, RecursiveMode::Recursive) {
                Ok(()) => {
                    watched.insert(root);
                    added = true;
                }
                Err(e) => {
                    tracing::warn!(path = %root.display(), error = %e,
                        "cannot watch a repository tree: it is read on every collection");
                    slot.unwatchable.store(true, Ordering::SeqCst);
                }
            }
        }
        added
    }
}

impl RepoInspector for WatchedInspector {
    fn inspect(&self, path: &Path) -> Result<RepoReport, String> {
        let slot = self.slot(path);
        // Held while computing: a second section asking for the same repository waits for this
        // report instead of walking the tree again.
        let mut kept = slot.kept.lock().unwrap_or_else(|p| p.into_inner());
        let now_count = slot.changes.load(Ordering::SeqCst);
        if let Some(k) = kept.as_ref()
            && k.seen == Some(now_count)
            && k.at.elapsed() < self.rescan_every
            && !slot.unwatchable.load(Ordering::SeqCst)
        {
            return k.report.clone();
        }
        // The asked path first, so the first computation is already covered by a watch.
        let first = self.watch(&slot, [path.to_path_buf()]);
        let seen = slot.changes.load(Ordering::SeqCst);
        let report = self.inner.inspect(path);
        let mut roots = Vec::new();
        if let Ok(r) = &report {
            roots.push(r.path.clone());
            roots.extend(r.worktrees.values().map(|w| w.path.clone()));
        }
        let added = self.watch(&slot, roots);
        *kept = Some(Kept {
            report: report.clone(),
            at: Instant::now(),
            // A watch set during this computation may have missed a change made before it.
            seen: (!first && !added).then_some(seen),
        });
        report
    }
}

#[cfg(test)]
#[path = "watched_tests.rs"]
mod tests;
