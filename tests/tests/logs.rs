//! Log rules (`[[logs]]`) in the real lookoutd: a rule on a file alerts the chat when a matching
//! line is appended, keeps following across a rotation (rename and a new file) and a truncation,
//! and resolves on its `resolve` line; a rule on a real container's output (stderr, a restart);
//! `lookout doctor`'s check of each rule; and `lookout logs test` against a file. Every wait has a
//! deadline and polls; no sleep proves anything.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lookout_e2e::engine::{IMAGE, docker, engine};
use lookout_e2e::{Daemon, Receiver, run};
use serde_json::Value;

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn texts(got: &[Value]) -> Vec<String> {
    got.iter()
        .filter_map(|b| b["text"].as_str().map(str::to_owned))
        .collect()
}

fn write_config(dir: &Path, hook: &str, body: &str) -> String {
    let p = dir.join("lookout.toml");
    std::fs::write(
        &p,
        format!("[[notify.sinks]]\nkind = \"webhook\"\nurl = \"{hook}\"\n\n{body}"),
    )
    .unwrap();
    p.to_str().unwrap().to_owned()
}

/// One GET as JSON, on a runtime of its own.
fn get(url: &str) -> Value {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}

/// Waits until `pred` holds for the first rule of `/status`'s `logs` section; that rule then.
fn wait_rule(d: &Daemon, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let status = get(&format!("{}/status?sections=logs", d.url));
        let rule = &status["sections"]["logs"]["list"][0];
        if pred(rule) {
            return rule.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: {}",
            status["sections"]["logs"]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_file_rule_alerts_follows_rotation_and_truncation_and_resolves_on_its_resolve_line() {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("host.log");
    append(
        &log,
        "ValidationError written before lookoutd started: not counted\n",
    );
    let file = write_config(
        tmp.path(),
        &r.url,
        &format!(
            "[[logs]]\nname = \"config-rejected\"\nfile = \"{}\"\n\
             pattern = 'ValidationError|extra_forbidden'\nresolve = 'Application startup complete'\n\
             severity = \"critical\"\n",
            log.display()
        ),
    );
    let d = Daemon::start(&["--config", &file]);
    wait_rule(&d, "the rule follows its file", |r| r["following"] == true);

    let appended = Instant::now();
    append(
        &log,
        "INFO loading settings\npydantic_core._pydantic_core.ValidationError: 1 validation error for Settings\n",
    );
    let got = r.wait_for(Duration::from_secs(30), |g| !g.is_empty());
    eprintln!("log alert known {:?} after the line", appended.elapsed());
    let first = &got[0];
    assert_eq!(first["key"], "log:config-rejected", "{first}");
    assert_eq!(
        first["text"],
        format!(
            "📜 config-rejected in {}: pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings",
            log.display()
        )
    );
    assert_eq!(first["severity"], "critical", "{first}");
    assert_eq!(first["payload"]["matches"], 1, "{first}");
    assert_eq!(
        first["payload"]["lines"][0],
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings"
    );

    // logrotate: renamed away, a new file. Its lines count from its start; the alert still fires
    // (no second message), and the new line is the rule's last match.
    std::fs::rename(&log, tmp.path().join("host.log.1")).unwrap();
    append(&log, "extra_forbidden in the new file\n");
    let rule = wait_rule(&d, "the new file's line is read", |r| r["matches"] == 2);
    assert_eq!(rule["last_match"], "extra_forbidden in the new file");
    assert_eq!(rule["firing"], true);
    assert_eq!(rule["following"], true);

    // copytruncate: emptied in place, written again from its start.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, "ValidationError after the truncation\n");
    wait_rule(&d, "the truncated file is read from its start", |r| {
        r["matches"] == 3 && r["last_match"] == "ValidationError after the truncation"
    });

    append(&log, "INFO Application startup complete.\n");
    let got = r.wait_for(Duration::from_secs(30), |g| g.len() >= 2);
    let t = texts(&got);
    assert_eq!(t.len(), 2, "one alert, one resolved: {t:#?}");
    assert!(
        t[1].starts_with("✅ resolved after") && t[1].contains("📜 config-rejected in"),
        "{t:#?}"
    );
    let rule = wait_rule(&d, "resolved in /status", |r| r["firing"] == false);
    assert_eq!(rule["matches"], 3);

    // The doctor checks the rule's file.
    let out = run("lookout", &["--url", d.url.as_str(), "doctor"], tmp.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "✔ log rule config-rejected — {} is readable",
            log.display()
        )),
        "{text}"
    );
}

