//! `GET /status`, the page, and `lookout status` on a real lookoutd.

use lookout_e2e::{Daemon, run};
use serde_json::{Value, json};
use std::time::Duration;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[test]
fn status_reports_every_section_with_a_verdict_and_the_cli_exits_by_it() {
    let d = Daemon::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (s, body) = get(&format!("{}/status", d.url)).await;
        assert_eq!(s, 200);
        let r: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(r["status"], "pass", "{r}");
        for section in ["service", "channels", "messages", "boot", "notifications"] {
            assert!(
                r["sections"].get(section).is_some(),
                "{section} missing: {r}"
            );
        }
        assert_eq!(r["sections"]["boot"]["lookoutd"]["latest"], "ready");
    });
    let out = run("lookout", &["--url", d.url.as_str(), "status"], tmp.path());
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("PASS"));

    // A channel down for 5 minutes (limit 2m) and a delivery pending for 10 (limit 5m).
    rt().block_on(async {
        let ago = |m: i64| (chrono::Utc::now() - chrono::Duration::minutes(m)).to_rfc3339();
        let events = json!([
            {"kind": "channel_connected", "channel": "whatsapp"},
            {"kind": "channel_disconnected", "channel": "slack", "reason": "socket closed", "at": ago(5)},
            {"kind": "delivery_queued", "delivery_id": "d1", "chat_jid": "c1", "at": ago(10)},
        ]);
        let r = reqwest::Client::new()
            .post(format!("{}/api/events", d.url))
            .json(&events)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // The projector applies the delivery in the background.
        let mut report = Value::Null;
        for _ in 0..100 {
            let (_, body) = get(&format!("{}/status", d.url)).await;
            report = serde_json::from_str(&body).unwrap();
            if report["reasons"].as_array().unwrap().len() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(report["status"], "fail", "{report}");
        assert_eq!(
            report["reasons"],
            json!(["channel slack disconnected for 5m", "1 deliveries pending for more than 5m"])
        );
        assert_eq!(report["section_status"]["channels"], "fail");
        assert_eq!(report["section_status"]["messages"], "warn");
        assert_eq!(report["sections"]["channels"]["slack"]["reason"], "socket closed");
        assert_eq!(report["sections"]["channels"]["whatsapp"]["connected"], true);

        let (_, body) = get(&format!("{}/status?sections=messages", d.url)).await;
        let only: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(only["sections"].as_object().unwrap().len(), 1);
        assert_eq!(only["status"], "warn");
        let (s, body) = get(&format!("{}/status?sections=messages,repoz", d.url)).await;
        assert_eq!(s, 400);
        let e: Value = serde_json::from_str(&body).unwrap();
        assert!(e["error"].as_str().unwrap().starts_with("unknown section `repoz`; sections:"));
        assert_eq!(e["field"], "sections");

        for url in [format!("{}/status?format=html", d.url), format!("{}/", d.url)] {
            let (s, html) = get(&url).await;
            assert_eq!(s, 200);
            assert!(html.contains("id=\"verdict\">FAIL<"), "{html}");
            assert!(html.contains("<li>channel slack disconnected for 5m</li>"));
        }
    });
    let out = run("lookout", &["--url", d.url.as_str(), "status"], tmp.path());
    assert_eq!(out.status.code(), Some(2), "fail exits 2");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("FAIL 2 reasons\n  - channel slack disconnected for 5m\n"),
        "{text}"
    );
    let out = run(
        "lookout",
        &["--url", d.url.as_str(), "status", "--json"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "fail");
}

