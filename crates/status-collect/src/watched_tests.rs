//! The watched cache over real repositories (libgit2 underneath) and real inotify events.

use super::*;
use crate::repos::Git2Inspector;
use std::sync::atomic::AtomicUsize;

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// libgit2, counting its inspections.
struct Counting(AtomicUsize);

impl RepoInspector for Counting {
    fn inspect(&self, path: &Path) -> Result<RepoReport, String> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Git2Inspector.inspect(path)
    }
}

/// A repository with one commit and a linked worktree `wt` beside it.
fn repo(root: &Path, name: &str) -> (PathBuf, PathBuf) {
    let host = root.join(name);
    std::fs::create_dir_all(&host).unwrap();
    git(&host, &["init", "-q", "-b", "main"]);
    std::fs::write(host.join("a.txt"), "a\n").unwrap();
    git(&host, &["add", "a.txt"]);
    git(&host, &["commit", "-q", "-m", "first"]);
    let wt = root.join(format!("{name}-wt"));
    git(
        &host,
        &["worktree", "add", "-q", "-b", "wt", wt.to_str().unwrap()],
    );
    (host, wt)
}

fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what} not seen within 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn setup(ignore: Vec<PathBuf>) -> (tempfile::TempDir, Arc<Counting>, WatchedInspector) {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(Counting(AtomicUsize::new(0)));
    let w = WatchedInspector::new(inner.clone(), Duration::from_secs(3600), ignore);
    (dir, inner, w)
}

fn count(c: &Counting) -> usize {
    c.0.load(Ordering::SeqCst)
}

#[test]
fn an_unchanged_repository_is_read_twice_then_kept() {
    let (dir, inner, w) = setup(Vec::new());
    let (host, _) = repo(dir.path(), "host");
    let first = w.inspect(&host).unwrap();
    for _ in 0..20 {
        assert_eq!(w.inspect(&host).unwrap(), first);
    }
    assert_eq!(count(&inner), 2);
}

#[test]
fn a_change_in_a_worktree_a_commit_and_a_new_worktree_are_each_seen() {
    let (dir, inner, w) = setup(Vec::new());
    let (host, wt) = repo(dir.path(), "host");
    w.inspect(&host).unwrap();
    w.inspect(&host).unwrap();
    assert!(!w.inspect(&host).unwrap().worktrees["host-wt"].dirty);
    let before = count(&inner);

    // A tracked file in the linked worktree.
    std::fs::write(wt.join("a.txt"), "changed\n").unwrap();
    until("the worktree's change", || {
        w.inspect(&host).unwrap().worktrees["host-wt"].dirty
    });
    assert!(count(&inner) > before);

    // A commit in the main repository: the index, HEAD's ref.
    let old = w.inspect(&host).unwrap().head_sha;
    std::fs::write(host.join("b.txt"), "b\n").unwrap();
    git(&host, &["add", "b.txt"]);
    git(&host, &["commit", "-q", "-m", "second"]);
    until("the new commit", || {
        w.inspect(&host).unwrap().head_sha != old
    });

    // A worktree added later is reported, and then watched too.
    let late = dir.path().join("late");
    git(
        &host,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "late",
            late.to_str().unwrap(),
        ],
    );
    until("the new worktree", || {
        w.inspect(&host).unwrap().worktrees.contains_key("late")
    });
    w.inspect(&host).unwrap();
    std::fs::write(late.join("a.txt"), "late change\n").unwrap();
    until("a change in the new worktree", || {
        w.inspect(&host).unwrap().worktrees["late"].dirty
    });
}

#[test]
fn writes_under_an_ignored_path_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("host/.lookout");
    let inner = Arc::new(Counting(AtomicUsize::new(0)));
    let w = WatchedInspector::new(
        inner.clone(),
        Duration::from_secs(3600),
        vec![state.clone()],
    );
    let (host, _) = repo(dir.path(), "host");
    let (other, _) = repo(dir.path(), "other");
    std::fs::create_dir_all(&state).unwrap();
    for r in [&host, &other] {
        w.inspect(r).unwrap();
        w.inspect(r).unwrap();
    }
    let host_changes = w.slot(&host).changes.clone();
    let other_changes = w.slot(&other).changes.clone();
    let (h0, o0) = (
        host_changes.load(Ordering::SeqCst),
        other_changes.load(Ordering::SeqCst),
    );
    std::fs::write(state.join("lookout.db"), "written all the time").unwrap();
    // One inotify queue delivers in order: once the later write to `other` is counted, the
    // ignored one has been seen too.
    std::fs::write(other.join("a.txt"), "x\n").unwrap();
    until("the write to the other repository", || {
        other_changes.load(Ordering::SeqCst) > o0
    });
    assert_eq!(host_changes.load(Ordering::SeqCst), h0);
    let before = count(&inner);
    w.inspect(&host).unwrap();
    assert_eq!(count(&inner), before, "the kept report is served");
}

#[test]
fn the_rescan_interval_is_the_safety_net() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(Counting(AtomicUsize::new(0)));
    let w = WatchedInspector::new(inner.clone(), Duration::ZERO, Vec::new());
    let (host, _) = repo(dir.path(), "host");
    for _ in 0..5 {
        w.inspect(&host).unwrap();
    }
    assert_eq!(count(&inner), 5, "with no interval every collection reads");
}

#[test]
fn an_error_is_kept_like_a_report_and_a_repository_created_later_is_found() {
    let (dir, inner, w) = setup(Vec::new());
    let path = dir.path().join("later");
    std::fs::create_dir_all(&path).unwrap();
    assert!(w.inspect(&path).is_err());
    assert!(w.inspect(&path).is_err());
    let n = count(&inner);
    assert!(w.inspect(&path).is_err());
    assert_eq!(count(&inner), n);
    git(&path, &["init", "-q", "-b", "main"]);
    until("the new repository", || w.inspect(&path).is_ok());
}
