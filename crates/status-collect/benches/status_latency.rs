//! The `repos` section through libgit2 against the same facts gathered with `git` subprocesses (the
//! way the seed's Python host did it), on one repository with 3 linked worktrees, measured in the
//! same run. Prints medians, p99 and the ratio.
//!
//! `cargo bench -p lookout-status-collect --bench status_latency [-- FILES_PER_TREE [ROUNDS]]`

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_status_collect::Collector;
use lookout_status_collect::repos::{Git2Inspector, RepoTarget, ReposSection};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "b")
        .env("GIT_AUTHOR_EMAIL", "b@example.invalid")
        .env("GIT_COMMITTER_NAME", "b")
        .env("GIT_COMMITTER_EMAIL", "b@example.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn fixture(root: &Path, files: usize) -> std::path::PathBuf {
    let origin = root.join("origin.git");
    let host = root.join("host");
    std::fs::create_dir_all(host.join("src")).unwrap();
    git(
        root,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            origin.to_str().unwrap(),
        ],
    );
    git(&host, &["init", "-q", "-b", "main"]);
    for i in 0..files {
        std::fs::write(host.join("src").join(format!("f{i}.txt")), format!("{i}\n")).unwrap();
    }
    git(&host, &["add", "."]);
    git(&host, &["commit", "-q", "-m", "first"]);
    git(
        &host,
        &["remote", "add", "origin", origin.to_str().unwrap()],
    );
    git(&host, &["push", "-q", "-u", "origin", "main"]);
    for (name, dirty) in [("ahead", false), ("dirty", true), ("idle", false)] {
        let p = root.join(name);
        git(
            &host,
            &["worktree", "add", "-q", "-b", name, p.to_str().unwrap()],
        );
        if name == "ahead" {
            std::fs::write(p.join("new.txt"), "x").unwrap();
            git(&p, &["add", "new.txt"]);
            git(&p, &["commit", "-q", "-m", "ahead"]);
        }
        if dirty {
            std::fs::write(p.join("src/f0.txt"), "changed").unwrap();
        }
    }
    host
}

/// What the Python host ran per status request: 4 commands for the repository, the worktree list,
/// then 5 per worktree (HEAD, branch, status, ahead, behind) plus two file checks.
fn subprocess_repos(host: &Path) -> serde_json::Value {
    let mut out = serde_json::json!({
        "head_sha": git(host, &["rev-parse", "HEAD"]),
        "head_commit": git(host, &["log", "-1", "--format=%s"]),
        "dirty": !git(host, &["status", "--porcelain"]).is_empty(),
        "unpushed": git(host, &["rev-list", "--count", "@{u}..HEAD"]),
    });
    let list = git(host, &["worktree", "list", "--porcelain"]);
    let mut wts = serde_json::Map::new();
    for block in list.split("\n\n").skip(1) {
        let Some(path) = block
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("worktree "))
        else {
            continue;
        };
        let p = Path::new(path);
        let branch = git(p, &["rev-parse", "--abbrev-ref", "HEAD"]);
        let gd = git(p, &["rev-parse", "--git-dir"]);
        wts.insert(
            path.to_owned(),
            serde_json::json!({
                "sha": git(p, &["rev-parse", "HEAD"]),
                "dirty": !git(p, &["status", "--porcelain"]).is_empty(),
                "ahead": git(host, &["rev-list", "--count", &format!("main..{branch}")]),
                "behind": git(host, &["rev-list", "--count", &format!("{branch}..main")]),
                "conflict": Path::new(&gd).join("MERGE_HEAD").exists()
                    || Path::new(&gd).join("REBASE_HEAD").exists(),
            }),
        );
    }
    out["worktrees"] = serde_json::Value::Object(wts);
    out
}

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (
        ms(v[v.len() / 2]),
        ms(v[(v.len() * 99 / 100).min(v.len() - 1)]),
    )
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let files: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(500);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let tmp = tempfile::tempdir().unwrap();
    let host = fixture(tmp.path(), files);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let section = ReposSection {
        inspector: Arc::new(Git2Inspector),
        repos: vec![RepoTarget::new(&host, Some("host".into()))],
    };
    // Same facts from both, once, before timing.
    let a = rt.block_on(section.collect()).unwrap();
    let b = subprocess_repos(&host);
    assert_eq!(a.data["host"]["head_sha"], b["head_sha"]);
    assert_eq!(a.data["host"]["worktrees"].as_object().unwrap().len(), 3);
    assert_eq!(b["worktrees"].as_object().unwrap().len(), 3);

    let mut lib = Vec::with_capacity(rounds);
    let mut sub = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        // Interleaved, so both see the same machine load.
        let t = Instant::now();
        rt.block_on(section.collect()).unwrap();
        lib.push(t.elapsed());
        let t = Instant::now();
        subprocess_repos(&host);
        sub.push(t.elapsed());
    }
    let (lm, lp) = stats(lib);
    let (sm, sp) = stats(sub);
    println!("repos section: 1 repository, 3 worktrees, {files} files per tree, {rounds} rounds");
    println!("  libgit2 (Git2Inspector)   median {lm:7.2} ms   p99 {lp:7.2} ms");
    println!("  git subprocesses (seed)   median {sm:7.2} ms   p99 {sp:7.2} ms");
    println!("  ratio (subprocess / libgit2, medians): {:.1}x", sm / lm);
}
