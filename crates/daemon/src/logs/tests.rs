//! Log rules as lookoutd runs them: `lookout logs test`'s report, the seeds' rules of the docs
//! against the lines those hosts write, the `/status` section, and a rule on a real file through
//! the lifecycle to the chat (append, rotation, resolve) — waiting with a deadline, never a sleep.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use super::*;
use crate::testing::Alerting;

fn config(text: &str) -> Config {
    lookout_config::parse(text, "test.toml").unwrap()
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn logs_test_reports_each_matching_line_the_firing_and_the_resolve() {
    let c = config(
        "[[logs]]\nname = \"gw\"\ncontainer = \"litellm\"\npattern = ' 429 '\n\
         resolve = 'healthy again'\ncount = 2\nwithin = '1m'\n",
    );
    let text = b"ok 200 line\nPOST 429 one\nhealthy again (too early)\nPOST 429 two\nPOST 429 three\nhealthy again\n";
    let t = test_log_rule(&c.logs[0], text).unwrap();
    assert_eq!((t.read, t.matched, t.resolving), (6, 3, 2));
    let numbers: Vec<usize> = t.lines.iter().map(|l| l.number).collect();
    assert_eq!(numbers, [2, 3, 4, 5, 6]);
    assert_eq!(t.lines[0].fires, None, "one is not yet two");
    assert!(
        !t.lines[1].resolves,
        "nothing fires yet: nothing to resolve"
    );
    assert_eq!(
        t.lines[2].fires.as_deref(),
        Some(
            "📜 gw: 2 matches within 1m in container litellm, the last 2:\n  POST 429 one\n  POST 429 two"
        )
    );
    assert_eq!(t.lines[3].fires, None, "already firing");
    assert!(t.lines[4].resolve && t.lines[4].resolves);
    let none = test_log_rule(&c.logs[0], b"all quiet\n").unwrap();
    assert_eq!((none.read, none.matched), (1, 0));
    assert!(none.lines.is_empty());
}

/// The `[[logs]]` rules of the docs' TOML blocks, by name.
fn documented_rules() -> Vec<LogRule> {
    const DOC: &str = include_str!("../../../../docs/configuration.md");
    let mut rules = Vec::new();
    let mut block: Option<String> = None;
    for line in DOC.lines() {
        match &mut block {
            None if line.trim() == "```toml" => block = Some(String::new()),
            Some(b) if line.trim() == "```" => {
                rules.extend(config(b).logs);
                block = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    rules
}

#[test]
fn the_seeds_rules_of_the_docs_match_what_those_hosts_write_and_not_their_ordinary_lines() {
    let rules = documented_rules();
    let rule = |name: &str| rules.iter().find(|r| r.name == name).unwrap().clone();
    let matches = |r: &LogRule, line: &str| Matcher::new(r).unwrap().is_match(line);
    let config_rejected = rule("config-rejected");
    for line in [
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings",
        "  Extra inputs are not permitted [type=extra_forbidden, input_value='x', input_type=str]",
    ] {
        assert!(matches(&config_rejected, line), "{line}");
    }
    assert!(!matches(
        &config_rejected,
        "INFO settings loaded from config.toml"
    ));
    assert_eq!(config_rejected.severity, Severity::Critical);

    let slack = rule("slack-socket-mode");
    for line in [
        "INFO:slack_sdk.socket_mode.aiohttp:The session seems to be already closed. Going to reconnect... (session id: s_1)",
        "[WARN]  socket-mode:SocketModeClient:0 A pong wasn't received from the server before the timeout of 5000ms!",
        "WARNING Socket Mode disconnected: connection reset by peer",
        "socket mode: connection was lost, reconnecting",
    ] {
        assert!(matches(&slack, line), "{line}");
    }
    for line in [
        "INFO:slack_bolt.App:⚡️ Bolt app is running!",
        "INFO:slack_sdk.socket_mode.aiohttp:A new session has been established (session id: s_2)",
        "INFO message received in #general",
    ] {
        assert!(!matches(&slack, line), "{line}");
    }
    assert_eq!(
        (slack.count, slack.within),
        (3, Some(Duration::from_secs(600)))
    );

    let gateway = rule("gateway-errors");
    for line in [
        "INFO:     172.18.0.5:43210 - \"POST /chat/completions HTTP/1.1\" 429 Too Many Requests",
        "INFO:     172.18.0.5:43211 - \"POST /v1/messages HTTP/1.1\" 503 Service Unavailable",
        "litellm.RateLimitError: RateLimitError: AnthropicException - rate limit exceeded",
        "litellm.InternalServerError: AnthropicException - Overloaded",
    ] {
        assert!(matches(&gateway, line), "{line}");
    }
    for line in [
        "INFO:     172.18.0.5:43212 - \"POST /chat/completions HTTP/1.1\" 200 OK",
        "INFO:     172.18.0.5:43213 - \"GET /health HTTP/1.1\" 200 OK",
        "tokens used: 429",
    ] {
        assert!(!matches(&gateway, line), "{line}");
    }
    // Five within a minute fire; the alert carries the last lines.
    let burst = "INFO: x - \"POST /chat/completions HTTP/1.1\" 429 Too Many Requests\n".repeat(5);
    let t = test_log_rule(&gateway, burst.as_bytes()).unwrap();
    let fired: Vec<_> = t.lines.iter().filter_map(|l| l.fires.as_deref()).collect();
    assert_eq!(fired.len(), 1, "{t:#?}");
    assert!(
        fired[0].starts_with(
            "📜 gateway-errors: 5 matches within 1m in container litellm, the last 3:\n"
        ),
        "{}",
        fired[0]
    );
}

fn status(name: &str, firing: bool, severity: Severity, problem: Option<&str>) -> RuleStatus {
    RuleStatus {
        name: name.into(),
        source: "host.log".into(),
        severity,
        following: problem.is_none(),
        problem: problem.map(str::to_owned),
        lines_read: 10,
        matches: u64::from(firing),
        last_match_at: firing.then(Utc::now),
        last_match: firing.then(|| "boom".to_owned()),
        firing,
    }
}

#[test]
fn the_status_section_weighs_firing_rules_by_severity_and_names_sources_not_followed() {
    use lookout_status_collect::Verdict;
    let c = section(&[
        status("quiet", false, Severity::Critical, None),
        status("loud", true, Severity::Critical, None),
        status("soft", true, Severity::Info, None),
        status(
            "lost",
            false,
            Severity::Warning,
            Some("host.log: No such file"),
        ),
    ]);
    let found: Vec<(Verdict, &str)> = c
        .findings
        .iter()
        .map(|f| (f.level, f.reason.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (Verdict::Fail, "log rule loud firing: boom"),
            (
                Verdict::Warn,
                "log rule lost not followed: host.log: No such file"
            ),
        ]
    );
    assert_eq!(c.data["rules"], 4);
    assert_eq!(c.data["firing"], 2);
    assert_eq!(c.data["list"][1]["last_match"], "boom");
    assert!(section(&[]).findings.is_empty());
}

/// Delivers until `pred` holds for everything sent so far; fails after 20 s.
async fn sent_until(
    alerting: &Alerting,
    all: &mut Vec<(String, String)>,
    pred: impl Fn(&[(String, String)]) -> bool,
) {
    let start = Instant::now();
    loop {
        all.extend(alerting.sent().await.into_iter().map(|(k, t, _)| (k, t)));
        if pred(all) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not sent within 20 s; sent: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `pred` holds for the `logs` section's first rule; its data then. Fails after 20 s.
async fn wait_rule(
    section: &Arc<dyn Collector>,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let data = section.collect().await.unwrap().data;
        if pred(&data["list"][0]) {
            return data["list"][0].clone();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{what}: {data}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_on_a_real_file_alerts_survives_a_rotation_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("host.log");
    append(&log, "ValidationError from before the start: not counted\n");
    let c = config(&format!(
        "[[logs]]\nname = \"cfg\"\nfile = \"{}\"\npattern = 'ValidationError'\n\
         resolve = 'startup complete'\nseverity = \"critical\"\ngroup = \"admin\"\n",
        log.display()
    ));
    let alerting = Alerting::new(&c).await;
    let (stop_tx, stop) = watch::channel(false);
    let logs = spawn(&c, alerting.alerts.clone(), stop);
    let section = logs.section.clone().unwrap();
    // Followed once the file is open (the status has no problem and has read nothing).
    wait_rule(&section, "the rule follows its file", |r| {
        r["following"] == true
    })
    .await;
    let mut all = Vec::new();
    append(
        &log,
        "INFO starting\npydantic ValidationError: extra_forbidden\n",
    );
    sent_until(&alerting, &mut all, |s| !s.is_empty()).await;
    assert_eq!(
        all,
        [(
            "log:cfg".to_owned(),
            format!(
                "📜 cfg in {}: pydantic ValidationError: extra_forbidden",
                log.display()
            )
        )]
    );
    // Rotated: renamed away, a new file; its lines count from its start, the alert still fires.
    std::fs::rename(&log, dir.path().join("host.log.1")).unwrap();
    append(&log, "ValidationError again, in the new file\n");
    let st = wait_rule(&section, "the new file's match is counted", |r| {
        r["matches"] == 2
    })
    .await;
    assert_eq!(st["last_match"], "ValidationError again, in the new file");
    assert_eq!(st["firing"], true);
    append(&log, "Application startup complete\n");
    sent_until(&alerting, &mut all, |s| s.len() >= 2).await;
    assert!(
        all[1].1.starts_with("✅ resolved after") && all[1].1.contains("📜 cfg in"),
        "{all:#?}"
    );
    assert_eq!(all.len(), 2, "one firing, one resolved: {all:#?}");
    let _ = stop_tx.send(true);
    tokio::time::timeout(Duration::from_secs(5), logs.task.unwrap())
        .await
        .expect("the rules stop with lookoutd")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_start_a_kept_rules_alert_goes_on_firing_and_a_removed_rules_alert_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("host.log");
    append(&log, "");
    let c = config(&format!(
        "[[logs]]\nname = \"kept\"\nfile = \"{}\"\npattern = 'boom'\nresolve = 'fixed'\n",
        log.display()
    ));
    let alerting = Alerting::new(&c).await;
    let now = Utc::now();
    for name in ["kept", "removed"] {
        alerting
            .alerts
            .fire(
                Alert::keyed(
                    AlertKey::new(RULE, name),
                    Severity::Warning,
                    format!("📜 {name}"),
                ),
                now,
            )
            .await
            .unwrap();
    }
    let mut all = Vec::new();
    sent_until(&alerting, &mut all, |s| s.len() == 2).await;
    all.clear();
    let (_stop_tx, stop) = watch::channel(false);
    let logs = spawn(&c, alerting.alerts.clone(), stop);
    let section = logs.section.clone().unwrap();
    sent_until(&alerting, &mut all, |s| !s.is_empty()).await;
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].0, "log:removed");
    assert!(all[0].1.starts_with("✅ resolved"), "{all:#?}");
    // It goes on firing, and resolves as the rule says: by its `resolve` line.
    wait_rule(&section, "the kept rule fires and follows its file", |r| {
        r["firing"] == true && r["following"] == true
    })
    .await;
    append(&log, "fixed\n");
    sent_until(&alerting, &mut all, |s| s.len() >= 2).await;
    assert_eq!(all[1].0, "log:kept");
    assert!(all[1].1.starts_with("✅ resolved"), "{all:#?}");
}

#[tokio::test]
async fn no_rule_no_section_and_removed_rules_still_resolve() {
    let c = Config::default();
    let alerting = Alerting::new(&c).await;
    alerting
        .alerts
        .fire(
            Alert::keyed(AlertKey::new(RULE, "gone"), Severity::Warning, "📜 gone"),
            Utc::now(),
        )
        .await
        .unwrap();
    let (_stop_tx, stop) = watch::channel(false);
    let logs = spawn(&c, alerting.alerts.clone(), stop);
    assert!(logs.section.is_none());
    logs.task.unwrap().await.unwrap();
    let list = alerting.alerts.list(Utc::now()).await.unwrap();
    assert!(list.iter().all(|a| !a.record.firing), "{list:#?}");
}
