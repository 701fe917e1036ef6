//! The scenarios' helpers: HTTP to lookoutd, the config with the receiver as its sink, waiting for
//! and reading what the receiver got, the CLI, Docker.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lookout_e2e::{Daemon, Receiver, run};
use serde_json::Value;

/// Milliseconds from `fault` to `at`: negative when `at` came first (an early notification is
/// reported as early, never clamped to zero).
pub(super) fn since(fault: Instant, at: Instant) -> f64 {
    if at >= fault {
        (at - fault).as_secs_f64() * 1e3
    } else {
        -((fault - at).as_secs_f64() * 1e3)
    }
}

/// Sleeps a random part of `period`, so the fault that follows lands at any phase of a probe or a
/// tick, not always just after one (which would make the time-to-know look shorter than it is).
pub(super) fn random_phase(period: Duration) {
    use std::hash::{BuildHasher, Hasher};
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    std::thread::sleep(period.mul_f64((r % 10_000) as f64 / 10_000.0));
}

pub(super) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub(super) fn post(url: &str, body: &Value) -> (u16, Value) {
    rt().block_on(async {
        let r = reqwest::Client::new()
            .post(url)
            .json(body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    })
}

pub(super) fn get(url: &str) -> Value {
    rt().block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}

pub(super) fn events(d: &Daemon, body: Value) {
    let (code, resp) = post(&format!("{}/api/events", d.url), &body);
    assert_eq!(code, 200, "POST /api/events {body}: {resp}");
}

pub(super) fn ago(secs: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(secs)).to_rfc3339()
}

pub(super) fn texts(got: &[Value]) -> Vec<String> {
    got.iter()
        .map(|b| b["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub(super) fn count(got: &[Value], pred: impl Fn(&str) -> bool) -> usize {
    texts(got).iter().filter(|t| pred(t)).count()
}

/// Nothing was sent twice: no two bodies with the same key and text (a firing and its resolved
/// share a key, never a text).
pub(super) fn assert_no_repeats(got: &[Value]) {
    let mut seen = HashSet::new();
    for b in got {
        let k = (b["key"].to_string(), b["text"].to_string());
        assert!(seen.insert(k), "sent twice: {b}\nall: {:#?}", texts(got));
    }
}

/// Writes the config: the receiver as the webhook sink, then `body`.
pub(super) fn config(dir: &Path, receiver: &Receiver, body: &str) -> String {
    let p = dir.join("lookout.toml");
    std::fs::write(
        &p,
        format!(
            "{body}\n\n[[notify.sinks]]\nkind = \"webhook\"\nurl = \"{}\"\n",
            receiver.url
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_owned()
}

/// Waits for the first body whose text satisfies `pred`; answers when it was seen and all bodies.
pub(super) fn wait_text(
    r: &Receiver,
    limit: Duration,
    pred: impl Fn(&str) -> bool,
) -> (Instant, Vec<Value>) {
    let got = r.wait_for(limit, |g| texts(g).iter().any(|t| pred(t)));
    (Instant::now(), got)
}

/// A resolved alert of `invariant` whose text quotes `what` of the firing one: "✅ [I5] resolved:
/// slack (was: channel #slack …)" or "✅ resolved after 1m: 🚨 [I5] channel #slack …".
pub(super) fn resolved(t: &str, invariant: &str, what: &str) -> bool {
    t.starts_with('✅') && t.contains(&format!("[{invariant}]")) && t.contains(what)
}

/// Lets `n` short ticks pass so a repeat, if there were one, would have arrived.
pub(super) fn settle(ticks: u32, tick: Duration) {
    std::thread::sleep(tick * ticks);
}

/// The CLI against `d`; asserts success and answers stdout.
pub(super) fn cli(d: &Daemon, cwd: &Path, args: &[&str]) -> String {
    let mut all = vec!["--url", d.url.as_str()];
    all.extend_from_slice(args);
    let out = run("lookout", &all, cwd);
    assert!(
        out.status.success(),
        "lookout {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(super) const IMAGE: &str = "lookout-test/busybox";

/// Whether the test image is there (made by `scripts/test-image.sh` when Docker is). With
/// `CI=true`, a missing Docker fails; otherwise the reason is returned for the caller to print.
pub(super) fn docker_image() -> Result<(), String> {
    let inspect = || {
        Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let reason = if inspect() {
        return Ok(());
    } else {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-image.sh");
        match Command::new("bash").arg(script).output() {
            Ok(o) if o.status.success() && inspect() => return Ok(()),
            Ok(o) => format!(
                "cannot make {IMAGE}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => format!("cannot run scripts/test-image.sh: {e}"),
        }
    };
    assert!(
        !lookout_common::in_ci(),
        "CI=true but Docker is not usable: {reason}"
    );
    Err(reason)
}
