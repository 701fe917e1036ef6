//! `/status` under load (issue #4's benchmark): a release lookoutd on SQLite watching 1 git
//! repository with 3 linked worktrees (a few hundred files each), 2 running containers of the local
//! image `lookout-test/busybox` named in `[gateway] containers`, 100,000 inbound messages and 1,000
//! tasks (far-future schedules, a tenth paused). 16 concurrent clients then `GET /status` for 20 s;
//! prints median, p99 and max latency and requests/s against the targets (median < 20 ms,
//! p99 < 50 ms), then each section alone (`?sections=NAME`, same 16 clients, 3 s each) so that a
//! missed target names the section that costs it.
//!
//! `cargo bench -p lookout-e2e --bench status_load` (`LOOKOUT_STATUS_SECS`, `LOOKOUT_STATUS_CLIENTS`,
//! `LOOKOUT_STATUS_MESSAGES`, `LOOKOUT_STATUS_TASKS` change the run; `LOOKOUT_STATUS_TTL=0s` sets
//! `status.cache_ttl` so that every request collects). Needs git and Docker with
//! the image (`scripts/test-image.sh`); without Docker it says so and runs without containers.
#![allow(missing_docs)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lookout_e2e::Daemon;
use serde_json::{Value, json};

const IMAGE: &str = "lookout-test/busybox";

fn env(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn sh(cwd: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.invalid")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.invalid")
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository of `files` files in a few directories, two commits, and 3 linked worktrees on their
/// own branches: one clean, one dirty, one a commit ahead of `main`.
fn build_repo(root: &Path, files: usize) -> std::path::PathBuf {
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    sh(&repo, "git", &["init", "-q", "-b", "main"]);
    for i in 0..files {
        let dir = repo.join(format!("src/mod{}", i % 10));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("file{i}.rs")),
            format!("// file {i}\npub fn f{i}() -> usize {{ {i} }}\n").repeat(20),
        )
        .unwrap();
    }
    sh(&repo, "git", &["add", "-A"]);
    sh(&repo, "git", &["commit", "-q", "-m", "initial import"]);
    std::fs::write(repo.join("README.md"), "bench\n").unwrap();
    sh(&repo, "git", &["add", "README.md"]);
    sh(&repo, "git", &["commit", "-q", "-m", "a readme"]);
    for (i, name) in ["wt-clean", "wt-dirty", "wt-ahead"].iter().enumerate() {
        let path = root.join(name);
        sh(
            &repo,
            "git",
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                name,
                path.to_str().unwrap(),
                "main",
            ],
        );
        match i {
            1 => std::fs::write(path.join("src/mod1/file1.rs"), "// changed\n").unwrap(),
            2 => {
                std::fs::write(path.join("NEW.md"), "ahead\n").unwrap();
                sh(&path, "git", &["add", "NEW.md"]);
                sh(&path, "git", &["commit", "-q", "-m", "ahead of main"]);
            }
            _ => {}
        }
    }
    repo
}

/// Running containers from the local test image, removed when dropped.
struct Containers(Vec<String>);

impl Containers {
    fn start(n: usize) -> Option<Containers> {
        let ok = Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!(
                "no Docker or no image {IMAGE} (scripts/test-image.sh): running without containers"
            );
            return None;
        }
        let mut names = Vec::new();
        for i in 0..n {
            let name = format!("lookout-bench-status-{}-{i}", std::process::id());
            let out = Command::new("docker")
                .args(["run", "-d", "--rm", "--name", &name, IMAGE, "sleep", "3600"])
                .output()
                .expect("docker run");
            assert!(
                out.status.success(),
                "docker run: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            names.push(name);
        }
        Some(Containers(names))
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", n]).output();
        }
    }
}

