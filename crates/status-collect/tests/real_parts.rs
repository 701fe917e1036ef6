//! The real implementations against real things: git repositories and worktrees built in temp dirs
//! with the `git` command, a real Docker engine (and a socket path with no engine), and a loopback
//! HTTP health endpoint.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use lookout_status_collect::gateway::{
    ContainerRuntime, GatewaySection, HttpProbe, HttpProbeError, ReqwestProbe, docker_runtime,
};
use lookout_status_collect::repos::{Git2Inspector, RepoInspector, RepoTarget, ReposSection};
use lookout_status_collect::{Collector, Verdict, collect_status};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success() || args[0] == "merge",
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn commit(dir: &Path, file: &str, text: &str, msg: &str) {
    std::fs::write(dir.join(file), text).unwrap();
    git(dir, &["add", file]);
    git(dir, &["commit", "-q", "-m", msg]);
}

/// origin (bare) ← host (main, pushed, then one commit ahead) with worktrees:
/// `ahead` (2 commits ahead, clean), `dirty` (behind by 1, an untracked file), `conflict` (a merge
/// stopped on a conflict), `detached` (HEAD at a commit).
fn fixture(root: &Path) -> std::path::PathBuf {
    let origin = root.join("origin.git");
    let host = root.join("host");
    std::fs::create_dir_all(&host).unwrap();
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
    commit(&host, "a.txt", "one\n", "first");
    git(
        &host,
        &["remote", "add", "origin", origin.to_str().unwrap()],
    );
    git(&host, &["push", "-q", "-u", "origin", "main"]);
    let wt = |name: &str, branch: &str| {
        let p = root.join(name);
        git(
            &host,
            &["worktree", "add", "-q", "-b", branch, p.to_str().unwrap()],
        );
        p
    };
    let ahead = wt("ahead", "ahead");
    commit(&ahead, "b.txt", "b\n", "ahead one");
    commit(&ahead, "c.txt", "c\n", "ahead two");
    let dirty = wt("dirty", "dirty");
    std::fs::write(dirty.join("scratch.txt"), "x").unwrap();
    let conflict = wt("conflict", "conflict");
    commit(&conflict, "a.txt", "theirs\n", "change a on the branch");
    // main moves on: the worktrees are now behind by one, and `conflict` will clash with it.
    commit(&host, "a.txt", "ours\n", "change a on main");
    git(&conflict, &["merge", "-q", "main"]);
    let head = git(&host, &["rev-parse", "HEAD"]);
    let detached = root.join("detached");
    git(
        &host,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            detached.to_str().unwrap(),
            &head,
        ],
    );
    host
}

#[test]
fn git2_reads_heads_dirt_divergence_conflicts_and_upstreams() {
    let tmp = tempfile::tempdir().unwrap();
    let host = fixture(tmp.path());
    let rep = Git2Inspector.inspect(&host).unwrap();
    assert_eq!(
        rep.head_sha.as_deref(),
        Some(git(&host, &["rev-parse", "HEAD"]).as_str())
    );
    assert_eq!(rep.head_commit.as_deref(), Some("change a on main"));
    assert_eq!(rep.branch.as_deref(), Some("main"));
    assert!(!rep.dirty);
    assert_eq!(rep.upstream.as_deref(), Some("origin/main"));
    assert_eq!(rep.unpushed_commits, Some(1));

    let w = &rep.worktrees;
    assert_eq!(w.len(), 4, "{w:?}");
    assert_eq!((w["ahead"].ahead, w["ahead"].behind), (Some(2), Some(1)));
    assert!(!w["ahead"].dirty && !w["ahead"].conflict);
    assert_eq!(w["ahead"].branch.as_deref(), Some("ahead"));
    assert!(w["dirty"].dirty, "an untracked file is dirt");
    assert_eq!((w["dirty"].ahead, w["dirty"].behind), (Some(0), Some(1)));
    assert!(w["conflict"].conflict, "MERGE_HEAD in its own git dir");
    assert!(w["conflict"].dirty);
    assert!(w["detached"].detached);
    assert_eq!(w["detached"].branch, None);
    assert_eq!(
        (w["detached"].ahead, w["detached"].behind),
        (Some(0), Some(0))
    );

    // Asked from inside a worktree, the main repository is reported.
    let from_wt = Git2Inspector.inspect(&tmp.path().join("ahead")).unwrap();
    assert_eq!(from_wt.head_sha, rep.head_sha);

    // Dirt in the main repository, and a worktree whose directory was removed by hand.
    std::fs::write(host.join("a.txt"), "edited\n").unwrap();
    std::fs::remove_dir_all(tmp.path().join("dirty")).unwrap();
    let rep = Git2Inspector.inspect(&host).unwrap();
    assert!(rep.dirty);
    assert!(
        rep.worktrees["dirty"]
            .error
            .as_deref()
            .unwrap()
            .contains("is gone")
    );
}

