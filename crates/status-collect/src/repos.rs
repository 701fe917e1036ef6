//! `repos` and `deploy`: git repositories and their linked worktrees, through [`RepoInspector`].
//!
//! Inspection is blocking work (libgit2 stats the working tree), so the sections run it on tokio's
//! blocking pool, never on the async threads. [`Git2Inspector`] (feature `git`) is the real one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use crate::{CollectError, Collected, Collector, Finding};

/// One repository as `/status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoReport {
    /// The repository's working directory.
    pub path: PathBuf,
    /// HEAD's commit id (`None` in a repository with no commit yet).
    pub head_sha: Option<String>,
    /// HEAD's commit message, first line.
    pub head_commit: Option<String>,
    /// The branch HEAD is on (`None` when detached).
    pub branch: Option<String>,
    /// HEAD points at a commit, not a branch.
    pub detached: bool,
    /// Changes not committed (untracked files count; ignored ones do not).
    pub dirty: bool,
    /// The branch's upstream (`origin/main`), or the remote branch it is compared with when it has
    /// none configured.
    pub upstream: Option<String>,
    /// Commits on HEAD not on its upstream (or, with none configured, on the remote's branch of
    /// the same name or its default branch); `None` when there is neither.
    pub unpushed_commits: Option<usize>,
    /// Linked worktrees by name.
    pub worktrees: BTreeMap<String, WorktreeReport>,
}

/// One linked worktree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorktreeReport {
    /// Its working directory.
    pub path: PathBuf,
    /// The branch it has checked out (`None` when detached).
    pub branch: Option<String>,
    /// Its HEAD commit.
    pub sha: Option<String>,
    /// Changes not committed.
    pub dirty: bool,
    /// Commits it has that the base branch (the main repository's HEAD) has not.
    pub ahead: Option<usize>,
    /// Commits the base branch has that it has not.
    pub behind: Option<usize>,
    /// A merge or rebase stopped half-way: `MERGE_HEAD` or `REBASE_HEAD` in its own git dir.
    pub conflict: bool,
    /// HEAD points at a commit, not a branch.
    pub detached: bool,
    /// Why it could not be read (its directory is gone, say); the other fields are then empty.
    pub error: Option<String>,
}

/// Reads a repository and its worktrees. Blocking: called on the blocking pool.
pub trait RepoInspector: Send + Sync {
    /// Inspects the repository at (or containing) `path`.
    fn inspect(&self, path: &Path) -> Result<RepoReport, String>;
}

/// One repository to report, with its name in `/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoTarget {
    /// The name in `/status` (the directory's name by default).
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
}

impl RepoTarget {
    /// A repository named after its directory (`.` is named after the current directory).
    pub fn new(path: impl Into<PathBuf>, name: Option<String>) -> Self {
        let path = path.into();
        let name = name.unwrap_or_else(|| {
            std::fs::canonicalize(&path)
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| path.display().to_string())
        });
        RepoTarget { name, path }
    }
}

async fn inspect_all(
    inspector: &Arc<dyn RepoInspector>,
    repos: &[RepoTarget],
) -> Vec<(String, Result<RepoReport, String>)> {
    let mut set = tokio::task::JoinSet::new();
    for (i, r) in repos.iter().enumerate() {
        let inspector = inspector.clone();
        let path = r.path.clone();
        set.spawn_blocking(move || (i, inspector.inspect(&path)));
    }
    let mut out: Vec<Option<Result<RepoReport, String>>> = vec![None; repos.len()];
    while let Some(j) = set.join_next().await {
        if let Ok((i, r)) = j {
            out[i] = Some(r);
        }
    }
    repos
        .iter()
        .zip(out)
        .map(|(r, res)| {
            (
                r.name.clone(),
                res.unwrap_or_else(|| Err("inspection panicked".to_owned())),
            )
        })
        .collect()
}