/// 16 clients (or `clients`) `GET url` for `secs`: sorted latencies, errors, wall time.
async fn hammer(
    http: &reqwest::Client,
    url: &str,
    clients: u64,
    secs: f64,
) -> (Vec<Duration>, u64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, stop, errors, url) =
            (http.clone(), stop.clone(), errors.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        // Read the whole body: that is part of what a client waits for.
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    Ok(r) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("error: {}", r.status());
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("error: {e}");
                    }
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let wall = t0.elapsed().as_secs_f64();
    lat.sort();
    (lat, errors.load(Ordering::Relaxed), wall)
}

fn main() {
    let secs = env("LOOKOUT_STATUS_SECS", 20);
    let clients = env("LOOKOUT_STATUS_CLIENTS", 16);
    let messages = env("LOOKOUT_STATUS_MESSAGES", 100_000);
    let n_tasks = env("LOOKOUT_STATUS_TASKS", 1_000);

    let tmp = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let repo = build_repo(tmp.path(), 300);
    let files = sh(&repo, "git", &["ls-files"]).lines().count();
    eprintln!(
        "repo: {files} files, 3 worktrees ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    let containers = Containers::start(2);
    let names: Vec<String> = containers.as_ref().map(|c| c.0.clone()).unwrap_or_default();
    // `0s` measures what every collection costs; the default is what a deployment gets.
    let cache_ttl = std::env::var("LOOKOUT_STATUS_TTL").unwrap_or_else(|_| "1s".into());
    eprintln!("status.cache_ttl = {cache_ttl}");
    let config = tmp.path().join("lookout.toml");
    std::fs::write(
        &config,
        format!(
            "[[repos]]\npath = {:?}\nname = \"bench\"\n\n[gateway]\nmode = \"litellm\"\ncontainers = {}\n\n\
             [status]\ncache_ttl = {:?}\n",
            repo.display().to_string(),
            serde_json::to_string(&names).unwrap(),
            cache_ttl
        ),
    )
    .unwrap();
    let d = Daemon::start(&["--config", config.to_str().unwrap()]);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients as usize + 4)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();

        // 100,000 inbound messages, in batches of 1,000 from 4 posters.
        let t = Instant::now();
        let batch = 1_000u64;
        let batches = messages.div_ceil(batch);
        let next = Arc::new(AtomicU64::new(0));
        let mut posters = Vec::new();
        for _ in 0..4 {
            let (http, next, url) = (http.clone(), next.clone(), format!("{}/api/events", d.url));
            posters.push(tokio::spawn(async move {
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        break;
                    }
                    let events: Vec<Value> = (b * batch..((b + 1) * batch).min(messages))
                        .map(|i| {
                            json!({"kind": "message_received", "channel": "slack",
                                   "chat_jid": format!("chat-{}", i % 50), "message_id": format!("m{i}"),
                                   "timestamp": "2026-05-01T10:00:00Z", "sender": "user", "group": "main"})
                        })
                        .collect();
                    let r = http.post(&url).json(&events).send().await.unwrap();
                    assert!(r.status().is_success(), "ingest: {}", r.status());
                }
            }));
        }
        for p in posters {
            p.await.unwrap();
        }
        let posted = t.elapsed().as_secs_f64();
        loop {
            let v: Value = http
                .get(format!("{}/status?sections=messages", d.url))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if v["sections"]["messages"]["total_inbound"].as_u64() == Some(messages) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(600),
                "projector did not catch up: {}",
                v["sections"]["messages"]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!(
            "messages: {messages} posted in {posted:.1} s, projected after {:.1} s",
            t.elapsed().as_secs_f64()
        );

        // 1,000 tasks: yearly crons and 9000 h intervals, so none runs during the bench; every
        // tenth paused.
        let t = Instant::now();
        for i in 0..n_tasks {
            let mut body = json!({"name": format!("task-{i:04}"), "group": format!("group-{}", i % 20),
                                  "command": "true"});
            if i % 2 == 0 {
                body["cron"] = json!(format!("{} {} 1 1 *", i % 60, i % 24));
            } else {
                body["every"] = json!("9000h");
            }
            let r = match http
                .post(format!("{}/api/tasks", d.url))
                .json(&body)
                .timeout(Duration::from_secs(15))
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => panic!("POST /api/tasks #{i} after {:.1} s: {e}", t.elapsed().as_secs_f64()),
            };
            let status = r.status();
            assert!(status.is_success(), "POST /api/tasks: {status} {}", r.text().await.unwrap());
            if i % 10 == 0 {
                let r = http
                    .post(format!("{}/api/tasks/task-{i:04}/pause", d.url))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "pause: {}", r.status());
            }
        }
        eprintln!("tasks: {n_tasks} added in {:.1} s", t.elapsed().as_secs_f64());

        // One report, to show what is measured.
        let r = http.get(format!("{}/status", d.url)).send().await.unwrap();
        let body = r.bytes().await.unwrap();
        let report: Value = serde_json::from_slice(&body).unwrap();
        let sections: Vec<String> = report["sections"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let errors: Vec<String> = report["sections"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.get("error").map(|e| format!("{k}: {e}")))
            .collect();
        eprintln!(
            "report: {} bytes, status {}, elapsed_ms {}, sections {}; errors: {:?}",
            body.len(),
            report["status"],
            report["elapsed_ms"],
            sections.join(","),
            errors
        );
        let worktrees = report["sections"]["repos"].to_string().matches("wt-").count();
        let running = names
            .iter()
            .filter(|n| report["sections"]["gateway"].to_string().contains(n.as_str()))
            .count();
        let tasks_shown = report["sections"]["tasks"].to_string().matches("task-").count();
        eprintln!(
            "report content: worktree mentions {worktrees}, containers named {running}/{}, task mentions {tasks_shown}",
            names.len()
        );

        // Warm up, then the measured run.
        let _ = hammer(&http, &format!("{}/status", d.url), clients, 1.0).await;
        let (lat, errors, wall) = hammer(&http, &format!("{}/status", d.url), clients, secs as f64).await;
        let (median, p99) = (pct(&lat, 0.5), pct(&lat, 0.99));
        println!(
            "/status load: {clients} clients for {wall:.1} s; 1 repo + 3 worktrees ({files} files), \
             {} containers, {messages} messages, {n_tasks} tasks (SQLite)\n\
             requests {} | errors {errors} | {:.0} requests/s | latency median {median:.1} ms, \
             p99 {p99:.1} ms, max {:.1} ms | targets median < 20 ms: {}, p99 < 50 ms: {}",
            names.len(),
            lat.len(),
            lat.len() as f64 / wall,
            pct(&lat, 1.0),
            if median < 20.0 { "met" } else { "MISSED" },
            if p99 < 50.0 { "met" } else { "MISSED" },
        );

        // Each section alone, same clients: what each costs.
        println!("each section alone ({clients} clients, 3 s each):");
        for s in &sections {
            let url = format!("{}/status?sections={s}", d.url);
            let (lat, errors, wall) = hammer(&http, &url, clients, 3.0).await;
            println!(
                "  {s:<14} median {:>7.2} ms  p99 {:>7.2} ms  {:>6.0} req/s  errors {errors}",
                pct(&lat, 0.5),
                pct(&lat, 0.99),
                lat.len() as f64 / wall
            );
        }
        // And one client alone: the cost without queueing.
        println!("each section, 1 client, 100 requests:");
        for s in sections.iter().map(String::as_str).chain(["all"]) {
            let url = if s == "all" {
                format!("{}/status", d.url)
            } else {
                format!("{}/status?sections={s}", d.url)
            };
            let mut lat = Vec::new();
            for _ in 0..100 {
                let t = Instant::now();
                let _ = http.get(&url).send().await.unwrap().bytes().await;
                lat.push(t.elapsed());
            }
            lat.sort();
            println!(
                "  {s:<14} median {:>7.2} ms  p99 {:>7.2} ms",
                pct(&lat, 0.5),
                pct(&lat, 0.99)
            );
        }
    });
    drop(d);
    drop(containers);
}