#[test]
fn no_upstream_is_null_and_an_empty_repository_has_no_head() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("solo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let empty = Git2Inspector.inspect(&repo).unwrap();
    assert_eq!(empty.head_sha, None);
    assert_eq!(empty.unpushed_commits, None);
    commit(&repo, "a", "a", "only");
    let rep = Git2Inspector.inspect(&repo).unwrap();
    assert!(rep.head_sha.is_some());
    assert_eq!(rep.upstream, None);
    assert_eq!(rep.unpushed_commits, None);
    assert!(Git2Inspector.inspect(&tmp.path().join("nope")).is_err());
}

// A deploy script that pushes without `-u` leaves the branch with no upstream, though the remote
// has it: the unpushed commits are counted against `origin/<branch>`, and a branch the remote does
// not have against the remote's default branch.
#[test]
fn with_no_upstream_configured_the_remote_branch_or_default_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = tmp.path().join("origin.git");
    let host = tmp.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    git(
        tmp.path(),
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
    commit(&host, "a.txt", "one\n", "first");
    git(
        &host,
        &["remote", "add", "origin", origin.to_str().unwrap()],
    );
    git(&host, &["push", "-q", "origin", "main"]); // no -u
    commit(&host, "a.txt", "two\n", "second");
    commit(&host, "a.txt", "three\n", "third");
    let rep = Git2Inspector.inspect(&host).unwrap();
    assert_eq!(rep.upstream.as_deref(), Some("origin/main"));
    assert_eq!(rep.unpushed_commits, Some(2));
    // A local branch the remote never saw: compared with the remote's default branch.
    git(&host, &["remote", "set-head", "origin", "main"]);
    git(&host, &["checkout", "-q", "-b", "feature"]);
    commit(&host, "b.txt", "b\n", "feature work");
    let rep = Git2Inspector.inspect(&host).unwrap();
    assert_eq!(rep.upstream.as_deref(), Some("origin/main"));
    assert_eq!(rep.unpushed_commits, Some(3));
}

#[tokio::test]
async fn the_repos_section_fails_on_the_conflict_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let host = fixture(tmp.path());
    let section: Arc<dyn Collector> = Arc::new(ReposSection {
        inspector: Arc::new(Git2Inspector),
        repos: vec![RepoTarget::new(&host, None)],
    });
    let report = collect_status(&[section], Duration::from_secs(5), None).await;
    assert_eq!(report.status, Verdict::Fail);
    assert_eq!(
        report.reasons,
        vec!["worktree conflict has a conflict".to_owned()]
    );
    assert_eq!(
        report.sections["repos"]["host"]["worktrees"]["ahead"]["ahead"],
        2
    );
}

// ---- Docker ------------------------------------------------------------------------------------

fn docker_ready() -> bool {
    let ok = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !lookout_common::in_ci(),
            "CI=true but no Docker engine answers: the container tests cannot run"
        );
        eprintln!("skipping: no Docker engine answers `docker version`");
        return false;
    }
    let made = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/test-image.sh"
    ))
    .status()
    .unwrap();
    assert!(made.success(), "scripts/test-image.sh failed");
    true
}

struct Container(String);
impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