#[test]
fn status_can_be_put_behind_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("lookout.toml");
    std::fs::write(&file, "[server]\nstatus_requires_token = true\n").unwrap();
    let d = Daemon::start_opts(
        None,
        &["--config", file.to_str().unwrap()],
        &[("LOOKOUT_TOKEN", "t0k")],
    );
    rt().block_on(async {
        assert_eq!(get(&format!("{}/status", d.url)).await.0, 401);
        assert_eq!(
            get(&format!("{}/health", d.url)).await.0,
            200,
            "/health stays open"
        );
    });
    let out = lookout_e2e::run_env(
        "lookout",
        &["--url", d.url.as_str(), "status"],
        tmp.path(),
        &[("LOOKOUT_TOKEN", "t0k")],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn git(dir: &std::path::Path, args: &[&str]) {
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
        out.status.success() || args[0] == "merge",
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The whole picture on the real daemon: a repository whose worktree stopped on a merge conflict,
/// a gateway whose engine socket is wrong and whose health endpoint is slow. Each says so, and the
/// other sections still answer within the section timeout.
#[test]
fn repos_gateway_and_a_slow_health_endpoint_on_the_real_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    git(&host, &["init", "-q", "-b", "main"]);
    std::fs::write(host.join("a.txt"), "one\n").unwrap();
    git(&host, &["add", "a.txt"]);
    git(&host, &["commit", "-q", "-m", "first"]);
    let wt = tmp.path().join("code-improver");
    git(
        &host,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "improve",
            wt.to_str().unwrap(),
        ],
    );
    std::fs::write(wt.join("a.txt"), "theirs\n").unwrap();
    git(&wt, &["commit", "-q", "-am", "theirs"]);
    std::fs::write(host.join("a.txt"), "ours\n").unwrap();
    git(&host, &["commit", "-q", "-am", "ours"]);
    git(&wt, &["merge", "-q", "main"]);

    // A health endpoint slower than its timeout.
    let health = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let health_addr = health.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in health.incoming() {
            let Ok(s) = s else { break };
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_secs(3));
                drop(s);
            });
        }
    });
    let file = tmp.path().join("lookout.toml");
    std::fs::write(
        &file,
        format!(
            "[[repos]]\npath = {host:?}\n\n[gateway]\nmode = \"litellm\"\ncontainers = [\"litellm\"]\n\
             health_url = \"http://{health_addr}/health\"\nhealth_timeout = \"300ms\"\n\n\
             [docker]\nsocket = \"unix:///nonexistent/docker.sock\"\n",
            host = host.to_str().unwrap()
        ),
    )
    .unwrap();
    let d = Daemon::start(&["--config", file.to_str().unwrap()]);
    rt().block_on(async {
        let started = std::time::Instant::now();
        let (s, body) = get(&format!("{}/status", d.url)).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(s, 200);
        let r: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(r["status"], "fail", "{r}");
        let reasons: Vec<&str> = r["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert!(
            reasons.contains(&"worktree code-improver has a conflict"),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(
                |x| x.starts_with("docker engine unreachable: unix:///nonexistent/docker.sock")
            ),
            "{reasons:?}"
        );
        assert!(
            reasons.contains(&"gateway health endpoint timed out after 300 ms"),
            "{reasons:?}"
        );
        let g = &r["sections"]["gateway"];
        assert_eq!(g["containers"]["litellm"]["state"], "engine_unreachable");
        assert_eq!(g["mode"], "litellm");
        let w = &r["sections"]["repos"]["host"]["worktrees"]["code-improver"];
        assert_eq!(w["conflict"], true);
        assert_eq!(
            (w["ahead"].as_u64(), w["behind"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(r["sections"]["deploy"]["head_commit"], "ours");
        assert_eq!(
            r["section_status"]["messages"], "pass",
            "the rest still answers"
        );
        let (_, html) = get(&format!("{}/?format=html", d.url)).await;
        assert!(html.contains("id=\"verdict\">FAIL<"));
        assert!(html.contains(" ago<"), "times read as ages: {html}");
    });
}

/// A first run inside a fresh git repository (the default state directory is `./.lookout`, in the
/// repository lookoutd watches): the state directory ignores itself, so the repository stays
/// clean and `/status` has nothing to warn about it.
#[test]
fn the_state_directory_inside_the_watched_repository_leaves_it_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("host");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("a.txt"), "one\n").unwrap();
    git(&repo, &["add", "a.txt"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let config = tmp.path().join("lookout.toml");
    std::fs::write(
        &config,
        format!(
            "[[repos]]\npath = {:?}\nname = \"host\"\n",
            repo.display().to_string()
        ),
    )
    .unwrap();
    let d = Daemon::start_opts(
        Some(&repo.join(".lookout")),
        &["--config", config.to_str().unwrap()],
        &[],
    );
    assert_eq!(
        std::fs::read_to_string(repo.join(".lookout/.gitignore"))
            .unwrap()
            .lines()
            .last(),
        Some("*")
    );
    let porcelain = std::process::Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&porcelain.stdout),
        "",
        "git status is clean"
    );
    rt().block_on(async {
        let (code, body) = get(&format!("{}/status?sections=repos&format=json", d.url)).await;
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(
            !body.contains("uncommitted changes"),
            "no warning about lookoutd's own files: {v:#}"
        );
        assert_eq!(
            v["sections"]["repos"]["host"]["dirty"],
            json!(false),
            "{v:#}"
        );
    });
}