/// `repos`: each configured repository and its worktrees.
///
/// Verdict: a worktree with a conflict **fails** ("worktree code-improver has a conflict"); a
/// repository that cannot be read **fails**; a dirty main repository, a worktree whose directory is
/// gone **warn**. Ahead/behind and unpushed commits are data, not findings: diverging is what
/// worktrees are for.
pub struct ReposSection {
    /// The reader.
    pub inspector: Arc<dyn RepoInspector>,
    /// The repositories.
    pub repos: Vec<RepoTarget>,
}

#[async_trait::async_trait]
impl Collector for ReposSection {
    fn name(&self) -> &'static str {
        "repos"
    }

    async fn collect(&self) -> Result<Collected, CollectError> {
        let mut data = serde_json::Map::new();
        let mut findings = Vec::new();
        for (name, r) in inspect_all(&self.inspector, &self.repos).await {
            match r {
                Ok(rep) => {
                    if rep.dirty {
                        findings.push(Finding::warn(format!(
                            "repo {name} has uncommitted changes"
                        )));
                    }
                    for (wt, w) in &rep.worktrees {
                        if w.conflict {
                            findings.push(Finding::fail(format!("worktree {wt} has a conflict")));
                        }
                        if let Some(e) = &w.error {
                            findings.push(Finding::warn(format!("worktree {wt}: {e}")));
                        }
                    }
                    data.insert(name, serde_json::to_value(&rep).map_err(|e| e.to_string())?);
                }
                Err(e) => {
                    findings.push(Finding::fail(format!("repo {name} unreadable: {e}")));
                    data.insert(name, json!({"error": e}));
                }
            }
        }
        Ok(Collected {
            data: serde_json::Value::Object(data),
            findings,
        })
    }
}

/// Where the last deploy is known from (the latest `deploy` event, in the daemon).
#[async_trait::async_trait]
pub trait DeploySource: Send + Sync {
    /// The last deploy: when, and which commit.
    async fn last_deploy(&self) -> Result<Option<LastDeploy>, String>;
}

/// The last deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastDeploy {
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Which commit.
    pub sha: String,
}

/// `deploy`: what the host's repository runs (HEAD, message, dirty, unpushed) and the last deploy.
///
/// Verdict: HEAD differs from the last deploy's commit **warns** ("deployed abc1234 but HEAD is
/// def5678"): the host may be running code that is not what the repository holds.
pub struct DeploySection {
    /// The reader.
    pub inspector: Arc<dyn RepoInspector>,
    /// The host's repository (the first of `[[repos]]`).
    pub repo: RepoTarget,
    /// The last deploy.
    pub deploys: Arc<dyn DeploySource>,
}