fn run_container(name: &str, cmd: &str) -> Container {
    let _ = Command::new("docker").args(["rm", "-f", name]).output();
    let out = Command::new("docker")
        .args([
            "run",
            "-d",
            "--name",
            name,
            "lookout-test/busybox",
            "sh",
            "-c",
            cmd,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Container(name.to_owned())
}

#[tokio::test]
async fn docker_running_exited_absent_and_an_unreachable_engine() {
    if !docker_ready() {
        return;
    }
    let id = std::process::id();
    let (run, exit) = (
        format!("lookout-st-run-{id}"),
        format!("lookout-st-exit-{id}"),
    );
    let _a = run_container(&run, "sleep 60");
    let _b = run_container(&exit, "exit 3");
    // Wait until the short one has exited (engine time, not ours to fake).
    for _ in 0..100 {
        let s = Command::new("docker")
            .args(["inspect", "-f", "{{.State.Status}}", &exit])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&s.stdout).trim() == "exited" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let docker = docker_runtime("unix:///var/run/docker.sock");
    assert_eq!(docker.inspect(&run).await.unwrap().status, "running");
    let exited = docker.inspect(&exit).await.unwrap();
    assert_eq!(exited.status, "exited");
    assert_eq!(
        docker
            .inspect(&format!("lookout-st-absent-{id}"))
            .await
            .unwrap()
            .status,
        "not_found"
    );

    // A bad socket: the gateway section says so; the rest of the report still answers.
    let bad: Arc<dyn Collector> = Arc::new(GatewaySection {
        mode: Some("litellm".into()),
        containers: vec![run.clone(), exit.clone()],
        runtime: Arc::new(docker_runtime("/nonexistent/docker.sock")),
        health_url: None,
        health_key: None,
        probe: Arc::new(ReqwestProbe::new()),
        health_timeout: Duration::from_secs(1),
    });
    let good: Arc<dyn Collector> = Arc::new(GatewaySection {
        mode: None,
        containers: vec![run.clone(), exit.clone()],
        runtime: Arc::new(docker),
        health_url: None,
        health_key: None,
        probe: Arc::new(ReqwestProbe::new()),
        health_timeout: Duration::from_secs(1),
    });
    let r = bad.collect().await.unwrap();
    assert_eq!(r.data["containers"][&run]["state"], "engine_unreachable");
    assert!(
        r.findings[0]
            .reason
            .starts_with("docker engine unreachable: /nonexistent/docker.sock"),
        "{:?}",
        r.findings
    );
    let r = good.collect().await.unwrap();
    assert_eq!(r.data["containers"][&run]["state"], "running");
    assert_eq!(
        r.findings
            .iter()
            .map(|f| f.reason.clone())
            .collect::<Vec<_>>(),
        vec![format!("gateway container {exit} is exited")]
    );
}

// ---- HTTP health endpoint ----------------------------------------------------------------------

async fn health_server() -> String {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/healthy",
            get(|| async { r#"{"healthy_count": 2, "unhealthy_count": 0}"# }),
        )
        .route(
            "/unhealthy",
            get(|| async {
                r#"{"healthy_endpoints": [], "unhealthy_endpoints": [{"model": "a"}]}"#
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "{}"
            }),
        )
        .route("/garbage", get(|| async { "<html>not json" }))
        .route(
            "/key",
            get(|h: axum::http::HeaderMap| async move {
                if h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer sk-test") {
                    (axum::http::StatusCode::OK, r#"{"healthy_count": 1}"#)
                } else {
                    (axum::http::StatusCode::UNAUTHORIZED, "{}")
                }
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

struct NoEngine;
#[async_trait::async_trait]
impl ContainerRuntime for NoEngine {
    async fn inspect(
        &self,
        _: &str,
    ) -> Result<
        lookout_status_collect::gateway::ContainerState,
        lookout_status_collect::gateway::EngineUnreachable,
    > {
        unreachable!("no containers configured")
    }
}

#[tokio::test]
async fn a_loopback_health_endpoint_healthy_unhealthy_slow_and_garbage() {
    let base = health_server().await;
    let section = |path: &str, key: Option<&str>| GatewaySection {
        mode: Some("litellm".into()),
        containers: vec![],
        runtime: Arc::new(NoEngine),
        health_url: Some(format!("{base}{path}")),
        health_key: key.map(str::to_owned),
        probe: Arc::new(ReqwestProbe::new()),
        health_timeout: Duration::from_millis(300),
    };
    let c = section("/healthy", None).collect().await.unwrap();
    assert_eq!(
        (c.data["healthy_models"].as_u64(), c.findings.len()),
        (Some(2), 0)
    );
    let c = section("/unhealthy", None).collect().await.unwrap();
    assert_eq!(
        c.findings[0].reason,
        "gateway: no healthy model (1 unhealthy)"
    );
    let started = std::time::Instant::now();
    let c = section("/slow", None).collect().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the probe's timeout holds"
    );
    assert_eq!(
        c.findings[0].reason,
        "gateway health endpoint timed out after 300 ms"
    );
    let c = section("/garbage", None).collect().await.unwrap();
    assert!(
        c.findings[0].reason.contains("invalid JSON"),
        "{:?}",
        c.findings
    );
    let c = section("/key", None).collect().await.unwrap();
    assert_eq!(
        c.findings[0].reason,
        "gateway health endpoint answered HTTP 401"
    );
    let c = section("/key", Some("sk-test")).collect().await.unwrap();
    assert!(c.findings.is_empty(), "{:?}", c.findings);
    // The key never appears in what the section reports.
    assert!(!c.data.to_string().contains("sk-test"));
    let probe: &dyn HttpProbe = &ReqwestProbe::new();
    assert!(
        probe
            .get(
                "http://127.0.0.1:1/health",
                None,
                Duration::from_millis(300)
            )
            .await
            .is_err_and(|e| matches!(e, HttpProbeError::Connect(_)))
    );
    // And the section says so in its words.
    let c = GatewaySection {
        health_url: Some("http://127.0.0.1:1/health".into()),
        ..section("/healthy", None)
    }
    .collect()
    .await
    .unwrap();
    assert!(
        c.findings[0]
            .reason
            .starts_with("gateway health endpoint unreachable: "),
        "{:?}",
        c.findings
    );
}
