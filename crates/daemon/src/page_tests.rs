use super::*;
use lookout_notify::alerts::AlertKey;
use lookout_store::AlertRecord;
use serde_json::json;

fn now() -> DateTime<Utc> {
    "2026-01-01T12:00:00Z".parse().unwrap()
}

fn alert(key: &str, status: &'static str, text: &str, under: Option<&str>) -> AlertView {
    let k = AlertKey::parse(key).unwrap();
    AlertView {
        record: AlertRecord {
            key: key.into(),
            rule: k.rule.clone(),
            subject: k.subject.clone(),
            firing: status != "resolved",
            severity: "critical".into(),
            group: None,
            text: text.into(),
            cause: under.map(str::to_owned),
            first_seen: now() - chrono::TimeDelta::minutes(7),
            last_change: now(),
            last_sent: None,
            send_count: 1,
            resolved_at: None,
            changes: Vec::new(),
            flapping: false,
            acked_by: None,
        },
        status,
        folded_under: under.map(|u| AlertKey::parse(u).unwrap()),
    }
}

fn report() -> serde_json::Value {
    json!({
        "status": "fail",
        "reasons": ["channel tg disconnected for 2m", "repo host: worktree g1 has a conflict"],
        "generated_at": "2026-01-01T12:00:00Z",
        "elapsed_ms": 4,
        "sections": {
            "channels": {"tg": {"connected": false, "reason": "<script>alert('x')</script>",
                                "since": "2026-01-01T11:58:00Z"}},
            "service": {"status": "ok", "uptime_seconds": 60, "version": "9.9.9"},
        },
        "section_status": {"channels": "fail", "service": "pass"},
    })
}

#[test]
fn every_value_is_escaped_so_a_script_in_a_reason_is_text() {
    let html = page(&PageData {
        report: &report(),
        alerts: &[alert(
            "channel_down:tg",
            "firing",
            "tg is down: <script>alert(2)</script>",
            None,
        )],
        history: &[],
        incidents: &[],
        now: now(),
    });
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(html.contains("tg is down: &lt;script&gt;alert(2)&lt;/script&gt;"));
}

#[test]
fn the_verdict_then_firing_alerts_with_their_folded_ones_then_the_cards() {
    let alerts = [
        alert(
            "engine_down:docker",
            "firing",
            "Docker engine unreachable",
            None,
        ),
        alert(
            "task_failed:nightly",
            "folded",
            "nightly failed",
            Some("engine_down:docker"),
        ),
        alert("I3:run-1", "held", "run-1 sent no heartbeat", None),
        alert("old:thing", "resolved", "an old thing", None),
    ];
    let html = page(&PageData {
        report: &report(),
        alerts: &alerts,
        history: &[],
        incidents: &[],
        now: now(),
    });
    let at = |s: &str| {
        html.find(s)
            .unwrap_or_else(|| panic!("{s} missing:\n{html}"))
    };
    assert!(at("id=\"verdict\">FAIL<") < at("Firing alerts (1)"));
    assert!(at("Firing alerts (1)") < at("Docker engine unreachable"));
    assert!(at("Docker engine unreachable") < at("folded: nightly failed"));
    assert!(at("folded: nightly failed") < at("held by a quiet window"));
    assert!(at("held by a quiet window") < at("id=\"section-channels\""));
    assert!(at("critical · firing for 7m") > 0);
    assert!(
        !html.contains("an old thing"),
        "resolved alerts are not on the page"
    );
    // Sections needing a look first, each with its summary and its details open; then the rest.
    assert!(at("id=\"section-channels\"") < at("id=\"section-service\""));
    assert!(html.contains("up 1m, version 9.9.9"));
    assert!(html.contains("0 of 1 connected; tg down 2m"));
    assert!(html.contains("<details open><summary>channels (1)</summary>"));
    // Light and dark, no script, no external asset.
    assert!(html.contains("prefers-color-scheme:dark"));
    assert!(!html.contains("src=") && !html.contains("href="));
}