/// The watched cache end to end: lookoutd's state directory inside the repository (its database
/// written all the time), a worktree beside it; a change to a tracked file of the worktree, to the
/// main tree and a commit are each in `/status` within 1 s (with a `cache_ttl` of 200 ms: reports
/// are shared for that long whatever the repositories cost).
#[test]
fn a_change_in_a_watched_repository_is_in_status_within_a_second() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("host");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("a.txt"), "one\n").unwrap();
    git(&repo, &["add", "a.txt"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let wt = tmp.path().join("g1");
    git(
        &repo,
        &["worktree", "add", "-q", "-b", "g1", wt.to_str().unwrap()],
    );
    let config = tmp.path().join("lookout.toml");
    std::fs::write(
        &config,
        format!(
            "[status]\ncache_ttl = \"200ms\"\n\n[[repos]]\npath = {:?}\nname = \"host\"\n",
            repo.display().to_string()
        ),
    )
    .unwrap();
    let d = Daemon::start_opts(
        Some(&repo.join(".lookout")),
        &["--config", config.to_str().unwrap()],
        &[],
    );
    let url = format!("{}/status?sections=repos", d.url);
    let rt = rt();
    let report = |rt: &tokio::runtime::Runtime| -> Value {
        rt.block_on(async {
            let (code, body) = get(&url).await;
            assert_eq!(code, 200, "{body}");
            serde_json::from_str::<Value>(&body).unwrap()["sections"]["repos"]["host"].clone()
        })
    };
    // Settled: read twice (the first read sets the watches), clean.
    let start = std::time::Instant::now();
    while report(&rt)["worktrees"]["g1"]["dirty"] != json!(false)
        || start.elapsed() < Duration::from_millis(600)
    {
        assert!(start.elapsed() < Duration::from_secs(20), "never settled");
        std::thread::sleep(Duration::from_millis(50));
    }
    let within_a_second =
        |rt: &tokio::runtime::Runtime, what: &str, seen: &dyn Fn(&Value) -> bool| {
            let t = std::time::Instant::now();
            loop {
                let r = report(rt);
                if seen(&r) {
                    eprintln!("{what}: in /status after {:?}", t.elapsed());
                    return;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(1),
                    "{what} not in /status within 1 s: {r:#}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        };
    std::fs::write(wt.join("a.txt"), "changed in the worktree\n").unwrap();
    within_a_second(&rt, "a worktree's tracked file", &|r| {
        r["worktrees"]["g1"]["dirty"] == json!(true)
    });
    std::fs::write(repo.join("a.txt"), "changed in the main tree\n").unwrap();
    within_a_second(&rt, "the main tree's tracked file", &|r| {
        r["dirty"] == json!(true)
    });
    let old = report(&rt)["head_sha"].clone();
    git(&repo, &["commit", "-q", "-am", "second"]);
    within_a_second(&rt, "a commit", &|r| {
        r["head_sha"] != old && r["dirty"] == json!(false)
    });
}
