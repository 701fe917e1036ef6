//! The page and the terminal view of one fixture, as people see them: a worktree in conflict, a
//! run alive but stalled (a firing alert), a watch target the watchdog is healing, and a channel
//! whose disconnect reason is a `<script>`. The page is rendered by a real headless Chromium
//! (Debian's `chromium`; in CI its absence fails), in light and in dark, and its screenshots are
//! kept in `target/screenshots/`; `lookout status` is compared with expected files, times and
//! commit ids normalised.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lookout_e2e::{Daemon, binary};

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
    // A merge that conflicts exits 1: that is the fixture.
    assert!(
        out.status.success() || args.first() == Some(&"merge"),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repository whose worktree `g1` is in the middle of a conflicted merge.
fn conflicted_repo(root: &Path) -> PathBuf {
    let repo = root.join("host");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("f.txt"), "base\n").unwrap();
    git(&repo, &["add", "f.txt"]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    git(&repo, &["branch", "side"]);
    std::fs::write(repo.join("f.txt"), "main\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "fix: dedupe routing"]);
    git(
        &repo,
        &["worktree", "add", "-q", "-b", "g1", "../g1", "side"],
    );
    let wt = root.join("g1");
    std::fs::write(wt.join("f.txt"), "side\n").unwrap();
    git(&wt, &["commit", "-q", "-am", "side change"]);
    git(&wt, &["merge", "-q", "main"]);
    repo
}

fn get(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let r = client.get(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

fn post(url: &str, body: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    })
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "{what} not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The fixture, running: lookoutd, and a host that keeps sending the same progress.
struct Fixture {
    daemon: Daemon,
    beating: Arc<AtomicBool>,
    beats: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.beating.store(false, Ordering::Relaxed);
        if let Some(b) = self.beats.take() {
            let _ = b.join();
        }
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repo = conflicted_repo(dir.path());
    let config = dir.path().join("lookout.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[thresholds]
heartbeat_interval = "1s"
stall_after = 2

[[repos]]
path = "{repo}"
name = "host"

[[watch]]
name = "bridge"
kind = "process"
pid_file = "{pid}"
start = "true"
probe_interval = "1s"
cooldown = "10m"
max_tier_failures = 5
"#,
            repo = repo.display(),
            pid = dir.path().join("bridge.pid").display(),
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    let events = format!("{}/api/events", daemon.url);
    post(
        &events,
        r#"[{"kind":"channel_connected","channel":"slack"},
            {"kind":"channel_disconnected","channel":"telegram","reason":"<script>alert('x')</script>"},
            {"kind":"run_started","run_id":"r9","group":"main","run_kind":"task","task":"nightly"}]"#,
    );
    // Heartbeats keep coming, the progress never changes: alive but stalled.
    let beating = Arc::new(AtomicBool::new(true));
    let beats = {
        let beating = beating.clone();
        let events = events.clone();
        std::thread::spawn(move || {
            while beating.load(Ordering::Relaxed) {
                post(
                    &events,
                    r#"{"kind":"run_heartbeat","run_id":"r9","progress":"step 3"}"#,
                );
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    let alerts = format!("{}/api/alerts", daemon.url);
    wait_for("the stalled run's alert", Duration::from_secs(60), || {
        get(&alerts).1.contains("\"I8:r9\"") && get(&alerts).1.contains("\"firing\"")
    });
    let status = format!("{}/status", daemon.url);
    wait_for(
        "the watchdog acting on bridge",
        Duration::from_secs(60),
        || {
            let (_, body) = get(&status);
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            v["sections"]["watchdog"]["bridge"]["tier"].as_u64() > Some(0)
        },
    );
    Fixture {
        daemon,
        beating,
        beats: Some(beats),
        _dir: dir,
    }
}

/// Debian's Chromium, or `None` outside CI when it is not installed.
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    assert!(
        !lookout_common::in_ci(),
        "CI=true but chromium is missing (apt-get install chromium)"
    );
    eprintln!("chromium not installed: the page was checked as HTML only");
    None
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn headless(chromium: &Path, profile: &Path, extra: &[&str], url: &str) -> std::process::Output {
    let mut cmd = std::process::Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--window-size=1280,1600",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url);
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// RGB of every pixel of a PNG, and its width.
fn pixels(path: &Path) -> (Vec<[u8; 3]>, usize) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    let px = buf[..info.buffer_size()]
        .chunks(step)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (px, info.width as usize)
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 12)
}

#[test]
fn the_page_in_a_real_browser_light_and_dark_and_the_same_picture_in_the_terminal() {
    let fx = fixture();
    let url = format!("{}/", fx.daemon.url);

    // The HTML itself: escaped, and the alias serves the same page.
    let (code, html) = get(&url);
    assert_eq!(code, 200);
    assert!(
        !html.contains("<script"),
        "a value reached the page unescaped"
    );
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    let (_, alias) = get(&format!("{}/status?format=html", fx.daemon.url));
    assert!(alias.contains("id=\"verdict\">FAIL<"));

    terminal(&fx);

    let Some(chromium) = chromium() else {
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    // What the browser built from the page: the text a person reads.
    let dom = headless(&chromium, profile.path(), &["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&dom.stdout);
    for text in [
        "id=\"verdict\">FAIL<",
        "Firing alerts",
        "nightly alive but stalled",
        "host: main @ ",
        "1 worktree (g1 in conflict)",
        "1 of 2 connected; telegram down",
        "0 of 1 healthy; bridge healing",
        "&lt;script&gt;alert('x')&lt;/script&gt;",
    ] {
        assert!(dom.contains(text), "{text} is not on the rendered page");
    }
    assert!(
        !dom.contains("<script>"),
        "the browser found a script element"
    );

    let dir = screenshots_dir();
    for (scheme, extra, background) in [
        ("light", None, [0xf6, 0xf8, 0xfa]),
        (
            "dark",
            Some("--blink-settings=preferredColorScheme=0"),
            [0x0d, 0x11, 0x17],
        ),
    ] {
        let png = dir.join(format!("status-{scheme}.png"));
        let _ = std::fs::remove_file(&png);
        let shot = format!("--screenshot={}", png.display());
        let mut args = vec![shot.as_str()];
        args.extend(extra);
        headless(&chromium, profile.path(), &args, &url);
        let (px, width) = pixels(&png);
        assert_eq!(width, 1280);
        assert!(
            near(px[2 * width + 2], background),
            "{scheme}: the background is {:?}",
            px[2 * width + 2]
        );
        // The verdict badge, in the fail colour of the scheme, near the top of the page.
        let fail = if scheme == "light" {
            [0xcf, 0x22, 0x2e]
        } else {
            [0xf8, 0x51, 0x49]
        };
        let badge = px[..width * 120].iter().filter(|p| near(**p, fail)).count();
        assert!(badge > 500, "{scheme}: {badge} pixels of the FAIL badge");
        eprintln!("screenshot kept: {}", png.display());
    }
}

/// Times, ages and commit ids vary from run to run; everything else must match the expected file.
fn normalise(s: &str) -> String {
    let sha = regex_lite::Regex::new(r"\b[0-9a-f]{7}\b").unwrap();
    // Not after `[`: `\x1b[0m` is a colour, not an age.
    let age = regex_lite::Regex::new(r"(^|[^\[\d])\d+[smhd]( \d+[smhd])?\b").unwrap();
    let s = sha.replace_all(s, "<sha>");
    age.replace_all(&s, "${1}<age>").into_owned()
}

fn terminal(fx: &Fixture) {
    let expected_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("expected");
    for (name, env) in [
        ("status.txt", vec![("NO_COLOR", "1")]),
        ("status.color.txt", vec![]),
    ] {
        let out = std::process::Command::new(binary("lookout"))
            .args(["--url", &fx.daemon.url, "status", "--color", "always"])
            .env_remove("LOOKOUT_TOKEN")
            .env_remove("NO_COLOR")
            .envs(env)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "exit 2 for a fail verdict");
        let got = normalise(&String::from_utf8_lossy(&out.stdout));
        let path = expected_dir.join(name);
        if std::env::var_os("LOOKOUT_BLESS").is_some() {
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            got,
            want,
            "lookout status differs from {} (LOOKOUT_BLESS=1 rewrites it)",
            path.display()
        );
    }
    // --json is the report itself, full values.
    let out = std::process::Command::new(binary("lookout"))
        .args(["--url", &fx.daemon.url, "status", "--json"])
        .env_remove("LOOKOUT_TOKEN")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["sections"]["deploy"]["head_sha"].as_str().map(str::len),
        Some(40)
    );
}