#[test]
fn lookout_logs_test_shows_what_a_rule_matches_and_exits_by_it() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("lookout.toml"),
        "[[logs]]\nname = \"gateway-errors\"\ncontainer = \"litellm\"\n\
         pattern = '\" (429|5\\d\\d) '\ncount = 2\nwithin = \"1m\"\nresolve = 'healthy again'\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("gateway.log"),
        "INFO: a - \"POST /chat/completions HTTP/1.1\" 200 OK\n\
         INFO: a - \"POST /chat/completions HTTP/1.1\" 429 Too Many Requests\n\
         INFO: a - \"POST /chat/completions HTTP/1.1\" 503 Service Unavailable\n\
         INFO: healthy again\n",
    )
    .unwrap();
    std::fs::write(tmp.path().join("quiet.log"), "INFO: all is well\n").unwrap();

    let out = run(
        "lookout",
        &["logs", "test", "gateway-errors", "gateway.log"],
        tmp.path(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let expected = [
        "rule gateway-errors (container litellm, warning): pattern '\" (429|5\\d\\d) ', 2 matches within 1m fire; resolve 'healthy again'",
        "     2: INFO: a - \"POST /chat/completions HTTP/1.1\" 429 Too Many Requests",
        "     3: INFO: a - \"POST /chat/completions HTTP/1.1\" 503 Service Unavailable",
        "        → the alert fires: 📜 gateway-errors: 2 matches within 1m in container litellm, the last 2:",
        "            INFO: a - \"POST /chat/completions HTTP/1.1\" 429 Too Many Requests",
        "            INFO: a - \"POST /chat/completions HTTP/1.1\" 503 Service Unavailable",
        "     4: resolve: INFO: healthy again",
        "        → the alert resolves",
        "4 line(s) read from gateway.log: 2 match, 1 resolve (read as if they came together: `within` is not applied)",
    ];
    assert_eq!(text.lines().collect::<Vec<_>>(), expected, "{text}");

    // --json, with the configuration named by flag.
    let out = run(
        "lookout",
        &[
            "logs",
            "test",
            "gateway-errors",
            "gateway.log",
            "--config",
            "lookout.toml",
            "--json",
        ],
        tmp.path(),
    );
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{body}");
    assert_eq!(body["matched"], 2);
    assert_eq!(body["lines"][1]["number"], 3);
    assert!(
        body["lines"][1]["fires"]
            .as_str()
            .unwrap()
            .starts_with("📜 gateway-errors")
    );

    // Nothing matches: exit 1.
    let out = run(
        "lookout",
        &["logs", "test", "gateway-errors", "quiet.log"],
        tmp.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 line(s) read from quiet.log: 0 match")
    );

    // No such rule, no such file: exit 2 with what to do.
    let out = run(
        "lookout",
        &["logs", "test", "nope", "quiet.log"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "lookout: error: no log rule `nope` in lookout.toml (its rules: `gateway-errors`)"
    );
    let out = run(
        "lookout",
        &["logs", "test", "gateway-errors", "missing.log"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read missing.log"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A container name of this test process, removed (if it exists) when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[test]
fn a_container_rule_alerts_on_its_output_and_resolves_after_a_restart() {
    if !engine() {
        return;
    }
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let c = Container(format!("lookout-e2e-logs-{}", std::process::id()));
    let _ = Command::new("docker").args(["rm", "-f", &c.0]).output();
    let file = write_config(
        tmp.path(),
        &r.url,
        &format!(
            "[[logs]]\nname = \"gateway-errors\"\ncontainer = \"{}\"\n\
             pattern = 'rate limit'\nresolve = 'recovered'\n",
            c.0
        ),
    );
    // lookoutd first: the container does not exist yet, which the rule says and waits out.
    let d = Daemon::start(&["--config", &file]);
    let rule = wait_rule(&d, "no container yet", |r| r["problem"].is_string());
    assert!(rule["problem"].as_str().unwrap().contains(&c.0), "{rule}");
    // Its first run writes the match on stderr; after a restart it writes the resolve line.
    docker(&[
        "run",
        "-d",
        "--name",
        &c.0,
        IMAGE,
        "sh",
        "-c",
        "if [ -e /tmp/once ]; then echo recovered; else touch /tmp/once; \
         echo 'upstream said 429: rate limit exceeded' >&2; fi; exec sleep 1000",
    ]);
    let got = r.wait_for(Duration::from_secs(30), |g| !g.is_empty());
    assert_eq!(got[0]["key"], "log:gateway-errors");
    assert_eq!(
        got[0]["text"],
        format!(
            "📜 gateway-errors in container {}: upstream said 429: rate limit exceeded",
            c.0
        )
    );
    wait_rule(&d, "following the running container", |r| {
        r["following"] == true && r["firing"] == true
    });

    docker(&["restart", "-t", "0", &c.0]);
    let got = r.wait_for(Duration::from_secs(30), |g| g.len() >= 2);
    let t = texts(&got);
    assert!(t[1].starts_with("✅ resolved after"), "{t:#?}");
    // The restart's reconnect did not read the first run's line again.
    let rule = wait_rule(&d, "resolved in /status", |r| r["firing"] == false);
    assert_eq!(rule["matches"], 1, "{rule}");
    assert_eq!(texts(&r.received()).len(), 2);

    let out = run("lookout", &["--url", d.url.as_str(), "doctor"], tmp.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "✔ log rule gateway-errors — container {} is running",
            c.0
        )),
        "{text}"
    );
}