#[test]
fn a_strip_shows_the_worst_level_of_each_quarter_hour_of_the_last_day() {
    let b = history_bucket(now());
    let sample = |mins_ago: i64, level: i16| HistorySample {
        bucket: history_bucket(b - chrono::TimeDelta::minutes(mins_ago)),
        section: "channels".into(),
        level,
    };
    let history = [
        sample(25 * 60, 2), // older than the strip: not shown
        sample(60, 2),
        sample(30, 1),
        sample(0, 0),
    ];
    let s = strips(&history, now());
    let cells = &s["channels"];
    assert_eq!(cells.len(), 96);
    assert_eq!(cells[95], Some(0), "the current quarter hour is last");
    assert_eq!(cells[93], Some(1));
    assert_eq!(cells[91], Some(2));
    assert_eq!(cells.iter().filter(|c| c.is_some()).count(), 3);
    let html = page(&PageData {
        report: &report(),
        alerts: &[],
        history: &history,
        incidents: &[],
        now: now(),
    });
    let card = &html[html.find("id=\"section-channels\"").unwrap()..];
    assert_eq!(
        card.matches("<i class=\"l2\" title=\"fail\"></i>").count(),
        1
    );
    // A section with no stored sample yet shows an empty strip, not an error.
    let service = &html[html.find("id=\"section-service\"").unwrap()..];
    assert!(service.contains("<div class=\"strip\" title=\"no history yet\"></div>"));
}

#[test]
fn incidents_show_when_how_long_what_and_what_was_done_escaped() {
    use lookout_store::{IncidentAction, IncidentRecord};
    let record = |alert: &str, text: &str, started: i64, lasted: Option<i64>| IncidentRecord {
        id: format!("{alert}@{started}"),
        alert: alert.into(),
        rule: alert.split(':').next().unwrap().into(),
        subject: alert.split(':').nth(1).unwrap().into(),
        severity: "critical".into(),
        group: None,
        text: text.into(),
        cause: None,
        started_at: now() - chrono::TimeDelta::seconds(started),
        resolved_at: lasted.map(|l| now() - chrono::TimeDelta::seconds(started - l)),
        actions: vec![],
    };
    let mut bridge = record(
        "watchdog_circuit:bridge",
        "bridge hung <b>",
        7200,
        Some(600),
    );
    bridge.actions.push(IncidentAction {
        at: now(),
        kind: "ack".into(),
        text: "acknowledged by @alice".into(),
        by: Some("@alice".into()),
    });
    let list = vec![
        crate::incidents::IncidentView {
            open: true,
            duration_seconds: 300,
            folded: vec![record("task-failed:sync", "sync failed", 250, None)],
            record: record("gateway_down:gateway", "gateway down", 300, None),
        },
        crate::incidents::IncidentView {
            open: false,
            duration_seconds: 600,
            folded: vec![],
            record: bridge,
        },
    ];
    let html = page(&PageData {
        report: &report(),
        alerts: &[],
        history: &[],
        incidents: &list,
        now: now(),
    });
    let table = &html[html.find("id=\"incidents\"").expect("an incidents section")..];
    assert!(table.contains("Incidents, last 30 days (2)"), "{table}");
    assert!(
        table.contains("1 resolved, median time to resolve 10m"),
        "{table}"
    );
    assert!(table.contains("<td>open, 5m</td>"), "{table}");
    assert!(
        table.contains("<td>task-failed:sync</td>"),
        "the folded alert: {table}"
    );
    assert!(table.contains("bridge hung &lt;b&gt;"), "escaped: {table}");
    assert!(table.contains("acknowledged by @alice (@alice)"), "{table}");
    let none = page(&PageData {
        report: &report(),
        alerts: &[],
        history: &[],
        incidents: &[],
        now: now(),
    });
    assert!(none.contains("None: nothing fired in 30 days."));
}
