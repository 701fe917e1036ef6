//! The report's rules with fake collectors and a paused clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lookout_status_collect::sections::ChannelsSection;
use lookout_status_collect::{
    ChannelState, CollectError, Collected, Collector, Finding, StatusDeps, Verdict, collect_status,
};
use serde_json::json;

struct Fake {
    name: &'static str,
    delay: Duration,
    result: Result<Collected, String>,
}

#[async_trait::async_trait]
impl Collector for Fake {
    fn name(&self) -> &'static str {
        self.name
    }
    async fn collect(&self) -> Result<Collected, CollectError> {
        tokio::time::sleep(self.delay).await;
        self.result.clone().map_err(CollectError::from)
    }
}

fn fake(name: &'static str, delay_s: u64, result: Result<Collected, String>) -> Arc<dyn Collector> {
    Arc::new(Fake {
        name,
        delay: Duration::from_secs(delay_s),
        result,
    })
}

#[tokio::test(start_paused = true)]
async fn a_slow_or_failing_section_carries_its_error_and_the_others_report() {
    let collectors = vec![
        fake("fast", 0, Ok(Collected::new(json!({"n": 1})))),
        fake("slow", 10, Ok(Collected::new(json!({"n": 2})))),
        fake("broken", 0, Err("database is locked".into())),
    ];
    let started = tokio::time::Instant::now();
    let r = collect_status(&collectors, Duration::from_secs(2), None).await;
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "the slow one is cut at its timeout"
    );
    assert_eq!(r.sections["fast"], json!({"n": 1}));
    assert_eq!(r.sections["slow"]["error"], "timed out after 2000 ms");
    assert_eq!(r.sections["slow"]["elapsed_ms"], 2000);
    assert_eq!(r.sections["broken"]["error"], "database is locked");
    assert_eq!(r.status, Verdict::Warn);
    assert_eq!(
        r.reasons,
        vec![
            "section broken unavailable: database is locked",
            "section slow unavailable: timed out after 2000 ms"
        ]
    );
}

struct Panics;

#[async_trait::async_trait]
impl Collector for Panics {
    fn name(&self) -> &'static str {
        "panics"
    }
    async fn collect(&self) -> Result<Collected, CollectError> {
        panic!("bug in a collector")
    }
}

#[tokio::test]
async fn a_panicking_section_keeps_its_name_and_the_others_report() {
    let collectors = vec![
        Arc::new(Panics) as Arc<dyn Collector>,
        fake("fine", 0, Ok(Collected::new(json!({})))),
    ];
    let r = collect_status(&collectors, Duration::from_secs(2), None).await;
    assert!(
        r.sections["panics"]["error"]
            .as_str()
            .unwrap()
            .starts_with("collector panicked"),
        "{r:?}"
    );
    assert_eq!(r.section_status["panics"], Verdict::Warn);
    assert_eq!(r.sections["fine"], json!({}));
}

#[tokio::test(start_paused = true)]
async fn the_verdict_is_the_worst_finding_and_sections_can_be_chosen() {
    let collectors = vec![
        fake(
            "a",
            0,
            Ok(Collected::new(json!({})).with(Finding::warn("w"))),
        ),
        fake(
            "b",
            0,
            Ok(Collected::new(json!({})).with(Finding::fail("f"))),
        ),
        fake("c", 0, Ok(Collected::new(json!({})))),
    ];
    let r = collect_status(&collectors, Duration::from_secs(2), None).await;
    assert_eq!(
        (r.status, r.reasons.clone()),
        (Verdict::Fail, vec!["f".to_string(), "w".to_string()])
    );
    let only = vec!["c".to_string()];
    let r = collect_status(&collectors, Duration::from_secs(2), Some(&only)).await;
    assert_eq!((r.status, r.sections.len()), (Verdict::Pass, 1));
    assert_eq!(serde_json::to_value(&r).unwrap()["status"], "pass");
}

struct Channels(BTreeMap<String, ChannelState>);

#[async_trait::async_trait]
impl StatusDeps for Channels {
    async fn channels(&self) -> Result<BTreeMap<String, ChannelState>, String> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn a_channel_down_too_long_fails_and_a_short_drop_warns() {
    let now = chrono::Utc::now();
    let st = |connected, mins: i64| ChannelState {
        connected,
        since: Some(now - chrono::Duration::minutes(mins)),
        reason: None,
    };
    let deps = Channels(BTreeMap::from([
        ("slack".to_string(), st(false, 5)),
        ("whatsapp".to_string(), st(false, 1)),
        ("matrix".to_string(), st(true, 60)),
    ]));
    let section = ChannelsSection {
        deps: Arc::new(deps),
        channel_down: Duration::from_secs(120),
    };
    let c = section.collect().await.unwrap();
    assert_eq!(c.data["matrix"]["connected"], true);
    assert_eq!(
        c.findings,
        vec![
            Finding::fail("channel slack disconnected for 5m"),
            Finding::warn("channel whatsapp disconnected for 1m")
        ]
    );
}