#[async_trait::async_trait]
impl Collector for DeploySection {
    fn name(&self) -> &'static str {
        "deploy"
    }

    async fn collect(&self) -> Result<Collected, CollectError> {
        let inspector = self.inspector.clone();
        let path = self.repo.path.clone();
        let (rep, last) = tokio::join!(
            async move {
                tokio::task::spawn_blocking(move || inspector.inspect(&path))
                    .await
                    .map_err(|e| e.to_string())?
            },
            self.deploys.last_deploy()
        );
        let rep = rep?;
        let last = last?;
        let mut c = Collected::new(json!({
            "repo": self.repo.name,
            "head_sha": rep.head_sha,
            "head_commit": rep.head_commit,
            "branch": rep.branch,
            "dirty": rep.dirty,
            "unpushed_commits": rep.unpushed_commits,
            "last_deploy_at": last.as_ref().map(|d| d.at.to_rfc3339()),
            "last_deploy_sha": last.as_ref().map(|d| d.sha.clone()),
        }));
        if let (Some(d), Some(head)) = (&last, &rep.head_sha)
            && !head.starts_with(&d.sha)
            && !d.sha.starts_with(head.as_str())
        {
            c = c.with(Finding::warn(format!(
                "deployed {} but HEAD of {} is {}",
                short(&d.sha),
                self.repo.name,
                short(head)
            )));
        }
        Ok(c)
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

#[cfg(feature = "git")]
pub use git::Git2Inspector;

#[cfg(feature = "git")]
mod git {
    use std::collections::BTreeMap;
    use std::path::Path;

    use git2::{BranchType, Repository, StatusOptions};

    use super::{RepoInspector, RepoReport, WorktreeReport};

    /// The real [`RepoInspector`]: libgit2, no `git` process. Each call opens the repository afresh
    /// (≈0.1 ms), so it always sees the current state and holds no file descriptors between calls.
    #[derive(Debug, Default, Clone, Copy)]
    pub struct Git2Inspector;

    fn err(e: git2::Error) -> String {
        e.message().to_owned()
    }

    fn dirty(repo: &Repository) -> Result<bool, String> {
        let mut opts = StatusOptions::new();
        opts.include_untracked(true)
            .recurse_untracked_dirs(false)
            .include_ignored(false)
            .exclude_submodules(true);
        Ok(!repo.statuses(Some(&mut opts)).map_err(err)?.is_empty())
    }

    /// HEAD's oid, branch name and detached flag; an unborn HEAD gives no oid.
    fn head(repo: &Repository) -> (Option<git2::Oid>, Option<String>, bool) {
        let detached = repo.head_detached().unwrap_or(false);
        match repo.head() {
            Ok(h) => {
                let branch = if detached {
                    None
                } else {
                    h.shorthand().ok().map(str::to_owned)
                };
                (h.target(), branch, detached)
            }
            Err(_) => (None, None, detached),
        }
    }

    fn conflict(wt_repo: &Repository) -> bool {
        // The worktree's own git dir (`.git/worktrees/<name>/`), as the seed's host checked it.
        let gd = wt_repo.path();
        gd.join("MERGE_HEAD").exists() || gd.join("REBASE_HEAD").exists()
    }

    /// The remote-tracking branch a branch with no upstream is compared with: `origin/<branch>`,
    /// else the remote's default (`origin/HEAD`), else `origin/main` or `origin/master`.
    fn remote_base(repo: &Repository, branch: &str) -> Option<(String, git2::Oid)> {
        let by_name = |name: &str| {
            repo.find_reference(&format!("refs/remotes/{name}"))
                .ok()
                .and_then(|r| r.resolve().ok())
                .and_then(|r| r.target())
                .map(|oid| (name.to_owned(), oid))
        };
        by_name(&format!("origin/{branch}"))
            .or_else(|| {
                let head = repo.find_reference("refs/remotes/origin/HEAD").ok()?;
                let target = head
                    .symbolic_target()
                    .ok()
                    .flatten()?
                    .strip_prefix("refs/remotes/")?
                    .to_owned();
                by_name(&target)
            })
            .or_else(|| by_name("origin/main"))
            .or_else(|| by_name("origin/master"))
    }

    impl RepoInspector for Git2Inspector {
        fn inspect(&self, path: &Path) -> Result<RepoReport, String> {
            let mut repo = Repository::discover(path).map_err(err)?;
            if repo.is_worktree() {
                // Asked about a linked worktree: report its main repository.
                let common = repo.commondir().to_path_buf();
                repo = Repository::open(&common).map_err(err)?;
            }
            let workdir = repo
                .workdir()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| repo.path().to_path_buf());
            let (oid, branch, detached) = head(&repo);
            let head_commit = oid
                .and_then(|o| repo.find_commit(o).ok())
                .and_then(|c| c.summary().ok().flatten().map(str::to_owned));
            let (upstream, unpushed_commits) = match (&branch, oid) {
                (Some(b), Some(local)) => match repo
                    .find_branch(b, BranchType::Local)
                    .and_then(|br| br.upstream())
                {
                    Ok(up) => {
                        let name = up.name().ok().flatten().map(str::to_owned);
                        let ahead = up
                            .get()
                            .target()
                            .and_then(|u| repo.graph_ahead_behind(local, u).ok())
                            .map(|(a, _)| a);
                        (name, ahead)
                    }
                    // No upstream configured (a deploy script that pushes without `-u`): count
                    // against the remote's branch of the same name, else its default branch, as
                    // the seed's host counted against `origin/main`.
                    Err(_) => match remote_base(&repo, b) {
                        Some((name, base)) => (
                            Some(name),
                            repo.graph_ahead_behind(local, base).ok().map(|(a, _)| a),
                        ),
                        None => (None, None),
                    },
                },
                _ => (None, None),
            };
            let is_dirty = if repo.is_bare() { false } else { dirty(&repo)? };
            let names: Vec<String> = repo
                .worktrees()
                .map_err(err)?
                .iter()
                .flatten()
                .flatten()
                .map(str::to_owned)
                .collect();
            // Each worktree's status walks its whole checkout: in parallel, each thread with its
            // own handle on the repository (a `Repository` is not shared between threads).
            let common = repo.path().to_path_buf();
            let worktrees: BTreeMap<String, WorktreeReport> = std::thread::scope(|s| {
                let running: Vec<_> = names
                    .iter()
                    .map(|name| {
                        let common = &common;
                        s.spawn(move || match Repository::open(common) {
                            Ok(repo) => worktree(&repo, name, oid),
                            Err(e) => WorktreeReport::failed(err(e)),
                        })
                    })
                    .collect();
                names
                    .iter()
                    .cloned()
                    .zip(running.into_iter().map(|h| {
                        h.join().unwrap_or_else(|_| {
                            WorktreeReport::failed("reading it panicked".into())
                        })
                    }))
                    .collect()
            });
            Ok(RepoReport {
                path: workdir,
                head_sha: oid.map(|o| o.to_string()),
                head_commit,
                branch,
                detached,
                dirty: is_dirty,
                upstream,
                unpushed_commits,
                worktrees,
            })
        }
    }

    impl WorktreeReport {
        fn failed(error: String) -> Self {
            WorktreeReport {
                path: Default::default(),
                branch: None,
                sha: None,
                dirty: false,
                ahead: None,
                behind: None,
                conflict: false,
                detached: false,
                error: Some(error),
            }
        }
    }

    fn worktree(repo: &Repository, name: &str, base: Option<git2::Oid>) -> WorktreeReport {
        let mut r = WorktreeReport::failed(String::new());
        r.error = None;
        let wt = match repo.find_worktree(name) {
            Ok(wt) => wt,
            Err(e) => {
                r.error = Some(err(e));
                return r;
            }
        };
        r.path = wt.path().to_path_buf();
        if wt.validate().is_err() {
            r.error = Some(format!(
                "directory {} is gone (git worktree prune removes it)",
                wt.path().display()
            ));
            return r;
        }
        let wt_repo = match Repository::open_from_worktree(&wt) {
            Ok(x) => x,
            Err(e) => {
                r.error = Some(err(e));
                return r;
            }
        };
        let (oid, branch, detached) = head(&wt_repo);
        r.sha = oid.map(|o| o.to_string());
        r.branch = branch;
        r.detached = detached;
        r.conflict = conflict(&wt_repo);
        match dirty(&wt_repo) {
            Ok(d) => r.dirty = d,
            Err(e) => r.error = Some(e),
        }
        if let (Some(o), Some(b)) = (oid, base)
            && let Ok((a, bh)) = repo.graph_ahead_behind(o, b)
        {
            r.ahead = Some(a);
            r.behind = Some(bh);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Result<RepoReport, String>);
    impl RepoInspector for Fixed {
        fn inspect(&self, _: &Path) -> Result<RepoReport, String> {
            self.0.clone()
        }
    }

    fn report() -> RepoReport {
        RepoReport {
            path: "/r".into(),
            head_sha: Some("abcdef1234567890".into()),
            head_commit: Some("fix".into()),
            branch: Some("main".into()),
            detached: false,
            dirty: false,
            upstream: None,
            unpushed_commits: None,
            worktrees: BTreeMap::new(),
        }
    }

    fn wt(conflict: bool, error: Option<&str>) -> WorktreeReport {
        WorktreeReport {
            path: "/w".into(),
            branch: Some("b".into()),
            sha: None,
            dirty: true,
            ahead: Some(2),
            behind: Some(0),
            conflict,
            detached: false,
            error: error.map(str::to_owned),
        }
    }

    fn section(r: Result<RepoReport, String>) -> ReposSection {
        ReposSection {
            inspector: Arc::new(Fixed(r)),
            repos: vec![RepoTarget {
                name: "host".into(),
                path: "/r".into(),
            }],
        }
    }

    #[tokio::test]
    async fn a_clean_repo_has_no_finding() {
        let c = section(Ok(report())).collect().await.unwrap();
        assert!(c.findings.is_empty());
        assert_eq!(c.data["host"]["head_sha"], "abcdef1234567890");
        assert_eq!(c.data["host"]["unpushed_commits"], serde_json::Value::Null);
    }

    #[tokio::test]
    async fn a_conflict_fails_and_a_lost_worktree_warns() {
        let mut r = report();
        r.dirty = true;
        r.worktrees.insert("code-improver".into(), wt(true, None));
        r.worktrees
            .insert("gone".into(), wt(false, Some("directory /w is gone")));
        let c = section(Ok(r)).collect().await.unwrap();
        let reasons: Vec<_> = c
            .findings
            .iter()
            .map(|f| (f.level, f.reason.as_str()))
            .collect();
        assert!(reasons.contains(&(
            crate::Verdict::Fail,
            "worktree code-improver has a conflict"
        )));
        assert!(reasons.contains(&(crate::Verdict::Warn, "repo host has uncommitted changes")));
        assert!(reasons.contains(&(crate::Verdict::Warn, "worktree gone: directory /w is gone")));
        assert_eq!(c.data["host"]["worktrees"]["code-improver"]["ahead"], 2);
    }

    #[tokio::test]
    async fn an_unreadable_repo_fails_in_its_own_entry() {
        let c = section(Err("could not find repository".into()))
            .collect()
            .await
            .unwrap();
        assert_eq!(c.data["host"]["error"], "could not find repository");
        assert_eq!(c.findings[0].level, crate::Verdict::Fail);
    }

    struct Deployed(Option<&'static str>);
    #[async_trait::async_trait]
    impl DeploySource for Deployed {
        async fn last_deploy(&self) -> Result<Option<LastDeploy>, String> {
            Ok(self.0.map(|sha| LastDeploy {
                at: chrono::Utc::now(),
                sha: sha.into(),
            }))
        }
    }

    #[tokio::test]
    async fn deploy_warns_when_head_moved_past_the_deploy() {
        let mk = |d| DeploySection {
            inspector: Arc::new(Fixed(Ok(report()))),
            repo: RepoTarget {
                name: "host".into(),
                path: "/r".into(),
            },
            deploys: Arc::new(Deployed(d)),
        };
        let same = mk(Some("abcdef1")).collect().await.unwrap();
        assert!(same.findings.is_empty(), "{:?}", same.findings);
        assert_eq!(same.data["last_deploy_sha"], "abcdef1");
        let moved = mk(Some("1234567")).collect().await.unwrap();
        assert_eq!(
            moved.findings[0].reason,
            "deployed 1234567 but HEAD of host is abcdef1"
        );
        let never = mk(None).collect().await.unwrap();
        assert!(never.findings.is_empty());
        assert_eq!(never.data["last_deploy_at"], serde_json::Value::Null);
    }
}
