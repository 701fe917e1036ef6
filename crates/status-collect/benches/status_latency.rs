//! The `repos` section through libgit2 against the same facts gathered with `git` subprocesses (the
//! way the seed's Python host did it), on one repository with 3 linked worktrees, measured in the
//! same run. Prints medians, p99 and the ratio; then the same section through the watched cache
//! (`WatchedInspector`): a collection when nothing changed, and the time from a change to a tracked
//! file to the first collection that shows it. Exits 1 when an unchanged watched collection's
//! median is over 10 ms.
//!
//! `cargo bench -p lookout-status-collect --bench status_latency [-- FILES_PER_TREE [ROUNDS]]`

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_status_collect::Collector;
use lookout_status_collect::repos::{Git2Inspector, RepoTarget, ReposSection};
use lookout_status_collect::watched::WatchedInspector;

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
    // As the seed's host keeps them: one directory of worktrees, branch `worktree/<name>` each.
    for (name, dirty) in [("ahead", false), ("dirty", true), ("idle", false)] {
        let p = root.join("worktrees").join(name);
        let branch = format!("worktree/{name}");
        git(
            &host,
            &["worktree", "add", "-q", "-b", &branch, p.to_str().unwrap()],
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

/// Exactly the seed's sequence (`get_repo_context()` and `_worktree_status()` of the Python host):
/// 3 commands for the repository (HEAD, status, unpushed), the worktrees found by listing their
/// directory, then 5 per worktree (HEAD, status, ahead, behind, and `--git-dir` for the conflict
/// check, which the seed runs when the worktree's own directory has no MERGE_HEAD/REBASE_HEAD):
/// 18 `git` processes for 3 worktrees. Returns the facts and how many processes it ran.
fn subprocess_repos(host: &Path) -> (serde_json::Value, usize) {
    let mut n = 0;
    let mut run = |dir: &Path, args: &[&str]| {
        n += 1;
        git(dir, args)
    };
    let mut out = serde_json::json!({
        "head_sha": run(host, &["rev-parse", "HEAD"]),
        "dirty": !run(host, &["status", "--porcelain"]).is_empty(),
        "unpushed": run(host, &["rev-list", "--count", "@{u}..HEAD"]),
    });
    let dir = host.parent().unwrap().join("worktrees");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut wts = serde_json::Map::new();
    for name in names {
        let p = dir.join(&name);
        let branch = format!("worktree/{name}");
        let sha = run(&p, &["rev-parse", "HEAD"]);
        let dirty = !run(&p, &["status", "--porcelain"]).is_empty();
        let ahead = run(host, &["rev-list", &format!("main..{branch}"), "--count"]);
        let behind = run(host, &["rev-list", &format!("{branch}..main"), "--count"]);
        let mut conflict = p.join("MERGE_HEAD").exists() || p.join("REBASE_HEAD").exists();
        if !conflict {
            let gd = std::path::PathBuf::from(run(&p, &["rev-parse", "--git-dir"]));
            conflict = gd.join("MERGE_HEAD").exists() || gd.join("REBASE_HEAD").exists();
        }
        wts.insert(
            name,
            serde_json::json!({"sha": sha, "dirty": dirty, "ahead": ahead, "behind": behind,
                               "conflict": conflict}),
        );
    }
    out["worktrees"] = serde_json::Value::Object(wts);
    (out, n)
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
    let (b, processes) = subprocess_repos(&host);
    assert_eq!(a.data["host"]["head_sha"], b["head_sha"]);
    assert_eq!(a.data["host"]["worktrees"].as_object().unwrap().len(), 3);
    assert_eq!(b["worktrees"].as_object().unwrap().len(), 3);
    assert_eq!(processes, 18, "the seed's sequence: 3 + 5 per worktree");
    // The same facts: dirty worktree, one commit ahead.
    assert_eq!(b["worktrees"]["dirty"]["dirty"], true);
    assert_eq!(b["worktrees"]["ahead"]["ahead"], "1");

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
    println!("  git subprocesses (seed's 18) median {sm:7.2} ms   p99 {sp:7.2} ms");
    println!("  ratio (subprocess / libgit2, medians): {:.1}x", sm / lm);

    // The watched cache: the same section, its reports kept until inotify reports a change.
    let watched = ReposSection {
        inspector: Arc::new(WatchedInspector::new(
            Arc::new(Git2Inspector),
            Duration::from_secs(3600),
            Vec::new(),
        )),
        repos: vec![RepoTarget::new(&host, Some("host".into()))],
    };
    let first = rt.block_on(watched.collect()).unwrap();
    assert_eq!(
        first.data, a.data,
        "the watched cache reports the same facts"
    );
    rt.block_on(watched.collect()).unwrap();
    let mut kept = Vec::with_capacity(rounds * 10);
    for _ in 0..rounds * 10 {
        let t = Instant::now();
        rt.block_on(watched.collect()).unwrap();
        kept.push(t.elapsed());
    }
    // A change to a tracked file of a worktree, at a random point between collections, then
    // collections until one shows it: the time from the write to that collection's end.
    let idle = host.parent().unwrap().join("worktrees/idle/src/f1.txt");
    let mut seen = Vec::with_capacity(rounds);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for round in 0..rounds {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(rng % 5_000));
        let dirty = round % 2 == 0;
        std::fs::write(&idle, if dirty { "changed\n" } else { "1\n" }).unwrap();
        let t = Instant::now();
        loop {
            let c = rt.block_on(watched.collect()).unwrap();
            if c.data["host"]["worktrees"]["idle"]["dirty"] == dirty {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "a change not seen in 5 s"
            );
        }
        seen.push(t.elapsed());
    }
    let (km, kp) = stats(kept);
    let (cm, cp) = stats(seen);
    println!(
        "  watched, unchanged         median {km:7.3} ms   p99 {kp:7.3} ms   ({:.0}x the subprocesses)",
        sm / km
    );
    println!("  watched, change to visible median {cm:7.2} ms   p99 {cp:7.2} ms");
    if km > 10.0 {
        eprintln!("bound broken: an unchanged watched collection takes {km:.2} ms (bound: 10 ms)");
        std::process::exit(1);
    }
}
