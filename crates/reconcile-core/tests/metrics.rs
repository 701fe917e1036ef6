//! The metrics the registry exports, and the dashboard and alert rules that use them.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use lookout_reconcile_core::host::HostModel;
use lookout_reconcile_core::{Driver, DriverConfig, ManualClock, ReconcileMetrics};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

/// Every sample name the registry can export: from its `# TYPE` lines.
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut it = rest.split_whitespace();
        let (name, ty) = (it.next().unwrap(), it.next().unwrap());
        match ty {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for s in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{s}"));
                }
            }
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// Metric names used in a PromQL expression (ours all start with `lookout_`).
fn used(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("lookout_") {
        let start = i + pos;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        out.push(expr[start..end].to_owned());
        i = end;
    }
    out
}

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

async fn rendered() -> String {
    let metrics = ReconcileMetrics::new();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let src = MemSource::default();
    for e in stuck_run_events(t0()) {
        src.push(e);
    }
    let mut d = Driver::new(
        HostModel::default(),
        src,
        Arc::new(FakeEffects::default()),
        Arc::new(ManualClock::new(t0() + mins(5))),
        DriverConfig::default(),
    )
    .with_metrics(metrics);
    d.tick().await.unwrap();
    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    text
}

#[tokio::test]
async fn names_follow_prometheus_conventions() {
    let text = rendered().await;
    let names = exported(&text);
    for n in [
        "lookout_reconcile_events_drained_total",
        "lookout_reconcile_actions_total",
        "lookout_reconcile_effects_attempted_total",
        "lookout_reconcile_effects_succeeded_total",
        "lookout_reconcile_effects_failed_total",
        "lookout_reconcile_invariant_violations_total",
        "lookout_reconcile_invariant_violations_firing",
        "lookout_reconcile_tick_duration_seconds_bucket",
        "lookout_reconcile_pending_events",
    ] {
        assert!(names.contains(n), "{n} missing from:\n{text}");
    }
    assert!(text.contains("# UNIT lookout_reconcile_tick_duration_seconds seconds"));
    assert!(
        text.contains("lookout_reconcile_invariant_violations_total{invariant=\"I1\"} 1"),
        "{text}"
    );
    assert!(text.contains("lookout_reconcile_actions_total{type=\"repair\"} 1"));
    assert!(text.contains("lookout_reconcile_events_drained_total 5"));
}

#[tokio::test]
async fn the_dashboard_names_only_exported_metrics() {
    let names = exported(&rendered().await);
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(docs().join("grafana/lookout.json")).unwrap(),
    )
    .unwrap();
    let panels = dash["panels"].as_array().unwrap();
    let mut types = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for p in panels {
        types.insert(p["type"].as_str().unwrap().to_owned());
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let u = used(expr);
            assert!(
                !u.is_empty(),
                "panel {} queries no Lookout metric",
                p["title"]
            );
            for n in u {
                assert!(
                    names.contains(&n),
                    "panel {}: {n} is not exported",
                    p["title"]
                );
                seen.insert(n);
            }
        }
    }
    assert!(types.contains("timeseries") && types.contains("gauge"));
    let stacked = panels.iter().any(|p| {
        p["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == json!("normal")
            && p["targets"][0]["expr"]
                .as_str()
                .unwrap()
                .contains("actions_total")
    });
    assert!(stacked, "actions by type are stacked");
    for must in [
        "lookout_reconcile_events_drained_total",
        "lookout_reconcile_actions_total",
        "lookout_reconcile_effects_failed_total",
        "lookout_reconcile_invariant_violations_firing",
        "lookout_reconcile_tick_duration_seconds_bucket",
        "lookout_reconcile_pending_events",
    ] {
        assert!(seen.contains(must), "no panel shows {must}");
    }
}

/// A minimal structural check of the rules file (no YAML dependency): `groups:`, and for each rule
/// an `alert:` with an `expr:` naming only exported metrics; the three rules the product asks for.
#[tokio::test]
async fn the_alert_rules_are_well_formed() {
    let names = exported(&rendered().await);
    let text = std::fs::read_to_string(docs().join("prometheus/alerts.yml")).unwrap();
    assert!(text.lines().any(|l| l.trim_end() == "groups:"));
    let mut rules: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        assert!(
            !line.contains('\t'),
            "tabs are not YAML indentation: {line:?}"
        );
        if let Some(name) = l.strip_prefix("- alert:") {
            rules.push((name.trim().to_owned(), String::new()));
        } else if let Some(expr) = l.strip_prefix("expr:") {
            rules.last_mut().expect("expr before alert").1 = expr.trim().to_owned();
        }
    }
    assert_eq!(rules.len(), 3, "{rules:?}");
    for (name, expr) in &rules {
        assert!(!expr.is_empty(), "{name} has no expr");
        for n in used(expr) {
            assert!(names.contains(&n), "{name}: {n} is not exported");
        }
    }
    let exprs: Vec<&str> = rules.iter().map(|r| r.1.as_str()).collect();
    assert!(
        exprs
            .iter()
            .any(|e| e.contains("invariant_violations_firing") && e.ends_with("> 0"))
    );
    assert!(
        exprs
            .iter()
            .any(|e| e.contains("tick_duration_seconds_bucket") && e.ends_with("> 0.5"))
    );
    assert!(
        exprs
            .iter()
            .any(|e| e.contains("pending_events") && e.ends_with("> 50"))
    );
}
